-- migrate:up

-- Mail waits here, written in the same transaction as the change it reports (a new
-- account, a reset token), and a relay delivers it. A crash between commit and delivery
-- loses nothing; a failed delivery is retried with backoff.
create table email_outbox (
    id uuid primary key,
    user_id uuid references users (id) on delete cascade,
    kind text not null,
    to_address text not null check (char_length(to_address) between 3 and 254),
    subject text not null,
    -- The body carries one-time tokens, so the relay clears it once the mail is out: the
    -- database never keeps a usable token longer than delivery takes.
    body text,
    created_at timestamptz not null default now(),
    next_attempt_at timestamptz not null default now(),
    attempts integer not null default 0,
    last_error text,
    sent_at timestamptz
);

-- The relay's queue: unsent mail that is due, oldest first.
create index email_outbox_due_idx on email_outbox (next_attempt_at) where sent_at is null;

-- Failed sign-ins per account ("account:<email>") and per client ("client:<ip>"). A row
-- is a window of failures; blocked_until refuses sign-ins for a while, never for ever.
create table login_throttle (
    key text primary key check (char_length(key) <= 300),
    failures integer not null default 0,
    window_start timestamptz not null,
    blocked_until timestamptz
);

-- migrate:down

drop table login_throttle;
drop table email_outbox;
