-- migrate:up

-- A payout run's payment to one seller in one currency: the seller's available balance
-- at the run, moved out of the ledger by the payout entry written with it.
CREATE TABLE payouts (
    id uuid PRIMARY KEY,
    run_id uuid NOT NULL,
    seller_id text NOT NULL,
    currency char(3) NOT NULL,
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    settled_before timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    -- One payout per seller and currency in a run.
    UNIQUE (run_id, seller_id, currency)
);

CREATE INDEX payouts_seller_idx ON payouts (seller_id, created_at DESC, id DESC);
CREATE INDEX payouts_created_idx ON payouts (created_at DESC, id DESC);

-- Every movement of a seller's money, append-only, in signed minor units (a credit is
-- positive). Written in the transaction of the change it records (a captured payment, a
-- refund, a cancel's refund, a payout), keyed by (source_id, seller_id, kind): source_id
-- is the payment attempt, refund or payout id, so one event books each seller once.
CREATE TABLE ledger_entries (
    id uuid PRIMARY KEY,
    seller_id text NOT NULL,
    currency char(3) NOT NULL,
    kind text NOT NULL
        CHECK (kind IN ('sale', 'commission', 'refund', 'commission_refund', 'payout')),
    amount_minor bigint NOT NULL,
    source_id uuid NOT NULL,
    order_id uuid REFERENCES orders (id),
    payout_id uuid REFERENCES payouts (id),
    created_at timestamptz NOT NULL,
    UNIQUE (source_id, seller_id, kind),
    CHECK ((kind = 'payout') = (payout_id IS NOT NULL)),
    CHECK ((kind = 'payout') = (order_id IS NULL))
);

-- A seller's part of an order is sold once, whatever event books it.
CREATE UNIQUE INDEX ledger_entries_one_sale_idx ON ledger_entries (order_id, seller_id)
    WHERE kind = 'sale';
CREATE INDEX ledger_entries_seller_idx ON ledger_entries (seller_id, created_at DESC, id DESC);
CREATE INDEX ledger_entries_order_idx ON ledger_entries (order_id) WHERE order_id IS NOT NULL;

-- The ledger is append-only: a correction is a new entry, never an edit.
CREATE FUNCTION ledger_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger_entries is append-only';
END;
$$;

CREATE TRIGGER ledger_entries_append_only
    BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only();

-- migrate:down

DROP TABLE ledger_entries;
DROP FUNCTION ledger_entries_append_only();
DROP TABLE payouts;
