//! Pure Block Kit renderers: an incident's state in, Slack blocks out. Nothing here does IO; the
//! caller sends a [`Rendered`] with `chat.postMessage` or `chat.update`.
//!
//! # Text safety
//!
//! Everything a person or a source wrote (titles, summaries, services, entities, alert summaries,
//! notes) goes through [`escape`] before it lands in `mrkdwn`, so `<!channel>` or `<https://…|…>`
//! in a title stays text. Plain-text objects (the header, button labels, dialog titles) are never
//! parsed by Slack and carry text as it is.
//!
//! # Limits
//!
//! Slack rejects a header over 150 characters, a section text over 3000, a field over 2000 and a
//! section with more than 10 fields, so every renderer truncates with "…" instead of failing the
//! post. Long lists (entities, firing alerts, notes) are capped and end with "and N more".
//!
//! # Buttons
//!
//! Button `action_id`s carry a version prefix (`v1:ack`, `v1:resolve`, `v1:run:<runbook>`) and
//! their `value` the incident id, so buttons on old messages keep working after upgrades;
//! [`parse_action`] reads them back.

use jiff::tz::Offset;
use jiff::{SignedDuration, Timestamp};
use slack_morphism::prelude::*;

use crate::domain::{Actor, Alert, AlertStatus, Incident, IncidentStatus, Severity, TimelineEvent};

/// The `action_id` of the *Acknowledge* button.
pub const ACK_ACTION: &str = "v1:ack";
/// The `action_id` of the *Resolve* button.
pub const RESOLVE_ACTION: &str = "v1:resolve";
/// The `block_id` of the context message's buttons.
pub const ACTIONS_BLOCK_ID: &str = "incident_actions";

/// The prefix of a runbook button's `action_id`; the runbook name follows it.
const RUN_ACTION_PREFIX: &str = "v1:run:";

/// Slack's limit on a header block's text, in characters.
const HEADER_MAX: usize = 150;
/// Slack's limit on a channel topic, in characters.
const TOPIC_MAX: usize = 250;
/// Slack's limit on a section block's text, in characters.
const SECTION_MAX: usize = 3000;
/// Slack's limit on one section field, in characters.
const FIELD_MAX: usize = 2000;
/// Slack's limit on a confirm dialog's title, in characters.
const DIALOG_TITLE_MAX: usize = 100;
/// Impacted entities listed by name before "and N more".
const ENTITIES_SHOWN: usize = 10;
/// Firing alerts listed by summary before "and N more".
const FIRING_ALERTS_SHOWN: usize = 5;
/// Notes listed in the resolution summary before "and N more".
const NOTES_SHOWN: usize = 20;
/// A problem key longer than this is shortened in the context message.
const PROBLEM_KEY_SHOWN: usize = 120;

/// Everything the context message shows.
#[derive(Debug, Clone, Copy)]
pub struct ContextView<'a> {
    /// The incident, in its current state.
    pub incident: &'a Incident,
    /// The incident's alerts, firing and resolved.
    pub alerts: &'a [Alert],
    /// Slack user ids of the people on call, rendered as mentions.
    pub on_call: &'a [String],
    /// The incident's ticket, once the desk created it.
    pub ticket: Option<TicketLink<'a>>,
    /// The id of the archived channel, when this is a reopened incident's `-r<k>` channel.
    pub previous_channel: Option<&'a str>,
    /// Runbooks offered for this incident, as buttons (`v1:run:<name>`).
    pub runbooks: &'a [RunbookButton],
    /// The service's last deployment, as one line of mrkdwn (already escaped).
    pub last_deployment: Option<&'a str>,
}

/// A runbook offered on the context message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunbookButton {
    /// The runbook's name: the button's action id is `v1:run:<name>`.
    pub name: String,
    pub label: String,
    /// `primary`, `danger`, or anything else for the default style.
    pub style: String,
    /// The confirm dialog's text, filled in for this incident.
    pub confirm: Option<String>,
}

/// A ticket as the context message links it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketLink<'a> {
    /// The ticket key, such as `WR-3` or `OPS-154`.
    pub key: &'a str,
    /// Where people open the ticket.
    pub url: &'a str,
}

/// A message ready to post: the notification fallback and the blocks.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The `text` Slack shows in notifications and in clients that cannot show blocks.
    pub text: String,
    /// The Block Kit blocks.
    pub blocks: Vec<SlackBlock>,
}

