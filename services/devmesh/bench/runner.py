"""One benchmark run: every scenario per repetition, and the 1 vs 2 replicas figure."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import grpc
from marketplace.product.v1 import product_service_pb2

from services.devmesh.bench.loads import run_load
from services.devmesh.bench.native import EchoServer, grpc_frame
from services.devmesh.bench.scenarios import Bench
from services.devmesh.edge import EdgeSettings
from services.devmesh.mesh import Mesh, MeshOptions
from services.devmesh.processes import free_port


async def measure_replicas(options: MeshOptions, calls: int) -> dict[str, Any]:
    """GetProduct rate on one replica and on two, each in its own mesh."""
    rates: dict[str, Any] = {}
    for count in (1, 2):
        with Mesh(dataclasses.replace(options, replicas=count)) as mesh:
            bench = Bench(mesh, calls)
            await bench.setup()
            try:
                await run_load(len(bench.ids), bench.concurrency, bench.get)
                load = await run_load(calls, bench.concurrency, bench.get)
            finally:
                await bench.close()
            rates[f"{count}_replica_calls_per_s"] = round(load.rate, 1)
            rates[f"{count}_replica_client_cpu"] = round(load.client_cpu_share or 0.0, 2)
    rates["two_over_one"] = round(
        rates["2_replica_calls_per_s"] / rates["1_replica_calls_per_s"], 2
    )
    return rates


async def measure(
    mesh: Mesh,
    calls: int,
    repetitions: int,
    seconds: int,
    profile_dir: Path | None = None,
    only: frozenset[str] = frozenset(),
) -> Bench:
    """Every ratio, `repetitions` times, numerator and denominator side by side."""
    bench = Bench(mesh, calls, profile_dir=profile_dir)
    await bench.setup()
    try:
        response = await bench.products.GetProduct(
            product_service_pb2.GetProductRequest(product_id=bench.ids[0])
        )
        payload = response.SerializeToString()
        bench.figures["product_message_bytes"] = len(payload)
        body = bench.state / "get-product.grpc"
        body.write_bytes(
            grpc_frame(
                product_service_pb2.GetProductRequest(product_id=bench.ids[0]).SerializeToString()
            )
        )
        product_tls = mesh.mesh_tls().services["product"]
        tls = (product_tls.cert_path, product_tls.key_path, mesh.mesh_tls().ca_path)
        with (
            EchoServer(payload, bench.state, tls) as echo,
            EchoServer(payload, bench.state) as plaintext_echo,
        ):
            first = -1 if profile_dir is not None else 0
            for repetition in range(first, repetitions):
                label = "profiling pass" if repetition < 0 else f"repetition {repetition + 1}"
                print(f"{label} (of {repetitions})", file=sys.stderr)
                bench.repetition = repetition
                steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
                    ("R1", lambda: bench.r1(echo, plaintext_echo, body)),
                    ("R2", bench.r2),
                    ("R3", lambda: bench.r3(seconds)),
                    ("R4", bench.r4),
                    ("R4/native", lambda: asyncio.to_thread(bench.r4_native, body)),
                    ("R5", bench.r5),
                    ("R6", bench.r6),
                    ("search", bench.search),
                ]
                for name, step in steps:
                    if only and name.split("/")[0] not in only:
                        continue
                    try:
                        await step()
                    except (grpc.aio.AioRpcError, aiohttp.ClientError, RuntimeError) as error:
                        # One failed scenario is reported; the others still run.
                        bench.notes.append(f"{name}, {label}: {error!r}")
                        print(f"{name} failed: {error!r}", file=sys.stderr)
                if repetition < 0:
                    # The profiler slowed that pass: its figures are not kept.
                    bench.ratios.clear()
                    for name in ("search_text", "search_facets", "R6_burst_failures"):
                        bench.figures.pop(name, None)
    finally:
        await bench.close()
    return bench


def mesh_options(state_dir: Path) -> MeshOptions:
    """A mesh without payment latency or rate limits: one client drives all the load."""
    return MeshOptions(
        state_dir=state_dir,
        edge_port=free_port(),
        payment_latency_ms=0,
        rate_limit_burst=100_000,
        rate_limit_per_second=100_000,
        # Production's sampling (k8s/base and the k8s edge): a tenth of the traces, a
        # tenth of the edge's successful requests in its access log, every error.
        trace_sample_ratio=0.1,
        edge=EdgeSettings(
            client_rate_limit_burst=100_000,
            client_rate_limit_per_second=100_000,
            user_rate_limit_burst=100_000,
            user_rate_limit_per_second=100_000,
            access_log_success_percent=10,
        ),
    )
