-- migrate:up

-- Usernames held by sign-ups whose email already had an account. Such a sign-up stores no
-- user (the form must not tell that the email is taken), but it must hold its username
-- exactly as a sign-up with a new email would: otherwise a second sign-up with the same
-- username would get 201 instead of 409 and so reveal that the first email had an account.
-- Kept for good, like the username of an unverified account.
create table username_reservations (
    username text not null check (username ~ '^[A-Za-z0-9_-]{3,32}$'),
    created_at timestamptz not null default now()
);

-- One holder per username, compared case-insensitively like users_username_key.
create unique index username_reservations_key on username_reservations (lower(username));

-- migrate:down

drop table username_reservations;
