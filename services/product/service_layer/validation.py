"""Validation of the product service's commands, reporting every offending field at once."""

from __future__ import annotations

import math
import re
from urllib.parse import urlsplit

from services.common.errors import Violations
from services.common.text import is_single_line
from services.product.domain.commands import (
    BatchGetProducts,
    CreateDiscount,
    CreateProduct,
    ReserveInventory,
    SearchFilter,
    SearchProducts,
    SortOrder,
)

SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9]*([_-][a-z0-9]+)*$")
MAX_TITLE = 200
MAX_DESCRIPTION = 5000
MAX_SLUG = 64
MAX_STOCK = 1_000_000
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_NAME = 40
MAX_ATTRIBUTE_TEXT = 200
MAX_IMAGES = 10
MAX_URL = 2048
MAX_ID = 128
MAX_BATCH = 100
MAX_QUERY = 200
MAX_RESERVATION_ITEMS = 50
MAX_QUANTITY = 100


def check_slug(violations: Violations, value: str, field: str, *, required: bool) -> None:
    """Record a violation unless `value` is a slug (or empty, when not required)."""
    if not value:
        violations.check(not required, field, "is required")
        return
    violations.check(
        len(value) <= MAX_SLUG and SLUG.match(value) is not None,
        field,
        f"must be a slug of at most {MAX_SLUG} lower-case letters, digits and single hyphens",
    )


def check_id(violations: Violations, value: str, field: str) -> None:
    """Record a violation unless `value` could be an identifier."""
    if not value:
        violations.add(field, "is required")
    elif len(value) > MAX_ID:
        violations.add(field, f"must be at most {MAX_ID} characters")


def validate_create_product(command: CreateProduct) -> None:
    """Raise InvalidArgument unless `command` describes a valid new product."""
    violations = Violations()
    for problem in command.parse_problems:
        violations.add(problem.field, problem.description)
    title = command.title.strip()
    violations.check(bool(title), "product.title", "is required")
    violations.check(
        len(title) <= MAX_TITLE, "product.title", f"must be at most {MAX_TITLE} characters"
    )
    violations.check(is_single_line(title), "product.title", "must be a single line of text")
    violations.check(
        len(command.description) <= MAX_DESCRIPTION,
        "product.description",
        f"must be at most {MAX_DESCRIPTION} characters",
    )
    check_slug(violations, command.category, "product.category", required=True)
    check_slug(violations, command.subcategory, "product.subcategory", required=False)
    list_price, sale_price = command.list_price, command.sale_price
    if list_price is None:
        if not any(p.field.startswith("product.list_price") for p in command.parse_problems):
            violations.add("product.list_price", "is required")
    else:
        violations.check(list_price.minor > 0, "product.list_price", "must be positive")
    if sale_price is not None and list_price is not None:
        if sale_price.currency != list_price.currency:
            violations.add("product.sale_price", "must be in the currency of the list price")
        else:
            violations.check(
                0 < sale_price.minor < list_price.minor,
                "product.sale_price",
                "must be positive and below the list price",
            )
    violations.check(
        0 <= command.initial_stock <= MAX_STOCK,
        "product.initial_stock",
        f"must be between 0 and {MAX_STOCK}",
    )
    violations.check(
        len(command.attributes) <= MAX_ATTRIBUTES,
        "product.attributes",
        f"must have at most {MAX_ATTRIBUTES} entries",
    )
    for name, value in command.attributes.items():
        field = f"product.attributes[{name}]"
        violations.check(
            len(name) <= MAX_ATTRIBUTE_NAME and ATTRIBUTE_NAME.match(name) is not None,
            field,
            "names must be lower-case words joined by _ or -, starting with a letter",
        )
        if value is None:
            violations.add(field, "must have a text, number or bool value")
        elif isinstance(value, str):
            violations.check(
                0 < len(value) <= MAX_ATTRIBUTE_TEXT,
                field,
                f"text values must have 1 to {MAX_ATTRIBUTE_TEXT} characters",
            )
        elif isinstance(value, float):
            violations.check(math.isfinite(value), field, "numbers must be finite")
    violations.check(
        len(command.image_urls) <= MAX_IMAGES,
        "product.image_urls",
        f"must have at most {MAX_IMAGES} entries",
    )
    for index, url in enumerate(command.image_urls):
        parts = urlsplit(url) if len(url) <= MAX_URL else None
        violations.check(
            parts is not None and parts.scheme == "https" and bool(parts.hostname),
            f"product.image_urls[{index}]",
            f"must be an https URL of at most {MAX_URL} characters",
        )
    violations.raise_if_any()


