//! What happened to an incident, and who did it.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Who caused a timeline event: a Slack user, a source, or warroom itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Actor {
    /// A Slack user id (`U…`).
    User(String),
    /// An alert source, by name (`source:alertmanager`).
    Source(String),
    /// warroom itself.
    Warroom,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(id) => f.write_str(id),
            Self::Source(name) => write!(f, "source:{name}"),
            Self::Warroom => f.write_str("warroom"),
        }
    }
}

impl Actor {
    /// Reads the stored form back (the inverse of `Display`).
    #[must_use]
    pub fn parse(text: &str) -> Self {
        if text == "warroom" {
            Self::Warroom
        } else if let Some(name) = text.strip_prefix("source:") {
            Self::Source(name.to_owned())
        } else {
            Self::User(text.to_owned())
        }
    }
}

impl Serialize for Actor {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Actor {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self::parse(&String::deserialize(deserializer)?))
    }
}

/// One recorded change in an incident's life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEvent {
    /// When it happened.
    pub at: Timestamp,
    /// A short machine word: `opened`, `alert_resolved`, `acknowledged`, `resolved`, …
    pub kind: String,
    /// Who did it.
    pub actor: Actor,
    /// One human sentence.
    pub text: String,
}

impl TimelineEvent {
    /// A new event.
    #[must_use]
    pub fn new(at: Timestamp, kind: &str, actor: Actor, text: impl Into<String>) -> Self {
        Self { at, kind: kind.to_owned(), actor, text: text.into() }
    }
}
