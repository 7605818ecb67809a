//! Opening, reopening and resolving a war room.

use std::collections::BTreeSet;

use tracing::info;

use super::{WarRoomJobs, text_of};
use crate::domain::incident::ChannelRef;
use crate::domain::war_room::{ChannelName, Responder, Role, WarRoom};
use crate::domain::{Incident, IncidentId};
use crate::jobs::runner::JobError;
use crate::jobs::{self};
use crate::oncall::{PersonRef, Service};
use crate::slack::blocks;
use crate::slack::client::SlackError;

/// People to invite, and why some could not be.
#[derive(Debug, Default)]
struct People {
    wanted: Vec<(String, Role)>,
    problems: Vec<String>,
    /// Things the channel should know (the on-call came from a fallback).
    notices: Vec<String>,
}

/// How many names are tried when Slack answers `name_taken`.
const NAME_ATTEMPTS: u32 = 10;

impl WarRoomJobs {
    /// Channel and ticket (concurrently), then invites, topic and the context message
    /// (concurrently), then the pin: three sequential Slack round trips.
    pub(super) async fn open(&self, id: IncidentId, round: u32, retry: bool) -> Result<(), JobError> {
        let incident = self.incident(id).await?;
        let (room, ticket, people) = tokio::join!(
            self.ensure_channel(&incident, round),
            self.ensure_ticket(&incident),
            self.people_to_invite(&incident, round),
        );
        // `room` is as stored: jobs of one incident run one at a time, and only they save it.
        let (mut room, ticket, people) = (room?, ticket?, people?);
        let incident = Incident { ticket: Some(ticket), ..self.incident(id).await? };
        let channel = room.channel_id.clone().unwrap_or_default();
        let wanted_topic = blocks::topic(&incident, incident.ticket.as_ref().map(|k| k.as_str()));
        let on_call: Vec<String> =
            people.wanted.iter().filter(|(_, role)| *role == Role::OnCall).map(|(user, _)| user.clone()).collect();

        let (invites, topic, context) = tokio::join!(
            self.invite_responders(&incident, &room, people),
            self.slack()?.set_topic(&channel, &wanted_topic),
            self.post_context(&incident, &room, &on_call, retry),
        );
        // Record what was made before anything can fail the job: a retry must find the
        // context message, not post a second one.
        let context_ts = context?;
        let topic_set = topic.map(|()| wanted_topic);
        room.context_ts = Some(context_ts.clone());
        room.topic = topic_set.as_ref().ok().cloned();
        let pin = async {
            invites?;
            topic_set?;
            self.slack()?.pin(&channel, &context_ts).await.map_err(JobError::from)
        };
        // Saved whatever else fails; the pin need not wait for it (a retry finds the message in
        // the channel's history, and pinning it again is a no-op).
        let (saved, pinned) = tokio::join!(self.store.save_war_room(&room, self.clock.now()), pin);
        saved?;
        pinned?;
        if let Some(key) = &incident.ticket {
            let name = room.channel_name.clone().unwrap_or_default();
            let url = format!("https://slack.com/app_redirect?channel={channel}");
            if let Err(e) = self.desk.link_channel(key, &format!("Slack #{name}"), &url).await {
                tracing::warn!(incident.id = %id, error = %e, "could not link the channel from ticket {key}");
            }
        }
        if let Some(after) =
            self.settings.oncall.escalate_after.as_deref().and_then(|d| crate::config::parse_duration(d).ok())
            && incident.acknowledged_at.is_none()
        {
            let at = self
                .clock
                .now()
                .checked_add(jiff::SignedDuration::try_from(after).unwrap_or(jiff::SignedDuration::MAX))
                .unwrap_or(jiff::Timestamp::MAX);
            self.enqueue(&jobs::new::escalate(id, round, at)).await?;
        }
        info!(incident.id = %id, slack.channel = %channel, "war room of {id} is ready in #{}", room.channel_name.unwrap_or_default());
        Ok(())
    }

