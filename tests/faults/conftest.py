"""The fault suite's fixtures: one supervised mesh, a healthy bench per case, the summary."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.bench import RESULTS, Bench, MeshHolder, summary_table


@pytest.fixture(scope="package")
def mesh_holder() -> Iterator[MeshHolder]:
    """The supervised mesh every case strikes, stopped after the last case."""
    holder = MeshHolder()
    try:
        yield holder
    finally:
        holder.close()


@pytest.fixture()
def bench(mesh_holder: MeshHolder) -> Bench:
    """The mesh, healthy again after the previous case (or rebuilt when it cannot be)."""
    mesh, tap = mesh_holder.healthy()
    return Bench(mesh, tap)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print what each fault case measured, for the README's table."""
    if RESULTS:
        terminalreporter.section("what survives what")
        terminalreporter.write_line(summary_table())
