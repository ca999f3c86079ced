-- shardkeep storage schema, version 1 (SQLite).
--
-- STRICT tables: SQLite enforces the declared column types. Times are
-- milliseconds since the Unix epoch. Ids follow the name rule checked in Rust
-- (1-64 bytes of [A-Za-z0-9._:-], '@' too for actors); lengths are checked
-- again here so a row written around this crate still cannot hold garbage.
-- Tables of evidence (audit log, checkpoints, deliveries, approvals, drills,
-- share reads) refuse UPDATE and DELETE through triggers.

CREATE TABLE key_versions (
    key_id         TEXT    NOT NULL CHECK (length(key_id) BETWEEN 1 AND 64),
    node_id        TEXT    NOT NULL CHECK (length(node_id) BETWEEN 1 AND 64),
    version        INTEGER NOT NULL CHECK (version BETWEEN 0 AND 4294967295),
    threshold      INTEGER NOT NULL,
    total          INTEGER NOT NULL,
    created_at     INTEGER NOT NULL CHECK (created_at >= 0),
    state          TEXT    NOT NULL CHECK (state IN ('active', 'retiring', 'retired')),
    retiring_since INTEGER,
    cooldown_until INTEGER,
    retired_at     INTEGER,
    PRIMARY KEY (key_id, node_id, version),
    CHECK (threshold >= 2 AND total >= threshold AND total <= 255),
    CHECK (
        (state = 'active' AND retiring_since IS NULL AND cooldown_until IS NULL AND retired_at IS NULL)
        OR (state = 'retiring' AND retiring_since IS NOT NULL AND cooldown_until >= retiring_since AND retired_at IS NULL)
        OR (state = 'retired' AND retiring_since IS NOT NULL AND cooldown_until IS NOT NULL AND retired_at >= cooldown_until)
    )
) STRICT;

-- At most one active version per node.
CREATE UNIQUE INDEX key_versions_one_active ON key_versions (key_id, node_id) WHERE state = 'active';

CREATE TABLE share_slots (
    key_id          TEXT    NOT NULL,
    node_id         TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    share_index     INTEGER NOT NULL CHECK (share_index BETWEEN 1 AND 255),
    kek_id          TEXT    NOT NULL CHECK (length(kek_id) BETWEEN 1 AND 64),
    wrapped_key     BLOB    CHECK (length(wrapped_key) BETWEEN 1 AND 512),
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
        (state = 'active' AND envelope IS NOT NULL AND wrapped_key IS NOT NULL
            AND deleted_at IS NULL AND deleted_by IS NULL AND cooldown_until IS NULL
            AND hard_deleted_at IS NULL AND evidence IS NULL)
        OR (state = 'soft_deleted' AND envelope IS NOT NULL AND wrapped_key IS NOT NULL
            AND deleted_at IS NOT NULL AND deleted_by IS NOT NULL AND cooldown_until >= deleted_at
            AND hard_deleted_at IS NULL AND evidence IS NULL)
        OR (state = 'hard_deleted' AND envelope IS NULL AND wrapped_key IS NULL
            AND deleted_at IS NOT NULL AND deleted_by IS NOT NULL AND cooldown_until IS NOT NULL
            AND hard_deleted_at >= cooldown_until AND evidence IS NOT NULL)
    )
) STRICT;

CREATE TABLE share_access_log (
    id          INTEGER PRIMARY KEY,
    key_id      TEXT    NOT NULL,
    node_id     TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    share_index INTEGER NOT NULL,
    accessor    TEXT    NOT NULL CHECK (length(accessor) BETWEEN 1 AND 64),
    purpose     TEXT    NOT NULL CHECK (length(purpose) BETWEEN 1 AND 64),
    accessed_at INTEGER NOT NULL CHECK (accessed_at >= 0),
    FOREIGN KEY (key_id, node_id, version, share_index)
        REFERENCES share_slots (key_id, node_id, version, share_index)
) STRICT;
CREATE INDEX share_access_log_slot ON share_access_log (key_id, node_id, version, share_index);
CREATE INDEX share_access_log_time ON share_access_log (accessed_at);

