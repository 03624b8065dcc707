-- migrate:up

-- A deleted account stays as a tombstone row: its id is what orders and reviews of the
-- other services still name, and it proves the deletion happened. Every personal field
-- is overwritten (see services/user/adapters/postgres/erasure.py) and the repository
-- never hands a deleted row out, so it cannot sign in, be read or be reactivated.
alter table users drop constraint users_state_check;
alter table users add constraint users_state_check
    check (state in ('active', 'suspended', 'deleted'));
alter table users add column deleted_at timestamptz;

-- The user service's event outbox, in the shape every service's outbox has (see
-- services/common/outbox_relay.py): written in the transaction of the change it
-- announces, published to the stream marketplace.user.events.v1 at least once, and kept
-- until every consumer group has acknowledged it.
create table outbox (
    id bigint generated always as identity primary key,
    event_id uuid not null unique,
    user_id uuid not null,
    event_type text not null,
    -- A serialized marketplace.user.v1.UserEvent.
    payload bytea not null,
    created_at timestamptz not null default now(),
    published_at timestamptz,
    stream_id text,
    confirmed_at timestamptz,
    claimed_until timestamptz
);

create index outbox_unpublished_idx on outbox (id) where published_at is null;
create index outbox_unconfirmed_idx on outbox (id)
    where published_at is not null and confirmed_at is null;

-- migrate:down

drop table outbox;
alter table users drop column deleted_at;
alter table users drop constraint users_state_check;
alter table users add constraint users_state_check check (state in ('active', 'suspended'));
