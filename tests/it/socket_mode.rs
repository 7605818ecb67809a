//! Socket Mode through the real slack-morphism listener against the simulated workspace: acks,
//! redelivery, foreign envelopes, reconnects, and Slack being unavailable.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use warroom::sim::EnvelopeKind;

use crate::helpers::{ZOE, spawn_app, spawn_app_with};

fn joined_event(channel: &str, user: &str, event_id: &str, team: &str) -> serde_json::Value {
    json!({
        "token": "unused", "team_id": team, "api_app_id": "A0SIM", "type": "event_callback",
        "event_id": event_id, "event_time": 1_700_000_000,
        "event": { "type": "member_joined_channel", "user": user, "channel": channel, "channel_type": "C", "team": team }
    })
}

async fn joined_count(app: &crate::helpers::TestApp) -> usize {
    let (_, incident) = app.get_api("/api/incidents/INC-1").await;
    incident["timeline"].as_array().unwrap().iter().filter(|e| e["kind"] == "joined" && e["actor"] == ZOE).count()
}

#[tokio::test]
async fn serve_connects_over_socket_mode_and_reports_it_in_healthz() {
    let app = spawn_app().await;
    app.connected().await;
    app.wait_for_slack("auth.test", |s| !s.calls_to("auth.test").is_empty()).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (status, health) = app.get_api("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health, json!({ "status": "ok", "database": "ok", "slack": "connected" }));
}

#[tokio::test]
async fn a_redelivered_event_has_no_second_effect() {
    let app = spawn_app().await;
    app.connected().await;
    app.deliver("generic", "alerts/generic_disk.json", "opened").await;
    app.settle().await;
    let channel = app.channel_of("INC-1").await.id;

    for _ in 0..2 {
        let envelope =
            app.slack.send_envelope(EnvelopeKind::EventsApi, joined_event(&channel, ZOE, "Ev0JOIN1", "T0SIM")).await;
        assert!(app.slack.wait_for_ack(&envelope, Duration::from_secs(3)).await.is_some(), "every envelope is acked");
    }

    assert_eq!(joined_count(&app).await, 1, "the same event_id twice is one timeline event");
}

#[tokio::test]
async fn envelopes_from_another_team_are_acked_and_ignored() {
    let app = spawn_app().await;
    app.connected().await;
    app.deliver("generic", "alerts/generic_disk.json", "opened").await;
    app.settle().await;
    let channel = app.channel_of("INC-1").await.id;

    let envelope =
        app.slack.send_envelope(EnvelopeKind::EventsApi, joined_event(&channel, ZOE, "Ev0OTHER", "T0ELSEWHERE")).await;

    assert!(app.slack.wait_for_ack(&envelope, Duration::from_secs(3)).await.is_some());
    assert_eq!(joined_count(&app).await, 0);
}

#[tokio::test]
async fn every_envelope_is_acked_well_within_three_seconds() {
    let app = spawn_app().await;
    app.connected().await;
    app.deliver("generic", "alerts/generic_disk.json", "opened").await;
    app.settle().await;
    let channel = app.channel_of("INC-1").await.id;
    for n in 0..20 {
        let envelope = app
            .slack
            .send_envelope(EnvelopeKind::EventsApi, joined_event(&channel, ZOE, &format!("Ev0FAST{n}"), "T0SIM"))
            .await;
        let ack = app.slack.wait_for_ack(&envelope, Duration::from_secs(3)).await.expect("acked");
        assert!(ack.after < Duration::from_millis(1000), "ack took {:?}", ack.after);
    }
}

#[tokio::test]
async fn a_disconnect_frame_or_a_dropped_socket_leads_to_a_reconnect() {
    let app = spawn_app().await;
    app.connected().await;
    let opened = app.slack.connections_opened();

    app.slack.send_disconnect("refresh_requested").await;
    assert!(
        app.slack.wait_for_connections_opened(opened + 1, Duration::from_secs(10)).await,
        "reconnects after disconnect"
    );
    app.slack.drop_sockets();
    assert!(
        app.slack.wait_for_connections_opened(opened + 2, Duration::from_secs(10)).await,
        "reconnects after a dropped socket"
    );

    let envelope = app
        .slack
        .send_envelope(EnvelopeKind::SlashCommands, app.slack.slash_command_payload("C0NONE", ZOE, "help"))
        .await;
    let ack = app.slack.wait_for_ack(&envelope, Duration::from_secs(5)).await.expect("acked after reconnecting");
    assert!(ack.payload.unwrap()["text"].as_str().unwrap().contains("/incident"), "help rides in the ack");
}

#[tokio::test]
async fn while_slack_rejects_the_token_webhooks_are_accepted_and_the_work_waits() {
    let slack = crate::helpers::start_workspace().await;
    slack.set_auth_error(Some("invalid_auth"));
    let app = spawn_app_with(|s| {
        s.slack.api_url = slack.api_url();
        s.slack.bot_token = Some(slack.config().bot_token.clone().into());
        s.slack.app_token = Some(slack.config().app_token.clone().into());
    })
    .await;

    app.deliver("generic", "alerts/generic_disk.json", "opened").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, health) = app.get_api("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["slack"], "error: invalid_auth (SLACK_BOT_TOKEN)");
    assert!(slack.channels().is_empty());

    slack.set_auth_error(None);
    assert!(
        slack.wait_for(Duration::from_secs(15), |s| s.channels().iter().any(|c| c.name == "inc-1-db")).await,
        "queued work runs once Slack answers"
    );
    assert!(slack.wait_for_connections(1, Duration::from_secs(10)).await);
    slack.shutdown();
}

#[tokio::test]
async fn an_event_that_cannot_be_stored_is_not_acked_and_its_redelivery_takes_effect_once() {
    let app = spawn_app().await;
    app.connected().await;
    app.deliver("generic", "alerts/generic_disk.json", "opened").await;
    app.settle().await;
    let channel = app.channel_of("INC-1").await.id;

    app.set_database_up(false);
    let first =
        app.slack.send_envelope(EnvelopeKind::EventsApi, joined_event(&channel, ZOE, "Ev0LATER", "T0SIM")).await;
    assert!(
        app.slack.wait_for_ack(&first, Duration::from_millis(300)).await.is_none(),
        "no ack while the effect cannot be stored"
    );
    app.set_database_up(true);

    // The first delivery was never acked: Slack redelivers it (same event_id, new envelope,
    // retry_attempt 1), and only that can make the effect appear.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while joined_count(&app).await == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(joined_count(&app).await, 1);
}
