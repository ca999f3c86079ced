-- shardkeep storage schema, version 11 (PostgreSQL): recovery sessions.
--
-- A row holds a session's non-secret metadata only: its id, the key
-- version and split it recovers, the approval request it consumed, the
-- replica whose memory holds its secret (the one-time age identity and the
-- shares received), its times and how it ended. At most one session per
-- key version is open (closed_at NULL) at a time. Rows are never deleted;
-- an open session's idle deadline moves with its activity, and it is
-- closed once; nothing else of a row changes. The service role gets its
-- rights from shardkeep_grant_recovery_sessions().

CREATE TABLE recovery_sessions (
    id              BYTEA  PRIMARY KEY CHECK (octet_length(id) = 16),
    key_id          TEXT   NOT NULL,
    node_id         TEXT   NOT NULL,
    version         BIGINT NOT NULL,
    split_id        BYTEA  NOT NULL CHECK (octet_length(split_id) = 32),
    operation       BIGINT NOT NULL CHECK (operation IN (1, 2)),
    request_hash    BYTEA  NOT NULL REFERENCES approval_requests (hash),
    replica         TEXT   NOT NULL CHECK (octet_length(replica) BETWEEN 1 AND 64),
    started_by      TEXT   NOT NULL CHECK (octet_length(started_by) BETWEEN 1 AND 64),
    started_at      BIGINT NOT NULL CHECK (started_at >= 0),
    expires_at      BIGINT NOT NULL CHECK (expires_at > started_at),
    idle_expires_at BIGINT NOT NULL CHECK (idle_expires_at > started_at
                                           AND idle_expires_at <= expires_at),
    closed_at       BIGINT CHECK (closed_at >= started_at),
    outcome         TEXT   CHECK (outcome IN ('completed', 'failed', 'expired', 'abandoned')),
    CHECK ((closed_at IS NULL) = (outcome IS NULL)),
    FOREIGN KEY (key_id, node_id, version) REFERENCES key_versions (key_id, node_id, version)
);

CREATE UNIQUE INDEX recovery_sessions_one_open ON recovery_sessions (key_id, node_id, version)
    WHERE closed_at IS NULL;

CREATE TRIGGER recovery_sessions_refuse_delete BEFORE DELETE ON recovery_sessions
    FOR EACH ROW EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER recovery_sessions_refuse_truncate BEFORE TRUNCATE ON recovery_sessions
    FOR EACH STATEMENT EXECUTE FUNCTION shardkeep_refuse_change();

-- An open session may move its idle deadline or be closed, once; nothing
-- else of it changes.
CREATE FUNCTION shardkeep_recovery_session_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.closed_at IS NOT NULL
        OR (NEW.id, NEW.key_id, NEW.node_id, NEW.version, NEW.split_id, NEW.operation,
            NEW.request_hash, NEW.replica, NEW.started_by, NEW.started_at, NEW.expires_at)
           IS DISTINCT FROM
           (OLD.id, OLD.key_id, OLD.node_id, OLD.version, OLD.split_id, OLD.operation,
            OLD.request_hash, OLD.replica, OLD.started_by, OLD.started_at, OLD.expires_at)
    THEN
        RAISE EXCEPTION 'recovery_sessions: only an open session changes, by activity or closing'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER recovery_sessions_update_guard BEFORE UPDATE ON recovery_sessions
    FOR EACH ROW EXECUTE FUNCTION shardkeep_recovery_session_guard();

-- The service role's rights on the session table (what the storage code
-- uses).
CREATE FUNCTION shardkeep_grant_recovery_sessions(service_role TEXT) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('GRANT SELECT, INSERT ON recovery_sessions TO %I', service_role);
    EXECUTE format('GRANT UPDATE (idle_expires_at, closed_at, outcome) ON recovery_sessions TO %I',
        service_role);
END;
$$;
REVOKE ALL ON FUNCTION shardkeep_grant_recovery_sessions(TEXT) FROM PUBLIC;
