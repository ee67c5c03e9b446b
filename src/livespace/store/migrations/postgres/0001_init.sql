-- livespace schema, PostgreSQL. Timestamps are ISO-8601 UTC text (protocol.now_iso()),
-- JSON columns are text written by orjson. Keep in step with ../sqlite/0001_init.sql.

CREATE TABLE workspaces (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    head_seq    BIGINT NOT NULL DEFAULT 0,
    deleted_at  TEXT
);

CREATE TABLE members (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    user_id       TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    added_at      TEXT NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX members_user ON members (user_id);

CREATE TABLE contacts (
    workspace_id    TEXT NOT NULL REFERENCES workspaces (id),
    id              TEXT COLLATE "C" NOT NULL,  -- byte order, as SQLite: keyset pages match
    name            TEXT NOT NULL,
    email           TEXT,
    phone           TEXT,
    company         TEXT,
    tags            TEXT NOT NULL DEFAULT '[]',
    fields          TEXT NOT NULL DEFAULT '{}',
    version         INTEGER NOT NULL,
    field_versions  TEXT NOT NULL DEFAULT '{}',
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    deleted_at      TEXT,
    PRIMARY KEY (workspace_id, id)
);

CREATE TABLE notes (
    workspace_id  TEXT NOT NULL,
    id            TEXT NOT NULL,
    contact_id    TEXT NOT NULL,
    body          TEXT NOT NULL,
    author_id     TEXT NOT NULL,
    author_name   TEXT,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (workspace_id, id),
    FOREIGN KEY (workspace_id, contact_id) REFERENCES contacts (workspace_id, id)
);
CREATE INDEX notes_contact ON notes (workspace_id, contact_id, created_at);

CREATE TABLE events (
    workspace_id  TEXT NOT NULL,
    seq           BIGINT NOT NULL,
    event_id      TEXT NOT NULL,
    type          TEXT NOT NULL,
    actor_id      TEXT NOT NULL,
    actor_name    TEXT,
    data          TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (workspace_id, seq)
);
CREATE INDEX events_created ON events (created_at);

CREATE TABLE mutation_refs (
    workspace_id  TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    ref           TEXT NOT NULL,
    seq           BIGINT NOT NULL,
    entity        TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (workspace_id, user_id, ref)
);
CREATE INDEX mutation_refs_created ON mutation_refs (created_at);

CREATE TABLE delivery_cursors (
    workspace_id  TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    seq           BIGINT NOT NULL,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);

CREATE TABLE sessions (
    id                TEXT PRIMARY KEY,
    workspace_id      TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    node              TEXT NOT NULL,
    connected_at      TEXT NOT NULL,
    disconnected_at   TEXT,
    messages_in       BIGINT NOT NULL DEFAULT 0,
    messages_out      BIGINT NOT NULL DEFAULT 0,
    events_delivered  BIGINT NOT NULL DEFAULT 0,
    events_acked      BIGINT NOT NULL DEFAULT 0,
    close_code        INTEGER,
    extra             TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX sessions_connected ON sessions (workspace_id, connected_at);
CREATE INDEX sessions_disconnected ON sessions (workspace_id, disconnected_at);

CREATE VIEW active_sessions AS
    SELECT * FROM sessions WHERE disconnected_at IS NULL;

-- Closed sessions with their length in seconds (the one engine-specific expression).
CREATE VIEW session_durations AS
    SELECT id, workspace_id, user_id,
           extract(epoch FROM disconnected_at::timestamptz - connected_at::timestamptz)
               ::double precision AS duration_s
    FROM sessions WHERE disconnected_at IS NOT NULL;

CREATE VIEW message_stats AS
    SELECT workspace_id, type, substr(created_at, 1, 10) AS day, count(*) AS count
    FROM events GROUP BY workspace_id, type, substr(created_at, 1, 10);