/// What a button press asks for, read back from its `action_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ButtonAction {
    /// *Acknowledge*.
    Ack,
    /// *Resolve*.
    Resolve,
    /// Run the named runbook.
    Run(String),
}

/// Renders the incident's context message: what is wrong, how bad, who is on it, and the buttons
/// to act. Once the incident is resolved the buttons give way to who resolved it and the summary.
#[must_use]
pub fn context_message(view: &ContextView<'_>) -> Rendered {
    let incident = view.incident;
    let mut blocks = vec![header(incident)];
    blocks.push(SlackSectionBlock::new().with_fields(context_fields(view)).into());
    if !incident.entities.is_empty() {
        blocks.push(section(&entities_text(&incident.entities)));
    }
    if !view.alerts.is_empty() {
        blocks.push(section(&alerts_text(view.alerts)));
    }
    if let Some(description) = &incident.description {
        blocks.push(section(&format!("*Description*\n{}", escape(description))));
    }
    if incident.status == IncidentStatus::Resolved {
        blocks.push(section(&resolved_text(incident)));
        if let Some(summary) = &incident.summary {
            blocks.push(section(&format!("*Summary*\n{}", escape(summary))));
        }
    } else {
        blocks.push(actions(incident).into());
        if !view.runbooks.is_empty() {
            blocks.push(runbook_actions(incident, view.runbooks).into());
        }
    }
    blocks.push(footer(view).into());
    Rendered { text: fallback(incident), blocks }
}

/// The channel topic, such as `sev1 · High error rate · WR-3`. Only the title is shortened to fit
/// Slack's 250 characters, so the severity and the ticket key stay visible. Slack shows topics
/// without formatting, so nothing is escaped.
#[must_use]
pub fn topic(incident: &Incident, ticket: Option<&str>) -> String {
    let prefix = format!("{} · ", incident.severity);
    let suffix = ticket.map(|key| format!(" · {key}")).unwrap_or_default();
    let budget = TOPIC_MAX.saturating_sub(prefix.chars().count() + suffix.chars().count());
    let title = truncate(&one_line(&incident.title), budget.max(1));
    truncate(&format!("{prefix}{title}{suffix}"), TOPIC_MAX)
}

/// One section for a thread update. `text` is plain text and is escaped.
#[must_use]
pub fn update_line(text: &str) -> Rendered {
    let escaped = escape(text);
    Rendered { blocks: vec![section(&escaped)], text: truncate_mrkdwn(&escaped, SECTION_MAX) }
}

/// One section of text that is already Slack mrkdwn (mentions, emphasis): the caller has
/// escaped whatever people typed inside it.
#[must_use]
pub fn update_markup(mrkdwn: &str) -> Rendered {
    Rendered { blocks: vec![section(mrkdwn)], text: truncate_mrkdwn(mrkdwn, SECTION_MAX) }
}

/// Replaces bare Slack user ids (`U0ANA`, `W123`) in already-escaped text with mentions.
#[must_use]
pub fn mention_ids(escaped: &str) -> String {
    static USER_ID: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"\b([UW][A-Z0-9]{4,})\b").expect("valid pattern"));
    USER_ID.replace_all(escaped, "<@$1>").into_owned()
}

