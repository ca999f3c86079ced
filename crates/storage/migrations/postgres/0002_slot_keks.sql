-- shardkeep storage schema, version 2 (PostgreSQL): the KEK of each
-- server-held slot, as pinned by the key store (id and key fingerprint).
--
-- A slot has at most one live (not destroyed) KEK; a KEK id is recorded
-- once, for one slot. Rows are never deleted: a destroyed KEK's row, with
-- its destruction time, is the evidence of the crypto-shredding. Only
-- `destroyed_at` ever changes, once, from NULL; the service role may update
-- nothing else, and the triggers hold the owner to the same rule.

CREATE TABLE slot_keks (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_id       TEXT   NOT NULL,
    node_id      TEXT   NOT NULL,
    version      BIGINT NOT NULL,
    share_index  BIGINT NOT NULL CHECK (share_index BETWEEN 1 AND 255),
    kek_id       TEXT   NOT NULL UNIQUE CHECK (octet_length(kek_id) BETWEEN 1 AND 64),
    fingerprint  BYTEA  NOT NULL CHECK (octet_length(fingerprint) = 32),
    created_at   BIGINT NOT NULL CHECK (created_at >= 0),
    destroyed_at BIGINT CHECK (destroyed_at >= created_at),
    FOREIGN KEY (key_id, node_id, version) REFERENCES key_versions (key_id, node_id, version)
);

-- At most one live KEK per slot.
CREATE UNIQUE INDEX slot_keks_one_live ON slot_keks (key_id, node_id, version, share_index)
    WHERE destroyed_at IS NULL;
CREATE INDEX slot_keks_slot ON slot_keks (key_id, node_id, version, share_index, id);

CREATE FUNCTION shardkeep_slot_kek_destroy_once() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.destroyed_at IS NOT NULL OR NEW.destroyed_at IS NULL
        OR (NEW.id, NEW.key_id, NEW.node_id, NEW.version, NEW.share_index, NEW.kek_id,
            NEW.fingerprint, NEW.created_at)
           IS DISTINCT FROM
           (OLD.id, OLD.key_id, OLD.node_id, OLD.version, OLD.share_index, OLD.kek_id,
            OLD.fingerprint, OLD.created_at)
    THEN
        RAISE EXCEPTION 'slot_keks: only a live KEK may be marked destroyed, once'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER slot_keks_destroy_once BEFORE UPDATE ON slot_keks
    FOR EACH ROW EXECUTE FUNCTION shardkeep_slot_kek_destroy_once();
CREATE TRIGGER slot_keks_refuse_delete BEFORE DELETE ON slot_keks
    FOR EACH ROW EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER slot_keks_refuse_truncate BEFORE TRUNCATE ON slot_keks
    FOR EACH STATEMENT EXECUTE FUNCTION shardkeep_refuse_change();

-- The service role's privileges, now with slot_keks: SELECT and INSERT, and
-- UPDATE of `destroyed_at` only.
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
    EXECUTE format('GRANT UPDATE (kek_id, wrapped_key, envelope, state, deleted_at, deleted_by, '
        'cooldown_until, hard_deleted_at, evidence) ON share_slots TO %I', service_role);
    EXECUTE format('GRANT UPDATE (custodian_id, contact, public_key, updated_at, confirmed_at) '
        'ON custody_map TO %I', service_role);
    EXECUTE format('GRANT UPDATE (consumed_at) ON approval_requests TO %I', service_role);
    EXECUTE format('GRANT UPDATE (destroyed_at) ON slot_keks TO %I', service_role);
END;
$$;
REVOKE ALL ON FUNCTION shardkeep_grant_service(TEXT) FROM PUBLIC;
