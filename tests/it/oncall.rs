//! On-call beyond the built-in rotation: PagerDuty and Opsgenie as a team's provider, the
//! fallback said in the channel, and escalation when nobody acknowledges.

use std::time::Duration;

use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{ANA, BEN, TestApp, fixture, spawn_app_with};

const ALICE: &str = "U0ALICE";
const CAROL: &str = "U0CAROL";

async fn with_team(team_toml: String) -> TestApp {
    let app = spawn_app_with(move |s| s.oncall = toml::from_str(&team_toml).unwrap()).await;
    app.slack.add_user(ALICE, "alice", "alice@example.com");
    app.slack.add_user(CAROL, "carol", "carol@example.com");
    app.connected().await;
    app
}

fn pagerduty_team(base: &str) -> String {
    format!(
        "default_team = \"sre\"\n[[teams]]\nname = \"sre\"\nmembers = [\"U0ANA\"]\ntimezone = \"UTC\"\nfallback = \"rotation\"\ncache_ttl = \"0s\"\n\
         provider = {{ kind = \"pagerduty\", escalation_policy = \"PABC123\", token_env = \"PD_TOKEN\", base_url = \"{base}\" }}\n"
    )
}

#[tokio::test]
async fn a_pagerduty_team_invites_its_level_one_on_call_mapped_from_email_to_slack() {
    let pagerduty = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/oncalls"))
        .and(query_param("escalation_policy_ids[]", "PABC123"))
        .and(query_param("include[]", "users"))
        .and(query_param("earliest", "true"))
        .and(header("Authorization", "Token token=test-pd-token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(fixture("oncall/pagerduty/oncalls_levels.json"))
                .insert_header("content-type", "application/json"),
        )
        .mount(&pagerduty)
        .await;
    let app = with_team(pagerduty_team(&pagerduty.uri())).await;

    app.deliver("generic", "alerts/generic_disk.json", "opened").await;
    app.settle().await;

    let members = app.channel_of("INC-1").await.members;
    assert!(members.contains(&ALICE.to_owned()), "level 1 (alice@example.com) is invited: {members:?}");
    assert!(!members.contains(&CAROL.to_owned()), "level 2 waits for an escalation: {members:?}");
}

#[tokio::test]
async fn when_pagerduty_fails_the_fallback_rotation_answers_and_the_channel_is_told() {
    let pagerduty = MockServer::start().await;
    Mock::given(method("GET")).and(path("/oncalls")).respond_with(ResponseTemplate::new(503)).mount(&pagerduty).await;
    let app = with_team(pagerduty_team(&pagerduty.uri())).await;

    app.deliver("generic", "alerts/generic_disk.json", "opened").await;
    app.settle().await;

    let channel = app.channel_of("INC-1").await;
    assert!(channel.members.contains(&ANA.to_owned()), "the rotation's person is invited: {:?}", channel.members);
    let messages = app.slack.messages(&channel.id);
    assert!(messages.iter().any(|m| m.text.contains("On-call provider unavailable")), "{messages:#?}");
}

#[tokio::test]
async fn an_opsgenie_team_invites_who_is_on_call_for_its_schedule() {
    let opsgenie = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/schedules/sre-primary/on-calls"))
        .and(query_param("flat", "true"))
        .and(header("Authorization", "GenieKey test-og-key"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(fixture("oncall/opsgenie/on_calls_flat.json"))
                .insert_header("content-type", "application/json"),
        )
        .mount(&opsgenie)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/schedules/sre-primary/next-on-calls"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(fixture("oncall/opsgenie/next_on_calls_flat.json"))
                .insert_header("content-type", "application/json"),
        )
        .mount(&opsgenie)
        .await;
    let team = format!(
        "default_team = \"sre\"\n[[teams]]\nname = \"sre\"\nmembers = [\"U0ANA\"]\ntimezone = \"UTC\"\n\
         provider = {{ kind = \"opsgenie\", schedule = \"sre-primary\", token_env = \"OG_TOKEN\", base_url = \"{}\" }}\n",
        opsgenie.uri()
    );
    let app = with_team(team).await;

    app.deliver("generic", "alerts/generic_disk.json", "opened").await;
    app.settle().await;

    assert!(app.channel_of("INC-1").await.members.contains(&ALICE.to_owned()));
}

fn rotation_with_escalation() -> String {
    "default_team = \"platform\"\nescalate_after = \"300ms\"\n[[teams]]\nname = \"platform\"\nmembers = [\"U0ANA\", \"U0BEN\"]\n\
     timezone = \"UTC\"\nhandoff = \"daily\"\nhandoff_time = \"00:00\"\nrotation_start = \"2026-01-01\"\n"
        .to_owned()
}

#[tokio::test]
async fn an_incident_nobody_acknowledges_pages_the_next_level_and_records_it() {
    let app = with_team(rotation_with_escalation()).await;
    app.deliver("generic", "alerts/generic_disk.json", "opened").await;
    app.settle().await;
    let channel = app.channel_of("INC-1").await.id;
    let before = app.channel_of("INC-1").await.members;
    let (first, next) = if before.contains(&ANA.to_owned()) { (ANA, BEN) } else { (BEN, ANA) };

    assert!(
        app.slack
            .wait_for(Duration::from_secs(5), |s| s
                .messages(&channel)
                .iter()
                .any(|m| m.text.contains("nobody has acknowledged")))
            .await,
        "the channel is told"
    );
    app.settle().await;
    let after = app.channel_of("INC-1").await.members;
    assert!(after.contains(&next.to_owned()) && after.contains(&first.to_owned()), "{after:?}");
    let incident = app.incident("INC-1").await;
    assert!(
        incident["timeline"].as_array().unwrap().iter().any(|e| e["kind"] == "escalated" && e["actor"] == "warroom")
    );
}

#[tokio::test]
async fn an_acknowledged_incident_is_not_escalated() {
    let app = with_team(rotation_with_escalation().replace("300ms", "1s")).await;
    app.deliver("generic", "alerts/generic_disk.json", "opened").await;
    // Not `settle`: that would wait for the escalation itself.
    app.wait_for_slack("the war room", |s| s.channels().iter().any(|c| !c.pins.is_empty())).await;
    let channel = app.channel_of("INC-1").await.id;
    app.slash(&channel, ANA, "ack").await;

    app.settle().await;

    assert!(!app.slack.messages(&channel).iter().any(|m| m.text.contains("nobody has acknowledged")));
}

#[tokio::test]
async fn a_provider_slower_than_the_ack_allows_answers_oncall_through_the_response_url() {
    let pagerduty = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/oncalls"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(fixture("oncall/pagerduty/oncalls_levels.json"))
                .insert_header("content-type", "application/json")
                .set_delay(Duration::from_millis(2500)),
        )
        .mount(&pagerduty)
        .await;
    let app = with_team(pagerduty_team(&pagerduty.uri())).await;

    let ack = app.slash("C0GENERAL", BEN, "oncall").await.unwrap_or_default();

    assert!(ack.starts_with("Looking up who is on call"), "the ack must not wait for the provider: {ack:?}");
    let answered = app.response_url_post_containing(&format!("<@{ALICE}>")).await;
    assert!(answered, "the answer follows: {:?}", app.slack.response_url_posts());
}
