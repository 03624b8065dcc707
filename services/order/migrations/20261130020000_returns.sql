-- migrate:up

-- A buyer's return of one seller's delivered lines of an order. The lines are kept with
-- the price the buyer paid (jsonb: product_id, quantity, title, unit_price_minor). While
-- the refund of a received return runs at the gateway, refund_change_id names its
-- order_changes row; each refund attempt has its own gateway key (refund_attempts).
CREATE TABLE returns (
    id uuid PRIMARY KEY,
    order_id uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    buyer_id uuid NOT NULL,
    seller_id text NOT NULL,
    state text NOT NULL
        CHECK (state IN ('requested', 'approved', 'rejected', 'received', 'refunded')),
    reason text NOT NULL,
    lines jsonb NOT NULL,
    currency char(3) NOT NULL,
    idempotency_key text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    request_fingerprint bytea NOT NULL,
    decision_reason text NOT NULL DEFAULT '',
    refund_change_id uuid REFERENCES order_changes (id),
    refund_attempts integer NOT NULL DEFAULT 0,
    refund_amount_minor bigint CHECK (refund_amount_minor >= 0),
    refund_failure text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    decided_at timestamptz,
    received_at timestamptz,
    refunded_at timestamptz,
    -- A retry with the same key finds the first return instead of making a second.
    UNIQUE (buyer_id, idempotency_key)
);

CREATE INDEX returns_order_idx ON returns (order_id, created_at, id);

-- migrate:down

DROP TABLE returns;
