"""Backing servers a test owns alone, so it may stall, kill and restart them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from services.devmesh import processes
from services.devmesh.ports import StartupError


def _descendants(root: int) -> list[int]:
    """The pids of every live descendant of `root`, read from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # The command name may hold spaces; the fields after its ')' are fixed.
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
    found: list[int] = []
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found.extend(children)
        frontier.extend(children)
    return found


def _state_dir() -> Path:
    state_dir = Path(tempfile.mkdtemp(prefix="marketplace-outage-"))
    state_dir.chmod(0o755)  # the unprivileged postgres user must reach its data folder
    return state_dir


@dataclass
class OwnedServer:
    """One server process on a fixed port and data folder, which survive its restarts."""

    start: Callable[[Path, int], processes.ManagedProcess]
    state_dir: Path = field(default_factory=_state_dir)
    port: int = field(default_factory=processes.free_port)
    process: processes.ManagedProcess | None = None

    def __post_init__(self) -> None:
        self.process = self._started()

    def _started(self, attempts: int = 3) -> processes.ManagedProcess:
        # The test process runs gRPC threads, and a child forked beside them can die before
        # it execs the server (seen once on a loaded CI machine: the log held only gRPC's
        # fork warning). The data folder survives, so starting again is safe.
        for attempt in range(1, attempts + 1):
            try:
                return self.start(self.state_dir, self.port)
            except StartupError:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def _group(self, sig: signal.Signals) -> None:
        # The server and every descendant: PostgreSQL serves each connection from a child,
        # which leaves the server's process group (setsid), so killpg would miss it.
        assert self.process is not None and self.process.process is not None
        for pid in [self.process.process.pid, *_descendants(self.process.process.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def stall(self) -> None:
        """Freeze every process of the server: connections stay open, nothing answers."""
        self._group(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a stalled server go on."""
        self._group(signal.SIGCONT)

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Stop the server the hard way (PostgreSQL: SIGQUIT is its immediate shutdown)."""
        assert self.process is not None and self.process.process is not None
        self.process.process.send_signal(sig)
        try:
            self.process.process.wait(20)
        except subprocess.TimeoutExpired:
            self._group(signal.SIGKILL)
            self.process.process.wait()

    def restart(self) -> None:
        """Start the server again on its port and data."""
        self.process = self._started()

    def stop(self) -> None:
        """Stop the server for good (resuming it first, should it be stalled)."""
        if self.process is not None and self.process.alive:
            self.resume()
            self.process.stop()


def owned_postgres() -> tuple[OwnedServer, str]:
    """A PostgreSQL of the test's own, and its DSN without a database name."""
    dsn: list[str] = []

    def start(state_dir: Path, port: int) -> processes.ManagedProcess:
        process, url = processes.start_postgres(state_dir, port)
        dsn.append(url)
        return process

    return OwnedServer(start), dsn[0]


def owned_mongo() -> tuple[OwnedServer, str]:
    """A MongoDB wire server of the test's own, and its URL."""

    def start(state_dir: Path, port: int) -> processes.ManagedProcess:
        (state_dir / "mongo.pid").unlink(missing_ok=True)  # left behind by a killed server
        return processes.start_mongo(state_dir, port)

    server = OwnedServer(start)
    return server, f"mongodb://127.0.0.1:{server.port}"
