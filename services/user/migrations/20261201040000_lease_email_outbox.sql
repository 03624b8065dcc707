-- migrate:up

-- The relay claims mail with a lease instead of a row lock held across the SMTP send:
-- a short transaction sets claimed_until and claimed_by and commits, the mail goes out
-- with no connection or lock held, and another short transaction marks it sent. A relay
-- that crashed mid-send leaves a lease that lapses, and the mail is sent again.
alter table email_outbox
    add column claimed_until timestamptz,
    add column claimed_by uuid;

-- Every transaction that queues mail wakes the relays (LISTEN email_outbox). A statement
-- trigger sends one NOTIFY per statement, and PostgreSQL folds equal notifications of
-- one transaction into one, delivered at commit; no extra round trip for the writer.
create function email_outbox_notify() returns trigger
language plpgsql as $$
begin
    perform pg_notify('email_outbox', '');
    return null;
end;
$$;

create trigger email_outbox_queued
    after insert on email_outbox
    for each statement execute function email_outbox_notify();

-- migrate:down

drop trigger email_outbox_queued on email_outbox;
drop function email_outbox_notify();
alter table email_outbox drop column claimed_by, drop column claimed_until;
