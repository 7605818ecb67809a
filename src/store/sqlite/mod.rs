//! The SQLite adapter: WAL journal, `synchronous=FULL` by default, the file created on first run,
//! `migrations/sqlite` applied at connect. Write transactions start with `BEGIN IMMEDIATE` so two
//! writers queue on the lock instead of failing when a read turns into a write.

mod writer;

pub use writer::{Lease, Writer};

use std::any::Any;
use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use jiff::Timestamp;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Connection, Row, Sqlite, SqliteConnection, SqlitePool};

use super::{
    Counts, DeliveryRecord, Enqueued, GroupedWork, IncidentFilter, Job, JobKey, JobState, NewJob, Store, StoreError,
    StoreTx,
};
use crate::config::{DatabaseSettings, Synchronous};
use crate::domain::incident::{ChannelRef, NewIncident};
use crate::domain::runbook_run::{Deployment, RunState, RunbookRun};
use crate::domain::transcript::{Capture, Captured, EntryKind, FileRef, Origin, TranscriptLine};
use crate::domain::war_room::{Responder, Role, WarRoom};
use crate::domain::{
    Actor, Alert, AlertStatus, Incident, IncidentId, ProblemKey, SourceKind, TicketKey, TimelineEvent,
};

/// SQLite behind the [`Store`] port.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Readers (WAL: they never block the writer).
    pool: SqlitePool,
    /// Owns the one connection every write goes through: writers queue there in order instead
    /// of sleeping in SQLite's busy handler, which made write latency spike under load. Single
    /// writes are committed in groups; transactions borrow the connection in turn.
    writes: Writer,
    /// Which incident and round each war-room channel belongs to, as read. Every message
    /// captured asks, and the answer never changes once a room's channel is recorded.
    channels: std::sync::Arc<ChannelCache>,
}

/// Known war-room channels; bounded, and forgetting a channel whose room is saved with another.
#[derive(Debug, Default)]
struct ChannelCache(std::sync::Mutex<std::collections::HashMap<String, (IncidentId, u32)>>);

impl ChannelCache {
    /// How many channels are remembered before starting afresh.
    const CAPACITY: usize = 4096;

    fn get(&self, channel: &str) -> Option<(IncidentId, u32)> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(channel).copied()
    }

    fn remember(&self, channel: &str, room: (IncidentId, u32)) {
        let mut known = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if known.len() >= Self::CAPACITY {
            known.clear();
        }
        known.insert(channel.to_owned(), room);
    }

    /// `room` is being saved with `channel` (or none): forget any other channel it had.
    fn saving(&self, room: (IncidentId, u32), channel: Option<&str>) {
        let mut known = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        known.retain(|name, of| *of != room || Some(name.as_str()) == channel);
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `settings.url` and migrates it.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(&settings.url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match settings.synchronous {
                Synchronous::Full => SqliteSynchronous::Full,
                Synchronous::Normal => SqliteSynchronous::Normal,
            })
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let mut writer = SqliteConnection::connect_with(&options).await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&mut writer)
            .await
            .map_err(|e| StoreError::Unavailable(sqlx::Error::Migrate(Box::new(e))))?;
        // No ping before handing out a reader: the database is a local file, and the ping is a
        // round trip to the connection's thread in front of every query.
        let pool = SqlitePoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        let writes = Writer::start(writer);
        Ok(Self { pool, writes, channels: std::sync::Arc::default() })
    }

    /// Runs one write in the writer's next group commit.
    async fn write<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
    {
        self.writes.write(op).await
    }
}

impl SqliteStore {
    /// The write connection's owner, for adapters that share this database (the built-in
    /// desk), so their writes queue with warroom's own.
    #[must_use]
    pub fn writer(&self) -> &Writer {
        &self.writes
    }

    /// The readers, for adapters that share this database.
    #[must_use]
    pub fn reader_pool(&self) -> &SqlitePool {
        &self.pool
    }
}

fn millis(t: Timestamp) -> i64 {
    t.as_millisecond()
}

fn from_millis(ms: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_millisecond(ms).map_err(|e| StoreError::Corrupt(format!("timestamp {ms}: {e}")))
}

fn opt_from_millis(ms: Option<i64>) -> Result<Option<Timestamp>, StoreError> {
    ms.map(from_millis).transpose()
}

fn parse<T: FromStr>(column: &str, text: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e| StoreError::Corrupt(format!("{column} `{text}`: {e}")))
}

fn json<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

const INCIDENT_COLUMNS: &str = "seq, title, severity, service, status, source, problem_key, description, url, labels, \
     entities, opened_at, acknowledged_at, acknowledged_by, resolved_at, resolved_by, summary, commander, assignee, \
     channel_id, channel_name, ticket_key, reopen_count";

fn incident_from_row(row: &SqliteRow) -> Result<Incident, StoreError> {
    let severity: String = row.try_get("severity")?;
    let status: String = row.try_get("status")?;
    let source: String = row.try_get("source")?;
    let key: String = row.try_get("problem_key")?;
    let labels: String = row.try_get("labels")?;
    let entities: String = row.try_get("entities")?;
    let channel_id: Option<String> = row.try_get("channel_id")?;
    let channel_name: Option<String> = row.try_get("channel_name")?;
    let actor = |column: &str| -> Result<Option<Actor>, StoreError> {
        Ok(row.try_get::<Option<String>, _>(column)?.map(|a| Actor::parse(&a)))
    };
    Ok(Incident {
        id: IncidentId::from_seq(row.try_get("seq")?),
        title: row.try_get("title")?,
        severity: parse("severity", &severity)?,
        service: row.try_get("service")?,
        status: parse("status", &status)?,
        source: parse("source", &source)?,
        problem_key: ProblemKey::new(&key).ok_or_else(|| StoreError::Corrupt("empty problem_key".to_owned()))?,
        description: row.try_get("description")?,
        url: row.try_get("url")?,
        labels: json::<BTreeMap<String, String>>("labels", &labels)?,
        entities: json("entities", &entities)?,
        opened_at: from_millis(row.try_get("opened_at")?)?,
        acknowledged_at: opt_from_millis(row.try_get("acknowledged_at")?)?,
        acknowledged_by: actor("acknowledged_by")?,
        resolved_at: opt_from_millis(row.try_get("resolved_at")?)?,
        resolved_by: actor("resolved_by")?,
        summary: row.try_get("summary")?,
        commander: row.try_get("commander")?,
        assignee: row.try_get("assignee")?,
        channel: channel_id.zip(channel_name).map(|(id, name)| ChannelRef { id, name }),
        ticket: row.try_get::<Option<String>, _>("ticket_key")?.map(TicketKey::external),
        reopen_count: u32::try_from(row.try_get::<i64, _>("reopen_count")?).unwrap_or(0),
    })
}

