//! The incident and its state machine. A transition changes the incident and returns the timeline
//! events it caused; it never calls anything. Deciding what a source delivery means for an
//! incident ([`correlate`]) is pure too.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::{
    Actor, Alert, AlertStatus, IncidentId, Problem, ProblemKey, ProblemStatus, Severity, SourceKind, TicketKey,
    TimelineEvent,
};

/// The contract's status words, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatus {
    Open,
    Investigating,
    Identified,
    Monitoring,
    Resolved,
}

impl IncidentStatus {
    /// The lowercase word.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Investigating => "investigating",
            Self::Identified => "identified",
            Self::Monitoring => "monitoring",
            Self::Resolved => "resolved",
        }
    }
}

impl fmt::Display for IncidentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IncidentStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "open" => Ok(Self::Open),
            "investigating" => Ok(Self::Investigating),
            "identified" => Ok(Self::Identified),
            "monitoring" => Ok(Self::Monitoring),
            "resolved" => Ok(Self::Resolved),
            other => {
                Err(format!("unknown status `{other}`: use open, investigating, identified, monitoring or resolved"))
            }
        }
    }
}

/// The Slack channel of an incident, once created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRef {
    pub id: String,
    pub name: String,
}

/// warroom's record of one response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    pub id: IncidentId,
    pub title: String,
    pub severity: Severity,
    pub service: Option<String>,
    pub status: IncidentStatus,
    pub source: SourceKind,
    pub problem_key: ProblemKey,
    pub description: Option<String>,
    pub url: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub entities: Vec<String>,
    pub opened_at: Timestamp,
    pub acknowledged_at: Option<Timestamp>,
    pub acknowledged_by: Option<Actor>,
    pub resolved_at: Option<Timestamp>,
    pub resolved_by: Option<Actor>,
    pub summary: Option<String>,
    pub commander: Option<String>,
    pub assignee: Option<String>,
    pub channel: Option<ChannelRef>,
    pub ticket: Option<TicketKey>,
    /// How many times it was reopened; the current channel is the `-r<k>` one.
    pub reopen_count: u32,
}

/// Fields of an incident about to be opened (its id comes from the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIncident {
    pub title: String,
    pub severity: Severity,
    pub service: Option<String>,
    pub source: SourceKind,
    pub problem_key: ProblemKey,
    pub description: Option<String>,
    pub url: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub entities: Vec<String>,
    pub opened_at: Timestamp,
}

impl Incident {
    /// What the war-room channel is named after: the service, or else the title.
    #[must_use]
    pub fn channel_subject(&self) -> &str {
        self.service.as_deref().unwrap_or(&self.title)
    }
}

impl NewIncident {
    /// The incident as stored under `id`: open, with nothing else recorded yet.
    #[must_use]
    pub fn into_incident(self, id: IncidentId) -> Incident {
        Incident {
            id,
            title: self.title,
            severity: self.severity,
            service: self.service,
            status: IncidentStatus::Open,
            source: self.source,
            problem_key: self.problem_key,
            description: self.description,
            url: self.url,
            labels: self.labels,
            entities: self.entities,
            opened_at: self.opened_at,
            acknowledged_at: None,
            acknowledged_by: None,
            resolved_at: None,
            resolved_by: None,
            summary: None,
            commander: None,
            assignee: None,
            channel: None,
            ticket: None,
            reopen_count: 0,
        }
    }

    /// The incident a first sighting of `problem` opens.
    #[must_use]
    pub fn from_problem(problem: &Problem, now: Timestamp) -> Self {
        Self {
            title: problem.title.clone(),
            severity: problem.severity,
            service: problem.service.clone(),
            source: problem.source,
            problem_key: problem.key.clone(),
            description: problem.description.clone(),
            url: problem.url.clone(),
            labels: problem.labels.clone(),
            entities: problem.entities.clone(),
            opened_at: now,
        }
    }
}

