//! The built-in desk: tickets `WR-<seq>` in warroom's own SQLite database (the `tickets` table
//! and, from `0003_desk.sql`, `ticket_comments` and `ticket_attachments`), readable over
//! `GET /api/tickets/WR-<n>`.
//!
//! Idempotency sits in unique keys, not in checks before writes: one ticket per incident
//! (`tickets.incident_seq`), one comment per dedupe key, one attachment per (ticket, name). Every
//! change moves the ticket's `updated_at`; a call that changes nothing (a retried comment, closing
//! a closed ticket) leaves it alone. Queries are checked at runtime, so builds need no database.

use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::{Connection, SqliteConnection, SqlitePool};

use super::{Attachment, Comment, Desk, DeskError, Ticket, TicketDraft, TicketStatus, TicketUpdate};
use crate::config::DatabaseSettings;
use crate::domain::{Clock, IncidentId, TicketKey};
use crate::store::StoreError;
use crate::store::sqlite::{Lease, SqliteStore, Writer};

/// The built-in desk in warroom's SQLite database.
#[derive(Debug, Clone)]
pub struct BuiltinDesk {
    /// Reads.
    pool: SqlitePool,
    /// Writes borrow the store's one write connection, so they queue with warroom's own.
    writer: Writer,
    clock: Arc<dyn Clock>,
}

impl BuiltinDesk {
    /// A desk in `store`'s database.
    #[must_use]
    pub fn new(store: &SqliteStore, clock: Arc<dyn Clock>) -> Self {
        Self { pool: store.reader_pool().clone(), writer: store.writer().clone(), clock }
    }

    /// Opens the database `settings` name (migrating it if needed).
    pub async fn connect(settings: &DatabaseSettings, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        let store = SqliteStore::connect(settings).await?;
        Ok(Self::new(&store, clock))
    }

    fn now(&self) -> i64 {
        self.clock.now().as_millisecond()
    }

    /// Runs `sql` (binding the resolution, now and the ticket's seq) to move a ticket's status;
    /// a ticket already there is left alone, and a missing one is [`DeskError::NotFound`].
    async fn set_status(
        &self,
        key: &TicketKey,
        sql: &'static str,
        resolution: Option<String>,
        doing: &str,
    ) -> Result<(), DeskError> {
        let seq = seq_of(key)?;
        let now = self.now();
        let found = self
            .writer
            .write(move |conn| {
                Box::pin(async move {
                    let changed = sqlx::query(sql)
                        .bind(resolution)
                        .bind(now)
                        .bind(seq)
                        .execute(&mut *conn)
                        .await?
                        .rows_affected();
                    Ok(changed > 0 || exists(conn, seq).await?)
                })
            })
            .await
            .map_err(|e| store_error(e, doing))?;
        if found { Ok(()) } else { Err(no_ticket(key)) }
    }

    /// The write connection, for one change.
    async fn write_connection(&self, doing: &str) -> Result<Lease, DeskError> {
        self.writer.lease().await.map_err(|e| DeskError::Unavailable(format!("{doing}: {e}")))
    }
}

/// The sequence number behind a built-in key; any other key names no ticket here.
fn seq_of(key: &TicketKey) -> Result<i64, DeskError> {
    TicketKey::builtin_seq(key.as_str()).map_err(|_| no_ticket(key))
}

fn no_ticket(key: &TicketKey) -> DeskError {
    DeskError::NotFound(format!("no ticket {key}"))
}

/// Turns a database failure into a desk error: a broken reference means the thing referred to
/// does not exist, another constraint is a refusal, anything else is an outage worth retrying.
fn db_error(error: sqlx::Error, doing: &str) -> DeskError {
    match &error {
        sqlx::Error::Database(db) => match db.kind() {
            sqlx::error::ErrorKind::ForeignKeyViolation => DeskError::NotFound(format!("{doing}: {db}")),
            sqlx::error::ErrorKind::UniqueViolation
            | sqlx::error::ErrorKind::NotNullViolation
            | sqlx::error::ErrorKind::CheckViolation => DeskError::Rejected(format!("{doing}: {db}")),
            _ => DeskError::Unavailable(format!("{doing}: {error}")),
        },
        _ => DeskError::Unavailable(format!("{doing}: {error}")),
    }
}

