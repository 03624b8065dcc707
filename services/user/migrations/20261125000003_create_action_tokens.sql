-- migrate:up

-- Single-use tokens mailed to the user: email verification and password reset. Like
-- refresh tokens only their sha256 is stored. used_at makes them single-use with one
-- conditional UPDATE (... where used_at is null), which is safe under concurrency.
create table action_tokens (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references users (id) on delete cascade,
    purpose text not null check (purpose in ('verify_email', 'reset_password')),
    token_hash text not null check (token_hash ~ '^[0-9a-f]{64}$'),
    -- The address a verification token was sent to: verifying must not confirm an
    -- address the account no longer has.
    email text not null,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    used_at timestamptz,
    check (expires_at > created_at)
);

create unique index action_tokens_hash_key on action_tokens (token_hash);
-- Issuing a new token invalidates the user's earlier unused ones of the same purpose.
create index action_tokens_user_idx on action_tokens (user_id, purpose) where used_at is null;

-- migrate:down

drop table action_tokens;
