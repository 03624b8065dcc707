"""Commands: what callers ask the user service to do, as small frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.auth import Caller
from services.user.domain.addresses import AddressFields


@dataclass(frozen=True)
class CreateUser:
    """Register a new customer account."""

    email: str
    username: str
    password: str
    display_name: str


@dataclass(frozen=True)
class Login:
    """Exchange an email and password for a token pair, opening a session."""

    email: str
    password: str
    user_agent: str = ""
    client_ip: str | None = None


@dataclass(frozen=True)
class GetUser:
    """Read one account; "me" names the caller."""

    user_id: str
    caller: Caller


@dataclass(frozen=True)
class SeedDemoAccount:
    """Create a demo account unless it exists (dev mode only)."""

    email: str
    username: str
    display_name: str
    password: str
    roles: frozenset[str]


@dataclass(frozen=True)
class IssuedTokens:
    """The token pair a successful sign-in returns."""

    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"


@dataclass(frozen=True)
class ListAddresses:
    """List a user's address book."""

    caller: Caller
    user_id: str


@dataclass(frozen=True)
class GetAddress:
    """Read one address of a user's address book."""

    caller: Caller
    user_id: str
    address_id: str


@dataclass(frozen=True)
class CreateAddress:
    """Add an address to a user's address book."""

    caller: Caller
    user_id: str
    fields: AddressFields


@dataclass(frozen=True)
class UpdateAddress:
    """Change the fields named in `paths` of one address."""

    caller: Caller
    user_id: str
    address_id: str
    fields: AddressFields
    paths: tuple[str, ...]


@dataclass(frozen=True)
class DeleteAddress:
    """Remove one address from a user's address book."""

    caller: Caller
    user_id: str
    address_id: str


@dataclass(frozen=True)
class GetShippingAddress:
    """Check a buyer may buy and return one of their addresses (empty id: the default)."""

    user_id: str
    address_id: str
