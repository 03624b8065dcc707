"""Generated from proto/marketplace/order/v1/error_reason.proto by `nox -s gen`; do not edit."""

from enum import StrEnum, unique


@unique
class ErrorReason(StrEnum):
    """marketplace.order.v1.ErrorReason: the ErrorInfo.reason values, without the prefix.

    The chassis reasons are in services.common.reasons.ErrorReason.
    """

    # No order has this id, or the caller may not see it (NOT_FOUND).
    ORDER_NOT_FOUND = "ORDER_NOT_FOUND"

    # A caller whose id is not a marketplace user account tried to hold an order
    # (FAILED_PRECONDITION).
    BUYER_ID_INVALID = "BUYER_ID_INVALID"

    # CreateOrder by a caller whose account the user service does not know
    # (FAILED_PRECONDITION).
    BUYER_NOT_FOUND = "BUYER_NOT_FOUND"

    # CreateOrder by a buyer whose account is suspended (FAILED_PRECONDITION).
    BUYER_SUSPENDED = "BUYER_SUSPENDED"

    # CreateOrder with an address_id the buyer's address book does not hold (NOT_FOUND).
    ADDRESS_NOT_FOUND = "ADDRESS_NOT_FOUND"

    # CreateOrder without an address when the buyer has no default one (FAILED_PRECONDITION).
    NO_DEFAULT_SHIPPING_ADDRESS = "NO_DEFAULT_SHIPPING_ADDRESS"

    # The user service could not be reached to check the buyer (UNAVAILABLE).
    USER_SERVICE_UNAVAILABLE = "USER_SERVICE_UNAVAILABLE"

    # The product service could not be reached to reserve stock (UNAVAILABLE).
    INVENTORY_UNAVAILABLE = "INVENTORY_UNAVAILABLE"

    # CreateOrder or AddCartItem naming a product the catalog does not sell (NOT_FOUND).
    PRODUCT_NOT_FOUND = "PRODUCT_NOT_FOUND"

    # CreateOrder for more units than are in stock (FAILED_PRECONDITION).
    OUT_OF_STOCK = "OUT_OF_STOCK"

    # The stock of this order is still being reserved; retry (ABORTED).
    RESERVATION_IN_PROGRESS = "RESERVATION_IN_PROGRESS"

    # The order's stock reservation was released before it could be committed
    # (FAILED_PRECONDITION).
    RESERVATION_RELEASED = "RESERVATION_RELEASED"

    # The order's id already reserved different items (FAILED_PRECONDITION).
    RESERVATION_MISMATCH = "RESERVATION_MISMATCH"

    # The order has no stock reservation to commit or release (NOT_FOUND).
    RESERVATION_NOT_FOUND = "RESERVATION_NOT_FOUND"

    # The order's stock reservation was already committed (FAILED_PRECONDITION).
    RESERVATION_COMMITTED = "RESERVATION_COMMITTED"

    # CreateOrder with items priced in different currencies, or a refund in another currency
    # than the order's (FAILED_PRECONDITION).
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"

    # An idempotency key (or request_id) reused for a different request (FAILED_PRECONDITION).
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"

    # A request with the same idempotency key is still running; retry later (ABORTED).
    REQUEST_IN_PROGRESS = "REQUEST_IN_PROGRESS"

    # The payment method was declined; the order is cancelled (FAILED_PRECONDITION).
    PAYMENT_DECLINED = "PAYMENT_DECLINED"

    # The payment gateway did not answer and nothing was charged or refunded (UNAVAILABLE).
    PAYMENT_UNAVAILABLE = "PAYMENT_UNAVAILABLE"

    # The payment's outcome is not known yet; retry with the same idempotency key (UNAVAILABLE).
    PAYMENT_PENDING = "PAYMENT_PENDING"

    # CancelOrder while the order's payment is still being processed (FAILED_PRECONDITION).
    PAYMENT_IN_PROGRESS = "PAYMENT_IN_PROGRESS"

    # The order was interrupted and cancelled by the reconciler; place it again (UNAVAILABLE).
    ORDER_INTERRUPTED = "ORDER_INTERRUPTED"

    # CancelOrder by someone other than the buyer or an admin (PERMISSION_DENIED).
    NOT_ORDER_BUYER = "NOT_ORDER_BUYER"

    # ShipOrderItems or RefundOrder by a seller none of whose items are in the order
    # (PERMISSION_DENIED).
    NOT_ORDER_SELLER = "NOT_ORDER_SELLER"

    # ShipOrderItems naming items of another seller (PERMISSION_DENIED).
    ITEM_NOT_YOURS = "ITEM_NOT_YOURS"

    # ShipOrderItems naming items already shipped (FAILED_PRECONDITION).
    ITEM_ALREADY_SHIPPED = "ITEM_ALREADY_SHIPPED"

    # A change the order's status does not allow; metadata names the status and the target
    # (FAILED_PRECONDITION).
    ILLEGAL_STATUS_TRANSITION = "ILLEGAL_STATUS_TRANSITION"

    # RefundOrder when everything captured was already refunded (FAILED_PRECONDITION).
    NOTHING_TO_REFUND = "NOTHING_TO_REFUND"

    # RefundOrder of an order with no captured payment (FAILED_PRECONDITION).
    NOT_CAPTURED = "NOT_CAPTURED"

    # RefundOrder with an amount that is not positive (FAILED_PRECONDITION).
    REFUND_AMOUNT_INVALID = "REFUND_AMOUNT_INVALID"

    # RefundOrder for more than was captured and not yet refunded (FAILED_PRECONDITION).
    REFUND_EXCEEDS_CAPTURED = "REFUND_EXCEEDS_CAPTURED"

    # A cancel or refund is recorded but the gateway did not answer yet; read the order again
    # shortly (UNAVAILABLE).
    CHANGE_PENDING = "CHANGE_PENDING"

    # Another cancel or refund of the order is in progress (ABORTED).
    ORDER_CHANGE_IN_PROGRESS = "ORDER_CHANGE_IN_PROGRESS"

    # The order changed while the request ran; read it again and retry (ABORTED).
    ORDER_CONCURRENTLY_MODIFIED = "ORDER_CONCURRENTLY_MODIFIED"

    # The order database is too busy to take the change now; retry shortly (UNAVAILABLE).
    DATABASE_BUSY = "DATABASE_BUSY"

    # GetSalesReport by a seller for another seller's sales (PERMISSION_DENIED).
    NOT_YOUR_SALES = "NOT_YOUR_SALES"

    # UpdateCartItem or RemoveCartItem of a product the caller's cart does not hold, or
    # CheckoutCart naming one (NOT_FOUND).
    CART_ITEM_NOT_FOUND = "CART_ITEM_NOT_FOUND"

    # CheckoutCart of a cart without lines (FAILED_PRECONDITION).
    CART_EMPTY = "CART_EMPTY"

    # AddCartItem of a new product to a cart that holds 50 lines already (FAILED_PRECONDITION).
    CART_FULL = "CART_FULL"

    # AddCartItem that would take a line above 100 units (FAILED_PRECONDITION).
    CART_ITEM_QUANTITY_EXCEEDED = "CART_ITEM_QUANTITY_EXCEEDED"

    # A change or another checkout of a cart while a checkout of it runs, or while its payment's
    # outcome is not known yet; retry shortly (ABORTED).
    CART_CHECKOUT_IN_PROGRESS = "CART_CHECKOUT_IN_PROGRESS"

    # CreateReturn of an order that was not delivered (or whose every line was refunded
    # already); metadata "status" is the order's status (FAILED_PRECONDITION).
    ORDER_NOT_DELIVERED = "ORDER_NOT_DELIVERED"

    # CreateReturn after the return window closed; metadata "window_days" is the window and
    # "delivered_at" the delivery time (FAILED_PRECONDITION).
    RETURN_WINDOW_CLOSED = "RETURN_WINDOW_CLOSED"

    # CreateReturn naming a product that is not a line of the order (FAILED_PRECONDITION).
    RETURN_ITEM_NOT_IN_ORDER = "RETURN_ITEM_NOT_IN_ORDER"

    # CreateReturn of more units of a line than were delivered and not already asked back by an
    # open or finished return; metadata "product_id" and "returnable" say how many units are
    # left (FAILED_PRECONDITION).
    RETURN_QUANTITY_EXCEEDED = "RETURN_QUANTITY_EXCEEDED"

    # CreateReturn of lines of more than one seller: ask one return per seller, since each
    # seller decides on their own lines (FAILED_PRECONDITION).
    RETURN_SPANS_SELLERS = "RETURN_SPANS_SELLERS"

    # No return has this id, or the caller may not see it (NOT_FOUND).
    RETURN_NOT_FOUND = "RETURN_NOT_FOUND"

    # ApproveReturn, RejectReturn or ReceiveReturn by a caller who is neither the seller of the
    # returned lines nor an admin (PERMISSION_DENIED).
    NOT_RETURN_SELLER = "NOT_RETURN_SELLER"

    # A decision or receipt the return's state does not allow, such as approving a rejected
    # return; metadata "state" is the return's state (FAILED_PRECONDITION).
    RETURN_STATE_INVALID = "RETURN_STATE_INVALID"

    # ReceiveReturn while the refund of the return is being carried out at the payment gateway;
    # read the return again shortly (ABORTED).
    RETURN_REFUND_IN_PROGRESS = "RETURN_REFUND_IN_PROGRESS"

    # GetSellerBalance, ListLedgerEntries or ListPayouts by a seller for another seller's money
    # (PERMISSION_DENIED).
    NOT_YOUR_LEDGER = "NOT_YOUR_LEDGER"