fn alert_from_row(row: &SqliteRow) -> Result<Alert, StoreError> {
    let status: String = row.try_get("status")?;
    let labels: String = row.try_get("labels")?;
    Ok(Alert {
        fingerprint: row.try_get("fingerprint")?,
        status: match status.as_str() {
            "firing" => AlertStatus::Firing,
            "resolved" => AlertStatus::Resolved,
            other => return Err(StoreError::Corrupt(format!("alert status `{other}`"))),
        },
        summary: row.try_get("summary")?,
        labels: json("labels", &labels)?,
        starts_at: opt_from_millis(row.try_get("starts_at")?)?,
        ends_at: opt_from_millis(row.try_get("ends_at")?)?,
        url: row.try_get("url")?,
    })
}

fn job_from_row(row: &SqliteRow) -> Result<Job, StoreError> {
    let payload: String = row.try_get("payload")?;
    let state: String = row.try_get("state")?;
    Ok(Job {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        incident: row.try_get::<Option<i64>, _>("incident_seq")?.map(IncidentId::from_seq),
        payload: json("payload", &payload)?,
        state: JobState::parse(&state)?,
        attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(0),
        created_at: from_millis(row.try_get("created_at")?)?,
        deadline: from_millis(row.try_get("deadline")?)?,
        last_error: row.try_get("last_error")?,
    })
}

async fn fetch_incident<'e, E>(executor: E, id: IncidentId) -> Result<Option<Incident>, StoreError>
where
    E: sqlx::Executor<'e, Database = Sqlite>,
{
    let sql = format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE seq = ?");
    sqlx::query(&sql).bind(id.seq()).fetch_optional(executor).await?.as_ref().map(incident_from_row).transpose()
}

async fn fetch_alerts<'e, E>(executor: E, id: IncidentId) -> Result<Vec<Alert>, StoreError>
where
    E: sqlx::Executor<'e, Database = Sqlite>,
{
    sqlx::query("SELECT * FROM alerts WHERE incident_seq = ? ORDER BY first_seen, fingerprint")
        .bind(id.seq())
        .fetch_all(executor)
        .await?
        .iter()
        .map(alert_from_row)
        .collect()
}

/// Marks a running job done, if `worker` still holds it.
async fn finish(conn: &mut SqliteConnection, id: i64, worker: &str, now: Timestamp) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "UPDATE jobs SET state = 'done', finished_at = ?, locked_by = NULL, locked_until = NULL \
         WHERE id = ? AND state = 'running' AND locked_by = ?",
    )
    .bind(millis(now))
    .bind(id)
    .bind(worker)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

#[async_trait]
impl Store for SqliteStore {
    async fn begin(&self) -> Result<Box<dyn StoreTx>, StoreError> {
        let mut lease = self.writes.lease().await?;
        lease.begin_immediate().await?;
        Ok(Box::new(SqliteTx { tx: TxConn::Lease(lease) }))
    }

