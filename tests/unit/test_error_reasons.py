"""Every ErrorInfo reason the code can answer is a value of its package's ErrorReason enum."""

from __future__ import annotations

import ast
import re
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
from marketplace.common.v1 import error_reason_pb2 as common_pb2
from marketplace.order.v1 import error_reason_pb2 as order_pb2
from marketplace.product.v1 import error_reason_pb2 as product_pb2
from marketplace.user.v1 import error_reason_pb2 as user_pb2

from services.common import errors
from services.common.reasons import ErrorReason as ChassisReason
from services.order.domain.reasons import ErrorReason as OrderReason
from services.product.domain.reasons import ErrorReason as ProductReason
from services.user.domain.reasons import ErrorReason as UserReason

SERVICES = Path(__file__).resolve().parents[2] / "services"
ENUMS: list[tuple[type[StrEnum], Any]] = [
    (ChassisReason, common_pb2.ErrorReason),
    (UserReason, user_pb2.ErrorReason),
    (ProductReason, product_pb2.ErrorReason),
    (OrderReason, order_pb2.ErrorReason),
]
_UPPER_SNAKE = re.compile(r"^[A-Z][A-Z0-9_]+$")


CHASSIS = {v.name for v in common_pb2.ErrorReason.DESCRIPTOR.values if v.number != 0}


@pytest.mark.parametrize(
    ("generated", "contract"), ENUMS, ids=lambda e: getattr(e, "__module__", "")
)
def test_the_pure_enums_are_the_contracts_enums_without_the_prefix(
    generated: type[StrEnum], contract: Any
) -> None:
    """The chassis enum holds the common reasons; a service's holds only its own."""
    own = generated is not ChassisReason
    names = [
        v.name.removeprefix("ERROR_REASON_")
        for v in contract.DESCRIPTOR.values
        if v.number != 0 and not (own and v.name in CHASSIS)
    ]
    assert [member.value for member in generated] == names
    assert all(member.name == member.value for member in generated)


def test_every_package_repeats_the_chassis_reasons_in_its_contract() -> None:
    """Clients of any one package see every reason its service can answer."""
    for contract in (user_pb2.ErrorReason, product_pb2.ErrorReason, order_pb2.ErrorReason):
        assert {v.name for v in contract.DESCRIPTOR.values} >= CHASSIS


def test_no_service_reason_shadows_a_chassis_reason() -> None:
    chassis = {member.value for member in ChassisReason}
    for enum in (UserReason, ProductReason, OrderReason):
        assert not chassis & {member.value for member in enum}


def test_every_domain_error_defaults_to_a_chassis_reason() -> None:
    kinds: list[type[errors.DomainError]] = [errors.DomainError, *_subclasses(errors.DomainError)]
    assert len(kinds) >= 10
    for kind in kinds:
        assert kind.default_reason in ChassisReason.__members__, kind.__name__
    assert errors.DEPENDENCY_UNAVAILABLE in ChassisReason.__members__


def _subclasses(kind: type[errors.DomainError]) -> list[type[errors.DomainError]]:
    found = []
    for sub in kind.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def _reason_literals(tree: ast.AST) -> list[tuple[int, str]]:
    """String constants where a reason goes: `reason=`, `default_reason =`, a comparison
    with a `reason`, the first argument of a rule violation."""
    found: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "reason":
            found.append(node.value)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            named = any(isinstance(t, ast.Name) and t.id.endswith("reason") for t in targets)
            if named and node.value is not None:
                found.append(node.value)
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(
                isinstance(s, ast.Attribute | ast.Name) and "reason" in ast.unparse(s)
                for s in sides
            ):
                for side in sides:
                    found += list(ast.walk(side))
        elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith("Violated"):
            found += node.args[:1]
    return [
        (n.lineno, n.value)
        for n in found
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and _UPPER_SNAKE.match(n.value)
    ]


def test_no_reason_is_written_as_a_string_literal() -> None:
    """Reasons are enum members, so a reason outside the contract fails type checks."""
    literals = [
        f"{path.relative_to(SERVICES)}:{line} {value}"
        for path in sorted(SERVICES.rglob("*.py"))
        if path.name != "reasons.py"
        for line, value in _reason_literals(ast.parse(path.read_text()))
    ]
    assert literals == []
