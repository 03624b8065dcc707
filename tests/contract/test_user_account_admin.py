"""Profile, preferences, wishlist (against the real product service), admin RPCs and
signing-key rotation of the user service, over gRPC."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
import jwt
import pytest
import pytest_asyncio
from google.protobuf import field_mask_pb2
from google.type import money_pb2
from marketplace.product.v1 import product_pb2, product_service_pb2, product_service_pb2_grpc
from marketplace.user.v1 import user_pb2, user_service_pb2

from services.common.identity import Role
from services.product.app import build_app as build_product_app
from services.user.adapters.signing import KeyRing, SigningKey
from tests.support.failures import rpc_failure, violations_of
from tests.support.inprocess import InProcessService, serve_in_process
from tests.support.product import create_categories, product_settings
from tests.support.servers import Backends
from tests.support.tokens import TestTokens, bearer
from tests.support.user import (
    MIGRATIONS,
    PASSWORD,
    UserService,
    login,
    new_user_request,
    register_and_login,
    running_user_service,
)

ADMIN_PASSWORD = "demo-password-for-tests"


@dataclass
class Services:
    svc: UserService
    product: InProcessService
    tokens: TestTokens


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def services(backends: Backends, tokens: TestTokens) -> AsyncIterator[Services]:
    settings = product_settings(backends, "products_wishlist", shutdown_grace_seconds=1.0)
    async with (
        serve_in_process(
            settings,
            lambda: build_product_app(
                settings, key_source=tokens.key_source(), start_workers=False
            ),
        ) as product,
        running_user_service(backends, product_target=product.target, rpc_timeout_seconds=2) as svc,
    ):
        # The wishlist tests list their products in this category of the tree.
        await create_categories(
            product_service_pb2_grpc.ProductServiceStub(product.channel),
            tokens,
            {"home": ["lighting"]},
        )
        yield Services(svc, product, tokens)


@pytest.fixture
def svc(services: Services) -> UserService:
    return services.svc


async def admin_token(svc: UserService) -> str:
    return await login(svc, "admin@example.com", ADMIN_PASSWORD)


async def refused(call: object) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    got = rpc_failure(caught)
    return got.code, got.reason, violations_of(got)


# --- Profile ------------------------------------------------------------------------------


async def test_update_profile_changes_only_masked_allowed_fields(svc: UserService) -> None:
    user, token = await register_and_login(svc)
    updated = await svc.stub.UpdateUser(
        user_service_pb2.UpdateUserRequest(
            user=user_pb2.User(
                user_id="me",
                display_name="  Ada L.  ",
                bio="Line one\nLine two",
                avatar_url="https://cdn.example.com/ada.png",
                phone_number="+441234567890",
            ),
            update_mask=field_mask_pb2.FieldMask(
                paths=["display_name", "bio", "avatar_url", "phone_number"]
            ),
        ),
        metadata=bearer(token),
    )
    assert (updated.display_name, updated.bio) == ("Ada L.", "Line one\nLine two")
    assert updated.avatar_url == "https://cdn.example.com/ada.png"
    assert updated.email == user.email and list(updated.roles) == [user_pb2.ROLE_CUSTOMER]


@pytest.mark.parametrize(
    "path", ["roles", "email_verified", "state", "email", "username", "user_id", "create_time"]
)
async def test_no_mass_assignment_of_protected_fields(svc: UserService, path: str) -> None:
    user, token = await register_and_login(svc)
    code, _, violations = await refused(
        svc.stub.UpdateUser(
            user_service_pb2.UpdateUserRequest(
                user=user_pb2.User(
                    user_id="me",
                    roles=[user_pb2.ROLE_ADMIN],
                    email_verified=True,
                    state=user_pb2.USER_STATE_ACTIVE,
                    email="evil@example.com",
                    username="evil",
                ),
                update_mask=field_mask_pb2.FieldMask(paths=["display_name", path]),
            ),
            metadata=bearer(token),
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "update_mask" in violations
    me = await svc.stub.GetUser(
        user_service_pb2.GetUserRequest(user_id="me"), metadata=bearer(token)
    )
    assert me == user


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("display_name", "x" * 101),
        ("bio", "b" * 501),
        ("bio", "nul\x00"),
        ("avatar_url", "http://insecure.example.com/a.png"),
        ("avatar_url", "javascript:alert(1)"),
        ("avatar_url", "https://user:pw@example.com/a.png"),
        ("phone_number", "12345"),
    ],
)
async def test_invalid_profile_values_are_refused(svc: UserService, field: str, value: str) -> None:
    _, token = await register_and_login(svc)
    code, _, violations = await refused(
        svc.stub.UpdateUser(
            user_service_pb2.UpdateUserRequest(
                user=user_pb2.User(user_id="me", **{field: value}),  # type: ignore[arg-type]
                update_mask=field_mask_pb2.FieldMask(paths=[field]),
            ),
            metadata=bearer(token),
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert f"user.{field}" in violations


async def test_a_user_cannot_update_another_users_profile(svc: UserService) -> None:
    victim, _ = await register_and_login(svc)
    _, token = await register_and_login(svc)
    code, _, _ = await refused(
        svc.stub.UpdateUser(
            user_service_pb2.UpdateUserRequest(
                user=user_pb2.User(user_id=victim.user_id, display_name="pwned"),
                update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
            ),
            metadata=bearer(token),
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED


# --- Preferences --------------------------------------------------------------------------


async def test_preferences_have_defaults_and_update_by_mask(svc: UserService) -> None:
    user, token = await register_and_login(svc)
    defaults = await svc.stub.GetPreferences(
        user_service_pb2.GetPreferencesRequest(user_id="me"), metadata=bearer(token)
    )
    assert (defaults.language, defaults.currency_code, defaults.marketing_opt_in) == (
        "en",
        "USD",
        False,
    )
    assert list(defaults.notification_channels) == [user_pb2.NOTIFICATION_CHANNEL_EMAIL]
    assert defaults.user_id == user.user_id

    updated = await svc.stub.UpdatePreferences(
        user_service_pb2.UpdatePreferencesRequest(
            preferences=user_pb2.Preferences(
                user_id="me",
                language="de-DE",
                currency_code="eur",
                marketing_opt_in=True,
                notification_channels=[
                    user_pb2.NOTIFICATION_CHANNEL_EMAIL,
                    user_pb2.NOTIFICATION_CHANNEL_PUSH,
                ],
            ),
            update_mask=field_mask_pb2.FieldMask(
                paths=["language", "currency_code", "notification_channels"]
            ),
        ),
        metadata=bearer(token),
    )
    assert (updated.language, updated.currency_code) == ("de-DE", "EUR")
    assert not updated.marketing_opt_in, "outside the mask"
    again = await svc.stub.GetPreferences(
        user_service_pb2.GetPreferencesRequest(user_id=user.user_id), metadata=bearer(token)
    )
    assert again == updated


@pytest.mark.parametrize(
    ("prefs", "path"),
    [
        (user_pb2.Preferences(language="not a tag!"), "language"),
        (user_pb2.Preferences(currency_code="XXX"), "currency_code"),
        (user_pb2.Preferences(), "notification_channels"),
        (
            user_pb2.Preferences(notification_channels=[user_pb2.NOTIFICATION_CHANNEL_UNSPECIFIED]),
            "notification_channels",
        ),
        (
            user_pb2.Preferences(
                notification_channels=[
                    user_pb2.NOTIFICATION_CHANNEL_SMS,
                    user_pb2.NOTIFICATION_CHANNEL_SMS,
                ]
            ),
            "notification_channels",
        ),
    ],
)
async def test_invalid_preferences_are_refused(
    svc: UserService, prefs: user_pb2.Preferences, path: str
) -> None:
    _, token = await register_and_login(svc)
    prefs.user_id = "me"
    code, _, violations = await refused(
        svc.stub.UpdatePreferences(
            user_service_pb2.UpdatePreferencesRequest(
                preferences=prefs, update_mask=field_mask_pb2.FieldMask(paths=[path])
            ),
            metadata=bearer(token),
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert f"preferences.{path}" in violations


# --- Wishlist -----------------------------------------------------------------------------


async def published_product(services: Services) -> str:
    seller = services.tokens.mint(roles=(Role.SELLER, Role.CUSTOMER))
    stub = product_service_pb2_grpc.ProductServiceStub(services.product.channel)
    product = await stub.CreateProduct(
        product_service_pb2.CreateProductRequest(
            product=product_pb2.Product(
                title=f"Wishlist Lamp {uuid.uuid4().hex[:6]}",
                description="A lamp to keep for later.",
                category="home",
                subcategory="lighting",
                list_price=money_pb2.Money(currency_code="USD", units=30),
                initial_stock=5,
            ),
            publish=True,
        ),
        metadata=bearer(seller),
    )
    return str(product.product_id)


async def wishlist(svc: UserService, token: str, **kwargs: object) -> list[str]:
    response = await svc.stub.ListWishlistItems(
        user_service_pb2.ListWishlistItemsRequest(user_id="me", **kwargs),  # type: ignore[arg-type]
        metadata=bearer(token),
    )
    return [i.product_id for i in response.items]


async def test_wishlist_add_twice_list_and_remove(services: Services) -> None:
    svc = services.svc
    _, token = await register_and_login(svc)
    first, second = await published_product(services), await published_product(services)
    add = svc.stub.AddWishlistItem
    one = await add(
        user_service_pb2.AddWishlistItemRequest(user_id="me", product_id=first),
        metadata=bearer(token),
    )
    again = await add(
        user_service_pb2.AddWishlistItemRequest(user_id="me", product_id=first),
        metadata=bearer(token),
    )
    assert again == one, "adding twice is harmless and keeps the first add time"
    await add(
        user_service_pb2.AddWishlistItemRequest(user_id="me", product_id=second),
        metadata=bearer(token),
    )
    assert await wishlist(svc, token) == [second, first]

    page = await svc.stub.ListWishlistItems(
        user_service_pb2.ListWishlistItemsRequest(user_id="me", page_size=1),
        metadata=bearer(token),
    )
    assert [i.product_id for i in page.items] == [second] and page.next_page_token
    rest = await wishlist(svc, token, page_size=1, page_token=page.next_page_token)
    assert rest == [first]

    await svc.stub.RemoveWishlistItem(
        user_service_pb2.RemoveWishlistItemRequest(user_id="me", product_id=first),
        metadata=bearer(token),
    )
    assert await wishlist(svc, token) == [second]
    code, reason, _ = await refused(
        svc.stub.RemoveWishlistItem(
            user_service_pb2.RemoveWishlistItemRequest(user_id="me", product_id=first),
            metadata=bearer(token),
        )
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "WISHLIST_ITEM_NOT_FOUND")


async def test_wishlist_refuses_unknown_products_and_other_users(services: Services) -> None:
    svc = services.svc
    victim, victim_token = await register_and_login(svc)
    _, token = await register_and_login(svc)
    code, reason, _ = await refused(
        svc.stub.AddWishlistItem(
            user_service_pb2.AddWishlistItemRequest(
                user_id="me", product_id="0123456789abcdef01234567"
            ),
            metadata=bearer(token),
        )
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "PRODUCT_NOT_FOUND")
    code, _, violations = await refused(
        svc.stub.AddWishlistItem(
            user_service_pb2.AddWishlistItemRequest(user_id="me", product_id="../../etc"),
            metadata=bearer(token),
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "product_id" in violations
    code, _, _ = await refused(
        svc.stub.ListWishlistItems(
            user_service_pb2.ListWishlistItemsRequest(user_id=victim.user_id),
            metadata=bearer(token),
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    code, _, violations = await refused(
        svc.stub.ListWishlistItems(
            user_service_pb2.ListWishlistItemsRequest(user_id="me", page_token="garbage!"),
            metadata=bearer(victim_token),
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT


async def test_wishlist_answers_unavailable_when_the_catalog_is_down(
    backends: Backends,
) -> None:
    # A product target nobody listens on: the deadline turns into UNAVAILABLE, not a hang.
    async with running_user_service(
        backends, product_target="127.0.0.1:9", rpc_timeout_seconds=0.5
    ) as lonely:
        _, token = await register_and_login(lonely)
        code, reason, _ = await refused(
            lonely.stub.AddWishlistItem(
                user_service_pb2.AddWishlistItemRequest(user_id="me", product_id="abc123"),
                metadata=bearer(token),
            )
        )
    assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "PRODUCT_SERVICE_UNAVAILABLE")


# --- Admin --------------------------------------------------------------------------------


async def test_admin_only_rpcs_refuse_customers(svc: UserService) -> None:
    target, token = await register_and_login(svc)
    auth = bearer(token)
    for call in (
        svc.stub.ListUsers(user_service_pb2.ListUsersRequest(), metadata=auth),
        svc.stub.SetUserRoles(
            user_service_pb2.SetUserRolesRequest(
                user_id=target.user_id, roles=[user_pb2.ROLE_ADMIN]
            ),
            metadata=auth,
        ),
        svc.stub.SuspendUser(
            user_service_pb2.SuspendUserRequest(user_id=target.user_id, reason="x"),
            metadata=auth,
        ),
        svc.stub.ReactivateUser(
            user_service_pb2.ReactivateUserRequest(user_id=target.user_id), metadata=auth
        ),
    ):
        code, reason, _ = await refused(call)
        assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_REQUIRED")
    me = await svc.stub.GetUser(user_service_pb2.GetUserRequest(user_id="me"), metadata=auth)
    assert list(me.roles) == [user_pb2.ROLE_CUSTOMER]


async def test_list_users_searches_filters_and_pages(svc: UserService) -> None:
    admin = await admin_token(svc)
    tag = uuid.uuid4().hex[:8]
    created = []
    for n in range(3):
        request = new_user_request(
            username=f"srch{tag}{n}", email=f"srch{tag}{n}@example.com", display_name="Needle"
        )
        created.append(await svc.stub.CreateUser(request))
    found = await svc.stub.ListUsers(
        user_service_pb2.ListUsersRequest(query=f"SRCH{tag}", page_size=2),
        metadata=bearer(admin),
    )
    assert [u.username for u in found.users] == [f"srch{tag}2", f"srch{tag}1"]
    rest = await svc.stub.ListUsers(
        user_service_pb2.ListUsersRequest(
            query=f"srch{tag}", page_size=2, page_token=found.next_page_token
        ),
        metadata=bearer(admin),
    )
    assert [u.username for u in rest.users] == [f"srch{tag}0"] and not rest.next_page_token

    # A token only continues its own search.
    code, _, _ = await refused(
        svc.stub.ListUsers(
            user_service_pb2.ListUsersRequest(query="other", page_token=found.next_page_token),
            metadata=bearer(admin),
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    # LIKE wildcards in the query match literally.
    wildcard = await svc.stub.ListUsers(
        user_service_pb2.ListUsersRequest(query="%"), metadata=bearer(admin)
    )
    assert list(wildcard.users) == []

    admins = await svc.stub.ListUsers(
        user_service_pb2.ListUsersRequest(role=user_pb2.ROLE_ADMIN), metadata=bearer(admin)
    )
    assert [u.email for u in admins.users] == ["admin@example.com"]
    code, _, violations = await refused(
        svc.stub.ListUsers(user_service_pb2.ListUsersRequest(page_size=-1), metadata=bearer(admin))
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "page_size" in violations


async def test_set_roles_takes_effect_at_the_next_refresh(svc: UserService) -> None:
    admin = await admin_token(svc)
    request = new_user_request()
    user = await svc.stub.CreateUser(request)
    tokens = await svc.stub.Login(
        user_service_pb2.LoginRequest(email=request.email, password=PASSWORD)
    )
    changed = await svc.stub.SetUserRoles(
        user_service_pb2.SetUserRolesRequest(
            user_id=user.user_id, roles=[user_pb2.ROLE_SELLER, user_pb2.ROLE_CUSTOMER]
        ),
        metadata=bearer(admin),
    )
    assert list(changed.roles) == [user_pb2.ROLE_CUSTOMER, user_pb2.ROLE_SELLER]
    refreshed = await svc.stub.RefreshToken(
        user_service_pb2.RefreshTokenRequest(refresh_token=tokens.refresh_token)
    )
    claims = jwt.decode(refreshed.access_token, options={"verify_signature": False})
    assert claims["roles"] == ["customer", "seller"]

    for roles in ([], [user_pb2.ROLE_UNSPECIFIED]):
        code, _, violations = await refused(
            svc.stub.SetUserRoles(
                user_service_pb2.SetUserRolesRequest(user_id=user.user_id, roles=roles),
                metadata=bearer(admin),
            )
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "roles" in violations
    admin_id = jwt.decode(admin, options={"verify_signature": False})["sub"]
    code, reason, _ = await refused(
        svc.stub.SetUserRoles(
            user_service_pb2.SetUserRolesRequest(user_id=admin_id, roles=[user_pb2.ROLE_CUSTOMER]),
            metadata=bearer(admin),
        )
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "CANNOT_DEMOTE_SELF")
    code, _, _ = await refused(
        svc.stub.SetUserRoles(
            user_service_pb2.SetUserRolesRequest(
                user_id=str(uuid.uuid4()), roles=[user_pb2.ROLE_CUSTOMER]
            ),
            metadata=bearer(admin),
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND


async def test_suspension_blocks_sign_in_and_refresh_until_reactivated(
    svc: UserService,
) -> None:
    admin = await admin_token(svc)
    request = new_user_request()
    user = await svc.stub.CreateUser(request)
    tokens = await svc.stub.Login(
        user_service_pb2.LoginRequest(email=request.email, password=PASSWORD)
    )
    code, _, violations = await refused(
        svc.stub.SuspendUser(
            user_service_pb2.SuspendUserRequest(user_id=user.user_id, reason=" "),
            metadata=bearer(admin),
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "reason" in violations

    suspended = await svc.stub.SuspendUser(
        user_service_pb2.SuspendUserRequest(user_id=user.user_id, reason="chargeback fraud"),
        metadata=bearer(admin),
    )
    assert suspended.state == user_pb2.USER_STATE_SUSPENDED
    audit = await svc.db.fetchrow(
        "select suspension_reason, suspended_by from users where id = $1",
        uuid.UUID(user.user_id),
    )
    assert audit is not None and audit["suspension_reason"] == "chargeback fraud"

    code, _, _ = await refused(
        svc.stub.RefreshToken(
            user_service_pb2.RefreshTokenRequest(refresh_token=tokens.refresh_token)
        )
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED
    code, reason, _ = await refused(
        svc.stub.Login(user_service_pb2.LoginRequest(email=request.email, password=PASSWORD))
    )
    assert (code, reason) == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS")

    reactivated = await svc.stub.ReactivateUser(
        user_service_pb2.ReactivateUserRequest(user_id=user.user_id), metadata=bearer(admin)
    )
    assert reactivated.state == user_pb2.USER_STATE_ACTIVE
    await svc.stub.Login(user_service_pb2.LoginRequest(email=request.email, password=PASSWORD))

    admin_id = jwt.decode(admin, options={"verify_signature": False})["sub"]
    code, reason, _ = await refused(
        svc.stub.SuspendUser(
            user_service_pb2.SuspendUserRequest(user_id=admin_id, reason="oops"),
            metadata=bearer(admin),
        )
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "CANNOT_SUSPEND_SELF")


# --- Signing-key rotation -------------------------------------------------------------------


async def test_tokens_of_the_previous_key_stay_valid_after_rotation(backends: Backends) -> None:
    old, new, upcoming = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    database_url = backends.database_url("users", MIGRATIONS)
    async with running_user_service(
        backends, database_url=database_url, app_overrides={"key_ring": KeyRing(old, upcoming=new)}
    ) as before:
        _, old_token = await register_and_login(before)
        jwks = before.ring.jwks()
        assert [k["kid"] for k in jwks["keys"]] == [old.kid, new.kid]
        assert jwt.get_unverified_header(old_token)["kid"] == old.kid

    # The same database after the rotation: `new` signs, `old` is only published.
    rotated = KeyRing(new, previous=[old], upcoming=upcoming)
    async with running_user_service(
        backends,
        database_url=database_url,
        seed_demo_accounts=False,
        app_overrides={"key_ring": rotated},
    ) as after:
        _, new_token = await register_and_login(after)
        assert jwt.get_unverified_header(new_token)["kid"] == new.kid
        # The old token still authenticates against the rotated service.
        me = await after.stub.GetUser(
            user_service_pb2.GetUserRequest(user_id="me"), metadata=bearer(old_token)
        )
        assert me.user_id == jwt.decode(old_token, options={"verify_signature": False})["sub"]
        # A key that was never published does not.
        stranger = KeyRing(SigningKey.generate()).sign(
            {"sub": me.user_id, "roles": ["customer"]},
            ttl_seconds=60,
            issuer="marketplace",
            audience="marketplace",
            now=datetime.now(UTC),
        )
        code, _, _ = await refused(
            after.stub.GetUser(
                user_service_pb2.GetUserRequest(user_id="me"), metadata=bearer(stranger)
            )
        )
        assert code == grpc.StatusCode.UNAUTHENTICATED