def validate_product_id(product_id: str) -> None:
    """Raise InvalidArgument unless `product_id` could name a product."""
    violations = Violations()
    check_id(violations, product_id, "product_id")
    violations.raise_if_any()


def validate_batch_get(command: BatchGetProducts) -> None:
    """Raise InvalidArgument unless the batch names 1 to 100 plausible ids."""
    violations = Violations()
    count = len(command.product_ids)
    violations.check(count > 0, "product_ids", "is required")
    violations.check(count <= MAX_BATCH, "product_ids", f"must have at most {MAX_BATCH} ids")
    for index, product_id in enumerate(command.product_ids):
        check_id(violations, product_id, f"product_ids[{index}]")
    violations.raise_if_any()


def validate_search(command: SearchProducts) -> SearchFilter:
    """Check a search's filters and settle its sort order; raise InvalidArgument if bad."""
    violations = Violations()
    query = " ".join(command.query.split())
    violations.check(len(query) <= MAX_QUERY, "query", f"must be at most {MAX_QUERY} characters")
    check_slug(violations, command.category, "category", required=False)
    check_slug(violations, command.subcategory, "subcategory", required=False)
    violations.check(len(command.seller_id) <= MAX_ID, "seller_id", "is too long")
    violations.check(command.min_price_minor >= 0, "min_price_minor", "must not be negative")
    violations.check(command.max_price_minor >= 0, "max_price_minor", "must not be negative")
    if command.max_price_minor > 0:
        violations.check(
            command.max_price_minor >= command.min_price_minor,
            "max_price_minor",
            "must not be below min_price_minor",
        )
    violations.check(
        math.isfinite(command.min_rating) and 0 <= command.min_rating <= 5,
        "min_rating",
        "must be between 0 and 5",
    )
    attributes: list[tuple[str, str]] = []
    for index, raw in enumerate(command.attribute_filters):
        name, sep, value = raw.partition("=")
        name, value = name.strip(), value.strip()
        if sep and ATTRIBUTE_NAME.match(name) and 0 < len(value) <= MAX_ATTRIBUTE_TEXT:
            attributes.append((name, value))
        else:
            violations.add(f"attribute_filters[{index}]", "must be name=value, e.g. colour=black")
    violations.raise_if_any()
    sort_order = command.sort_order
    if sort_order is SortOrder.DEFAULT or (sort_order is SortOrder.RELEVANCE and not query):
        sort_order = SortOrder.RELEVANCE if query else SortOrder.NEWEST
    return SearchFilter(
        query=query,
        category=command.category,
        subcategory=command.subcategory,
        seller_id=command.seller_id,
        min_price_minor=command.min_price_minor,
        max_price_minor=command.max_price_minor,
        attributes=tuple(sorted(attributes)),
        in_stock_only=command.in_stock_only,
        min_rating=command.min_rating,
        sort_order=sort_order,
    )


def validate_order_id(order_id: str) -> None:
    """Raise InvalidArgument unless `order_id` could name an order."""
    violations = Violations()
    check_id(violations, order_id, "order_id")
    violations.raise_if_any()


MAX_CHECKOUT_ID = 128


