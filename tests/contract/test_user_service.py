"""UserService over gRPC through the real chassis: statuses, error details and persisted effects."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import grpc
import httpx
import jwt
import pytest
import pytest_asyncio
from marketplace.user.v1 import user_pb2, user_service_pb2, user_service_pb2_grpc

from services.user.adapters.signing import KeyRing, SigningKey
from tests.support.failures import rpc_failure, violations_of
from tests.support.servers import Backends
from tests.support.tls import probe_credentials
from tests.support.tokens import bearer
from tests.support.user import (
    PASSWORD,
    UserService,
    login,
    new_user_request,
    register_and_login,
    running_user_service,
    unique,
)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc(backends: Backends) -> AsyncIterator[UserService]:
    async with running_user_service(backends) as running:
        yield running


async def users_with_email(svc: UserService, email: str) -> int:
    count = await svc.db.fetchval(
        "select count(*) from users where lower(email) = lower($1)", email
    )
    return int(count)


async def test_register_login_and_get_me(svc: UserService) -> None:
    request = new_user_request(email=f"  {unique('Mixed')}@Example.COM ")
    user = await svc.stub.CreateUser(request)

    assert user.email == request.email.strip().lower()
    assert user.username == request.username
    assert user.display_name == "Test User"
    assert list(user.roles) == [user_pb2.ROLE_CUSTOMER]
    assert user.state == user_pb2.USER_STATE_ACTIVE
    assert not user.email_verified
    assert uuid.UUID(user.user_id)
    assert user.create_time.seconds > 0

    tokens = await svc.stub.Login(
        user_service_pb2.LoginRequest(email=request.email.upper(), password=PASSWORD)
    )
    assert tokens.token_type == "Bearer"
    assert tokens.expires_in == svc.settings.access_token_ttl_seconds
    assert tokens.refresh_token and tokens.access_token

    me = await svc.stub.GetUser(
        user_service_pb2.GetUserRequest(user_id="me"), metadata=bearer(tokens.access_token)
    )
    assert me == user
    by_id = await svc.stub.GetUser(
        user_service_pb2.GetUserRequest(user_id=user.user_id), metadata=bearer(tokens.access_token)
    )
    assert by_id == user


async def test_login_opens_a_session_storing_only_the_refresh_token_hash(svc: UserService) -> None:
    request = new_user_request()
    user = await svc.stub.CreateUser(request)
    # gRPC clients send their user agent from a channel option, not from call metadata.
    options = [("grpc.primary_user_agent", "contract-test/1.0")]
    async with grpc.aio.secure_channel(
        svc.served.target, probe_credentials("edge"), options=options
    ) as channel:
        tokens = await user_service_pb2_grpc.UserServiceStub(channel).Login(
            user_service_pb2.LoginRequest(email=request.email, password=PASSWORD)
        )
    claims = jwt.decode(tokens.access_token, options={"verify_signature": False})

    session = await svc.db.fetchrow(
        "select user_id, user_agent, host(client_ip) as ip, revoked_at from sessions where id = $1",
        uuid.UUID(claims["sid"]),
    )
    assert session is not None
    assert str(session["user_id"]) == user.user_id
    assert session["user_agent"].startswith("contract-test/1.0")
    assert session["ip"] == "127.0.0.1"
    assert session["revoked_at"] is None
    stored = await svc.db.fetch(
        "select token_hash from refresh_tokens where family_id = $1", uuid.UUID(claims["sid"])
    )
    assert [r["token_hash"] for r in stored] == [
        hashlib.sha256(tokens.refresh_token.encode()).hexdigest()
    ]
    raw = await svc.db.fetchval(
        "select count(*) from refresh_tokens where token_hash = $1", tokens.refresh_token
    )
    assert raw == 0


async def test_access_token_claims(svc: UserService) -> None:
    user, token = await register_and_login(svc)
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})

    assert header["alg"] == "EdDSA"
    assert header["kid"] == svc.ring.current.kid
    assert claims["sub"] == user.user_id
    assert claims["roles"] == ["customer"]
    assert claims["email_verified"] is False
    assert uuid.UUID(claims["sid"])
    assert claims["iss"] == svc.settings.jwt_issuer
    assert claims["aud"] == svc.settings.jwt_audience
    assert claims["exp"] - claims["iat"] == svc.settings.access_token_ttl_seconds


async def test_a_taken_email_answers_exactly_like_a_free_one_and_stores_nothing(
    svc: UserService,
) -> None:
    first = new_user_request()
    owner = await svc.stub.CreateUser(first)

    again = new_user_request(email=first.email.upper())
    answer = await svc.stub.CreateUser(again)
    fresh = new_user_request()
    control = await svc.stub.CreateUser(fresh)

    # The same fields in the same shape: nothing tells the caller the address is taken.
    def shape(user: user_pb2.User, request: user_service_pb2.CreateUserRequest) -> object:
        return (
            user.email == request.email.lower(),
            user.username == request.username,
            list(user.roles),
            user.email_verified,
            user.state,
            bool(uuid.UUID(user.user_id)),
            user.create_time.seconds > 0,
        )

    assert shape(answer, again) == shape(control, fresh)
    assert answer.user_id != owner.user_id
    assert await users_with_email(svc, first.email) == 1
    stored = await svc.db.fetchval(
        "select count(*) from users where id = $1", uuid.UUID(answer.user_id)
    )
    assert stored == 0
    # The owner is told instead, by mail.
    kinds = await svc.db.fetch(
        "select kind from email_outbox where user_id = $1 order by created_at",
        uuid.UUID(owner.user_id),
    )
    assert [k["kind"] for k in kinds] == ["verify_email", "account_exists"]


async def test_duplicate_username_in_another_case_is_already_exists(svc: UserService) -> None:
    first = new_user_request()
    await svc.stub.CreateUser(first)

    second = new_user_request(username=first.username.upper())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await svc.stub.CreateUser(second)

    got = rpc_failure(caught)
    assert got.code == grpc.StatusCode.ALREADY_EXISTS
    assert got.reason == "USERNAME_TAKEN"
    assert await users_with_email(svc, second.email) == 0


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        ({"email": ""}, {"email"}),
        ({"email": "not-an-email"}, {"email"}),
        ({"email": "a@b"}, {"email"}),
        ({"email": "two words@example.com"}, {"email"}),
        ({"email": "x" * 250 + "@example.com"}, {"email"}),
        ({"username": ""}, {"username"}),
        ({"username": "ab"}, {"username"}),
        ({"username": "a" * 33}, {"username"}),
        ({"username": "no spaces"}, {"username"}),
        ({"username": "émile"}, {"username"}),
        ({"password": ""}, {"password"}),
        ({"password": "short1!"}, {"password"}),
        ({"password": "p" * 129}, {"password"}),
        ({"password": "Password123"}, {"password"}),
        ({"password": "qwertyuiop"}, {"password"}),
        ({"display_name": "n" * 101}, {"display_name"}),
        ({"display_name": "bad\x00name"}, {"display_name"}),
        (
            {"email": "nope", "username": "!", "password": "x", "display_name": "d" * 200},
            {"email", "username", "password", "display_name"},
        ),
    ],
)
async def test_invalid_registration_is_invalid_argument_and_writes_nothing(
    svc: UserService, overrides: dict[str, str], fields: set[str]
) -> None:
    request = new_user_request(**overrides)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await svc.stub.CreateUser(request)

    got = rpc_failure(caught)
    assert got.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations_of(got)) == fields
    assert await users_with_email(svc, request.email.strip()) == 0
    count = await svc.db.fetchval(
        "select count(*) from users where lower(username) = lower($1)", request.username
    )
    assert count == 0


async def test_password_equal_to_username_is_refused(svc: UserService) -> None:
    name = unique("samename")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await svc.stub.CreateUser(new_user_request(username=name, password=name))
    assert violations_of(rpc_failure(caught)).keys() == {"password"}


async def test_wrong_password_and_unknown_email_answer_identically(svc: UserService) -> None:
    request = new_user_request()
    await svc.stub.CreateUser(request)

    with pytest.raises(grpc.aio.AioRpcError) as wrong_password:
        await login(svc, request.email, "not the password at all")
    with pytest.raises(grpc.aio.AioRpcError) as unknown_email:
        await login(svc, f"{unique()}@example.com", PASSWORD)

    wrong, unknown = rpc_failure(wrong_password), rpc_failure(unknown_email)
    assert wrong.code == grpc.StatusCode.UNAUTHENTICATED
    assert wrong.message == "invalid email or password"
    assert wrong.reason == "INVALID_CREDENTIALS"
    assert wrong == unknown


async def test_suspended_account_cannot_sign_in(svc: UserService) -> None:
    request = new_user_request()
    user = await svc.stub.CreateUser(request)
    await svc.db.execute(
        "update users set state = 'suspended' where id = $1", uuid.UUID(user.user_id)
    )

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await login(svc, request.email, PASSWORD)

    got = rpc_failure(caught)
    assert (got.code, got.message, got.reason) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "invalid email or password",
        "INVALID_CREDENTIALS",
    )


async def test_login_without_credentials_is_invalid_argument(svc: UserService) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await login(svc, "", "")
    got = rpc_failure(caught)
    assert got.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations_of(got)) == {"email", "password"}


async def test_customer_cannot_read_another_user(svc: UserService) -> None:
    _, token_a = await register_and_login(svc)
    user_b, _ = await register_and_login(svc)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await svc.stub.GetUser(
            user_service_pb2.GetUserRequest(user_id=user_b.user_id), metadata=bearer(token_a)
        )

    got = rpc_failure(caught)
    assert got.code == grpc.StatusCode.PERMISSION_DENIED
    assert got.reason == "NOT_OWNER"


async def test_customer_asking_for_unknown_id_is_denied_not_told_it_is_missing(
    svc: UserService,
) -> None:
    _, token = await register_and_login(svc)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await svc.stub.GetUser(
            user_service_pb2.GetUserRequest(user_id=str(uuid.uuid4())), metadata=bearer(token)
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_admin_reads_any_user_and_unknown_ids_are_not_found(svc: UserService) -> None:
    user_b, _ = await register_and_login(svc)
    admin_token = await login(svc, "admin@example.com", "demo-password-for-tests")

    got = await svc.stub.GetUser(
        user_service_pb2.GetUserRequest(user_id=user_b.user_id), metadata=bearer(admin_token)
    )
    assert got == user_b

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await svc.stub.GetUser(
            user_service_pb2.GetUserRequest(user_id=str(uuid.uuid4())),
            metadata=bearer(admin_token),
        )
    missing = rpc_failure(caught)
    assert missing.code == grpc.StatusCode.NOT_FOUND
    assert missing.reason == "USER_NOT_FOUND"


@pytest.mark.parametrize(
    ("user_id", "description"),
    [("", "is required"), ("not-a-uuid", "must be a user id (UUID) or 'me'")],
)
async def test_get_user_with_a_malformed_id_is_invalid_argument(
    svc: UserService, user_id: str, description: str
) -> None:
    _, token = await register_and_login(svc)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await svc.stub.GetUser(
            user_service_pb2.GetUserRequest(user_id=user_id), metadata=bearer(token)
        )
    got = rpc_failure(caught)
    assert got.code == grpc.StatusCode.INVALID_ARGUMENT
    assert violations_of(got) == {"user_id": description}


async def test_demo_accounts_are_seeded_with_their_roles(svc: UserService) -> None:
    for email, roles in [
        ("admin@example.com", [user_pb2.ROLE_CUSTOMER, user_pb2.ROLE_ADMIN]),
        ("seller@example.com", [user_pb2.ROLE_CUSTOMER, user_pb2.ROLE_SELLER]),
        ("buyer@example.com", [user_pb2.ROLE_CUSTOMER]),
    ]:
        token = await login(svc, email, "demo-password-for-tests")
        me = await svc.stub.GetUser(
            user_service_pb2.GetUserRequest(user_id="me"), metadata=bearer(token)
        )
        assert me.email == email
        assert list(me.roles) == roles
        assert me.email_verified


async def test_get_user_without_a_token_is_unauthenticated(svc: UserService) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await svc.stub.GetUser(user_service_pb2.GetUserRequest(user_id="me"))
    got = rpc_failure(caught)
    assert (got.code, got.reason) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING")


async def test_forged_token_is_unauthenticated(svc: UserService) -> None:
    user, _ = await register_and_login(svc)
    claims = {"sub": user.user_id, "roles": ["admin"], "email_verified": True, "sid": "x"}
    impostor = SigningKey.generate()
    # Signed by another key but naming the service's kid, as a forger would.
    forged = jwt.encode(
        {**claims, "iss": "marketplace", "aud": "marketplace", "iat": 0, "exp": 4_000_000_000},
        impostor.private_key,
        algorithm="EdDSA",
        headers={"kid": svc.ring.current.kid},
    )
    unknown_kid = KeyRing(impostor).sign(
        claims, ttl_seconds=300, issuer="marketplace", audience="marketplace", now=datetime.now(UTC)
    )

    for token, reason in [(forged, "TOKEN_INVALID"), (unknown_kid, "TOKEN_INVALID")]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await svc.stub.GetUser(
                user_service_pb2.GetUserRequest(user_id="me"), metadata=bearer(token)
            )
        got = rpc_failure(caught)
        assert (got.code, got.reason) == (grpc.StatusCode.UNAUTHENTICATED, reason)


async def test_tampered_token_is_unauthenticated(svc: UserService) -> None:
    _, token = await register_and_login(svc)
    header, payload, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["roles"] = ["admin"]
    tampered_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await svc.stub.GetUser(
            user_service_pb2.GetUserRequest(user_id="me"),
            metadata=bearer(f"{header}.{tampered_payload}.{signature}"),
        )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert payload != tampered_payload


async def test_expired_token_is_unauthenticated(svc: UserService) -> None:
    user, _ = await register_and_login(svc)
    expired = svc.ring.sign(
        {"sub": user.user_id, "roles": ["customer"], "email_verified": False, "sid": "s"},
        ttl_seconds=-120,
        issuer=svc.settings.jwt_issuer,
        audience=svc.settings.jwt_audience,
        now=datetime.now(UTC),
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await svc.stub.GetUser(
            user_service_pb2.GetUserRequest(user_id="me"), metadata=bearer(expired)
        )
    got = rpc_failure(caught)
    assert (got.code, got.reason) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_EXPIRED")


async def test_jwks_serves_the_key_that_verifies_issued_tokens(svc: UserService) -> None:
    user, token = await register_and_login(svc)
    url = f"http://127.0.0.1:{svc.served.server.ops_port}/.well-known/jwks.json"
    async with httpx.AsyncClient() as client:
        response = await client.get(url)

    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=300"
    keys = {k["kid"]: k for k in response.json()["keys"]}
    kid = jwt.get_unverified_header(token)["kid"]
    assert kid in keys
    assert keys[kid]["alg"] == "EdDSA"
    assert "d" not in keys[kid]  # public half only
    claims = jwt.decode(
        token,
        key=jwt.PyJWK(keys[kid]),
        algorithms=["EdDSA"],
        audience=svc.settings.jwt_audience,
        issuer=svc.settings.jwt_issuer,
    )
    assert claims["sub"] == user.user_id


async def test_concurrent_registrations_with_one_email_store_exactly_one_account(
    svc: UserService,
) -> None:
    email = f"{unique('race')}@example.com"
    requests = [new_user_request(email=email if i % 2 else email.upper()) for i in range(20)]

    results = await asyncio.gather(
        *(svc.stub.CreateUser(r) for r in requests), return_exceptions=True
    )

    # Every caller gets the same answer; the unique index lets exactly one row in.
    assert all(isinstance(r, user_pb2.User) for r in results), results
    stored = await svc.db.fetch("select id from users where lower(email) = lower($1)", email)
    assert len(stored) == 1
    assert sum(r.user_id == str(stored[0]["id"]) for r in results) == 1  # type: ignore[union-attr]
    assert await users_with_email(svc, email) == 1


async def test_concurrent_registrations_with_one_username_have_exactly_one_winner(
    svc: UserService,
) -> None:
    username = unique("race")
    requests = [new_user_request(username=username) for _ in range(10)]

    results = await asyncio.gather(
        *(svc.stub.CreateUser(r) for r in requests), return_exceptions=True
    )

    assert sum(isinstance(r, user_pb2.User) for r in results) == 1
    assert {rpc_failure(r).reason for r in results if isinstance(r, grpc.aio.AioRpcError)} == {
        "USERNAME_TAKEN"
    }


async def test_internal_service_admits_only_the_order_services_certificate(
    svc: UserService,
) -> None:
    outsider_stub = user_service_pb2_grpc.UserInternalServiceStub(svc.served.channel)
    request = user_service_pb2.GetShippingAddressRequest(user_id=str(uuid.uuid4()))

    with pytest.raises(grpc.aio.AioRpcError) as outsider:
        await outsider_stub.GetShippingAddress(request)
    assert outsider.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert rpc_failure(outsider).reason == "CALLER_NOT_ALLOWED"

    internal = user_service_pb2_grpc.UserInternalServiceStub(svc.served.internal_channel)
    with pytest.raises(grpc.aio.AioRpcError) as insider:
        await internal.GetShippingAddress(request)
    # Past the certificate check, the unknown buyer is simply not found.
    assert rpc_failure(insider).reason == "USER_NOT_FOUND"
