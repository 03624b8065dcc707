-- migrate:up

-- The address book: a user's shipping addresses. The checks repeat the service's
-- validation so no other writer (a script, a later bug) can store an address the order
-- service would ship to but could not print.
create table addresses (
    id uuid primary key,
    user_id uuid not null references users (id) on delete cascade,
    recipient_name text not null check (char_length(recipient_name) between 1 and 100),
    line1 text not null check (char_length(line1) between 1 and 200),
    line2 text not null default '' check (char_length(line2) <= 200),
    city text not null check (char_length(city) between 1 and 100),
    region text not null default '' check (char_length(region) <= 100),
    postal_code text not null default '' check (char_length(postal_code) <= 20),
    -- ISO 3166-1 alpha-2; the service checks the code is assigned, the table its shape.
    country_code text not null check (country_code ~ '^[A-Z]{2}$'),
    phone_number text not null default ''
        check (phone_number = '' or phone_number ~ '^\+[1-9][0-9]{1,14}$'),
    is_default_shipping boolean not null default false,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

-- ListAddresses and the per-user limit read one user's addresses.
create index addresses_user_idx on addresses (user_id, created_at desc);

-- At most one default shipping address per user, whatever the writers do concurrently.
create unique index addresses_one_default_key on addresses (user_id) where is_default_shipping;

-- migrate:down

drop table addresses;
