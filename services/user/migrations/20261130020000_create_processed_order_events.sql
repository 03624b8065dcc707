-- migrate:up

-- Order events (from the order service's stream) already turned into mail. Written in
-- the transaction that queues the mail into email_outbox, so a redelivered event finds
-- its id here and queues nothing twice.
create table processed_order_events (
    event_id text primary key check (char_length(event_id) between 1 and 64),
    event_type text not null check (char_length(event_type) <= 64),
    processed_at timestamptz not null
);

-- migrate:down

drop table processed_order_events;
