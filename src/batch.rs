//! Taking work in batches from a queue, for the group commits.

use tokio::sync::mpsc;

/// Waits for the next item, then takes whatever else is already waiting, up to `max` in all.
/// `None` once every sender is gone and the queue is empty.
pub async fn next_batch<T>(receiver: &mut mpsc::Receiver<T>, max: usize) -> Option<Vec<T>> {
    let first = receiver.recv().await?;
    let mut batch = vec![first];
    while batch.len() < max {
        match receiver.try_recv() {
            Ok(next) => batch.push(next),
            Err(_) => break,
        }
    }
    Some(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_batch_takes_what_is_waiting_up_to_the_limit_and_ends_with_the_senders() {
        let (sender, mut receiver) = mpsc::channel(10);
        for i in 0..5 {
            sender.send(i).await.unwrap();
        }
        drop(sender);
        assert_eq!(next_batch(&mut receiver, 3).await, Some(vec![0, 1, 2]));
        assert_eq!(next_batch(&mut receiver, 3).await, Some(vec![3, 4]));
        assert_eq!(next_batch(&mut receiver, 3).await, None);
    }
}
