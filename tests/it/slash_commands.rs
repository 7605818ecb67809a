//! `/incident` through real slash-command envelopes on the simulated workspace: every
//! subcommand, usage errors, commands outside an incident channel, `declare` from another
//! channel, resolve and reopen, and the ticket's content after each step.

use serde_json::Value;

use crate::helpers::{ANA, BEN, LEA, TestApp, ZOE, spawn_app};

/// An app with INC-1 opened from the generic disk alert, its war room ready; returns the
/// incident channel's id.
async fn app_with_incident() -> (TestApp, String) {
    let app = spawn_app().await;
    app.connected().await;
    app.deliver("generic", "alerts/generic_disk.json", "opened").await;
    app.settle().await;
    let channel = app.channel_of("INC-1").await.id;
    (app, channel)
}

/// The timeline events of `kind`.
fn events<'a>(incident: &'a Value, kind: &str) -> Vec<&'a Value> {
    incident["timeline"].as_array().expect("a timeline").iter().filter(|e| e["kind"] == kind).collect()
}

/// The actors of the timeline events of `kind`.
fn actors(incident: &Value, kind: &str) -> Vec<String> {
    events(incident, kind).iter().map(|e| e["actor"].as_str().unwrap_or_default().to_owned()).collect()
}

/// The text of every message in `channel`, oldest first.
fn texts(app: &TestApp, channel: &str) -> Vec<String> {
    app.slack.messages(channel).into_iter().map(|m| m.text).collect()
}

/// The blocks of every `chat.update` of the message `ts`, as JSON text.
fn updates_of(app: &TestApp, ts: &str) -> Vec<String> {
    app.slack
        .calls_to("chat.update")
        .into_iter()
        .filter(|c| c.params["ts"] == ts)
        .map(|c| c.params["blocks"].to_string())
        .collect()
}

/// Every `<` in text sent as `mrkdwn` must open a Slack token (mention, channel, special, link);
/// anything else has to be escaped as `&lt;`, or Slack mangles it.
fn unescaped_angle_brackets(text: &str) -> Vec<String> {
    text.match_indices('<')
        .map(|(at, _)| &text[at..])
        .filter(|rest| !["<@U", "<@W", "<#C", "<!", "<http://", "<https://"].iter().any(|p| rest.starts_with(p)))
        .map(|rest| rest.chars().take(30).collect())
        .collect()
}

// ----- help and usage ---------------------------------------------------------------------

#[tokio::test]
async fn help_replies_in_the_ack_with_every_subcommand() {
    let app = spawn_app().await;
    app.connected().await;

    let help = app.slash("C0GENERAL", ZOE, "help").await.expect("help rides in the ack");

    for name in ["help", "declare", "ack", "status", "note", "assign", "lead", "severity", "resolve", "ticket"] {
        assert!(help.contains(&format!("`/incident {name}")), "help is missing `{name}`:\n{help}");
    }
    assert!(help.contains("`/incident timeline`") && help.contains("`/incident oncall"), "{help}");
    assert_eq!(app.slash("C0GENERAL", ZOE, "").await.as_deref(), Some(help.as_str()), "empty text is help");
    // The snapshot holds what Slack must receive: the generated help, escaped for mrkdwn.
    insta::assert_snapshot!("help_reply", help);
}

#[tokio::test]
async fn help_and_usage_replies_are_escaped_for_slack_mrkdwn() {
    let app = spawn_app().await;
    app.connected().await;

    for text in ["help", "severity", "status fixed", "declare", "ack now"] {
        let reply = app.slash("C0GENERAL", ZOE, text).await.expect("a reply");
        let raw = unescaped_angle_brackets(&reply);
        assert!(raw.is_empty(), "`/incident {text}` sends raw `<` that Slack reads as links: {raw:?}\n{reply}");
    }
}

