"""Keep the dev mesh's processes running as a cluster would: restart with backoff, logged."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.devmesh.processes import ManagedProcess


@dataclass(frozen=True)
class Backoff:
    """How long to wait before the next restart of a process that keeps exiting.

    The delay doubles from `initial` up to `maximum` with each exit in a row; a process
    that stayed up for `stable_after` seconds starts again from `initial`, as a
    Kubernetes CrashLoopBackOff does.
    """

    initial: float = 0.5
    maximum: float = 30.0
    stable_after: float = 30.0

    def delay(self, failures: int) -> float:
        """The wait before restart number `failures + 1` of a run of exits."""
        return float(min(self.maximum, self.initial * 2**failures))


@dataclass
class _Watch:
    process: ManagedProcess
    failures: int = 0  # exits in a row without staying up `stable_after`
    restart_at: float = 0.0
    ready_by: float = 0.0


class Supervisor:
    """A background thread that restarts every watched process that exits unasked.

    A process exits "unasked" when it dies while `desired` is set: killed, crashed or
    shut down by someone else. `ManagedProcess.stop()` clears `desired` first, so neither
    the mesh's shutdown nor a test's deliberate stop is ever undone. Each exit and restart
    is one JSON line on stderr and in `log_path`; `on_change` runs after every change of
    state, so the mesh can rewrite `mesh.json`.
    """

    def __init__(
        self,
        log_path: Path,
        on_change: Callable[[], None] = lambda: None,
        *,
        backoff: Backoff | None = None,
        ready_timeout: float = 60.0,
        interval: float = 0.2,
    ) -> None:
        self._log_path = log_path
        self._on_change = on_change
        self._backoff = backoff or Backoff()
        self._ready_timeout = ready_timeout
        self._interval = interval
        self._watches: dict[str, _Watch] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, process: ManagedProcess) -> None:
        """Supervise `process`, replacing any earlier process of the same name."""
        with self._lock:
            self._watches[process.name] = _Watch(process)

    def start(self) -> None:
        """Start the supervising thread."""
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="mesh-supervisor", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop supervising (before the mesh stops its processes); restarts in flight finish."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    @contextlib.contextmanager
    def held(self, name: str) -> Iterator[ManagedProcess]:
        """Leave `name` dead while the block runs if it exits; restart it after the block."""
        with self._lock:
            process = self._watches[name].process
            process.held = True
        try:
            yield process
        finally:
            with self._lock:
                process.held = False

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            with self._lock:
                changed = [self._tick(w, time.monotonic()) for w in self._watches.values()]
            if any(changed):
                self._on_change()

    def _tick(self, watch: _Watch, now: float) -> bool:
        """Advance one process's state machine; whether anything changed."""
        process = watch.process
        if not process.desired or self._stopping.is_set():
            return False
        exited = process.process is not None and process.process.poll() is not None
        if process.state in ("running", "starting") and exited:
            return self._exited(watch, now)
        if process.state == "held" and not process.held:
            process.state, watch.restart_at = "backoff", now
            return True
        if process.state == "backoff" and now >= watch.restart_at:
            return self._restart(watch, now)
        if process.state == "starting" and not exited:
            if watch.ready_by < process.started_at:
                # Started by someone else (the mesh restarting a replica): time it from there.
                watch.ready_by = process.started_at + self._ready_timeout
            return self._check_ready(watch, now)
        return False

    def _exited(self, watch: _Watch, now: float) -> bool:
        process = watch.process
        assert process.process is not None
        uptime = now - process.started_at
        if uptime >= self._backoff.stable_after:
            watch.failures = 0
        # What is left of the group (a killed postmaster's backends) would hold the port.
        process.kill_group()
        delay = self._backoff.delay(watch.failures)
        watch.failures += 1
        watch.restart_at = now + delay
        process.state = "held" if process.held else "backoff"
        self._log(
            "process_exited",
            process=process.name,
            pid=process.pid,
            exit_code=process.process.returncode,
            uptime_s=round(uptime, 1),
            restart_in_s=None if process.held else delay,
            restarts=process.restarts,
        )
        return True

    def _restart(self, watch: _Watch, now: float) -> bool:
        process = watch.process
        process.restarts += 1
        try:
            if process.before_restart is not None:
                process.before_restart()
            process.start()
        except OSError as error:
            delay = self._backoff.delay(watch.failures)
            watch.failures += 1
            watch.restart_at = now + delay
            self._log("process_restart_failed", process=process.name, error=str(error))
            return True
        watch.ready_by = now + self._ready_timeout
        self._log(
            "process_restarted",
            process=process.name,
            pid=process.pid,
            restarts=process.restarts,
            ports=process.ports,
        )
        return True

    def _check_ready(self, watch: _Watch, now: float) -> bool:
        process = watch.process
        try:
            ready = process.ready is None or process.ready()
        except Exception:  # a probe that fails means "not ready yet", whatever it raised
            ready = False
        if ready:
            process.state = "running"
            self._log("process_ready", process=process.name, pid=process.pid)
            return True
        if now > watch.ready_by:
            # Counted as an exit on the next tick, with its backoff.
            self._log("process_not_ready", process=process.name, pid=process.pid)
            process.kill_group()
        return False

    def _log(self, event: str, **fields: Any) -> None:
        line = json.dumps(
            {"time": datetime.now(UTC).isoformat(), "logger": "supervisor", "event": event} | fields
        )
        print(line, file=sys.stderr, flush=True)
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._log_path.open("a") as log:
            log.write(line + "\n")
