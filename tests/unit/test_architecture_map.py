"""docs/ARCHITECTURE.md is the map a newcomer follows: every file and symbol it names exists.

The traced RPCs name a file and the function or method in it (`services/x/y.py`
`Class.method`); a rename or a move that forgets the map fails here, not in a reader's hands.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAP = ROOT / "docs" / "ARCHITECTURE.md"
TEXT = MAP.read_text()

# A backticked repository path: `services/order/app.py`, `tests/fakes/`, `k8s/base/...`.
PATH = re.compile(r"`((?:services|tests|docs|proto|envoy|k8s|clients|examples)/[^`\s*{}<>]+)`")
# A file followed by the symbol it defines: `services/x/y.py` `Name` or `Name.attr`.
SYMBOL = re.compile(r"`(services/[^`\s]+\.py)`\s+`([A-Za-z_][\w.]*)`")


def defined_names(path: Path) -> set[str]:
    """Top-level names and `Class.member` names a module defines."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ClassDef):
            names.add(node.name)
            for member in node.body:
                if isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    names.add(f"{node.name}.{member.name}")
                elif isinstance(member, ast.AnnAssign) and isinstance(member.target, ast.Name):
                    names.add(f"{node.name}.{member.target.id}")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def test_the_map_names_files() -> None:
    assert len(set(PATH.findall(TEXT))) >= 30
    assert len(SYMBOL.findall(TEXT)) >= 9  # three steps of one RPC per service at least


@pytest.mark.parametrize("path", sorted(set(PATH.findall(TEXT))))
def test_every_path_the_map_names_exists(path: str) -> None:
    assert (ROOT / path.rstrip("/")).exists(), f"ARCHITECTURE.md names {path}, which is gone"


@pytest.mark.parametrize(("path", "symbol"), sorted(set(SYMBOL.findall(TEXT))))
def test_every_traced_symbol_is_defined_where_the_map_says(path: str, symbol: str) -> None:
    assert symbol in defined_names(ROOT / path), f"{path} defines no {symbol}"
