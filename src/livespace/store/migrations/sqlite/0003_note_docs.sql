-- Collaborative notes (docs/collaboration.md): a note's body follows its shared document.
-- Keep in step with ../postgres/0003_note_docs.sql.

-- version: 1 when added, + 1 per note_updated; updated_at: NULL until the first one.
ALTER TABLE notes ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE notes ADD COLUMN updated_at TEXT;

-- Every document update, appended before it is relayed; merged into the snapshot and
-- deleted by compaction.
CREATE TABLE note_updates (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id  TEXT NOT NULL,
    note_id       TEXT NOT NULL,
    data          BLOB NOT NULL,
    created_at    TEXT NOT NULL
);
CREATE INDEX note_updates_note ON note_updates (workspace_id, note_id, id);

-- One merged state per document; version counts compactions (compare-and-set).
CREATE TABLE note_snapshots (
    workspace_id  TEXT NOT NULL,
    note_id       TEXT NOT NULL,
    version       INTEGER NOT NULL,
    data          BLOB NOT NULL,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (workspace_id, note_id)
);
