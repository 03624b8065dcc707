"""Page sizes and opaque, tamper-evident page tokens for List and Search methods (AIP-158).

A token is the cursor position as compact JSON, base64url-encoded, followed by an HMAC of
it: the position stays opaque to clients in practice and cannot be forged, so a crafted
offset or sort key never reaches a database query. The key is derived from the mesh's
internal secret when the server starts (`configure_page_tokens`), so every replica of a
service accepts the tokens of the others; until then a random per-process key is used.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import secrets
from typing import Any

from services.common.errors import FieldViolation, InvalidArgument

MAX_TOKEN_LENGTH = 2048
# Every number a cursor holds (offsets, prices, counts, epoch times) fits in 2**53: JSON
# numbers beyond it lose precision, and databases refuse integers beyond 2**63.
MAX_NUMBER = 2**53
_SIGNATURE_BYTES = 16
_KEY_LABEL = b"marketplace page tokens v1"

_keys = {"current": hmac.new(secrets.token_bytes(32), _KEY_LABEL, hashlib.sha256).digest()}


def configure_page_tokens(secret: str) -> None:
    """Sign page tokens with a key derived from `secret` (the chassis calls this at start)."""
    _keys["current"] = hmac.new(secret.encode(), _KEY_LABEL, hashlib.sha256).digest()


def clamp_page_size(page_size: int, *, default: int, maximum: int) -> int:
    """0 means the default, more than the maximum is clamped, negative is refused."""
    if page_size < 0:
        raise InvalidArgument([FieldViolation("page_size", "must not be negative")])
    if page_size == 0:
        return default
    return min(page_size, maximum)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode())


def _sign(payload: str) -> str:
    digest = hmac.new(_keys["current"], payload.encode(), hashlib.sha256).digest()
    return _b64(digest[:_SIGNATURE_BYTES])


def encode_page_token(position: dict[str, Any]) -> str:
    """Wrap a cursor position into an opaque, signed token."""
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    payload = _b64(raw)
    return f"{payload}.{_sign(payload)}"


def _bounded(value: Any) -> bool:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    if isinstance(value, int):
        return -MAX_NUMBER <= value <= MAX_NUMBER
    if isinstance(value, float):
        return math.isfinite(value) and -MAX_NUMBER <= value <= MAX_NUMBER
    if isinstance(value, list):
        return all(_bounded(item) for item in value)
    if isinstance(value, dict):
        return all(_bounded(item) for item in value.values())
    return False


def _bad_token() -> InvalidArgument:
    return InvalidArgument([FieldViolation("page_token", "is not a token this API issued")])


def decode_page_token(token: str) -> dict[str, Any] | None:
    """Unwrap a token from encode_page_token; an empty token means the first page.

    Raises InvalidArgument (field page_token) for anything this API did not issue: a wrong
    signature, a garbled payload or numbers out of range.
    """
    if not token:
        return None
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        raise _bad_token()
    payload, signature = token.split(".")
    if not hmac.compare_digest(signature.encode(), _sign(payload).encode()):
        raise _bad_token()
    try:
        position = json.loads(_unb64(payload))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        position = None
    if not isinstance(position, dict) or not _bounded(position):
        raise _bad_token()
    return position
