"""Who may sell: sellers and admins whose email address is verified."""

from __future__ import annotations

from services.common.errors import PermissionDenied
from services.common.identity import Caller, Role
from services.product.domain.reasons import ErrorReason


def require_verified_seller(caller: Caller) -> None:
    """Refuse unless the caller is a seller or admin with a verified email.

    The access token's `email_verified` claim tells (the user service sets it from the
    account when it issues the token), so a seller who verifies must refresh their token.
    Putting a listing in front of buyers (creating or publishing it) needs it; taking one
    down (unpublish, archive) does not, so an unverified seller can always stop selling.
    """
    caller.require_any_role(Role.SELLER, Role.ADMIN)
    if not caller.email_verified:
        raise PermissionDenied(
            "verify your email address before selling", reason=ErrorReason.EMAIL_NOT_VERIFIED
        )