/// A request people (or sources) make that the state machine refuses, in words for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("{id} is already resolved")]
    AlreadyResolved { id: IncidentId },
    #[error("{id} was already acknowledged by {by}")]
    AlreadyAcknowledged { id: IncidentId, by: String },
    #[error("{id} is already {status}")]
    SameStatus { id: IncidentId, status: IncidentStatus },
    #[error("{id} is {status}, not resolved, so it cannot be reopened")]
    NotResolved { id: IncidentId, status: IncidentStatus },
    #[error("status can only be set to investigating, identified or monitoring; use resolve to resolve")]
    NotAMiddleStatus,
    #[error("{id} is already {severity}")]
    SameSeverity { id: IncidentId, severity: Severity },
}

impl Incident {
    /// Someone acknowledged: `open` → `investigating`.
    pub fn acknowledge(&mut self, actor: &Actor, now: Timestamp) -> Result<Vec<TimelineEvent>, TransitionError> {
        self.ensure_not_resolved()?;
        if let Some(by) = &self.acknowledged_by {
            return Err(TransitionError::AlreadyAcknowledged { id: self.id, by: by.to_string() });
        }
        self.mark_acknowledged(actor, now);
        let mut events =
            vec![TimelineEvent::new(now, "acknowledged", actor.clone(), format!("acknowledged by {actor}"))];
        if self.status == IncidentStatus::Open {
            self.status = IncidentStatus::Investigating;
            events.push(status_event(now, actor, IncidentStatus::Investigating));
        }
        Ok(events)
    }

    /// Moves to one of the middle statuses; the first move out of `open` counts as the
    /// acknowledgement.
    pub fn set_status(
        &mut self,
        status: IncidentStatus,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Vec<TimelineEvent>, TransitionError> {
        if matches!(status, IncidentStatus::Open | IncidentStatus::Resolved) {
            return Err(TransitionError::NotAMiddleStatus);
        }
        self.ensure_not_resolved()?;
        if self.status == status {
            return Err(TransitionError::SameStatus { id: self.id, status });
        }
        let mut events = Vec::new();
        if self.acknowledged_by.is_none() {
            self.mark_acknowledged(actor, now);
            events.push(TimelineEvent::new(now, "acknowledged", actor.clone(), format!("acknowledged by {actor}")));
        }
        self.status = status;
        events.push(status_event(now, actor, status));
        Ok(events)
    }

    /// Resolves the incident, with an optional summary.
    pub fn resolve(
        &mut self,
        actor: &Actor,
        summary: Option<String>,
        now: Timestamp,
    ) -> Result<Vec<TimelineEvent>, TransitionError> {
        self.ensure_not_resolved()?;
        self.status = IncidentStatus::Resolved;
        self.resolved_at = Some(now);
        self.resolved_by = Some(actor.clone());
        let text = match &summary {
            Some(summary) => format!("resolved by {actor}: {summary}"),
            None => format!("resolved by {actor}"),
        };
        self.summary = summary;
        Ok(vec![TimelineEvent::new(now, "resolved", actor.clone(), text)])
    }

    /// Reopens a resolved incident: back to `open`, acknowledgement and resolution cleared.
    pub fn reopen(&mut self, actor: &Actor, now: Timestamp) -> Result<Vec<TimelineEvent>, TransitionError> {
        if self.status != IncidentStatus::Resolved {
            return Err(TransitionError::NotResolved { id: self.id, status: self.status });
        }
        self.status = IncidentStatus::Open;
        self.resolved_at = None;
        self.resolved_by = None;
        self.acknowledged_at = None;
        self.acknowledged_by = None;
        self.summary = None;
        self.reopen_count += 1;
        Ok(vec![TimelineEvent::new(
            now,
            "reopened",
            actor.clone(),
            format!("reopened by {actor}: the problem fired again"),
        )])
    }

    /// Changes the severity.
    pub fn set_severity(
        &mut self,
        severity: Severity,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Vec<TimelineEvent>, TransitionError> {
        if self.severity == severity {
            return Err(TransitionError::SameSeverity { id: self.id, severity });
        }
        let from = self.severity;
        self.severity = severity;
        Ok(vec![TimelineEvent::new(
            now,
            "severity_changed",
            actor.clone(),
            format!("severity {from} → {severity} by {actor}"),
        )])
    }

    fn ensure_not_resolved(&self) -> Result<(), TransitionError> {
        if self.status == IncidentStatus::Resolved {
            return Err(TransitionError::AlreadyResolved { id: self.id });
        }
        Ok(())
    }

    fn mark_acknowledged(&mut self, actor: &Actor, now: Timestamp) {
        self.acknowledged_at = Some(now);
        self.acknowledged_by = Some(actor.clone());
    }
}

fn status_event(now: Timestamp, actor: &Actor, status: IncidentStatus) -> TimelineEvent {
    TimelineEvent::new(now, "status_changed", actor.clone(), format!("status set to {status} by {actor}"))
}

/// What a delivery means, as the webhook answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Opened,
    Updated,
    Duplicate,
    Resolved,
    Reopened,
    Ignored,
}

impl Outcome {
    /// The contract's word.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Updated => "updated",
            Self::Duplicate => "duplicate",
            Self::Resolved => "resolved",
            Self::Reopened => "reopened",
            Self::Ignored => "ignored",
        }
    }
}

