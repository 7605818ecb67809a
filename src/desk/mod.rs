//! The desk port: [`Desk`] holds the Ticket of each Incident, whether the built-in desk
//! ([`builtin::BuiltinDesk`], tickets `WR-<n>` in our own database) or, later, Jira Service
//! Management. Nothing here names a database or HTTP type, so every adapter plugs in behind the
//! same trait and jobs call it without knowing which one runs.
//!
//! Every method is safe to retry: `create` returns the existing ticket of an incident, comments
//! carry a caller-chosen dedupe key, attachments replace by name, and closing a closed (or
//! reopening an open) ticket does nothing.

pub mod builtin;
pub mod jira;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;

use crate::domain::{IncidentId, Severity, TicketKey};
use crate::jobs::runner::JobError;

/// What a new ticket says; [`Desk::create`] makes one per incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketDraft {
    pub incident: IncidentId,
    pub summary: String,
    pub description: String,
    /// `P1` … `P4`, from the incident's severity through [`priority_for`].
    pub priority: String,
    /// Labels for desks that keep them (the built-in desk does not).
    pub labels: Vec<String>,
}

/// Fields to change on a ticket; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketUpdate {
    pub summary: Option<String>,
    pub description: Option<String>,
    pub priority: Option<String>,
    pub assignee: Option<String>,
}

impl TicketUpdate {
    /// Whether the update changes no field at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.summary.is_none() && self.description.is_none() && self.priority.is_none() && self.assignee.is_none()
    }
}

/// Whether a ticket is being worked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TicketStatus {
    Open,
    Closed,
}

impl TicketStatus {
    /// The contract's word: `open` or `closed`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }

    /// Reads the contract's word; `None` for anything else.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "open" => Some(Self::Open),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }
}

impl fmt::Display for TicketStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One comment on a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub at: Timestamp,
    pub author: String,
    pub text: String,
    /// Whether people outside the responders (customers, on a service desk) may see it.
    pub public: bool,
}

/// What is known about an attached file, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub at: Timestamp,
    pub name: String,
    pub content_type: String,
    /// Size in bytes.
    pub size: u64,
}

/// A ticket as the desk holds it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub key: TicketKey,
    pub incident: IncidentId,
    pub status: TicketStatus,
    pub assignee: Option<String>,
    pub priority: String,
    pub summary: String,
    pub description: String,
    /// Oldest first.
    pub comments: Vec<Comment>,
    /// Ordered by name.
    pub attachments: Vec<Attachment>,
}

/// What can go wrong at a desk, by what the caller does about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeskError {
    /// The ticket (or the incident, or the attachment) does not exist; retrying cannot help.
    #[error("not found: {0}")]
    NotFound(String),
    /// The desk cannot be reached or failed; retrying later may succeed.
    #[error("desk unavailable: {0}")]
    Unavailable(String),
    /// The desk asked us to slow down, for `retry_after` if it said.
    #[error("rate limited by the desk{}", retry_after.map(|d| format!("; retry after {} ms", d.as_millis())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    /// The desk refused the request for good (bad field, forbidden, invalid stored data).
    #[error("rejected by the desk: {0}")]
    Rejected(String),
}

impl From<DeskError> for JobError {
    fn from(error: DeskError) -> Self {
        let message = error.to_string();
        match error {
            DeskError::RateLimited { retry_after } => Self::Retry { message, retry_after },
            DeskError::Unavailable(_) => Self::retry(message),
            DeskError::NotFound(_) | DeskError::Rejected(_) => Self::Permanent(message),
        }
    }
}

/// A service desk that keeps one Ticket per Incident.
#[async_trait]
pub trait Desk: Send + Sync {
    /// The adapter's name for logs and config: `builtin`, `jira`.
    fn name(&self) -> &'static str;

    /// Moves the ticket's workflow to match the incident's status (`investigating`,
    /// `identified`, `monitoring`); desks without a workflow do nothing.
    async fn set_status(&self, _key: &TicketKey, _status: &str) -> Result<(), DeskError> {
        Ok(())
    }

