//! Carrying out a recorded runbook run: a status message in the incident thread, updated in
//! place (queued → running → succeeded/failed, with duration, link and output tail); the result
//! on the timeline, as a ticket comment and, for Dynatrace problems, as a problem comment.
//!
//! A run is never launched twice: if a retry finds its run already `running` (warroom stopped
//! while it ran), the run is reported as interrupted rather than started again.

use std::time::Instant;

use jiff::Timestamp;
use tokio::sync::mpsc;
use tracing::info;

use super::WarRoomJobs;
use crate::domain::runbook_run::{RunState, RunbookRun};
use crate::domain::{Actor, IncidentId, SourceKind, TimelineEvent};
use crate::handlers::runbooks::context_for;
use crate::jobs::runner::JobError;
use crate::jobs::{self, NewJob};
use crate::runbook::executor::ExecError;
use crate::runbook::plan::{Progress, RunReport, RunStatus};
use crate::slack::blocks;
use crate::transcript::redact::redact;

impl WarRoomJobs {
    pub(super) async fn run_runbook(&self, id: IncidentId, run_id: i64) -> Result<(), JobError> {
        let Some(mut run) = self.store.run(run_id).await? else {
            return Err(JobError::Permanent(format!("run {run_id} does not exist")));
        };
        match run.state {
            RunState::Queued => {}
            RunState::Running => {
                let note = "interrupted: warroom stopped while it ran; check the executor for its outcome";
                return self.finish(&mut run, RunState::Failed, note.to_owned(), String::new()).await;
            }
            _ => return Ok(()),
        }
        let incident = self.incident(id).await?;
        let Some(runbook) = self.catalog.get(&run.runbook) else {
            let note = format!("the runbook {} is no longer configured", run.runbook);
            return self.finish(&mut run, RunState::Failed, note, String::new()).await;
        };
        let context = context_for(self.store.as_ref(), &incident).await.map_err(|e| JobError::retry(e.to_string()))?;
        let execution = match runbook.execution(&context.with_params(run.params.clone())) {
            Ok(execution) => execution,
            Err(e) => return self.finish(&mut run, RunState::Failed, e.to_string(), String::new()).await,
        };
        self.show(&mut run, None).await?;
        run.state = RunState::Running;
        run.started_at = Some(self.clock.now());
        self.store.update_run(&run).await?;
        self.show(&mut run, None).await?;

        let started = Instant::now();
        let (progress_tx, mut progress_rx) = mpsc::unbounded_channel::<Progress>();
        let progress = move |p: Progress| {
            let _ = progress_tx.send(p);
        };
        let execute = self.executors.run(&execution, &progress);
        tokio::pin!(execute);
        // Once the executor said it started, a failure is final: relaunching could run the
        // remediation twice.
        let mut launched = false;
        let result = loop {
            tokio::select! {
                result = &mut execute => break result,
                Some(update) = progress_rx.recv() => {
                    if let Progress::Started { summary, link } = update {
                        launched = true;
                        run.summary = Some(summary);
                        run.link = link;
                        self.store.update_run(&run).await?;
                        self.show(&mut run, None).await?;
                    }
                }
            }
        };
        let elapsed = started.elapsed();
        match result {
            Ok(RunReport { status, summary, link, output_tail }) => {
                if link.is_some() {
                    run.link = link;
                }
                let state = match status {
                    RunStatus::Succeeded => RunState::Succeeded,
                    RunStatus::Failed => RunState::Failed,
                    RunStatus::TimedOut => RunState::TimedOut,
                    RunStatus::Canceled => RunState::Canceled,
                };
                let summary = format!("{summary} in {}s", elapsed.as_secs());
                self.finish(&mut run, state, summary, output_tail).await
            }
            // A 429 means the executor refused it: nothing started, so it is safe to try again.
            // A transport error may have come after the launch reached the executor, so it is
            // never retried (that could run the remediation twice): it is reported instead.
            Err(error @ ExecError::RateLimited { .. }) if !launched => {
                // It never started: put it back in the queue and let the job retry the launch.
                run.state = RunState::Queued;
                run.started_at = None;
                self.store.update_run(&run).await?;
                let retry_after = match &error {
                    ExecError::RateLimited { retry_after } => *retry_after,
                    _ => None,
                };
                Err(JobError::Retry { message: format!("could not launch {}: {error}", run.runbook), retry_after })
            }
            Err(error @ ExecError::Transport(_)) => {
                let note = format!("{error}; the run may or may not have started: check before running it again");
                self.finish(&mut run, RunState::Failed, note, String::new()).await
            }
            Err(error) => self.finish(&mut run, RunState::Failed, error.to_string(), String::new()).await,
        }
    }

