"""The dev mesh's supervisor on real child processes: restart, backoff, stop, hold."""

from __future__ import annotations

import json
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from services.devmesh.mesh import Mesh, MeshOptions, ServiceEndpoint
from services.devmesh.processes import ManagedProcess, free_port
from services.devmesh.supervisor import Backoff, Supervisor

FAST = Backoff(initial=0.05, maximum=0.4, stable_after=1.0)


def _wait(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def _sleeper(tmp_path: Path, name: str = "sleeper") -> ManagedProcess:
    process = ManagedProcess(
        name, [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / f"{name}.log"
    )
    process.start().wait_ready()
    return process


def test_backoff_doubles_up_to_its_maximum() -> None:
    delays = [Backoff(initial=0.5, maximum=30).delay(n) for n in range(8)]
    assert delays == [0.5, 1, 2, 4, 8, 16, 30, 30]


def test_a_killed_process_is_restarted_and_each_step_logged(tmp_path: Path) -> None:
    changes: list[int] = []
    supervisor = Supervisor(
        tmp_path / "supervisor.log", lambda: changes.append(1), backoff=FAST, interval=0.02
    )
    process = _sleeper(tmp_path)
    supervisor.watch(process)
    supervisor.start()
    try:
        first = process.pid
        process.signal(signal.SIGKILL)
        _wait(lambda: process.restarts == 1 and process.state == "running")
        assert process.pid != first
        assert process.alive
    finally:
        supervisor.stop()
        process.stop()
    events = [json.loads(line) for line in (tmp_path / "supervisor.log").read_text().splitlines()]
    assert [e["event"] for e in events] == ["process_exited", "process_restarted", "process_ready"]
    assert events[0]["exit_code"] == -signal.SIGKILL
    assert events[1]["pid"] == process.pid
    assert changes


def test_a_crash_loop_backs_off_and_a_stop_is_never_undone(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path / "supervisor.log", backoff=FAST, interval=0.02)
    crasher = ManagedProcess(
        "crasher", [sys.executable, "-c", "raise SystemExit(3)"], tmp_path / "crasher.log"
    )
    crasher.start()
    supervisor.watch(crasher)
    supervisor.start()
    try:
        _wait(lambda: crasher.restarts >= 4)
        exits = [
            json.loads(line)
            for line in (tmp_path / "supervisor.log").read_text().splitlines()
            if '"process_exited"' in line
        ]
        waits = [e["restart_in_s"] for e in exits[:4]]
        assert waits == [0.05, 0.1, 0.2, 0.4]
        assert {e["exit_code"] for e in exits} == {3}
    finally:
        supervisor.stop()
        crasher.stop()
    sleeper = _sleeper(tmp_path)
    supervisor = Supervisor(tmp_path / "second.log", backoff=FAST, interval=0.02)
    supervisor.watch(sleeper)
    supervisor.start()
    try:
        sleeper.stop()  # asked for: the supervisor leaves it stopped
        time.sleep(0.3)
        assert sleeper.state == "stopped"
        assert sleeper.restarts == 0
        assert not sleeper.alive
    finally:
        supervisor.stop()


def test_a_held_process_stays_dead_until_released(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path / "supervisor.log", backoff=FAST, interval=0.02)
    process = _sleeper(tmp_path)
    supervisor.watch(process)
    supervisor.start()
    try:
        with supervisor.held("sleeper"):
            process.signal(signal.SIGKILL)
            _wait(lambda: process.state == "held")
            time.sleep(0.3)
            assert process.restarts == 0
        _wait(lambda: process.restarts == 1 and process.state == "running")
    finally:
        supervisor.stop()
        process.stop()


def test_a_restart_first_runs_the_process_hook(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path / "supervisor.log", backoff=FAST, interval=0.02)
    process = _sleeper(tmp_path)
    calls: list[int | None] = []
    process.before_restart = lambda: calls.append(process.pid)
    supervisor.watch(process)
    supervisor.start()
    try:
        assert not calls  # not before the first start
        first = process.pid
        process.signal(signal.SIGKILL)
        _wait(lambda: process.restarts == 1 and process.state == "running")
        assert calls == [first]  # before the new process existed
    finally:
        supervisor.stop()
        process.stop()


def test_a_dead_replica_whose_port_was_taken_restarts_on_new_ports(tmp_path: Path) -> None:
    mesh = Mesh(MeshOptions(state_dir=tmp_path))
    grpc_port, ops_port = free_port(), free_port()
    env = {"USER_GRPC_PORT": str(grpc_port), "USER_OPS_PORT": str(ops_port)}
    replica = ServiceEndpoint("user", grpc_port, ops_port, env, replica=1)
    replica.process = ManagedProcess("user-1", ["true"], tmp_path / "user-1.log", env=env)
    mesh._move_if_taken(replica)
    assert (replica.grpc_port, replica.ops_port) == (grpc_port, ops_port)  # free: kept
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", grpc_port))
        squatter.listen()
        mesh._move_if_taken(replica)
    assert replica.grpc_port not in (grpc_port, ops_port)
    assert replica.process.env["USER_GRPC_PORT"] == str(replica.grpc_port)
    assert replica.process.env["USER_OPS_PORT"] == str(replica.ops_port)
    assert replica.process.ports == {"grpc": replica.grpc_port, "ops": replica.ops_port}
