-- migrate:up

-- A saga's claim on its key is leased: the instance running it renews the lease while it
-- runs, so after a crash the lease runs out within seconds and the reconciler settles the
-- saga at once instead of waiting for a long staleness cut-off. Null: no live claim.
ALTER TABLE idempotency_keys ADD COLUMN lease_expires_at timestamptz;
-- The reconciler finds the key of an order.
CREATE INDEX idempotency_keys_order_idx ON idempotency_keys (order_id) WHERE order_id IS NOT NULL;
-- The reconciler looks at keys still in progress every pass: few, among very many finished.
CREATE INDEX idempotency_keys_in_progress_idx ON idempotency_keys (updated_at)
    WHERE state = 'in_progress';

-- A cancel or refund of a paid order, claimed in a short transaction before the gateway
-- is called outside any transaction, and finished in another short one. At most one
-- change per order is pending: concurrent changes are refused, not queued on a row lock.
CREATE TABLE order_changes (
    id uuid PRIMARY KEY,
    order_id uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('cancel', 'refund')),
    state text NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    -- The gateway's idempotency key of the refund: a retry or the reconciler replays it.
    gateway_key text NOT NULL,
    amount_minor bigint NOT NULL CHECK (amount_minor >= 0),
    currency char(3) NOT NULL,
    actor text NOT NULL,
    seller_id text,
    reason text NOT NULL,
    -- RefundOrder's idempotency key and request fingerprint ('' and empty for a cancel).
    request_key text NOT NULL DEFAULT '',
    request_fingerprint bytea NOT NULL DEFAULT '',
    lease_expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    finished_at timestamptz,
    detail text NOT NULL DEFAULT ''
);

CREATE UNIQUE INDEX order_changes_one_pending_idx ON order_changes (order_id)
    WHERE state = 'pending';

-- Reservations of checkouts that ended without an order, whose release failed (the
-- product service was down): the reconciler retries each until it succeeds.
CREATE TABLE reservation_releases (
    order_id uuid PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 0
);

-- migrate:down

DROP TABLE reservation_releases;
DROP TABLE order_changes;
DROP INDEX idempotency_keys_in_progress_idx;
DROP INDEX idempotency_keys_order_idx;
ALTER TABLE idempotency_keys DROP COLUMN lease_expires_at;
