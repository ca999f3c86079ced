-- shardkeep storage schema, version 10 (SQLite): approval requests keyed by
-- the hash of their canonical encoding, and the signed approvals of them.
--
-- The approval tables of version 1 (keyed by a nonce, with the signed
-- fields spread over columns) were never written by the service; they are
-- replaced here. The migration refuses to run if they hold any row, so no
-- evidence is dropped: export and archive such rows first.
--
-- A request is consumed once (consumed_at and consumed_by set together, in
-- the transaction of its operation) and nothing else of it ever changes;
-- requests are never deleted. Approvals are append-only.

CREATE TABLE shardkeep_migration_0010_guard (x INTEGER) STRICT;
CREATE TRIGGER shardkeep_migration_0010_guard_check BEFORE INSERT ON shardkeep_migration_0010_guard
WHEN EXISTS (SELECT 1 FROM approvals) OR EXISTS (SELECT 1 FROM approval_requests)
BEGIN SELECT RAISE(ABORT, 'migration 0010: the version 1 approval tables hold rows; archive them first'); END;
INSERT INTO shardkeep_migration_0010_guard VALUES (1);
DROP TABLE shardkeep_migration_0010_guard;

DROP TABLE approvals;
DROP TABLE approval_requests;

CREATE TABLE approval_requests (
    hash        BLOB    PRIMARY KEY CHECK (length(hash) = 32),
    encoding    BLOB    NOT NULL CHECK (length(encoding) BETWEEN 1 AND 4096),
    operation   INTEGER NOT NULL CHECK (operation BETWEEN 1 AND 5),
    key_id      TEXT    CHECK (length(key_id) BETWEEN 1 AND 64),
    node_id     TEXT    CHECK (length(node_id) BETWEEN 1 AND 64),
    version     INTEGER CHECK (version BETWEEN 0 AND 4294967295),
    requester   TEXT    NOT NULL CHECK (length(requester) BETWEEN 1 AND 64),
    created_at  INTEGER NOT NULL CHECK (created_at >= 0),
    expires_at  INTEGER NOT NULL CHECK (expires_at > created_at),
    consumed_at INTEGER CHECK (consumed_at >= created_at),
    consumed_by TEXT    CHECK (length(consumed_by) BETWEEN 1 AND 64),
    CHECK ((consumed_at IS NULL) = (consumed_by IS NULL)),
    CHECK ((key_id IS NULL AND node_id IS NULL AND version IS NULL)
        OR (key_id IS NOT NULL AND node_id IS NOT NULL AND version IS NOT NULL))
) STRICT;

CREATE TABLE approvals (
    request_hash BLOB    NOT NULL REFERENCES approval_requests (hash),
    approver     TEXT    NOT NULL CHECK (length(approver) BETWEEN 1 AND 64),
    role         TEXT    NOT NULL CHECK (role IN ('operator', 'security', 'business-owner',
                                                  'compliance', 'custodian', 'auditor')),
    signature    BLOB    NOT NULL CHECK (length(signature) = 64),
    approved_at  INTEGER NOT NULL CHECK (approved_at >= 0),
    PRIMARY KEY (request_hash, approver)
) STRICT;

CREATE TRIGGER approvals_no_update BEFORE UPDATE ON approvals
BEGIN SELECT RAISE(ABORT, 'approvals is append-only'); END;
CREATE TRIGGER approvals_no_delete BEFORE DELETE ON approvals
BEGIN SELECT RAISE(ABORT, 'approvals is append-only'); END;
CREATE TRIGGER approval_requests_no_delete BEFORE DELETE ON approval_requests
BEGIN SELECT RAISE(ABORT, 'approval_requests rows are never deleted'); END;
-- Only an open request may be consumed, once; nothing else of it changes.
CREATE TRIGGER approval_requests_consume_once BEFORE UPDATE ON approval_requests
WHEN OLD.consumed_at IS NOT NULL OR NEW.consumed_at IS NULL OR NEW.consumed_by IS NULL
    OR NEW.hash IS NOT OLD.hash OR NEW.encoding IS NOT OLD.encoding
    OR NEW.operation IS NOT OLD.operation OR NEW.key_id IS NOT OLD.key_id
    OR NEW.node_id IS NOT OLD.node_id OR NEW.version IS NOT OLD.version
    OR NEW.requester IS NOT OLD.requester OR NEW.created_at IS NOT OLD.created_at
    OR NEW.expires_at IS NOT OLD.expires_at
BEGIN SELECT RAISE(ABORT, 'approval_requests: only an open request may be consumed, once'); END;