/// Wrong usage: what is typed, what the reply must say, the usage it must quote, why.
const USAGE_ERRORS: &[(&str, &str, &str, &str)] = &[
    ("reslove", "did you mean `resolve`?", "/incident help", "a typo gets a suggestion"),
    ("frobnicate", "`/incident help` lists them all", "/incident help", "an unknown subcommand"),
    ("declare", "`declare` needs a title", "Usage: /incident declare ", "declare without a title"),
    ("declare Down --sev 5", "`--sev 5` is not a level", "Usage: /incident declare ", "a severity out of range"),
    ("declare Down --team ops", "`--team` is not an option", "Usage: /incident declare ", "an unknown flag"),
    ("ack now", "`ack` takes no arguments, but got `now`", "Usage: /incident ack", "ack takes no arguments"),
    ("status", "needs one of investigating, identified or monitoring", "Usage: /incident status ", "no status"),
    (
        "status resolved",
        "To resolve, use `/incident resolve [summary]`",
        "Usage: /incident status ",
        "resolve by status",
    ),
    ("status open", "cannot go back to open", "Usage: /incident status ", "open is not a target"),
    ("status fixed", "`fixed` is not a status", "Usage: /incident status ", "an unknown status"),
    ("severity", "`severity` needs a level from 1 to 4", "Usage: /incident severity ", "no level"),
    ("severity 5", "`5` is not a level", "Usage: /incident severity ", "a level out of range"),
    ("severity critical", "`critical` is not a level", "Usage: /incident severity ", "source words are not levels"),
    ("note", "needs some text", "Usage: /incident note ", "an empty note"),
    ("assign", "needs a person", "Usage: /incident assign @person", "nobody to assign"),
    ("assign @ana", "`@ana` reached warroom as plain text", "Usage: /incident assign @person", "plain-text mention"),
    ("lead ana", "`ana` is not a person", "Usage: /incident lead @person", "a plain name"),
    ("ticket WR-3", "takes no arguments", "Usage: /incident ticket", "ticket takes no arguments"),
    ("timeline all", "takes no arguments", "Usage: /incident timeline", "timeline takes no arguments"),
    ("oncall db checkout", "takes one argument", "Usage: /incident oncall ", "two services"),
];

#[tokio::test]
async fn wrong_usage_gets_an_ephemeral_reply_with_the_right_usage_and_changes_nothing() {
    let (app, channel) = app_with_incident().await;
    let messages_before = app.slack.messages(&channel).len();

    for (text, message, usage, why) in USAGE_ERRORS {
        let ack = app.slash_ack(&channel, ANA, text).await;

        assert_eq!(ack["response_type"], "ephemeral", "{why}: `/incident {text}` answers privately: {ack}");
        let reply = ack["text"].as_str().unwrap_or_default();
        assert!(reply.contains(message), "{why}: `/incident {text}` replied {reply:?}, expected {message:?}");
        assert!(reply.contains(usage), "{why}: `/incident {text}` replied {reply:?}, expected usage {usage:?}");
    }

    app.settle().await;
    let incident = app.incident("INC-1").await;
    assert_eq!(incident["status"], "open", "usage errors change nothing");
    assert_eq!(incident["severity"], "sev3");
    assert_eq!(app.slack.messages(&channel).len(), messages_before, "usage errors post nothing in the channel");
}

#[tokio::test]
async fn commands_that_need_an_incident_say_so_outside_one_and_name_the_command() {
    let (app, _) = app_with_incident().await;
    let general = app.slack.add_channel("general");
    let table = [
        ("ack", "ack"),
        ("status identified", "status"),
        ("severity 1", "severity"),
        ("note checked the disks", "note"),
        ("assign <@U0BEN|ben>", "assign"),
        ("lead <@U0LEA|lea>", "lead"),
        ("resolve all good", "resolve"),
        ("ticket", "ticket"),
        ("timeline", "timeline"),
    ];

    for (text, name) in table {
        let reply = app.slash(&general, ANA, text).await.expect("a reply");

        assert!(reply.contains("works in an incident channel"), "`/incident {text}` in #general: {reply:?}");
        assert!(reply.contains(&format!("`/incident {name}`")), "`/incident {text}` names `{name}`: {reply:?}");
    }
    app.settle().await;
    assert_eq!(app.incident("INC-1").await["status"], "open", "nothing happened to INC-1");
}

// ----- declare ------------------------------------------------------------------------------

