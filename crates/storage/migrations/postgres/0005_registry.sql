-- shardkeep storage schema, version 5 (PostgreSQL): the registry.
--
-- Persons with every key and identity they use, by key epoch, and the
-- custodian entities they act for. Checks look a person up at the time of
-- use. Rows are never deleted; a revocation is final; a key epoch, once
-- ended, stays ended, and its keys stay as the evidence past signatures are
-- checked against. A key or identity belongs to one person, in every epoch
-- (checked by storage before every insert; the indexes make that check
-- cheap).
--
-- The service role gets its rights on these tables (and on the tables of
-- later migrations) from shardkeep_grant_backup(), which
-- PostgresStorage::grant_service_role calls: SELECT and INSERT, UPDATE of
-- the state columns only, never DELETE or TRUNCATE. Guard triggers refuse
-- with insufficient_privilege, whoever asks.

CREATE TABLE persons (
    id            TEXT   PRIMARY KEY CHECK (octet_length(id) BETWEEN 1 AND 64),
    display_name  TEXT   NOT NULL CHECK (octet_length(display_name) BETWEEN 1 AND 128),
    roles         BIGINT NOT NULL CHECK (roles BETWEEN 0 AND 63),
    roles_set_at  BIGINT NOT NULL CHECK (roles_set_at >= 0),
    key_epoch     BIGINT NOT NULL CHECK (key_epoch BETWEEN 1 AND 4294967295),
    state         TEXT   NOT NULL CHECK (state IN ('active', 'revoked')),
    revoked_at    BIGINT CHECK (revoked_at >= 0),
    revoked_by    TEXT   CHECK (octet_length(revoked_by) BETWEEN 1 AND 64),
    revoke_reason TEXT   CHECK (octet_length(revoke_reason) BETWEEN 1 AND 1024),
    registered_at BIGINT NOT NULL CHECK (registered_at >= 0),
    registered_by TEXT   NOT NULL CHECK (octet_length(registered_by) BETWEEN 1 AND 64),
    CHECK ((state = 'active' AND revoked_at IS NULL AND revoked_by IS NULL AND revoke_reason IS NULL)
        OR (state = 'revoked' AND revoked_at IS NOT NULL AND revoked_by IS NOT NULL
            AND revoke_reason IS NOT NULL))
);

CREATE TABLE person_keys (
    person_id       TEXT   NOT NULL REFERENCES persons (id),
    epoch           BIGINT NOT NULL CHECK (epoch BETWEEN 1 AND 4294967295),
    receipt_key     BYTEA  CHECK (octet_length(receipt_key) = 32),
    approval_key    BYTEA  CHECK (octet_length(approval_key) = 32),
    age_recipient   TEXT   CHECK (octet_length(age_recipient) BETWEEN 1 AND 128),
    tls_fingerprint BYTEA  CHECK (octet_length(tls_fingerprint) = 32),
    valid_from      BIGINT NOT NULL CHECK (valid_from >= 0),
    valid_until     BIGINT CHECK (valid_until >= valid_from),
    PRIMARY KEY (person_id, epoch)
);
CREATE INDEX person_keys_receipt_key ON person_keys (receipt_key) WHERE receipt_key IS NOT NULL;
CREATE INDEX person_keys_approval_key ON person_keys (approval_key) WHERE approval_key IS NOT NULL;
CREATE INDEX person_keys_age_recipient ON person_keys (age_recipient)
    WHERE age_recipient IS NOT NULL;
CREATE INDEX person_keys_tls_fingerprint ON person_keys (tls_fingerprint)
    WHERE tls_fingerprint IS NOT NULL;

CREATE TABLE entities (
    id            TEXT   PRIMARY KEY CHECK (octet_length(id) BETWEEN 1 AND 64),
    display_name  TEXT   NOT NULL CHECK (octet_length(display_name) BETWEEN 1 AND 128),
    contact       TEXT   NOT NULL CHECK (octet_length(contact) BETWEEN 1 AND 512),
    state         TEXT   NOT NULL CHECK (state IN ('active', 'revoked')),
    revoked_at    BIGINT CHECK (revoked_at >= 0),
    revoked_by    TEXT   CHECK (octet_length(revoked_by) BETWEEN 1 AND 64),
    registered_at BIGINT NOT NULL CHECK (registered_at >= 0),
    CHECK ((state = 'active' AND revoked_at IS NULL AND revoked_by IS NULL)
        OR (state = 'revoked' AND revoked_at IS NOT NULL AND revoked_by IS NOT NULL))
);

