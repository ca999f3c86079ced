-- shardkeep storage schema, version 1 (PostgreSQL).
--
-- Run by the owner role. The service role gets only what it needs through
-- shardkeep_grant_service() below: SELECT and INSERT on evidence tables,
-- column-level UPDATE where state changes, no DELETE or TRUNCATE anywhere.
-- Times are milliseconds since the Unix epoch.

CREATE TABLE key_versions (
    key_id         TEXT   NOT NULL CHECK (octet_length(key_id) BETWEEN 1 AND 64),
    node_id        TEXT   NOT NULL CHECK (octet_length(node_id) BETWEEN 1 AND 64),
    version        BIGINT NOT NULL CHECK (version BETWEEN 0 AND 4294967295),
    threshold      BIGINT NOT NULL,
    total          BIGINT NOT NULL,
    created_at     BIGINT NOT NULL CHECK (created_at >= 0),
    state          TEXT   NOT NULL CHECK (state IN ('active', 'retiring', 'retired')),
    retiring_since BIGINT,
    cooldown_until BIGINT,
    retired_at     BIGINT,
    PRIMARY KEY (key_id, node_id, version),
    CHECK (threshold >= 2 AND total >= threshold AND total <= 255),
    CHECK (
        (state = 'active' AND retiring_since IS NULL AND cooldown_until IS NULL AND retired_at IS NULL)
        OR (state = 'retiring' AND retiring_since IS NOT NULL AND cooldown_until >= retiring_since AND retired_at IS NULL)
        OR (state = 'retired' AND retiring_since IS NOT NULL AND cooldown_until IS NOT NULL AND retired_at >= cooldown_until)
    )
);

-- At most one active version per node.
CREATE UNIQUE INDEX key_versions_one_active ON key_versions (key_id, node_id) WHERE state = 'active';

CREATE TABLE share_slots (
    key_id          TEXT   NOT NULL,
    node_id         TEXT   NOT NULL,
    version         BIGINT NOT NULL,
    share_index     BIGINT NOT NULL CHECK (share_index BETWEEN 1 AND 255),
    kek_id          TEXT   NOT NULL CHECK (octet_length(kek_id) BETWEEN 1 AND 64),
    wrapped_key     BYTEA  CHECK (octet_length(wrapped_key) BETWEEN 1 AND 512),
    envelope        BYTEA  CHECK (octet_length(envelope) BETWEEN 1 AND 65536),
    envelope_id     BYTEA  NOT NULL CHECK (octet_length(envelope_id) = 32),
    stored_at       BIGINT NOT NULL CHECK (stored_at >= 0),
    state           TEXT   NOT NULL CHECK (state IN ('active', 'soft_deleted', 'hard_deleted')),
    deleted_at      BIGINT,
    deleted_by      TEXT,
    cooldown_until  BIGINT,
    hard_deleted_at BIGINT,
    evidence        BYTEA  CHECK (octet_length(evidence) BETWEEN 1 AND 65536),
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
);

CREATE TABLE share_access_log (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_id      TEXT   NOT NULL,
    node_id     TEXT   NOT NULL,
    version     BIGINT NOT NULL,
    share_index BIGINT NOT NULL,
    accessor    TEXT   NOT NULL CHECK (octet_length(accessor) BETWEEN 1 AND 64),
    purpose     TEXT   NOT NULL CHECK (octet_length(purpose) BETWEEN 1 AND 64),
    accessed_at BIGINT NOT NULL CHECK (accessed_at >= 0),
    FOREIGN KEY (key_id, node_id, version, share_index)
        REFERENCES share_slots (key_id, node_id, version, share_index)
);
CREATE INDEX share_access_log_slot ON share_access_log (key_id, node_id, version, share_index);
CREATE INDEX share_access_log_time ON share_access_log (accessed_at);

CREATE TABLE custody_map (
    key_id       TEXT   NOT NULL,
    node_id      TEXT   NOT NULL,
    version      BIGINT NOT NULL,
    share_index  BIGINT NOT NULL CHECK (share_index BETWEEN 1 AND 255),
    custodian_id TEXT   NOT NULL CHECK (octet_length(custodian_id) BETWEEN 1 AND 64),
    contact      TEXT   NOT NULL CHECK (octet_length(contact) BETWEEN 1 AND 512),
    public_key   BYTEA  NOT NULL CHECK (octet_length(public_key) BETWEEN 1 AND 4096),
    updated_at   BIGINT NOT NULL CHECK (updated_at >= 0),
    confirmed_at BIGINT CHECK (confirmed_at >= 0),
    PRIMARY KEY (key_id, node_id, version, share_index),
    FOREIGN KEY (key_id, node_id, version) REFERENCES key_versions (key_id, node_id, version)
);

