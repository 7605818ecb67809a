//! The Acknowledge and Resolve buttons through real `block_actions` envelopes, and resolution by
//! the source (which resolves by default, or leaves a Resolve button when told not to).

use serde_json::{Value, json};

use crate::helpers::{ANA, BEN, LEA, TestApp, spawn_app, spawn_app_with};

/// An app with INC-1 opened from the generic disk alert, its war room ready; returns the
/// incident channel's id.
async fn app_with_incident(app: TestApp) -> (TestApp, String) {
    app.connected().await;
    app.deliver("generic", "alerts/generic_disk.json", "opened").await;
    app.settle().await;
    let channel = app.channel_of("INC-1").await.id;
    (app, channel)
}

fn actors(incident: &Value, kind: &str) -> Vec<String> {
    incident["timeline"]
        .as_array()
        .expect("a timeline")
        .iter()
        .filter(|e| e["kind"] == kind)
        .map(|e| e["actor"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The `action_id=value` of every button in `blocks`.
fn buttons(blocks: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    for block in blocks.as_array().into_iter().flatten() {
        for element in block["elements"].as_array().into_iter().flatten() {
            if let Some(id) = element["action_id"].as_str() {
                ids.push(format!("{id}={}", element["value"].as_str().unwrap_or_default()));
            }
        }
    }
    ids
}

/// The buttons of the pinned context message as Slack now shows it.
async fn context_buttons(app: &TestApp) -> Vec<String> {
    let room = app.channel_of("INC-1").await;
    let pinned = app.slack.messages(&room.id).into_iter().find(|m| m.ts == room.pins[0]).expect("pinned message");
    buttons(&pinned.blocks.unwrap_or_default())
}

/// What the app posted to response URLs (the private answers to presses).
fn private_answers(app: &TestApp) -> Vec<String> {
    app.slack.response_url_posts().iter().map(|p| p["text"].as_str().unwrap_or_default().to_owned()).collect()
}

async fn wait_for_private_answer(app: &TestApp) -> String {
    app.wait_for_slack("a private answer through response_url", |s| !s.response_url_posts().is_empty()).await;
    private_answers(app).remove(0)
}

fn generic(status: &str) -> String {
    json!({ "key": "disk-db-1", "title": "Disk /var 95% full on db-1", "severity": "warning", "service": "db",
            "status": status, "entities": ["db-1"] })
    .to_string()
}

async fn source_says(app: &TestApp, status: &str, outcome: &str) {
    let (code, body) = app.post_hook("generic", &generic(status)).await;
    assert_eq!(code, reqwest::StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["outcome"], outcome, "{body}");
    app.settle().await;
}

#[tokio::test]
async fn pressing_acknowledge_does_what_ack_does() {
    let (app, channel) = app_with_incident(spawn_app().await).await;
    assert_eq!(context_buttons(&app).await, ["v1:ack=INC-1", "v1:resolve=INC-1"]);

    app.press(&channel, ANA, "v1:ack", "INC-1").await;
    app.settle().await;

    let incident = app.incident("INC-1").await;
    assert_eq!(incident["status"], "investigating");
    assert!(incident["acknowledged_at"].is_string(), "{incident}");
    assert_eq!(actors(&incident, "acknowledged"), [ANA]);
    assert!(app.slack.messages(&channel).iter().any(|m| m.text.contains("acknowledged INC-1")), "the channel is told");
    assert_eq!(context_buttons(&app).await, ["v1:resolve=INC-1"], "the context message loses its Acknowledge button");
    assert!(
        private_answers(&app).is_empty(),
        "a press that worked needs no private answer: {:?}",
        private_answers(&app)
    );
}

#[tokio::test]
async fn pressing_acknowledge_after_someone_else_tells_the_presser_who_did() {
    let (app, channel) = app_with_incident(spawn_app().await).await;
    // Both see the Acknowledge button; Ana is quicker.
    app.press(&channel, ANA, "v1:ack", "INC-1").await;

    app.press(&channel, BEN, "v1:ack", "INC-1").await;
    let answer = wait_for_private_answer(&app).await;
    app.settle().await;

    assert!(answer.contains("already acknowledged") && answer.contains("U0ANA"), "{answer:?}");
    assert_eq!(app.slack.response_url_posts()[0]["response_type"], "ephemeral");
    assert_eq!(actors(&app.incident("INC-1").await, "acknowledged"), [ANA]);
}

#[tokio::test]
async fn pressing_resolve_does_what_resolve_does() {
    let (app, channel) = app_with_incident(spawn_app().await).await;
    app.press(&channel, ANA, "v1:ack", "INC-1").await;

    app.press(&channel, LEA, "v1:resolve", "INC-1").await;
    app.settle().await;

    let incident = app.incident("INC-1").await;
    assert_eq!(incident["status"], "resolved");
    assert_eq!(actors(&incident, "resolved"), [LEA]);
    let ticket = app.ticket("WR-1").await;
    assert_eq!(ticket["status"], "closed");
    assert_eq!(ticket["comments"].as_array().unwrap().last().unwrap()["text"], "INC-1 resolved by U0LEA.");
    let room = app.channel_of("INC-1").await;
    assert!(room.is_archived);
    let summary = app.slack.messages(&channel).into_iter().find(|m| m.text.starts_with("INC-1 resolved after"));
    let blocks = summary.expect("a summary in the channel").blocks.unwrap_or_default().to_string();
    assert!(blocks.contains("<@U0ANA>") && blocks.contains("<@U0LEA>"), "who acknowledged and resolved: {blocks}");
    assert!(context_buttons(&app).await.is_empty(), "a resolved incident's context message has no buttons");
}

#[tokio::test]
async fn pressing_resolve_on_a_resolved_incident_tells_the_presser() {
    let (app, channel) = app_with_incident(spawn_app().await).await;
    // A double click: both presses leave before the message loses its buttons.
    app.press(&channel, ANA, "v1:resolve", "INC-1").await;

    app.press(&channel, BEN, "v1:resolve", "INC-1").await;
    let answer = wait_for_private_answer(&app).await;
    app.settle().await;

    assert_eq!(answer, "INC-1 is already resolved");
    assert_eq!(actors(&app.incident("INC-1").await, "resolved"), [ANA]);
}

#[tokio::test]
async fn a_button_naming_an_unknown_incident_tells_the_presser() {
    let (app, channel) = app_with_incident(spawn_app().await).await;

    app.press(&channel, ANA, "v1:ack", "INC-99").await;
    let answer = wait_for_private_answer(&app).await;

    assert_eq!(answer, "INC-99 does not exist");
    assert_eq!(app.incident("INC-1").await["status"], "open");
}

#[tokio::test]
async fn the_source_resolving_the_problem_resolves_the_incident_by_default() {
    let (app, channel) = app_with_incident(spawn_app().await).await;
    app.press(&channel, BEN, "v1:ack", "INC-1").await;

    source_says(&app, "resolved", "resolved").await;

    let incident = app.incident("INC-1").await;
    assert_eq!(incident["status"], "resolved");
    assert!(incident["resolved_at"].is_string());
    assert_eq!(actors(&incident, "resolved"), ["source:generic"]);
    let ticket = app.ticket("WR-1").await;
    assert_eq!(ticket["status"], "closed");
    assert!(
        ticket["comments"].as_array().unwrap().iter().any(|c| c["text"] == "INC-1 resolved by source:generic."),
        "{ticket}"
    );
    assert!(app.channel_of("INC-1").await.is_archived);
    let summary = app.slack.messages(&channel).into_iter().find(|m| m.text.starts_with("INC-1 resolved after"));
    assert!(summary.expect("a summary").blocks.unwrap_or_default().to_string().contains("<@U0BEN>"));
}

#[tokio::test]
async fn without_resolve_on_source_resolve_the_source_moves_to_monitoring_and_the_button_resolves() {
    let app = spawn_app_with(|s| s.incidents.resolve_on_source_resolve = false).await;
    let (app, channel) = app_with_incident(app).await;

    source_says(&app, "resolved", "resolved").await;

    let incident = app.incident("INC-1").await;
    assert_eq!(incident["status"], "monitoring");
    assert_eq!(actors(&incident, "status_changed"), ["source:generic"]);
    assert!(!app.channel_of("INC-1").await.is_archived, "the channel stays open");
    assert_eq!(app.ticket("WR-1").await["status"], "open");
    assert!(context_buttons(&app).await.contains(&"v1:resolve=INC-1".to_owned()), "a Resolve button is offered");

    app.press(&channel, LEA, "v1:resolve", "INC-1").await;
    app.settle().await;

    let incident = app.incident("INC-1").await;
    assert_eq!(incident["status"], "resolved");
    assert_eq!(actors(&incident, "resolved"), [LEA]);
    assert_eq!(app.ticket("WR-1").await["status"], "closed");
    assert!(app.channel_of("INC-1").await.is_archived);
}

#[tokio::test]
async fn a_problem_that_fires_again_after_a_button_resolve_reopens_with_the_same_ticket() {
    let (app, channel) = app_with_incident(spawn_app().await).await;
    app.press(&channel, ANA, "v1:resolve", "INC-1").await;
    app.settle().await;

    source_says(&app, "firing", "reopened").await;

    let incident = app.incident("INC-1").await;
    assert_eq!(incident["status"], "open");
    assert!(incident["acknowledged_at"].is_null() && incident["resolved_at"].is_null(), "{incident}");
    assert_eq!(app.ticket("WR-1").await["status"], "open");
    let room = app.channel_of("INC-1").await;
    assert_eq!(room.name, "inc-1-db-r1");
    assert_eq!(context_buttons(&app).await, ["v1:ack=INC-1", "v1:resolve=INC-1"], "buttons work again");
}
