-- The epoch of each workspace's log (issue 8): a random token that names one
-- incarnation of the log. A workspace created on a new database gets a fresh one;
-- `livespace epoch renew` mints new ones after a restore. Keep in step with
-- ../postgres/0002_epoch.sql.

ALTER TABLE workspaces ADD COLUMN epoch TEXT NOT NULL DEFAULT '';
UPDATE workspaces SET epoch = lower(hex(randomblob(8)));
