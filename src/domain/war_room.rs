//! The Slack channel side of an incident, as warroom records it (no Slack types).

use std::fmt;

use super::IncidentId;

/// One channel of an incident: round 0 first, round k after the k-th reopen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarRoom {
    pub incident: IncidentId,
    pub round: u32,
    /// The name chosen before `conversations.create` was called.
    pub planned_name: Option<String>,
    pub channel_id: Option<String>,
    pub channel_name: Option<String>,
    /// The pinned context message.
    pub context_ts: Option<String>,
    /// The topic last set, to skip needless `setTopic` calls.
    pub topic: Option<String>,
    /// The resolution summary message.
    pub summary_ts: Option<String>,
    pub archived: bool,
}

impl WarRoom {
    /// A war room not yet created.
    #[must_use]
    pub fn new(incident: IncidentId, round: u32) -> Self {
        Self {
            incident,
            round,
            planned_name: None,
            channel_id: None,
            channel_name: None,
            context_ts: None,
            topic: None,
            summary_ts: None,
            archived: false,
        }
    }
}

/// A responder's part in an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    OnCall,
    Lead,
    Commander,
    Participant,
}

impl Role {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OnCall => "on-call",
            Self::Lead => "lead",
            Self::Commander => "commander",
            Self::Participant => "participant",
        }
    }

    #[must_use]
    pub fn parse(text: &str) -> Self {
        match text {
            "on-call" => Self::OnCall,
            "lead" => Self::Lead,
            "commander" => Self::Commander,
            _ => Self::Participant,
        }
    }
}

/// A person working an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Responder {
    /// Slack user id.
    pub user: String,
    pub role: Role,
}

/// A valid Slack channel name: lowercase `[a-z0-9_-]`, 1–80 characters. Built only by
/// [`ChannelName::parse`] or [`ChannelName::for_incident`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChannelName(String);

/// Longest channel name Slack accepts.
pub const MAX_CHANNEL_NAME: usize = 80;

/// Why a string is not a channel name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a Slack channel name: use 1–80 lowercase letters, digits, - or _")]
pub struct ChannelNameError(String);

impl ChannelName {
    /// Checks Slack's rules.
    pub fn parse(name: &str) -> Result<Self, ChannelNameError> {
        let valid = !name.is_empty()
            && name.len() <= MAX_CHANNEL_NAME
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if valid { Ok(Self(name.to_owned())) } else { Err(ChannelNameError(name.to_owned())) }
    }

    /// Fills `template` (`{n}` = incident number, `{slug}` = service or title) and makes the
    /// result valid, leaving room for a `-r<k>` or `-<k>` suffix.
    #[must_use]
    pub fn for_incident(template: &str, id: IncidentId, subject: &str) -> Self {
        let filled = template.replace("{n}", &id.seq().to_string()).replace("{slug}", subject);
        let mut slug = slugify(&filled);
        slug.truncate(MAX_CHANNEL_NAME - 8);
        let slug = slug.trim_end_matches(['-', '_']).to_owned();
        if slug.is_empty() { Self(format!("inc-{}", id.seq())) } else { Self(slug) }
    }

    /// This name with a suffix (`-r2`, `-3`), still within 80 characters.
    #[must_use]
    pub fn with_suffix(&self, suffix: &str) -> Self {
        let mut base = self.0.clone();
        base.truncate(MAX_CHANNEL_NAME.saturating_sub(suffix.len() + 1));
        Self(format!("{}-{suffix}", base.trim_end_matches(['-', '_'])))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lowercases and replaces every run of other characters with one `-`.
fn slugify(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incident_channel_names_are_made_valid_for_slack() {
        let id = IncidentId::from_seq(42);
        let table = [
            ("inc-{n}-{slug}", "checkout", "inc-42-checkout"),
            ("inc-{n}-{slug}", "5xx rate above 5% on Checkout!", "inc-42-5xx-rate-above-5-on-checkout"),
            ("inc-{n}-{slug}", "Ünïcode  ümlauts", "inc-42-n-code-mlauts"),
            ("inc-{n}", "ignored", "inc-42"),
            ("{slug}", "!!!", "inc-42"),
        ];
        for (template, subject, expected) in table {
            assert_eq!(ChannelName::for_incident(template, id, subject).as_str(), expected, "{template} / {subject}");
        }
    }

    #[test]
    fn long_names_are_cut_to_leave_room_for_suffixes() {
        let long = "x".repeat(200);
        let name = ChannelName::for_incident("inc-{n}-{slug}", IncidentId::from_seq(1), &long);
        assert!(name.as_str().len() <= MAX_CHANNEL_NAME - 8);
        let reopened = name.with_suffix("r12");
        assert!(reopened.as_str().len() <= MAX_CHANNEL_NAME && reopened.as_str().ends_with("-r12"));
        assert!(ChannelName::parse(reopened.as_str()).is_ok());
    }

    #[test]
    fn parse_enforces_slacks_rules() {
        for bad in ["", "Upper", "with space", "dot.name", &"a".repeat(81)] {
            assert!(ChannelName::parse(bad).is_err(), "`{bad}` must be refused");
        }
        assert!(ChannelName::parse("inc-1_ok").is_ok());
    }
}
