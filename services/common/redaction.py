"""Masks secrets in log events: by the name of the field, and by how token values look."""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any

REDACTED = "[REDACTED]"

# A field whose name contains one of these holds a secret, whatever its value looks like:
# passwords, access/refresh/reset/verification/payment tokens, the mesh's internal secret,
# Authorization headers, cookies, card data and data-encryption keyrings.
_SECRET_NAME_PARTS = (
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "cookie",
    "card",
    "cvc",
    "cvv",
    "api_key",
    "apikey",
    "credential",
    "private_key",
    # The KEK keyrings of encryption at rest (USER_DATA_KEK, ORDER_DATA_KEK); key ids
    # (kek_id, dek_id) are not secret and stay readable.
    "data_kek",
)

# Values that are secrets whatever field carries them: JWTs (three base64url parts, the
# header always starting with `{"` = `eyJ`), bearer credentials and payment card tokens.
_VALUE_PATTERNS = (
    re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),
    re.compile(r"(?i)\bbearer\s+[^\s\"',;]+"),
    re.compile(r"\btok_[A-Za-z0-9_]+"),
)
# `password: "x"`, `password='x'`, `"refresh_token": "x"`, `token=x` inside free text such
# as an exception message or the repr of a request.
_ASSIGNMENT = re.compile(
    r"(?i)(\b[\w-]*(?:" + "|".join(_SECRET_NAME_PARTS) + r")[\w-]*\b[\"']?\s*[:=]\s*)"
    r"(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[^\s,;)}\]]+)"
)


def is_secret_name(name: str) -> bool:
    """Whether a field of this name holds a secret (compared case- and separator-blind)."""
    normalised = name.lower().replace("-", "_")
    return any(part in normalised for part in _SECRET_NAME_PARTS)


def redact_text(text: str) -> str:
    """`text` with token-looking values and `secret_name=value` assignments masked."""
    # Token shapes first: `Authorization=Bearer x` must lose the credential, not the scheme.
    for pattern in _VALUE_PATTERNS:
        text = pattern.sub(REDACTED, text)
    return _ASSIGNMENT.sub(lambda m: m.group(1) + REDACTED, text)


def redact_value(value: Any) -> Any:
    """A copy of `value` with secrets masked, walking mappings and sequences."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bytes | bytearray):
        return redact_text(bytes(value).decode("utf-8", "replace"))
    if isinstance(value, Mapping):
        return {
            key: (
                REDACTED
                if isinstance(key, str) and is_secret_name(key) and _maskable(item)
                else redact_value(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(item) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    if hasattr(value, "DESCRIPTOR") and hasattr(value, "ListFields"):
        # A protobuf message is never logged whole: requests carry passwords and tokens.
        return f"<{type(value).__name__}>"
    return redact_text(str(value))


def _maskable(value: Any) -> bool:
    # Counts and flags under a secret-sounding name (`tokens_revoked=3`) say nothing secret.
    return not isinstance(value, bool | int | float) and value is not None


def redact_event(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: mask secret fields and token-looking values in the event."""
    for key, value in list(event_dict.items()):
        if is_secret_name(key) and _maskable(value):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = redact_value(value)
    return event_dict