    async fn grouped(&self, work: GroupedWork) -> Result<Box<dyn Any + Send>, StoreError> {
        self.writes
            .write_atomic(move |conn| {
                Box::pin(async move {
                    let mut tx = SqliteTx { tx: TxConn::Group(conn) };
                    work(&mut tx).await
                })
            })
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn incident(&self, id: IncidentId) -> Result<Option<Incident>, StoreError> {
        fetch_incident(&self.pool, id).await
    }

    async fn list_incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        let sql = format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR seq < ?2) \
             ORDER BY seq DESC LIMIT ?3"
        );
        sqlx::query(&sql)
            .bind(filter.status.map(|s| s.as_str()))
            .bind(filter.before.map(IncidentId::seq))
            .bind(i64::from(filter.limit))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(incident_from_row)
            .collect()
    }

    async fn alerts(&self, id: IncidentId) -> Result<Vec<Alert>, StoreError> {
        fetch_alerts(&self.pool, id).await
    }

    async fn timeline(&self, id: IncidentId) -> Result<Vec<TimelineEvent>, StoreError> {
        let rows = sqlx::query("SELECT at, kind, actor, text FROM timeline WHERE incident_seq = ? ORDER BY id")
            .bind(id.seq())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(TimelineEvent {
                    at: from_millis(row.try_get("at")?)?,
                    kind: row.try_get("kind")?,
                    actor: Actor::parse(&row.try_get::<String, _>("actor")?),
                    text: row.try_get("text")?,
                })
            })
            .collect()
    }

    async fn delivery_count(&self, source: SourceKind, key: &ProblemKey) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM problems WHERE source = ? AND problem_key = ?")
            .bind(source.as_str())
            .bind(key.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn record_inbound(&self, source: &str, key: &str, now: Timestamp) -> Result<bool, StoreError> {
        let (source, key) = (source.to_owned(), key.to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                let result = sqlx::query(
                    "INSERT INTO inbound (source, dedupe_key, received_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                )
                .bind(source)
                .bind(key)
                .bind(millis(now))
                .execute(conn)
                .await?;
                Ok(result.rows_affected() == 1)
            })
        })
        .await
    }

    async fn claim_job(&self, worker: &str, now: Timestamp, lease: Duration) -> Result<Option<Job>, StoreError> {
        let until = now.as_millisecond().saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        let worker = worker.to_owned();
        // One statement, so two workers can never claim the same row. A job is claimable when it
        // is due (pending and past run_after, or running with an expired lease) and is the head
        // of its incident's queue (lowest id among that incident's pending and running jobs).
        self.write(move |conn| {
            Box::pin(async move {
                let row = sqlx::query(
                    "UPDATE jobs SET state = 'running', locked_by = ?1, locked_until = ?2, attempts = attempts + 1 \
                     WHERE id = ( \
                       SELECT j.id FROM jobs j \
                       WHERE ((j.state = 'pending' AND j.run_after <= ?3) OR (j.state = 'running' AND j.locked_until <= ?3)) \
                         AND (j.incident_seq IS NULL OR j.id = ( \
                           SELECT MIN(h.id) FROM jobs h WHERE h.incident_seq = j.incident_seq AND h.state IN ('pending', 'running'))) \
                       ORDER BY j.run_after, j.id LIMIT 1) \
                     RETURNING *",
                )
                .bind(worker)
                .bind(until)
                .bind(millis(now))
                .fetch_optional(conn)
                .await?;
                row.as_ref().map(job_from_row).transpose()
            })
        })
        .await
    }

    async fn extend_lease(&self, id: i64, worker: &str, until: Timestamp) -> Result<bool, StoreError> {
        let worker = worker.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                let result = sqlx::query(
                    "UPDATE jobs SET locked_until = ? WHERE id = ? AND state = 'running' AND locked_by = ?",
                )
                .bind(millis(until))
                .bind(id)
                .bind(worker)
                .execute(conn)
                .await?;
                Ok(result.rows_affected() == 1)
            })
        })
        .await
    }

    async fn finish_job(&self, id: i64, worker: &str, now: Timestamp) -> Result<bool, StoreError> {
        let worker = worker.to_owned();
        self.write(move |conn| Box::pin(async move { finish(conn, id, &worker, now).await })).await
    }

    async fn retry_job(&self, id: i64, worker: &str, run_after: Timestamp, error: &str) -> Result<bool, StoreError> {
        let (worker, error) = (worker.to_owned(), error.to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                let result = sqlx::query(
                    "UPDATE jobs SET state = 'pending', run_after = ?, last_error = ?, locked_by = NULL, locked_until = NULL \
                     WHERE id = ? AND state = 'running' AND locked_by = ?",
                )
                .bind(millis(run_after))
                .bind(error)
                .bind(id)
                .bind(&worker)
                .execute(&mut *conn)
                .await;
                match result {
                    Ok(done) => Ok(done.rows_affected() == 1),
                    // A newer pending job with the same coalesce key exists: it renders the same
                    // state, so this one is no longer needed.
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => finish(conn, id, &worker, run_after).await,
                    Err(e) => Err(e.into()),
                }
            })
        })
        .await
    }

    async fn bury_job(&self, id: i64, worker: &str, now: Timestamp, error: &str) -> Result<bool, StoreError> {
        let (worker, error) = (worker.to_owned(), error.to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                let result = sqlx::query(
                    "UPDATE jobs SET state = 'dead', finished_at = ?, last_error = ?, locked_by = NULL, locked_until = NULL \
                     WHERE id = ? AND state = 'running' AND locked_by = ?",
                )
                .bind(millis(now))
                .bind(error)
                .bind(id)
                .bind(worker)
                .execute(conn)
                .await?;
                Ok(result.rows_affected() == 1)
            })
        })
        .await
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        // Only jobs that could be claimed count: a job waiting behind an earlier job of its
        // incident is not due, however old it is (else idle workers would spin on it).
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(CASE WHEN j.state = 'pending' THEN j.run_after ELSE j.locked_until END) FROM jobs j \
             WHERE j.state IN ('pending', 'running') \
               AND (j.incident_seq IS NULL OR j.id = ( \
                 SELECT MIN(h.id) FROM jobs h WHERE h.incident_seq = j.incident_seq AND h.state IN ('pending', 'running')))",
        )
        .fetch_one(&self.pool)
        .await?;
        opt_from_millis(due)
    }

    async fn jobs(&self, incident: Option<IncidentId>) -> Result<Vec<Job>, StoreError> {
        sqlx::query("SELECT * FROM jobs WHERE incident_seq IS ? ORDER BY id")
            .bind(incident.map(IncidentId::seq))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(job_from_row)
            .collect()
    }

    async fn open_job_count(&self) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE state IN ('pending', 'running')")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        let pairs =
            |rows: Vec<(String, i64)>| rows.into_iter().map(|(k, n)| (k, u64::try_from(n).unwrap_or(0))).collect();
        let incidents: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM incidents GROUP BY status ORDER BY status")
                .fetch_all(&self.pool)
                .await?;
        let jobs: Vec<(String, i64)> = sqlx::query_as("SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state")
            .fetch_all(&self.pool)
            .await?;
        let deliveries: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT source, outcome, COUNT(*) FROM problems GROUP BY source, outcome ORDER BY source, outcome",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(Counts {
            incidents: pairs(incidents),
            jobs: pairs(jobs),
            deliveries: deliveries.into_iter().map(|(s, o, n)| (s, o, u64::try_from(n).unwrap_or(0))).collect(),
        })
    }

    async fn war_room(&self, id: IncidentId, round: u32) -> Result<Option<WarRoom>, StoreError> {
        sqlx::query("SELECT * FROM war_rooms WHERE incident_seq = ? AND round = ?")
            .bind(id.seq())
            .bind(i64::from(round))
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(war_room_from_row)
            .transpose()
    }

    async fn war_rooms(&self, id: IncidentId) -> Result<Vec<WarRoom>, StoreError> {
        sqlx::query("SELECT * FROM war_rooms WHERE incident_seq = ? ORDER BY round")
            .bind(id.seq())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(war_room_from_row)
            .collect()
    }

    async fn save_war_room(&self, room: &WarRoom, now: Timestamp) -> Result<(), StoreError> {
        self.channels.saving((room.incident, room.round), room.channel_id.as_deref());
        let room = room.clone();
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO war_rooms (incident_seq, round, planned_name, channel_id, channel_name, context_ts, topic, summary_ts, archived, created_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                     ON CONFLICT (incident_seq, round) DO UPDATE SET planned_name = excluded.planned_name, channel_id = excluded.channel_id, \
                     channel_name = excluded.channel_name, context_ts = excluded.context_ts, topic = excluded.topic, \
                     summary_ts = excluded.summary_ts, archived = excluded.archived",
                )
                .bind(room.incident.seq())
                .bind(i64::from(room.round))
                .bind(&room.planned_name)
                .bind(&room.channel_id)
                .bind(&room.channel_name)
                .bind(&room.context_ts)
                .bind(&room.topic)
                .bind(&room.summary_ts)
                .bind(i64::from(room.archived))
                .bind(millis(now))
                .execute(conn)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn open_incidents_of(&self, service: &str) -> Result<Vec<IncidentId>, StoreError> {
        let seqs: Vec<i64> =
            sqlx::query_scalar("SELECT seq FROM incidents WHERE service = ? AND status <> 'resolved' ORDER BY seq")
                .bind(service)
                .fetch_all(&self.pool)
                .await?;
        Ok(seqs.into_iter().map(IncidentId::from_seq).collect())
    }

    async fn incident_by_ticket(&self, key: &str) -> Result<Option<IncidentId>, StoreError> {
        let seq: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM incidents WHERE ticket_key = ? ORDER BY seq DESC LIMIT 1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
        Ok(seq.map(IncidentId::from_seq))
    }

    async fn incident_by_channel(&self, channel_id: &str) -> Result<Option<(IncidentId, u32)>, StoreError> {
        if let Some(room) = self.channels.get(channel_id) {
            return Ok(Some(room));
        }
        let row: Option<(i64, i64)> = sqlx::query_as("SELECT incident_seq, round FROM war_rooms WHERE channel_id = ?")
            .bind(channel_id)
            .fetch_optional(&self.pool)
            .await?;
        let room = row.map(|(seq, round)| (IncidentId::from_seq(seq), u32::try_from(round).unwrap_or(0)));
        // Only a found channel is remembered: one unknown now may become a war room later.
        if let Some(room) = room {
            self.channels.remember(channel_id, room);
        }
        Ok(room)
    }

    async fn set_incident_channel(&self, id: IncidentId, channel: &ChannelRef) -> Result<(), StoreError> {
        let channel = channel.clone();
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query("UPDATE incidents SET channel_id = ?, channel_name = ? WHERE seq = ?")
                    .bind(&channel.id)
                    .bind(&channel.name)
                    .bind(id.seq())
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn set_incident_ticket(&self, id: IncidentId, key: &TicketKey) -> Result<(), StoreError> {
        let key = key.as_str().to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query("UPDATE incidents SET ticket_key = ? WHERE seq = ?")
                    .bind(key)
                    .bind(id.seq())
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn add_responders(&self, id: IncidentId, responders: &[Responder], now: Timestamp) -> Result<(), StoreError> {
        if responders.is_empty() {
            return Ok(());
        }
        let responders = responders.to_vec();
        self.write(move |conn| {
            Box::pin(async move {
                responders_insert(id, &responders, now).build().execute(conn).await?;
                Ok(())
            })
        })
        .await
    }

    async fn responders(&self, id: IncidentId) -> Result<Vec<Responder>, StoreError> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT user_id, role FROM responders WHERE incident_seq = ? ORDER BY added_at, user_id")
                .bind(id.seq())
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(user, role)| Responder { user, role: Role::parse(&role) }).collect())
    }

    async fn capture(
        &self,
        id: IncidentId,
        change: &Capture,
        origin: Origin,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let _ = now;
        let change = change.clone();
        self.write(move |conn| {
            Box::pin(async move {
                match &change {
                    Capture::New(entry) => {
                        sqlx::query(
                            "INSERT INTO transcript (channel_id, ts, incident_seq, thread_ts, user_id, bot, kind, text, files, origin) \
                             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        )
                        .bind(&entry.channel)
                        .bind(&entry.ts)
                        .bind(id.seq())
                        .bind(&entry.thread_ts)
                        .bind(&entry.user)
                        .bind(i64::from(entry.bot))
                        .bind(entry.kind.as_str())
                        .bind(&entry.text)
                        .bind(to_json(&entry.files))
                        .bind(origin.as_str())
                        .execute(&mut *conn)
                        .await?;
                    }
                    Capture::Edit { channel, ts, text, edited_ts } => {
                        let updated = sqlx::query(
                            "UPDATE transcript SET previous_text = text, text = ?, edited_ts = ? \
                             WHERE channel_id = ? AND ts = ? AND deleted = 0 AND (edited_ts IS NULL OR edited_ts < ?) AND text <> ?",
                        )
                        .bind(text)
                        .bind(edited_ts)
                        .bind(channel)
                        .bind(ts)
                        .bind(edited_ts)
                        .bind(text)
                        .execute(&mut *conn)
                        .await?;
                        if updated.rows_affected() == 0 {
                            sqlx::query(
                                "INSERT INTO transcript (channel_id, ts, incident_seq, kind, text, edited_ts, origin) \
                                 VALUES (?, ?, ?, 'message', ?, ?, ?) ON CONFLICT DO NOTHING",
                            )
                            .bind(channel)
                            .bind(ts)
                            .bind(id.seq())
                            .bind(text)
                            .bind(edited_ts)
                            .bind(origin.as_str())
                            .execute(&mut *conn)
                            .await?;
                        }
                    }
                    Capture::Delete { channel, ts } => {
                        sqlx::query(
                            "INSERT INTO transcript (channel_id, ts, incident_seq, kind, text, deleted, origin) VALUES (?, ?, ?, 'message', '', 1, ?) \
                             ON CONFLICT (channel_id, ts) DO UPDATE SET deleted = 1, text = '', previous_text = NULL, files = '[]'",
                        )
                        .bind(channel)
                        .bind(ts)
                        .bind(id.seq())
                        .bind(origin.as_str())
                        .execute(&mut *conn)
                        .await?;
                    }
                }
                Ok(())
            })
        })
        .await
    }

    async fn transcript_lines(&self, id: IncidentId) -> Result<Vec<TranscriptLine>, StoreError> {
        let rows = sqlx::query("SELECT * FROM transcript WHERE incident_seq = ? ORDER BY channel_id, ts")
            .bind(id.seq())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let files: String = row.try_get("files")?;
                let kind: String = row.try_get("kind")?;
                Ok(TranscriptLine {
                    entry: Captured {
                        channel: row.try_get("channel_id")?,
                        ts: row.try_get("ts")?,
                        thread_ts: row.try_get("thread_ts")?,
                        user: row.try_get("user_id")?,
                        bot: row.try_get::<i64, _>("bot")? != 0,
                        kind: EntryKind::parse(&kind),
                        text: row.try_get("text")?,
                        files: json::<Vec<FileRef>>("files", &files)?,
                    },
                    previous_text: row.try_get("previous_text")?,
                    edited_ts: row.try_get("edited_ts")?,
                    deleted: row.try_get::<i64, _>("deleted")? != 0,
                })
            })
            .collect()
    }

    async fn heartbeat(&self, now: Timestamp) -> Result<Option<Timestamp>, StoreError> {
        let previous: Option<i64> = self
            .write(move |conn| {
                Box::pin(async move {
                    let previous = sqlx::query_scalar("SELECT last_seen FROM listener_heartbeat WHERE id = 1")
                        .fetch_optional(&mut *conn)
                        .await?;
                    sqlx::query("INSERT INTO listener_heartbeat (id, last_seen) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen")
                        .bind(millis(now))
                        .execute(conn)
                        .await?;
                    Ok(previous)
                })
            })
            .await?;
        opt_from_millis(previous)
    }

    async fn record_gap(&self, started_at: Timestamp, ended_at: Timestamp) -> Result<(), StoreError> {
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query("INSERT INTO listening_gaps (started_at, ended_at) VALUES (?, ?)")
                    .bind(millis(started_at))
                    .bind(millis(ended_at))
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn gaps(&self, from: Timestamp, to: Timestamp) -> Result<Vec<(Timestamp, Timestamp)>, StoreError> {
        let rows: Vec<(i64, i64)> = sqlx::query_as("SELECT started_at, ended_at FROM listening_gaps WHERE ended_at >= ? AND started_at <= ? ORDER BY started_at")
            .bind(millis(from))
            .bind(millis(to))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(|(a, b)| Ok((from_millis(a)?, from_millis(b)?))).collect()
    }

    async fn save_transcript(&self, id: IncidentId, markdown: &str, now: Timestamp) -> Result<(), StoreError> {
        let markdown = markdown.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO transcripts (incident_seq, markdown, rendered_at) VALUES (?, ?, ?) \
                     ON CONFLICT (incident_seq) DO UPDATE SET markdown = excluded.markdown, rendered_at = excluded.rendered_at",
                )
                .bind(id.seq())
                .bind(markdown)
                .bind(millis(now))
                .execute(conn)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn transcript(&self, id: IncidentId) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT markdown FROM transcripts WHERE incident_seq = ?")
            .bind(id.seq())
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn record_deployment(&self, d: &Deployment) -> Result<i64, StoreError> {
        let d = d.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO deployments (service, environment, version, commit_sha, url, pipeline, runbook, deployed_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                )
                .bind(&d.service)
                .bind(&d.environment)
                .bind(&d.version)
                .bind(&d.commit)
                .bind(&d.url)
                .bind(&d.pipeline)
                .bind(&d.runbook)
                .bind(millis(d.deployed_at))
                .fetch_one(conn)
                .await?;
                Ok(id)
            })
        })
        .await
    }

    async fn deployments(
        &self,
        service: &str,
        environment: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Deployment>, StoreError> {
        sqlx::query("SELECT * FROM deployments WHERE service = ?1 AND (?2 IS NULL OR environment = ?2) ORDER BY id DESC LIMIT ?3")
            .bind(service)
            .bind(environment)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(deployment_from_row)
            .collect()
    }

    async fn run(&self, id: i64) -> Result<Option<RunbookRun>, StoreError> {
        sqlx::query("SELECT * FROM runbook_runs WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(run_from_row)
            .transpose()
    }

    async fn runs(&self, incident: IncidentId) -> Result<Vec<RunbookRun>, StoreError> {
        sqlx::query("SELECT * FROM runbook_runs WHERE incident_seq = ? ORDER BY id")
            .bind(incident.seq())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(run_from_row)
            .collect()
    }

    async fn update_run(&self, run: &RunbookRun) -> Result<(), StoreError> {
        let run = run.clone();
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE runbook_runs SET state = ?, started_at = ?, finished_at = ?, summary = ?, link = ?, output_tail = ?, status_ts = ? WHERE id = ?",
                )
                .bind(run.state.as_str())
                .bind(run.started_at.map(millis))
                .bind(run.finished_at.map(millis))
                .bind(&run.summary)
                .bind(&run.link)
                .bind(&run.output_tail)
                .bind(&run.status_ts)
                .bind(run.id)
                .execute(conn)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn last_automatic_run(&self, problem_key: &str, since: Timestamp) -> Result<Option<RunbookRun>, StoreError> {
        sqlx::query("SELECT * FROM runbook_runs WHERE problem_key = ? AND automatic = 1 AND requested_at >= ? ORDER BY id DESC LIMIT 1")
            .bind(problem_key)
            .bind(millis(since))
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(run_from_row)
            .transpose()
    }
}

fn war_room_from_row(row: &SqliteRow) -> Result<WarRoom, StoreError> {
    Ok(WarRoom {
        incident: IncidentId::from_seq(row.try_get("incident_seq")?),
        round: u32::try_from(row.try_get::<i64, _>("round")?).unwrap_or(0),
        planned_name: row.try_get("planned_name")?,
        channel_id: row.try_get("channel_id")?,
        channel_name: row.try_get("channel_name")?,
        context_ts: row.try_get("context_ts")?,
        topic: row.try_get("topic")?,
        summary_ts: row.try_get("summary_ts")?,
        archived: row.try_get::<i64, _>("archived")? != 0,
    })
}

fn run_from_row(row: &SqliteRow) -> Result<RunbookRun, StoreError> {
    let params: String = row.try_get("params")?;
    let state: String = row.try_get("state")?;
    Ok(RunbookRun {
        id: row.try_get("id")?,
        incident: IncidentId::from_seq(row.try_get("incident_seq")?),
        runbook: row.try_get("runbook")?,
        params: json("params", &params)?,
        requested_by: row.try_get("requested_by")?,
        automatic: row.try_get::<i64, _>("automatic")? != 0,
        state: RunState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("run state `{state}`")))?,
        requested_at: from_millis(row.try_get("requested_at")?)?,
        started_at: opt_from_millis(row.try_get("started_at")?)?,
        finished_at: opt_from_millis(row.try_get("finished_at")?)?,
        summary: row.try_get("summary")?,
        link: row.try_get("link")?,
        output_tail: row.try_get("output_tail")?,
        status_ts: row.try_get("status_ts")?,
        problem_key: row.try_get("problem_key")?,
    })
}

