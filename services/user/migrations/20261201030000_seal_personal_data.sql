-- migrate:up

-- Encryption at rest (README: "Encryption at rest"). The data-encryption keys (AES-256) of
-- this database, each wrapped by a key-encryption key only the environment holds
-- (USER_DATA_KEK); kek_id names which. Newest first is the one new data is sealed with.
create table data_keys (
    key_id uuid primary key,
    wrapped_key bytea not null,
    kek_id text not null,
    created_at timestamptz not null default clock_timestamp(),
    rewrapped_at timestamptz
);

-- An address's personal fields (recipient, lines, city, region, postal code, phone) sealed
-- as one JSON object; country_code stays in clear for tax and reports. The plaintext columns
-- stay, nullable, for rows written before this migration: the service seals them at startup
-- (or `python -m services.user.data_keys backfill`) and sets them NULL. Their checks pass
-- on NULL, so they keep guarding any legacy writer.
alter table addresses
    add column personal_sealed bytea,
    alter column recipient_name drop not null,
    alter column line1 drop not null,
    alter column line2 drop not null,
    alter column line2 drop default,
    alter column city drop not null,
    alter column region drop not null,
    alter column region drop default,
    alter column postal_code drop not null,
    alter column postal_code drop default,
    alter column phone_number drop not null,
    alter column phone_number drop default;

-- The profile's phone number, sealed the same way.
alter table users
    add column phone_sealed bytea,
    alter column phone_number drop not null,
    alter column phone_number drop default;

-- migrate:down

-- Sealed rows cannot be decrypted in SQL: going down would lose them, so refuse.
do $$
begin
    if exists (select 1 from addresses where personal_sealed is not null)
       or exists (select 1 from users where phone_sealed is not null) then
        raise exception 'sealed personal data exists; it cannot be migrated down in SQL';
    end if;
end $$;

alter table users
    drop column phone_sealed,
    alter column phone_number set default '',
    alter column phone_number set not null;

alter table addresses
    drop column personal_sealed,
    alter column recipient_name set not null,
    alter column line1 set not null,
    alter column line2 set default '',
    alter column line2 set not null,
    alter column city set not null,
    alter column region set default '',
    alter column region set not null,
    alter column postal_code set default '',
    alter column postal_code set not null,
    alter column phone_number set default '',
    alter column phone_number set not null;

drop table data_keys;
