"""`python -m services.devmesh.bench` (`nox -s bench`): run the benchmark, print the table."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from services.devmesh.bench.native import hottest
from services.devmesh.bench.ratios import results, table, write_results
from services.devmesh.bench.runner import measure, measure_replicas, mesh_options
from services.devmesh.mesh import Mesh
from services.devmesh.processes import REPO_ROOT

REPETITIONS = 3


def main(argv: Sequence[str] | None = None) -> int:
    """Start a mesh, measure every ratio, write .bench/latest.json and print the table."""
    parser = argparse.ArgumentParser(prog="nox -s bench --")
    parser.add_argument("--calls", type=int, default=2000, help="calls per read loop")
    parser.add_argument("--repetitions", type=int, default=REPETITIONS)
    parser.add_argument("--seconds", type=int, default=5, help="length of each pgbench run")
    parser.add_argument(
        "--no-replicas", action="store_true", help="skip the 1 vs 2 replicas figure"
    )
    parser.add_argument("--output", type=Path, default=REPO_ROOT / ".bench" / "latest.json")
    parser.add_argument("--only", help="comma-separated scenarios, e.g. R5,R6,search")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="first a pass under py-spy, not measured, its profiles in DIR (needs ptrace)",
    )
    args = parser.parse_args(argv)
    state_dir = Path(tempfile.mkdtemp(prefix="marketplace-bench-"))
    state_dir.chmod(0o755)
    options = mesh_options(state_dir)
    with Mesh(options) as mesh:
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
        only = frozenset(args.only.split(",")) if args.only else frozenset()
        bench = asyncio.run(
            measure(mesh, args.calls, args.repetitions, args.seconds, args.profile, only)
        )
    replicas: dict[str, Any] = {"skipped": "--no-replicas"}
    if not args.no_replicas:
        replicas = asyncio.run(measure_replicas(mesh_options(state_dir / "replicas"), args.calls))
    document = results(bench, replicas)
    write_results(document, args.output)
    print(table(document))
    print(json.dumps({k: document[k] for k in ("figures", "replicas", "meta")}, indent=2))
    for path in document["figures"].get("profiles", []):
        if Path(path).exists():
            print(f"\n{path}: hottest frames (inclusive % of samples)")
            for frame, share in hottest(Path(path)):
                print(f"  {share:5.1f}  {frame}")
    print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