    /// Links the incident channel from the ticket; desks that show links elsewhere do nothing.
    async fn link_channel(&self, _key: &TicketKey, _title: &str, _url: &str) -> Result<(), DeskError> {
        Ok(())
    }

    /// Whether assignees are given as emails (Jira looks people up by email) rather than as
    /// Slack user ids.
    fn assigns_by_email(&self) -> bool {
        false
    }

    /// Creates the ticket of `draft.incident`, or returns the existing one: calling it twice for
    /// one incident never makes two tickets.
    async fn create(&self, draft: &TicketDraft) -> Result<TicketKey, DeskError>;

    /// The ticket of an incident, if one was created.
    async fn find_for_incident(&self, incident: IncidentId) -> Result<Option<TicketKey>, DeskError>;

    /// Changes the fields `update` names.
    async fn update(&self, key: &TicketKey, update: &TicketUpdate) -> Result<(), DeskError>;

    /// Adds a comment; `dedupe` is a caller-chosen key (the job id): a second call with the same
    /// key adds nothing.
    async fn comment(
        &self,
        key: &TicketKey,
        author: &str,
        text: &str,
        public: bool,
        dedupe: &str,
    ) -> Result<(), DeskError>;

    /// Attaches a file; attaching the same `name` twice replaces the earlier one (idempotent
    /// retries; a re-resolved incident's newer transcript replaces the older).
    async fn attach(&self, key: &TicketKey, name: &str, content_type: &str, bytes: &[u8]) -> Result<(), DeskError>;

    /// Closes the ticket with a resolution; closing a closed ticket is fine.
    async fn close(&self, key: &TicketKey, resolution: &str) -> Result<(), DeskError>;

    /// Reopens the ticket; reopening an open ticket is fine.
    async fn reopen(&self, key: &TicketKey) -> Result<(), DeskError>;

    /// The ticket with its comments and attachments (without their bytes); `None` if there is
    /// no such ticket.
    async fn get(&self, key: &TicketKey) -> Result<Option<Ticket>, DeskError>;

    /// The attachment's content type and bytes (built-in desk only; others may answer
    /// [`DeskError::NotFound`]).
    async fn attachment(&self, key: &TicketKey, name: &str) -> Result<Option<(String, Vec<u8>)>, DeskError>;
}

/// The ticket priority for a severity: `sev1` → `P1` … `sev4` → `P4`.
#[must_use]
pub fn priority_for(severity: Severity) -> &'static str {
    match severity {
        Severity::Sev1 => "P1",
        Severity::Sev2 => "P2",
        Severity::Sev3 => "P3",
        Severity::Sev4 => "P4",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_severity_maps_to_the_priority_of_the_same_level() {
        let priorities: Vec<&str> = Severity::ALL.into_iter().map(priority_for).collect();
        assert_eq!(priorities, ["P1", "P2", "P3", "P4"]);
    }

    #[test]
    fn desk_errors_become_job_errors_by_whether_a_retry_can_help() {
        let wait = Some(Duration::from_secs(30));
        let cases = [
            (DeskError::RateLimited { retry_after: wait }, Some(wait)),
            (DeskError::Unavailable("down".to_owned()), Some(None)),
            (DeskError::NotFound("WR-1".to_owned()), None),
            (DeskError::Rejected("bad field".to_owned()), None),
        ];
        for (error, expected) in cases {
            let shown = error.to_string();
            match (JobError::from(error), expected) {
                (JobError::Retry { retry_after, .. }, Some(wanted)) => {
                    assert_eq!(retry_after, wanted, "{shown} must keep its retry-after");
                }
                (JobError::Permanent(_), None) => {}
                (other, _) => panic!("{shown} became the wrong job error: {other:?}"),
            }
        }
    }

    #[test]
    fn ticket_statuses_round_trip_through_their_words() {
        for status in [TicketStatus::Open, TicketStatus::Closed] {
            assert_eq!(TicketStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(TicketStatus::parse("resolved"), None);
    }
}
