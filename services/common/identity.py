"""Who is calling: the caller's identity and roles, pure Python the domain may import."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from enum import StrEnum

from services.common.errors import PermissionDenied, Unauthenticated
from services.common.reasons import ErrorReason


class Role(StrEnum):
    """Roles as they appear in the `roles` claim."""

    CUSTOMER = "customer"
    SELLER = "seller"
    ADMIN = "admin"


@dataclass(frozen=True)
class Caller:
    """Who is calling, as proven by their access token."""

    user_id: str
    roles: frozenset[Role] = field(default_factory=frozenset)
    email_verified: bool = False
    session_id: str = ""

    @property
    def is_admin(self) -> bool:
        """Whether the caller holds the admin role."""
        return Role.ADMIN in self.roles

    def require_any_role(self, *roles: Role) -> None:
        """Refuse the call unless the caller holds one of `roles`."""
        if not self.roles.intersection(roles):
            wanted = " or ".join(r.value for r in roles)
            raise PermissionDenied(
                f"this needs the {wanted} role", reason=ErrorReason.ROLE_REQUIRED
            )


_caller: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("caller", default=None)


def set_caller(caller: Caller | None) -> contextvars.Token[Caller | None]:
    """Bind the caller of the current RPC; the auth interceptor does this."""
    return _caller.set(caller)


def reset_caller(token: contextvars.Token[Caller | None]) -> None:
    """Unbind the caller when the RPC ends."""
    _caller.reset(token)


def optional_caller() -> Caller | None:
    """The caller of a public RPC, if they sent a token."""
    return _caller.get()


def current_caller() -> Caller:
    """The authenticated caller; raises UNAUTHENTICATED when there is none."""
    caller = _caller.get()
    if caller is None:
        raise Unauthenticated(
            "sign in first: send a bearer access token", reason=ErrorReason.TOKEN_MISSING
        )
    return caller