/// The message posted on resolve: how long the incident lasted, who acknowledged it and how
/// quickly, the summary, and the notes people added. `notes` may be the whole timeline: only
/// events of kind `note` are listed.
#[must_use]
pub fn resolution_summary(incident: &Incident, notes: &[TimelineEvent]) -> Rendered {
    let lasted = incident.resolved_at.map(|resolved| format_duration(resolved.duration_since(incident.opened_at)));
    let headline = match &lasted {
        Some(lasted) => {
            format!(":white_check_mark: *{} resolved* after {lasted}: {}", incident.id, escape(&incident.title))
        }
        None => format!(":white_check_mark: *{} resolved*: {}", incident.id, escape(&incident.title)),
    };
    let mut blocks = vec![section(&headline)];
    let mut fields =
        vec![field("Opened", &format_time(incident.opened_at)), field("Acknowledged", &acknowledged_text(incident))];
    fields.push(field(
        "Resolved",
        &match (&incident.resolved_by, incident.resolved_at) {
            (Some(by), Some(at)) => format!("by {} at {}", actor(by), format_time(at)),
            (None, Some(at)) => format_time(at),
            (Some(by), None) => format!("by {}", actor(by)),
            (None, None) => "not yet".to_owned(),
        },
    ));
    if let Some(lasted) = &lasted {
        fields.push(field("Duration", lasted));
    }
    blocks.push(SlackSectionBlock::new().with_fields(fields).into());
    if let Some(summary) = &incident.summary {
        blocks.push(section(&format!("*Summary*\n{}", escape(summary))));
    }
    let notes: Vec<&TimelineEvent> = notes.iter().filter(|e| e.kind == "note").collect();
    if !notes.is_empty() {
        let mut lines: Vec<String> = notes
            .iter()
            .take(NOTES_SHOWN)
            .map(|note| format!("• {}: {}", actor(&note.actor), escape(&one_line(&note.text))))
            .collect();
        if notes.len() > NOTES_SHOWN {
            lines.push(format!("…and {} more in the timeline", notes.len() - NOTES_SHOWN));
        }
        blocks.push(section(&format!("*Notes*\n{}", lines.join("\n"))));
    }
    let text = match &lasted {
        Some(lasted) => format!("{} resolved after {lasted}", incident.id),
        None => format!("{} resolved", incident.id),
    };
    Rendered { text: format!("{text}: {}", escape(&one_line(&incident.title))), blocks }
}

/// The first message of a reopened incident's `-r<k>` channel, linking the archived one.
#[must_use]
pub fn reopened_intro(incident: &Incident, previous_channel_id: &str) -> Rendered {
    let text = format!(
        "{} was reopened: the problem fired again. Earlier discussion: <#{}>",
        incident.id,
        escape(previous_channel_id)
    );
    Rendered { blocks: vec![section(&text)], text }
}

/// The `action_id` of the button that runs `runbook`: `v1:run:<runbook>`.
#[must_use]
pub fn run_action(runbook: &str) -> String {
    format!("{RUN_ACTION_PREFIX}{runbook}")
}

/// Reads a button's `action_id` back; `None` for ids of another version or unknown ones.
#[must_use]
pub fn parse_action(action_id: &str) -> Option<ButtonAction> {
    match action_id {
        ACK_ACTION => Some(ButtonAction::Ack),
        RESOLVE_ACTION => Some(ButtonAction::Resolve),
        _ => action_id
            .strip_prefix(RUN_ACTION_PREFIX)
            .filter(|runbook| !runbook.is_empty())
            .map(|runbook| ButtonAction::Run(runbook.to_owned())),
    }
}

/// Makes text safe inside `mrkdwn` by escaping `&`, `<` and `>` as Slack asks, so it can no
/// longer form links, mentions or `<!channel>` pings.
#[must_use]
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// The emoji that marks a severity: red for the worst, white for the least.
#[must_use]
pub fn severity_emoji(severity: Severity) -> &'static str {
    match severity {
        Severity::Sev1 => ":red_circle:",
        Severity::Sev2 => ":large_orange_circle:",
        Severity::Sev3 => ":large_yellow_circle:",
        Severity::Sev4 => ":white_circle:",
    }
}

fn header(incident: &Incident) -> SlackBlock {
    let text = truncate(&format!("{}: {}", incident.id, one_line(&incident.title)), HEADER_MAX);
    SlackHeaderBlock::new(pt!(text)).into()
}

fn context_fields(view: &ContextView<'_>) -> Vec<SlackBlockText> {
    let incident = view.incident;
    let mut fields = vec![
        field("Severity", &format!("{} {}", severity_emoji(incident.severity), incident.severity)),
        field("Status", incident.status.as_str()),
        field("Service", &incident.service.as_deref().map_or_else(|| "_not set_".to_owned(), escape)),
        field("Source", &source_text(incident)),
        field("Opened", &format_time(incident.opened_at)),
        field("Acknowledged", &acknowledged_text(incident)),
        field("On call", &on_call_text(view.on_call)),
        field(
            "Ticket",
            &view.ticket.map_or_else(|| "_not created yet_".to_owned(), |ticket| link(ticket.url, ticket.key)),
        ),
    ];
    // At most 10 fields per section: these two are shown only once someone holds the role.
    if let Some(lead) = &incident.commander {
        fields.push(field("Lead", &mention(lead)));
    }
    if let Some(assignee) = &incident.assignee {
        fields.push(field("Assignee", &mention(assignee)));
    }
    fields
}

