-- The shardkeep checkpoint witness (PostgreSQL), version 1.
--
-- Runs in a database of its own (it may share the server with the audited
-- database), as a witness owner role that the service never gets. The
-- service writes through a role granted by shardkeep_witness_grant_writer()
-- (INSERT of three columns and SELECT, nothing else); verifiers read
-- through a role granted by shardkeep_witness_grant_reader() (SELECT only).
-- Triggers refuse UPDATE, DELETE and TRUNCATE to everyone, the owner too:
-- a line once witnessed stays.

CREATE TABLE shardkeep_witness (
    id           BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    log_id       BYTEA       NOT NULL CHECK (octet_length(log_id) = 16),
    sequence     BIGINT      NOT NULL CHECK (sequence >= 0),
    line         TEXT        NOT NULL CHECK (octet_length(line) BETWEEN 1 AND 512),
    -- The witness's own clock, not the service's: when the line arrived.
    witnessed_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    -- The columns a reader selects by are the line's own fields.
    CHECK (starts_with(line, 'shardkeep-checkpoint-v2 ' || encode(log_id, 'hex') || ' '
        || sequence::text || ' '))
);
CREATE INDEX shardkeep_witness_log ON shardkeep_witness (log_id, id);

CREATE FUNCTION shardkeep_witness_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on % is refused: the witness is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER shardkeep_witness_refuse_change BEFORE UPDATE OR DELETE ON shardkeep_witness
    FOR EACH ROW EXECUTE FUNCTION shardkeep_witness_refuse_change();
CREATE TRIGGER shardkeep_witness_refuse_truncate BEFORE TRUNCATE ON shardkeep_witness
    FOR EACH STATEMENT EXECUTE FUNCTION shardkeep_witness_refuse_change();

REVOKE ALL ON shardkeep_witness FROM PUBLIC;

-- The writer: adds lines (the id and the arrival time are the witness's)
-- and reads them back; never changes or removes one.
CREATE FUNCTION shardkeep_witness_grant_writer(writer_role TEXT) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('GRANT SELECT ON shardkeep_witness TO %I', writer_role);
    EXECUTE format('GRANT INSERT (log_id, sequence, line) ON shardkeep_witness TO %I', writer_role);
END;
$$;
REVOKE ALL ON FUNCTION shardkeep_witness_grant_writer(TEXT) FROM PUBLIC;

-- A reader (the verifier): SELECT only.
CREATE FUNCTION shardkeep_witness_grant_reader(reader_role TEXT) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('GRANT SELECT ON shardkeep_witness TO %I', reader_role);
END;
$$;
REVOKE ALL ON FUNCTION shardkeep_witness_grant_reader(TEXT) FROM PUBLIC;