    /// Creates the channel of `round`, or finds the one an earlier attempt created.
    async fn ensure_channel(&self, incident: &Incident, round: u32) -> Result<WarRoom, JobError> {
        let slack = self.slack()?;
        let mut room =
            self.store.war_room(incident.id, round).await?.unwrap_or_else(|| WarRoom::new(incident.id, round));
        if room.channel_id.is_some() {
            return Ok(room);
        }
        let base = self.base_name(incident, round).await?;
        let mut name =
            room.planned_name.as_deref().and_then(|n| ChannelName::parse(n).ok()).unwrap_or_else(|| base.clone());
        for attempt in 0..NAME_ATTEMPTS {
            let planned = Some(name.as_str().to_owned());
            // Remembered before the channel is created, so a retry after a failure in between
            // asks for the same name (even if the title the base name came from changed) and
            // adopts the channel. A retry that already remembered it needs no write.
            if room.planned_name != planned {
                room.planned_name = planned;
                self.store.save_war_room(&room, self.clock.now()).await?;
            }
            match slack.create_channel(name.as_str(), self.settings.slack.private_channels).await {
                Ok(channel) => return self.record_channel(room, channel.id, channel.name).await,
                Err(SlackError::Api { code, .. }) if code == "name_taken" => {
                    if let Some(adopted) = self.adopt_earlier_channel(name.as_str()).await? {
                        info!(incident.id = %incident.id, slack.channel = %adopted.0, "found the channel an earlier attempt created");
                        return self.record_channel(room, adopted.0, adopted.1).await;
                    }
                    name = base.with_suffix(&(attempt + 2).to_string());
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(JobError::retry(format!("no free channel name after {NAME_ATTEMPTS} tries starting at #{base}")))
    }

    /// The name before suffixes: the template for round 0, the first channel's name + `-r<k>`.
    async fn base_name(&self, incident: &Incident, round: u32) -> Result<ChannelName, JobError> {
        let first =
            ChannelName::for_incident(&self.settings.slack.channel_name, incident.id, incident.channel_subject());
        if round == 0 {
            return Ok(first);
        }
        let first = self
            .store
            .war_room(incident.id, 0)
            .await?
            .and_then(|r| r.channel_name)
            .and_then(|n| ChannelName::parse(&n).ok())
            .unwrap_or(first);
        Ok(first.with_suffix(&format!("r{round}")))
    }

    /// A channel named `name` that this bot created and that is still open is ours: an earlier
    /// attempt created it and crashed before recording it.
    async fn adopt_earlier_channel(&self, name: &str) -> Result<Option<(String, String)>, JobError> {
        let bot = self.identity().await?.user_id.clone();
        let Some((channel, raw)) = self.slack()?.find_channel(name).await? else {
            return Ok(None);
        };
        let ours = text_of(&raw, "creator") == Some(bot.as_str()) && raw["is_archived"].as_bool() != Some(true);
        let known = self.store.incident_by_channel(&channel.id).await?.is_some();
        Ok((ours && !known).then_some((channel.id, channel.name)))
    }

    async fn record_channel(&self, mut room: WarRoom, id: String, name: String) -> Result<WarRoom, JobError> {
        room.channel_id = Some(id.clone());
        room.channel_name = Some(name.clone());
        // Together, so they share one group commit.
        let (now, channel) = (self.clock.now(), ChannelRef { id, name });
        tokio::try_join!(
            self.store.save_war_room(&room, now),
            self.store.set_incident_channel(room.incident, &channel)
        )?;
        Ok(room)
    }

    /// Posts the context message unless an earlier attempt did; returns its ts.
    async fn post_context(
        &self,
        incident: &Incident,
        room: &WarRoom,
        on_call: &[String],
        retry: bool,
    ) -> Result<String, JobError> {
        if let Some(ts) = &room.context_ts {
            return Ok(ts.clone());
        }
        let slack = self.slack()?;
        let channel = room.channel_id.clone().unwrap_or_default();
        let rendered = self.render_context_with(incident, room, Some(on_call)).await?;
        let bot = self.identity().await?.user_id.clone();
        let recent = if retry { slack.history(&channel, 20).await? } else { Vec::new() };
        let earlier = recent.into_iter().find(|m| {
            text_of(m, "user") == Some(bot.as_str())
                && text_of(m, "text") == Some(rendered.text.as_str())
                && m.get("blocks").is_some()
        });
        if let Some(ts) = earlier.as_ref().and_then(|m| text_of(m, "ts")) {
            return Ok(ts.to_owned());
        }
        let blocks = serde_json::to_value(&rendered.blocks).unwrap_or_default();
        Ok(slack.post_message(&channel, &rendered.text, Some(&blocks), None).await?)
    }

    /// Who to invite: the routed team's on-call and lead group (round 0), or everyone who
    /// responded before (a reopened incident); plus what could not be resolved.
    async fn people_to_invite(&self, incident: &Incident, round: u32) -> Result<People, JobError> {
        let slack = self.slack()?;
        let mut people = People::default();
        if round > 0 {
            people.wanted.extend(self.store.responders(incident.id).await?.into_iter().map(|r| (r.user, r.role)));
        } else {
            let service = Service { name: incident.service.as_deref(), labels: &incident.labels };
            match self.oncall.on_call(service, self.clock.now()).await {
                Ok(answer) => {
                    if let Some(reason) = &answer.fallback {
                        people.notices.push(format!(
                            ":information_source: On-call provider unavailable: {}",
                            blocks::escape(reason)
                        ));
                    }
                    for person in &answer.primary {
                        match person {
                            PersonRef::SlackId(id) => people.wanted.push((id.clone(), Role::OnCall)),
                            PersonRef::Email(email) => match slack.user_by_email(email).await? {
                                Some(id) => people.wanted.push((id, Role::OnCall)),
                                None => people
                                    .problems
                                    .push(format!("{} (no Slack user has this email)", blocks::escape(email))),
                            },
                        }
                    }
                    if let Some(group) = &answer.lead_group {
                        match slack.usergroup_members(group).await {
                            Ok(members) => people.wanted.extend(members.into_iter().map(|m| (m, Role::Lead))),
                            Err(e) => people.problems.push(format!("incident-lead group {group} ({})", e.cause())),
                        }
                    }
                }
                Err(e) => people
                    .problems
                    .push(format!("the on-call ({}); invite people by hand", blocks::escape(&e.to_string()))),
            }
            // Whoever declared the incident by hand is its commander and joins too.
            people.wanted.extend(self.store.responders(incident.id).await?.into_iter().map(|r| (r.user, r.role)));
        }
        let bot = self.identity().await?.user_id.clone();
        let mut seen = BTreeSet::new();
        people.wanted.retain(|(user, _)| *user != bot && seen.insert(user.clone()));
        Ok(people)
    }

    /// Invites `people` (in chunks, forced, so one bad user blocks nobody) and reports in the
    /// channel whoever could not be invited.
    async fn invite_responders(&self, incident: &Incident, room: &WarRoom, people: People) -> Result<(), JobError> {
        let slack = self.slack()?;
        let channel = room.channel_id.clone().unwrap_or_default();
        let People { wanted, mut problems, notices } = people;
        for (n, notice) in notices.iter().enumerate() {
            let mut job = jobs::new::post_markup(incident.id, notice, false);
            job.key = jobs::JobKey::Once(format!("oncall-notice:{}:{}:{n}", incident.id, room.round));
            self.enqueue(&job).await?;
        }
        let users: Vec<String> = wanted.iter().map(|(u, _)| u.clone()).collect();
        let report = if users.is_empty() { Default::default() } else { slack.invite(&channel, &users).await? };
        let joined: Vec<Responder> = wanted
            .iter()
            .filter(|(u, _)| report.invited.contains(u) || report.already_in.contains(u))
            .map(|(user, role)| Responder { user: user.clone(), role: *role })
            .collect();
        self.store.add_responders(incident.id, &joined, self.clock.now()).await?;
        problems.extend(report.failed.iter().map(|(user, code)| format!("<@{user}> ({code})")));
        if !problems.is_empty() {
            let text = format!(":warning: Could not invite: {}", problems.join(", "));
            let mut job = jobs::new::post_markup(incident.id, &text, false);
            job.key = jobs::JobKey::Once(format!("invite-problems:{}:{}", incident.id, room.round));
            self.enqueue(&job).await?;
        }
        info!(incident.id = %incident.id, responders.count = joined.len(), "invited {} responders to {}", joined.len(), incident.id);
        Ok(())
    }

    /// A reopened incident: a new `-r<k>` channel linked to the archived one, the ticket
    /// reopened, the same responders invited.
    pub(super) async fn reopen(&self, id: IncidentId, round: u32, retry: bool) -> Result<(), JobError> {
        let incident = self.incident(id).await?;
        let room = self.ensure_channel(&incident, round).await?;
        let channel = room.channel_id.clone().unwrap_or_default();
        if let Some(key) = &incident.ticket {
            self.desk.reopen(key).await?;
        }
        let previous = self.store.war_room(id, round.saturating_sub(1)).await?.and_then(|r| r.channel_id);
        let slack = self.slack()?;
        if room.context_ts.is_none()
            && let Some(previous) = &previous
        {
            let intro = blocks::reopened_intro(&incident, previous);
            let bot = self.identity().await?.user_id.clone();
            let recent = if retry { slack.history(&channel, 20).await? } else { Vec::new() };
            let already = recent
                .iter()
                .any(|m| text_of(m, "user") == Some(bot.as_str()) && text_of(m, "text") == Some(intro.text.as_str()));
            if !already {
                let blocks = serde_json::to_value(&intro.blocks).unwrap_or_default();
                slack.post_message(&channel, &intro.text, Some(&blocks), None).await?;
                let link = format!("https://slack.com/app_redirect?channel={previous}");
                if let Err(e) = slack.bookmark(&channel, "Earlier channel", &link).await {
                    tracing::warn!(error = %e, "could not bookmark the earlier channel");
                }
            }
        }
        self.open(id, round, retry).await
    }
}
