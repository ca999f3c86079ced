-- shardkeep storage schema, version 8 (SQLite): inventory challenges and
-- proofs, rate counters, anomalies.
--
-- A challenge is issued for the custodian of one external slot and used
-- once; the proof that answers it is evidence, never changed or deleted.
-- Rate counters are shared by every process using the database: one row
-- per (person, kind, window), upserted, never decreasing. Anomalies are
-- evidence.

CREATE TABLE inventory_challenges (
    nonce        BLOB    PRIMARY KEY CHECK (length(nonce) = 32),
    key_id       TEXT    NOT NULL,
    node_id      TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    share_index  INTEGER NOT NULL,
    custodian_id TEXT    NOT NULL CHECK (length(custodian_id) BETWEEN 1 AND 64),
    issued_at    INTEGER NOT NULL CHECK (issued_at >= 0),
    expires_at   INTEGER NOT NULL CHECK (expires_at > issued_at),
    consumed_at  INTEGER CHECK (consumed_at >= 0),
    FOREIGN KEY (key_id, node_id, version, share_index)
        REFERENCES custody_map (key_id, node_id, version, share_index)
) STRICT;

CREATE TABLE inventory_proofs (
    id          INTEGER PRIMARY KEY,
    nonce       BLOB    NOT NULL UNIQUE REFERENCES inventory_challenges (nonce),
    key_id      TEXT    NOT NULL,
    node_id     TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    share_index INTEGER NOT NULL,
    person_id   TEXT    NOT NULL REFERENCES persons (id),
    proof       BLOB    NOT NULL CHECK (length(proof) BETWEEN 1 AND 4096),
    verified_at INTEGER NOT NULL CHECK (verified_at >= 0),
    FOREIGN KEY (key_id, node_id, version, share_index)
        REFERENCES custody_map (key_id, node_id, version, share_index)
) STRICT;
CREATE INDEX inventory_proofs_slot ON inventory_proofs (key_id, node_id, version, share_index);

CREATE TABLE rate_counters (
    person_id    TEXT    NOT NULL CHECK (length(person_id) BETWEEN 1 AND 64),
    kind         TEXT    NOT NULL CHECK (length(kind) BETWEEN 1 AND 64),
    window_start INTEGER NOT NULL CHECK (window_start >= 0),
    count        INTEGER NOT NULL CHECK (count BETWEEN 1 AND 4294967295),
    PRIMARY KEY (person_id, kind, window_start)
) STRICT;

-- The person and slot of an anomaly need not exist: an unregistered actor,
-- a read of a slot that is not there, are anomalies too.
CREATE TABLE anomalies (
    id          INTEGER PRIMARY KEY,
    kind        TEXT    NOT NULL CHECK (length(kind) BETWEEN 1 AND 64),
    person_id   TEXT    CHECK (length(person_id) BETWEEN 1 AND 64),
    key_id      TEXT    CHECK (length(key_id) BETWEEN 1 AND 64),
    node_id     TEXT    CHECK (length(node_id) BETWEEN 1 AND 64),
    version     INTEGER CHECK (version BETWEEN 0 AND 4294967295),
    share_index INTEGER CHECK (share_index BETWEEN 1 AND 255),
    at          INTEGER NOT NULL CHECK (at >= 0),
    detail      TEXT    NOT NULL CHECK (length(CAST(detail AS BLOB)) BETWEEN 1 AND 1024),
    CHECK ((key_id IS NULL AND node_id IS NULL AND version IS NULL AND share_index IS NULL)
        OR (key_id IS NOT NULL AND node_id IS NOT NULL AND version IS NOT NULL
            AND share_index IS NOT NULL))
) STRICT;
CREATE INDEX anomalies_at ON anomalies (at);
CREATE INDEX anomalies_kind ON anomalies (kind);

CREATE TRIGGER inventory_challenges_no_delete BEFORE DELETE ON inventory_challenges
BEGIN SELECT RAISE(ABORT, 'inventory_challenges rows are never deleted'); END;
-- A challenge is consumed once, and nothing else of it changes.
CREATE TRIGGER inventory_challenges_consume_once BEFORE UPDATE ON inventory_challenges
WHEN OLD.consumed_at IS NOT NULL OR NEW.consumed_at IS NULL
    OR NEW.nonce IS NOT OLD.nonce OR NEW.key_id IS NOT OLD.key_id
    OR NEW.node_id IS NOT OLD.node_id OR NEW.version IS NOT OLD.version
    OR NEW.share_index IS NOT OLD.share_index OR NEW.custodian_id IS NOT OLD.custodian_id
    OR NEW.issued_at IS NOT OLD.issued_at OR NEW.expires_at IS NOT OLD.expires_at
BEGIN SELECT RAISE(ABORT, 'inventory_challenges: only an open challenge may be consumed, once'); END;
CREATE TRIGGER inventory_proofs_no_update BEFORE UPDATE ON inventory_proofs
BEGIN SELECT RAISE(ABORT, 'inventory_proofs is append-only'); END;
CREATE TRIGGER inventory_proofs_no_delete BEFORE DELETE ON inventory_proofs
BEGIN SELECT RAISE(ABORT, 'inventory_proofs is append-only'); END;
CREATE TRIGGER anomalies_no_update BEFORE UPDATE ON anomalies
BEGIN SELECT RAISE(ABORT, 'anomalies is append-only'); END;
CREATE TRIGGER anomalies_no_delete BEFORE DELETE ON anomalies
BEGIN SELECT RAISE(ABORT, 'anomalies is append-only'); END;
-- A counter only counts up.
CREATE TRIGGER rate_counters_count_up BEFORE UPDATE ON rate_counters
WHEN NEW.count < OLD.count OR NEW.person_id IS NOT OLD.person_id OR NEW.kind IS NOT OLD.kind
    OR NEW.window_start IS NOT OLD.window_start
BEGIN SELECT RAISE(ABORT, 'rate_counters only count up'); END;
