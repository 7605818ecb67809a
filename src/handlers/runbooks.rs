//! Running runbooks: a request is checked (parameters, rendering, an earlier or active run) and
//! recorded **before** it starts, together with its job, so a second press or another replica
//! sees it. Denied presses are recorded too (the audit trail). New incidents that match a runbook
//! with `auto = true` run it without a click, unless the same problem already had an automatic
//! run within the loop guard: then people are called instead.

use std::collections::BTreeMap;

use jiff::SignedDuration;
use tracing::{info, warn};

use super::Services;
use super::commands::{HandlerError, short_time};
use crate::domain::runbook_run::{RunState, RunbookRun};
use crate::domain::{Actor, Incident, IncidentId, IncidentStatus, TimelineEvent};
use crate::jobs;
use crate::runbook::catalog::{MatchInput, RunbookCatalog};
use crate::runbook::context::{Deployment, RunContext};
use crate::runbook::spec::Runbook;
use crate::store::Store;

/// Who asks for a run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub incident: IncidentId,
    pub runbook: String,
    pub params: BTreeMap<String, String>,
    /// A Slack user id, or `warroom` for an automatic run.
    pub requested_by: String,
    pub automatic: bool,
    /// Run again although it already ran for this incident.
    pub again: bool,
}

/// The context templates see: the incident and its service's last two deployments.
pub async fn context_for(store: &dyn Store, incident: &Incident) -> Result<RunContext, HandlerError> {
    let (current, previous) = match &incident.service {
        Some(service) => {
            let environment =
                incident.labels.get("env").or_else(|| incident.labels.get("environment")).map(String::as_str);
            let mut recent = store.deployments(service, environment, 2).await?;
            if recent.is_empty() && environment.is_some() {
                recent = store.deployments(service, None, 2).await?;
            }
            let mut recent = recent.into_iter().map(|d| Deployment {
                service: d.service,
                environment: d.environment.unwrap_or_default(),
                version: d.version,
                commit: d.commit,
                url: d.url,
                pipeline: d.pipeline,
            });
            (recent.next(), recent.next())
        }
        None => (None, None),
    };
    Ok(RunContext::for_incident(incident, current, previous))
}

/// Checks and records a run, and queues it. Every refusal is a sentence for the person asking.
pub async fn start(
    services: &Services,
    catalog: &RunbookCatalog,
    request: RunRequest,
) -> Result<RunbookRun, HandlerError> {
    let name = request.runbook.as_str();
    let runbook = find(catalog, name)?;
    let incident = incident(services, request.incident).await?;
    if incident.status == IncidentStatus::Resolved {
        return Err(HandlerError::User(format!("{} is resolved: runbooks run on open incidents", incident.id)));
    }
    let context = context_for(services.store.as_ref(), &incident).await?;
    let params =
        runbook.params_with_defaults(&context, &request.params).map_err(|e| HandlerError::User(e.to_string()))?;
    // Render now, so a missing previous deployment or a bad value is told at once, not later.
    runbook.execution(&context.clone().with_params(params.clone())).map_err(|e| HandlerError::User(e.to_string()))?;
    if !request.again
        && let Some(done) = services
            .store
            .runs(incident.id)
            .await?
            .into_iter()
            .rev()
            .find(|r| r.runbook == name && !r.state.is_active() && r.state != RunState::Denied)
    {
        return Err(HandlerError::User(format!(
            "{name} already ran for {} at {} ({}). To run it again: `/incident run {name} --again`",
            incident.id,
            short_time(done.requested_at),
            done.state.as_str().replace('_', " ")
        )));
    }
    let now = services.clock.now();
    let run = RunbookRun {
        id: 0,
        incident: incident.id,
        runbook: name.to_owned(),
        params,
        requested_by: request.requested_by.clone(),
        automatic: request.automatic,
        state: RunState::Queued,
        requested_at: now,
        started_at: None,
        finished_at: None,
        summary: None,
        link: None,
        output_tail: None,
        status_ts: None,
        problem_key: Some(incident.problem_key.as_str().to_owned()),
    };
    let mut tx = services.store.begin().await?;
    let run = match tx.create_run(&run).await? {
        Ok(run) => run,
        Err(active) => {
            return Err(HandlerError::User(format!(
                "{name} is already running (started {} by {})",
                short_time(active.requested_at),
                requester(&active.requested_by)
            )));
        }
    };
    let actor = actor_of(&request.requested_by);
    let how = if request.automatic { "automatically" } else { "by request" };
    let event =
        TimelineEvent::new(now, "runbook_requested", actor, format!("runbook {name} requested {how} (run {})", run.id));
    tx.add_timeline(incident.id, &[event]).await?;
    jobs::enqueue(&mut *tx, &jobs::new::run_runbook(incident.id, run.id), now, services.settings.jobs.retry_budget)
        .await?;
    tx.commit().await?;
    services.nudge.nudge();
    info!(incident.id = %incident.id, runbook = name, run.id = run.id, "runbook {name} queued for {}", incident.id);
    Ok(run)
}

/// Records a press that was not allowed, for the audit trail, and returns the explanation.
pub async fn deny(
    services: &Services,
    id: IncidentId,
    runbook: &str,
    user: &str,
    reason: &str,
) -> Result<String, HandlerError> {
    let now = services.clock.now();
    let run = RunbookRun {
        id: 0,
        incident: id,
        runbook: runbook.to_owned(),
        params: BTreeMap::new(),
        requested_by: user.to_owned(),
        automatic: false,
        state: RunState::Denied,
        requested_at: now,
        started_at: None,
        finished_at: Some(now),
        summary: Some(reason.to_owned()),
        link: None,
        output_tail: None,
        status_ts: None,
        problem_key: None,
    };
    let mut tx = services.store.begin().await?;
    let _ = tx.create_run(&run).await?;
    let event = TimelineEvent::new(
        now,
        "runbook_denied",
        Actor::User(user.to_owned()),
        format!("{user} may not run {runbook}: {reason}"),
    );
    tx.add_timeline(id, &[event]).await?;
    tx.commit().await?;
    warn!(incident.id = %id, runbook, slack.user = user, "denied a run of {runbook}: {reason}");
    Ok(format!("You may not run {runbook}: {reason}. This attempt was recorded."))
}

