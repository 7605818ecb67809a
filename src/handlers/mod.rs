//! Use cases, one file each. Handlers see domain types and the storage port, change state in one
//! transaction together with the jobs it implies, and nudge the runner. No Slack or Jira types.

pub mod commands;
pub mod correlate;
pub mod events;
pub mod ingester;
pub mod runbooks;

use std::sync::Arc;

use crate::config::Settings;
use crate::desk::Desk;
use crate::domain::Clock;
use crate::jobs::runner::Nudge;
use crate::store::Store;

/// What every handler needs.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<Settings>,
    pub nudge: Nudge,
    pub desk: Arc<dyn Desk>,
    /// The runbooks in `commands/`, validated at startup.
    pub catalog: Arc<crate::runbook::catalog::RunbookCatalog>,
}
