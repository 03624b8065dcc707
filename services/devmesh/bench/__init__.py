"""`nox -s bench`: the mesh's hot paths against the physical baselines, as ratios.

Absolute rates change from machine to machine and from run to run; a ratio whose numerator
and denominator are measured in the same repetition, with the same client and concurrency,
does not. Every ratio is the median of three repetitions:

- R1: GetProduct on a cache hit, direct gRPC / a bare grpc.aio server (same grpcio, in its
  own process) answering with the same serialized Product;
- R2: GetProduct on a cache miss / a bare `AsyncMongoClient.find_one` by id on the same
  database server and collection (both loops unlink the cached entry before each call);
- R3: CreateOrder / pgbench replaying the SQL one checkout sent to the order database
  (captured from the statement log), beside the round trips and transactions per checkout;
- R4: GetProduct through the REST edge / direct gRPC;
- R5: Login / raw argon2id verifies with the user service's parameters;
- R6: GetProduct p99 at a fixed rate while a burst of sign-ins and checkouts runs / alone
  (lower is better; the others are higher-is-better).

Beside them: SearchProducts text and facet rates, and the 1 vs 2 replica slot. The Python
client shares the machine's cores with the servers, so its own CPU time is reported; where
h2load (gRPC framing over HTTP/2) and wrk are installed, R1 and R4 are also measured with
them. Results go to `.bench/latest.json` and a printed table.
"""

from services.devmesh.bench.loads import Load, run_load, run_paced
from services.devmesh.bench.ratios import Ratio, results, table, write_results
from services.devmesh.bench.scenarios import Bench

__all__ = ["Bench", "Load", "Ratio", "results", "run_load", "run_paced", "table", "write_results"]
