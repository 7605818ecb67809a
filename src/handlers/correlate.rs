//! A problem delivery → open, update, resolve or reopen an incident, in one transaction with the
//! stored delivery, the timeline and the jobs it implies. A 2xx is answered only after the commit.

use jiff::SignedDuration;
use tracing::info;

use super::Services;
use crate::domain::incident::{Change, Decision, NewIncident, Outcome, correlate};
use crate::domain::{Actor, Incident, IncidentId, IncidentStatus, Problem, TimelineEvent};
use crate::jobs::{self, NewJob};
use crate::store::{StoreError, StoreTx};

/// What a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ingested {
    pub outcome: Outcome,
    pub incident: Option<IncidentId>,
}

/// Stores `problem` (and its raw `body`) and applies it to its incident.
pub async fn ingest(services: &Services, problem: &Problem, body: &[u8]) -> Result<Ingested, StoreError> {
    let mut tx = services.store.begin().await?;
    let (ingested, jobs) = apply(services, &mut *tx, problem, body).await?;
    commit(tx).await?;
    after_commit(services, problem, ingested, jobs).await;
    Ok(ingested)
}

/// What happens once a delivery is committed: wake the runner, start self-healing, log.
pub async fn after_commit(services: &Services, problem: &Problem, ingested: Ingested, jobs_added: bool) {
    let Ingested { outcome, incident } = ingested;
    if jobs_added {
        services.nudge.nudge();
    }
    info!(
        incident.id = incident.map(|i| i.to_string()),
        problem.source = %problem.source,
        outcome = outcome.as_str(),
        "{} problem delivery: {}", problem.source, outcome.as_str()
    );
}

/// Stores one delivery and its consequences inside `tx`; returns what it meant and whether it
/// added jobs. The caller commits (alone, or with other deliveries: group commit).
pub async fn apply(
    services: &Services,
    tx: &mut dyn StoreTx,
    problem: &Problem,
    body: &[u8],
) -> Result<(Ingested, bool), StoreError> {
    let now = services.clock.now();
    let settings = &services.settings.incidents;
    let window = SignedDuration::try_from(settings.reopen_window).unwrap_or(SignedDuration::MAX);
    let actor = Actor::Source(problem.source.as_str().to_owned());

    let linked = tx.linked_incident(problem.source, &problem.key).await?;
    let known = match &linked {
        Some(incident) => tx.alerts(incident.id).await?,
        None => Vec::new(),
    };
    let decision = correlate(linked.as_ref(), &known, problem, now, window);
    let mut plan = Plan { events: Vec::new(), jobs: Vec::new() };

    let (outcome, incident) = match (decision, linked) {
        (Decision::Open, _) => {
            let id = tx.insert_incident(&NewIncident::from_problem(problem, now), now).await?;
            tx.link_problem(problem.source, &problem.key, id, now).await?;
            let text = format!("opened from {} problem: {}", problem.source, problem.title);
            plan.events.push(TimelineEvent::new(now, "opened", actor.clone(), text));
            plan.jobs.push(jobs::new::open_war_room(id));
            plan.jobs.push(jobs::new::self_heal(id, 0));
            (Outcome::Opened, Some(id))
        }
        (Decision::Update(changes), Some(mut incident)) => {
            apply_changes(&mut incident, problem, &changes);
            tx.update_incident(&incident, now).await?;
            plan.record_changes(&incident, &changes, &actor, now);
            plan.jobs.push(jobs::new::render_war_room(incident.id));
            (Outcome::Updated, Some(incident.id))
        }
        (Decision::Resolve(changes), Some(mut incident)) => {
            plan.record_changes(&incident, &changes, &actor, now);
            let outcome = if settings.resolve_on_source_resolve {
                let round = incident.reopen_count;
                plan.events.extend(incident.resolve(&actor, None, now).unwrap_or_default());
                plan.jobs.push(jobs::new::render_war_room(incident.id));
                plan.jobs.extend(jobs::new::resolution(incident.id, round));
                Outcome::Resolved
            } else if incident.status == IncidentStatus::Monitoring && changes.is_empty() {
                Outcome::Duplicate
            } else {
                if incident.status != IncidentStatus::Monitoring {
                    plan.events
                        .extend(incident.set_status(IncidentStatus::Monitoring, &actor, now).unwrap_or_default());
                }
                let text = format!("{} reports the problem resolved; press Resolve once you agree.", problem.source);
                plan.jobs.push(jobs::new::post_update(incident.id, &text, true));
                plan.jobs.push(jobs::new::render_war_room(incident.id));
                Outcome::Resolved
            };
            tx.update_incident(&incident, now).await?;
            (outcome, Some(incident.id))
        }
        (Decision::Reopen(changes), Some(mut incident)) => {
            plan.events.extend(incident.reopen(&actor, now).unwrap_or_default());
            apply_changes(&mut incident, problem, &changes);
            tx.update_incident(&incident, now).await?;
            plan.jobs.push(jobs::new::reopen_war_room(incident.id, incident.reopen_count));
            plan.jobs.push(jobs::new::self_heal(incident.id, incident.reopen_count));
            (Outcome::Reopened, Some(incident.id))
        }
        (Decision::Duplicate, linked) => (Outcome::Duplicate, linked.map(|i| i.id)),
        (Decision::Ignore, _) => (Outcome::Ignored, None),
        (Decision::Update(_) | Decision::Resolve(_) | Decision::Reopen(_), None) => {
            return Err(StoreError::Corrupt("correlation decided a change without a linked incident".to_owned()));
        }
    };

    if let Some(id) = incident {
        tx.upsert_alerts(id, &problem.alerts, now).await?;
        tx.add_timeline(id, &plan.events).await?;
        for job in &plan.jobs {
            jobs::enqueue(&mut *tx, job, now, services.settings.jobs.retry_budget).await?;
        }
    }
    tx.record_delivery(problem, body, incident, outcome, now).await?;
    Ok((Ingested { outcome, incident }, !plan.jobs.is_empty()))
}

async fn commit(tx: Box<dyn StoreTx>) -> Result<(), StoreError> {
    tx.commit().await
}

/// Timeline events and jobs a decision adds.
struct Plan {
    events: Vec<TimelineEvent>,
    jobs: Vec<NewJob>,
}

impl Plan {
    fn record_changes(&mut self, incident: &Incident, changes: &[Change], actor: &Actor, now: jiff::Timestamp) {
        if changes.is_empty() {
            return;
        }
        for change in changes {
            self.events.push(TimelineEvent::new(now, change.kind(), actor.clone(), change.describe()));
        }
        let lines: Vec<String> = changes.iter().map(|c| format!("• {}", c.describe())).collect();
        self.jobs.push(jobs::new::post_update(incident.id, &lines.join("\n"), true));
    }
}

/// Copies what a source may change (title, severity, entities, link) onto the incident.
fn apply_changes(incident: &mut Incident, problem: &Problem, changes: &[Change]) {
    for change in changes {
        match change {
            Change::Title { to, .. } => incident.title.clone_from(to),
            Change::Severity { to, .. } => incident.severity = *to,
            Change::NewEntities(entities) => incident.entities.extend(entities.iter().cloned()),
            Change::NewAlert(_) | Change::AlertResolved(_) | Change::AlertRefired(_) => {}
        }
    }
    if problem.url.is_some() {
        incident.url.clone_from(&problem.url);
    }
}
