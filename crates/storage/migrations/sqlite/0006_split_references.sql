-- shardkeep storage schema, version 6 (SQLite): groups, policies and split
-- references.
--
-- A key version now records what it was split into (curve, split id,
-- Feldman commitments, signed binding, the policy in force, the server's
-- share count), who created it, and the last change that makes a drill
-- due. Groups, policies and split references are evidence: never changed,
-- never deleted. Versions created before this migration have no split
-- reference and no creator; their last change is their creation.

CREATE TABLE groups (
    key_id           TEXT    PRIMARY KEY CHECK (length(key_id) BETWEEN 1 AND 64),
    curve            INTEGER NOT NULL CHECK (curve BETWEEN 0 AND 255),
    group_public_key BLOB    NOT NULL CHECK (length(group_public_key) BETWEEN 1 AND 64),
    tss_degree       INTEGER NOT NULL CHECK (tss_degree >= 1),
    parties          INTEGER NOT NULL CHECK (parties <= 65535),
    registered_at    INTEGER NOT NULL CHECK (registered_at >= 0),
    CHECK (tss_degree < parties)
) STRICT;

CREATE TABLE policies (
    id       INTEGER PRIMARY KEY,
    hash     BLOB    NOT NULL CHECK (length(hash) = 32),
    encoding BLOB    NOT NULL CHECK (length(encoding) BETWEEN 1 AND 4096),
    set_at   INTEGER NOT NULL CHECK (set_at >= 0),
    set_by   TEXT    NOT NULL CHECK (length(set_by) BETWEEN 1 AND 64)
) STRICT;
CREATE INDEX policies_hash ON policies (hash);

CREATE TABLE split_references (
    key_id        TEXT    NOT NULL,
    node_id       TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    curve         INTEGER NOT NULL CHECK (curve BETWEEN 0 AND 255),
    split_id      BLOB    NOT NULL CHECK (length(split_id) = 32),
    commitments   BLOB    NOT NULL CHECK (length(commitments) BETWEEN 1 AND 16384),
    binding       BLOB    NOT NULL CHECK (length(binding) BETWEEN 1 AND 1024),
    policy_hash   BLOB    NOT NULL CHECK (length(policy_hash) = 32),
    server_shares INTEGER NOT NULL CHECK (server_shares BETWEEN 0 AND 254),
    PRIMARY KEY (key_id, node_id, version),
    FOREIGN KEY (key_id, node_id, version) REFERENCES key_versions (key_id, node_id, version)
) STRICT;

-- SQLite adds a NOT NULL column only with a default; every insert sets it.
ALTER TABLE key_versions ADD COLUMN created_by TEXT CHECK (length(created_by) BETWEEN 1 AND 64);
ALTER TABLE key_versions ADD COLUMN last_change_at INTEGER NOT NULL DEFAULT 0
    CHECK (last_change_at >= 0);
ALTER TABLE key_versions ADD COLUMN last_change TEXT NOT NULL DEFAULT 'created'
    CHECK (length(last_change) BETWEEN 1 AND 64);
UPDATE key_versions SET last_change_at = created_at;

CREATE TRIGGER groups_no_update BEFORE UPDATE ON groups
BEGIN SELECT RAISE(ABORT, 'groups is append-only'); END;
CREATE TRIGGER groups_no_delete BEFORE DELETE ON groups
BEGIN SELECT RAISE(ABORT, 'groups is append-only'); END;
CREATE TRIGGER policies_no_update BEFORE UPDATE ON policies
BEGIN SELECT RAISE(ABORT, 'policies is append-only'); END;
CREATE TRIGGER policies_no_delete BEFORE DELETE ON policies
BEGIN SELECT RAISE(ABORT, 'policies is append-only'); END;
CREATE TRIGGER split_references_no_update BEFORE UPDATE ON split_references
BEGIN SELECT RAISE(ABORT, 'split_references is append-only'); END;
CREATE TRIGGER split_references_no_delete BEFORE DELETE ON split_references
BEGIN SELECT RAISE(ABORT, 'split_references is append-only'); END;
-- A version's identity, split and creation never change.
CREATE TRIGGER key_versions_identity BEFORE UPDATE ON key_versions
WHEN NEW.key_id IS NOT OLD.key_id OR NEW.node_id IS NOT OLD.node_id
    OR NEW.version IS NOT OLD.version OR NEW.threshold IS NOT OLD.threshold
    OR NEW.total IS NOT OLD.total OR NEW.created_at IS NOT OLD.created_at
    OR NEW.created_by IS NOT OLD.created_by
BEGIN SELECT RAISE(ABORT, 'key_versions: identity, split and creation never change'); END;
