//! Group commit for the store's single writes (a capture, a job's claim or finish, a war room's
//! new message ts, …). With `synchronous = FULL` every commit waits for an fsync, and SQLite has
//! one writer; committing each write alone made the writer the bottleneck of everything, and the
//! job runner's bookkeeping alone took most of its fsyncs. So one task owns these writes: it takes
//! every write waiting at the time, runs them in one transaction, commits once and then answers
//! each caller. A caller still hears "done" only after the commit, so nothing is less durable
//! than before.
//!
//! A write runs even if its caller stops waiting, so a cancelled caller never leaves half a write.
//!
//! The task owns the one write connection outright, not through a pool: a pool pings a
//! connection each time it is handed back, and that round trip to the connection's thread, with
//! the hand-over, cost more than a group's own statements. Work that needs the connection for a
//! while (a [`crate::store::StoreTx`] from `begin`, the built-in desk) borrows it in turn with
//! [`Writer::lease`]; the lease hands it back when dropped, rolling back what it left open.

use std::any::Any;

use futures::future::BoxFuture;
use sqlx::{Connection, SqliteConnection};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, warn};

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

enum Request {
    Write(Queued),
    Lend(oneshot::Sender<Lease>),
}

/// Hands writes to the group-commit task. Cheap to clone; the task ends with the last handle.
#[derive(Debug, Clone)]
pub struct Writer {
    queue: mpsc::Sender<Request>,
}

impl Writer {
    /// Starts the task that owns `conn`, the one write connection.
    pub(super) fn start(conn: SqliteConnection) -> Self {
        let (queue, receiver) = mpsc::channel(1024);
        tokio::spawn(run(conn, receiver));
        Self { queue }
    }

    /// The write connection, once the writes queued before this call are committed. Every other
    /// write waits until the lease is dropped, so hold it briefly, and never wait on another write
    /// (or lease) while holding it. A transaction begun with [`Lease::begin_immediate`] and not
    /// committed is rolled back when the lease ends.
    pub async fn lease(&self) -> Result<Lease, StoreError> {
        let (lend, lent) = oneshot::channel();
        self.queue.send(Request::Lend(lend)).await.map_err(|_| stopped())?;
        lent.await.map_err(|_| stopped())
    }

    /// Runs `op` in the next group transaction and returns its value once that is committed.
    /// `op` must be one statement, or statements where a later one failing leaves the earlier
    /// ones without effect (see [`run_one`]); otherwise use [`Writer::write_atomic`].
    pub async fn write<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
    {
        self.submit(op, false).await
    }

    /// Like [`Writer::write`], for a write of any number of statements: under a savepoint, so
    /// when it fails none of its changes are stored.
    pub async fn write_atomic<T, F>(&self, op: F) -> Result<T, StoreError>
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
        self.queue.send(Request::Write(Queued { op, atomic, reply })).await.map_err(|_| stopped())?;
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

/// The write connection, lent out until the [`Lease`] is dropped.
pub struct Lease {
    conn: Option<SqliteConnection>,
    /// A transaction begun with [`Lease::begin_immediate`] is open.
    in_transaction: bool,
    back: Option<oneshot::Sender<Returned>>,
}

struct Returned {
    conn: SqliteConnection,
    in_transaction: bool,
}

impl Lease {
    /// Begins a write transaction that [`Lease::commit`] ends (or dropping the lease undoes).
    pub async fn begin_immediate(&mut self) -> Result<(), sqlx::Error> {
        // Marked first: a caller cancelled while BEGIN runs may leave it begun, and the writer
        // must then roll it back (a ROLLBACK with nothing open only fails harmlessly).
        self.in_transaction = true;
        sqlx::query("BEGIN IMMEDIATE").execute(&mut **self).await?;
        Ok(())
    }

