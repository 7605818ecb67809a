-- warroom's foundation schema. Times are INTEGER milliseconds since the Unix epoch (UTC);
-- JSON columns hold TEXT. The same file name exists under migrations/postgres.

-- One row per incident; its public id is INC-<seq>.
CREATE TABLE incidents (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    title            TEXT    NOT NULL,
    severity         TEXT    NOT NULL,
    service          TEXT,
    status           TEXT    NOT NULL,
    source           TEXT    NOT NULL,
    problem_key      TEXT    NOT NULL,
    description      TEXT,
    url              TEXT,
    labels           TEXT    NOT NULL DEFAULT '{}',
    entities         TEXT    NOT NULL DEFAULT '[]',
    opened_at        INTEGER NOT NULL,
    acknowledged_at  INTEGER,
    acknowledged_by  TEXT,
    resolved_at      INTEGER,
    resolved_by      TEXT,
    summary          TEXT,
    commander        TEXT,
    assignee         TEXT,
    channel_id       TEXT,
    channel_name     TEXT,
    ticket_key       TEXT,
    reopen_count     INTEGER NOT NULL DEFAULT 0,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX incidents_status ON incidents (status, seq);

-- Every delivery from a source, raw and normalised, with what it meant.
CREATE TABLE problems (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    source        TEXT    NOT NULL,
    problem_key   TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    received_at   INTEGER NOT NULL,
    normalized    TEXT    NOT NULL,
    body          BLOB    NOT NULL,
    incident_seq  INTEGER REFERENCES incidents (seq),
    outcome       TEXT    NOT NULL
);
CREATE INDEX problems_key ON problems (source, problem_key, id);

-- Which incident a problem key belongs to now. Several keys may point at one incident.
CREATE TABLE incident_problems (
    source        TEXT    NOT NULL,
    problem_key   TEXT    NOT NULL,
    incident_seq  INTEGER NOT NULL REFERENCES incidents (seq),
    linked_at     INTEGER NOT NULL,
    PRIMARY KEY (source, problem_key)
);
CREATE INDEX incident_problems_incident ON incident_problems (incident_seq);

-- Alerts inside an incident's problems, by fingerprint.
CREATE TABLE alerts (
    incident_seq  INTEGER NOT NULL REFERENCES incidents (seq),
    fingerprint   TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    summary       TEXT    NOT NULL,
    labels        TEXT    NOT NULL DEFAULT '{}',
    starts_at     INTEGER,
    ends_at       INTEGER,
    url           TEXT,
    first_seen    INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL,
    PRIMARY KEY (incident_seq, fingerprint)
);

-- What happened, and who did it (a Slack user id, source:<name>, or warroom).
CREATE TABLE timeline (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_seq  INTEGER NOT NULL REFERENCES incidents (seq),
    at            INTEGER NOT NULL,
    kind          TEXT    NOT NULL,
    actor         TEXT    NOT NULL,
    text          TEXT    NOT NULL
);
CREATE INDEX timeline_incident ON timeline (incident_seq, id);

-- Built-in desk tickets, WR-<seq>.
CREATE TABLE tickets (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_seq  INTEGER NOT NULL UNIQUE REFERENCES incidents (seq),
    status        TEXT    NOT NULL,
    assignee      TEXT,
    priority      TEXT    NOT NULL,
    summary       TEXT    NOT NULL,
    description   TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- The outbox: every external side effect is a job, retried until done or dead.
-- dedupe_key: once ever (e.g. "open:INC-1"). coalesce_key: at most one *pending* job
-- (state-rendering jobs), enforced by a partial unique index.
CREATE TABLE jobs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT    NOT NULL,
    incident_seq  INTEGER REFERENCES incidents (seq),
    payload       TEXT    NOT NULL DEFAULT '{}',
    dedupe_key    TEXT    UNIQUE,
    coalesce_key  TEXT,
    state         TEXT    NOT NULL DEFAULT 'pending',
    attempts      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    run_after     INTEGER NOT NULL,
    deadline      INTEGER NOT NULL,
    locked_until  INTEGER,
    locked_by     TEXT,
    last_error    TEXT,
    finished_at   INTEGER
);
CREATE UNIQUE INDEX jobs_one_pending_per_coalesce_key ON jobs (coalesce_key) WHERE state = 'pending' AND coalesce_key IS NOT NULL;
CREATE INDEX jobs_due ON jobs (state, run_after);
CREATE INDEX jobs_incident_queue ON jobs (incident_seq, id) WHERE state IN ('pending', 'running');

-- Inbound events we have seen (Slack event_id / envelope_id, ...): a second delivery is a no-op.
CREATE TABLE inbound (
    source        TEXT    NOT NULL,
    dedupe_key    TEXT    NOT NULL,
    received_at   INTEGER NOT NULL,
    PRIMARY KEY (source, dedupe_key)
);
