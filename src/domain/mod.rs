//! Pure domain types: no IO, no Slack or Jira types.
//!
//! Everything here is parsed at the edge (`FromStr`/`TryFrom`) and trusted afterwards.

pub mod clock;
pub mod ids;
pub mod incident;
pub mod problem;
pub mod runbook_run;
pub mod severity;
pub mod timeline;
pub mod transcript;
pub mod war_room;

pub use clock::{Clock, ManualClock, ShiftedClock, SystemClock};
pub use ids::{IncidentId, TicketKey};
pub use incident::{Incident, IncidentStatus};
pub use problem::{Alert, AlertStatus, Problem, ProblemKey, ProblemStatus, SourceKind};
pub use severity::Severity;
pub use timeline::{Actor, TimelineEvent};
