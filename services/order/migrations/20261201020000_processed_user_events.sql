-- migrate:up

-- The user events (user.deleted) the order service applied, recorded in the transaction
-- of their effect: a redelivered event finds its id here and changes nothing.
CREATE TABLE processed_user_events (
    event_id text PRIMARY KEY,
    event_type text NOT NULL,
    processed_at timestamptz NOT NULL
);

-- migrate:down

DROP TABLE processed_user_events;
