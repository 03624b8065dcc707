"""Generate the pure-Python ErrorReason enums of the services from the contract's enums."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from google.protobuf import descriptor_pb2

PREFIX = "ERROR_REASON_"
# The proto package whose ErrorReason every service repeats, and where each enum goes. The
# enums land beside the code that raises them (the chassis, each service's domain) because
# the domain may not import generated marketplace.* code: these modules import only enum.
COMMON_PACKAGE = "marketplace.common.v1"
TARGETS = {
    COMMON_PACKAGE: Path("services/common/reasons.py"),
    "marketplace.user.v1": Path("services/user/domain/reasons.py"),
    "marketplace.product.v1": Path("services/product/domain/reasons.py"),
    "marketplace.order.v1": Path("services/order/domain/reasons.py"),
}
_WIDTH = 96


def _comment(text: str) -> list[str]:
    return textwrap.wrap(
        " ".join(text.split()), width=_WIDTH, initial_indent="    # ", subsequent_indent="    # "
    )


def _enums(
    descriptor_set: Path,
) -> dict[str, tuple[str, descriptor_pb2.EnumDescriptorProto, dict[int, str]]]:
    """Each package's ErrorReason with its file name and the comments of its values."""
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes())
    found = {}
    for file in files.file:
        for index, enum in enumerate(file.enum_type):
            if enum.name != "ErrorReason" or file.package not in TARGETS:
                continue
            comments: dict[int, str] = {}
            for location in file.source_code_info.location:
                # Path [5, enum index, 2, value index]: a value of a top-level enum.
                if list(location.path[:2]) == [5, index] and len(location.path) == 4:
                    comments[location.path[3]] = location.leading_comments.strip()
            found[file.package] = (file.name, enum, comments)
    return found


def render(descriptor_set: Path) -> dict[Path, str]:
    """The text of every generated module, by its path relative to the repository root."""
    enums = _enums(descriptor_set)
    missing = sorted(set(TARGETS) - set(enums))
    if missing:
        raise SystemExit(f"no ErrorReason enum in {missing}")
    chassis = {value.name for value in enums[COMMON_PACKAGE][1].value}
    modules: dict[Path, str] = {}
    for package, (file_name, enum, comments) in sorted(enums.items()):
        names = {value.name for value in enum.value}
        if not chassis <= names:
            raise SystemExit(
                f"{package}.ErrorReason lacks chassis reasons {sorted(chassis - names)}"
            )
        lines = [
            f'"""Generated from proto/{file_name} by `nox -s gen`; do not edit."""',
            "",
            "from enum import StrEnum, unique",
            "",
            "",
            "@unique",
            "class ErrorReason(StrEnum):",
        ]
        summary = f'    """{package}.ErrorReason: the ErrorInfo.reason values, without the prefix.'
        own = package != COMMON_PACKAGE
        if own:
            # The chassis reasons every package repeats in its proto enum are written once,
            # in services.common.reasons; a service raises them from there.
            lines += [
                summary,
                "",
                "    The chassis reasons are in services.common.reasons.ErrorReason.",
                '    """',
            ]
        else:
            lines += [summary + '"""']
        for index, value in enumerate(enum.value):
            if value.number == 0:
                continue  # UNSPECIFIED is never sent
            if own and value.name in chassis:
                continue
            if not value.name.startswith(PREFIX):
                raise SystemExit(f"{package}.{value.name} does not start with {PREFIX}")
            reason = value.name.removeprefix(PREFIX)
            lines += ["", *_comment(comments.get(index, "")), f'    {reason} = "{reason}"']
        modules[TARGETS[package]] = "\n".join(lines) + "\n"
    return modules


def write(descriptor_set: Path, root: Path) -> None:
    """Write every generated module under `root`."""
    for path, text in render(descriptor_set).items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)


if __name__ == "__main__":
    write(Path(sys.argv[1]), Path(sys.argv[2]))
