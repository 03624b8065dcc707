"""Verification, sessions, passwords and brute-force protection of the user service, over gRPC.

Mail goes through the real outbox and relay into a mailbox folder of .eml files, and the
tests read the tokens from there as a person would.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import jwt
import pytest
import pytest_asyncio
from marketplace.user.v1 import user_service_pb2

from services.user.domain.model import hash_token
from tests.support.failures import rpc_failure, violations_of
from tests.support.servers import Backends
from tests.support.tokens import bearer
from tests.support.user import (
    PASSWORD,
    UserService,
    new_user_request,
    running_user_service,
    unique,
)

NEW_PASSWORD = "a brand new passphrase"


@dataclass(frozen=True)
class Mail:
    to: str
    kind: str
    subject: str
    body: str

    @property
    def token(self) -> str:
        found = re.search(r"Token: (\S+)", self.body)
        assert found, self.body
        return found.group(1)


class Mailbox:
    """Reads the .eml files the service's mailbox sender writes."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def mails(self, to: str, kind: str | None = None) -> list[Mail]:
        found = []
        for path in sorted(self.folder.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            body = message.get_body()
            assert body is not None
            mail = Mail(
                to=str(message["To"]),
                kind=str(message["X-Marketplace-Kind"]),
                subject=str(message["Subject"]),
                body=body.get_content(),
            )
            if mail.to == to and (kind is None or mail.kind == kind):
                found.append(mail)
        return found

    async def wait_for(self, to: str, kind: str, count: int = 1) -> Mail:
        """The newest mail of this kind to `to`, once `count` of them arrived."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            mails = self.mails(to, kind)
            if len(mails) >= count:
                return mails[-1]
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {kind} mail to {to}; have {self.mails(to)}")


@dataclass
class Service:
    svc: UserService
    mailbox: Mailbox


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def service(backends: Backends) -> AsyncIterator[Service]:
    folder = Path(tempfile.mkdtemp(prefix="user-mailbox-"))
    async with running_user_service(
        backends,
        mailbox_dir=folder,
        email_relay_interval_seconds=0.05,
        login_slowdown_ms=1,
        login_slowdown_max_ms=5,
    ) as svc:
        yield Service(svc, Mailbox(folder))


async def signup(service: Service) -> user_service_pb2.CreateUserRequest:
    request = new_user_request()
    await service.svc.stub.CreateUser(request)
    return request


async def sign_in(
    service: Service, email_address: str, password: str = PASSWORD
) -> user_service_pb2.LoginResponse:
    return await service.svc.stub.Login(
        user_service_pb2.LoginRequest(email=email_address, password=password)
    )


async def refresh(service: Service, token: str) -> user_service_pb2.RefreshTokenResponse:
    return await service.svc.stub.RefreshToken(
        user_service_pb2.RefreshTokenRequest(refresh_token=token)
    )


async def refused(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    got = rpc_failure(caught)
    return got.code, got.reason


# --- Registration and email verification -------------------------------------------------


async def test_signup_mails_a_link_that_verifies_once(service: Service) -> None:
    request = await signup(service)
    mail = await service.mailbox.wait_for(request.email, "verify_email")
    assert "/verify-email?token=" in mail.body

    # The raw token is nowhere in the database, only its hash.
    stored = await service.svc.db.fetchval(
        "select count(*) from action_tokens where token_hash = $1", hash_token(mail.token)
    )
    raw = await service.svc.db.fetchval(
        "select count(*) from action_tokens where token_hash = $1", mail.token
    )
    assert (stored, raw) == (1, 0)

    verified = await service.svc.stub.VerifyEmail(
        user_service_pb2.VerifyEmailRequest(token=mail.token)
    )
    assert verified.user.email_verified
    assert verified.user.email == request.email

    assert await refused(
        service.svc.stub.VerifyEmail(user_service_pb2.VerifyEmailRequest(token=mail.token))
    ) == (grpc.StatusCode.INVALID_ARGUMENT, "TOKEN_INVALID")

    # After a refresh, the access token says the email is verified (selling and reviewing
    # need that claim).
    tokens = await sign_in(service, request.email)
    claims = jwt.decode(tokens.access_token, options={"verify_signature": False})
    assert claims["email_verified"] is True


async def test_expired_and_made_up_verification_tokens_are_refused(service: Service) -> None:
    request = await signup(service)
    mail = await service.mailbox.wait_for(request.email, "verify_email")
    await service.svc.db.execute(
        "update action_tokens set created_at = now() - interval '3 days', "
        "expires_at = now() - interval '1 second' where token_hash = $1",
        hash_token(mail.token),
    )
    for token in (mail.token, "made-up-token", "x" * 10_000):
        code, _ = await refused(
            service.svc.stub.VerifyEmail(user_service_pb2.VerifyEmailRequest(token=token))
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT
    tokens = await sign_in(service, request.email)
    me = await service.svc.stub.GetUser(
        user_service_pb2.GetUserRequest(user_id="me"), metadata=bearer(tokens.access_token)
    )
    assert not me.email_verified


async def test_resend_replaces_the_link_and_is_rate_limited(service: Service) -> None:
    request = await signup(service)
    first = await service.mailbox.wait_for(request.email, "verify_email")
    tokens = await sign_in(service, request.email)
    resend = service.svc.stub.ResendVerificationEmail
    auth = bearer(tokens.access_token)

    # Right after sign-up: too soon.
    code, reason = await refused(
        resend(user_service_pb2.ResendVerificationEmailRequest(), metadata=auth)
    )
    assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "MAIL_TOO_SOON")

    await service.svc.db.execute(
        "update action_tokens set created_at = created_at - interval '1 hour' "
        "where token_hash = $1",
        hash_token(first.token),
    )
    await resend(user_service_pb2.ResendVerificationEmailRequest(), metadata=auth)
    second = await service.mailbox.wait_for(request.email, "verify_email", count=2)
    assert second.token != first.token

    # The earlier link stopped working; the new one works.
    code, _ = await refused(
        service.svc.stub.VerifyEmail(user_service_pb2.VerifyEmailRequest(token=first.token))
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    await service.svc.stub.VerifyEmail(user_service_pb2.VerifyEmailRequest(token=second.token))

    code, reason = await refused(
        resend(user_service_pb2.ResendVerificationEmailRequest(), metadata=auth)
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "EMAIL_ALREADY_VERIFIED")


async def test_registration_refuses_malformed_and_oversized_fields(service: Service) -> None:
    for overrides, field in (
        ({"email": "not-an-email"}, "email"),
        ({"email": "a" * 250 + "@example.com"}, "email"),
        ({"email": "a@b@example.com"}, "email"),
        ({"username": "x" * 33}, "username"),
        ({"username": "bad name!"}, "username"),
        ({"password": "short"}, "password"),
        ({"password": "p" * 129}, "password"),
        ({"password": "qwertyuiop"}, "password"),
        ({"display_name": "d" * 101}, "display_name"),
        ({"display_name": "bell\x07"}, "display_name"),
    ):
        request = new_user_request(**overrides)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await service.svc.stub.CreateUser(request)
        got = rpc_failure(caught)
        assert got.code == grpc.StatusCode.INVALID_ARGUMENT
        assert field in violations_of(got), (overrides, violations_of(got))
        count = await service.svc.db.fetchval(
            "select count(*) from users where username = $1", request.username
        )
        assert count == 0

    code, _ = await refused(
        service.svc.stub.Login(
            user_service_pb2.LoginRequest(email="a@example.com", password="p" * 1_000_000)
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT


# --- Sessions: refresh rotation, reuse detection, logout ----------------------------------


async def test_refresh_rotates_and_reuse_revokes_the_whole_family(service: Service) -> None:
    request = await signup(service)
    first = await sign_in(service, request.email)

    second = await refresh(service, first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert second.token_type == "Bearer" and second.expires_in > 0
    sid = jwt.decode(second.access_token, options={"verify_signature": False})["sid"]
    assert sid == jwt.decode(first.access_token, options={"verify_signature": False})["sid"]
    third = await refresh(service, second.refresh_token)

    # An attacker replays the first token: the session ends for everyone holding it.
    assert await refused(refresh(service, first.refresh_token)) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "REFRESH_TOKEN_REUSED",
    )
    assert await refused(refresh(service, third.refresh_token)) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "REFRESH_TOKEN_REVOKED",
    )
    reason = await service.svc.db.fetchval(
        "select revoke_reason from sessions where id = $1", uuid.UUID(sid)
    )
    assert reason == "token_reuse"


async def test_concurrent_refreshes_of_one_token_let_one_through(service: Service) -> None:
    request = await signup(service)
    tokens = await sign_in(service, request.email)
    results = await asyncio.gather(
        *(refresh(service, tokens.refresh_token) for _ in range(8)), return_exceptions=True
    )
    winners = [r for r in results if isinstance(r, user_service_pb2.RefreshTokenResponse)]
    assert len(winners) == 1
    assert all(
        isinstance(r, grpc.aio.AioRpcError) and r.code() == grpc.StatusCode.UNAUTHENTICATED
        for r in results
        if r not in winners
    )


async def test_expired_and_unknown_refresh_tokens_are_refused(service: Service) -> None:
    request = await signup(service)
    tokens = await sign_in(service, request.email)
    await service.svc.db.execute(
        "update refresh_tokens set created_at = now() - interval '31 days', "
        "expires_at = now() - interval '1 second' where token_hash = $1",
        hash_token(tokens.refresh_token),
    )
    assert await refused(refresh(service, tokens.refresh_token)) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "REFRESH_TOKEN_EXPIRED",
    )
    assert await refused(refresh(service, "never-issued")) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "REFRESH_TOKEN_INVALID",
    )
    code, _ = await refused(refresh(service, ""))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


async def test_logout_ends_one_session_and_is_idempotent(service: Service) -> None:
    request = await signup(service)
    kept = await sign_in(service, request.email)
    ended = await sign_in(service, request.email)
    logout = service.svc.stub.Logout
    await logout(user_service_pb2.LogoutRequest(refresh_token=ended.refresh_token))
    await logout(user_service_pb2.LogoutRequest(refresh_token=ended.refresh_token))
    await logout(user_service_pb2.LogoutRequest(refresh_token="never-issued"))

    code, _ = await refused(refresh(service, ended.refresh_token))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    await refresh(service, kept.refresh_token)


async def test_list_sessions_and_sign_out_everywhere(service: Service) -> None:
    request = await signup(service)
    first = await sign_in(service, request.email)
    second = await sign_in(service, request.email)
    listed = await service.svc.stub.ListSessions(
        user_service_pb2.ListSessionsRequest(), metadata=bearer(second.access_token)
    )
    sid = jwt.decode(second.access_token, options={"verify_signature": False})["sid"]
    assert len(listed.sessions) == 2
    assert [s.current for s in listed.sessions] == [True, False]
    assert listed.sessions[0].session_id == sid
    assert listed.sessions[0].client_ip == "127.0.0.1"

    ended = await service.svc.stub.LogoutAll(
        user_service_pb2.LogoutAllRequest(), metadata=bearer(first.access_token)
    )
    assert ended.revoked_sessions == 2
    for tokens in (first, second):
        code, _ = await refused(refresh(service, tokens.refresh_token))
        assert code == grpc.StatusCode.UNAUTHENTICATED
    empty = await service.svc.stub.ListSessions(
        user_service_pb2.ListSessionsRequest(), metadata=bearer(first.access_token)
    )
    assert list(empty.sessions) == []


# --- Passwords -------------------------------------------------------------------------------


async def test_change_password_needs_the_current_one_and_ends_other_sessions(
    service: Service,
) -> None:
    request = await signup(service)
    here = await sign_in(service, request.email)
    elsewhere = await sign_in(service, request.email)
    change = service.svc.stub.ChangePassword
    auth = bearer(here.access_token)

    with pytest.raises(grpc.aio.AioRpcError) as wrong:
        await change(
            user_service_pb2.ChangePasswordRequest(
                current_password="not my password", new_password=NEW_PASSWORD
            ),
            metadata=auth,
        )
    assert violations_of(rpc_failure(wrong)).keys() == {"current_password"}
    with pytest.raises(grpc.aio.AioRpcError) as weak:
        await change(
            user_service_pb2.ChangePasswordRequest(
                current_password=PASSWORD, new_password="password123"
            ),
            metadata=auth,
        )
    assert violations_of(rpc_failure(weak)) == {"new_password": "is too common; choose another"}

    await change(
        user_service_pb2.ChangePasswordRequest(
            current_password=PASSWORD, new_password=NEW_PASSWORD
        ),
        metadata=auth,
    )
    code, _ = await refused(refresh(service, elsewhere.refresh_token))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    await refresh(service, here.refresh_token)  # this session stays
    code, _ = await refused(sign_in(service, request.email, PASSWORD))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    await sign_in(service, request.email, NEW_PASSWORD)
    notice = await service.mailbox.wait_for(request.email, "password_changed")
    assert "changed" in notice.body


async def test_reset_answers_the_same_for_known_and_unknown_addresses(service: Service) -> None:
    request = await signup(service)
    ask = service.svc.stub.RequestPasswordReset
    known = await ask(user_service_pb2.RequestPasswordResetRequest(email=request.email))
    unknown_address = f"{unique('nobody')}@example.com"
    unknown = await ask(user_service_pb2.RequestPasswordResetRequest(email=unknown_address))
    assert known == unknown == user_service_pb2.RequestPasswordResetResponse()
    await service.mailbox.wait_for(request.email, "reset_password")
    await asyncio.sleep(0.2)
    assert service.mailbox.mails(unknown_address) == []

    # Only the shape of the address is judged, for known and unknown alike.
    code, _ = await refused(ask(user_service_pb2.RequestPasswordResetRequest(email="nope")))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


async def test_reset_sets_the_password_once_and_ends_every_session(service: Service) -> None:
    request = await signup(service)
    session = await sign_in(service, request.email)
    await service.svc.stub.RequestPasswordReset(
        user_service_pb2.RequestPasswordResetRequest(email=request.email.upper())
    )
    mail = await service.mailbox.wait_for(request.email, "reset_password")
    reset = service.svc.stub.ResetPassword

    # A refused password does not use the token up.
    with pytest.raises(grpc.aio.AioRpcError) as weak:
        await reset(user_service_pb2.ResetPasswordRequest(token=mail.token, new_password="short"))
    assert "new_password" in violations_of(rpc_failure(weak))
    with pytest.raises(grpc.aio.AioRpcError) as same_as_name:
        await reset(
            user_service_pb2.ResetPasswordRequest(token=mail.token, new_password=request.username)
        )
    assert "new_password" in violations_of(rpc_failure(same_as_name))

    await reset(user_service_pb2.ResetPasswordRequest(token=mail.token, new_password=NEW_PASSWORD))
    assert await refused(
        reset(user_service_pb2.ResetPasswordRequest(token=mail.token, new_password=NEW_PASSWORD))
    ) == (grpc.StatusCode.INVALID_ARGUMENT, "TOKEN_INVALID")
    code, _ = await refused(refresh(service, session.refresh_token))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    await sign_in(service, request.email, NEW_PASSWORD)


async def test_an_expired_reset_token_is_refused(service: Service) -> None:
    request = await signup(service)
    await service.svc.stub.RequestPasswordReset(
        user_service_pb2.RequestPasswordResetRequest(email=request.email)
    )
    mail = await service.mailbox.wait_for(request.email, "reset_password")
    await service.svc.db.execute(
        "update action_tokens set created_at = now() - interval '1 hour', "
        "expires_at = now() - interval '1 second' where token_hash = $1",
        hash_token(mail.token),
    )
    assert await refused(
        service.svc.stub.ResetPassword(
            user_service_pb2.ResetPasswordRequest(token=mail.token, new_password=NEW_PASSWORD)
        )
    ) == (grpc.StatusCode.INVALID_ARGUMENT, "TOKEN_INVALID")
    await sign_in(service, request.email, PASSWORD)


async def test_outbox_keeps_no_token_once_the_mail_is_out(service: Service) -> None:
    request = await signup(service)
    mail = await service.mailbox.wait_for(request.email, "verify_email")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        bodies = await service.svc.db.fetch(
            "select body from email_outbox where to_address = $1 and sent_at is not null",
            request.email,
        )
        if bodies:
            break
        await asyncio.sleep(0.05)
    assert [b["body"] for b in bodies] == [None]
    leaked = await service.svc.db.fetchval(
        "select count(*) from email_outbox where body like '%' || $1 || '%'", mail.token
    )
    assert leaked == 0