/// What changed in an open incident because of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// An alert not seen before, firing.
    NewAlert(Alert),
    /// A known alert stopped firing.
    AlertResolved(Alert),
    /// A known, resolved alert fires again.
    AlertRefired(Alert),
    Title {
        from: String,
        to: String,
    },
    Severity {
        from: Severity,
        to: Severity,
    },
    NewEntities(Vec<String>),
}

impl Change {
    /// One line for the timeline and the incident thread.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::NewAlert(a) => format!("new alert firing: {}", a.summary),
            Self::AlertResolved(a) => format!("alert resolved: {}", a.summary),
            Self::AlertRefired(a) => format!("alert firing again: {}", a.summary),
            Self::Title { to, .. } => format!("title changed to \"{to}\""),
            Self::Severity { from, to } => format!("severity {from} → {to} (source)"),
            Self::NewEntities(e) => format!("newly impacted: {}", e.join(", ")),
        }
    }

    /// The timeline kind.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NewAlert(_) => "alert_firing",
            Self::AlertResolved(_) => "alert_resolved",
            Self::AlertRefired(_) => "alert_refired",
            Self::Title { .. } => "title_changed",
            Self::Severity { .. } => "severity_changed",
            Self::NewEntities(_) => "entities_changed",
        }
    }
}

/// The decision for one delivery, given what is already known about its problem key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// First sight (or a resolved incident outside the reopen window): open a new incident.
    Open,
    /// The open incident changed.
    Update(Vec<Change>),
    /// Nothing changed (a repeat).
    Duplicate,
    /// The source resolved the problem; `changes` are the alert transitions it carried.
    Resolve(Vec<Change>),
    /// A resolved incident fires again within the reopen window.
    Reopen(Vec<Change>),
    /// A resolution of a problem never seen open.
    Ignore,
}

impl Decision {
    /// The webhook outcome word.
    #[must_use]
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::Open => Outcome::Opened,
            Self::Update(_) => Outcome::Updated,
            Self::Duplicate => Outcome::Duplicate,
            Self::Resolve(_) => Outcome::Resolved,
            Self::Reopen(_) => Outcome::Reopened,
            Self::Ignore => Outcome::Ignored,
        }
    }
}

