-- migrate:up

-- One cart per buyer. While a checkout of the cart runs, the row holds it: the checkout's
-- idempotency key, the lines it buys, the owner running it and how long that owner may
-- run before a retry with the same key takes over. The hold is settled from the key's
-- outcome in idempotency_keys: a paid order removes the lines, a failure just lifts it.
CREATE TABLE carts (
    buyer_id uuid PRIMARY KEY,
    checkout_key text,
    checkout_owner uuid,
    checkout_lines jsonb,
    checkout_lease_until timestamptz,
    updated_at timestamptz NOT NULL,
    CONSTRAINT carts_checkout_hold_whole CHECK (
        (checkout_key IS NULL) = (checkout_lines IS NULL)
        AND (checkout_key IS NULL) = (checkout_owner IS NULL)
        AND (checkout_key IS NULL) = (checkout_lease_until IS NULL)
    )
);

-- The lines of a cart, with what the catalog said when the buyer last added the product
-- (title, seller, unit price), so a read can tell a changed price and still show a line
-- while the catalog is unreachable.
CREATE TABLE cart_items (
    buyer_id uuid NOT NULL REFERENCES carts (buyer_id) ON DELETE CASCADE,
    product_id text NOT NULL,
    quantity integer NOT NULL CHECK (quantity BETWEEN 1 AND 100),
    seller_id text NOT NULL,
    title text NOT NULL,
    added_unit_price_minor bigint NOT NULL CHECK (added_unit_price_minor >= 0),
    currency char(3) NOT NULL,
    position integer NOT NULL,
    added_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (buyer_id, product_id)
);

-- migrate:down

DROP TABLE cart_items;
DROP TABLE carts;
