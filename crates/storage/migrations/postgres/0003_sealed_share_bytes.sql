-- shardkeep storage schema, version 3 (PostgreSQL): the envelope bytes are
-- the one source of a sealed share's KEK id and wrapped data key.
--
-- A sealed envelope ends with its key-wrap trailer (KEK id, wrapped data
-- key), outside the signed bytes. Version 1 also kept the wrapped key in a
-- column, and re-wrapping updated the columns only, so the envelope kept
-- naming the old KEK: once that KEK was destroyed the share could not be
-- opened. Now a re-wrap stores the re-wrapped envelope, `wrapped_key` is
-- gone, and `kek_id` (kept for listings and KEK migrations) and
-- `envelope_id` are checked against the bytes on every store, re-wrap and
-- load.
--
-- A row whose envelope trailer disagrees with its columns was re-wrapped
-- by a version 1 build: its columns hold the only copy of the current
-- wrapped key. This migration refuses to run (and changes nothing) while
-- such a row exists; rebuild the trailer of its envelope from the columns
-- first.

DO $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM share_slots
        WHERE envelope IS NOT NULL
            AND (octet_length(envelope) <= 3 + octet_length(kek_id) + octet_length(wrapped_key)
                OR substring(envelope FROM octet_length(envelope) - 2 - octet_length(kek_id)
                        - octet_length(wrapped_key))
                    IS DISTINCT FROM decode(lpad(to_hex(octet_length(kek_id)), 2, '0'), 'hex')
                        || convert_to(kek_id, 'UTF8')
                        || decode(lpad(to_hex(octet_length(wrapped_key)), 4, '0'), 'hex')
                        || wrapped_key)
    ) THEN
        RAISE EXCEPTION 'share_slots rows re-wrapped by a version 1 build: envelope trailer disagrees with kek_id and wrapped_key'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
END;
$$;

ALTER TABLE share_slots DROP CONSTRAINT share_slots_check;
ALTER TABLE share_slots DROP COLUMN wrapped_key;
ALTER TABLE share_slots ADD CONSTRAINT share_slots_lifecycle CHECK (
    (state = 'active' AND envelope IS NOT NULL
        AND deleted_at IS NULL AND deleted_by IS NULL AND cooldown_until IS NULL
        AND hard_deleted_at IS NULL AND evidence IS NULL)
    OR (state = 'soft_deleted' AND envelope IS NOT NULL
        AND deleted_at IS NOT NULL AND deleted_by IS NOT NULL AND cooldown_until >= deleted_at
        AND hard_deleted_at IS NULL AND evidence IS NULL)
    OR (state = 'hard_deleted' AND envelope IS NULL
        AND deleted_at IS NOT NULL AND deleted_by IS NOT NULL AND cooldown_until IS NOT NULL
        AND hard_deleted_at >= cooldown_until AND evidence IS NOT NULL)
);

-- The service role's privileges without `wrapped_key`.
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
    EXECUTE format('GRANT UPDATE (custodian_id, contact, public_key, updated_at, confirmed_at) '
        'ON custody_map TO %I', service_role);
    EXECUTE format('GRANT UPDATE (consumed_at) ON approval_requests TO %I', service_role);
    EXECUTE format('GRANT UPDATE (destroyed_at) ON slot_keks TO %I', service_role);
END;
$$;
REVOKE ALL ON FUNCTION shardkeep_grant_service(TEXT) FROM PUBLIC;