/// `/incident runbooks`: what is offered here.
pub fn list(catalog: &RunbookCatalog, incident: &Incident) -> String {
    let offered = catalog.matching(&MatchInput::from_incident(incident));
    if offered.is_empty() {
        return format!("No runbook is offered for {}.", incident.id);
    }
    let mut lines = vec![format!("*Runbooks for {}*", incident.id)];
    for runbook in offered {
        let params: Vec<String> = runbook.params().iter().map(|p| format!("{}=…", p.name)).collect();
        lines.push(format!(
            "• `{}` {} — {} {}",
            runbook.name(),
            runbook.title(),
            runbook.description(),
            params.join(" ")
        ));
    }
    lines.push("Run one with `/incident run <name> [name=value …]` or its button.".to_owned());
    lines.join("\n")
}

/// Self-healing: runs the `auto` runbooks matching a newly opened (or reopened) incident, unless
/// the same problem already had an automatic run within the loop guard — then it calls people.
pub async fn self_heal(services: &Services, catalog: &RunbookCatalog, id: IncidentId) -> Result<(), HandlerError> {
    if !services.settings.runbooks.auto {
        return Ok(());
    }
    let incident = incident(services, id).await?;
    let automatic = catalog.auto_for(&MatchInput::from_incident(&incident));
    if automatic.is_empty() {
        return Ok(());
    }
    let guard = SignedDuration::try_from(services.settings.runbooks.loop_guard).unwrap_or(SignedDuration::MAX);
    let since = services.clock.now().checked_sub(guard).unwrap_or(jiff::Timestamp::MIN);
    if let Some(earlier) = services.store.last_automatic_run(incident.problem_key.as_str(), since).await? {
        return escalate(services, &incident, &earlier).await;
    }
    for runbook in automatic {
        let request = RunRequest {
            incident: id,
            runbook: runbook.name().as_str().to_owned(),
            params: BTreeMap::new(),
            requested_by: "warroom".to_owned(),
            automatic: true,
            again: true,
        };
        if let Err(e) = start(services, catalog, request).await {
            let text =
                format!(":warning: could not run {} automatically: {}", runbook.name(), super::commands::reply_for(&e));
            enqueue_post(services, id, &text).await?;
        }
    }
    Ok(())
}

/// The loop guard tripped: say what already ran and call the on-call instead of running again.
async fn escalate(services: &Services, incident: &Incident, earlier: &RunbookRun) -> Result<(), HandlerError> {
    let now = services.clock.now();
    let on_call: Vec<String> = services
        .store
        .responders(incident.id)
        .await?
        .into_iter()
        .filter(|r| matches!(r.role, crate::domain::war_room::Role::OnCall | crate::domain::war_room::Role::Lead))
        .map(|r| format!("<@{}>", r.user))
        .collect();
    let who = if on_call.is_empty() { "<!here>".to_owned() } else { on_call.join(" ") };
    let text = format!(
        ":rotating_light: {who} the problem fired again after {} ran automatically at {} ({}). warroom will not run it again within {} minutes: please take a look.",
        earlier.runbook,
        short_time(earlier.requested_at),
        earlier.state.as_str().replace('_', " "),
        services.settings.runbooks.loop_guard.as_secs() / 60
    );
    let mut tx = services.store.begin().await?;
    let event = TimelineEvent::new(
        now,
        "escalated",
        Actor::Warroom,
        format!("self-healing loop guard: {} already ran at {}", earlier.runbook, earlier.requested_at),
    );
    tx.add_timeline(incident.id, &[event]).await?;
    jobs::enqueue(
        &mut *tx,
        &jobs::new::post_markup(incident.id, &text, false),
        now,
        services.settings.jobs.retry_budget,
    )
    .await?;
    tx.commit().await?;
    services.nudge.nudge();
    Ok(())
}

async fn enqueue_post(services: &Services, id: IncidentId, text: &str) -> Result<(), HandlerError> {
    let now = services.clock.now();
    let mut tx = services.store.begin().await?;
    jobs::enqueue(&mut *tx, &jobs::new::post_markup(id, text, false), now, services.settings.jobs.retry_budget).await?;
    tx.commit().await?;
    services.nudge.nudge();
    Ok(())
}

fn find<'c>(catalog: &'c RunbookCatalog, name: &str) -> Result<&'c Runbook, HandlerError> {
    catalog.get(name).ok_or_else(|| {
        HandlerError::User(format!("There is no runbook `{name}`: `/incident runbooks` lists the ones offered here."))
    })
}

async fn incident(services: &Services, id: IncidentId) -> Result<Incident, HandlerError> {
    services.store.incident(id).await?.ok_or_else(|| HandlerError::User(format!("{id} does not exist")))
}

fn actor_of(requested_by: &str) -> Actor {
    if requested_by == "warroom" { Actor::Warroom } else { Actor::User(requested_by.to_owned()) }
}

fn requester(requested_by: &str) -> String {
    if requested_by == "warroom" { "warroom (automatic)".to_owned() } else { format!("<@{requested_by}>") }
}
