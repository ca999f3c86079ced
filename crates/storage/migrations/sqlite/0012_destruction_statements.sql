-- shardkeep storage schema, version 12 (SQLite): destruction statements.
--
-- After a re-split the old external shares still recover the same Xi: each
-- custodian signs a statement that it destroyed the old container of one
-- external slot. A row keeps the signed statement as received (the service
-- verified it against the custodian's registered receipt key before
-- storing it) with the fields it names. One statement per slot; rows are
-- never changed or deleted.

CREATE TABLE destruction_statements (
    key_id        TEXT    NOT NULL,
    node_id       TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    share_index   INTEGER NOT NULL CHECK (share_index BETWEEN 1 AND 255),
    envelope_id   BLOB    NOT NULL CHECK (length(envelope_id) = 32),
    custodian_id  TEXT    NOT NULL CHECK (length(custodian_id) BETWEEN 1 AND 64),
    person_id     TEXT    NOT NULL REFERENCES persons (id),
    destroyed_at  INTEGER NOT NULL CHECK (destroyed_at >= 0),
    recorded_at   INTEGER NOT NULL CHECK (recorded_at >= 0),
    statement     BLOB    NOT NULL CHECK (length(statement) BETWEEN 1 AND 1024),
    PRIMARY KEY (key_id, node_id, version, share_index),
    FOREIGN KEY (key_id, node_id, version, share_index)
        REFERENCES custody_map (key_id, node_id, version, share_index)
) STRICT;

CREATE TRIGGER destruction_statements_refuse_update BEFORE UPDATE ON destruction_statements
BEGIN
    SELECT RAISE(ABORT, 'destruction_statements: rows never change');
END;
CREATE TRIGGER destruction_statements_refuse_delete BEFORE DELETE ON destruction_statements
BEGIN
    SELECT RAISE(ABORT, 'destruction_statements: rows are never deleted');
END;
