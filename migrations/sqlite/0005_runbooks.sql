-- Deployments reported on /hooks/deployments: the context message shows the last one of a
-- service, and runbooks get deployment.current and deployment.previous.
CREATE TABLE deployments (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    service      TEXT    NOT NULL,
    environment  TEXT,
    version      TEXT    NOT NULL,
    commit_sha   TEXT,
    url          TEXT,
    pipeline     TEXT,
    runbook      TEXT,
    deployed_at  INTEGER NOT NULL
);
CREATE INDEX deployments_service ON deployments (service, environment, id);

-- Runbook runs, recorded before they start so a second press or another replica sees them.
-- Denied presses are kept too (state 'denied'): the audit trail.
CREATE TABLE runbook_runs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_seq  INTEGER NOT NULL REFERENCES incidents (seq),
    runbook       TEXT    NOT NULL,
    params        TEXT    NOT NULL DEFAULT '{}',
    requested_by  TEXT    NOT NULL,
    automatic     INTEGER NOT NULL DEFAULT 0,
    state         TEXT    NOT NULL,
    requested_at  INTEGER NOT NULL,
    started_at    INTEGER,
    finished_at   INTEGER,
    summary       TEXT,
    link          TEXT,
    output_tail   TEXT,
    status_ts     TEXT,
    problem_key   TEXT
);
-- At most one queued or running run of a runbook per incident.
CREATE UNIQUE INDEX runbook_runs_one_active ON runbook_runs (incident_seq, runbook) WHERE state IN ('queued', 'running');
CREATE INDEX runbook_runs_problem ON runbook_runs (problem_key, automatic, requested_at);
