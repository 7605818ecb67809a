//! A problem delivery → open, update, resolve or reopen an incident, in one transaction with the
//! stored delivery, the timeline and the jobs it implies. A 2xx is answered only after the commit.

use std::collections::{HashMap, HashSet};

use jiff::SignedDuration;
use tracing::info;

use super::Services;
use crate::domain::incident::{Change, Decision, NewIncident, Outcome, correlate};
use crate::domain::war_room::ChannelName;
use crate::domain::{
    Actor, Alert, Incident, IncidentId, IncidentStatus, Problem, ProblemKey, SourceKind, TimelineEvent,
};
use crate::jobs::{self, NewJob};
use crate::store::{DeliveryRecord, StoreError, StoreTx};

/// What a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ingested {
    pub outcome: Outcome,
    pub incident: Option<IncidentId>,
}

/// Stores `problem` (and its raw `body`) and applies it to its incident.
pub async fn ingest(services: &Services, problem: &Problem, body: &[u8]) -> Result<Ingested, StoreError> {
    let mut tx = services.store.begin().await?;
    let applied = apply_all(services, &mut *tx, &[(problem, body)]).await?;
    commit(tx).await?;
    let Some(&(ingested, jobs)) = applied.first() else {
        return Err(StoreError::Corrupt("a delivery was applied without an outcome".to_owned()));
    };
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

/// Stores deliveries, in order, and their consequences inside `tx`; returns what each meant and
/// whether it added jobs. The caller commits (alone, or with other work: group commit).
///
/// Each delivery is decided as if it had been stored alone after the ones before it, but the
/// whole batch costs a handful of statements: one read for the incidents its keys are linked
/// to, one for their alerts, then the decisions in memory, and one multi-row write each for
/// alerts, timeline events, jobs and deliveries (plus one per incident opened or changed).
pub async fn apply_all(
    services: &Services,
    tx: &mut dyn StoreTx,
    deliveries: &[(&Problem, &[u8])],
) -> Result<Vec<(Ingested, bool)>, StoreError> {
    let now = services.clock.now();
    let mut state = Known::load(tx, deliveries).await?;
    let mut writes = Writes::default();
    let mut results = Vec::with_capacity(deliveries.len());
    for &(problem, body) in deliveries {
        let (ingested, plan) = decide(services, tx, &mut state, problem, now).await?;
        if let Some(id) = ingested.incident {
            writes.alerts.extend(problem.alerts.iter().map(|alert| (id, alert)));
            writes.events.extend(plan.events.into_iter().map(|event| (id, event)));
            writes.jobs.extend_from_slice(&plan.jobs);
        }
        writes.deliveries.push(DeliveryRecord {
            problem,
            body,
            incident: ingested.incident,
            outcome: ingested.outcome,
        });
        results.push((ingested, !plan.jobs.is_empty()));
    }

    for id in &state.changed {
        let incident = state.incidents.get(id).ok_or(StoreError::NotFound)?;
        tx.update_incident(incident, now).await?;
    }
    if !writes.alerts.is_empty() {
        tx.upsert_alerts(&writes.alerts, now).await?;
    }
    if !writes.events.is_empty() {
        let events: Vec<(IncidentId, &TimelineEvent)> = writes.events.iter().map(|(id, e)| (*id, e)).collect();
        tx.add_timeline_rows(&events).await?;
    }
    jobs::enqueue_all(tx, &writes.jobs, now, services.settings.jobs.retry_budget).await?;
    tx.record_deliveries(&writes.deliveries, now).await?;
    Ok(results)
}

/// The incidents a batch touches, as they stand after the deliveries decided so far.
struct Known {
    /// Which incident each problem key is linked to.
    links: HashMap<(SourceKind, ProblemKey), IncidentId>,
    incidents: HashMap<IncidentId, Incident>,
    alerts: HashMap<IncidentId, Vec<Alert>>,
    /// Incidents to save at the end, in the order they first changed.
    changed: Vec<IncidentId>,
}

impl Known {
    /// Reads every incident the deliveries' keys are linked to, and their alerts.
    async fn load(tx: &mut dyn StoreTx, deliveries: &[(&Problem, &[u8])]) -> Result<Self, StoreError> {
        let mut seen = HashSet::new();
        let keys: Vec<(SourceKind, &ProblemKey)> =
            deliveries.iter().map(|(p, _)| (p.source, &p.key)).filter(|key| seen.insert(*key)).collect();
        let mut known =
            Self { links: HashMap::new(), incidents: HashMap::new(), alerts: HashMap::new(), changed: Vec::new() };
        for (key, incident) in tx.linked_incidents(&keys).await? {
            known.links.insert(key, incident.id);
            known.incidents.insert(incident.id, incident);
        }
        if !known.incidents.is_empty() {
            let ids: Vec<IncidentId> = known.incidents.keys().copied().collect();
            for (id, alert) in tx.alerts_of(&ids).await? {
                known.alerts.entry(id).or_default().push(alert);
            }
        }
        Ok(known)
    }

    /// Changes incident `id` in memory with `f` and marks it to be saved.
    fn change(&mut self, id: IncidentId, f: impl FnOnce(&mut Incident) -> Outcome) -> Result<Outcome, StoreError> {
        let incident = self.incidents.get_mut(&id).ok_or(StoreError::NotFound)?;
        let outcome = f(incident);
        if !self.changed.contains(&id) {
            self.changed.push(id);
        }
        Ok(outcome)
    }
}

/// What a batch writes once every delivery is decided.
#[derive(Default)]
struct Writes<'a> {
    alerts: Vec<(IncidentId, &'a Alert)>,
    events: Vec<(IncidentId, TimelineEvent)>,
    jobs: Vec<NewJob>,
    deliveries: Vec<DeliveryRecord<'a>>,
}

/// Decides one delivery against the batch's incidents and applies it to them in memory; an
/// incident it opens is inserted (and linked) at once, for its id.
async fn decide(
    services: &Services,
    tx: &mut dyn StoreTx,
    state: &mut Known,
    problem: &Problem,
    now: jiff::Timestamp,
) -> Result<(Ingested, Plan), StoreError> {
    let settings = &services.settings.incidents;
    let window = SignedDuration::try_from(settings.reopen_window).unwrap_or(SignedDuration::MAX);
    let actor = Actor::Source(problem.source.as_str().to_owned());
    let link = (problem.source, problem.key.clone());

    let linked = state.links.get(&link).and_then(|id| state.incidents.get(id));
    let known = linked.and_then(|incident| state.alerts.get(&incident.id)).map_or(&[][..], Vec::as_slice);
    let decision = correlate(linked, known, problem, now, window);
    let linked = linked.map(|incident| incident.id);
    let mut plan = Plan { events: Vec::new(), jobs: Vec::new() };

    let (outcome, incident) = match (decision, linked) {
        (Decision::Open, _) => {
            let new = NewIncident::from_problem(problem, now);
            let id = tx.insert_incident(&new, now).await?;
            tx.link_problem(problem.source, &problem.key, id, now).await?;
            let incident = new.into_incident(id);
            // Named now, in the delivery's commit, so the war-room job can ask Slack for the
            // channel without a write of its own first (a retry must ask for the same name).
            let name = ChannelName::for_incident(&services.settings.slack.channel_name, id, incident.channel_subject());
            tx.plan_war_room(id, 0, name.as_str(), now).await?;
            state.links.insert(link, id);
            state.incidents.insert(id, incident);
            let text = format!("opened from {} problem: {}", problem.source, problem.title);
            plan.events.push(TimelineEvent::new(now, "opened", actor.clone(), text));
            plan.jobs.push(jobs::new::open_war_room(id));
            plan.jobs.push(jobs::new::self_heal(id, 0));
            (Outcome::Opened, Some(id))
        }
        (Decision::Update(changes), Some(id)) => {
            let outcome = state.change(id, |incident| {
                apply_changes(incident, problem, &changes);
                plan.record_changes(incident, &changes, &actor, now);
                plan.jobs.push(jobs::new::render_war_room(id));
                Outcome::Updated
            })?;
            (outcome, Some(id))
        }
        (Decision::Resolve(changes), Some(id)) => {
            let outcome = state.change(id, |incident| {
                plan.record_changes(incident, &changes, &actor, now);
                if settings.resolve_on_source_resolve {
                    let round = incident.reopen_count;
                    plan.events.extend(incident.resolve(&actor, None, now).unwrap_or_default());
                    plan.jobs.push(jobs::new::render_war_room(id));
                    plan.jobs.extend(jobs::new::resolution(id, round));
                    Outcome::Resolved
                } else if incident.status == IncidentStatus::Monitoring && changes.is_empty() {
                    Outcome::Duplicate
                } else {
                    if incident.status != IncidentStatus::Monitoring {
                        plan.events
                            .extend(incident.set_status(IncidentStatus::Monitoring, &actor, now).unwrap_or_default());
                    }
                    let text =
                        format!("{} reports the problem resolved; press Resolve once you agree.", problem.source);
                    plan.jobs.push(jobs::new::post_update(id, &text, true));
                    plan.jobs.push(jobs::new::render_war_room(id));
                    Outcome::Resolved
                }
            })?;
            (outcome, Some(id))
        }
        (Decision::Reopen(changes), Some(id)) => {
            let outcome = state.change(id, |incident| {
                plan.events.extend(incident.reopen(&actor, now).unwrap_or_default());
                apply_changes(incident, problem, &changes);
                plan.jobs.push(jobs::new::reopen_war_room(id, incident.reopen_count));
                plan.jobs.push(jobs::new::self_heal(id, incident.reopen_count));
                Outcome::Reopened
            })?;
            (outcome, Some(id))
        }
        (Decision::Duplicate, linked) => (Outcome::Duplicate, linked),
        (Decision::Ignore, _) => (Outcome::Ignored, None),
        (Decision::Update(_) | Decision::Resolve(_) | Decision::Reopen(_), None) => {
            return Err(StoreError::Corrupt("correlation decided a change without a linked incident".to_owned()));
        }
    };
    if let Some(id) = incident {
        Alert::merge_into(state.alerts.entry(id).or_default(), &problem.alerts);
    }
    Ok((Ingested { outcome, incident }, plan))
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
