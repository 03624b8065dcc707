"""Update masks (AIP-134): the paths a request may change, checked against what is writable."""

from __future__ import annotations

from collections.abc import Iterable

from services.common.errors import FieldViolation, InvalidArgument


def unique_paths(paths: Iterable[str]) -> tuple[str, ...]:
    """The mask's paths stripped of blanks around them, each once, in the order sent."""
    return tuple(dict.fromkeys(path.strip() for path in paths))


def mask_paths(
    paths: Iterable[str], allowed: frozenset[str], *, field: str = "update_mask"
) -> frozenset[str]:
    """The paths of an update mask, `*` meaning every writable one; refuses anything else.

    Raises:
        InvalidArgument: The mask is empty, mixes `*` with paths, or names an unwritable path.
    """
    wanted = tuple(paths)
    if not wanted:
        raise InvalidArgument([FieldViolation(field, "is required")])
    if "*" in wanted:
        if len(wanted) > 1:
            raise InvalidArgument([FieldViolation(field, "'*' must be the only path")])
        return allowed
    unknown = sorted(set(wanted) - allowed)
    if unknown:
        raise InvalidArgument(
            [
                FieldViolation(
                    field,
                    f"cannot update {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}",
                )
            ]
        )
    return frozenset(wanted)
