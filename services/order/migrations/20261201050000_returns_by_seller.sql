-- migrate:up

-- A seller's returns across their orders, newest first (ListSellerReturns).
CREATE INDEX returns_seller_idx ON returns (seller_id, created_at DESC, id DESC);

-- migrate:down

DROP INDEX returns_seller_idx;
