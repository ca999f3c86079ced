-- shardkeep storage schema, version 3 (SQLite): the envelope bytes are the
-- one source of a sealed share's KEK id and wrapped data key.
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

CREATE TEMP TABLE migration_0003_guard (
    stranded INTEGER NOT NULL
        CONSTRAINT "share_slots rows re-wrapped by a version 1 build: envelope trailer disagrees with kek_id and wrapped_key"
        CHECK (stranded = 0)
);
INSERT INTO migration_0003_guard
SELECT count(*) FROM share_slots
WHERE envelope IS NOT NULL
    AND (length(envelope) <= 3 + length(CAST(kek_id AS BLOB)) + length(wrapped_key)
        OR substr(envelope, length(envelope) - 2 - length(CAST(kek_id AS BLOB)) - length(wrapped_key))
            IS NOT CAST(unhex(printf('%02x', length(CAST(kek_id AS BLOB)))) || CAST(kek_id AS BLOB)
                || unhex(printf('%04x', length(wrapped_key))) || wrapped_key AS BLOB));
DROP TABLE migration_0003_guard;

-- SQLite cannot drop a column named in a CHECK: rebuild the table. The
-- share-access log references it, so its foreign keys are checked at commit,
-- when every row is back.
PRAGMA defer_foreign_keys = ON;

CREATE TABLE share_slots_v2 AS SELECT key_id, node_id, version, share_index, kek_id, envelope,
    envelope_id, stored_at, state, deleted_at, deleted_by, cooldown_until, hard_deleted_at, evidence
    FROM share_slots;
DROP TABLE share_slots;

CREATE TABLE share_slots (
    key_id          TEXT    NOT NULL,
    node_id         TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    share_index     INTEGER NOT NULL CHECK (share_index BETWEEN 1 AND 255),
    kek_id          TEXT    NOT NULL CHECK (length(kek_id) BETWEEN 1 AND 64),
    envelope        BLOB    CHECK (length(envelope) BETWEEN 1 AND 65536),
    envelope_id     BLOB    NOT NULL CHECK (length(envelope_id) = 32),
    stored_at       INTEGER NOT NULL CHECK (stored_at >= 0),
    state           TEXT    NOT NULL CHECK (state IN ('active', 'soft_deleted', 'hard_deleted')),
    deleted_at      INTEGER,
    deleted_by      TEXT,
    cooldown_until  INTEGER,
    hard_deleted_at INTEGER,
    evidence        BLOB    CHECK (length(evidence) BETWEEN 1 AND 65536),
    PRIMARY KEY (key_id, node_id, version, share_index),
    FOREIGN KEY (key_id, node_id, version) REFERENCES key_versions (key_id, node_id, version),
    CHECK (
        (state = 'active' AND envelope IS NOT NULL
            AND deleted_at IS NULL AND deleted_by IS NULL AND cooldown_until IS NULL
            AND hard_deleted_at IS NULL AND evidence IS NULL)
        OR (state = 'soft_deleted' AND envelope IS NOT NULL
            AND deleted_at IS NOT NULL AND deleted_by IS NOT NULL AND cooldown_until >= deleted_at
            AND hard_deleted_at IS NULL AND evidence IS NULL)
        OR (state = 'hard_deleted' AND envelope IS NULL
            AND deleted_at IS NOT NULL AND deleted_by IS NOT NULL AND cooldown_until IS NOT NULL
            AND hard_deleted_at >= cooldown_until AND evidence IS NOT NULL)
    )
) STRICT;

INSERT INTO share_slots (key_id, node_id, version, share_index, kek_id, envelope, envelope_id,
    stored_at, state, deleted_at, deleted_by, cooldown_until, hard_deleted_at, evidence)
SELECT key_id, node_id, version, share_index, kek_id, envelope, envelope_id, stored_at, state,
    deleted_at, deleted_by, cooldown_until, hard_deleted_at, evidence
FROM share_slots_v2;
DROP TABLE share_slots_v2;

CREATE TRIGGER share_slots_no_delete BEFORE DELETE ON share_slots
BEGIN SELECT RAISE(ABORT, 'share_slots rows are never deleted; hard delete erases the bytes'); END;