CREATE TABLE custody_map (
    key_id       TEXT    NOT NULL,
    node_id      TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    share_index  INTEGER NOT NULL CHECK (share_index BETWEEN 1 AND 255),
    custodian_id TEXT    NOT NULL CHECK (length(custodian_id) BETWEEN 1 AND 64),
    contact      TEXT    NOT NULL CHECK (length(CAST(contact AS BLOB)) BETWEEN 1 AND 512),
    public_key   BLOB    NOT NULL CHECK (length(public_key) BETWEEN 1 AND 4096),
    updated_at   INTEGER NOT NULL CHECK (updated_at >= 0),
    confirmed_at INTEGER CHECK (confirmed_at >= 0),
    PRIMARY KEY (key_id, node_id, version, share_index),
    FOREIGN KEY (key_id, node_id, version) REFERENCES key_versions (key_id, node_id, version)
) STRICT;

CREATE TABLE deliveries (
    id             INTEGER PRIMARY KEY,
    key_id         TEXT    NOT NULL,
    node_id        TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    share_index    INTEGER NOT NULL,
    custodian_id   TEXT    NOT NULL,
    envelope_id    BLOB    NOT NULL CHECK (length(envelope_id) = 32),
    outcome        TEXT    NOT NULL CHECK (outcome IN ('delivered', 'failed')),
    failure_reason TEXT    CHECK (length(CAST(failure_reason AS BLOB)) BETWEEN 1 AND 1024),
    receipt        BLOB    CHECK (length(receipt) BETWEEN 1 AND 16384),
    recorded_at    INTEGER NOT NULL CHECK (recorded_at >= 0),
    FOREIGN KEY (key_id, node_id, version, share_index)
        REFERENCES custody_map (key_id, node_id, version, share_index),
    CHECK ((outcome = 'delivered' AND receipt IS NOT NULL AND failure_reason IS NULL)
        OR (outcome = 'failed' AND receipt IS NULL AND failure_reason IS NOT NULL))
) STRICT;
-- At most one confirmed receipt per slot; failures may repeat.
CREATE UNIQUE INDEX deliveries_one_receipt ON deliveries (key_id, node_id, version, share_index)
    WHERE outcome = 'delivered';
CREATE INDEX deliveries_version ON deliveries (key_id, node_id, version);

CREATE TABLE approval_requests (
    nonce        BLOB    PRIMARY KEY CHECK (length(nonce) = 32),
    key_id       TEXT    NOT NULL CHECK (length(key_id) BETWEEN 1 AND 64),
    node_id      TEXT    NOT NULL CHECK (length(node_id) BETWEEN 1 AND 64),
    version      INTEGER NOT NULL CHECK (version BETWEEN 0 AND 4294967295),
    operation    TEXT    NOT NULL CHECK (length(operation) BETWEEN 1 AND 64),
    request_hash BLOB    NOT NULL CHECK (length(request_hash) = 32),
    requester    TEXT    NOT NULL CHECK (length(requester) BETWEEN 1 AND 64),
    ticket       TEXT    NOT NULL CHECK (length(ticket) BETWEEN 1 AND 64),
    issued_at    INTEGER NOT NULL CHECK (issued_at >= 0),
    expires_at   INTEGER NOT NULL CHECK (expires_at > issued_at),
    consumed_at  INTEGER CHECK (consumed_at >= issued_at)
) STRICT;

CREATE TABLE approvals (
    nonce        BLOB    NOT NULL REFERENCES approval_requests (nonce),
    key_id       TEXT    NOT NULL,
    node_id      TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    operation    TEXT    NOT NULL,
    request_hash BLOB    NOT NULL CHECK (length(request_hash) = 32),
    requester    TEXT    NOT NULL,
    ticket       TEXT    NOT NULL,
    role         TEXT    NOT NULL CHECK (length(role) BETWEEN 1 AND 64),
    expires_at   INTEGER NOT NULL CHECK (expires_at >= 0),
    approver     TEXT    NOT NULL CHECK (length(approver) BETWEEN 1 AND 64),
    signature    BLOB    NOT NULL CHECK (length(signature) = 64),
    recorded_at  INTEGER NOT NULL CHECK (recorded_at >= 0),
    PRIMARY KEY (nonce, approver),
    -- Approvers are never the requester.
    CHECK (approver <> requester)
) STRICT;

CREATE TABLE drill_reports (
    key_id         TEXT    NOT NULL,
    node_id        TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    started_at     INTEGER NOT NULL CHECK (started_at >= 0),
    finished_at    INTEGER NOT NULL CHECK (finished_at >= started_at),
    operator       TEXT    NOT NULL CHECK (length(operator) BETWEEN 1 AND 64),
    shares_used    BLOB    NOT NULL CHECK (length(shares_used) <= 255),
    outcome        TEXT    NOT NULL CHECK (outcome IN ('passed', 'failed')),
    failure_reason TEXT    CHECK (length(CAST(failure_reason AS BLOB)) BETWEEN 1 AND 1024),
    report         BLOB    NOT NULL CHECK (length(report) <= 65536),
    PRIMARY KEY (key_id, node_id, version, started_at),
    FOREIGN KEY (key_id, node_id, version) REFERENCES key_versions (key_id, node_id, version),
    CHECK ((outcome = 'passed') = (failure_reason IS NULL))
) STRICT;

