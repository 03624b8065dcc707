"""`nox -s up`: run the whole mesh locally until Ctrl-C."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from services.devmesh.mesh import Mesh, options_from_environment, print_summary
from services.devmesh.processes import REPO_ROOT


def main() -> int:
    """Start the mesh with options from the environment and wait for Ctrl-C or SIGTERM."""
    state_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO_ROOT / ".mesh"
    state_dir.mkdir(parents=True, exist_ok=True)
    state_dir.chmod(0o755)  # the unprivileged postgres user must reach its data folder
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    with Mesh(options_from_environment(state_dir)) as mesh:
        print_summary(mesh)
        stop.wait()
        print("stopping the mesh...", flush=True)
    print("stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
