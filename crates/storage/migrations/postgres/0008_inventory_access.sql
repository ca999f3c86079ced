-- shardkeep storage schema, version 8 (PostgreSQL): inventory challenges
-- and proofs, rate counters, anomalies.
--
-- A challenge is issued for the custodian of one external slot and used
-- once; the proof that answers it is evidence, never changed or deleted.
-- Rate counters are shared by every replica: one row per (person, kind,
-- window), upserted, never decreasing (the owner may prune old windows).
-- Anomalies are evidence.

CREATE TABLE inventory_challenges (
    nonce        BYTEA  PRIMARY KEY CHECK (octet_length(nonce) = 32),
    key_id       TEXT   NOT NULL,
    node_id      TEXT   NOT NULL,
    version      BIGINT NOT NULL,
    share_index  BIGINT NOT NULL,
    custodian_id TEXT   NOT NULL CHECK (octet_length(custodian_id) BETWEEN 1 AND 64),
    issued_at    BIGINT NOT NULL CHECK (issued_at >= 0),
    expires_at   BIGINT NOT NULL CHECK (expires_at > issued_at),
    consumed_at  BIGINT CHECK (consumed_at >= 0),
    FOREIGN KEY (key_id, node_id, version, share_index)
        REFERENCES custody_map (key_id, node_id, version, share_index)
);

CREATE TABLE inventory_proofs (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    nonce       BYTEA  NOT NULL UNIQUE REFERENCES inventory_challenges (nonce),
    key_id      TEXT   NOT NULL,
    node_id     TEXT   NOT NULL,
    version     BIGINT NOT NULL,
    share_index BIGINT NOT NULL,
    person_id   TEXT   NOT NULL REFERENCES persons (id),
    proof       BYTEA  NOT NULL CHECK (octet_length(proof) BETWEEN 1 AND 4096),
    verified_at BIGINT NOT NULL CHECK (verified_at >= 0),
    FOREIGN KEY (key_id, node_id, version, share_index)
        REFERENCES custody_map (key_id, node_id, version, share_index)
);
CREATE INDEX inventory_proofs_slot ON inventory_proofs (key_id, node_id, version, share_index);

CREATE TABLE rate_counters (
    person_id    TEXT   NOT NULL CHECK (octet_length(person_id) BETWEEN 1 AND 64),
    kind         TEXT   NOT NULL CHECK (octet_length(kind) BETWEEN 1 AND 64),
    window_start BIGINT NOT NULL CHECK (window_start >= 0),
    count        BIGINT NOT NULL CHECK (count BETWEEN 1 AND 4294967295),
    PRIMARY KEY (person_id, kind, window_start)
);

-- The person and slot of an anomaly need not exist: an unregistered actor,
-- a read of a slot that is not there, are anomalies too.
CREATE TABLE anomalies (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        TEXT   NOT NULL CHECK (octet_length(kind) BETWEEN 1 AND 64),
    person_id   TEXT   CHECK (octet_length(person_id) BETWEEN 1 AND 64),
    key_id      TEXT   CHECK (octet_length(key_id) BETWEEN 1 AND 64),
    node_id     TEXT   CHECK (octet_length(node_id) BETWEEN 1 AND 64),
    version     BIGINT CHECK (version BETWEEN 0 AND 4294967295),
    share_index BIGINT CHECK (share_index BETWEEN 1 AND 255),
    at          BIGINT NOT NULL CHECK (at >= 0),
    detail      TEXT   NOT NULL CHECK (octet_length(detail) BETWEEN 1 AND 1024),
    CHECK ((key_id IS NULL AND node_id IS NULL AND version IS NULL AND share_index IS NULL)
        OR (key_id IS NOT NULL AND node_id IS NOT NULL AND version IS NOT NULL
            AND share_index IS NOT NULL))
);
CREATE INDEX anomalies_at ON anomalies (at);
CREATE INDEX anomalies_kind ON anomalies (kind);

