-- shardkeep storage schema, version 2 (SQLite): the KEK of each server-held
-- slot, as pinned by the key store (id and key fingerprint).
--
-- A slot has at most one live (not destroyed) KEK; a KEK id is recorded
-- once, for one slot. Rows are never deleted: a destroyed KEK's row, with
-- its destruction time, is the evidence of the crypto-shredding. Only
-- `destroyed_at` ever changes, once, from NULL.

CREATE TABLE slot_keks (
    id           INTEGER PRIMARY KEY,
    key_id       TEXT    NOT NULL,
    node_id      TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    share_index  INTEGER NOT NULL CHECK (share_index BETWEEN 1 AND 255),
    kek_id       TEXT    NOT NULL UNIQUE CHECK (length(kek_id) BETWEEN 1 AND 64),
    fingerprint  BLOB    NOT NULL CHECK (length(fingerprint) = 32),
    created_at   INTEGER NOT NULL CHECK (created_at >= 0),
    destroyed_at INTEGER CHECK (destroyed_at >= created_at),
    FOREIGN KEY (key_id, node_id, version) REFERENCES key_versions (key_id, node_id, version)
) STRICT;

-- At most one live KEK per slot.
CREATE UNIQUE INDEX slot_keks_one_live ON slot_keks (key_id, node_id, version, share_index)
    WHERE destroyed_at IS NULL;
CREATE INDEX slot_keks_slot ON slot_keks (key_id, node_id, version, share_index, id);

CREATE TRIGGER slot_keks_no_delete BEFORE DELETE ON slot_keks
BEGIN SELECT RAISE(ABORT, 'slot_keks rows are never deleted'); END;
CREATE TRIGGER slot_keks_destroy_once BEFORE UPDATE ON slot_keks
WHEN OLD.destroyed_at IS NOT NULL OR NEW.destroyed_at IS NULL
    OR NEW.id IS NOT OLD.id OR NEW.key_id IS NOT OLD.key_id OR NEW.node_id IS NOT OLD.node_id
    OR NEW.version IS NOT OLD.version OR NEW.share_index IS NOT OLD.share_index
    OR NEW.kek_id IS NOT OLD.kek_id OR NEW.fingerprint IS NOT OLD.fingerprint
    OR NEW.created_at IS NOT OLD.created_at
BEGIN SELECT RAISE(ABORT, 'slot_keks: only a live KEK may be marked destroyed, once'); END;
