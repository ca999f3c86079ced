-- shardkeep storage schema, version 13 (PostgreSQL): signed reviews of
-- ranges of the audit log (procedure step 8, two-person review).
--
-- One row per reviewer and range: the range (first and last sequence, the
-- chain hash of the record at last), the reviewer, the review as signed
-- (`shkp-arv`, whose signature the service checked under the reviewer's
-- registered key) and its signature, kept apart so that a replayed
-- signature is refused by the unique index. Reviews are append-only. The
-- service role gets its rights from shardkeep_grant_audit_reviews().

CREATE TABLE audit_reviews (
    first_sequence BIGINT NOT NULL CHECK (first_sequence >= 1),
    last_sequence  BIGINT NOT NULL CHECK (last_sequence >= first_sequence),
    head_hash      BYTEA  NOT NULL CHECK (octet_length(head_hash) = 32),
    reviewer       TEXT   NOT NULL CHECK (octet_length(reviewer) BETWEEN 1 AND 64),
    encoding       BYTEA  NOT NULL CHECK (octet_length(encoding) BETWEEN 1 AND 4096),
    signature      BYTEA  NOT NULL UNIQUE CHECK (octet_length(signature) = 64),
    reviewed_at    BIGINT NOT NULL CHECK (reviewed_at >= 0),
    recorded_at    BIGINT NOT NULL CHECK (recorded_at >= 0),
    PRIMARY KEY (first_sequence, last_sequence, head_hash, reviewer)
);

CREATE TRIGGER audit_reviews_refuse_change BEFORE UPDATE OR DELETE ON audit_reviews
    FOR EACH ROW EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER audit_reviews_refuse_truncate BEFORE TRUNCATE ON audit_reviews
    FOR EACH STATEMENT EXECUTE FUNCTION shardkeep_refuse_change();

-- The service role's rights on the review table: it adds and reads
-- reviews, nothing else.
CREATE FUNCTION shardkeep_grant_audit_reviews(service_role TEXT) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('GRANT SELECT, INSERT ON audit_reviews TO %I', service_role);
END;
$$;
REVOKE ALL ON FUNCTION shardkeep_grant_audit_reviews(TEXT) FROM PUBLIC;
