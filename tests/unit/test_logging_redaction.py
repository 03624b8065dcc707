"""Log lines never carry secrets: no frame locals in tracebacks, secret fields and tokens masked."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest
import structlog

from services.common.logging import configure_logging
from services.common.redaction import REDACTED, redact_text


@pytest.fixture
def configured() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def canary() -> str:
    return f"canary{uuid.uuid4().hex}"


def fail_with_a_password_in_scope(password: str) -> None:
    request = {"email": "ada\x00@example.org", "password": password}
    raise ValueError(f"cannot look up {request['email']!r}")


def test_a_traceback_carries_no_frame_locals(
    configured: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("test")
    secret = canary()
    try:
        fail_with_a_password_in_scope(secret)
    except ValueError:
        structlog.get_logger("t").exception("rpc_failed")
    err = capsys.readouterr().err
    assert "rpc_failed" in err and "ValueError" in err
    assert "fail_with_a_password_in_scope" in err  # the frames stay, for debugging
    assert secret not in err


def test_secret_fields_and_token_values_are_masked(
    configured: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("test")
    values = {name: canary() for name in ("pw", "bearer", "refresh", "card", "free", "nested")}
    jwt_like = f"eyJhbGciOiJFZERTQSJ9.{canary()}.c2lnbmF0dXJl"
    structlog.get_logger("t").info(
        "attempt",
        password=values["pw"],
        headers={"authorization": f"Bearer {values['bearer']}", "x-request-id": "r1"},
        refresh_token=values["refresh"],
        payment_method_token=values["card"],
        note=f"sent token={values['free']} with {jwt_like}",
        context=[{"new_password": values["nested"]}],
        tokens_revoked=3,
    )
    logging.getLogger("grpc").error("auth header was Bearer %s", values["bearer"])
    err = capsys.readouterr().err
    for value in [*values.values(), jwt_like]:
        assert value not in err
    assert REDACTED in err and '"tokens_revoked": 3' in err and "r1" in err


def test_redact_text_masks_assignments_jwts_and_card_tokens() -> None:
    text = 'password: "hunter2 x" token=abc123, Authorization=Bearer xyz tok_visa eyJa1b2.c3d4e.f5'
    masked = redact_text(text)
    for secret in ("hunter2", "abc123", "xyz", "tok_visa", "eyJa1b2"):
        assert secret not in masked
