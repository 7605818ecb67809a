//! The transcript: captured live over Socket Mode, gaps backfilled, rendered, attached to the
//! ticket before it is closed, and served by the API.

use std::time::Duration;

use jiff::SignedDuration;
use reqwest::StatusCode;
use serde_json::json;
use warroom::domain::IncidentId;

use crate::helpers::{ANA, BEN, TestApp, spawn_app};

/// An incident with its war room ready and Socket Mode connected; returns its channel id.
async fn open_incident(app: &TestApp) -> String {
    app.connected().await;
    app.deliver("generic", "alerts/generic_disk.json", "opened").await;
    app.settle().await;
    app.channel_of("INC-1").await.id
}

/// Waits until `count` lines are captured for INC-1.
async fn captured(app: &TestApp, count: usize) {
    let store = &app.services.store;
    let done = tokio::time::timeout(Duration::from_secs(10), async {
        while store.transcript_lines(IncidentId::from_seq(1)).await.unwrap().len() < count {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        done.is_ok(),
        "fewer than {count} lines were captured: {:#?}",
        store.transcript_lines(IncidentId::from_seq(1)).await
    );
}

async fn transcript(app: &TestApp) -> String {
    let response = app
        .http
        .get(format!("{}/api/incidents/INC-1/transcript", app.base))
        .bearer_auth(crate::helpers::API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/markdown"));
    response.text().await.unwrap()
}

#[tokio::test]
async fn the_transcript_keeps_threads_edits_deletions_files_and_actions_and_is_attached_before_the_ticket_closes() {
    let app = spawn_app().await;
    let channel = open_incident(&app).await;
    let lines_before = app.services.store.transcript_lines(IncidentId::from_seq(1)).await.unwrap().len();

    let question = app.slack.user_says(&channel, ANA, "Is it the log volume again?", None).await;
    app.slack.user_says(&channel, BEN, "Yes, /var/log is 40 GB", Some(&question)).await;
    let typo = app.slack.user_says(&channel, BEN, "rotating nwo", None).await;
    app.slack.user_edits(&channel, BEN, &typo, "rotating now").await;
    let oops = app.slack.user_says(&channel, ANA, "the root password is hunter2", None).await;
    app.slack.user_deletes(&channel, &oops).await;
    app.slack
        .send_event(json!({"type": "message", "subtype": "file_share", "channel": channel, "user": BEN, "ts": "1900000000.000100",
            "text": "", "files": [{"id": "F0DISK", "name": "disk-usage.png", "permalink": "https://sim.slack.invalid/files/disk-usage.png"}]}))
        .await;
    captured(&app, lines_before + 5).await;
    app.slash(&channel, ANA, "note logs rotated, disk at 60%").await;
    app.slash(&channel, ANA, "resolve disk freed").await;
    app.settle().await;

    let markdown = transcript(&app).await;
    for expected in [
        "Is it the log volume again?",
        "Yes, /var/log is 40 GB",
        "rotating now",
        "rotating nwo",
        "edited",
        "message deleted",
        "disk-usage.png",
        "/incident note logs rotated",
        "@ana",
        "@ben",
    ] {
        assert!(markdown.contains(expected), "`{expected}` missing from the transcript:\n{markdown}");
    }
    assert!(!markdown.contains("hunter2"), "a deleted message's text is never kept:\n{markdown}");
    let reply_line = markdown.lines().find(|l| l.contains("Yes, /var/log is 40 GB")).unwrap();
    let parent_line = markdown.lines().find(|l| l.contains("Is it the log volume again?")).unwrap();
    let indent = |l: &str| l.len() - l.trim_start().len();
    assert!(
        indent(reply_line) > indent(parent_line)
            || reply_line.trim_start().starts_with('>')
                && reply_line.matches('>').count() > parent_line.matches('>').count(),
        "the reply is indented under its parent:\n{markdown}"
    );

    let ticket = app.ticket("WR-1").await;
    assert_eq!(ticket["status"], "closed");
    let attachments = ticket["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 1);
    assert_eq!(attachments[0]["name"], "INC-1-transcript.md");
    let attached_at = attachments[0]["at"].as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    let closing = ticket["comments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["text"].as_str().unwrap().contains("resolved by"))
        .unwrap();
    assert!(
        attached_at <= closing["at"].as_str().unwrap().parse::<jiff::Timestamp>().unwrap(),
        "attached before the ticket is closed"
    );
}

#[tokio::test]
async fn a_gapless_incident_makes_no_history_or_replies_call() {
    let app = spawn_app().await;
    let channel = open_incident(&app).await;
    app.slack.user_says(&channel, ANA, "looking", None).await;
    captured(&app, 1).await;

    app.slash(&channel, ANA, "resolve").await;
    app.settle().await;

    assert!(transcript(&app).await.contains("looking"));
    assert_eq!(app.slack.calls_to("conversations.history").len(), 0);
    assert_eq!(app.slack.calls_to("conversations.replies").len(), 0);
}

#[tokio::test]
async fn messages_said_while_warroom_was_not_listening_are_backfilled_from_history() {
    let app = spawn_app().await;
    let channel = open_incident(&app).await;
    let parent = app.slack.user_says(&channel, ANA, "before the outage", None).await;
    captured(&app, 1).await;

    // warroom stops hearing Slack: these reach Slack's history but never arrive as events.
    let now = app.services.clock.now();
    app.slack.add_history_message(&channel, BEN, "said during the gap", None);
    app.slack.add_history_message(&channel, BEN, "a reply during the gap", Some(&parent));
    app.services
        .store
        .record_gap(now - SignedDuration::from_secs(1), now + SignedDuration::from_secs(5))
        .await
        .unwrap();

    app.slash(&channel, ANA, "resolve").await;
    app.settle().await;

    let markdown = transcript(&app).await;
    assert!(markdown.contains("said during the gap"), "{markdown}");
    assert!(markdown.contains("a reply during the gap"), "{markdown}");
    assert!(!app.slack.calls_to("conversations.history").is_empty());
}

#[tokio::test]
async fn a_socket_outage_is_recorded_as_a_gap() {
    let app = spawn_app().await;
    open_incident(&app).await;
    tokio::time::sleep(Duration::from_millis(120)).await;
    let opened = app.slack.connections_opened();

    app.slack.set_auth_error(Some("invalid_auth"));
    app.slack.drop_sockets();
    tokio::time::sleep(Duration::from_millis(600)).await;
    app.slack.set_auth_error(None);
    assert!(app.slack.wait_for_connections_opened(opened + 1, Duration::from_secs(10)).await);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let since = app.services.clock.now() - SignedDuration::from_secs(60);
    let gaps = app.services.store.gaps(since, app.services.clock.now()).await.unwrap();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert!(gaps[0].1.duration_since(gaps[0].0) >= SignedDuration::from_millis(400), "{gaps:?}");
}

#[tokio::test]
async fn a_redelivered_message_event_appears_once() {
    let app = spawn_app().await;
    let channel = open_incident(&app).await;
    let event = json!({"token": "unused", "team_id": "T0SIM", "api_app_id": "A0SIM", "type": "event_callback", "event_id": "Ev0SAME",
        "event_time": 1_700_000_000,
        "event": {"type": "message", "channel": channel, "user": ANA, "text": "said once", "ts": "1900000000.000200", "channel_type": "channel"}});
    for _ in 0..3 {
        let envelope = app.slack.send_envelope(warroom::sim::EnvelopeKind::EventsApi, event.clone()).await;
        assert!(app.slack.wait_for_ack(&envelope, Duration::from_secs(3)).await.is_some());
    }

    app.slash(&channel, ANA, "resolve").await;
    app.settle().await;

    assert_eq!(transcript(&app).await.matches("said once").count(), 1);
}

#[tokio::test]
async fn a_failure_after_the_transcript_step_neither_loses_it_nor_attaches_it_twice() {
    let app = spawn_app().await;
    let channel = open_incident(&app).await;
    app.slack.user_says(&channel, ANA, "on it", None).await;
    captured(&app, 1).await;
    app.slack.fail_next("conversations.archive", "internal_error");

    app.slash(&channel, ANA, "resolve").await;
    app.settle().await;

    assert_eq!(app.slack.calls_to("conversations.archive").len(), 2, "the archive step was retried on its own");
    let ticket = app.ticket("WR-1").await;
    assert_eq!(ticket["attachments"].as_array().unwrap().len(), 1);
    assert!(app.channel_of("INC-1").await.is_archived);
}

#[tokio::test]
async fn a_reopened_and_re_resolved_incident_gets_an_updated_transcript_covering_both_channels() {
    let app = spawn_app().await;
    let first = open_incident(&app).await;
    app.slack.user_says(&first, ANA, "first time round", None).await;
    captured(&app, 1).await;
    app.slash(&first, ANA, "resolve").await;
    app.settle().await;

    app.deliver("generic", "alerts/generic_disk.json", "reopened").await;
    app.settle().await;
    let second = app.channel_of("INC-1").await.id;
    assert_ne!(first, second);
    app.slack.user_says(&second, BEN, "second time round", None).await;
    captured(&app, 3).await;
    app.slash(&second, BEN, "resolve").await;
    app.settle().await;

    let markdown = transcript(&app).await;
    assert!(markdown.contains("first time round") && markdown.contains("second time round"), "{markdown}");
    let ticket = app.ticket("WR-1").await;
    assert_eq!(ticket["attachments"].as_array().unwrap().len(), 1, "the newer transcript replaces the older");
    assert!(ticket["attachments"][0]["size"].as_u64().unwrap() as usize >= markdown.len() - 10);
}

#[tokio::test]
async fn there_is_no_transcript_before_resolve() {
    let app = spawn_app().await;
    open_incident(&app).await;
    let response = app
        .http
        .get(format!("{}/api/incidents/INC-1/transcript", app.base))
        .bearer_auth(crate::helpers::API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
