//! War-room jobs: what happens in Slack (and the desk) when an incident opens, changes, resolves
//! or reopens.

use async_trait::async_trait;

use crate::jobs::runner::{JobError, JobHandler};
use crate::store::Job;

/// Runs war-room jobs.
#[derive(Debug, Default)]
pub struct WarRoomJobs;

impl WarRoomJobs {
    #[must_use]
    pub fn new() -> Self {
        Self
    }
}

#[async_trait]
impl JobHandler for WarRoomJobs {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        Err(JobError::retry(format!(
            "`{}` needs Slack, which is not connected yet",
            job.kind
        )))
    }
}
