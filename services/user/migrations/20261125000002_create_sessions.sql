-- migrate:up

-- A session is one sign-in on one device: the family of refresh tokens that descend from
-- one Login. Its id is the `sid` claim of every access token issued in it, so ending the
-- session (Logout, LogoutAll, reuse of a rotated token, suspension) is one row update.
create table sessions (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references users (id) on delete cascade,
    user_agent text not null default '' check (char_length(user_agent) <= 512),
    -- Informational only (shown in ListSessions); null when the peer address is unknown.
    client_ip inet,
    created_at timestamptz not null default now(),
    last_used_at timestamptz not null default now(),
    revoked_at timestamptz,
    -- Why it ended: logout, logout_all, token_reuse, password_change, suspended.
    revoke_reason text
);

-- ListSessions and LogoutAll look up the live sessions of one user.
create index sessions_user_live_idx on sessions (user_id, created_at desc) where revoked_at is null;

-- One row per refresh token ever issued. Rotation marks the presented token with
-- replaced_by and inserts its successor in the same family; presenting a token that
-- already has a successor is reuse of a stolen token and revokes the whole family.
create table refresh_tokens (
    id uuid primary key default gen_random_uuid(),
    family_id uuid not null references sessions (id) on delete cascade,
    -- Denormalised from sessions so a token lookup needs no join to find its owner.
    user_id uuid not null references users (id) on delete cascade,
    -- sha256 hex of the token. The raw token never touches the database, so a leaked
    -- dump cannot be replayed; a fast hash suffices because tokens carry 256 random bits.
    token_hash text not null check (token_hash ~ '^[0-9a-f]{64}$'),
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    revoked_at timestamptz,
    replaced_by uuid references refresh_tokens (id),
    check (expires_at > created_at)
);

create unique index refresh_tokens_hash_key on refresh_tokens (token_hash);
create index refresh_tokens_family_idx on refresh_tokens (family_id);

-- migrate:down

drop table refresh_tokens;
drop table sessions;
