"""Commands: what callers ask the user service to do, as small frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.identity import Caller
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


@dataclass(frozen=True)
class RefreshTokens:
    """Rotate a refresh token into a new token pair."""

    refresh_token: str


@dataclass(frozen=True)
class Logout:
    """End the session a refresh token belongs to."""

    refresh_token: str


@dataclass(frozen=True)
class CallerOnly:
    """A request about the caller alone: LogoutAll, ListSessions, ResendVerificationEmail."""

    caller: Caller


@dataclass(frozen=True)
class DeleteAccount:
    """Delete the caller's account for good, proving the current password."""

    caller: Caller
    current_password: str
    client_ip: str | None = None


@dataclass(frozen=True)
class ChangePassword:
    """Replace the caller's password, proving the current one."""

    caller: Caller
    current_password: str
    new_password: str
    client_ip: str | None = None


@dataclass(frozen=True)
class VerifyEmail:
    """Confirm an email address with a mailed token."""

    token: str


@dataclass(frozen=True)
class RequestPasswordReset:
    """Mail a reset token if the address belongs to an account."""

    email: str


@dataclass(frozen=True)
class ResetPassword:
    """Set a new password with a mailed reset token."""

    token: str
    new_password: str


@dataclass(frozen=True)
class ProfileFields:
    """The profile fields a user may change."""

    display_name: str = ""
    bio: str = ""
    avatar_url: str = ""
    phone_number: str = ""


@dataclass(frozen=True)
class UpdateUser:
    """Change the profile fields named in `paths`."""

    caller: Caller
    user_id: str
    fields: ProfileFields
    paths: tuple[str, ...]


@dataclass(frozen=True)
class GetPreferences:
    """Read a user's preferences."""

    caller: Caller
    user_id: str


@dataclass(frozen=True)
class UpdatePreferences:
    """Change the preferences named in `paths`."""

    caller: Caller
    user_id: str
    language: str
    currency_code: str
    marketing_opt_in: bool
    notification_channels: tuple[str, ...]
    paths: tuple[str, ...]


@dataclass(frozen=True)
class ListWishlist:
    """Read one page of a user's wishlist."""

    caller: Caller
    user_id: str
    page_size: int
    page_token: str


@dataclass(frozen=True)
class WishlistChange:
    """Add or remove one product of a user's wishlist."""

    caller: Caller
    user_id: str
    product_id: str


@dataclass(frozen=True)
class ListUsers:
    """Search users (admins only)."""

    caller: Caller
    page_size: int
    page_token: str
    query: str
    role: str | None


@dataclass(frozen=True)
class SetUserRoles:
    """Replace a user's roles (admins only)."""

    caller: Caller
    user_id: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class SuspendUser:
    """Suspend an account (admins only)."""

    caller: Caller
    user_id: str
    reason: str


@dataclass(frozen=True)
class ReactivateUser:
    """Lift a suspension (admins only)."""

    caller: Caller
    user_id: str
