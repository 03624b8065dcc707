-- migrate:up

-- The user a buyer_id names lives in the user service's database, out of reach of a
-- foreign key: CreateOrder validates the buyer (and an address book entry) through the
-- user service's internal API before anything is reserved or charged, which is the
-- check the key would have made.
COMMENT ON COLUMN orders.buyer_id IS
    'The buyer (user service). No foreign key across service databases: validated through UserInternalService at creation.';

-- Whether the reservation became a sale in the product service; the reconciler finishes
-- paid orders whose commit was lost to a crash.
ALTER TABLE orders ADD COLUMN stock_committed boolean NOT NULL DEFAULT false;
-- What was refunded so far, kept on the order so sales reports sum net totals from the
-- orders table alone.
ALTER TABLE orders ADD COLUMN refunded_minor bigint NOT NULL DEFAULT 0
    CHECK (refunded_minor >= 0 AND refunded_minor <= total_minor);

ALTER TABLE order_items ADD COLUMN carrier text NOT NULL DEFAULT '';
ALTER TABLE order_items ADD COLUMN tracking_number text NOT NULL DEFAULT '';
ALTER TABLE order_items ADD COLUMN shipped_at timestamptz;

-- Sellers list the orders holding their items, newest first.
CREATE INDEX order_items_seller_order_idx ON order_items (seller_id, order_id);

-- One row per refund; the key makes a retried RefundOrder return the first result.
CREATE TABLE refunds (
    id uuid PRIMARY KEY,
    order_id uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    idempotency_key text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    -- sha256 of who asked for what: the same key with another request is refused.
    request_fingerprint bytea NOT NULL,
    actor text NOT NULL,
    -- The seller whose items the refund is for; null for an admin's refund of the order.
    seller_id text,
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    currency char(3) NOT NULL,
    reason text NOT NULL,
    gateway_reference text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    UNIQUE (order_id, idempotency_key)
);

CREATE INDEX refunds_seller_idx ON refunds (seller_id, created_at) WHERE seller_id IS NOT NULL;

-- Every call made to the payment gateway: written as 'pending' before the call and
-- updated with its outcome after, so a crash in between leaves a trace to reconcile.
CREATE TABLE payment_attempts (
    id uuid PRIMARY KEY,
    order_id uuid NOT NULL,
    operation text NOT NULL CHECK (operation IN ('authorize', 'capture', 'void', 'refund')),
    -- The gateway's idempotency key of the call.
    idempotency_key text NOT NULL,
    amount_minor bigint NOT NULL CHECK (amount_minor >= 0),
    currency char(3) NOT NULL,
    outcome text NOT NULL CHECK (
        outcome IN ('pending', 'succeeded', 'declined', 'failed', 'timed_out')
    ),
    gateway_reference text NOT NULL DEFAULT '',
    detail text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    finished_at timestamptz
);

CREATE INDEX payment_attempts_order_idx ON payment_attempts (order_id, created_at);

-- The transactional outbox: written in the transaction of the change it announces, and
-- published to Redis Streams by the relay afterwards (at least once).
CREATE TABLE outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id uuid NOT NULL UNIQUE,
    order_id uuid NOT NULL,
    event_type text NOT NULL,
    -- A serialized marketplace.order.v1.OrderEvent.
    payload bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);

-- The relay reads only what is still to publish, oldest first.
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;

-- migrate:down

DROP TABLE outbox;
DROP TABLE payment_attempts;
DROP TABLE refunds;
DROP INDEX order_items_seller_order_idx;
ALTER TABLE order_items DROP COLUMN shipped_at;
ALTER TABLE order_items DROP COLUMN tracking_number;
ALTER TABLE order_items DROP COLUMN carrier;
ALTER TABLE orders DROP COLUMN refunded_minor;
ALTER TABLE orders DROP COLUMN stock_committed;
COMMENT ON COLUMN orders.buyer_id IS NULL;