CREATE TABLE deliveries (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_id         TEXT   NOT NULL,
    node_id        TEXT   NOT NULL,
    version        BIGINT NOT NULL,
    share_index    BIGINT NOT NULL,
    custodian_id   TEXT   NOT NULL,
    envelope_id    BYTEA  NOT NULL CHECK (octet_length(envelope_id) = 32),
    outcome        TEXT   NOT NULL CHECK (outcome IN ('delivered', 'failed')),
    failure_reason TEXT   CHECK (octet_length(failure_reason) BETWEEN 1 AND 1024),
    receipt        BYTEA  CHECK (octet_length(receipt) BETWEEN 1 AND 16384),
    recorded_at    BIGINT NOT NULL CHECK (recorded_at >= 0),
    FOREIGN KEY (key_id, node_id, version, share_index)
        REFERENCES custody_map (key_id, node_id, version, share_index),
    CHECK ((outcome = 'delivered' AND receipt IS NOT NULL AND failure_reason IS NULL)
        OR (outcome = 'failed' AND receipt IS NULL AND failure_reason IS NOT NULL))
);
-- At most one confirmed receipt per slot; failures may repeat.
CREATE UNIQUE INDEX deliveries_one_receipt ON deliveries (key_id, node_id, version, share_index)
    WHERE outcome = 'delivered';
CREATE INDEX deliveries_version ON deliveries (key_id, node_id, version);

CREATE TABLE approval_requests (
    nonce        BYTEA  PRIMARY KEY CHECK (octet_length(nonce) = 32),
    key_id       TEXT   NOT NULL CHECK (octet_length(key_id) BETWEEN 1 AND 64),
    node_id      TEXT   NOT NULL CHECK (octet_length(node_id) BETWEEN 1 AND 64),
    version      BIGINT NOT NULL CHECK (version BETWEEN 0 AND 4294967295),
    operation    TEXT   NOT NULL CHECK (octet_length(operation) BETWEEN 1 AND 64),
    request_hash BYTEA  NOT NULL CHECK (octet_length(request_hash) = 32),
    requester    TEXT   NOT NULL CHECK (octet_length(requester) BETWEEN 1 AND 64),
    ticket       TEXT   NOT NULL CHECK (octet_length(ticket) BETWEEN 1 AND 64),
    issued_at    BIGINT NOT NULL CHECK (issued_at >= 0),
    expires_at   BIGINT NOT NULL CHECK (expires_at > issued_at),
    consumed_at  BIGINT CHECK (consumed_at >= issued_at)
);

CREATE TABLE approvals (
    nonce        BYTEA  NOT NULL REFERENCES approval_requests (nonce),
    key_id       TEXT   NOT NULL,
    node_id      TEXT   NOT NULL,
    version      BIGINT NOT NULL,
    operation    TEXT   NOT NULL,
    request_hash BYTEA  NOT NULL CHECK (octet_length(request_hash) = 32),
    requester    TEXT   NOT NULL,
    ticket       TEXT   NOT NULL,
    role         TEXT   NOT NULL CHECK (octet_length(role) BETWEEN 1 AND 64),
    expires_at   BIGINT NOT NULL CHECK (expires_at >= 0),
    approver     TEXT   NOT NULL CHECK (octet_length(approver) BETWEEN 1 AND 64),
    signature    BYTEA  NOT NULL CHECK (octet_length(signature) = 64),
    recorded_at  BIGINT NOT NULL CHECK (recorded_at >= 0),
    PRIMARY KEY (nonce, approver),
    -- Approvers are never the requester.
    CHECK (approver <> requester)
);

CREATE TABLE drill_reports (
    key_id         TEXT   NOT NULL,
    node_id        TEXT   NOT NULL,
    version        BIGINT NOT NULL,
    started_at     BIGINT NOT NULL CHECK (started_at >= 0),
    finished_at    BIGINT NOT NULL CHECK (finished_at >= started_at),
    operator       TEXT   NOT NULL CHECK (octet_length(operator) BETWEEN 1 AND 64),
    shares_used    BYTEA  NOT NULL CHECK (octet_length(shares_used) <= 255),
    outcome        TEXT   NOT NULL CHECK (outcome IN ('passed', 'failed')),
    failure_reason TEXT   CHECK (octet_length(failure_reason) BETWEEN 1 AND 1024),
    report         BYTEA  NOT NULL CHECK (octet_length(report) <= 65536),
    PRIMARY KEY (key_id, node_id, version, started_at),
    FOREIGN KEY (key_id, node_id, version) REFERENCES key_versions (key_id, node_id, version),
    CHECK ((outcome = 'passed') = (failure_reason IS NULL))
);

