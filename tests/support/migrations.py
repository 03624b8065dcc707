"""Databases migrated up to a point, for tests of what a later migration does to old rows."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

from services.devmesh import processes
from tests.support.servers import Backends


def database_before(backends: Backends, prefix: str, migrations: Path, migration: str) -> str:
    """A new database migrated with every migration but the one whose name holds `migration`.

    Apply the rest later with `processes.migrate(url, migrations)`.
    """
    url = f"{backends.postgres_dsn}/{prefix}_{uuid.uuid4().hex[:12]}?sslmode=disable"
    earlier = Path(tempfile.mkdtemp(prefix=f"{prefix}-migrations-"))
    try:
        for path in sorted(migrations.glob("*.sql")):
            if migration not in path.name:
                shutil.copy(path, earlier / path.name)
        processes.migrate(url, earlier)
    finally:
        shutil.rmtree(earlier)
    return url
