"""The user service's address book, wishlist, roles and suspension on in-memory fakes."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from services.common.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from services.common.identity import Caller, Role
from services.user.domain import commands
from services.user.domain.addresses import MAX_ADDRESSES_PER_USER, AddressFields
from services.user.domain.emails import EmailKind
from services.user.domain.model import User, UserState
from services.user.domain.reasons import ErrorReason
from services.user.service_layer import (
    accounts,
    addresses,
    roles,
    sessions,
    sign_in,
    suspension,
    wishlist,
)
from tests.fakes.user import UserWorld

PASSWORD = "correct horse battery"


@pytest.fixture
def world() -> UserWorld:
    return UserWorld()


async def customer(world: UserWorld, name: str) -> tuple[User, Caller]:
    await accounts.create_user(
        commands.CreateUser(f"{name}@example.com", name, PASSWORD, name.title()),
        uow=world.uow(),
        hasher=world.hasher,
        mail=world.mail,
        clock=world.clock,
    )
    user = world.user(f"{name}@example.com")
    return user, Caller(user_id=str(user.id), roles=user.roles)


def an_admin() -> Caller:
    return Caller(user_id=str(uuid.uuid4()), roles=frozenset({Role.ADMIN, Role.CUSTOMER}))


def home(name: str = "Ada", *, default: bool = False) -> AddressFields:
    return AddressFields(
        recipient_name=name,
        line1="1 Main St",
        city="Berlin",
        country_code="de",
        is_default_shipping=default,
    )


# --- Addresses -------------------------------------------------------------------------


async def test_the_first_address_becomes_the_default_and_a_new_default_takes_over(
    world: UserWorld,
) -> None:
    _, ada = await customer(world, "ada")

    async def add(fields: AddressFields) -> uuid.UUID:
        created = await addresses.create_address(
            commands.CreateAddress(ada, "me", fields), uow=world.uow(), clock=world.clock
        )
        return created.id

    first = await add(home("First"))
    second = await add(home("Second"))
    third = await add(home("Third", default=True))

    book = await addresses.list_addresses(
        commands.ListAddresses(ada, "me"), uow=world.uow(), clock=world.clock
    )
    assert book[0].id == third
    assert {a.id for a in book if a.is_default_shipping} == {third}
    assert {first, second} < {a.id for a in book}
    assert book[0].fields.country_code == "DE"  # normalised on the way in


async def test_an_address_book_is_limited(world: UserWorld) -> None:
    _, ada = await customer(world, "ada")
    for i in range(MAX_ADDRESSES_PER_USER):
        await addresses.create_address(
            commands.CreateAddress(ada, "me", home(f"R{i}")), uow=world.uow(), clock=world.clock
        )
    with pytest.raises(ResourceExhausted) as full:
        await addresses.create_address(
            commands.CreateAddress(ada, "me", home()), uow=world.uow(), clock=world.clock
        )
    assert full.value.reason == ErrorReason.ADDRESS_LIMIT_REACHED


async def test_another_users_book_is_denied_and_their_address_is_not_found(
    world: UserWorld,
) -> None:
    ada_user, ada = await customer(world, "ada")
    _, bob = await customer(world, "bob")
    kept = await addresses.create_address(
        commands.CreateAddress(ada, "me", home()), uow=world.uow(), clock=world.clock
    )
    with pytest.raises(PermissionDenied):
        await addresses.create_address(
            commands.CreateAddress(bob, str(ada_user.id), home()),
            uow=world.uow(),
            clock=world.clock,
        )
    with pytest.raises(NotFound) as missing:
        await addresses.get_address(
            commands.GetAddress(bob, "me", str(kept.id)), uow=world.uow(), clock=world.clock
        )
    assert missing.value.reason == ErrorReason.ADDRESS_NOT_FOUND


async def test_the_order_service_gets_the_default_unless_the_buyer_is_suspended(
    world: UserWorld,
) -> None:
    ada_user, ada = await customer(world, "ada")
    lookup = commands.GetShippingAddress(str(ada_user.id), "")
    with pytest.raises(NotFound) as none:
        await addresses.get_shipping_address(lookup, uow=world.uow(), clock=world.clock)
    assert none.value.reason == ErrorReason.NO_DEFAULT_SHIPPING_ADDRESS

    created = await addresses.create_address(
        commands.CreateAddress(ada, "me", home()), uow=world.uow(), clock=world.clock
    )
    found = await addresses.get_shipping_address(lookup, uow=world.uow(), clock=world.clock)
    assert found.id == created.id

    await suspension.suspend_user(
        commands.SuspendUser(an_admin(), str(ada_user.id), "fraud"),
        uow=world.uow(),
        clock=world.clock,
    )
    with pytest.raises(FailedPrecondition) as suspended:
        await addresses.get_shipping_address(lookup, uow=world.uow(), clock=world.clock)
    assert suspended.value.reason == ErrorReason.USER_SUSPENDED


# --- Wishlist --------------------------------------------------------------------------


async def test_the_wishlist_checks_the_catalog_once_and_pages_newest_first(
    world: UserWorld,
) -> None:
    _, ada = await customer(world, "ada")
    world.catalog.products.update({"lamp", "desk", "chair"})
    for product in ("lamp", "desk", "chair"):
        await wishlist.add_wishlist_item(
            commands.WishlistChange(ada, "me", product),
            uow=world.uow(),
            catalog=world.catalog,
            clock=world.clock,
        )
        world.clock.advance(timedelta(seconds=1))
    again = await wishlist.add_wishlist_item(
        commands.WishlistChange(ada, "me", "lamp"),
        uow=world.uow(),
        catalog=world.catalog,
        clock=world.clock,
    )
    assert world.catalog.asked == 3  # adding twice needs no round trip
    assert again.added_at < world.clock.now()

    page, token = await wishlist.list_wishlist(
        commands.ListWishlist(ada, "me", 2, ""), uow=world.uow(), clock=world.clock
    )
    rest, last = await wishlist.list_wishlist(
        commands.ListWishlist(ada, "me", 2, token), uow=world.uow(), clock=world.clock
    )
    assert [i.product_id for i in page + rest] == ["chair", "desk", "lamp"]
    assert token and not last


async def test_unknown_products_and_missing_items_are_not_found(world: UserWorld) -> None:
    _, ada = await customer(world, "ada")
    with pytest.raises(NotFound) as unknown:
        await wishlist.add_wishlist_item(
            commands.WishlistChange(ada, "me", "ghost"),
            uow=world.uow(),
            catalog=world.catalog,
            clock=world.clock,
        )
    assert unknown.value.reason == ErrorReason.PRODUCT_NOT_FOUND
    with pytest.raises(NotFound) as missing:
        await wishlist.remove_wishlist_item(
            commands.WishlistChange(ada, "me", "ghost"), uow=world.uow(), clock=world.clock
        )
    assert missing.value.reason == ErrorReason.WISHLIST_ITEM_NOT_FOUND
    with pytest.raises(InvalidArgument):
        await wishlist.remove_wishlist_item(
            commands.WishlistChange(ada, "me", "no spaces"), uow=world.uow(), clock=world.clock
        )


# --- Roles and suspension --------------------------------------------------------------


async def test_admins_set_roles_customers_may_not_and_no_admin_demotes_themselves(
    world: UserWorld,
) -> None:
    ada_user, ada = await customer(world, "ada")
    admin = an_admin()
    changed = await roles.set_user_roles(
        commands.SetUserRoles(admin, str(ada_user.id), ("customer", "seller")),
        uow=world.uow(),
        clock=world.clock,
    )
    assert changed.roles == {Role.CUSTOMER, Role.SELLER}
    assert world.user("ada@example.com").roles == {Role.CUSTOMER, Role.SELLER}

    with pytest.raises(PermissionDenied):
        await roles.set_user_roles(
            commands.SetUserRoles(ada, str(ada_user.id), ("admin",)),
            uow=world.uow(),
            clock=world.clock,
        )
    with pytest.raises(FailedPrecondition) as self_demotion:
        await roles.set_user_roles(
            commands.SetUserRoles(admin, admin.user_id, ("customer",)),
            uow=world.uow(),
            clock=world.clock,
        )
    assert self_demotion.value.reason == ErrorReason.CANNOT_DEMOTE_SELF


async def test_suspension_ends_sessions_blocks_sign_in_and_reactivation_lifts_it(
    world: UserWorld,
) -> None:
    ada_user, _ = await customer(world, "ada")
    authenticator = await sign_in.Authenticator.create(world.hasher)

    async def login() -> commands.IssuedTokens:
        return await sign_in.login(
            commands.Login("ada@example.com", PASSWORD),
            uow=world.uow(),
            authenticator=authenticator,
            issuer=world.issuer,
            refresh_ttl=timedelta(days=1),
            sleep=world.sleep,
            clock=world.clock,
        )

    tokens = await login()
    admin = an_admin()
    suspend = commands.SuspendUser(admin, str(ada_user.id), "chargebacks")
    await suspension.suspend_user(suspend, uow=world.uow(), clock=world.clock)
    await suspension.suspend_user(suspend, uow=world.uow(), clock=world.clock)  # no change

    assert world.user("ada@example.com").state is UserState.SUSPENDED
    assert len(world.store.mail_to("ada@example.com", EmailKind.ACCOUNT_SUSPENDED)) == 1
    with pytest.raises(Unauthenticated):
        await sessions.refresh(
            commands.RefreshTokens(tokens.refresh_token),
            uow=world.uow(),
            issuer=world.issuer,
            clock=world.clock,
        )
    with pytest.raises(Unauthenticated) as refused:
        await login()
    assert refused.value.reason == ErrorReason.INVALID_CREDENTIALS

    await suspension.reactivate_user(
        commands.ReactivateUser(admin, str(ada_user.id)), uow=world.uow(), clock=world.clock
    )
    assert (await login()).access_token


async def test_admins_cannot_suspend_themselves_and_customers_cannot_suspend(
    world: UserWorld,
) -> None:
    ada_user, _ = await customer(world, "ada")
    admin = an_admin()
    with pytest.raises(FailedPrecondition) as itself:
        await suspension.suspend_user(
            commands.SuspendUser(admin, admin.user_id, "oops"), uow=world.uow(), clock=world.clock
        )
    assert itself.value.reason == ErrorReason.CANNOT_SUSPEND_SELF
    _, bob = await customer(world, "bob")
    with pytest.raises(PermissionDenied):
        await suspension.suspend_user(
            commands.SuspendUser(bob, str(ada_user.id), "spite"), uow=world.uow(), clock=world.clock
        )
    assert world.user("ada@example.com").state is UserState.ACTIVE
