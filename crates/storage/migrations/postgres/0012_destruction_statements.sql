-- shardkeep storage schema, version 12 (PostgreSQL): destruction statements.
--
-- After a re-split the old external shares still recover the same Xi: each
-- custodian signs a statement that it destroyed the old container of one
-- external slot. A row keeps the signed statement as received (the service
-- verified it against the custodian's registered receipt key before
-- storing it) with the fields it names. One statement per slot; rows are
-- never changed or deleted. The service role gets its rights from
-- shardkeep_grant_destruction_statements().

CREATE TABLE destruction_statements (
    key_id        TEXT   NOT NULL,
    node_id       TEXT   NOT NULL,
    version       BIGINT NOT NULL,
    share_index   BIGINT NOT NULL CHECK (share_index BETWEEN 1 AND 255),
    envelope_id   BYTEA  NOT NULL CHECK (octet_length(envelope_id) = 32),
    custodian_id  TEXT   NOT NULL CHECK (octet_length(custodian_id) BETWEEN 1 AND 64),
    person_id     TEXT   NOT NULL REFERENCES persons (id),
    destroyed_at  BIGINT NOT NULL CHECK (destroyed_at >= 0),
    recorded_at   BIGINT NOT NULL CHECK (recorded_at >= 0),
    statement     BYTEA  NOT NULL CHECK (octet_length(statement) BETWEEN 1 AND 1024),
    PRIMARY KEY (key_id, node_id, version, share_index),
    FOREIGN KEY (key_id, node_id, version, share_index)
        REFERENCES custody_map (key_id, node_id, version, share_index)
);

CREATE TRIGGER destruction_statements_refuse_change BEFORE UPDATE OR DELETE ON destruction_statements
    FOR EACH ROW EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER destruction_statements_refuse_truncate BEFORE TRUNCATE ON destruction_statements
    FOR EACH STATEMENT EXECUTE FUNCTION shardkeep_refuse_change();

-- The service role's rights on the table (what the storage code uses).
CREATE FUNCTION shardkeep_grant_destruction_statements(service_role TEXT) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('GRANT SELECT, INSERT ON destruction_statements TO %I', service_role);
END;
$$;
REVOKE ALL ON FUNCTION shardkeep_grant_destruction_statements(TEXT) FROM PUBLIC;
