-- migrate:up

-- One row per account with its public profile. Ids come from the service (uuid4) so a
-- User exists in full before it is written; the default only serves manual inserts.
create table users (
    id uuid primary key default gen_random_uuid(),
    -- Stored as the user typed it after trimming; uniqueness and lookups use lower(email).
    email text not null check (char_length(email) between 3 and 254),
    username text not null check (username ~ '^[A-Za-z0-9_-]{3,32}$'),
    -- argon2id in PHC string form ($argon2id$v=19$m=...,t=...,p=...$salt$hash): the
    -- parameters travel with the hash, so raising them later needs no migration.
    password_hash text not null,
    display_name text not null default '' check (char_length(display_name) <= 100),
    bio text not null default '' check (char_length(bio) <= 500),
    avatar_url text not null default '',
    phone_number text not null default '',
    email_verified boolean not null default false,
    -- A text array instead of a user_roles join table: roles are read with every user
    -- (one row, no join), replaced as a whole by SetUserRoles, and the GIN index below
    -- serves "users holding role X". The check keeps it a non-empty subset of known roles.
    roles text[] not null default array['customer']::text[]
        check (cardinality(roles) > 0 and roles <@ array['customer', 'seller', 'admin']::text[]),
    state text not null default 'active' check (state in ('active', 'suspended')),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

-- Expression indexes make "Alice@Example.com" and "alice@example.com" one account. The
-- service catches the unique violation by these index names, so concurrent sign-ups
-- with one address have exactly one winner without a prior SELECT.
create unique index users_email_key on users (lower(email));
create unique index users_username_key on users (lower(username));

-- Admin search (ListUsers): prefix matches on display name, then email, compared
-- case-insensitively; text_pattern_ops lets LIKE 'abc%' use the index in any collation.
create index users_admin_search_idx
    on users (lower(display_name) text_pattern_ops, lower(email) text_pattern_ops);

-- Keyset pagination of ListUsers, newest first, with the id as the tie-breaker.
create index users_created_idx on users (created_at desc, id desc);

-- "Users holding role X" for the ListUsers role filter.
create index users_roles_idx on users using gin (roles);

-- migrate:down

drop table users;