fn deployment_from_row(row: &SqliteRow) -> Result<Deployment, StoreError> {
    Ok(Deployment {
        service: row.try_get("service")?,
        environment: row.try_get("environment")?,
        version: row.try_get("version")?,
        commit: row.try_get("commit_sha")?,
        url: row.try_get("url")?,
        pipeline: row.try_get("pipeline")?,
        runbook: row.try_get("runbook")?,
        deployed_at: from_millis(row.try_get("deployed_at")?)?,
    })
}

/// A job's `(dedupe_key, coalesce_key)` columns.
fn job_keys(job: &NewJob) -> (Option<&str>, Option<&str>) {
    match &job.key {
        JobKey::None => (None, None),
        JobKey::Once(key) => (Some(key.as_str()), None),
        JobKey::Coalesce(key) => (None, Some(key.as_str())),
    }
}

/// One statement adding `responders`; a recorded participant takes a more specific role.
fn responders_insert<'a>(
    id: IncidentId,
    responders: &'a [Responder],
    now: Timestamp,
) -> sqlx::QueryBuilder<'a, Sqlite> {
    let mut query = sqlx::QueryBuilder::new("INSERT INTO responders (incident_seq, user_id, role, added_at) ");
    query.push_values(responders, |mut row, responder| {
        row.push_bind(id.seq())
            .push_bind(responder.user.as_str())
            .push_bind(responder.role.as_str())
            .push_bind(millis(now));
    });
    query.push(
        " ON CONFLICT (incident_seq, user_id) DO UPDATE SET role = excluded.role \
         WHERE responders.role = 'participant' AND excluded.role <> 'participant'",
    );
    query
}