CREATE TABLE entity_members (
    entity_id TEXT NOT NULL REFERENCES entities (id),
    person_id TEXT NOT NULL REFERENCES persons (id),
    PRIMARY KEY (entity_id, person_id)
);
CREATE INDEX entity_members_person ON entity_members (person_id);

-- Rows are never deleted (shardkeep_refuse_change: insufficient_privilege).
CREATE TRIGGER persons_refuse_delete BEFORE DELETE ON persons
    FOR EACH ROW EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER persons_refuse_truncate BEFORE TRUNCATE ON persons
    FOR EACH STATEMENT EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER entities_refuse_delete BEFORE DELETE ON entities
    FOR EACH ROW EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER entities_refuse_truncate BEFORE TRUNCATE ON entities
    FOR EACH STATEMENT EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER person_keys_refuse_delete BEFORE DELETE ON person_keys
    FOR EACH ROW EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER person_keys_refuse_truncate BEFORE TRUNCATE ON person_keys
    FOR EACH STATEMENT EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER entity_members_refuse_change BEFORE UPDATE OR DELETE ON entity_members
    FOR EACH ROW EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER entity_members_refuse_truncate BEFORE TRUNCATE ON entity_members
    FOR EACH STATEMENT EXECUTE FUNCTION shardkeep_refuse_change();

-- A key epoch's keys never change; its end is set once.
CREATE FUNCTION shardkeep_person_keys_end_once() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.valid_until IS NOT NULL OR NEW.valid_until IS NULL
        OR (NEW.person_id, NEW.epoch, NEW.receipt_key, NEW.approval_key, NEW.age_recipient,
            NEW.tls_fingerprint, NEW.valid_from)
           IS DISTINCT FROM
           (OLD.person_id, OLD.epoch, OLD.receipt_key, OLD.approval_key, OLD.age_recipient,
            OLD.tls_fingerprint, OLD.valid_from)
    THEN
        RAISE EXCEPTION 'person_keys is append-only: only a current epoch may end, once'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER person_keys_end_once BEFORE UPDATE ON person_keys
    FOR EACH ROW EXECUTE FUNCTION shardkeep_person_keys_end_once();

-- Identity and registration never change, a revocation is final, the key
-- epoch only grows.
CREATE FUNCTION shardkeep_persons_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.state = 'revoked' OR NEW.key_epoch < OLD.key_epoch
        OR (NEW.id, NEW.display_name, NEW.registered_at, NEW.registered_by)
           IS DISTINCT FROM (OLD.id, OLD.display_name, OLD.registered_at, OLD.registered_by)
    THEN
        RAISE EXCEPTION 'persons: a revoked person, an identity and a registration never change'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER persons_guard BEFORE UPDATE ON persons
    FOR EACH ROW EXECUTE FUNCTION shardkeep_persons_guard();

CREATE FUNCTION shardkeep_entities_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.state = 'revoked'
        OR (NEW.id, NEW.display_name, NEW.contact, NEW.registered_at)
           IS DISTINCT FROM (OLD.id, OLD.display_name, OLD.contact, OLD.registered_at)
    THEN
        RAISE EXCEPTION 'entities: a revoked entity, an identity and a registration never change'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER entities_guard BEFORE UPDATE ON entities
    FOR EACH ROW EXECUTE FUNCTION shardkeep_entities_guard();

-- The service role's rights on the tables of the backup service. Later
-- migrations replace this function with one covering their tables too.
CREATE FUNCTION shardkeep_grant_backup(service_role TEXT) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('GRANT SELECT, INSERT ON persons, person_keys, entities, entity_members TO %I',
        service_role);
    EXECUTE format('GRANT UPDATE (roles, roles_set_at, key_epoch, state, revoked_at, revoked_by, '
        'revoke_reason) ON persons TO %I', service_role);
    EXECUTE format('GRANT UPDATE (valid_until) ON person_keys TO %I', service_role);
    EXECUTE format('GRANT UPDATE (state, revoked_at, revoked_by) ON entities TO %I', service_role);
END;
$$;
REVOKE ALL ON FUNCTION shardkeep_grant_backup(TEXT) FROM PUBLIC;