#[tokio::test]
async fn declare_from_another_channel_opens_a_manual_incident_with_its_own_channel_and_ticket() {
    let app = spawn_app().await;
    app.connected().await;
    let general = app.slack.add_channel("general");

    let reply = app.slash(&general, ZOE, "declare Checkout is down --sev 2 --service checkout").await;
    app.settle().await;

    assert!(reply.as_deref().unwrap_or_default().starts_with("Declared INC-1"), "{reply:?}");
    let incident = app.incident("INC-1").await;
    assert_eq!(incident["title"], "Checkout is down");
    assert_eq!(incident["severity"], "sev2");
    assert_eq!(incident["service"], "checkout");
    assert_eq!(incident["source"], "slack");
    assert_eq!(incident["status"], "open");
    assert_eq!(actors(&incident, "opened"), [ZOE], "the declarer opened it");
    let channel = app.channel_of("INC-1").await;
    assert_eq!(channel.name, "inc-1-checkout");
    assert_ne!(channel.id, general, "the incident gets its own channel");
    assert_eq!(channel.pins.len(), 1, "the context message is pinned");
    assert!(channel.members.contains(&LEA.to_owned()), "the incident leads are invited: {:?}", channel.members);
    let ticket = app.ticket("WR-1").await;
    assert_eq!(incident["ticket"]["key"], "WR-1");
    assert_eq!(ticket["status"], "open");
    assert_eq!(ticket["priority"], "P2");
    assert_eq!(ticket["summary"], "INC-1: Checkout is down");
    assert!(app.slack.messages(&general).is_empty(), "nothing is posted in the channel it was declared from");
}

#[tokio::test]
async fn the_person_who_declares_is_invited_to_the_war_room() {
    let app = spawn_app().await;
    app.connected().await;
    let general = app.slack.add_channel("general");

    app.slash(&general, ZOE, "declare Payments are slow").await;
    app.settle().await;

    let channel = app.channel_of("INC-1").await;
    assert!(channel.members.contains(&ZOE.to_owned()), "Zoe declared INC-1 but is not in it: {:?}", channel.members);
}

// ----- state changes ------------------------------------------------------------------------

#[tokio::test]
async fn ack_acknowledges_records_who_and_rerenders_the_context_message() {
    let (app, channel) = app_with_incident().await;
    let pinned = app.channel_of("INC-1").await.pins[0].clone();

    let reply = app.slash(&channel, ANA, "ack").await;
    app.settle().await;

    assert_eq!(reply.as_deref(), Some("You acknowledged INC-1."));
    let incident = app.incident("INC-1").await;
    assert_eq!(incident["status"], "investigating");
    assert!(incident["acknowledged_at"].is_string(), "{incident}");
    assert_eq!(actors(&incident, "acknowledged"), [ANA]);
    assert_eq!(actors(&incident, "status_changed"), [ANA]);
    assert!(
        texts(&app, &channel).iter().any(|t| t.contains("acknowledged INC-1")),
        "the channel is told: {:#?}",
        texts(&app, &channel)
    );
    let updates = updates_of(&app, &pinned);
    assert!(!updates.is_empty(), "the pinned context message is re-rendered");
    assert!(!updates.last().unwrap().contains("v1:ack"), "no Acknowledge button once acknowledged");
}

#[tokio::test]
async fn channel_announcements_mention_who_made_the_change() {
    let (app, channel) = app_with_incident().await;

    app.slash(&channel, ANA, "ack").await;
    app.settle().await;

    let texts = texts(&app, &channel);
    let announcement = texts.iter().find(|t| t.contains("acknowledged INC-1")).expect("an announcement");
    assert!(announcement.contains("<@U0ANA>"), "Ana must appear as a mention, not as escaped text: {announcement:?}");
}

#[tokio::test]
async fn a_second_ack_says_who_already_acknowledged() {
    let (app, channel) = app_with_incident().await;
    app.slash(&channel, ANA, "ack").await;

    let reply = app.slash(&channel, BEN, "ack").await.unwrap_or_default();
    app.settle().await;

    assert!(reply.contains("already acknowledged") && reply.contains("U0ANA"), "{reply:?}");
    assert_eq!(actors(&app.incident("INC-1").await, "acknowledged"), [ANA], "one acknowledgement");
}

#[tokio::test]
async fn status_from_open_counts_as_the_acknowledgement() {
    let (app, channel) = app_with_incident().await;

    let reply = app.slash(&channel, BEN, "status identified").await;
    app.settle().await;

    assert_eq!(reply.as_deref(), Some("INC-1 is now identified."));
    let incident = app.incident("INC-1").await;
    assert_eq!(incident["status"], "identified");
    assert!(incident["acknowledged_at"].is_string(), "{incident}");
    assert_eq!(actors(&incident, "acknowledged"), [BEN]);
    assert_eq!(actors(&incident, "status_changed"), [BEN]);
}

