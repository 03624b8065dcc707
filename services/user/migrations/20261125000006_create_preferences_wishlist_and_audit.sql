-- migrate:up

-- Typed settings; a user without a row has the documented defaults.
create table preferences (
    user_id uuid primary key references users (id) on delete cascade,
    language text not null default 'en' check (char_length(language) between 2 and 35),
    currency_code text not null default 'USD' check (currency_code ~ '^[A-Z]{3}$'),
    marketing_opt_in boolean not null default false,
    notification_channels text[] not null default array['email']::text[]
        check (notification_channels <@ array['email', 'sms', 'push']::text[]),
    updated_at timestamptz not null default now()
);

-- Products a user keeps; the primary key makes adding twice a no-op.
create table wishlist_items (
    user_id uuid not null references users (id) on delete cascade,
    product_id text not null check (char_length(product_id) between 1 and 64),
    added_at timestamptz not null default now(),
    primary key (user_id, product_id)
);

-- ListWishlistItems: newest first with keyset pagination.
create index wishlist_items_user_added_idx on wishlist_items (user_id, added_at desc, product_id);

-- The audit trail of a suspension: who, when and why.
alter table users
    add column suspended_at timestamptz,
    add column suspended_by uuid,
    add column suspension_reason text check (char_length(suspension_reason) <= 500);

-- Admin search also matches usernames by prefix.
create index users_username_search_idx on users (lower(username) text_pattern_ops);

-- migrate:down

drop index users_username_search_idx;
alter table users
    drop column suspension_reason,
    drop column suspended_by,
    drop column suspended_at;
drop table wishlist_items;
drop table preferences;
