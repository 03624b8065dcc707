"""Page sizes and opaque page tokens for List and Search methods (AIP-158)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from services.common.errors import FieldViolation, InvalidArgument


def clamp_page_size(page_size: int, *, default: int, maximum: int) -> int:
    """0 means the default, more than the maximum is clamped, negative is refused."""
    if page_size < 0:
        raise InvalidArgument([FieldViolation("page_size", "must not be negative")])
    if page_size == 0:
        return default
    return min(page_size, maximum)


def encode_page_token(position: dict[str, Any]) -> str:
    """Wrap a cursor position into an opaque token."""
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str) -> dict[str, Any] | None:
    """Unwrap a token from encode_page_token; an empty token means the first page."""
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        position = None
    if not isinstance(position, dict):
        raise InvalidArgument([FieldViolation("page_token", "is not a token this API issued")])
    return position
