"""Real backing servers for tests: one PostgreSQL, Valkey (Redis) and MongoDB wire server per run."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from services.devmesh import processes


@dataclass(frozen=True)
class Backends:
    """Where the test run's servers listen."""

    state_dir: Path
    postgres_dsn: str  # without a database name
    redis_url: str
    mongo_url: str

    def database_url(self, prefix: str, migrations: Path) -> str:
        """A new, migrated PostgreSQL database, so tests never share rows by accident."""
        url = f"{self.postgres_dsn}/{prefix}_{uuid.uuid4().hex[:12]}?sslmode=disable"
        processes.migrate(url, migrations)
        return url


@contextmanager
def started_backends() -> Iterator[Backends]:
    """Start every backing server on free ports; MARKETPLACE_TEST_MONGO_URL uses a real MongoDB."""
    state_dir = Path(tempfile.mkdtemp(prefix="marketplace-test-"))
    state_dir.chmod(0o755)  # the unprivileged postgres user must reach its data folder
    started: list[processes.ManagedProcess] = []
    try:
        postgres, dsn = processes.start_postgres(state_dir, processes.free_port())
        started.append(postgres)
        redis_port = processes.free_port()
        started.append(processes.start_redis(state_dir, redis_port))
        mongo_url = os.environ.get("MARKETPLACE_TEST_MONGO_URL", "")
        if not mongo_url:
            mongo_port = processes.free_port()
            started.append(processes.start_mongo(state_dir, mongo_port))
            mongo_url = f"mongodb://127.0.0.1:{mongo_port}"
        yield Backends(state_dir, dsn, f"redis://127.0.0.1:{redis_port}/0", mongo_url)
    finally:
        for process in reversed(started):
            process.stop()


@contextmanager
def started_etcd() -> Iterator[str]:
    """A real one-member etcd (the service registry) on a free port; yields its client URL."""
    state_dir = Path(tempfile.mkdtemp(prefix="marketplace-etcd-"))
    port = processes.free_port()
    etcd = processes.start_etcd(state_dir, port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        etcd.stop()
