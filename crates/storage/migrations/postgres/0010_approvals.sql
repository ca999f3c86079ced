-- shardkeep storage schema, version 10 (PostgreSQL): approval requests
-- keyed by the hash of their canonical encoding, and the signed approvals
-- of them.
--
-- The approval tables of version 1 (keyed by a nonce, with the signed
-- fields spread over columns) were never written by the service; they are
-- replaced here. The migration refuses to run if they hold any row, so no
-- evidence is dropped: export and archive such rows first.
--
-- A request is consumed once (consumed_at and consumed_by set together, in
-- the transaction of its operation) and nothing else of it ever changes;
-- requests are never deleted. Approvals are append-only. The service role
-- gets its rights from shardkeep_grant_approvals().

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM approvals) OR EXISTS (SELECT 1 FROM approval_requests) THEN
        RAISE EXCEPTION 'migration 0010: the version 1 approval tables hold rows; archive them first';
    END IF;
END;
$$;

DROP TABLE approvals;
DROP TABLE approval_requests;
DROP FUNCTION shardkeep_consume_once();

CREATE TABLE approval_requests (
    hash        BYTEA    PRIMARY KEY CHECK (octet_length(hash) = 32),
    encoding    BYTEA    NOT NULL CHECK (octet_length(encoding) BETWEEN 1 AND 4096),
    operation   BIGINT   NOT NULL CHECK (operation BETWEEN 1 AND 5),
    key_id      TEXT     CHECK (octet_length(key_id) BETWEEN 1 AND 64),
    node_id     TEXT     CHECK (octet_length(node_id) BETWEEN 1 AND 64),
    version     BIGINT   CHECK (version BETWEEN 0 AND 4294967295),
    requester   TEXT     NOT NULL CHECK (octet_length(requester) BETWEEN 1 AND 64),
    created_at  BIGINT   NOT NULL CHECK (created_at >= 0),
    expires_at  BIGINT   NOT NULL CHECK (expires_at > created_at),
    consumed_at BIGINT   CHECK (consumed_at >= created_at),
    consumed_by TEXT     CHECK (octet_length(consumed_by) BETWEEN 1 AND 64),
    CHECK ((consumed_at IS NULL) = (consumed_by IS NULL)),
    CHECK ((key_id IS NULL AND node_id IS NULL AND version IS NULL)
        OR (key_id IS NOT NULL AND node_id IS NOT NULL AND version IS NOT NULL))
);

CREATE TABLE approvals (
    request_hash BYTEA  NOT NULL REFERENCES approval_requests (hash),
    approver     TEXT   NOT NULL CHECK (octet_length(approver) BETWEEN 1 AND 64),
    role         TEXT   NOT NULL CHECK (role IN ('operator', 'security', 'business-owner',
                                                 'compliance', 'custodian', 'auditor')),
    signature    BYTEA  NOT NULL CHECK (octet_length(signature) = 64),
    approved_at  BIGINT NOT NULL CHECK (approved_at >= 0),
    PRIMARY KEY (request_hash, approver)
);

CREATE TRIGGER approvals_refuse_change BEFORE UPDATE OR DELETE ON approvals
    FOR EACH ROW EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER approvals_refuse_truncate BEFORE TRUNCATE ON approvals
    FOR EACH STATEMENT EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER approval_requests_refuse_delete BEFORE DELETE ON approval_requests
    FOR EACH ROW EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER approval_requests_refuse_truncate BEFORE TRUNCATE ON approval_requests
    FOR EACH STATEMENT EXECUTE FUNCTION shardkeep_refuse_change();

-- Only an open request may be consumed, once; nothing else of it changes.
CREATE FUNCTION shardkeep_approval_consume_once() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.consumed_at IS NOT NULL OR NEW.consumed_at IS NULL OR NEW.consumed_by IS NULL
        OR (NEW.hash, NEW.encoding, NEW.operation, NEW.key_id, NEW.node_id, NEW.version,
            NEW.requester, NEW.created_at, NEW.expires_at)
           IS DISTINCT FROM
           (OLD.hash, OLD.encoding, OLD.operation, OLD.key_id, OLD.node_id, OLD.version,
            OLD.requester, OLD.created_at, OLD.expires_at)
    THEN
        RAISE EXCEPTION 'approval_requests: only an open request may be consumed, once'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER approval_requests_consume_once BEFORE UPDATE ON approval_requests
    FOR EACH ROW EXECUTE FUNCTION shardkeep_approval_consume_once();

-- The service role's rights on the approval tables (what the storage code
-- uses; shardkeep_grant_service() of version 7 also grants SELECT, INSERT on
-- both and UPDATE (consumed_at) by name).
CREATE FUNCTION shardkeep_grant_approvals(service_role TEXT) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('GRANT SELECT, INSERT ON approval_requests, approvals TO %I', service_role);
    EXECUTE format('GRANT UPDATE (consumed_at, consumed_by) ON approval_requests TO %I',
        service_role);
END;
$$;
REVOKE ALL ON FUNCTION shardkeep_grant_approvals(TEXT) FROM PUBLIC;