fn source_text(incident: &Incident) -> String {
    let source = incident.source.as_str();
    match &incident.url {
        Some(url) => format!("{source} · {}", link(url, "open problem")),
        None => source.to_owned(),
    }
}

fn acknowledged_text(incident: &Incident) -> String {
    match (&incident.acknowledged_by, incident.acknowledged_at) {
        (Some(by), Some(at)) => format!(
            "by {} at {} ({} after opening)",
            actor(by),
            format_time(at),
            format_duration(at.duration_since(incident.opened_at))
        ),
        (Some(by), None) => format!("by {}", actor(by)),
        (None, Some(at)) => format_time(at),
        (None, None) => "_not yet_".to_owned(),
    }
}

fn on_call_text(on_call: &[String]) -> String {
    if on_call.is_empty() {
        return "_nobody found_".to_owned();
    }
    on_call.iter().map(|id| mention(id)).collect::<Vec<_>>().join(", ")
}

fn entities_text(entities: &[String]) -> String {
    let mut shown = entities.iter().take(ENTITIES_SHOWN).map(|e| escape(e)).collect::<Vec<_>>().join(", ");
    if entities.len() > ENTITIES_SHOWN {
        shown.push_str(&format!(" and {} more", entities.len() - ENTITIES_SHOWN));
    }
    format!("*Impacted ({})*\n{shown}", entities.len())
}

fn alerts_text(alerts: &[Alert]) -> String {
    let firing: Vec<&Alert> = alerts.iter().filter(|a| a.status == AlertStatus::Firing).collect();
    let resolved = alerts.len() - firing.len();
    let mut lines = vec![format!("*Alerts* ({} firing, {resolved} resolved)", firing.len())];
    lines.extend(firing.iter().take(FIRING_ALERTS_SHOWN).map(|alert| {
        let summary = one_line(&alert.summary);
        match &alert.url {
            Some(url) => format!("• {}", link(url, &summary)),
            None => format!("• {}", escape(&summary)),
        }
    }));
    if firing.len() > FIRING_ALERTS_SHOWN {
        lines.push(format!("• …and {} more firing", firing.len() - FIRING_ALERTS_SHOWN));
    }
    lines.join("\n")
}

fn resolved_text(incident: &Incident) -> String {
    let mut text = ":white_check_mark: Resolved".to_owned();
    if let Some(by) = &incident.resolved_by {
        text.push_str(&format!(" by {}", actor(by)));
    }
    if let Some(at) = incident.resolved_at {
        text.push_str(&format!(
            " at {} (after {})",
            format_time(at),
            format_duration(at.duration_since(incident.opened_at))
        ));
    }
    text
}

fn actions(incident: &Incident) -> SlackActionsBlock {
    let value = incident.id.to_string();
    let mut buttons: Vec<SlackActionBlockElement> = Vec::new();
    if incident.acknowledged_by.is_none() {
        buttons.push(
            SlackBlockButtonElement::new(pt!("Acknowledge"))
                .with_action_id(ACK_ACTION.into())
                .with_value(value.clone())
                .with_style(SlackBlockButtonStyle::Primary)
                .into(),
        );
    }
    let confirm = SlackBlockConfirmItem::new(
        pt!(truncate(&format!("Resolve {}?", incident.id), DIALOG_TITLE_MAX)),
        md!(
            "This closes the ticket, attaches the transcript and archives this channel. If the \
             problem fires again, {} is reopened in a new channel.",
            incident.id
        ),
        pt!("Resolve"),
        pt!("Cancel"),
    )
    .with_style("danger".to_owned());
    buttons.push(
        SlackBlockButtonElement::new(pt!("Resolve"))
            .with_action_id(RESOLVE_ACTION.into())
            .with_value(value)
            .with_style(SlackBlockButtonStyle::Danger)
            .with_confirm(confirm)
            .into(),
    );
    SlackActionsBlock::new(buttons).with_block_id(ACTIONS_BLOCK_ID.into())
}

/// Block id of the runbook buttons.
pub const RUNBOOKS_BLOCK_ID: &str = "incident_runbooks";

/// At most 25 elements per actions block (Slack's limit).
const MAX_BUTTONS: usize = 25;

