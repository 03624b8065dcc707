-- migrate:up

-- Encryption at rest (README: "Encryption at rest"). The data-encryption keys (AES-256) of
-- this database, each wrapped by a key-encryption key only the environment holds
-- (ORDER_DATA_KEK); kek_id names which. The newest is the one new data is sealed with.
CREATE TABLE data_keys (
    key_id uuid PRIMARY KEY,
    wrapped_key bytea NOT NULL,
    kek_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    rewrapped_at timestamptz
);

-- The shipping address's personal fields sealed as one JSON object; the destination
-- country stays in clear (tax and reports read it). shipping_address (plaintext jsonb) stays,
-- nullable, for orders placed before this migration: the service seals them at startup (or
-- `python -m services.order.data_keys backfill`) and sets it NULL.
ALTER TABLE orders
    ADD COLUMN shipping_address_sealed bytea,
    ADD COLUMN shipping_country_code text
        CHECK (shipping_country_code ~ '^[A-Z]{2}$'),
    ALTER COLUMN shipping_address DROP NOT NULL;

UPDATE orders SET shipping_country_code = shipping_address ->> 'country_code'
WHERE shipping_country_code IS NULL;

ALTER TABLE orders ALTER COLUMN shipping_country_code SET NOT NULL;

-- A completed checkout's stored answer is the whole order, shipping address included: it is
-- sealed too (response then holds the ciphertext, bound to the buyer and key). Answers
-- stored before this migration are sealed at startup like the orders.
ALTER TABLE idempotency_keys ADD COLUMN response_sealed boolean NOT NULL DEFAULT false;

-- migrate:down

-- Sealed rows cannot be decrypted in SQL: going down would lose them, so refuse.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM orders WHERE shipping_address_sealed IS NOT NULL)
       OR EXISTS (SELECT 1 FROM idempotency_keys WHERE response_sealed) THEN
        RAISE EXCEPTION 'sealed shipping addresses exist; they cannot be migrated down in SQL';
    END IF;
END $$;

ALTER TABLE idempotency_keys DROP COLUMN response_sealed;

ALTER TABLE orders
    DROP COLUMN shipping_address_sealed,
    DROP COLUMN shipping_country_code,
    ALTER COLUMN shipping_address SET NOT NULL;

DROP TABLE data_keys;