    /// Records the end of a run and tells the thread, the timeline, the ticket and the source.
    async fn finish(
        &self,
        run: &mut RunbookRun,
        state: RunState,
        summary: String,
        output: String,
    ) -> Result<(), JobError> {
        let now = self.clock.now();
        run.state = state;
        run.finished_at = Some(now);
        // Output and summaries can carry secrets; they are posted and stored redacted.
        let summary = redact(&summary).into_owned();
        run.summary = Some(summary.clone());
        run.output_tail = Some(redact(&output).into_owned()).filter(|o| !o.is_empty());
        self.store.update_run(run).await?;
        self.show(run, Some(now)).await?;
        let incident = self.incident(run.incident).await?;
        let word = state.as_str().replace('_', " ");
        let mut text = format!("runbook {} {word}: {summary}", run.runbook);
        if let Some(link) = &run.link {
            text.push_str(&format!(" ({link})"));
        }
        let actor = if run.automatic { Actor::Warroom } else { Actor::User(run.requested_by.clone()) };
        let mut jobs: Vec<NewJob> =
            vec![jobs::new::ticket_comment(incident.id, "warroom", &text, false, &format!("run-{}", run.id))];
        if incident.source == SourceKind::Dynatrace && self.dynatrace.is_some() {
            jobs.push(jobs::new::source_comment(
                incident.id,
                &format!("warroom {}: {text}", incident.id),
                &format!("run-{}", run.id),
            ));
        }
        let mut tx = self.store.begin().await?;
        tx.add_timeline(incident.id, &[TimelineEvent::new(now, &format!("runbook_{}", state.as_str()), actor, text)])
            .await?;
        for job in &jobs {
            jobs::enqueue(&mut *tx, job, now, self.settings.jobs.retry_budget).await?;
        }
        tx.commit().await?;
        info!(incident.id = %incident.id, runbook = %run.runbook, run.id = run.id, "runbook {} {word} for {}", run.runbook, incident.id);
        Ok(())
    }

    /// Posts or updates the run's status message in the incident thread.
    async fn show(&self, run: &mut RunbookRun, finished: Option<Timestamp>) -> Result<(), JobError> {
        let incident = self.incident(run.incident).await?;
        let Ok((room, channel)) = self.current_room(&incident).await else {
            return Ok(());
        };
        if room.archived {
            return Ok(());
        }
        let text = status_text(run, finished);
        let rendered = blocks::update_markup(&text);
        let value = serde_json::to_value(&rendered.blocks).unwrap_or_default();
        let slack = self.slack()?;
        match &run.status_ts {
            Some(ts) => slack.update_message(&channel, ts, &rendered.text, &value).await?,
            None => {
                let ts = slack.post_message(&channel, &rendered.text, Some(&value), room.context_ts.as_deref()).await?;
                run.status_ts = Some(ts);
                self.store.update_run(run).await?;
            }
        }
        Ok(())
    }

    pub(super) async fn source_comment(&self, job: &crate::store::Job, id: IncidentId) -> Result<(), JobError> {
        let Some(dynatrace) = &self.dynatrace else { return Ok(()) };
        let incident = self.incident(id).await?;
        let text = job.payload["text"].as_str().unwrap_or_default();
        dynatrace.comment(incident.problem_key.as_str(), text).await.map_err(JobError::from)
    }
}

/// `⏳ rollback queued by @ana` … `✅ rollback succeeded in 42s · <link|AWX job 4711>` + output.
fn status_text(run: &RunbookRun, finished: Option<Timestamp>) -> String {
    let who = if run.automatic { "automatically".to_owned() } else { format!("by <@{}>", run.requested_by) };
    let icon = match run.state {
        RunState::Queued => ":hourglass_flowing_sand:",
        RunState::Running => ":arrow_forward:",
        RunState::Succeeded => ":white_check_mark:",
        RunState::Failed | RunState::Denied => ":x:",
        RunState::TimedOut => ":alarm_clock:",
        RunState::Canceled => ":no_entry_sign:",
    };
    let mut text = format!("{icon} *{}* {} {who}", blocks::escape(&run.runbook), run.state.as_str().replace('_', " "));
    if let (Some(start), Some(end)) = (run.started_at, finished) {
        text.push_str(&format!(" · took {}s", end.duration_since(start).as_secs()));
    }
    if let Some(summary) = &run.summary {
        text.push_str(&format!("\n{}", blocks::escape(summary)));
    }
    if let Some(link) = &run.link {
        text.push_str(&format!(" · <{}|details>", link.replace(['<', '>', '|'], "")));
    }
    if let Some(output) = run.output_tail.as_deref().filter(|o| !o.trim().is_empty()) {
        let tail: String = output.chars().rev().take(1500).collect::<Vec<_>>().into_iter().rev().collect();
        text.push_str(&format!("\n```{}```", blocks::escape(&tail.replace("```", "'''"))));
    }
    text
}