/// Decides what `problem` means for the incident its key is linked to (if any), whose alerts are
/// `known`. Pure: the caller applies the decision inside one transaction.
#[must_use]
pub fn correlate(
    linked: Option<&Incident>,
    known: &[Alert],
    problem: &Problem,
    now: Timestamp,
    reopen_window: SignedDuration,
) -> Decision {
    let Some(incident) = linked else {
        return match problem.status {
            ProblemStatus::Firing => Decision::Open,
            ProblemStatus::Resolved => Decision::Ignore,
        };
    };
    if incident.status == IncidentStatus::Resolved {
        let within_window = incident.resolved_at.is_none_or(|resolved| now.duration_since(resolved) <= reopen_window);
        return match (problem.status, within_window) {
            (ProblemStatus::Firing, true) => Decision::Reopen(alert_changes(known, problem)),
            (ProblemStatus::Firing, false) => Decision::Open,
            (ProblemStatus::Resolved, true) => Decision::Duplicate,
            (ProblemStatus::Resolved, false) => Decision::Ignore,
        };
    }
    let mut changes = alert_changes(known, problem);
    if problem.status == ProblemStatus::Resolved {
        return Decision::Resolve(changes);
    }
    if problem.title != incident.title {
        changes.push(Change::Title { from: incident.title.clone(), to: problem.title.clone() });
    }
    if problem.severity != incident.severity {
        changes.push(Change::Severity { from: incident.severity, to: problem.severity });
    }
    let new_entities: Vec<String> =
        problem.entities.iter().filter(|e| !incident.entities.contains(e)).cloned().collect();
    if !new_entities.is_empty() {
        changes.push(Change::NewEntities(new_entities));
    }
    if changes.is_empty() { Decision::Duplicate } else { Decision::Update(changes) }
}