-- The audit chain. Appends serialise on a transaction advisory lock (the
-- service role has no UPDATE right for a row lock, and a SEQUENCE would leave
-- gaps on rollback that look like deletions); the trigger refuses any row
-- that does not extend the head.
CREATE TABLE audit_log (
    sequence  BIGINT PRIMARY KEY CHECK (sequence >= 1),
    prev_hash BYTEA  NOT NULL CHECK (octet_length(prev_hash) = 32),
    hash      BYTEA  NOT NULL CHECK (octet_length(hash) = 32),
    record    BYTEA  NOT NULL CHECK (octet_length(record) BETWEEN 1 AND 65536)
);

CREATE TABLE audit_checkpoints (
    sequence   BIGINT PRIMARY KEY CHECK (sequence >= 0),
    checkpoint BYTEA  NOT NULL CHECK (octet_length(checkpoint) BETWEEN 1 AND 4096)
);

CREATE FUNCTION shardkeep_audit_extends_head() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    head_sequence BIGINT;
    head_hash     BYTEA;
BEGIN
    SELECT sequence, hash INTO head_sequence, head_hash
        FROM audit_log ORDER BY sequence DESC LIMIT 1;
    IF NOT FOUND THEN
        head_sequence := 0;
        head_hash := decode(repeat('00', 32), 'hex');
    END IF;
    IF NEW.sequence <> head_sequence + 1 OR NEW.prev_hash <> head_hash THEN
        RAISE EXCEPTION 'audit_log: row % does not extend head %', NEW.sequence, head_sequence
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER audit_log_extends_head BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION shardkeep_audit_extends_head();

-- Refuses a change to an append-only table, whoever asks (the owner too).
CREATE FUNCTION shardkeep_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on % is refused: the table is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_log_refuse_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER audit_log_refuse_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER audit_checkpoints_refuse_change BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER audit_checkpoints_refuse_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER share_access_log_refuse_change BEFORE UPDATE OR DELETE ON share_access_log
    FOR EACH ROW EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER share_access_log_refuse_truncate BEFORE TRUNCATE ON share_access_log
    FOR EACH STATEMENT EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER deliveries_refuse_change BEFORE UPDATE OR DELETE ON deliveries
    FOR EACH ROW EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER approvals_refuse_change BEFORE UPDATE OR DELETE ON approvals
    FOR EACH ROW EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER drill_reports_refuse_change BEFORE UPDATE OR DELETE ON drill_reports
    FOR EACH ROW EXECUTE FUNCTION shardkeep_refuse_change();

-- A consumed approval request stays consumed.
CREATE FUNCTION shardkeep_consume_once() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.consumed_at IS NOT NULL THEN
        RAISE EXCEPTION 'approval request already consumed'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER approval_requests_consume_once BEFORE UPDATE ON approval_requests
    FOR EACH ROW EXECUTE FUNCTION shardkeep_consume_once();

-- Grants the service role exactly what the storage code uses. Called by the
-- owner after migrating (PostgresStorage::grant_service_role); later
-- migrations replace it when the schema changes.
CREATE FUNCTION shardkeep_grant_service(service_role TEXT) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('GRANT SELECT ON _sqlx_migrations TO %I', service_role);
    EXECUTE format('GRANT SELECT, INSERT ON audit_log, audit_checkpoints, share_access_log, '
        'deliveries, approvals, drill_reports TO %I', service_role);
    EXECUTE format('GRANT SELECT, INSERT ON key_versions, share_slots, custody_map, '
        'approval_requests TO %I', service_role);
    EXECUTE format('GRANT UPDATE (state, retiring_since, cooldown_until, retired_at) '
        'ON key_versions TO %I', service_role);
    EXECUTE format('GRANT UPDATE (kek_id, wrapped_key, envelope, state, deleted_at, deleted_by, '
        'cooldown_until, hard_deleted_at, evidence) ON share_slots TO %I', service_role);
    EXECUTE format('GRANT UPDATE (custodian_id, contact, public_key, updated_at, confirmed_at) '
        'ON custody_map TO %I', service_role);
    EXECUTE format('GRANT UPDATE (consumed_at) ON approval_requests TO %I', service_role);
END;
$$;
REVOKE ALL ON FUNCTION shardkeep_grant_service(TEXT) FROM PUBLIC;
