//! Group commit for deliveries. With `synchronous = FULL` every commit waits for an fsync, and
//! SQLite has one writer, so one transaction per delivery caps throughput at one fsync each.
//! Deliveries that arrive while a batch is being stored wait here and go as the next batch: one
//! all-or-nothing write in the store's group commit ([`crate::store::Store::grouped`]), sharing
//! its transaction and fsync with whatever else is being written. Each caller is answered only
//! after that commit, so a 2xx still means "on disk".

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use super::Services;
use super::correlate::{self, Ingested};
use crate::domain::Problem;
use crate::store::StoreError;

/// How many deliveries one transaction may carry.
const MAX_BATCH: usize = 64;

struct Pending {
    problem: Problem,
    body: Bytes,
    reply: oneshot::Sender<Result<Ingested, StoreError>>,
}

/// Submits deliveries to the group-commit writer task. Cheap to clone; the task ends when the
/// last handle is dropped.
#[derive(Clone)]
pub struct Ingester {
    queue: mpsc::Sender<Pending>,
}

impl Ingester {
    /// Starts the writer task.
    #[must_use]
    pub fn start(services: Services) -> Self {
        let (queue, receiver) = mpsc::channel(1024);
        tokio::spawn(write_batches(services, receiver));
        Self { queue }
    }

    /// Stores a delivery (with whatever else is waiting) and returns what it meant.
    pub async fn ingest(&self, problem: Problem, body: Bytes) -> Result<Ingested, StoreError> {
        let (reply, answer) = oneshot::channel();
        let unavailable = || StoreError::Unavailable(sqlx::Error::Protocol("the delivery writer stopped".to_owned()));
        self.queue.send(Pending { problem, body, reply }).await.map_err(|_| unavailable())?;
        answer.await.map_err(|_| unavailable())?
    }
}

async fn write_batches(services: Services, mut receiver: mpsc::Receiver<Pending>) {
    while let Some(batch) = crate::batch::next_batch(&mut receiver, MAX_BATCH).await {
        match write(&services, &batch).await {
            Ok(results) => {
                for (pending, (ingested, jobs_added)) in batch.into_iter().zip(results) {
                    correlate::after_commit(&services, &pending.problem, ingested, jobs_added).await;
                    let _ = pending.reply.send(Ok(ingested));
                }
            }
            Err(error) => {
                // One bad delivery must not fail the others: store each alone, so only the one
                // that fails gets an error, and 503 only when the database itself is down.
                warn!(error = %error, deliveries = batch.len(), "a group commit failed; storing its deliveries one by one");
                for pending in batch {
                    let result = correlate::ingest(&services, &pending.problem, &pending.body).await;
                    let _ = pending.reply.send(result);
                }
            }
        }
    }
}

/// The whole batch as one group-commit write (see [`crate::store::Store::grouped`]): all stored,
/// or none, in the same transaction and fsync as whatever else is being written.
async fn write(services: &Services, batch: &[Pending]) -> Result<Vec<(Ingested, bool)>, StoreError> {
    let deliveries: Vec<(Problem, Bytes)> = batch.iter().map(|p| (p.problem.clone(), p.body.clone())).collect();
    let shared = services.clone();
    crate::store::grouped(services.store.as_ref(), move |tx| {
        Box::pin(async move {
            let deliveries: Vec<(&Problem, &[u8])> = deliveries.iter().map(|(p, b)| (p, b.as_ref())).collect();
            correlate::apply_all(&shared, &mut *tx, &deliveries).await
        })
    })
    .await
}