/// Alert transitions a delivery carries, by fingerprint.
fn alert_changes(known: &[Alert], problem: &Problem) -> Vec<Change> {
    problem
        .alerts
        .iter()
        .filter_map(|alert| match (known.iter().find(|k| k.fingerprint == alert.fingerprint), alert.status) {
            (None, AlertStatus::Firing) => Some(Change::NewAlert(alert.clone())),
            (None, AlertStatus::Resolved) => Some(Change::AlertResolved(alert.clone())),
            (Some(k), AlertStatus::Resolved) if k.status == AlertStatus::Firing => {
                Some(Change::AlertResolved(alert.clone()))
            }
            (Some(k), AlertStatus::Firing) if k.status == AlertStatus::Resolved => {
                Some(Change::AlertRefired(alert.clone()))
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(fp: &str, status: AlertStatus) -> Alert {
        Alert {
            fingerprint: fp.to_owned(),
            status,
            summary: format!("alert {fp}"),
            labels: BTreeMap::new(),
            starts_at: None,
            ends_at: None,
            url: None,
        }
    }

    fn problem(status: ProblemStatus, alerts: Vec<Alert>) -> Problem {
        Problem {
            source: SourceKind::Alertmanager,
            key: ProblemKey::new("group").unwrap(),
            title: "High error rate".to_owned(),
            severity: Severity::Sev1,
            service: Some("checkout".to_owned()),
            status,
            description: None,
            url: None,
            labels: BTreeMap::new(),
            entities: vec![],
            alerts,
            display_id: None,
        }
    }

    fn incident(status: IncidentStatus) -> Incident {
        let p = problem(ProblemStatus::Firing, vec![]);
        let n = NewIncident::from_problem(&p, Timestamp::UNIX_EPOCH);
        Incident {
            status,
            url: None,
            resolved_at: (status == IncidentStatus::Resolved).then_some(Timestamp::UNIX_EPOCH),
            ..n.into_incident(IncidentId::from_seq(1))
        }
    }

    const WINDOW: SignedDuration = SignedDuration::from_hours(24);

    #[test]
    fn a_firing_problem_never_seen_opens_an_incident() {
        let p = problem(ProblemStatus::Firing, vec![alert("a", AlertStatus::Firing)]);
        assert_eq!(correlate(None, &[], &p, Timestamp::UNIX_EPOCH, WINDOW), Decision::Open);
    }

    #[test]
    fn a_resolution_of_a_problem_never_seen_is_ignored() {
        let p = problem(ProblemStatus::Resolved, vec![]);
        assert_eq!(correlate(None, &[], &p, Timestamp::UNIX_EPOCH, WINDOW), Decision::Ignore);
    }

    #[test]
    fn a_repeat_that_changes_nothing_is_a_duplicate() {
        let known = [alert("a", AlertStatus::Firing)];
        let p = problem(ProblemStatus::Firing, known.to_vec());
        let i = incident(IncidentStatus::Investigating);
        assert_eq!(correlate(Some(&i), &known, &p, Timestamp::UNIX_EPOCH, WINDOW), Decision::Duplicate);
    }

    #[test]
    fn a_partial_recovery_updates_and_keeps_the_incident_open() {
        let known = [alert("a", AlertStatus::Firing), alert("b", AlertStatus::Firing)];
        let p =
            problem(ProblemStatus::Firing, vec![alert("a", AlertStatus::Resolved), alert("b", AlertStatus::Firing)]);
        let i = incident(IncidentStatus::Open);
        let decision = correlate(Some(&i), &known, &p, Timestamp::UNIX_EPOCH, WINDOW);
        assert_eq!(decision, Decision::Update(vec![Change::AlertResolved(alert("a", AlertStatus::Resolved))]));
    }

    #[test]
    fn a_resolved_incident_firing_again_reopens_only_within_the_window() {
        let i = incident(IncidentStatus::Resolved);
        let p = problem(ProblemStatus::Firing, vec![]);
        let inside = Timestamp::UNIX_EPOCH + SignedDuration::from_hours(23);
        let outside = Timestamp::UNIX_EPOCH + SignedDuration::from_hours(25);
        assert_eq!(correlate(Some(&i), &[], &p, inside, WINDOW), Decision::Reopen(vec![]));
        assert_eq!(correlate(Some(&i), &[], &p, outside, WINDOW), Decision::Open);
    }

    #[test]
    fn acknowledging_moves_open_to_investigating_once() {
        let mut i = incident(IncidentStatus::Open);
        let ana = Actor::User("U1".to_owned());
        let events = i.acknowledge(&ana, Timestamp::UNIX_EPOCH).unwrap();
        assert_eq!(i.status, IncidentStatus::Investigating);
        assert_eq!(events.len(), 2);
        assert!(matches!(i.acknowledge(&ana, Timestamp::UNIX_EPOCH), Err(TransitionError::AlreadyAcknowledged { .. })));
    }

    #[test]
    fn the_first_status_change_counts_as_the_acknowledgement() {
        let mut i = incident(IncidentStatus::Open);
        let ana = Actor::User("U1".to_owned());
        i.set_status(IncidentStatus::Identified, &ana, Timestamp::UNIX_EPOCH).unwrap();
        assert_eq!(i.acknowledged_by, Some(ana.clone()));
        assert_eq!(
            i.set_status(IncidentStatus::Resolved, &ana, Timestamp::UNIX_EPOCH),
            Err(TransitionError::NotAMiddleStatus)
        );
    }

    #[test]
    fn a_resolved_incident_refuses_further_changes_until_reopened() {
        let mut i = incident(IncidentStatus::Monitoring);
        let ana = Actor::User("U1".to_owned());
        i.resolve(&ana, Some("rolled back".to_owned()), Timestamp::UNIX_EPOCH).unwrap();
        assert!(i.resolve(&ana, None, Timestamp::UNIX_EPOCH).is_err());
        assert!(i.acknowledge(&ana, Timestamp::UNIX_EPOCH).is_err());
        i.reopen(&Actor::Source("alertmanager".to_owned()), Timestamp::UNIX_EPOCH).unwrap();
        assert_eq!((i.status, i.reopen_count, i.resolved_at), (IncidentStatus::Open, 1, None));
    }
}
