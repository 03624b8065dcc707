"""Pricing use cases: scheduling and removing discounts on a listing."""

from __future__ import annotations

import uuid

import structlog

from services.common.clock import Clock
from services.common.errors import NotFound, ResourceExhausted, Violations
from services.product.domain.commands import CreateDiscount, DeleteDiscount
from services.product.domain.model import Discount, to_millis
from services.product.domain.reasons import ErrorReason
from services.product.service_layer import validation
from services.product.service_layer.access import managed_product, product_not_found
from services.product.service_layer.ports import ProductRepository

log = structlog.get_logger("product")

MAX_DISCOUNTS = 20


async def create_discount(
    command: CreateDiscount,
    *,
    products: ProductRepository,
    clock: Clock,
) -> Discount:
    """Schedule a discount on a product the caller manages."""
    caller = command.caller
    validation.validate_discount(command)
    product = await managed_product(command.product_id, caller, products)
    assert command.start_time is not None and command.end_time is not None
    if command.amount_off is not None:
        violations = Violations()
        violations.check(
            command.amount_off.currency == product.list_price.currency,
            "discount.amount_off.currency_code",
            "must be the currency of the product's list price",
        )
        violations.check(
            command.amount_off.minor < product.list_price.minor,
            "discount.amount_off",
            "must be below the product's list price",
        )
        violations.raise_if_any()
    discount = Discount(
        discount_id=uuid.uuid4().hex[:16],
        # MongoDB keeps milliseconds: the answer shows what is stored.
        start_time=to_millis(command.start_time),
        end_time=to_millis(command.end_time),
        percent_off=command.percent_off,
        amount_off=command.amount_off,
    )
    updated = await products.add_discount(
        command.product_id, discount, now=to_millis(clock.now()), max_discounts=MAX_DISCOUNTS
    )
    if updated is None:
        raise product_not_found(command.product_id)
    if all(d.discount_id != discount.discount_id for d in updated.discounts):
        raise ResourceExhausted(
            f"a product has at most {MAX_DISCOUNTS} discounts; delete old ones first",
            reason=ErrorReason.TOO_MANY_DISCOUNTS,
            metadata={"product_id": command.product_id},
        )
    log.info("discount_created", product_id=command.product_id, discount_id=discount.discount_id)
    return discount


async def delete_discount(
    command: DeleteDiscount,
    *,
    products: ProductRepository,
    clock: Clock,
) -> None:
    """Remove a discount from a product the caller manages."""
    caller = command.caller
    violations = Violations()
    validation.check_id(violations, command.discount_id, "discount_id")
    violations.raise_if_any()
    await managed_product(command.product_id, caller, products)
    if not await products.remove_discount(
        command.product_id, command.discount_id, now=to_millis(clock.now())
    ):
        raise NotFound(
            "no such discount on this product",
            reason=ErrorReason.DISCOUNT_NOT_FOUND,
            metadata={"product_id": command.product_id, "discount_id": command.discount_id},
        )
