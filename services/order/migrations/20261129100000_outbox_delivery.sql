-- migrate:up

-- An event stays the outbox's responsibility until every consumer group has acknowledged
-- it: the relay records where XADD put it, and re-publishes it when the stream lost it.
ALTER TABLE outbox ADD COLUMN stream_id text;
ALTER TABLE outbox ADD COLUMN confirmed_at timestamptz;
-- A relay publishing a batch holds it until then, without a row lock across the XADD.
ALTER TABLE outbox ADD COLUMN claimed_until timestamptz;

-- Rows published before this migration have no stream id to check: take them as delivered.
UPDATE outbox SET confirmed_at = published_at WHERE published_at IS NOT NULL;

-- The relay checks only what is published and not yet acknowledged, oldest first.
CREATE INDEX outbox_unconfirmed_idx ON outbox (id)
    WHERE published_at IS NOT NULL AND confirmed_at IS NULL;

-- migrate:down

DROP INDEX outbox_unconfirmed_idx;
ALTER TABLE outbox DROP COLUMN claimed_until;
ALTER TABLE outbox DROP COLUMN confirmed_at;
ALTER TABLE outbox DROP COLUMN stream_id;
