-- migrate:up

-- buyer_id has no foreign key: users live in the user service's own database, so the
-- order service cannot reference them. The rule is enforced at creation instead: the
-- buyer is proven by the verified access token, and checkout asks the user service
-- (UserInternalService.GetShippingAddress) that the account exists and is not suspended
-- before anything is reserved or charged.
CREATE TABLE orders (
    id uuid PRIMARY KEY,
    buyer_id uuid NOT NULL,
    status text NOT NULL CHECK (
        status IN ('pending', 'paid', 'fulfilling', 'shipped', 'delivered', 'cancelled',
                   'refunded', 'partially_refunded')
    ),
    currency char(3) NOT NULL,
    subtotal_minor bigint NOT NULL CHECK (subtotal_minor >= 0),
    total_minor bigint NOT NULL CHECK (total_minor >= 0),
    -- A copy taken when the order is placed: later address book edits must not move it.
    shipping_address jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- ListOrders: a buyer's orders, newest first, keyset-paginated on (created_at, id).
CREATE INDEX orders_buyer_created_idx ON orders (buyer_id, created_at DESC, id DESC);
-- Sales reports scan by time and sum totals without touching the heap.
CREATE INDEX orders_created_total_idx ON orders (created_at, total_minor);
-- Workers look for orders still moving; finished ones are the vast majority and stay out.
CREATE INDEX orders_in_progress_status_idx ON orders (status)
    WHERE status IN ('pending', 'paid', 'fulfilling', 'shipped');

CREATE TABLE order_items (
    order_id uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    -- Products and sellers live in other services' databases; the values are a snapshot.
    product_id text NOT NULL,
    seller_id text NOT NULL,
    title text NOT NULL,
    quantity integer NOT NULL CHECK (quantity BETWEEN 1 AND 100),
    unit_price_minor bigint NOT NULL CHECK (unit_price_minor >= 0),
    line_total_minor bigint NOT NULL CHECK (line_total_minor = unit_price_minor * quantity),
    PRIMARY KEY (order_id, product_id)
);

CREATE INDEX order_items_seller_idx ON order_items (seller_id);

-- One row per payment attempt of an order.
CREATE TABLE payments (
    id uuid PRIMARY KEY,
    order_id uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    gateway_reference text NOT NULL DEFAULT '',
    amount_minor bigint NOT NULL CHECK (amount_minor >= 0),
    currency char(3) NOT NULL,
    refunded_minor bigint NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0),
    status text NOT NULL CHECK (
        status IN ('authorized', 'captured', 'declined', 'voided', 'refunded', 'failed')
    ),
    failure_reason text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL
);

CREATE INDEX payments_order_idx ON payments (order_id, created_at);

CREATE TABLE order_status_history (
    -- An identity orders entries written within the same instant.
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    from_status text,
    to_status text NOT NULL,
    actor text NOT NULL,
    reason text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL
);

CREATE INDEX order_status_history_order_idx ON order_status_history (order_id, id);

-- The outcome of each CreateOrder idempotency key, so a retry never charges twice.
CREATE TABLE idempotency_keys (
    buyer_id uuid NOT NULL,
    key text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    -- sha256 of the deterministically serialized request: the same key with another body is refused.
    request_fingerprint bytea NOT NULL,
    state text NOT NULL CHECK (state IN ('in_progress', 'completed')),
    -- On success: the serialized Order. On failure: null, and the error columns are set.
    response bytea,
    error_code text,
    error_message text,
    error_reason text,
    error_metadata jsonb,
    order_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (buyer_id, key),
    CHECK (state = 'in_progress' OR response IS NOT NULL OR error_code IS NOT NULL)
);

-- migrate:down

DROP TABLE idempotency_keys;
DROP TABLE order_status_history;
DROP TABLE payments;
DROP TABLE order_items;
DROP TABLE orders;