#[tokio::test]
async fn status_moves_between_the_middle_statuses_and_the_ticket_follows() {
    let (app, channel) = app_with_incident().await;
    app.slash(&channel, ANA, "ack").await;

    app.slash(&channel, ANA, "status identified").await;
    let reply = app.slash(&channel, BEN, "status MONITORING").await;
    app.settle().await;

    assert_eq!(reply.as_deref(), Some("INC-1 is now monitoring."));
    let incident = app.incident("INC-1").await;
    assert_eq!(incident["status"], "monitoring");
    assert_eq!(actors(&incident, "status_changed"), [ANA, ANA, BEN]);
    let ticket = app.ticket("WR-1").await;
    assert!(ticket["description"].as_str().unwrap().contains("Status: monitoring"), "{ticket}");
}

#[tokio::test]
async fn note_adds_a_timeline_entry_and_a_ticket_comment() {
    let (app, channel) = app_with_incident().await;

    let reply = app.slash(&channel, ANA, "note Rolled back to 2026.11.2").await;
    app.settle().await;

    assert_eq!(reply.as_deref(), Some("Note added to INC-1 and its ticket."));
    let incident = app.incident("INC-1").await;
    let notes = events(&incident, "note");
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["actor"], ANA);
    assert_eq!(notes[0]["text"], "Rolled back to 2026.11.2");
    let comments = app.ticket("WR-1").await["comments"].as_array().unwrap().clone();
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert_eq!(comments[0]["author"], ANA);
    assert_eq!(comments[0]["text"], "Rolled back to 2026.11.2");
    assert_eq!(comments[0]["public"], false);
}

#[tokio::test]
async fn a_public_note_is_a_public_ticket_comment() {
    let (app, channel) = app_with_incident().await;

    app.slash(&channel, BEN, "note --public We are rolling back").await;
    app.settle().await;

    let ticket = app.ticket("WR-1").await;
    assert_eq!(ticket["comments"][0]["text"], "We are rolling back");
    assert_eq!(ticket["comments"][0]["public"], true);
}

#[tokio::test]
async fn assign_sets_the_ticket_assignee() {
    let (app, channel) = app_with_incident().await;

    let reply = app.slash(&channel, ANA, "assign <@U0BEN|ben>").await;
    app.settle().await;

    assert_eq!(reply.as_deref(), Some("INC-1 is assigned to <@U0BEN>."));
    assert_eq!(app.ticket("WR-1").await["assignee"], BEN);
    let incident = app.incident("INC-1").await;
    assert_eq!(actors(&incident, "assigned"), [ANA]);
    let pinned = app.channel_of("INC-1").await.pins[0].clone();
    assert!(updates_of(&app, &pinned).last().is_some_and(|b| b.contains("<@U0BEN>")), "the context shows Ben");
}

#[tokio::test]
async fn lead_records_the_incident_lead_in_the_timeline_and_the_context_message() {
    let (app, channel) = app_with_incident().await;

    let reply = app.slash(&channel, ANA, "lead <@U0LEA>").await;
    app.settle().await;

    assert_eq!(reply.as_deref(), Some("<@U0LEA> now leads INC-1."));
    let incident = app.incident("INC-1").await;
    assert_eq!(actors(&incident, "lead_set"), [ANA]);
    let pinned = app.channel_of("INC-1").await.pins[0].clone();
    let last = updates_of(&app, &pinned).pop().expect("the context message is re-rendered");
    assert!(last.contains("Lead") && last.contains("<@U0LEA>"), "{last}");
}

#[tokio::test]
async fn severity_changes_the_incident_the_ticket_priority_and_the_topic() {
    // (typed, severity, ticket priority)
    let table = [("1", "sev1", "P1"), ("sev2", "sev2", "P2")];
    for (level, severity, priority) in table {
        let (app, channel) = app_with_incident().await;

        let reply = app.slash(&channel, LEA, &format!("severity {level}")).await;
        app.settle().await;

        assert_eq!(reply, Some(format!("INC-1 is now {severity}.")), "`severity {level}`");
        let incident = app.incident("INC-1").await;
        assert_eq!(incident["severity"], severity, "`severity {level}`");
        assert_eq!(actors(&incident, "severity_changed"), [LEA], "`severity {level}`");
        assert_eq!(app.ticket("WR-1").await["priority"], priority, "`severity {level}`");
        let topic = app.channel_of("INC-1").await.topic;
        assert!(topic.starts_with(&format!("{severity} · ")), "`severity {level}`: topic {topic:?}");
    }
}