def validate_reserve(command: ReserveInventory) -> None:
    """Raise InvalidArgument unless the reservation names 1 to 50 distinct products."""
    violations = Violations()
    check_id(violations, command.order_id, "order_id")
    violations.check(
        len(command.checkout_id) <= MAX_CHECKOUT_ID and command.checkout_id.isprintable(),
        "checkout_id",
        f"must be at most {MAX_CHECKOUT_ID} printable characters",
    )
    count = len(command.lines)
    violations.check(count > 0, "items", "is required")
    violations.check(
        count <= MAX_RESERVATION_ITEMS, "items", f"must have at most {MAX_RESERVATION_ITEMS} items"
    )
    seen: set[str] = set()
    for index, line in enumerate(command.lines):
        check_id(violations, line.product_id, f"items[{index}].product_id")
        if line.product_id and line.product_id in seen:
            violations.add(f"items[{index}].product_id", "must not repeat a product")
        seen.add(line.product_id)
        violations.check(
            1 <= line.quantity <= MAX_QUANTITY,
            f"items[{index}].quantity",
            f"must be between 1 and {MAX_QUANTITY}",
        )
    violations.raise_if_any()


MAX_DISPLAY_NAME = 100
MAX_CATEGORY_ATTRIBUTES = 30
MAX_REASON = 200
MAX_ADJUST = 1_000_000
MAX_DISCOUNT_DAYS = 366


def validate_discount(command: CreateDiscount) -> None:
    """Raise InvalidArgument unless the discount has one amount and a sensible period."""
    violations = Violations()
    for problem in command.parse_problems:
        violations.add(problem.field, problem.description)
    check_id(violations, command.product_id, "product_id")
    unreadable_amount = any(
        p.field.startswith("discount.amount_off") for p in command.parse_problems
    )
    if command.amount_off is None and not command.percent_off and not unreadable_amount:
        violations.add("discount", "must set percent_off or amount_off")
    if command.amount_off is None and command.percent_off:
        violations.check(
            1 <= command.percent_off <= 90, "discount.percent_off", "must be from 1 to 90"
        )
    if command.amount_off is not None:
        violations.check(command.amount_off.minor > 0, "discount.amount_off", "must be positive")
    start, end = command.start_time, command.end_time
    violations.check(start is not None, "discount.start_time", "is required")
    violations.check(end is not None, "discount.end_time", "is required")
    if start is not None and end is not None:
        violations.check(end > start, "discount.end_time", "must be after start_time")
        violations.check(
            (end - start).days <= MAX_DISCOUNT_DAYS,
            "discount.end_time",
            f"must be at most {MAX_DISCOUNT_DAYS} days after start_time",
        )
    violations.raise_if_any()


def validate_category(
    category_id: str, parent_id: str, display_name: str, attribute_names: tuple[str, ...]
) -> None:
    """Raise InvalidArgument unless the category's fields are valid."""
    violations = Violations()
    check_slug(violations, category_id, "category.category_id", required=True)
    check_slug(violations, parent_id, "category.parent_id", required=False)
    violations.check(
        parent_id != category_id or not parent_id,
        "category.parent_id",
        "must not be the category itself",
    )
    name = display_name.strip()
    violations.check(bool(name), "category.display_name", "is required")
    violations.check(is_single_line(name), "category.display_name", "must be a single line of text")
    violations.check(
        len(name) <= MAX_DISPLAY_NAME,
        "category.display_name",
        f"must be at most {MAX_DISPLAY_NAME} characters",
    )
    violations.check(
        len(attribute_names) <= MAX_CATEGORY_ATTRIBUTES,
        "category.attribute_names",
        f"must have at most {MAX_CATEGORY_ATTRIBUTES} entries",
    )
    for index, attribute in enumerate(attribute_names):
        violations.check(
            len(attribute) <= MAX_ATTRIBUTE_NAME and ATTRIBUTE_NAME.match(attribute) is not None,
            f"category.attribute_names[{index}]",
            "names must be lower-case words joined by _ or -, starting with a letter",
        )
    violations.raise_if_any()


def validate_reason(violations: Violations, reason: str, field: str = "reason") -> None:
    """Record a violation unless `reason` is a non-blank text of a sensible length."""
    violations.check(bool(reason.strip()), field, "is required")
    violations.check(len(reason) <= MAX_REASON, field, f"must be at most {MAX_REASON} characters")
