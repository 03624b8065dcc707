"""The ratios' bookkeeping and the JSON document and table of the results."""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

from services.devmesh.bench.loads import Load

if TYPE_CHECKING:
    from services.devmesh.bench.scenarios import Bench


@dataclass
class Ratio:
    """A numerator and a denominator per repetition; the figures are their medians."""

    key: str
    meaning: str
    unit: str
    lower_is_better: bool = False
    numerators: list[float] = field(default_factory=list)
    denominators: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)

    def add(self, numerator: float, denominator: float, *loads: Load) -> None:
        """Record one repetition."""
        self.numerators.append(numerator)
        self.denominators.append(denominator)
        for load in loads:
            if load.client_cpu_share is not None:
                self.client_cpu.append(load.client_cpu_share)
            if load.failures:
                self.notes.append(f"{load.failures} of {load.calls} calls failed in one run")

    @property
    def values(self) -> list[float]:
        """The ratio of each repetition."""
        return [
            n / d if d else 0.0 for n, d in zip(self.numerators, self.denominators, strict=True)
        ]

    def summary(self) -> dict[str, float]:
        """{"value", "numerator", "denominator"}: medians over the repetitions."""
        return {
            "value": round(statistics.median(self.values), 3),
            "numerator": round(statistics.median(self.numerators), 3),
            "denominator": round(statistics.median(self.denominators), 3),
        }


def results(bench: Bench, replicas: dict[str, Any]) -> dict[str, Any]:
    """The JSON document of .bench/latest.json."""
    measured = {key: ratio for key, ratio in sorted(bench.ratios.items()) if ratio.values}
    document: dict[str, Any] = {key: ratio.summary() for key, ratio in measured.items()}
    details: dict[str, Any] = {}
    for key, ratio in measured.items():
        details[key] = {
            "meaning": ratio.meaning,
            "unit": ratio.unit,
            "lower_is_better": ratio.lower_is_better,
            "values": [round(v, 3) for v in ratio.values],
            "client_cpu_cores": round(statistics.median(ratio.client_cpu), 2)
            if ratio.client_cpu
            else None,
            "notes": ratio.notes,
        }
    figures = dict(bench.figures)
    for name in ("search_text", "search_facets"):
        if name in figures:
            entry = figures[name]
            figures[name] = {
                "calls_per_s": round(statistics.median(entry["rates"]), 1),
                "p99_ms": round(statistics.median(entry["p99_ms"]), 2),
            }
    document["details"] = details
    document["figures"] = figures
    document["replicas"] = replicas
    document["notes"] = bench.notes
    document["meta"] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "concurrency": bench.concurrency,
        "calls": bench.calls,
        "repetitions": max((len(r.values) for r in bench.ratios.values()), default=0),
        "h2load": shutil.which("h2load") is not None,
        "wrk": shutil.which("wrk") is not None,
    }
    return document


def write_results(document: dict[str, Any], path: Path) -> None:
    """Write the document as JSON, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")


def table(document: dict[str, Any]) -> str:
    """The ratios as a Markdown table."""
    lines = [
        "| ratio | value | numerator | denominator | unit | client CPU (cores) | what it compares |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, detail in document["details"].items():
        figures = document[key]
        cpu = detail["client_cpu_cores"]
        lines.append(
            f"| {key} | {figures['value']:.2f} | {figures['numerator']:.1f} "
            f"| {figures['denominator']:.1f} | {detail['unit']} "
            f"| {'' if cpu is None else cpu} | {detail['meaning']} |"
        )
    return "\n".join(lines)
