-- shardkeep storage schema, version 5 (SQLite): the registry.
--
-- Persons with every key and identity they use, by key epoch, and the
-- custodian entities they act for. Checks look a person up at the time of
-- use. Rows are never deleted; a revocation is final; a key epoch, once
-- ended, stays ended, and its keys stay as the evidence past signatures are
-- checked against. A key or identity belongs to one person, in every epoch
-- (checked by storage before every insert; the indexes make that check
-- cheap).

CREATE TABLE persons (
    id            TEXT    PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    display_name  TEXT    NOT NULL CHECK (length(CAST(display_name AS BLOB)) BETWEEN 1 AND 128),
    roles         INTEGER NOT NULL CHECK (roles BETWEEN 0 AND 63),
    roles_set_at  INTEGER NOT NULL CHECK (roles_set_at >= 0),
    key_epoch     INTEGER NOT NULL CHECK (key_epoch BETWEEN 1 AND 4294967295),
    state         TEXT    NOT NULL CHECK (state IN ('active', 'revoked')),
    revoked_at    INTEGER CHECK (revoked_at >= 0),
    revoked_by    TEXT    CHECK (length(revoked_by) BETWEEN 1 AND 64),
    revoke_reason TEXT    CHECK (length(CAST(revoke_reason AS BLOB)) BETWEEN 1 AND 1024),
    registered_at INTEGER NOT NULL CHECK (registered_at >= 0),
    registered_by TEXT    NOT NULL CHECK (length(registered_by) BETWEEN 1 AND 64),
    CHECK ((state = 'active' AND revoked_at IS NULL AND revoked_by IS NULL AND revoke_reason IS NULL)
        OR (state = 'revoked' AND revoked_at IS NOT NULL AND revoked_by IS NOT NULL
            AND revoke_reason IS NOT NULL))
) STRICT;

CREATE TABLE person_keys (
    person_id       TEXT    NOT NULL REFERENCES persons (id),
    epoch           INTEGER NOT NULL CHECK (epoch BETWEEN 1 AND 4294967295),
    receipt_key     BLOB    CHECK (length(receipt_key) = 32),
    approval_key    BLOB    CHECK (length(approval_key) = 32),
    age_recipient   TEXT    CHECK (length(age_recipient) BETWEEN 1 AND 128),
    tls_fingerprint BLOB    CHECK (length(tls_fingerprint) = 32),
    valid_from      INTEGER NOT NULL CHECK (valid_from >= 0),
    valid_until     INTEGER CHECK (valid_until >= valid_from),
    PRIMARY KEY (person_id, epoch)
) STRICT;
CREATE INDEX person_keys_receipt_key ON person_keys (receipt_key) WHERE receipt_key IS NOT NULL;
CREATE INDEX person_keys_approval_key ON person_keys (approval_key) WHERE approval_key IS NOT NULL;
CREATE INDEX person_keys_age_recipient ON person_keys (age_recipient)
    WHERE age_recipient IS NOT NULL;
CREATE INDEX person_keys_tls_fingerprint ON person_keys (tls_fingerprint)
    WHERE tls_fingerprint IS NOT NULL;

CREATE TABLE entities (
    id            TEXT    PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    display_name  TEXT    NOT NULL CHECK (length(CAST(display_name AS BLOB)) BETWEEN 1 AND 128),
    contact       TEXT    NOT NULL CHECK (length(CAST(contact AS BLOB)) BETWEEN 1 AND 512),
    state         TEXT    NOT NULL CHECK (state IN ('active', 'revoked')),
    revoked_at    INTEGER CHECK (revoked_at >= 0),
    revoked_by    TEXT    CHECK (length(revoked_by) BETWEEN 1 AND 64),
    registered_at INTEGER NOT NULL CHECK (registered_at >= 0),
    CHECK ((state = 'active' AND revoked_at IS NULL AND revoked_by IS NULL)
        OR (state = 'revoked' AND revoked_at IS NOT NULL AND revoked_by IS NOT NULL))
) STRICT;

CREATE TABLE entity_members (
    entity_id TEXT NOT NULL REFERENCES entities (id),
    person_id TEXT NOT NULL REFERENCES persons (id),
    PRIMARY KEY (entity_id, person_id)
) STRICT;
CREATE INDEX entity_members_person ON entity_members (person_id);

-- Rows are never deleted.
CREATE TRIGGER persons_no_delete BEFORE DELETE ON persons
BEGIN SELECT RAISE(ABORT, 'persons rows are never deleted'); END;
CREATE TRIGGER entities_no_delete BEFORE DELETE ON entities
BEGIN SELECT RAISE(ABORT, 'entities rows are never deleted'); END;
CREATE TRIGGER person_keys_no_delete BEFORE DELETE ON person_keys
BEGIN SELECT RAISE(ABORT, 'person_keys is append-only'); END;
CREATE TRIGGER entity_members_no_update BEFORE UPDATE ON entity_members
BEGIN SELECT RAISE(ABORT, 'entity_members is append-only'); END;
CREATE TRIGGER entity_members_no_delete BEFORE DELETE ON entity_members
BEGIN SELECT RAISE(ABORT, 'entity_members is append-only'); END;

-- A key epoch's keys never change; its end is set once.
CREATE TRIGGER person_keys_end_once BEFORE UPDATE ON person_keys
WHEN OLD.valid_until IS NOT NULL OR NEW.valid_until IS NULL
    OR NEW.person_id IS NOT OLD.person_id OR NEW.epoch IS NOT OLD.epoch
    OR NEW.receipt_key IS NOT OLD.receipt_key OR NEW.approval_key IS NOT OLD.approval_key
    OR NEW.age_recipient IS NOT OLD.age_recipient
    OR NEW.tls_fingerprint IS NOT OLD.tls_fingerprint OR NEW.valid_from IS NOT OLD.valid_from
BEGIN SELECT RAISE(ABORT, 'person_keys is append-only: only a current epoch may end, once'); END;

-- Identity and registration never change, a revocation is final, the key
-- epoch only grows.
CREATE TRIGGER persons_guard BEFORE UPDATE ON persons
WHEN OLD.state = 'revoked' OR NEW.id IS NOT OLD.id
    OR NEW.display_name IS NOT OLD.display_name
    OR NEW.registered_at IS NOT OLD.registered_at OR NEW.registered_by IS NOT OLD.registered_by
    OR NEW.key_epoch < OLD.key_epoch
BEGIN SELECT RAISE(ABORT, 'persons: a revoked person, an identity and a registration never change'); END;
CREATE TRIGGER entities_guard BEFORE UPDATE ON entities
WHEN OLD.state = 'revoked' OR NEW.id IS NOT OLD.id
    OR NEW.display_name IS NOT OLD.display_name OR NEW.contact IS NOT OLD.contact
    OR NEW.registered_at IS NOT OLD.registered_at
BEGIN SELECT RAISE(ABORT, 'entities: a revoked entity, an identity and a registration never change'); END;
