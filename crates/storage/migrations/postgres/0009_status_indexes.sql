-- shardkeep storage schema, version 9 (PostgreSQL): indexes for the
-- status store.
--
-- A status page reads one page of key versions by primary key and, for
-- the key range of that page only, the share slots, custody entries,
-- deliveries, drills and split references of its versions; the summary
-- joins the selected versions with the same tables. Each index below is
-- ordered by the version's key and holds (as key or INCLUDE column) every
-- column the status queries read, so those reads are index-only range
-- scans, never of the rows (whose envelopes, commitments and reports can
-- be large) and never of a whole table per page.
--
-- `deliveries_status` starts with the columns of `deliveries_version`,
-- which it replaces. Indexes need no grants: the service role reads
-- through them with the SELECT it has on the tables.

CREATE INDEX share_slots_status ON share_slots (key_id, node_id, version, state);
CREATE INDEX custody_map_status ON custody_map (key_id, node_id, version) INCLUDE (confirmed_at);
CREATE INDEX deliveries_status ON deliveries (key_id, node_id, version, outcome);
DROP INDEX deliveries_version;
CREATE INDEX drill_reports_status ON drill_reports (key_id, node_id, version, started_at)
    INCLUDE (outcome, finished_at);
CREATE INDEX split_references_status ON split_references (key_id, node_id, version)
    INCLUDE (curve, policy_hash, server_shares);
-- The latest drills first (drill metrics), without sorting every report.
CREATE INDEX drill_reports_recent ON drill_reports (started_at DESC, key_id, node_id, version);