// ----- read-only answers ----------------------------------------------------------------------

#[tokio::test]
async fn ticket_shows_the_key_status_priority_and_assignee() {
    let (app, channel) = app_with_incident().await;
    app.slash(&channel, ANA, "assign <@U0ANA>").await;
    app.settle().await;

    let reply = app.slash(&channel, BEN, "ticket").await.unwrap_or_default();

    assert!(reply.contains("WR-1") && reply.contains("(open)"), "{reply:?}");
    assert!(reply.contains("Priority P3"), "warning → sev3 → P3: {reply:?}");
    assert!(reply.contains("assignee <@U0ANA>"), "{reply:?}");
}

#[tokio::test]
async fn timeline_lists_what_happened_so_far() {
    let (app, channel) = app_with_incident().await;
    app.slash(&channel, ANA, "ack").await;
    app.slash(&channel, BEN, "note disk cleaned up").await;

    let reply = app.slash(&channel, LEA, "timeline").await.unwrap_or_default();

    assert!(reply.starts_with("*Timeline of INC-1*"), "{reply:?}");
    let kinds: Vec<&str> = ["opened", "acknowledged", "status_changed", "note"]
        .into_iter()
        .filter(|kind| !reply.contains(&format!(" {kind} — ")))
        .collect();
    assert!(kinds.is_empty(), "missing {kinds:?} in {reply:?}");
    assert!(reply.contains("disk cleaned up"), "{reply:?}");
}

#[tokio::test]
async fn oncall_shows_who_is_on_call_now_and_next_from_any_channel() {
    let app = spawn_app().await;
    app.connected().await;
    let general = app.slack.add_channel("general");

    let reply = app.slash(&general, ZOE, "oncall db").await.unwrap_or_default();

    let (now, next) = reply.split_once("\nNext: ").unwrap_or_else(|| panic!("now and next: {reply:?}"));
    assert!(now.starts_with("*On call for team platform*: "), "{reply:?}");
    let ana_now = now.contains("U0ANA");
    let ben_now = now.contains("ben@example.com") || now.contains("U0BEN");
    assert!(ana_now != ben_now, "one of Ana and Ben is on call now: {reply:?}");
    assert!(if ana_now { next.contains("ben") || next.contains("U0BEN") } else { next.contains("U0ANA") }, "{reply:?}");
    assert!(reply.contains("Incident leads: <!subteam^S0LEADS>"), "{reply:?}");
}

#[tokio::test]
async fn oncall_names_people_listed_by_email_as_slack_mentions() {
    let app = spawn_app().await;
    app.connected().await;

    let reply = app.slash("C0GENERAL", ZOE, "oncall").await.unwrap_or_default();

    assert!(reply.contains("<@U0BEN>"), "Ben is on the rotation by email but has a Slack user: {reply:?}");
    assert!(!reply.contains("ben@example.com"), "{reply:?}");
}

#[tokio::test]
async fn ticket_and_timeline_replies_show_a_typed_title_as_typed() {
    let app = spawn_app().await;
    app.connected().await;
    // Slack sends `Latency > 2s & rising` escaped.
    app.slash("C0GENERAL", ZOE, "declare Latency &gt; 2s &amp; rising").await;
    app.settle().await;
    let channel = app.channel_of("INC-1").await.id;

    for text in ["ticket", "timeline"] {
        let reply = app.slash(&channel, ZOE, text).await.unwrap_or_default();

        assert!(reply.contains("Latency &gt; 2s &amp; rising"), "`/incident {text}` escapes the title once: {reply:?}");
    }
}

// ----- resolve and reopen ---------------------------------------------------------------------

