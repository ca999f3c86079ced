-- shardkeep storage schema, version 11 (SQLite): recovery sessions.
--
-- A row holds a session's non-secret metadata only: its id, the key
-- version and split it recovers, the approval request it consumed, the
-- replica whose memory holds its secret (the one-time age identity and the
-- shares received), its times and how it ended. At most one session per
-- key version is open (closed_at NULL) at a time. Rows are never deleted;
-- an open session's idle deadline moves with its activity, and it is
-- closed once; nothing else of a row changes.

CREATE TABLE recovery_sessions (
    id              BLOB    PRIMARY KEY CHECK (length(id) = 16),
    key_id          TEXT    NOT NULL,
    node_id         TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    split_id        BLOB    NOT NULL CHECK (length(split_id) = 32),
    operation       INTEGER NOT NULL CHECK (operation IN (1, 2)),
    request_hash    BLOB    NOT NULL REFERENCES approval_requests (hash),
    replica         TEXT    NOT NULL CHECK (length(replica) BETWEEN 1 AND 64),
    started_by      TEXT    NOT NULL CHECK (length(started_by) BETWEEN 1 AND 64),
    started_at      INTEGER NOT NULL CHECK (started_at >= 0),
    expires_at      INTEGER NOT NULL CHECK (expires_at > started_at),
    idle_expires_at INTEGER NOT NULL CHECK (idle_expires_at > started_at
                                            AND idle_expires_at <= expires_at),
    closed_at       INTEGER CHECK (closed_at >= started_at),
    outcome         TEXT    CHECK (outcome IN ('completed', 'failed', 'expired', 'abandoned')),
    CHECK ((closed_at IS NULL) = (outcome IS NULL)),
    FOREIGN KEY (key_id, node_id, version) REFERENCES key_versions (key_id, node_id, version)
) STRICT;

CREATE UNIQUE INDEX recovery_sessions_one_open ON recovery_sessions (key_id, node_id, version)
    WHERE closed_at IS NULL;

CREATE TRIGGER recovery_sessions_no_delete BEFORE DELETE ON recovery_sessions
BEGIN SELECT RAISE(ABORT, 'recovery_sessions rows are never deleted'); END;
-- An open session may move its idle deadline or be closed, once; nothing
-- else of it changes.
CREATE TRIGGER recovery_sessions_update_guard BEFORE UPDATE ON recovery_sessions
WHEN OLD.closed_at IS NOT NULL
    OR NEW.id IS NOT OLD.id OR NEW.key_id IS NOT OLD.key_id OR NEW.node_id IS NOT OLD.node_id
    OR NEW.version IS NOT OLD.version OR NEW.split_id IS NOT OLD.split_id
    OR NEW.operation IS NOT OLD.operation OR NEW.request_hash IS NOT OLD.request_hash
    OR NEW.replica IS NOT OLD.replica OR NEW.started_by IS NOT OLD.started_by
    OR NEW.started_at IS NOT OLD.started_at OR NEW.expires_at IS NOT OLD.expires_at
BEGIN SELECT RAISE(ABORT, 'recovery_sessions: only an open session changes, by activity or closing'); END;