    /// Commits the transaction [`Lease::begin_immediate`] began.
    pub async fn commit(&mut self) -> Result<(), sqlx::Error> {
        sqlx::query("COMMIT").execute(&mut **self).await?;
        self.in_transaction = false;
        Ok(())
    }
}

impl std::ops::Deref for Lease {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        self.conn.as_ref().expect("a lease holds its connection until dropped")
    }
}

impl std::ops::DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.conn.as_mut().expect("a lease holds its connection until dropped")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let (Some(conn), Some(back)) = (self.conn.take(), self.back.take()) {
            let _ = back.send(Returned { conn, in_transaction: self.in_transaction });
        }
    }
}

async fn run(mut conn: SqliteConnection, mut receiver: mpsc::Receiver<Request>) {
    while let Some(requests) = crate::batch::next_batch(&mut receiver, MAX_BATCH).await {
        let mut batch = Vec::with_capacity(requests.len());
        for request in requests {
            match request {
                Request::Write(queued) => batch.push(queued),
                Request::Lend(to) => {
                    // Writes queued before the lease go first, in their own commit.
                    if !batch.is_empty() {
                        commit(&mut conn, std::mem::take(&mut batch)).await;
                    }
                    let Some(back) = lend(conn, to).await else {
                        error!("the write connection was not handed back; the writer stops and every write now fails");
                        return;
                    };
                    conn = back;
                }
            }
        }
        if !batch.is_empty() {
            commit(&mut conn, batch).await;
        }
    }
}

/// Lends `conn` until the lease is dropped, which always hands it back (a borrower that stopped
/// waiting drops the lease unsent; a panicking or aborted one drops it while unwinding).
async fn lend(conn: SqliteConnection, to: oneshot::Sender<Lease>) -> Option<SqliteConnection> {
    let (back, returned) = oneshot::channel();
    let _ = to.send(Lease { conn: Some(conn), in_transaction: false, back: Some(back) });
    // The lease's drop always sends: only a sender dropped unsent (never, short of a bug) fails.
    let Returned { mut conn, in_transaction } = returned.await.ok()?;
    if in_transaction {
        // Begun and neither committed nor rolled back: the borrower failed or was cancelled.
        // SQLite refuses a ROLLBACK with no transaction open (a BEGIN that never ran): harmless.
        if let Err(error) = sqlx::query("ROLLBACK").execute(&mut conn).await {
            debug!(error = %error, "nothing to roll back after a borrower of the write connection");
        }
    }
    Some(conn)
}

/// One transaction for the batch; every caller is answered, whatever happens.
///
/// An all-or-nothing write goes first and without a savepoint (two round trips fewer): if it
/// fails, nothing else has run in the transaction yet, so the whole of it is rolled back, its
/// caller told, and the rest go in a fresh transaction. Order within a batch carries no meaning:
/// a caller's next write is only sent once this one is answered.
async fn commit(conn: &mut SqliteConnection, mut batch: Vec<Queued>) {
    loop {
        let lead = batch.iter().position(|q| q.atomic).map(|at| batch.remove(at));
        let mut tx = match conn.begin_with("BEGIN IMMEDIATE").await {
            Ok(tx) => tx,
            Err(error) => return fail_all(lead.into_iter().chain(batch).map(|q| q.reply), &error),
        };
        let mut answered = Vec::with_capacity(batch.len() + 1);
        if let Some(Queued { op, reply, .. }) = lead {
            match op(&mut tx).await {
                Ok(value) => answered.push((reply, Ok(value))),
                Err(error) => {
                    // A failed rollback leaves the connection to sqlx, which rolls back before its next use.
                    let _ = tx.rollback().await;
                    let _ = reply.send(Err(error));
                    if batch.is_empty() {
                        return;
                    }
                    continue;
                }
            }
        }
        return finish(tx, answered, batch).await;
    }
}

/// Runs the rest of a batch in `tx`, after what is `answered` already, and commits.
async fn finish(
    mut tx: sqlx::Transaction<'_, sqlx::Sqlite>,
    mut answered: Vec<(Reply, Result<Value, StoreError>)>,
    batch: Vec<Queued>,
) {
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
