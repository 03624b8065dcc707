"""Generated from proto/marketplace/product/v1/error_reason.proto by `nox -s gen`; do not edit."""

from enum import StrEnum, unique


@unique
class ErrorReason(StrEnum):
    """marketplace.product.v1.ErrorReason: the ErrorInfo.reason values, without the prefix.

    The chassis reasons are in services.common.reasons.ErrorReason.
    """

    # No product has this id, or the caller may not see it (NOT_FOUND).
    PRODUCT_NOT_FOUND = "PRODUCT_NOT_FOUND"

    # A change to a product, or a reply to its reviews, by someone other than its seller or an
    # admin (PERMISSION_DENIED).
    NOT_PRODUCT_OWNER = "NOT_PRODUCT_OWNER"

    # Selling or reviewing before the caller verified their email address (PERMISSION_DENIED).
    EMAIL_NOT_VERIFIED = "EMAIL_NOT_VERIFIED"

    # An update whose etag no longer matches the product; read it again (ABORTED).
    ETAG_MISMATCH = "ETAG_MISMATCH"

    # A change to an archived product (FAILED_PRECONDITION).
    PRODUCT_ARCHIVED = "PRODUCT_ARCHIVED"

    # Publish, unpublish or archive from a state that does not allow it (FAILED_PRECONDITION).
    INVALID_PRODUCT_STATE = "INVALID_PRODUCT_STATE"

    # CreateDiscount when the product holds the most discounts allowed (RESOURCE_EXHAUSTED).
    TOO_MANY_DISCOUNTS = "TOO_MANY_DISCOUNTS"

    # DeleteDiscount for a discount the product does not have (NOT_FOUND).
    DISCOUNT_NOT_FOUND = "DISCOUNT_NOT_FOUND"

    # No category has this id (NOT_FOUND).
    CATEGORY_NOT_FOUND = "CATEGORY_NOT_FOUND"

    # A category whose parent is itself a subcategory (FAILED_PRECONDITION).
    CATEGORY_TOO_DEEP = "CATEGORY_TOO_DEEP"

    # CreateCategory with an id that exists (ALREADY_EXISTS).
    CATEGORY_EXISTS = "CATEGORY_EXISTS"

    # DeleteCategory of a category with subcategories (FAILED_PRECONDITION).
    CATEGORY_HAS_CHILDREN = "CATEGORY_HAS_CHILDREN"

    # DeleteCategory of a category products still use (FAILED_PRECONDITION).
    CATEGORY_IN_USE = "CATEGORY_IN_USE"

    # AdjustInventory that would leave fewer units than open orders reserved
    # (FAILED_PRECONDITION).
    INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"

    # No review of this product has this id (NOT_FOUND).
    REVIEW_NOT_FOUND = "REVIEW_NOT_FOUND"

    # A seller reviewing their own product (PERMISSION_DENIED).
    OWN_PRODUCT_REVIEW = "OWN_PRODUCT_REVIEW"

    # CreateReview after an admin hid the caller's earlier review of the product
    # (FAILED_PRECONDITION).
    REVIEW_MODERATED = "REVIEW_MODERATED"

    # CreateReview when the caller already reviewed the product (ALREADY_EXISTS).
    REVIEW_EXISTS = "REVIEW_EXISTS"

    # A change to a review by someone other than its author (or an admin, for deletes)
    # (PERMISSION_DENIED).
    NOT_REVIEW_AUTHOR = "NOT_REVIEW_AUTHOR"

    # A review kept changing under concurrent writes; retry (ABORTED).
    REVIEW_CONTENDED = "REVIEW_CONTENDED"

    # ReserveInventory for more units than are available (FAILED_PRECONDITION).
    OUT_OF_STOCK = "OUT_OF_STOCK"

    # Another call is still making this order's reservation; retry (ABORTED).
    RESERVATION_IN_PROGRESS = "RESERVATION_IN_PROGRESS"

    # The order's reservation was released and cannot be committed or reused
    # (FAILED_PRECONDITION).
    RESERVATION_RELEASED = "RESERVATION_RELEASED"

    # ReserveInventory with an order id that already reserved different items
    # (FAILED_PRECONDITION).
    RESERVATION_MISMATCH = "RESERVATION_MISMATCH"

    # CommitReservation or ReleaseReservation for an order with no reservation (NOT_FOUND).
    RESERVATION_NOT_FOUND = "RESERVATION_NOT_FOUND"

    # ReleaseReservation of a reservation already committed (FAILED_PRECONDITION).
    RESERVATION_COMMITTED = "RESERVATION_COMMITTED"
