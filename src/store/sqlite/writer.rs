//! Group commit for the store's single writes (a capture, a job's claim or finish, a war room's
//! new message ts, …). With `synchronous = FULL` every commit waits for an fsync, and SQLite has
//! one writer; committing each write alone made the writer the bottleneck of everything, and the
//! job runner's bookkeeping alone took most of its fsyncs. So one task owns these writes: it takes
//! every write waiting at the time, runs them in one transaction, commits once and then answers
//! each caller. A caller still hears "done" only after the commit, so nothing is less durable
//! than before.
//!
//! A write runs even if its caller stops waiting, so a cancelled caller never leaves half a write.

use std::any::Any;

use futures::future::BoxFuture;
use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use crate::store::StoreError;

/// How many writes one transaction may carry.
const MAX_BATCH: usize = 128;

type Value = Box<dyn Any + Send>;
type Reply = oneshot::Sender<Result<Value, StoreError>>;
type Op = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<Value, StoreError>> + Send>;

struct Queued {
    op: Op,
    /// Under its own savepoint: a write of several statements that must be all or nothing.
    atomic: bool,
    reply: Reply,
}

/// Hands writes to the group-commit task. Cheap to clone; the task ends with the last handle.
#[derive(Debug, Clone)]
pub(super) struct Writer {
    queue: mpsc::Sender<Queued>,
}

impl Writer {
    /// Starts the task that commits writes on `pool`'s connection.
    pub(super) fn start(pool: SqlitePool) -> Self {
        let (queue, receiver) = mpsc::channel(1024);
        tokio::spawn(run(pool, receiver));
        Self { queue }
    }

    /// Runs `op` in the next group transaction and returns its value once that is committed.
    /// `op` must be one statement, or statements where a later one failing leaves the earlier
    /// ones without effect (see [`run_one`]); otherwise use [`Writer::write_atomic`].
    pub(super) async fn write<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
    {
        self.submit(op, false).await
    }

    /// Like [`Writer::write`], for a write of any number of statements: under a savepoint, so
    /// when it fails none of its changes are stored.
    pub(super) async fn write_atomic<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
    {
        self.submit(op, true).await
    }

    async fn submit<T, F>(&self, op: F, atomic: bool) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let op: Op =
            Box::new(move |conn| Box::pin(async move { op(conn).await.map(|value| Box::new(value) as Value) }));
        self.queue.send(Queued { op, atomic, reply }).await.map_err(|_| stopped())?;
        let value = answer.await.map_err(|_| stopped())??;
        value
            .downcast::<T>()
            .map(|value| *value)
            .map_err(|_| StoreError::Corrupt("a write returned the wrong type".into()))
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable(sqlx::Error::Protocol("the database writer stopped".to_owned()))
}

async fn run(pool: SqlitePool, mut receiver: mpsc::Receiver<Queued>) {
    while let Some(batch) = crate::batch::next_batch(&mut receiver, MAX_BATCH).await {
        commit(&pool, batch).await;
    }
}

/// One transaction for the batch; every caller is answered, whatever happens.
async fn commit(pool: &SqlitePool, batch: Vec<Queued>) {
    let mut tx = match pool.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(error) => return fail_all(batch.into_iter().map(|q| q.reply), &error),
    };
    let mut answered = Vec::with_capacity(batch.len());
    let mut waiting = batch.into_iter();
    while let Some(Queued { op, atomic, reply }) = waiting.next() {
        let result = if atomic { run_atomic(&mut tx, op).await } else { run_one(&mut tx, op).await };
        match result {
            Ok(result) => answered.push((reply, result)),
            Err(error) => {
                // Those that ran, this one and those that never ran: nothing of theirs is kept.
                let replies =
                    answered.into_iter().map(|(reply, _)| reply).chain([reply]).chain(waiting.map(|q| q.reply));
                warn!(error = %error, "a group commit failed; its writes are rolled back");
                // A failed rollback leaves the connection to sqlx, which rolls back before its next use.
                let _ = tx.rollback().await;
                return fail_all(replies, &error);
            }
        }
    }
    match tx.commit().await {
        Ok(()) => {
            for (reply, result) in answered {
                let _ = reply.send(result);
            }
        }
        Err(error) => {
            warn!(error = %error, writes = answered.len(), "a group commit failed; its writes are rolled back");
            fail_all(answered.into_iter().map(|(reply, _)| reply), &error);
        }
    }
}

/// Runs one write. `Ok` carries the write's own answer; `Err` means the transaction cannot go
/// on, so the batch must not commit.
///
/// No savepoint per write: that is two more round trips to the database thread per write, which
/// cost more than the fsyncs the grouping saves. SQLite undoes a statement that breaks a
/// constraint and keeps the transaction, so such a failure is that write's answer alone (every
/// write is one statement, or statements where a later one failing leaves the earlier ones
/// without effect). Any other failure may have rolled the whole transaction back: the batch is
/// abandoned and every caller told, so nothing is half-stored and nothing runs outside it.
async fn run_one(conn: &mut SqliteConnection, op: Op) -> Result<Result<Value, StoreError>, sqlx::Error> {
    match op(&mut *conn).await {
        Err(StoreError::Unavailable(error)) if !statement_only(&error) => Err(error),
        result => Ok(result),
    }
}

/// Runs one write under a savepoint; when it fails, its changes are undone and the transaction
/// goes on. `Err` means the transaction itself was lost.
async fn run_atomic(conn: &mut SqliteConnection, op: Op) -> Result<Result<Value, StoreError>, sqlx::Error> {
    sqlx::query("SAVEPOINT atomic_write").execute(&mut *conn).await?;
    let result = op(&mut *conn).await;
    if result.is_err() {
        sqlx::query("ROLLBACK TO atomic_write").execute(&mut *conn).await?;
    }
    sqlx::query("RELEASE atomic_write").execute(&mut *conn).await?;
    Ok(result)
}

/// Whether SQLite undid only the failing statement (a constraint), leaving the transaction open.
fn statement_only(error: &sqlx::Error) -> bool {
    use sqlx::error::ErrorKind;
    matches!(error, sqlx::Error::Database(e) if matches!(e.kind(), ErrorKind::UniqueViolation | ErrorKind::ForeignKeyViolation | ErrorKind::NotNullViolation | ErrorKind::CheckViolation))
}

fn fail_all(replies: impl IntoIterator<Item = Reply>, error: &sqlx::Error) {
    for reply in replies {
        let _ = reply
            .send(Err(StoreError::Unavailable(sqlx::Error::Protocol(format!("the write was not stored: {error}")))));
    }
}
