-- The epoch of each workspace's log (issue 8): a random token that names one
-- incarnation of the log. A workspace created on a new database gets a fresh one;
-- `livespace epoch renew` mints new ones after a restore. On PostgreSQL the store adds
-- the cluster's system identifier, the database's OID and the WAL timeline to what
-- clients see (see docs/replay.md). Keep in step with ../sqlite/0002_epoch.sql.

ALTER TABLE workspaces ADD COLUMN epoch TEXT NOT NULL DEFAULT '';
UPDATE workspaces SET epoch = substr(md5(random()::text || clock_timestamp()::text || id), 1, 16);
