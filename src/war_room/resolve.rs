//! Resolution, one job per step: the summary in the channel; the transcript (gaps backfilled,
//! rendered, attached to the ticket and kept for the API); the ticket commented and closed; the
//! channel archived. Each step records what it did, so a retry resumes where an attempt stopped.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use tracing::info;

use super::{WarRoomJobs, text_of};
use crate::domain::IncidentId;
use crate::domain::transcript::{Capture, EntryKind, Origin, TranscriptLine};
use crate::domain::war_room::WarRoom;
use crate::jobs::runner::JobError;
use crate::slack::blocks;
use crate::slack::capture::{capture_of, slack_ts};
use crate::transcript::redact::redact;
use crate::transcript::render::{self, Format};

impl WarRoomJobs {
    async fn room(&self, id: IncidentId, round: u32) -> Result<(WarRoom, String), JobError> {
        let room = self
            .store
            .war_room(id, round)
            .await?
            .ok_or_else(|| JobError::Permanent(format!("{id} has no war room")))?;
        let channel = room.channel_id.clone().ok_or_else(|| JobError::retry(format!("{id} has no channel yet")))?;
        Ok((room, channel))
    }

    /// Posts the resolution summary (duration, who acknowledged, notes) once.
    pub(super) async fn post_summary(&self, id: IncidentId, round: u32, retry: bool) -> Result<(), JobError> {
        let incident = self.incident(id).await?;
        let (mut room, channel) = self.room(id, round).await?;
        if room.summary_ts.is_some() || room.archived {
            return Ok(());
        }
        let notes: Vec<_> = self.store.timeline(id).await?.into_iter().filter(|e| e.kind == "note").collect();
        let summary = blocks::resolution_summary(&incident, &notes);
        let slack = self.slack()?;
        if retry && self.already_posted_rendered(&channel, &summary.text).await? {
            return Ok(());
        }
        let blocks = serde_json::to_value(&summary.blocks).unwrap_or_default();
        let ts = slack.post_message(&channel, &summary.text, Some(&blocks), None).await?;
        room.summary_ts = Some(ts);
        self.store.save_war_room(&room, self.clock.now()).await?;
        Ok(())
    }

    async fn already_posted_rendered(&self, channel: &str, text: &str) -> Result<bool, JobError> {
        let bot = self.identity().await?.user_id.clone();
        let recent = self.slack()?.history(channel, 20).await?;
        Ok(recent.iter().any(|m| text_of(m, "user") == Some(bot.as_str()) && text_of(m, "text") == Some(text)))
    }

    /// Backfills the recorded gaps, renders the transcript of every channel of the incident,
    /// keeps it for the API and attaches it to the ticket (replacing an earlier one by name).
    pub(super) async fn attach_transcript(&self, id: IncidentId) -> Result<(), JobError> {
        let incident = self.incident(id).await?;
        let rooms = self.store.war_rooms(id).await?;
        let now = self.clock.now();
        let gaps = self.store.gaps(incident.opened_at, now).await?;
        for room in &rooms {
            if let Some(channel) = &room.channel_id {
                for (from, to) in &gaps {
                    self.backfill(id, channel, *from, *to).await?;
                }
            }
        }
        let lines = self.store.transcript_lines(id).await?;
        let names = self.display_names(&lines).await;
        let channels: Vec<render::Channel> = rooms
            .iter()
            .filter_map(|r| {
                Some(render::Channel { id: r.channel_id.clone()?, name: r.channel_name.clone()?, round: r.round })
            })
            .collect();
        let entries: Vec<render::Entry> = lines.into_iter().map(entry_of).collect();
        let ticket = incident.ticket.as_ref().map(|k| k.as_str().to_owned());
        let severity = incident.severity.as_str();
        let id_text = id.to_string();
        let header = render::TranscriptHeader {
            incident: &id_text,
            title: &incident.title,
            severity,
            opened_at: incident.opened_at,
            resolved_at: incident.resolved_at,
            ticket: ticket.as_deref(),
        };
        let markdown = render::render(&header, &channels, &entries, &names, Format::Markdown);
        self.store.save_transcript(id, &markdown, now).await?;
        if let Some(key) = &incident.ticket {
            self.desk.attach(key, &format!("{id}-transcript.md"), "text/markdown", markdown.as_bytes()).await?;
        }
        info!(incident.id = %id, transcript.bytes = markdown.len(), transcript.gaps = gaps.len(), "transcript of {id} attached");
        Ok(())
    }