#[tokio::test]
async fn resolve_closes_the_ticket_posts_a_summary_and_archives_the_channel() {
    let (app, channel) = app_with_incident().await;
    app.slash(&channel, ANA, "ack").await;
    app.slash(&channel, BEN, "note freed 20 GB of logs").await;

    let reply = app.slash(&channel, LEA, "resolve Logs rotated; disk at 60%").await;
    app.settle().await;

    assert_eq!(reply.as_deref(), Some("You resolved INC-1."));
    let incident = app.incident("INC-1").await;
    assert_eq!(incident["status"], "resolved");
    assert!(incident["resolved_at"].is_string(), "{incident}");
    assert_eq!(actors(&incident, "resolved"), [LEA]);
    let ticket = app.ticket("WR-1").await;
    assert_eq!(ticket["status"], "closed");
    let comments: Vec<(&str, &str)> = ticket["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["author"].as_str().unwrap(), c["text"].as_str().unwrap()))
        .collect();
    assert_eq!(
        comments,
        [(BEN, "freed 20 GB of logs"), ("warroom", "INC-1 resolved by U0LEA: Logs rotated; disk at 60%")]
    );
    let room = app.channel_of("INC-1").await;
    assert!(room.is_archived, "the channel is archived");
    let summary = app
        .slack
        .messages(&channel)
        .into_iter()
        .find(|m| m.text.starts_with("INC-1 resolved after"))
        .expect("a summary in the channel");
    let blocks = summary.blocks.expect("the summary has blocks").to_string();
    for expected in ["Acknowledged", "<@U0ANA>", "Duration", "Logs rotated; disk at 60%", "freed 20 GB of logs"] {
        assert!(blocks.contains(expected), "the summary shows {expected:?}: {blocks}");
    }
}

#[tokio::test]
async fn resolve_twice_says_it_is_already_resolved() {
    let (app, channel) = app_with_incident().await;
    app.slash(&channel, ANA, "resolve").await;

    let reply = app.slash(&channel, BEN, "resolve").await;
    app.settle().await;

    assert_eq!(reply.as_deref(), Some("INC-1 is already resolved"));
    assert_eq!(actors(&app.incident("INC-1").await, "resolved"), [ANA]);
}

/// The generic disk problem, fired again.
async fn refire(app: &TestApp, outcome: &str) {
    app.deliver("generic", "alerts/generic_disk.json", outcome).await;
    app.settle().await;
}

#[tokio::test]
async fn a_resolved_incident_that_fires_again_is_reopened_in_a_new_channel_linked_to_the_old_one() {
    let (app, first) = app_with_incident().await;
    app.slash(&first, ANA, "resolve").await;
    app.settle().await;
    let first_members = app.channel_of("INC-1").await.members;

    refire(&app, "reopened").await;

    let incident = app.incident("INC-1").await;
    assert_eq!(incident["status"], "open");
    assert_eq!(actors(&incident, "reopened"), ["source:generic"]);
    assert_eq!(incident["ticket"]["key"], "WR-1", "the same ticket");
    assert_eq!(app.ticket("WR-1").await["status"], "open", "the ticket is reopened");
    let second = app.channel_of("INC-1").await;
    assert_eq!(second.name, "inc-1-db-r1");
    assert!(!second.is_archived);
    assert!(app.slack.channels().iter().any(|c| c.id == first && c.is_archived), "the first stays archived");
    let mut members = second.members.clone();
    members.sort();
    let mut expected = first_members;
    expected.sort();
    assert_eq!(members, expected, "the same responders are invited");
    let messages = app.slack.messages(&second.id);
    assert!(messages[0].text.contains("reopened"), "the first message tells them: {:?}", messages[0].text);
    assert!(messages[0].text.contains(&format!("<#{first}>")), "and links the old channel: {:?}", messages[0].text);
    assert!(
        second.bookmarks.iter().any(|(_, link)| link.contains(&first)),
        "a bookmark links the archived channel: {:?}",
        second.bookmarks
    );
    assert_eq!(second.pins.len(), 1, "a fresh context message is pinned");
}

#[tokio::test]
async fn a_reopened_incident_is_resolved_again_from_its_new_channel() {
    let (app, first) = app_with_incident().await;
    app.slash(&first, ANA, "resolve").await;
    app.settle().await;
    refire(&app, "reopened").await;
    let second = app.channel_of("INC-1").await.id;

    let reply = app.slash(&second, BEN, "resolve fixed for good").await;
    app.settle().await;

    assert_eq!(reply.as_deref(), Some("You resolved INC-1."));
    let incident = app.incident("INC-1").await;
    assert_eq!(incident["status"], "resolved");
    assert_eq!(actors(&incident, "resolved"), [ANA, BEN]);
    assert!(app.channel_of("INC-1").await.is_archived, "the -r1 channel is archived");
    let ticket = app.ticket("WR-1").await;
    assert_eq!(ticket["status"], "closed");
    let last = ticket["comments"].as_array().unwrap().last().cloned().unwrap_or_default();
    assert_eq!(last["text"], "INC-1 resolved by U0BEN: fixed for good");
}