fn runbook_actions(incident: &Incident, runbooks: &[RunbookButton]) -> SlackActionsBlock {
    let value = incident.id.to_string();
    let buttons: Vec<SlackActionBlockElement> = runbooks
        .iter()
        .take(MAX_BUTTONS)
        .map(|runbook| {
            let mut button = SlackBlockButtonElement::new(pt!(truncate(&runbook.label, 75)))
                .with_action_id(run_action(&runbook.name).into())
                .with_value(value.clone());
            match runbook.style.as_str() {
                "primary" => button = button.with_style(SlackBlockButtonStyle::Primary),
                "danger" => button = button.with_style(SlackBlockButtonStyle::Danger),
                _ => {}
            }
            if let Some(text) = &runbook.confirm {
                let confirm = SlackBlockConfirmItem::new(
                    pt!(truncate(&format!("Run {}?", runbook.name), DIALOG_TITLE_MAX)),
                    md!(truncate_mrkdwn(&escape(text), 300)),
                    pt!("Run"),
                    pt!("Cancel"),
                );
                button = button.with_confirm(if runbook.style == "danger" {
                    confirm.with_style("danger".to_owned())
                } else {
                    confirm
                });
            }
            button.into()
        })
        .collect();
    SlackActionsBlock::new(buttons).with_block_id(RUNBOOKS_BLOCK_ID.into())
}

fn footer(view: &ContextView<'_>) -> SlackContextBlock {
    let incident = view.incident;
    let mut elements: Vec<SlackContextBlockElement> = vec![md!(
        "{} problem `{}`",
        incident.source,
        escape(&truncate(&one_line(incident.problem_key.as_str()), PROBLEM_KEY_SHOWN))
    )];
    if let Some(previous) = view.previous_channel {
        elements.push(md!("Reopened: earlier discussion in <#{}>", escape(previous)));
    }
    if let Some(deployment) = view.last_deployment {
        elements.push(md!("Last deployment: {}", deployment));
    }
    SlackContextBlock::new(elements)
}

fn fallback(incident: &Incident) -> String {
    format!("{} · {} · {}: {}", incident.id, incident.severity, incident.status, escape(&one_line(&incident.title)))
}

/// A section with `mrkdwn` text, shortened to Slack's limit.
fn section(text: &str) -> SlackBlock {
    SlackSectionBlock::new().with_text(md!(truncate_mrkdwn(text, SECTION_MAX))).into()
}

/// A section field: a bold label over a `mrkdwn` value.
fn field(label: &str, value: &str) -> SlackBlockText {
    md!(truncate_mrkdwn(&format!("*{label}*\n{value}"), FIELD_MAX))
}

/// How an actor reads in a message: a mention, a source, or warroom.
fn actor(actor: &Actor) -> String {
    match actor {
        Actor::User(id) => mention(id),
        Actor::Source(name) => format!("the {} source", escape(name)),
        Actor::Warroom => "warroom".to_owned(),
    }
}

fn mention(user_id: &str) -> String {
    format!("<@{}>", escape(user_id))
}

/// A `mrkdwn` link. `|` would end the URL early, so it is percent-encoded.
fn link(url: &str, label: &str) -> String {
    format!("<{}|{}>", escape(&url.replace('|', "%7C")), escape(&one_line(label)))
}

/// A UTC time as people read it: `2026-11-22 08:00 UTC`.
fn format_time(at: Timestamp) -> String {
    let t = Offset::UTC.to_datetime(at);
    format!("{:04}-{:02}-{:02} {:02}:{:02} UTC", t.year(), t.month(), t.day(), t.hour(), t.minute())
}

