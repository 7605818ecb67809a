-- The transcript, captured live: one row per message (or button press, slash command, join…)
-- of an incident channel, keyed by channel + ts. A deleted message keeps its row, marked
-- deleted, with its text erased; an edit keeps the text before it.
CREATE TABLE transcript (
    channel_id     TEXT    NOT NULL,
    ts             TEXT    NOT NULL,
    incident_seq   INTEGER NOT NULL REFERENCES incidents (seq),
    thread_ts      TEXT,
    user_id        TEXT,
    bot            INTEGER NOT NULL DEFAULT 0,
    kind           TEXT    NOT NULL,
    text           TEXT    NOT NULL DEFAULT '',
    previous_text  TEXT,
    edited_ts      TEXT,
    deleted        INTEGER NOT NULL DEFAULT 0,
    files          TEXT    NOT NULL DEFAULT '[]',
    origin         TEXT    NOT NULL,
    PRIMARY KEY (channel_id, ts)
);
CREATE INDEX transcript_incident ON transcript (incident_seq);

-- When Socket Mode was last known to be listening (one row), and the periods it was not.
CREATE TABLE listener_heartbeat (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    last_seen  INTEGER NOT NULL
);
CREATE TABLE listening_gaps (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at  INTEGER NOT NULL,
    ended_at    INTEGER NOT NULL
);

-- The rendered transcript of an incident (the latest resolution's), served by the API.
CREATE TABLE transcripts (
    incident_seq  INTEGER PRIMARY KEY REFERENCES incidents (seq),
    markdown      TEXT    NOT NULL,
    rendered_at   INTEGER NOT NULL
);
