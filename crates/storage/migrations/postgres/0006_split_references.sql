-- shardkeep storage schema, version 6 (PostgreSQL): groups, policies and
-- split references.
--
-- A key version now records what it was split into (curve, split id,
-- Feldman commitments, signed binding, the policy in force, the server's
-- share count), who created it, and the last change that makes a drill
-- due. Groups, policies and split references are evidence: never changed,
-- never deleted. Versions created before this migration have no split
-- reference and no creator; their last change is their creation.

CREATE TABLE groups (
    key_id           TEXT   PRIMARY KEY CHECK (octet_length(key_id) BETWEEN 1 AND 64),
    curve            BIGINT NOT NULL CHECK (curve BETWEEN 0 AND 255),
    group_public_key BYTEA  NOT NULL CHECK (octet_length(group_public_key) BETWEEN 1 AND 64),
    tss_degree       BIGINT NOT NULL CHECK (tss_degree >= 1),
    parties          BIGINT NOT NULL CHECK (parties <= 65535),
    registered_at    BIGINT NOT NULL CHECK (registered_at >= 0),
    CHECK (tss_degree < parties)
);

CREATE TABLE policies (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hash     BYTEA  NOT NULL CHECK (octet_length(hash) = 32),
    encoding BYTEA  NOT NULL CHECK (octet_length(encoding) BETWEEN 1 AND 4096),
    set_at   BIGINT NOT NULL CHECK (set_at >= 0),
    set_by   TEXT   NOT NULL CHECK (octet_length(set_by) BETWEEN 1 AND 64)
);
CREATE INDEX policies_hash ON policies (hash);

CREATE TABLE split_references (
    key_id        TEXT   NOT NULL,
    node_id       TEXT   NOT NULL,
    version       BIGINT NOT NULL,
    curve         BIGINT NOT NULL CHECK (curve BETWEEN 0 AND 255),
    split_id      BYTEA  NOT NULL CHECK (octet_length(split_id) = 32),
    commitments   BYTEA  NOT NULL CHECK (octet_length(commitments) BETWEEN 1 AND 16384),
    binding       BYTEA  NOT NULL CHECK (octet_length(binding) BETWEEN 1 AND 1024),
    policy_hash   BYTEA  NOT NULL CHECK (octet_length(policy_hash) = 32),
    server_shares BIGINT NOT NULL CHECK (server_shares BETWEEN 0 AND 254),
    PRIMARY KEY (key_id, node_id, version),
    FOREIGN KEY (key_id, node_id, version) REFERENCES key_versions (key_id, node_id, version)
);

ALTER TABLE key_versions
    ADD COLUMN created_by TEXT CHECK (octet_length(created_by) BETWEEN 1 AND 64),
    ADD COLUMN last_change_at BIGINT CHECK (last_change_at >= 0),
    ADD COLUMN last_change TEXT CHECK (octet_length(last_change) BETWEEN 1 AND 64);
UPDATE key_versions SET last_change_at = created_at, last_change = 'created';
ALTER TABLE key_versions
    ALTER COLUMN last_change_at SET NOT NULL,
    ALTER COLUMN last_change SET NOT NULL;

CREATE TRIGGER groups_refuse_change BEFORE UPDATE OR DELETE ON groups
    FOR EACH ROW EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER groups_refuse_truncate BEFORE TRUNCATE ON groups
    FOR EACH STATEMENT EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER policies_refuse_change BEFORE UPDATE OR DELETE ON policies
    FOR EACH ROW EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER policies_refuse_truncate BEFORE TRUNCATE ON policies
    FOR EACH STATEMENT EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER split_references_refuse_change BEFORE UPDATE OR DELETE ON split_references
    FOR EACH ROW EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER split_references_refuse_truncate BEFORE TRUNCATE ON split_references
    FOR EACH STATEMENT EXECUTE FUNCTION shardkeep_refuse_change();

-- A version's identity, split and creation never change.
CREATE FUNCTION shardkeep_key_versions_identity() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.key_id, NEW.node_id, NEW.version, NEW.threshold, NEW.total, NEW.created_at,
        NEW.created_by)
       IS DISTINCT FROM
       (OLD.key_id, OLD.node_id, OLD.version, OLD.threshold, OLD.total, OLD.created_at,
        OLD.created_by)
    THEN
        RAISE EXCEPTION 'key_versions: identity, split and creation never change'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER key_versions_identity BEFORE UPDATE ON key_versions
    FOR EACH ROW EXECUTE FUNCTION shardkeep_key_versions_identity();

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
    -- Policies: never the identity column.
    EXECUTE format('GRANT SELECT ON policies TO %I', service_role);
    EXECUTE format('GRANT INSERT (hash, encoding, set_at, set_by) ON policies TO %I',
        service_role);
    EXECUTE format('GRANT UPDATE (last_change_at, last_change) ON key_versions TO %I',
        service_role);
END;
$$;
REVOKE ALL ON FUNCTION shardkeep_grant_backup(TEXT) FROM PUBLIC;
