-- Checkpoint guard, version 4 (SQLite).
--
-- The log gets an identity, fixed here when the log is created (or when an
-- older database is brought up to this version): 16 random bytes that every
-- checkpoint signs and every witness line names, so a witness of one log is
-- never taken for another's.
--
-- Checkpoints of format v2 go to `audit_checkpoints_v2`: several per
-- sequence (every checkpoint made is kept), each with the head hash it
-- signs, refused unless that hash is the log's hash at that sequence. The
-- v1 table keeps its rows and takes no more.

CREATE TABLE audit_log_identity (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    log_id    BLOB    NOT NULL CHECK (length(log_id) = 16)
) STRICT;

INSERT INTO audit_log_identity (singleton, log_id) VALUES (1, randomblob(16));

CREATE TRIGGER audit_log_identity_no_update BEFORE UPDATE ON audit_log_identity
BEGIN SELECT RAISE(ABORT, 'audit_log_identity is fixed when the log is created'); END;
CREATE TRIGGER audit_log_identity_no_delete BEFORE DELETE ON audit_log_identity
BEGIN SELECT RAISE(ABORT, 'audit_log_identity is fixed when the log is created'); END;

CREATE TABLE audit_checkpoints_v2 (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    sequence   INTEGER NOT NULL CHECK (sequence >= 0),
    head_hash  BLOB    NOT NULL CHECK (length(head_hash) = 32),
    checkpoint BLOB    NOT NULL CHECK (length(checkpoint) BETWEEN 1 AND 4096)
) STRICT;
CREATE INDEX audit_checkpoints_v2_sequence ON audit_checkpoints_v2 (sequence);

CREATE TRIGGER audit_checkpoints_v2_on_chain BEFORE INSERT ON audit_checkpoints_v2
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints_v2: sequence is beyond the audit head')
    WHERE NEW.sequence > (SELECT COALESCE(MAX(sequence), 0) FROM audit_log);
    SELECT RAISE(ABORT, 'audit_checkpoints_v2: head_hash is not the audit hash at its sequence')
    WHERE NEW.head_hash IS NOT (
        CASE WHEN NEW.sequence = 0 THEN zeroblob(32)
        ELSE (SELECT hash FROM audit_log WHERE sequence = NEW.sequence) END);
END;
CREATE TRIGGER audit_checkpoints_v2_no_update BEFORE UPDATE ON audit_checkpoints_v2
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints_v2 is append-only'); END;
CREATE TRIGGER audit_checkpoints_v2_no_delete BEFORE DELETE ON audit_checkpoints_v2
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints_v2 is append-only'); END;

CREATE TRIGGER audit_checkpoints_no_insert BEFORE INSERT ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints holds v1 checkpoints only; new ones go to audit_checkpoints_v2'); END;
