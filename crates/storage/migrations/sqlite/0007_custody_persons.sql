-- shardkeep storage schema, version 7 (SQLite): custody entries name the
-- person, the recipient, the envelope and the container.
--
-- An external slot is mapped to a custodian entity and to the member whose
-- keys its share was sealed to and whose receipt key signs for it: the age
-- recipient the container was sealed to, the envelope inside it and the
-- hash of the container as delivered. The entity's contact moves to the
-- registry.
--
-- Entries made before this version name no person: they keep their
-- contact and public key in `legacy_contact` and `legacy_public_key`, and
-- storage reports them as legacy until the slot is reassigned. SQLite
-- cannot drop a NOT NULL constraint: the table is rebuilt, and the
-- deliveries that reference it are checked at commit, when every row is
-- back.

PRAGMA defer_foreign_keys = ON;

CREATE TABLE custody_map_v6 AS SELECT key_id, node_id, version, share_index, custodian_id,
    contact, public_key, updated_at, confirmed_at FROM custody_map;
DROP TABLE custody_map;

CREATE TABLE custody_map (
    key_id            TEXT    NOT NULL,
    node_id           TEXT    NOT NULL,
    version           INTEGER NOT NULL,
    share_index       INTEGER NOT NULL CHECK (share_index BETWEEN 1 AND 255),
    custodian_id      TEXT    NOT NULL CHECK (length(custodian_id) BETWEEN 1 AND 64),
    person_id         TEXT    REFERENCES persons (id),
    recipient         TEXT    CHECK (length(recipient) BETWEEN 1 AND 128),
    envelope_id       BLOB    CHECK (length(envelope_id) = 32),
    container_hash    BLOB    CHECK (length(container_hash) = 32),
    updated_at        INTEGER NOT NULL CHECK (updated_at >= 0),
    confirmed_at      INTEGER CHECK (confirmed_at >= 0),
    legacy_contact    TEXT    CHECK (length(CAST(legacy_contact AS BLOB)) BETWEEN 1 AND 512),
    legacy_public_key BLOB    CHECK (length(legacy_public_key) BETWEEN 1 AND 4096),
    PRIMARY KEY (key_id, node_id, version, share_index),
    FOREIGN KEY (key_id, node_id, version) REFERENCES key_versions (key_id, node_id, version),
    CHECK ((person_id IS NOT NULL AND recipient IS NOT NULL AND envelope_id IS NOT NULL
            AND container_hash IS NOT NULL
            AND legacy_contact IS NULL AND legacy_public_key IS NULL)
        OR (person_id IS NULL AND recipient IS NULL AND envelope_id IS NULL
            AND container_hash IS NULL
            AND legacy_contact IS NOT NULL AND legacy_public_key IS NOT NULL))
) STRICT;

INSERT INTO custody_map (key_id, node_id, version, share_index, custodian_id, updated_at,
    confirmed_at, legacy_contact, legacy_public_key)
SELECT key_id, node_id, version, share_index, custodian_id, updated_at, confirmed_at, contact,
    public_key
FROM custody_map_v6;
DROP TABLE custody_map_v6;

CREATE INDEX custody_map_custodian ON custody_map (custodian_id);

CREATE TRIGGER custody_map_no_delete BEFORE DELETE ON custody_map
BEGIN SELECT RAISE(ABORT, 'custody_map rows are never deleted'); END;
