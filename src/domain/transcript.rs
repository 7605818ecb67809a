//! What was said in an incident's channels, as captured (no Slack types).

use serde::{Deserialize, Serialize};

/// What kind of line a transcript entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Message,
    Join,
    Leave,
    FileShare,
    ButtonPress,
    SlashCommand,
    Topic,
    Other(String),
}

impl EntryKind {
    /// The stored word.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Message => "message",
            Self::Join => "join",
            Self::Leave => "leave",
            Self::FileShare => "file_share",
            Self::ButtonPress => "button",
            Self::SlashCommand => "slash_command",
            Self::Topic => "topic",
            Self::Other(other) => other,
        }
    }

    /// Reads a stored word.
    #[must_use]
    pub fn parse(text: &str) -> Self {
        match text {
            "message" => Self::Message,
            "join" => Self::Join,
            "leave" => Self::Leave,
            "file_share" => Self::FileShare,
            "button" => Self::ButtonPress,
            "slash_command" => Self::SlashCommand,
            "topic" => Self::Topic,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// A shared file, by name and link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    pub name: String,
    pub url: String,
}

/// One captured line of a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    pub channel: String,
    pub ts: String,
    pub thread_ts: Option<String>,
    pub user: Option<String>,
    pub bot: bool,
    pub kind: EntryKind,
    pub text: String,
    pub files: Vec<FileRef>,
}

/// A change to the captured transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capture {
    /// A new line; a redelivery of the same `(channel, ts)` changes nothing.
    New(Captured),
    /// An edit of the line at `(channel, ts)`: the new text, the edit's ts.
    Edit { channel: String, ts: String, text: String, edited_ts: String },
    /// A deletion: the text is erased, the line kept as "deleted".
    Delete { channel: String, ts: String },
}

/// A stored transcript line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptLine {
    pub entry: Captured,
    pub previous_text: Option<String>,
    pub edited_ts: Option<String>,
    pub deleted: bool,
}

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Heard over Socket Mode as it happened.
    Live,
    /// Fetched through the Web API to fill a gap.
    Backfill,
}

impl Origin {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Backfill => "backfill",
        }
    }
}