-- The audit chain. `sequence` is previous + 1, computed under the write lock;
-- the trigger below refuses any row that does not extend the head.
CREATE TABLE audit_log (
    sequence  INTEGER PRIMARY KEY CHECK (sequence >= 1),
    prev_hash BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    hash      BLOB    NOT NULL CHECK (length(hash) = 32),
    record    BLOB    NOT NULL CHECK (length(record) BETWEEN 1 AND 65536)
) STRICT;

CREATE TRIGGER audit_log_extends_head BEFORE INSERT ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log: sequence must be head + 1')
    WHERE NEW.sequence <> (SELECT COALESCE(MAX(sequence), 0) + 1 FROM audit_log);
    SELECT RAISE(ABORT, 'audit_log: prev_hash must be the head hash')
    WHERE NEW.prev_hash IS NOT COALESCE(
        (SELECT hash FROM audit_log WHERE sequence = NEW.sequence - 1), zeroblob(32));
END;

CREATE TABLE audit_checkpoints (
    sequence   INTEGER PRIMARY KEY CHECK (sequence >= 0),
    checkpoint BLOB    NOT NULL CHECK (length(checkpoint) BETWEEN 1 AND 4096)
) STRICT;

-- Evidence tables are append-only.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
CREATE TRIGGER share_access_log_no_update BEFORE UPDATE ON share_access_log
BEGIN SELECT RAISE(ABORT, 'share_access_log is append-only'); END;
CREATE TRIGGER share_access_log_no_delete BEFORE DELETE ON share_access_log
BEGIN SELECT RAISE(ABORT, 'share_access_log is append-only'); END;
CREATE TRIGGER deliveries_no_update BEFORE UPDATE ON deliveries
BEGIN SELECT RAISE(ABORT, 'deliveries is append-only'); END;
CREATE TRIGGER deliveries_no_delete BEFORE DELETE ON deliveries
BEGIN SELECT RAISE(ABORT, 'deliveries is append-only'); END;
CREATE TRIGGER approvals_no_update BEFORE UPDATE ON approvals
BEGIN SELECT RAISE(ABORT, 'approvals is append-only'); END;
CREATE TRIGGER approvals_no_delete BEFORE DELETE ON approvals
BEGIN SELECT RAISE(ABORT, 'approvals is append-only'); END;
CREATE TRIGGER drill_reports_no_update BEFORE UPDATE ON drill_reports
BEGIN SELECT RAISE(ABORT, 'drill_reports is append-only'); END;
CREATE TRIGGER drill_reports_no_delete BEFORE DELETE ON drill_reports
BEGIN SELECT RAISE(ABORT, 'drill_reports is append-only'); END;
-- Rows of the other tables change state but are never removed.
CREATE TRIGGER key_versions_no_delete BEFORE DELETE ON key_versions
BEGIN SELECT RAISE(ABORT, 'key_versions rows are never deleted'); END;
CREATE TRIGGER share_slots_no_delete BEFORE DELETE ON share_slots
BEGIN SELECT RAISE(ABORT, 'share_slots rows are never deleted; hard delete erases the bytes'); END;
CREATE TRIGGER custody_map_no_delete BEFORE DELETE ON custody_map
BEGIN SELECT RAISE(ABORT, 'custody_map rows are never deleted'); END;
CREATE TRIGGER approval_requests_no_delete BEFORE DELETE ON approval_requests
BEGIN SELECT RAISE(ABORT, 'approval_requests rows are never deleted'); END;
-- A consumed request stays consumed.
CREATE TRIGGER approval_requests_consume_once BEFORE UPDATE ON approval_requests
WHEN OLD.consumed_at IS NOT NULL OR NEW.nonce IS NOT OLD.nonce OR NEW.operation IS NOT OLD.operation
    OR NEW.request_hash IS NOT OLD.request_hash OR NEW.expires_at IS NOT OLD.expires_at
BEGIN SELECT RAISE(ABORT, 'approval_requests: only an open request may be consumed'); END;