/// A failed write through the store's writer, as a desk error (see [`db_error`]).
fn store_error(error: StoreError, doing: &str) -> DeskError {
    match error {
        StoreError::Unavailable(error) => db_error(error, doing),
        other => DeskError::Unavailable(format!("{doing}: {other}")),
    }
}

fn timestamp(ms: i64) -> Result<Timestamp, DeskError> {
    Timestamp::from_millisecond(ms).map_err(|e| DeskError::Rejected(format!("stored time {ms} is invalid: {e}")))
}

/// Moves `updated_at` of ticket `seq` inside a write transaction; [`DeskError::NotFound`] if
/// there is no such ticket. Writing first also takes the write lock at once, so the transaction
/// never has to upgrade from a read (which SQLite may refuse as busy).
async fn touch(conn: &mut SqliteConnection, key: &TicketKey, seq: i64, now: i64) -> Result<(), DeskError> {
    let touched = sqlx::query("UPDATE tickets SET updated_at = ? WHERE seq = ?")
        .bind(now)
        .bind(seq)
        .execute(conn)
        .await
        .map_err(|e| db_error(e, &format!("touching {key}")))?
        .rows_affected();
    if touched == 0 {
        return Err(no_ticket(key));
    }
    Ok(())
}

/// Whether ticket `seq` exists.
async fn exists(conn: &mut SqliteConnection, seq: i64) -> Result<bool, sqlx::Error> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT seq FROM tickets WHERE seq = ?").bind(seq).fetch_optional(conn).await?;
    Ok(found.is_some())
}

/// A ticket row: seq, incident_seq, status, assignee, priority, summary, description.
type TicketRow = (i64, i64, String, Option<String>, String, String, String);

