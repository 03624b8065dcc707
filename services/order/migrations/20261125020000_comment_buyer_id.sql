-- migrate:up

-- The schema says itself why buyer_id has no foreign key, for whoever reads it with \d+.
COMMENT ON COLUMN orders.buyer_id IS
    'The buying user (users live in the user service''s database, so no foreign key can '
    'reach them): checkout validates the account through UserInternalService.GetShippingAddress '
    'before the order is written.';

-- migrate:down

COMMENT ON COLUMN orders.buyer_id IS NULL;