/// An open `BEGIN IMMEDIATE` transaction: our own, or a group commit's (see [`Store::grouped`]).
struct SqliteTx<'c> {
    tx: TxConn<'c>,
}

enum TxConn<'c> {
    /// Borrowed from the writer for this transaction alone (see [`Store::begin`]).
    Lease(Lease),
    Group(&'c mut SqliteConnection),
}

impl std::ops::Deref for TxConn<'_> {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        match self {
            Self::Lease(lease) => lease,
            Self::Group(conn) => conn,
        }
    }
}

impl std::ops::DerefMut for TxConn<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match self {
            Self::Lease(lease) => lease,
            Self::Group(conn) => conn,
        }
    }
}

#[async_trait]
impl StoreTx for SqliteTx<'_> {
    async fn linked_incident(&mut self, source: SourceKind, key: &ProblemKey) -> Result<Option<Incident>, StoreError> {
        let sql = format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents \
             WHERE seq = (SELECT incident_seq FROM incident_problems WHERE source = ? AND problem_key = ?)"
        );
        sqlx::query(&sql)
            .bind(source.as_str())
            .bind(key.as_str())
            .fetch_optional(&mut *self.tx)
            .await?
            .as_ref()
            .map(incident_from_row)
            .transpose()
    }

    async fn incident(&mut self, id: IncidentId) -> Result<Option<Incident>, StoreError> {
        fetch_incident(&mut *self.tx, id).await
    }

    async fn alerts(&mut self, id: IncidentId) -> Result<Vec<Alert>, StoreError> {
        fetch_alerts(&mut *self.tx, id).await
    }

    async fn linked_incidents(
        &mut self,
        keys: &[(SourceKind, &ProblemKey)],
    ) -> Result<Vec<((SourceKind, ProblemKey), Incident)>, StoreError> {
        let mut linked = Vec::new();
        // Two of SQLite's 32,766 parameters per key.
        for chunk in keys.chunks(1000) {
            let mut query = sqlx::QueryBuilder::<Sqlite>::new(
                "SELECT p.source AS link_source, p.problem_key AS link_key, i.* FROM incident_problems p \
                 JOIN incidents i ON i.seq = p.incident_seq WHERE (p.source, p.problem_key) IN (",
            );
            query.push_values(chunk, |mut row, (source, key)| {
                row.push_bind(source.as_str()).push_bind(key.as_str());
            });
            query.push(")");
            for row in query.build().fetch_all(&mut *self.tx).await? {
                let source: String = row.try_get("link_source")?;
                let key: String = row.try_get("link_key")?;
                let key = ProblemKey::new(&key).ok_or_else(|| StoreError::Corrupt("empty problem_key".to_owned()))?;
                linked.push(((parse("source", &source)?, key), incident_from_row(&row)?));
            }
        }
        Ok(linked)
    }

    async fn alerts_of(&mut self, ids: &[IncidentId]) -> Result<Vec<(IncidentId, Alert)>, StoreError> {
        let mut alerts = Vec::new();
        for chunk in ids.chunks(1000) {
            let mut query = sqlx::QueryBuilder::<Sqlite>::new("SELECT * FROM alerts WHERE incident_seq IN (");
            let mut list = query.separated(", ");
            for id in chunk {
                list.push_bind(id.seq());
            }
            query.push(") ORDER BY incident_seq, first_seen, fingerprint");
            for row in query.build().fetch_all(&mut *self.tx).await? {
                alerts.push((IncidentId::from_seq(row.try_get("incident_seq")?), alert_from_row(&row)?));
            }
        }
        Ok(alerts)
    }

    async fn insert_incident(&mut self, incident: &NewIncident, now: Timestamp) -> Result<IncidentId, StoreError> {
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO incidents (title, severity, service, status, source, problem_key, description, url, labels, \
             entities, opened_at, updated_at) VALUES (?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
        )
        .bind(&incident.title)
        .bind(incident.severity.as_str())
        .bind(&incident.service)
        .bind(incident.source.as_str())
        .bind(incident.problem_key.as_str())
        .bind(&incident.description)
        .bind(&incident.url)
        .bind(to_json(&incident.labels))
        .bind(to_json(&incident.entities))
        .bind(millis(incident.opened_at))
        .bind(millis(now))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(IncidentId::from_seq(seq))
    }

    async fn update_incident(&mut self, i: &Incident, now: Timestamp) -> Result<(), StoreError> {
        let result = sqlx::query(
            "UPDATE incidents SET title = ?, severity = ?, service = ?, status = ?, description = ?, url = ?, labels = ?, \
             entities = ?, acknowledged_at = ?, acknowledged_by = ?, resolved_at = ?, resolved_by = ?, summary = ?, \
             commander = ?, assignee = ?, channel_id = ?, channel_name = ?, ticket_key = ?, reopen_count = ?, updated_at = ? \
             WHERE seq = ?",
        )
        .bind(&i.title)
        .bind(i.severity.as_str())
        .bind(&i.service)
        .bind(i.status.as_str())
        .bind(&i.description)
        .bind(&i.url)
        .bind(to_json(&i.labels))
        .bind(to_json(&i.entities))
        .bind(i.acknowledged_at.map(millis))
        .bind(i.acknowledged_by.as_ref().map(ToString::to_string))
        .bind(i.resolved_at.map(millis))
        .bind(i.resolved_by.as_ref().map(ToString::to_string))
        .bind(&i.summary)
        .bind(&i.commander)
        .bind(&i.assignee)
        .bind(i.channel.as_ref().map(|c| c.id.clone()))
        .bind(i.channel.as_ref().map(|c| c.name.clone()))
        .bind(i.ticket.as_ref().map(|t| t.as_str().to_owned()))
        .bind(i64::from(i.reopen_count))
        .bind(millis(now))
        .bind(i.id.seq())
        .execute(&mut *self.tx)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn plan_war_room(
        &mut self,
        incident: IncidentId,
        round: u32,
        planned_name: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO war_rooms (incident_seq, round, planned_name, created_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (incident_seq, round) DO NOTHING",
        )
        .bind(incident.seq())
        .bind(i64::from(round))
        .bind(planned_name)
        .bind(millis(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn link_problem(
        &mut self,
        source: SourceKind,
        key: &ProblemKey,
        incident: IncidentId,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO incident_problems (source, problem_key, incident_seq, linked_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (source, problem_key) DO UPDATE SET incident_seq = excluded.incident_seq, linked_at = excluded.linked_at",
        )
        .bind(source.as_str())
        .bind(key.as_str())
        .bind(incident.seq())
        .bind(millis(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn upsert_alerts(&mut self, alerts: &[(IncidentId, &Alert)], now: Timestamp) -> Result<(), StoreError> {
        // One statement per chunk (each alert binds 10 of SQLite's 32,766 parameters). SQLite
        // inserts a statement's rows in order, so a later row for the same alert updates the
        // earlier one, as separate statements would.
        for chunk in alerts.chunks(1000) {
            let mut query = sqlx::QueryBuilder::<Sqlite>::new(
                "INSERT INTO alerts (incident_seq, fingerprint, status, summary, labels, starts_at, ends_at, url, first_seen, last_seen) ",
            );
            query.push_values(chunk, |mut row, (incident, alert)| {
                row.push_bind(incident.seq())
                    .push_bind(&alert.fingerprint)
                    .push_bind(alert.status.as_str())
                    .push_bind(&alert.summary)
                    .push_bind(to_json(&alert.labels))
                    .push_bind(alert.starts_at.map(millis))
                    .push_bind(alert.ends_at.map(millis))
                    .push_bind(&alert.url)
                    .push_bind(millis(now))
                    .push_bind(millis(now));
            });
            query.push(
                " ON CONFLICT (incident_seq, fingerprint) DO UPDATE SET status = excluded.status, summary = excluded.summary, \
                 labels = excluded.labels, starts_at = COALESCE(excluded.starts_at, alerts.starts_at), ends_at = excluded.ends_at, \
                 url = COALESCE(excluded.url, alerts.url), last_seen = excluded.last_seen",
            );
            query.build().execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    async fn record_deliveries(&mut self, deliveries: &[DeliveryRecord<'_>], now: Timestamp) -> Result<(), StoreError> {
        for chunk in deliveries.chunks(1000) {
            let mut query = sqlx::QueryBuilder::<Sqlite>::new(
                "INSERT INTO problems (source, problem_key, status, received_at, normalized, body, incident_seq, outcome) ",
            );
            query.push_values(chunk, |mut row, delivery| {
                row.push_bind(delivery.problem.source.as_str())
                    .push_bind(delivery.problem.key.as_str())
                    .push_bind(match delivery.problem.status {
                        crate::domain::ProblemStatus::Firing => "firing",
                        crate::domain::ProblemStatus::Resolved => "resolved",
                    })
                    .push_bind(millis(now))
                    .push_bind(to_json(delivery.problem))
                    .push_bind(delivery.body)
                    .push_bind(delivery.incident.map(IncidentId::seq))
                    .push_bind(delivery.outcome.as_str());
            });
            query.build().execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    async fn add_timeline_rows(&mut self, events: &[(IncidentId, &TimelineEvent)]) -> Result<(), StoreError> {
        for chunk in events.chunks(1000) {
            let mut query =
                sqlx::QueryBuilder::<Sqlite>::new("INSERT INTO timeline (incident_seq, at, kind, actor, text) ");
            query.push_values(chunk, |mut row, (incident, event)| {
                row.push_bind(incident.seq())
                    .push_bind(millis(event.at))
                    .push_bind(&event.kind)
                    .push_bind(event.actor.to_string())
                    .push_bind(&event.text);
            });
            query.build().execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    async fn enqueue(&mut self, job: &NewJob, now: Timestamp, deadline: Timestamp) -> Result<Enqueued, StoreError> {
        let (dedupe, coalesce) = job_keys(job);
        let result = sqlx::query(
            "INSERT INTO jobs (kind, incident_seq, payload, dedupe_key, coalesce_key, created_at, run_after, deadline) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(&job.kind)
        .bind(job.incident.map(IncidentId::seq))
        .bind(job.payload.to_string())
        .bind(dedupe)
        .bind(coalesce)
        .bind(millis(now))
        .bind(millis(job.run_after.unwrap_or(now)))
        .bind(millis(deadline))
        .execute(&mut *self.tx)
        .await?;
        Ok(if result.rows_affected() == 1 { Enqueued::Added } else { Enqueued::AlreadyThere })
    }

    async fn enqueue_all(&mut self, jobs: &[NewJob], now: Timestamp, deadline: Timestamp) -> Result<u64, StoreError> {
        let mut added = 0;
        // Eight of SQLite's 32,766 parameters per job.
        for chunk in jobs.chunks(1000) {
            let mut query = sqlx::QueryBuilder::<Sqlite>::new(
                "INSERT INTO jobs (kind, incident_seq, payload, dedupe_key, coalesce_key, created_at, run_after, deadline) ",
            );
            query.push_values(chunk, |mut row, job| {
                let (dedupe, coalesce) = job_keys(job);
                row.push_bind(&job.kind)
                    .push_bind(job.incident.map(IncidentId::seq))
                    .push_bind(job.payload.to_string())
                    .push_bind(dedupe)
                    .push_bind(coalesce)
                    .push_bind(millis(now))
                    .push_bind(millis(job.run_after.unwrap_or(now)))
                    .push_bind(millis(deadline));
            });
            query.push(" ON CONFLICT DO NOTHING");
            added += query.build().execute(&mut *self.tx).await?.rows_affected();
        }
        Ok(added)
    }

    async fn add_responders(
        &mut self,
        id: IncidentId,
        responders: &[Responder],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        if responders.is_empty() {
            return Ok(());
        }
        responders_insert(id, responders, now).build().execute(&mut *self.tx).await?;
        Ok(())
    }

    async fn create_run(&mut self, run: &RunbookRun) -> Result<Result<RunbookRun, RunbookRun>, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO runbook_runs (incident_seq, runbook, params, requested_by, automatic, state, requested_at, problem_key, summary) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING *",
        )
        .bind(run.incident.seq())
        .bind(&run.runbook)
        .bind(to_json(&run.params))
        .bind(&run.requested_by)
        .bind(i64::from(run.automatic))
        .bind(run.state.as_str())
        .bind(millis(run.requested_at))
        .bind(&run.problem_key)
        .bind(&run.summary)
        .fetch_optional(&mut *self.tx)
        .await?;
        if let Some(row) = inserted {
            return Ok(Ok(run_from_row(&row)?));
        }
        let active = sqlx::query(
            "SELECT * FROM runbook_runs WHERE incident_seq = ? AND runbook = ? AND state IN ('queued', 'running')",
        )
        .bind(run.incident.seq())
        .bind(&run.runbook)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(Err(run_from_row(&active)?))
    }

    async fn record_inbound(&mut self, source: &str, key: &str, now: Timestamp) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO inbound (source, dedupe_key, received_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(source)
        .bind(key)
        .bind(millis(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        match self.tx {
            TxConn::Lease(mut lease) => lease.commit().await?,
            // The group's writer commits once the whole group has run.
            TxConn::Group(_) => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store(dir: &tempfile::TempDir) -> SqliteStore {
        let url = format!("sqlite://{}", dir.path().join("warroom.db").display());
        SqliteStore::connect(&DatabaseSettings { url, synchronous: Synchronous::Full, max_connections: 2 })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn writes_waiting_together_are_each_stored_once_and_answered() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let keys: Vec<String> = (0..50).map(|i| format!("key-{}", i % 25)).collect();
        let writes = keys.iter().map(|key| store.record_inbound("test", key, Timestamp::now()));
        let added = futures::future::try_join_all(writes).await.unwrap();
        assert_eq!(added.iter().filter(|added| **added).count(), 25, "each key stored once: {added:?}");
        let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbound").fetch_one(&store.pool).await.unwrap();
        assert_eq!(stored, 25);
    }

    #[tokio::test]
    async fn a_write_that_breaks_a_constraint_fails_alone_and_its_neighbours_are_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let good = |key: &'static str| store.record_inbound("test", key, Timestamp::now());
        let bad = store.write(|conn| {
            Box::pin(async move {
                sqlx::query("INSERT INTO inbound (source, dedupe_key, received_at) VALUES ('test', NULL, 0)")
                    .execute(conn)
                    .await?;
                Ok(())
            })
        });
        let (before, bad, after) = tokio::join!(good("before"), bad, good("after"));
        assert!(before.unwrap() && after.unwrap());
        assert!(bad.is_err());
        assert_eq!(inbound_keys(&store).await, ["after", "before"]);
    }

    #[tokio::test]
    async fn a_write_that_fails_otherwise_abandons_its_batch_and_every_caller_hears_so() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let good = |key: &'static str| store.record_inbound("test", key, Timestamp::now());
        let bad = store.write(|conn| {
            Box::pin(async move {
                sqlx::query("INSERT INTO no_such_table VALUES (1)").execute(conn).await?;
                Ok(())
            })
        });
        let (before, bad, after) = tokio::join!(good("before"), bad, good("after"));
        assert!(before.is_err() && bad.is_err() && after.is_err(), "{before:?} {bad:?} {after:?}");
        assert!(inbound_keys(&store).await.is_empty(), "nothing of the batch was stored");
        assert!(good("later").await.unwrap(), "the writer goes on with the next batch");
    }

    #[tokio::test]
    async fn grouped_work_that_fails_keeps_none_of_its_changes_and_its_neighbours_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let failing = crate::store::grouped(&store, |tx| {
            Box::pin(async move {
                tx.record_inbound("test", "first-of-failing", Timestamp::now()).await?;
                tx.record_inbound("test", "second-of-failing", Timestamp::now()).await?;
                Err::<(), _>(StoreError::NotFound)
            })
        });
        let succeeding = crate::store::grouped(&store, |tx| {
            Box::pin(async move { tx.record_inbound("test", "grouped", Timestamp::now()).await })
        });
        let neighbour = store.record_inbound("test", "neighbour", Timestamp::now());
        let (failing, succeeding, neighbour) = tokio::join!(failing, succeeding, neighbour);
        assert!(matches!(failing, Err(StoreError::NotFound)), "{failing:?}");
        assert!(succeeding.unwrap() && neighbour.unwrap());
        assert_eq!(inbound_keys(&store).await, ["grouped", "neighbour"]);
    }

    #[tokio::test]
    async fn grouped_work_failing_behind_other_grouped_work_keeps_none_of_its_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        // The first all-or-nothing write of a batch runs without a savepoint; the second has one.
        let leading = crate::store::grouped(&store, |tx| {
            Box::pin(async move { tx.record_inbound("test", "leading", Timestamp::now()).await })
        });
        let failing = crate::store::grouped(&store, |tx| {
            Box::pin(async move {
                tx.record_inbound("test", "of-failing", Timestamp::now()).await?;
                Err::<(), _>(StoreError::NotFound)
            })
        });
        let neighbour = store.record_inbound("test", "neighbour", Timestamp::now());
        let (leading, failing, neighbour) = tokio::join!(leading, failing, neighbour);
        assert!(matches!(failing, Err(StoreError::NotFound)), "{failing:?}");
        assert!(leading.unwrap() && neighbour.unwrap());
        assert_eq!(inbound_keys(&store).await, ["leading", "neighbour"]);
    }

    #[tokio::test]
    async fn a_transaction_dropped_without_commit_keeps_nothing_and_writes_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let mut tx = store.begin().await.unwrap();
        assert!(tx.record_inbound("test", "uncommitted", Timestamp::now()).await.unwrap());
        drop(tx);
        assert!(store.record_inbound("test", "after", Timestamp::now()).await.unwrap());
        let mut tx = store.begin().await.unwrap();
        assert!(tx.record_inbound("test", "committed", Timestamp::now()).await.unwrap());
        tx.commit().await.unwrap();
        assert_eq!(inbound_keys(&store).await, ["after", "committed"]);
    }

    #[tokio::test]
    async fn writes_queued_before_a_transaction_are_committed_before_it_begins() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let queued = store.record_inbound("test", "queued", Timestamp::now());
        let seen = async {
            let mut tx = store.begin().await.unwrap();
            // Inside the transaction, on the same connection: the queued write is already there.
            let added = tx.record_inbound("test", "queued", Timestamp::now()).await.unwrap();
            tx.commit().await.unwrap();
            added
        };
        let (queued, added_again) = tokio::join!(queued, seen);
        assert!(queued.unwrap());
        assert!(!added_again, "the queued write went first");
    }

    #[tokio::test]
    async fn a_lease_whose_borrower_stopped_waiting_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let writer = store.writer().clone();
        // Asked for and abandoned at once: the writer lends it to nobody and must get it back.
        {
            let mut asked = std::pin::pin!(writer.lease());
            assert!(futures::poll!(asked.as_mut()).is_pending(), "asked, not yet lent");
        }
        let mut lease = writer.lease().await.unwrap();
        lease.begin_immediate().await.unwrap();
        sqlx::query("INSERT INTO inbound (source, dedupe_key, received_at) VALUES ('test', 'leased', 0)")
            .execute(&mut *lease)
            .await
            .unwrap();
        lease.commit().await.unwrap();
        drop(lease);
        assert!(store.record_inbound("test", "after", Timestamp::now()).await.unwrap());
        assert_eq!(inbound_keys(&store).await, ["after", "leased"]);
    }

    #[tokio::test]
    async fn a_channel_is_known_once_its_room_has_it_and_forgotten_when_the_room_moves() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let now = Timestamp::now();
        let mut tx = store.begin().await.unwrap();
        let problem = crate::domain::ProblemKey::new("key").unwrap();
        let new = NewIncident {
            title: "t".to_owned(),
            severity: crate::domain::Severity::Sev2,
            service: None,
            source: SourceKind::Generic,
            problem_key: problem,
            description: None,
            url: None,
            labels: BTreeMap::new(),
            entities: Vec::new(),
            opened_at: now,
        };
        let id = tx.insert_incident(&new, now).await.unwrap();
        tx.commit().await.unwrap();

        assert_eq!(store.incident_by_channel("C1").await.unwrap(), None);
        let mut room = WarRoom::new(id, 0);
        room.channel_id = Some("C1".to_owned());
        store.save_war_room(&room, now).await.unwrap();
        assert_eq!(store.incident_by_channel("C1").await.unwrap(), Some((id, 0)), "not remembered as unknown");
        room.channel_id = Some("C2".to_owned());
        store.save_war_room(&room, now).await.unwrap();
        assert_eq!(store.incident_by_channel("C1").await.unwrap(), None, "the room moved on");
        assert_eq!(store.incident_by_channel("C2").await.unwrap(), Some((id, 0)));
    }

    #[tokio::test]
    async fn a_borrower_cancelled_while_beginning_leaves_nothing_open_for_the_writes_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let mut lease = store.writer().lease().await.unwrap();
        {
            // Sent to the connection's thread, then given up on: SQLite still begins.
            let mut begin = std::pin::pin!(lease.begin_immediate());
            let _ = futures::poll!(begin.as_mut());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(lease);
        assert!(store.record_inbound("test", "after", Timestamp::now()).await.unwrap());
        let mut tx = store.begin().await.unwrap();
        assert!(tx.record_inbound("test", "in a transaction", Timestamp::now()).await.unwrap());
        tx.commit().await.unwrap();
        assert_eq!(inbound_keys(&store).await, ["after", "in a transaction"]);
    }

    async fn inbound_keys(store: &SqliteStore) -> Vec<String> {
        sqlx::query_scalar("SELECT dedupe_key FROM inbound ORDER BY dedupe_key").fetch_all(&store.pool).await.unwrap()
    }
}