    /// Fetches what was said in `channel` between `from` and `to` (history, then the replies of
    /// threads active in that window) and stores what live capture missed.
    async fn backfill(&self, id: IncidentId, channel: &str, from: Timestamp, to: Timestamp) -> Result<(), JobError> {
        let slack = self.slack()?;
        let (oldest, latest) = (slack_ts(from), slack_ts(to));
        let messages = slack.history_between(channel, &oldest, &latest).await?;
        let mut threads = BTreeSet::new();
        for message in &messages {
            if message.get("reply_count").and_then(serde_json::Value::as_u64).unwrap_or(0) > 0
                && let Some(ts) = text_of(message, "ts")
            {
                threads.insert(ts.to_owned());
            }
            self.store_backfilled(id, channel, message).await?;
        }
        // Threads whose parent is older than the gap may have had replies during it.
        for line in self.store.transcript_lines(id).await? {
            let conversation = matches!(line.entry.kind, EntryKind::Message | EntryKind::FileShare);
            if line.entry.channel == channel && line.entry.thread_ts.is_none() && !line.deleted && conversation {
                threads.insert(line.entry.ts.clone());
            }
        }
        for parent in threads {
            for reply in slack.replies_between(channel, &parent, &oldest, &latest).await? {
                if text_of(&reply, "ts") != Some(parent.as_str()) {
                    self.store_backfilled(id, channel, &reply).await?;
                }
            }
        }
        Ok(())
    }

    async fn store_backfilled(
        &self,
        id: IncidentId,
        channel: &str,
        message: &serde_json::Value,
    ) -> Result<(), JobError> {
        if let Some(Capture::New(entry)) = capture_of(channel, message) {
            self.store.capture(id, &Capture::New(entry), Origin::Backfill, self.clock.now()).await?;
        }
        Ok(())
    }

    /// Display names of everyone in the transcript (a failed lookup leaves the id).
    async fn display_names(&self, lines: &[TranscriptLine]) -> BTreeMap<String, String> {
        let mut names = BTreeMap::new();
        let Ok(slack) = self.slack() else { return names };
        let users: BTreeSet<&str> = lines.iter().filter_map(|l| l.entry.user.as_deref()).collect();
        for user in users {
            if let Ok(Some(name)) = slack.user_name(user).await {
                names.insert(user.to_owned(), name);
            }
        }
        names
    }

    /// Comments and closes the ticket.
    pub(super) async fn close_ticket(&self, id: IncidentId, round: u32) -> Result<(), JobError> {
        let incident = self.incident(id).await?;
        let Some(key) = &incident.ticket else {
            return Ok(());
        };
        let by = incident.resolved_by.as_ref().map_or_else(|| "warroom".to_owned(), ToString::to_string);
        let (text, resolution) = match &incident.summary {
            Some(summary) => (format!("{id} resolved by {by}: {summary}"), summary.clone()),
            None => (format!("{id} resolved by {by}."), format!("Resolved by {by}.")),
        };
        let (text, resolution) = (redact(&text), redact(&resolution));
        self.desk.comment(key, "warroom", &text, false, &format!("resolve:{id}:{round}")).await?;
        self.desk.close(key, &resolution).await?;
        Ok(())
    }

    /// Archives the channel of `round`.
    pub(super) async fn archive(&self, id: IncidentId, round: u32) -> Result<(), JobError> {
        let (mut room, channel) = self.room(id, round).await?;
        if room.archived {
            return Ok(());
        }
        self.slack()?.archive(&channel).await?;
        room.archived = true;
        self.store.save_war_room(&room, self.clock.now()).await?;
        info!(incident.id = %id, slack.channel = %channel, "archived the channel of {id}");
        Ok(())
    }
}

fn entry_of(line: TranscriptLine) -> render::Entry {
    let e = line.entry;
    render::Entry {
        channel: e.channel,
        ts: e.ts,
        thread_ts: e.thread_ts,
        user: e.user,
        bot: e.bot,
        kind: e.kind,
        text: e.text,
        edited: line.edited_ts,
        previous_text: line.previous_text,
        deleted: line.deleted,
        files: e.files,
    }
}
