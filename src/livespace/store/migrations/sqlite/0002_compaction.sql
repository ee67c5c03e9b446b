-- Compacted replay (issue 8): each contact remembers the seq of its latest event, so a
-- client far behind gets each contact changed after N once, as its latest event, by an
-- index range on contacts (what changed) instead of a scan of the log (what happened).
-- Events that are never compacted (notes) have an index of their own.
-- Keep in step with ../postgres/0002_compaction.sql.

ALTER TABLE contacts ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
UPDATE contacts SET seq = latest.seq
    FROM (SELECT workspace_id, json_extract(data, '$.id') AS id, max(seq) AS seq FROM events
          WHERE type IN ('contact_created', 'contact_updated', 'contact_deleted')
          GROUP BY workspace_id, json_extract(data, '$.id')) AS latest
    WHERE contacts.workspace_id = latest.workspace_id AND contacts.id = latest.id;
CREATE INDEX contacts_seq ON contacts (workspace_id, seq);
CREATE INDEX events_uncompacted ON events (workspace_id, seq)
    WHERE type NOT IN ('contact_created', 'contact_updated', 'contact_deleted');
