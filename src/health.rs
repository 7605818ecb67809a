//! What `/healthz` reports about Slack, shared between the Socket Mode supervisor and HTTP.

use std::fmt;
use std::sync::{Arc, RwLock};

/// The Slack connection as last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlackState {
    Connecting,
    Connected,
    /// The cause, e.g. `invalid_auth` or `connection refused`.
    Error(String),
}

impl fmt::Display for SlackState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connecting => f.write_str("connecting"),
            Self::Connected => f.write_str("connected"),
            Self::Error(cause) => write!(f, "error: {cause}"),
        }
    }
}

/// Shared health; cheap to clone.
#[derive(Debug, Clone)]
pub struct Health {
    // A std lock: held only to copy or replace a small value, never across an await.
    slack: Arc<RwLock<SlackState>>,
}

impl Default for Health {
    fn default() -> Self {
        Self { slack: Arc::new(RwLock::new(SlackState::Connecting)) }
    }
}

impl Health {
    /// The Slack state now.
    #[must_use]
    pub fn slack(&self) -> SlackState {
        self.slack.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Records a new Slack state.
    pub fn set_slack(&self, state: SlackState) {
        *self.slack.write().unwrap_or_else(std::sync::PoisonError::into_inner) = state;
    }
}
