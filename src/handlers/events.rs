//! Events from the chat surface that change an incident's record.

use super::Services;
use crate::domain::transcript::{Capture, Origin};
use crate::domain::war_room::{Responder, Role};
use crate::domain::{Actor, TimelineEvent};
use crate::store::StoreError;

/// Someone joined an incident channel: a responder, on the timeline once (redeliveries of the
/// same `event_id` are no-ops).
pub async fn member_joined(services: &Services, event_id: &str, channel: &str, user: &str) -> Result<(), StoreError> {
    let Some((id, _)) = services.store.incident_by_channel(channel).await? else {
        return Ok(());
    };
    let now = services.clock.now();
    let mut tx = services.store.begin().await?;
    if !tx.record_inbound("slack:event", event_id, now).await? {
        return Ok(());
    }
    let event =
        TimelineEvent::new(now, "joined", Actor::User(user.to_owned()), format!("<@{user}> joined the channel"));
    tx.add_timeline(id, &[event]).await?;
    tx.add_responders(id, &[Responder { user: user.to_owned(), role: Role::Participant }], now).await?;
    tx.commit().await
}

/// A transcript change in `channel`, if it is an incident channel.
pub async fn capture(services: &Services, channel: &str, change: &Capture) -> Result<(), StoreError> {
    let Some((id, _)) = services.store.incident_by_channel(channel).await? else {
        return Ok(());
    };
    services.store.capture(id, change, Origin::Live, services.clock.now()).await
}