#[async_trait]
impl Desk for BuiltinDesk {
    fn name(&self) -> &'static str {
        "builtin"
    }

    async fn create(&self, draft: &TicketDraft) -> Result<TicketKey, DeskError> {
        let now = self.now();
        let doing = format!("creating the ticket of {}", draft.incident);
        let incident = draft.incident.seq();
        let (priority, summary, description) =
            (draft.priority.clone(), draft.summary.clone(), draft.description.clone());
        let seq = self
            .writer
            .write(move |conn| {
                Box::pin(async move {
                    // The unique incident_seq makes a second create (a retry, a replica) a no-op.
                    sqlx::query(
                        "INSERT INTO tickets (incident_seq, status, priority, summary, description, created_at, updated_at) \
                         VALUES (?, 'open', ?, ?, ?, ?, ?) ON CONFLICT (incident_seq) DO NOTHING",
                    )
                    .bind(incident)
                    .bind(priority)
                    .bind(summary)
                    .bind(description)
                    .bind(now)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                    let seq: i64 = sqlx::query_scalar("SELECT seq FROM tickets WHERE incident_seq = ?")
                        .bind(incident)
                        .fetch_one(&mut *conn)
                        .await?;
                    Ok(seq)
                })
            })
            .await
            .map_err(|e| match store_error(e, &doing) {
                DeskError::NotFound(_) => DeskError::NotFound(format!("no incident {}", draft.incident)),
                other => other,
            })?;
        Ok(TicketKey::builtin(seq))
    }

    async fn find_for_incident(&self, incident: IncidentId) -> Result<Option<TicketKey>, DeskError> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM tickets WHERE incident_seq = ?")
            .bind(incident.seq())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_error(e, &format!("finding the ticket of {incident}")))?;
        Ok(seq.map(TicketKey::builtin))
    }

    async fn update(&self, key: &TicketKey, update: &TicketUpdate) -> Result<(), DeskError> {
        let seq = seq_of(key)?;
        let now = self.now();
        let update = update.clone();
        let matched = self
            .writer
            .write(move |conn| {
                Box::pin(async move {
                    // SET expressions all see the old row, so updated_at moves only when a value
                    // changes: a state-rendering job that re-sends the same fields leaves the
                    // ticket as it was.
                    let result = sqlx::query(
                        "UPDATE tickets SET summary = COALESCE(?1, summary), description = COALESCE(?2, description), \
                         priority = COALESCE(?3, priority), assignee = COALESCE(?4, assignee), \
                         updated_at = CASE WHEN COALESCE(?1, summary) IS NOT summary OR COALESCE(?2, description) IS NOT description \
                         OR COALESCE(?3, priority) IS NOT priority OR COALESCE(?4, assignee) IS NOT assignee \
                         THEN ?5 ELSE updated_at END \
                         WHERE seq = ?6",
                    )
                    .bind(update.summary)
                    .bind(update.description)
                    .bind(update.priority)
                    .bind(update.assignee)
                    .bind(now)
                    .bind(seq)
                    .execute(conn)
                    .await?;
                    Ok(result.rows_affected())
                })
            })
            .await
            .map_err(|e| store_error(e, &format!("updating {key}")))?;
        if matched == 0 {
            return Err(no_ticket(key));
        }
        Ok(())
    }

    async fn comment(
        &self,
        key: &TicketKey,
        author: &str,
        text: &str,
        public: bool,
        dedupe: &str,
    ) -> Result<(), DeskError> {
        let seq = seq_of(key)?;
        if dedupe.is_empty() {
            return Err(DeskError::Rejected(format!("a comment on {key} needs a dedupe key")));
        }
        let now = self.now();
        let doing = format!("commenting on {key}");
        let mut conn = self.write_connection(&doing).await?;
        let mut tx = conn.begin().await.map_err(|e| db_error(e, &doing))?;
        touch(&mut tx, key, seq, now).await?;
        let added = sqlx::query(
            "INSERT INTO ticket_comments (ticket_seq, at, author, text, public, dedupe_key) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING",
        )
        .bind(seq)
        .bind(now)
        .bind(author)
        .bind(text)
        .bind(public)
        .bind(dedupe)
        .execute(&mut *tx)
        .await
        .map_err(|e| db_error(e, &doing))?
        .rows_affected();
        if added == 0 {
            // Seen before: dropping the transaction rolls back the touch, so nothing changed.
            return Ok(());
        }
        tx.commit().await.map_err(|e| db_error(e, &doing))
    }

    async fn attach(&self, key: &TicketKey, name: &str, content_type: &str, bytes: &[u8]) -> Result<(), DeskError> {
        let seq = seq_of(key)?;
        if name.is_empty() {
            return Err(DeskError::Rejected(format!("an attachment on {key} needs a name")));
        }
        let size = i64::try_from(bytes.len())
            .map_err(|_| DeskError::Rejected(format!("attachment {name} on {key} is too large")))?;
        let now = self.now();
        let doing = format!("attaching {name} to {key}");
        let mut conn = self.write_connection(&doing).await?;
        let mut tx = conn.begin().await.map_err(|e| db_error(e, &doing))?;
        touch(&mut tx, key, seq, now).await?;
        sqlx::query(
            "INSERT INTO ticket_attachments (ticket_seq, name, content_type, size, bytes, at) VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (ticket_seq, name) DO UPDATE SET content_type = excluded.content_type, size = excluded.size, \
             bytes = excluded.bytes, at = excluded.at",
        )
        .bind(seq)
        .bind(name)
        .bind(content_type)
        .bind(size)
        .bind(bytes)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| db_error(e, &doing))?;
        tx.commit().await.map_err(|e| db_error(e, &doing))
    }

    async fn close(&self, key: &TicketKey, resolution: &str) -> Result<(), DeskError> {
        let sql = "UPDATE tickets SET status = 'closed', resolution = ?1, updated_at = ?2 WHERE seq = ?3 AND status <> 'closed'";
        self.set_status(key, sql, Some(resolution.to_owned()), &format!("closing {key}")).await
    }

    async fn reopen(&self, key: &TicketKey) -> Result<(), DeskError> {
        let sql =
            "UPDATE tickets SET status = 'open', resolution = ?1, updated_at = ?2 WHERE seq = ?3 AND status <> 'open'";
        self.set_status(key, sql, None, &format!("reopening {key}")).await
    }

    async fn get(&self, key: &TicketKey) -> Result<Option<Ticket>, DeskError> {
        let Ok(seq) = TicketKey::builtin_seq(key.as_str()) else {
            return Ok(None);
        };
        let doing = format!("reading {key}");
        // One read transaction: the ticket, its comments and attachments from one snapshot.
        let mut tx = self.pool.begin().await.map_err(|e| db_error(e, &doing))?;
        let row: Option<TicketRow> = sqlx::query_as(
            "SELECT seq, incident_seq, status, assignee, priority, summary, description FROM tickets WHERE seq = ?",
        )
        .bind(seq)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| db_error(e, &doing))?;
        let Some((seq, incident, status, assignee, priority, summary, description)) = row else {
            return Ok(None);
        };
        let comments: Vec<(i64, String, String, bool)> =
            sqlx::query_as("SELECT at, author, text, public FROM ticket_comments WHERE ticket_seq = ? ORDER BY id")
                .bind(seq)
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| db_error(e, &doing))?;
        let attachments: Vec<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT at, name, content_type, size FROM ticket_attachments WHERE ticket_seq = ? ORDER BY name",
        )
        .bind(seq)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| db_error(e, &doing))?;
        tx.commit().await.map_err(|e| db_error(e, &doing))?;

        let status = TicketStatus::parse(&status)
            .ok_or_else(|| DeskError::Rejected(format!("{key} has an unknown stored status `{status}`")))?;
        Ok(Some(Ticket {
            key: TicketKey::builtin(seq),
            incident: IncidentId::from_seq(incident),
            status,
            assignee,
            priority,
            summary,
            description,
            comments: comments
                .into_iter()
                .map(|(at, author, text, public)| Ok(Comment { at: timestamp(at)?, author, text, public }))
                .collect::<Result<_, DeskError>>()?,
            attachments: attachments
                .into_iter()
                .map(|(at, name, content_type, size)| {
                    Ok(Attachment { at: timestamp(at)?, name, content_type, size: u64::try_from(size).unwrap_or(0) })
                })
                .collect::<Result<_, DeskError>>()?,
        }))
    }

    async fn attachment(&self, key: &TicketKey, name: &str) -> Result<Option<(String, Vec<u8>)>, DeskError> {
        let Ok(seq) = TicketKey::builtin_seq(key.as_str()) else {
            return Ok(None);
        };
        sqlx::query_as("SELECT content_type, bytes FROM ticket_attachments WHERE ticket_seq = ? AND name = ?")
            .bind(seq)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_error(e, &format!("reading attachment {name} of {key}")))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use jiff::SignedDuration;
    use tempfile::TempDir;

    use super::*;
    use crate::desk::priority_for;
    use crate::domain::incident::{NewIncident, Outcome};
    use crate::domain::{ManualClock, Problem, ProblemKey, ProblemStatus, Severity, SourceKind};
    use crate::store::Store;

    /// A desk over a fresh database in a temporary directory, with a clock tests move.
    pub(crate) struct Fixture {
        _dir: TempDir,
        pub(crate) store: SqliteStore,
        pub(crate) desk: BuiltinDesk,
        pub(crate) clock: ManualClock,
    }

    impl Fixture {
        pub(crate) async fn new() -> Self {
            let dir = tempfile::tempdir().expect("temp dir");
            let settings =
                DatabaseSettings { url: format!("sqlite://{}/t.db", dir.path().display()), ..Default::default() };
            let store = SqliteStore::connect(&settings).await.expect("store");
            let clock = ManualClock::new("2026-03-01T10:00:00Z".parse().expect("time"));
            let desk = BuiltinDesk::new(&store, Arc::new(clock.clone()));
            Self { _dir: dir, store, desk, clock }
        }

        /// Inserts an incident (tickets reference one) and returns its id.
        pub(crate) async fn incident(&self, key: &str) -> IncidentId {
            let problem = Problem {
                source: SourceKind::Generic,
                key: ProblemKey::new(key).expect("key"),
                title: format!("problem {key}"),
                severity: Severity::Sev2,
                service: None,
                status: ProblemStatus::Firing,
                description: None,
                url: None,
                labels: Default::default(),
                entities: vec![],
                alerts: vec![],
                display_id: None,
            };
            let now = self.clock.now();
            let mut tx = self.store.begin().await.expect("begin");
            let id = tx.insert_incident(&NewIncident::from_problem(&problem, now), now).await.expect("insert incident");
            tx.record_delivery(&problem, b"{}", Some(id), Outcome::Opened, now).await.expect("delivery");
            tx.commit().await.expect("commit");
            id
        }

        /// An incident with its ticket.
        pub(crate) async fn ticket(&self, key: &str) -> TicketKey {
            let incident = self.incident(key).await;
            self.desk.create(&draft(incident)).await.expect("create")
        }

        async fn updated_at(&self, key: &TicketKey) -> i64 {
            sqlx::query_scalar("SELECT updated_at FROM tickets WHERE seq = ?")
                .bind(TicketKey::builtin_seq(key.as_str()).expect("builtin key"))
                .fetch_one(self.store.reader_pool())
                .await
                .expect("updated_at")
        }

        async fn get(&self, key: &TicketKey) -> Ticket {
            self.desk.get(key).await.expect("get").expect("the ticket")
        }

        fn tick(&self) {
            self.clock.advance(SignedDuration::from_secs(60));
        }
    }

    fn draft(incident: IncidentId) -> TicketDraft {
        TicketDraft {
            incident,
            summary: format!("{incident}: checkout is down"),
            description: "HTTP 500 on /checkout".to_owned(),
            priority: priority_for(Severity::Sev2).to_owned(),
            labels: vec!["warroom".to_owned()],
        }
    }

    #[tokio::test]
    async fn creating_twice_for_one_incident_makes_one_ticket() {
        let f = Fixture::new().await;
        let incident = f.incident("disk-db-1").await;

        let first = f.desk.create(&draft(incident)).await.expect("first create");
        let second = f.desk.create(&draft(incident)).await.expect("second create");

        assert_eq!(first.as_str(), "WR-1");
        assert_eq!(second, first, "a retried create must return the same ticket");
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM tickets").fetch_one(f.store.reader_pool()).await.expect("count");
        assert_eq!(count, 1);
        assert_eq!(f.desk.find_for_incident(incident).await.expect("find"), Some(first));
    }

    #[tokio::test]
    async fn each_incident_gets_its_own_numbered_ticket() {
        let f = Fixture::new().await;

        let one = f.ticket("a").await;
        let two = f.ticket("b").await;

        assert_eq!((one.as_str(), two.as_str()), ("WR-1", "WR-2"));
    }

    #[tokio::test]
    async fn creating_a_ticket_for_an_unknown_incident_is_not_found() {
        let f = Fixture::new().await;

        let result = f.desk.create(&draft(IncidentId::from_seq(99))).await;

        assert!(matches!(result, Err(DeskError::NotFound(ref m)) if m.contains("INC-99")), "{result:?}");
    }

    #[tokio::test]
    async fn an_incident_without_a_ticket_finds_none() {
        let f = Fixture::new().await;
        let incident = f.incident("quiet").await;

        assert_eq!(f.desk.find_for_incident(incident).await.expect("find"), None);
    }

    #[tokio::test]
    async fn a_comment_sent_twice_with_one_dedupe_key_is_added_once() {
        let f = Fixture::new().await;
        let key = f.ticket("a").await;

        for _ in 0..2 {
            f.desk.comment(&key, "U123", "rolled back", true, "job-7").await.expect("comment");
        }
        f.desk.comment(&key, "warroom", "internal note", false, "job-8").await.expect("second comment");

        let comments = f.get(&key).await.comments;
        let texts: Vec<(&str, &str, bool)> =
            comments.iter().map(|c| (c.author.as_str(), c.text.as_str(), c.public)).collect();
        assert_eq!(texts, [("U123", "rolled back", true), ("warroom", "internal note", false)]);
    }

    #[tokio::test]
    async fn a_retried_comment_leaves_updated_at_alone() {
        let f = Fixture::new().await;
        let key = f.ticket("a").await;
        f.desk.comment(&key, "U1", "first", true, "job-1").await.expect("comment");
        let after_first = f.updated_at(&key).await;

        f.tick();
        f.desk.comment(&key, "U1", "first", true, "job-1").await.expect("retry");

        assert_eq!(f.updated_at(&key).await, after_first);
    }

    #[tokio::test]
    async fn attaching_a_name_again_replaces_the_file() {
        let f = Fixture::new().await;
        let key = f.ticket("a").await;

        f.desk.attach(&key, "transcript.md", "text/markdown", b"# old").await.expect("first attach");
        f.tick();
        f.desk.attach(&key, "transcript.md", "text/plain", b"newer transcript").await.expect("second attach");
        f.desk.attach(&key, "graph.png", "image/png", &[0x89, b'P', b'N', b'G']).await.expect("other attach");

        let attachments = f.get(&key).await.attachments;
        let names: Vec<(&str, &str, u64)> =
            attachments.iter().map(|a| (a.name.as_str(), a.content_type.as_str(), a.size)).collect();
        assert_eq!(names, [("graph.png", "image/png", 4), ("transcript.md", "text/plain", 16)]);
        assert_eq!(
            f.desk.attachment(&key, "transcript.md").await.expect("read"),
            Some(("text/plain".to_owned(), b"newer transcript".to_vec()))
        );
        assert_eq!(f.desk.attachment(&key, "missing.txt").await.expect("read"), None);
    }

    #[tokio::test]
    async fn closing_and_reopening_twice_is_the_same_as_once() {
        let f = Fixture::new().await;
        let key = f.ticket("a").await;

        f.tick();
        f.desk.close(&key, "fixed").await.expect("close");
        let closed_at = f.updated_at(&key).await;
        f.tick();
        f.desk.close(&key, "fixed").await.expect("close again");
        assert_eq!(f.get(&key).await.status, TicketStatus::Closed);
        assert_eq!(f.updated_at(&key).await, closed_at, "closing a closed ticket changes nothing");

        f.desk.reopen(&key).await.expect("reopen");
        f.desk.reopen(&key).await.expect("reopen again");
        assert_eq!(f.get(&key).await.status, TicketStatus::Open);
        assert!(f.updated_at(&key).await > closed_at);
    }

    #[tokio::test]
    async fn an_update_changes_only_the_fields_it_names() {
        let f = Fixture::new().await;
        let key = f.ticket("a").await;
        let created = f.updated_at(&key).await;

        f.tick();
        f.desk
            .update(
                &key,
                &TicketUpdate {
                    priority: Some("P1".to_owned()),
                    assignee: Some("U42".to_owned()),
                    ..TicketUpdate::default()
                },
            )
            .await
            .expect("update");
        let updated = f.updated_at(&key).await;
        f.tick();
        f.desk
            .update(&key, &TicketUpdate { priority: Some("P1".to_owned()), ..TicketUpdate::default() })
            .await
            .expect("same update");

        let ticket = f.get(&key).await;
        assert_eq!(ticket.priority, "P1");
        assert_eq!(ticket.assignee.as_deref(), Some("U42"));
        assert_eq!(ticket.summary, "INC-1: checkout is down");
        assert!(updated > created, "a change moves updated_at");
        assert_eq!(f.updated_at(&key).await, updated, "re-sending the same value is no change");
    }

    #[tokio::test]
    async fn get_returns_the_fields_comments_and_attachments() {
        let f = Fixture::new().await;
        let incident = f.incident("a").await;
        let key = f.desk.create(&draft(incident)).await.expect("create");
        f.tick();
        f.desk.comment(&key, "U1", "looking", true, "job-1").await.expect("comment");
        f.desk.attach(&key, "transcript.md", "text/markdown", b"# INC-1").await.expect("attach");

        let ticket = f.get(&key).await;

        let at: Timestamp = "2026-03-01T10:01:00Z".parse().expect("time");
        assert_eq!(
            ticket,
            Ticket {
                key: TicketKey::builtin(1),
                incident,
                status: TicketStatus::Open,
                assignee: None,
                priority: "P2".to_owned(),
                summary: "INC-1: checkout is down".to_owned(),
                description: "HTTP 500 on /checkout".to_owned(),
                comments: vec![Comment { at, author: "U1".to_owned(), text: "looking".to_owned(), public: true }],
                attachments: vec![Attachment {
                    at,
                    name: "transcript.md".to_owned(),
                    content_type: "text/markdown".to_owned(),
                    size: 7,
                }],
            }
        );
    }

    #[tokio::test]
    async fn unknown_and_foreign_keys_name_no_ticket() {
        let f = Fixture::new().await;
        f.ticket("a").await;

        for key in ["WR-2", "OPS-1", "WR-x"] {
            let key = TicketKey::external(key);
            assert_eq!(f.desk.get(&key).await.expect("get"), None, "{key}");
            assert_eq!(f.desk.attachment(&key, "a.txt").await.expect("read"), None, "{key}");
            let errors = [
                f.desk.close(&key, "done").await,
                f.desk.reopen(&key).await,
                f.desk.comment(&key, "U1", "hi", true, "job-1").await,
                f.desk.attach(&key, "a.txt", "text/plain", b"a").await,
                f.desk.update(&key, &TicketUpdate::default()).await,
            ];
            for result in errors {
                assert!(matches!(result, Err(DeskError::NotFound(_))), "{key}: {result:?}");
            }
        }
    }

    #[tokio::test]
    async fn the_desk_calls_itself_builtin() {
        let f = Fixture::new().await;

        assert_eq!(f.desk.name(), "builtin");
    }
}
