"""Generated from proto/marketplace/user/v1/error_reason.proto by `nox -s gen`; do not edit."""

from enum import StrEnum, unique


@unique
class ErrorReason(StrEnum):
    """marketplace.user.v1.ErrorReason: the ErrorInfo.reason values, without the prefix.

    The chassis reasons are in services.common.reasons.ErrorReason.
    """

    # No user has this id (NOT_FOUND).
    USER_NOT_FOUND = "USER_NOT_FOUND"

    # A caller acted on another user's account without the admin role (PERMISSION_DENIED).
    NOT_OWNER = "NOT_OWNER"

    # CreateUser with a username another account holds or reserves (ALREADY_EXISTS); a taken
    # email is not revealed.
    USERNAME_TAKEN = "USERNAME_TAKEN"

    # Login with an unknown username or a wrong password (UNAUTHENTICATED).
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"

    # Login after too many failed attempts; the message says when to try again
    # (RESOURCE_EXHAUSTED).
    TOO_MANY_FAILED_SIGN_INS = "TOO_MANY_FAILED_SIGN_INS"

    # RefreshToken with a token the service never issued (UNAUTHENTICATED).
    REFRESH_TOKEN_INVALID = "REFRESH_TOKEN_INVALID"

    # RefreshToken with a token of a session that was signed out or whose user was suspended
    # (UNAUTHENTICATED).
    REFRESH_TOKEN_REVOKED = "REFRESH_TOKEN_REVOKED"

    # RefreshToken with a token that was already used; the whole session is revoked
    # (UNAUTHENTICATED).
    REFRESH_TOKEN_REUSED = "REFRESH_TOKEN_REUSED"

    # RefreshToken with an expired token; sign in again (UNAUTHENTICATED).
    REFRESH_TOKEN_EXPIRED = "REFRESH_TOKEN_EXPIRED"

    # ChangePassword with a current_password that is not the caller's (INVALID_ARGUMENT).
    WRONG_PASSWORD = "WRONG_PASSWORD"

    # ResendVerificationEmail for an address already verified (FAILED_PRECONDITION).
    EMAIL_ALREADY_VERIFIED = "EMAIL_ALREADY_VERIFIED"

    # ResendVerificationEmail again too soon after the last mail (RESOURCE_EXHAUSTED).
    MAIL_TOO_SOON = "MAIL_TOO_SOON"

    # SetUserRoles by an admin removing their own admin role (FAILED_PRECONDITION).
    CANNOT_DEMOTE_SELF = "CANNOT_DEMOTE_SELF"

    # SuspendUser by an admin on their own account (FAILED_PRECONDITION).
    CANNOT_SUSPEND_SELF = "CANNOT_SUSPEND_SELF"

    # An internal lookup of a buyer whose account is suspended (FAILED_PRECONDITION).
    USER_SUSPENDED = "USER_SUSPENDED"

    # The user's address book has no address with this id (NOT_FOUND).
    ADDRESS_NOT_FOUND = "ADDRESS_NOT_FOUND"

    # CreateAddress when the address book is full (RESOURCE_EXHAUSTED).
    ADDRESS_LIMIT_REACHED = "ADDRESS_LIMIT_REACHED"

    # An internal lookup of a buyer's default shipping address when none is set (NOT_FOUND).
    NO_DEFAULT_SHIPPING_ADDRESS = "NO_DEFAULT_SHIPPING_ADDRESS"

    # A wishlist change naming a product the catalog does not have (NOT_FOUND).
    PRODUCT_NOT_FOUND = "PRODUCT_NOT_FOUND"

    # AddWishlistItem when the wishlist is full (RESOURCE_EXHAUSTED).
    WISHLIST_LIMIT_REACHED = "WISHLIST_LIMIT_REACHED"

    # RemoveWishlistItem for a product not on the wishlist (NOT_FOUND).
    WISHLIST_ITEM_NOT_FOUND = "WISHLIST_ITEM_NOT_FOUND"

    # The product service could not be reached to check a wishlist product or to export a user's
    # data (UNAVAILABLE).
    PRODUCT_SERVICE_UNAVAILABLE = "PRODUCT_SERVICE_UNAVAILABLE"

    # ExportMyData when the order service could not be reached (UNAVAILABLE): an export is
    # complete or not given.
    ORDER_SERVICE_UNAVAILABLE = "ORDER_SERVICE_UNAVAILABLE"
