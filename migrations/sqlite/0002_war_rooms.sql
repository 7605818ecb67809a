-- Slack war rooms. One row per channel of an incident: round 0 is the first channel, round k the
-- `-r<k>` channel opened by the k-th reopen. The planned name is saved before
-- conversations.create, so a retry after a crash finds the channel an earlier attempt made.
CREATE TABLE war_rooms (
    incident_seq   INTEGER NOT NULL REFERENCES incidents (seq),
    round          INTEGER NOT NULL,
    planned_name   TEXT,
    channel_id     TEXT,
    channel_name   TEXT,
    context_ts     TEXT,
    topic          TEXT,
    summary_ts     TEXT,
    archived       INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (incident_seq, round)
);
CREATE UNIQUE INDEX war_rooms_channel ON war_rooms (channel_id) WHERE channel_id IS NOT NULL;

-- People working an incident (invited on-call, leads, those who joined or acted).
CREATE TABLE responders (
    incident_seq   INTEGER NOT NULL REFERENCES incidents (seq),
    user_id        TEXT    NOT NULL,
    role           TEXT    NOT NULL,
    added_at       INTEGER NOT NULL,
    PRIMARY KEY (incident_seq, user_id)
);
