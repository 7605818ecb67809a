-- The built-in desk: comments and attachments of tickets (WR-<seq>; the tickets table itself is
-- in 0001_foundation.sql). Times are INTEGER milliseconds since the Unix epoch (UTC).

-- Why a ticket was closed, as given to close(); cleared on reopen.
ALTER TABLE tickets ADD COLUMN resolution TEXT;

-- Comments, oldest first by id. dedupe_key is the caller's key (a job id): a retried comment is
-- a no-op.
CREATE TABLE ticket_comments (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_seq    INTEGER NOT NULL REFERENCES tickets (seq),
    at            INTEGER NOT NULL,
    author        TEXT    NOT NULL,
    text          TEXT    NOT NULL,
    public        INTEGER NOT NULL,
    dedupe_key    TEXT    NOT NULL UNIQUE
);
CREATE INDEX ticket_comments_ticket ON ticket_comments (ticket_seq, id);

-- Attached files, one per name: attaching a name again replaces the file.
CREATE TABLE ticket_attachments (
    ticket_seq    INTEGER NOT NULL REFERENCES tickets (seq),
    name          TEXT    NOT NULL,
    content_type  TEXT    NOT NULL,
    size          INTEGER NOT NULL,
    bytes         BLOB    NOT NULL,
    at            INTEGER NOT NULL,
    PRIMARY KEY (ticket_seq, name)
);
