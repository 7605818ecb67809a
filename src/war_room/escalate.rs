//! Escalation: if nobody acknowledged an incident within `oncall.escalate_after`, the next level
//! (the rotation's next person, PagerDuty's level 2, or the fallback group) is invited and
//! mentioned, and the timeline records it.

use tracing::info;

use super::WarRoomJobs;
use crate::domain::war_room::{Responder, Role};
use crate::domain::{Actor, IncidentId, IncidentStatus, TimelineEvent};
use crate::jobs::runner::JobError;
use crate::oncall::{PersonRef, Service};
use crate::slack::blocks;

impl WarRoomJobs {
    pub(super) async fn escalate(&self, id: IncidentId) -> Result<(), JobError> {
        let incident = self.incident(id).await?;
        if incident.acknowledged_at.is_some() || incident.status == IncidentStatus::Resolved {
            return Ok(());
        }
        let Ok((room, channel)) = self.current_room(&incident).await else {
            return Ok(());
        };
        let slack = self.slack()?;
        let service = Service { name: incident.service.as_deref(), labels: &incident.labels };
        let answer =
            self.oncall.on_call(service, self.clock.now()).await.map_err(|e| JobError::retry(e.to_string()))?;
        let mut people = Vec::new();
        for person in &answer.escalation {
            match person {
                PersonRef::SlackId(user) => people.push(user.clone()),
                PersonRef::Email(email) => people.extend(slack.user_by_email(email).await?),
            }
        }
        let mut mentions: Vec<String> = people.iter().map(|u| format!("<@{u}>")).collect();
        if people.is_empty()
            && let Some(group) = &answer.lead_group
        {
            people.extend(slack.usergroup_members(group).await?);
            mentions.push(format!("<!subteam^{group}>"));
        }
        if people.is_empty() {
            mentions.push("<!here>".to_owned());
        } else {
            slack.invite(&channel, &people).await?;
            let responders: Vec<Responder> =
                people.iter().map(|u| Responder { user: u.clone(), role: Role::OnCall }).collect();
            self.store.add_responders(id, &responders, self.clock.now()).await?;
        }
        let minutes = self.settings.oncall.escalate_after.as_deref().unwrap_or("the configured time");
        let text = format!(
            ":rotating_light: {} nobody has acknowledged {id} ({}) within {minutes}: please take a look, and press Acknowledge when you do.",
            mentions.join(" "),
            blocks::escape(&incident.title)
        );
        let rendered = blocks::update_markup(&text);
        let value = serde_json::to_value(&rendered.blocks).unwrap_or_default();
        slack.post_message(&channel, &rendered.text, Some(&value), None).await?;
        let mut tx = self.store.begin().await?;
        let event = TimelineEvent::new(
            self.clock.now(),
            "escalated",
            Actor::Warroom,
            format!("not acknowledged in time: paged {}", mentions.join(", ")),
        );
        tx.add_timeline(id, &[event]).await?;
        tx.commit().await?;
        info!(incident.id = %id, slack.channel = %channel, round = room.round, "escalated {id}: nobody acknowledged in time");
        Ok(())
    }
}
