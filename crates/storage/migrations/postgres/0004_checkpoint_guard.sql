-- Checkpoint guard, version 4 (PostgreSQL).
--
-- The log gets an identity, fixed here when the log is created (or when an
-- older database is brought up to this version): 16 random bytes that every
-- checkpoint signs and every witness line names, so a witness of one log is
-- never taken for another's.
--
-- Checkpoints of format v2 go to `audit_checkpoints_v2`: several per
-- sequence (every checkpoint made is kept), each with the head hash it
-- signs, refused unless that hash is the log's hash at that sequence. The
-- v1 table keeps its rows and takes no more. The service role gets its
-- rights on both new tables from shardkeep_grant_audit_checkpoints(),
-- which PostgresStorage::grant_service_role calls.

CREATE TABLE audit_log_identity (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    log_id    BYTEA   NOT NULL CHECK (octet_length(log_id) = 16)
);

-- gen_random_uuid() draws from the server's strong random source; its 16
-- bytes (122 of them random) are the identity.
INSERT INTO audit_log_identity (log_id)
    VALUES (decode(replace(gen_random_uuid()::text, '-', ''), 'hex'));

CREATE TRIGGER audit_log_identity_refuse_change BEFORE UPDATE OR DELETE ON audit_log_identity
    FOR EACH ROW EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER audit_log_identity_refuse_truncate BEFORE TRUNCATE ON audit_log_identity
    FOR EACH STATEMENT EXECUTE FUNCTION shardkeep_refuse_change();

CREATE TABLE audit_checkpoints_v2 (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sequence   BIGINT NOT NULL CHECK (sequence >= 0),
    head_hash  BYTEA  NOT NULL CHECK (octet_length(head_hash) = 32),
    checkpoint BYTEA  NOT NULL CHECK (octet_length(checkpoint) BETWEEN 1 AND 4096)
);
CREATE INDEX audit_checkpoints_v2_sequence ON audit_checkpoints_v2 (sequence);

CREATE FUNCTION shardkeep_checkpoint_on_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    head_sequence BIGINT;
    chain_hash    BYTEA;
BEGIN
    SELECT COALESCE(max(sequence), 0) INTO head_sequence FROM audit_log;
    IF NEW.sequence > head_sequence THEN
        RAISE EXCEPTION 'audit_checkpoints_v2: sequence % is beyond the audit head %',
            NEW.sequence, head_sequence
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.sequence = 0 THEN
        chain_hash := decode(repeat('00', 32), 'hex');
    ELSE
        SELECT hash INTO chain_hash FROM audit_log WHERE sequence = NEW.sequence;
    END IF;
    IF NEW.head_hash IS DISTINCT FROM chain_hash THEN
        RAISE EXCEPTION 'audit_checkpoints_v2: head_hash is not the audit hash at sequence %',
            NEW.sequence
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER audit_checkpoints_v2_on_chain BEFORE INSERT ON audit_checkpoints_v2
    FOR EACH ROW EXECUTE FUNCTION shardkeep_checkpoint_on_chain();
CREATE TRIGGER audit_checkpoints_v2_refuse_change BEFORE UPDATE OR DELETE ON audit_checkpoints_v2
    FOR EACH ROW EXECUTE FUNCTION shardkeep_refuse_change();
CREATE TRIGGER audit_checkpoints_v2_refuse_truncate BEFORE TRUNCATE ON audit_checkpoints_v2
    FOR EACH STATEMENT EXECUTE FUNCTION shardkeep_refuse_change();

-- The v1 table keeps what it holds and takes nothing new.
CREATE FUNCTION shardkeep_refuse_v1_checkpoint() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_checkpoints holds v1 checkpoints only; new ones go to audit_checkpoints_v2'
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_checkpoints_no_insert BEFORE INSERT ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION shardkeep_refuse_v1_checkpoint();

-- The service role reads the identity and adds checkpoints (never their id).
CREATE FUNCTION shardkeep_grant_audit_checkpoints(service_role TEXT) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('GRANT SELECT ON audit_log_identity TO %I', service_role);
    EXECUTE format('GRANT SELECT ON audit_checkpoints_v2 TO %I', service_role);
    EXECUTE format('GRANT INSERT (sequence, head_hash, checkpoint) '
        'ON audit_checkpoints_v2 TO %I', service_role);
END;
$$;
REVOKE ALL ON FUNCTION shardkeep_grant_audit_checkpoints(TEXT) FROM PUBLIC;