/// A duration as people read it: `1h 12m`, `2d 3h`, `12m`.
fn format_duration(duration: SignedDuration) -> String {
    let minutes = duration.as_secs().max(0) / 60;
    let (days, hours, minutes) = (minutes / (24 * 60), minutes / 60 % 24, minutes % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => "under a minute".to_owned(),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// Folds newlines and runs of whitespace into single spaces, for one-line places.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Shortens `text` to at most `max` characters, ending with "…" when it cut.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max.saturating_sub(1)).collect();
    format!("{}…", kept.trim_end())
}

/// Like [`truncate`], but never cuts inside an escape (`&amp;`) or a `<…>` link or mention,
/// which Slack would show as broken markup.
fn truncate_mrkdwn(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut kept: String = text.chars().take(max.saturating_sub(1)).collect();
    for (opener, closer) in [('<', '>'), ('&', ';')] {
        if let Some(open) = kept.rfind(opener) {
            if !kept[open..].contains(closer) {
                kept.truncate(open);
            }
        }
    }
    format!("{}…", kept.trim_end())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use insta::{assert_json_snapshot, assert_snapshot};
    use serde_json::{Value, json};

    use super::*;
    use crate::domain::incident::NewIncident;
    use crate::domain::{IncidentId, ProblemKey, SourceKind};

    fn at(text: &str) -> Timestamp {
        text.parse().expect("a valid test timestamp")
    }

    fn user(id: &str) -> Actor {
        Actor::User(id.to_owned())
    }

    /// A fresh sev1 incident from Alertmanager, opened at 08:00 UTC.
    fn incident() -> Incident {
        NewIncident {
            title: "High error rate on checkout".to_owned(),
            severity: Severity::Sev1,
            service: Some("checkout".to_owned()),
            source: SourceKind::Alertmanager,
            problem_key: ProblemKey::new(r#"{}:{alertname="HighErrorRate", service="checkout"}"#)
                .expect("a non-empty key"),
            description: None,
            url: Some("http://alertmanager:9093/#/alerts?silenced=false&receiver=warroom".to_owned()),
            labels: BTreeMap::new(),
            entities: vec!["checkout-7f9c".to_owned(), "checkout-b21d".to_owned()],
            opened_at: at("2026-11-22T08:00:00Z"),
        }
        .into_incident(IncidentId::from_seq(7))
    }

    fn alert(fingerprint: &str, status: AlertStatus, summary: &str) -> Alert {
        Alert {
            fingerprint: fingerprint.to_owned(),
            status,
            summary: summary.to_owned(),
            labels: BTreeMap::new(),
            starts_at: Some(at("2026-11-22T07:58:00Z")),
            ends_at: None,
            url: None,
        }
    }

    fn two_firing_alerts() -> Vec<Alert> {
        let mut first = alert("a1", AlertStatus::Firing, "5xx ratio 12% on checkout-7f9c (threshold 5%)");
        first.url = Some("http://prometheus:9090/graph?g0.expr=job%3Acheckout".to_owned());
        vec![first, alert("b2", AlertStatus::Firing, "5xx ratio 9% on checkout-b21d (threshold 5%)")]
    }

    fn on_call() -> Vec<String> {
        vec!["U0ANA".to_owned(), "U0BEN".to_owned()]
    }

    const TICKET: TicketLink<'static> = TicketLink { key: "WR-3", url: "http://warroom.example/api/tickets/WR-3" };

    fn view<'a>(incident: &'a Incident, alerts: &'a [Alert], on_call: &'a [String]) -> ContextView<'a> {
        ContextView {
            incident,
            alerts,
            on_call,
            ticket: Some(TICKET),
            previous_channel: None,
            runbooks: &[],
            last_deployment: None,
        }
    }

    fn acknowledged(mut incident: Incident) -> Incident {
        incident.acknowledge(&user("U0ANA"), at("2026-11-22T08:04:30Z")).expect("an open incident can be acknowledged");
        incident
    }

    fn resolved(incident: Incident) -> Incident {
        let mut incident = acknowledged(incident);
        incident
            .resolve(
                &user("U0BEN"),
                Some("Rolled back release 2026.11.3; 5xx ratio back to 0.1%".to_owned()),
                at("2026-11-22T09:12:00Z"),
            )
            .expect("an acknowledged incident can be resolved");
        incident
    }

    /// The whole message as JSON: the fallback text and the blocks.
    fn json(rendered: &Rendered) -> Value {
        json!({
            "text": rendered.text,
            "blocks": serde_json::to_value(&rendered.blocks).expect("blocks serialise"),
        })
    }

    /// The `action_id`s of every button in the message.
    fn action_ids(rendered: &Rendered) -> Vec<String> {
        let blocks = serde_json::to_value(&rendered.blocks).expect("blocks serialise");
        blocks
            .as_array()
            .into_iter()
            .flatten()
            .filter(|block| block["type"] == "actions")
            .flat_map(|block| block["elements"].as_array().cloned().unwrap_or_default())
            .filter_map(|element| element["action_id"].as_str().map(str::to_owned))
            .collect()
    }

    /// Every `text` string anywhere in the blocks.
    fn texts(value: &Value) -> Vec<String> {
        match value {
            Value::Object(map) => map
                .iter()
                .flat_map(|(key, value)| match (key.as_str(), value) {
                    ("text", Value::String(text)) => vec![text.clone()],
                    _ => texts(value),
                })
                .collect(),
            Value::Array(values) => values.iter().flat_map(texts).collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn a_fresh_sev1_incident_shows_its_alerts_on_call_and_both_buttons() {
        let incident = incident();
        let alerts = two_firing_alerts();
        let on_call = on_call();
        let rendered = context_message(&view(&incident, &alerts, &on_call));
        assert_eq!(action_ids(&rendered), [ACK_ACTION, RESOLVE_ACTION]);
        assert_json_snapshot!("context_open_sev1", json(&rendered));
    }

    #[test]
    fn an_acknowledged_incident_shows_who_acknowledged_and_only_the_resolve_button() {
        let mut incident = acknowledged(incident());
        incident.commander = Some("U0ANA".to_owned());
        let alerts = two_firing_alerts();
        let on_call = on_call();
        let rendered = context_message(&view(&incident, &alerts, &on_call));
        assert_eq!(action_ids(&rendered), [RESOLVE_ACTION]);
        assert_json_snapshot!("context_acknowledged", json(&rendered));
    }

    #[test]
    fn a_resolved_incident_shows_who_resolved_it_and_the_summary_instead_of_buttons() {
        let incident = resolved(incident());
        let mut alerts = two_firing_alerts();
        for alert in &mut alerts {
            alert.status = AlertStatus::Resolved;
        }
        let on_call = on_call();
        let rendered = context_message(&view(&incident, &alerts, &on_call));
        assert!(action_ids(&rendered).is_empty(), "a resolved incident has no buttons");
        assert_json_snapshot!("context_resolved", json(&rendered));
    }

    #[test]
    fn user_text_is_escaped_and_long_entity_lists_are_capped() {
        let mut incident = incident();
        incident.id = IncidentId::from_seq(12);
        incident.title = r#"<script> & "quotes" <!channel>"#.to_owned();
        incident.severity = Severity::Sev3;
        incident.service = Some("db<primary>".to_owned());
        incident.source = SourceKind::Generic;
        incident.url = None;
        incident.problem_key = ProblemKey::new("disk-db-1").expect("a non-empty key");
        incident.description = Some("Disk > 90% on db-1 & db-2".to_owned());
        incident.entities = (1..=15).map(|n| format!("db-{n:02}")).collect();
        incident.reopen_count = 1;
        let rendered = context_message(&ContextView {
            incident: &incident,
            alerts: &[],
            on_call: &[],
            ticket: None,
            previous_channel: Some("C0LDCHAN"),
            runbooks: &[],
            last_deployment: None,
        });
        let blocks = serde_json::to_value(&rendered.blocks).expect("blocks serialise");
        for text in texts(&blocks).iter().skip(1) {
            assert!(
                !text.contains("<!channel>") && !text.contains("<script>"),
                "mrkdwn must not carry raw user markup: {text}"
            );
        }
        assert_json_snapshot!("context_unsafe_title_many_entities", json(&rendered));
    }

    #[test]
    fn only_the_first_five_firing_alerts_are_listed() {
        let mut alerts: Vec<Alert> =
            (1..=8).map(|n| alert(&format!("f{n}"), AlertStatus::Firing, &format!("disk {n} full"))).collect();
        alerts.push(alert("r1", AlertStatus::Resolved, "disk 0 full"));
        assert_eq!(
            alerts_text(&alerts),
            "*Alerts* (8 firing, 1 resolved)\n• disk 1 full\n• disk 2 full\n• disk 3 full\n\
             • disk 4 full\n• disk 5 full\n• …and 3 more firing"
        );
    }

    #[test]
    fn the_topic_names_severity_title_and_ticket() {
        let mut long = incident();
        long.title = "x".repeat(400);
        let topics = [topic(&incident(), Some("WR-3")), topic(&incident(), None), topic(&long, Some("WR-3"))];
        assert!(topics.iter().all(|t| t.chars().count() <= 250));
        assert_snapshot!("topics", topics.join("\n"));
    }

    #[test]
    fn the_resolution_summary_shows_duration_acknowledgement_summary_and_notes() {
        let incident = resolved(incident());
        let timeline = [
            TimelineEvent::new(
                at("2026-11-22T08:10:00Z"),
                "note",
                user("U0ANA"),
                "Errors started with release 2026.11.3 & only on EU pods",
            ),
            TimelineEvent::new(
                at("2026-11-22T08:20:00Z"),
                "status_changed",
                user("U0ANA"),
                "status set to identified by U0ANA",
            ),
            TimelineEvent::new(at("2026-11-22T08:40:00Z"), "note", user("U0BEN"), "Rollback started"),
        ];
        let rendered = resolution_summary(&incident, &timeline);
        assert_json_snapshot!("resolution_summary", json(&rendered));
    }

    #[test]
    fn the_reopened_intro_links_the_archived_channel() {
        let rendered = reopened_intro(&incident(), "C0LDCHAN");
        assert_eq!(rendered.text, "INC-7 was reopened: the problem fired again. Earlier discussion: <#C0LDCHAN>");
        assert_eq!(rendered.blocks.len(), 1);
    }

    #[test]
    fn an_update_line_is_one_escaped_section() {
        let rendered = update_line("new alert firing: p99 > 2s <@U1>");
        assert_eq!(rendered.text, "new alert firing: p99 &gt; 2s &lt;@U1&gt;");
        assert_eq!(rendered.blocks.len(), 1);
    }

    #[test]
    fn escape_handles_exactly_the_three_characters_slack_asks_for() {
        assert_eq!(escape(r#"<script> & "quotes" 'x' *bold*"#), r#"&lt;script&gt; &amp; "quotes" 'x' *bold*"#);
        assert_eq!(escape("&amp;"), "&amp;amp;", "already-escaped text is text too");
    }

    #[test]
    fn the_header_is_cut_to_150_characters_with_an_ellipsis() {
        let mut incident = incident();
        incident.title = "é".repeat(200);
        let Some(SlackBlock::Header(header)) = context_message(&view(&incident, &[], &[])).blocks.first().cloned()
        else {
            panic!("the context message starts with a header");
        };
        let text = serde_json::to_value(&header).expect("header serialises")["text"]["text"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_default();
        assert_eq!(text.chars().count(), 150);
        assert!(text.starts_with("INC-7: éé") && text.ends_with('…'));
    }

    #[test]
    fn truncation_counts_characters_and_never_breaks_an_escape_or_a_link() {
        let table = [
            ("short", 10, "short", "text within the limit is kept"),
            ("abcdefghij", 5, "abcd…", "the ellipsis counts toward the limit"),
            ("ab &amp; cd", 6, "ab…", "an escape is dropped whole, not cut"),
            ("see <http://x|y> now", 8, "see…", "a link is dropped whole, not cut"),
        ];
        for (text, max, expected, why) in table {
            assert_eq!(truncate_mrkdwn(text, max), expected, "{why}");
        }
        assert_eq!(truncate("ééé", 2), "é…", "characters, not bytes");
    }

    #[test]
    fn a_huge_summary_is_cut_to_slacks_section_limit() {
        let mut incident = resolved(incident());
        incident.summary = Some("&".repeat(5000));
        let rendered = context_message(&view(&incident, &[], &[]));
        let blocks = serde_json::to_value(&rendered.blocks).expect("blocks serialise");
        let summary = texts(&blocks).into_iter().find(|t| t.starts_with("*Summary*")).expect("a summary section");
        assert!(summary.chars().count() <= 3000);
        assert!(summary.ends_with("&amp;…"), "no half escape before the ellipsis");
    }

    #[test]
    fn durations_read_like_people_say_them() {
        let table = [
            (30, "under a minute"),
            (12 * 60, "12m"),
            (60 * 60, "1h"),
            (72 * 60, "1h 12m"),
            (27 * 3600 + 5 * 60, "1d 3h"),
            (-60, "under a minute"),
        ];
        for (secs, expected) in table {
            assert_eq!(format_duration(SignedDuration::from_secs(secs)), expected, "{secs}s");
        }
    }

    #[test]
    fn button_action_ids_parse_back_and_unknown_ones_do_not() {
        let table = [
            (ACK_ACTION.to_owned(), Some(ButtonAction::Ack)),
            (RESOLVE_ACTION.to_owned(), Some(ButtonAction::Resolve)),
            (run_action("rollback"), Some(ButtonAction::Run("rollback".to_owned()))),
            ("v1:run:".to_owned(), None),
            ("ack".to_owned(), None),
            ("v2:ack".to_owned(), None),
            ("v1:ack ".to_owned(), None),
            ("remediate_rollback".to_owned(), None),
            (String::new(), None),
        ];
        for (action_id, expected) in table {
            assert_eq!(parse_action(&action_id), expected, "action_id `{action_id}`");
        }
        assert_eq!(run_action("rollback"), "v1:run:rollback");
    }
}