CREATE TRIGGER inventory_challenges_refuse_delete BEFORE DELETE ON inventory_challenges
    FOR EACH ROW EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER inventory_challenges_refuse_truncate BEFORE TRUNCATE ON inventory_challenges
    FOR EACH STATEMENT EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER inventory_proofs_refuse_change BEFORE UPDATE OR DELETE ON inventory_proofs
    FOR EACH ROW EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER inventory_proofs_refuse_truncate BEFORE TRUNCATE ON inventory_proofs
    FOR EACH STATEMENT EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER anomalies_refuse_change BEFORE UPDATE OR DELETE ON anomalies
    FOR EACH ROW EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER anomalies_refuse_truncate BEFORE TRUNCATE ON anomalies
    FOR EACH STATEMENT EXECUTE FUNCTION shardkeep_refuse_change();

-- A challenge is consumed once, and nothing else of it changes.
CREATE FUNCTION shardkeep_challenge_consume_once() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.consumed_at IS NOT NULL OR NEW.consumed_at IS NULL
        OR (NEW.nonce, NEW.key_id, NEW.node_id, NEW.version, NEW.share_index, NEW.custodian_id,
            NEW.issued_at, NEW.expires_at)
           IS DISTINCT FROM
           (OLD.nonce, OLD.key_id, OLD.node_id, OLD.version, OLD.share_index, OLD.custodian_id,
            OLD.issued_at, OLD.expires_at)
    THEN
        RAISE EXCEPTION 'inventory_challenges: only an open challenge may be consumed, once'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER inventory_challenges_consume_once BEFORE UPDATE ON inventory_challenges
    FOR EACH ROW EXECUTE FUNCTION shardkeep_challenge_consume_once();

-- A counter only counts up.
CREATE FUNCTION shardkeep_rate_counter_count_up() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.count < OLD.count
        OR (NEW.person_id, NEW.kind, NEW.window_start)
           IS DISTINCT FROM (OLD.person_id, OLD.kind, OLD.window_start)
    THEN
        RAISE EXCEPTION 'rate_counters only count up'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER rate_counters_count_up BEFORE UPDATE ON rate_counters
    FOR EACH ROW EXECUTE FUNCTION shardkeep_rate_counter_count_up();

CREATE OR REPLACE FUNCTION shardkeep_grant_backup(service_role TEXT) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('GRANT SELECT, INSERT ON persons, person_keys, entities, entity_members TO %I',
        service_role);
    EXECUTE format('GRANT UPDATE (roles, roles_set_at, key_epoch, state, revoked_at, revoked_by, '
        'revoke_reason) ON persons TO %I', service_role);
    EXECUTE format('GRANT UPDATE (valid_until) ON person_keys TO %I', service_role);
    EXECUTE format('GRANT UPDATE (state, revoked_at, revoked_by) ON entities TO %I', service_role);
    EXECUTE format('GRANT SELECT, INSERT ON groups, split_references TO %I', service_role);
    -- Never the identity columns.
    EXECUTE format('GRANT SELECT ON policies, inventory_proofs, anomalies TO %I', service_role);
    EXECUTE format('GRANT INSERT (hash, encoding, set_at, set_by) ON policies TO %I',
        service_role);
    EXECUTE format('GRANT UPDATE (last_change_at, last_change) ON key_versions TO %I',
        service_role);
    EXECUTE format('GRANT SELECT, INSERT ON inventory_challenges, rate_counters TO %I',
        service_role);
    EXECUTE format('GRANT UPDATE (consumed_at) ON inventory_challenges TO %I', service_role);
    EXECUTE format('GRANT UPDATE (count) ON rate_counters TO %I', service_role);
    EXECUTE format('GRANT INSERT (nonce, key_id, node_id, version, share_index, person_id, proof, '
        'verified_at) ON inventory_proofs TO %I', service_role);
    EXECUTE format('GRANT INSERT (kind, person_id, key_id, node_id, version, share_index, at, '
        'detail) ON anomalies TO %I', service_role);
END;
$$;
REVOKE ALL ON FUNCTION shardkeep_grant_backup(TEXT) FROM PUBLIC;
