"""`nox -s up`: run the whole mesh locally until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path
from types import FrameType

from services.devmesh.mesh import Mesh, options_from_environment, print_summary
from services.devmesh.processes import REPO_ROOT


def main() -> int:
    """Start the mesh with options from the environment and wait for Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(prog="nox -s up --", description=__doc__)
    parser.add_argument("state_dir", nargs="?", type=Path, default=REPO_ROOT / ".mesh")
    parser.add_argument(
        "--replicas",
        type=int,
        default=None,
        help="instances of every service (default: MARKETPLACE_REPLICAS, else 1)",
    )
    args = parser.parse_args()
    state_dir: Path = args.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    state_dir.chmod(0o755)  # the unprivileged postgres user must reach its data folder
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    options = options_from_environment(state_dir)
    if args.replicas is not None:
        options = replace(options, replicas=max(1, args.replicas))
    with Mesh(options) as mesh:
        print_summary(mesh)
        stop.wait()
        print("stopping the mesh...", flush=True)
    print("stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
