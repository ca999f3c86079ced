-- shardkeep storage schema, version 13 (SQLite): signed reviews of ranges
-- of the audit log (procedure step 8, two-person review).
--
-- One row per reviewer and range: the range (first and last sequence, the
-- chain hash of the record at last), the reviewer, the review as signed
-- (`shkp-arv`, whose signature the service checked under the reviewer's
-- registered key) and its signature, kept apart so that a replayed
-- signature is refused by the unique index. Reviews are append-only.

CREATE TABLE audit_reviews (
    first_sequence INTEGER NOT NULL CHECK (first_sequence >= 1),
    last_sequence  INTEGER NOT NULL CHECK (last_sequence >= first_sequence),
    head_hash      BLOB    NOT NULL CHECK (length(head_hash) = 32),
    reviewer       TEXT    NOT NULL CHECK (length(reviewer) BETWEEN 1 AND 64),
    encoding       BLOB    NOT NULL CHECK (length(encoding) BETWEEN 1 AND 4096),
    signature      BLOB    NOT NULL UNIQUE CHECK (length(signature) = 64),
    reviewed_at    INTEGER NOT NULL CHECK (reviewed_at >= 0),
    recorded_at    INTEGER NOT NULL CHECK (recorded_at >= 0),
    PRIMARY KEY (first_sequence, last_sequence, head_hash, reviewer)
) STRICT;

CREATE TRIGGER audit_reviews_no_update BEFORE UPDATE ON audit_reviews
BEGIN SELECT RAISE(ABORT, 'audit_reviews is append-only'); END;
CREATE TRIGGER audit_reviews_no_delete BEFORE DELETE ON audit_reviews
BEGIN SELECT RAISE(ABORT, 'audit_reviews is append-only'); END;
