-- migrate:up

-- A seller's shipping rates (PricingService.UpdateShippingProfile), all amounts in the
-- profile's currency. A seller without a profile ships for free.
CREATE TABLE shipping_profiles (
    seller_id text PRIMARY KEY,
    currency char(3) NOT NULL,
    updated_at timestamptz NOT NULL
);

-- One rate per destination country; country_code '' is the seller's default rate.
CREATE TABLE shipping_rates (
    seller_id text NOT NULL REFERENCES shipping_profiles (seller_id) ON DELETE CASCADE,
    country_code text NOT NULL CHECK (country_code = '' OR country_code ~ '^[A-Z]{2}$'),
    flat_fee_minor bigint NOT NULL CHECK (flat_fee_minor >= 0),
    per_item_fee_minor bigint NOT NULL CHECK (per_item_fee_minor >= 0),
    -- Shipping is free once the seller's item subtotal reaches this; NULL: never free.
    free_over_minor bigint CHECK (free_over_minor >= 0),
    PRIMARY KEY (seller_id, country_code)
);

-- The platform's tax rate by destination country (admins), in basis points. A country
-- without a row is taxed at zero.
CREATE TABLE tax_rates (
    country_code text PRIMARY KEY CHECK (country_code ~ '^[A-Z]{2}$'),
    basis_points integer NOT NULL CHECK (basis_points BETWEEN 0 AND 10000),
    updated_at timestamptz NOT NULL
);

-- One part per seller of an order, priced at placement and never changed: the seller's
-- items, the shipping they charge, and the tax on both. The order's totals are the sums.
CREATE TABLE order_parts (
    order_id uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    seller_id text NOT NULL,
    subtotal_minor bigint NOT NULL CHECK (subtotal_minor >= 0),
    shipping_minor bigint NOT NULL CHECK (shipping_minor >= 0),
    tax_minor bigint NOT NULL CHECK (tax_minor >= 0),
    total_minor bigint NOT NULL
        CHECK (total_minor = subtotal_minor + shipping_minor + tax_minor),
    PRIMARY KEY (order_id, seller_id)
);

CREATE INDEX order_parts_seller_idx ON order_parts (seller_id);

ALTER TABLE orders
    ADD COLUMN shipping_total_minor bigint NOT NULL DEFAULT 0 CHECK (shipping_total_minor >= 0),
    ADD COLUMN tax_total_minor bigint NOT NULL DEFAULT 0 CHECK (tax_total_minor >= 0);

-- Orders placed before shipping and tax were charged: one free, untaxed part per seller.
INSERT INTO order_parts (order_id, seller_id, subtotal_minor, shipping_minor, tax_minor,
                         total_minor)
SELECT order_id, seller_id, sum(line_total_minor), 0, 0, sum(line_total_minor)
FROM order_items
GROUP BY order_id, seller_id;

-- migrate:down

ALTER TABLE orders DROP COLUMN tax_total_minor, DROP COLUMN shipping_total_minor;
DROP TABLE order_parts;
DROP TABLE tax_rates;
DROP TABLE shipping_rates;
DROP TABLE shipping_profiles;
