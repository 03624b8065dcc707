"""The replica proof's fixtures: one supervised mesh with two instances of every service."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.bench import RESULTS, Bench, MeshHolder, summary_table


@pytest.fixture(scope="package")
def replica_holder() -> Iterator[MeshHolder]:
    """Two replicas of every service behind the edge, stopped after the last case."""
    holder = MeshHolder(replicas=2)
    try:
        yield holder
    finally:
        holder.close()


@pytest.fixture()
def bench(replica_holder: MeshHolder) -> Bench:
    """The mesh, healthy again after the previous case (or rebuilt when it cannot be)."""
    mesh, tap = replica_holder.healthy()
    return Bench(mesh, tap)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print what each case measured."""
    if RESULTS:
        terminalreporter.section("replicas: what survives what")
        terminalreporter.write_line(summary_table())
