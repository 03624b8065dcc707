"""Who may do what to a listing: verified sellers, a product's seller, admins."""

from __future__ import annotations

from services.common.errors import NotFound, PermissionDenied
from services.common.identity import Caller, Role
from services.product.domain.model import Product
from services.product.domain.reasons import ErrorReason
from services.product.service_layer import validation
from services.product.service_layer.ports import ProductRepository


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


def product_not_found(product_id: str) -> NotFound:
    """The error of a product that does not exist or that the caller may not see."""
    return NotFound(
        "no such product", reason=ErrorReason.PRODUCT_NOT_FOUND, metadata={"product_id": product_id}
    )


async def managed_product(product_id: str, caller: Caller, products: ProductRepository) -> Product:
    """The product if the caller may change it: its seller or an admin.

    Others who cannot even see it (a draft of another seller) get NOT_FOUND, so drafts do
    not leak; others who can see it get PERMISSION_DENIED.
    """
    caller.require_any_role(Role.SELLER, Role.ADMIN)
    validation.validate_product_id(product_id)
    product = await products.get(product_id)
    if product is None or not product.visible_to(caller.user_id, is_admin=caller.is_admin):
        raise product_not_found(product_id)
    if not product.managed_by(caller.user_id, is_admin=caller.is_admin):
        raise PermissionDenied(
            "only the product's seller or an admin may change it",
            reason=ErrorReason.NOT_PRODUCT_OWNER,
            metadata={"product_id": product_id},
        )
    return product


async def listed_product(product_id: str, products: ProductRepository) -> Product:
    """The product if buyers can see it (published); NOT_FOUND otherwise."""
    product = await products.get(product_id)
    if product is None or not product.is_published:
        raise product_not_found(product_id)
    return product
