-- shardkeep storage schema, version 7 (PostgreSQL): custody entries name
-- the person, the recipient, the envelope and the container.
--
-- An external slot is mapped to a custodian entity and to the member whose
-- keys its share was sealed to and whose receipt key signs for it: the age
-- recipient the container was sealed to, the envelope inside it and the
-- hash of the container as delivered. The entity's contact moves to the
-- registry.
--
-- Entries made before this version name no person: they keep their
-- contact and public key in `legacy_contact` and `legacy_public_key`, and
-- storage reports them as legacy until the slot is reassigned.

ALTER TABLE custody_map RENAME COLUMN contact TO legacy_contact;
ALTER TABLE custody_map RENAME COLUMN public_key TO legacy_public_key;
ALTER TABLE custody_map
    ALTER COLUMN legacy_contact DROP NOT NULL,
    ALTER COLUMN legacy_public_key DROP NOT NULL,
    ADD COLUMN person_id TEXT REFERENCES persons (id),
    ADD COLUMN recipient TEXT CHECK (octet_length(recipient) BETWEEN 1 AND 128),
    ADD COLUMN envelope_id BYTEA CHECK (octet_length(envelope_id) = 32),
    ADD COLUMN container_hash BYTEA CHECK (octet_length(container_hash) = 32),
    ADD CONSTRAINT custody_map_registry CHECK (
        (person_id IS NOT NULL AND recipient IS NOT NULL AND envelope_id IS NOT NULL
            AND container_hash IS NOT NULL
            AND legacy_contact IS NULL AND legacy_public_key IS NULL)
        OR (person_id IS NULL AND recipient IS NULL AND envelope_id IS NULL
            AND container_hash IS NULL
            AND legacy_contact IS NOT NULL AND legacy_public_key IS NOT NULL));

CREATE INDEX custody_map_custodian ON custody_map (custodian_id);

-- Rows are never deleted (the service role has no DELETE; this holds the
-- owner to it too).
CREATE TRIGGER custody_map_refuse_delete BEFORE DELETE ON custody_map
    FOR EACH ROW EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER custody_map_refuse_truncate BEFORE TRUNCATE ON custody_map
    FOR EACH STATEMENT EXECUTE FUNCTION shardkeep_refuse_change();

-- The service role's privileges with the new custody columns (the old
-- function names columns renamed here).
CREATE OR REPLACE FUNCTION shardkeep_grant_service(service_role TEXT) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('GRANT SELECT ON _sqlx_migrations TO %I', service_role);
    EXECUTE format('GRANT SELECT, INSERT ON audit_log, audit_checkpoints, share_access_log, '
        'deliveries, approvals, drill_reports TO %I', service_role);
    EXECUTE format('GRANT SELECT, INSERT ON key_versions, share_slots, custody_map, '
        'approval_requests, slot_keks TO %I', service_role);
    EXECUTE format('GRANT UPDATE (state, retiring_since, cooldown_until, retired_at) '
        'ON key_versions TO %I', service_role);
    EXECUTE format('GRANT UPDATE (kek_id, envelope, state, deleted_at, deleted_by, '
        'cooldown_until, hard_deleted_at, evidence) ON share_slots TO %I', service_role);
    EXECUTE format('GRANT UPDATE (custodian_id, person_id, recipient, envelope_id, '
        'container_hash, updated_at, confirmed_at, legacy_contact, legacy_public_key) '
        'ON custody_map TO %I', service_role);
    EXECUTE format('GRANT UPDATE (consumed_at) ON approval_requests TO %I', service_role);
    EXECUTE format('GRANT UPDATE (destroyed_at) ON slot_keks TO %I', service_role);
END;
$$;
REVOKE ALL ON FUNCTION shardkeep_grant_service(TEXT) FROM PUBLIC;
