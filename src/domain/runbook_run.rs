//! Runbook runs and deployments as warroom records them.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::IncidentId;

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Queued,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Canceled,
    /// A press that was not allowed (kept as the audit trail).
    Denied,
}

impl RunState {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::Canceled => "canceled",
            Self::Denied => "denied",
        }
    }

    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Queued, Self::Running, Self::Succeeded, Self::Failed, Self::TimedOut, Self::Canceled, Self::Denied]
            .into_iter()
            .find(|s| s.as_str() == text)
    }

    /// Queued or running.
    #[must_use]
    pub fn is_active(self) -> bool {
        matches!(self, Self::Queued | Self::Running)
    }
}

/// One execution of a runbook for an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunbookRun {
    pub id: i64,
    pub incident: IncidentId,
    pub runbook: String,
    pub params: BTreeMap<String, String>,
    /// A Slack user id, or `warroom` for an automatic run.
    pub requested_by: String,
    pub automatic: bool,
    pub state: RunState,
    pub requested_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub summary: Option<String>,
    pub link: Option<String>,
    pub output_tail: Option<String>,
    /// The status message in the incident thread.
    pub status_ts: Option<String>,
    pub problem_key: Option<String>,
}

/// A deployment reported on `/hooks/deployments`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub service: String,
    pub environment: Option<String>,
    pub version: String,
    pub commit: Option<String>,
    pub url: Option<String>,
    pub pipeline: Option<String>,
    /// The runbook shipped with the release for remediating it, if any.
    pub runbook: Option<String>,
    pub deployed_at: Timestamp,
}
