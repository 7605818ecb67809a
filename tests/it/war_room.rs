//! An incident's war room in (simulated) Slack: one channel per problem, on-call invited, the
//! context message posted, pinned and kept current.

use serde_json::Value;
use warroom::sim::SimSlack;

use crate::helpers::{ANA, BEN, LEA, spawn_app, spawn_app_with};

fn action_ids(blocks: &Value) -> Vec<String> {
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

fn context_posts(slack: &SimSlack) -> Vec<Value> {
    slack
        .calls_to("chat.postMessage")
        .into_iter()
        .map(|c| c.params)
        .filter(|p| p.get("thread_ts").is_none() && !action_ids(&p["blocks"]).is_empty())
        .collect()
}

#[tokio::test]
async fn an_alert_opens_one_channel_with_on_call_invited_and_a_pinned_context_message() {
    let app = spawn_app().await;

    app.deliver("alertmanager", "alerts/alertmanager_01_firing.json", "opened").await;
    app.wait_for_slack("the context message to be pinned", |s| s.channels().iter().any(|c| !c.pins.is_empty())).await;

    let channel = app.channel_of("INC-1").await;
    assert_eq!(channel.name, "inc-1-checkout");
    assert!(!channel.is_private);
    assert!(channel.members.contains(&LEA.to_owned()), "the incident-lead group is invited: {:?}", channel.members);
    assert!(channel.members.iter().any(|m| m == ANA || m == BEN), "today's on-call is invited: {:?}", channel.members);
    assert!(channel.topic.starts_with("sev1 · 5xx rate above 5% on checkout · WR-1"), "topic: {}", channel.topic);
    let posts = context_posts(&app.slack);
    assert_eq!(posts.len(), 1);
    assert_eq!(action_ids(&posts[0]["blocks"]), ["v1:ack=INC-1", "v1:resolve=INC-1"]);
    let (_, incident) = app.get_api("/api/incidents/INC-1").await;
    assert_eq!(incident["channel"]["name"], "inc-1-checkout");
    assert_eq!(incident["ticket"]["key"], "WR-1");
}

#[tokio::test]
async fn repeats_never_create_a_second_channel_and_new_alerts_go_into_the_thread() {
    let app = spawn_app().await;
    app.deliver("alertmanager", "alerts/alertmanager_01_firing.json", "opened").await;
    app.deliver("alertmanager", "alerts/alertmanager_01_firing.json", "duplicate").await;
    app.deliver("alertmanager", "alerts/alertmanager_02_partially_resolved.json", "updated").await;
    app.settle().await;

    assert_eq!(app.slack.calls_to("conversations.create").len(), 1, "a repeated alert must not open a second channel");
    let context_ts = app.channel_of("INC-1").await.pins[0].clone();
    let thread_posts: Vec<Value> = app
        .slack
        .calls_to("chat.postMessage")
        .into_iter()
        .map(|c| c.params)
        .filter(|p| p["thread_ts"] == context_ts.as_str())
        .collect();
    assert_eq!(thread_posts.len(), 1, "one thread post for the partial recovery");
    assert!(thread_posts[0]["text"].as_str().unwrap().contains("alert resolved"), "{}", thread_posts[0]);
    assert!(!app.slack.calls_to("chat.update").is_empty(), "the context message is re-rendered in place");
}

#[tokio::test]
async fn a_crash_between_creating_the_channel_and_recording_it_does_not_create_a_second_one() {
    let app = spawn_app().await;
    // An earlier attempt created the channel, then the process died before recording it.
    let earlier = app.slack.create_channel_as_bot("inc-1-checkout");

    app.deliver("alertmanager", "alerts/alertmanager_01_firing.json", "opened").await;
    app.settle().await;

    let channel = app.channel_of("INC-1").await;
    assert_eq!(channel.id, earlier, "the channel the earlier attempt made is adopted");
    assert_eq!(app.slack.channels().iter().filter(|c| c.name.starts_with("inc-1-")).count(), 1);
}

#[tokio::test]
async fn a_name_taken_by_someone_else_gets_a_suffix() {
    let app = spawn_app().await;
    app.slack.add_channel("inc-1-checkout");

    app.deliver("alertmanager", "alerts/alertmanager_01_firing.json", "opened").await;
    app.settle().await;

    assert_eq!(app.channel_of("INC-1").await.name, "inc-1-checkout-2");
}

#[tokio::test]
async fn one_unknown_person_does_not_block_the_others_and_is_reported_in_the_channel() {
    let app = spawn_app_with(|s| {
        s.oncall = toml::from_str(
            "default_team = \"ghosts\"\n[[teams]]\nname = \"ghosts\"\nmembers = [\"ghost@example.com\"]\ntimezone = \"UTC\"\nlead_group = \"S0LEADS\"\n",
        )
        .unwrap();
    })
    .await;

    app.deliver("generic", "alerts/generic_disk.json", "opened").await;
    app.settle().await;

    let channel = app.channel_of("INC-1").await;
    assert!(channel.members.contains(&LEA.to_owned()));
    let messages = app.slack.messages(&channel.id);
    assert!(
        messages.iter().any(|m| m.text.contains("Could not invite") && m.text.contains("ghost@example.com")),
        "the channel is told who could not be invited: {messages:#?}"
    );
}

#[tokio::test]
async fn large_groups_are_invited_in_chunks_of_at_most_100() {
    let app = spawn_app().await;
    let members: Vec<String> = (0..150).map(|n| format!("U1{n:04}")).collect();
    for member in &members {
        app.slack.add_user(member, member, &format!("{member}@example.com"));
    }
    let refs: Vec<&str> = members.iter().map(String::as_str).collect();
    app.slack.add_usergroup("S0LEADS", "incident-leads", &refs);

    app.deliver("generic", "alerts/generic_disk.json", "opened").await;
    app.settle().await;

    let invites = app.slack.calls_to("conversations.invite");
    assert!(invites.len() >= 2);
    for call in &invites {
        let users = call.params["users"].as_str().map_or(0, |u| u.split(',').count());
        assert!(users <= 100, "an invite carried {users} users");
    }
    assert_eq!(app.channel_of("INC-1").await.members.len(), 152, "150 leads, today's on-call and the bot");
}

#[tokio::test]
async fn a_rate_limited_create_is_retried_after_retry_after() {
    let app = spawn_app().await;
    app.slack.rate_limit_next("conversations.create", 1);

    app.deliver("generic", "alerts/generic_disk.json", "opened").await;
    app.settle().await;

    let creates = app.slack.calls_to("conversations.create");
    assert_eq!(creates.len(), 2);
    assert!(
        creates[1].at.duration_since(creates[0].at) >= std::time::Duration::from_millis(900),
        "Retry-After is honoured"
    );
    assert_eq!(app.channel_of("INC-1").await.name, "inc-1-db");
}

#[tokio::test]
async fn the_context_message_the_bot_sends_matches_the_snapshot() {
    let app = spawn_app().await;
    app.deliver("dynatrace", "alerts/dynatrace_open.json", "opened").await;
    app.settle().await;

    let post = context_posts(&app.slack).remove(0);
    insta::assert_json_snapshot!("context_message_sent_for_a_dynatrace_problem", post, {
        ".channel" => "[channel]",
        ".**.text" => insta::dynamic_redaction(|value, _| {
            let text = value.as_str().unwrap_or_default();
            if text.starts_with("*Opened*") { "*Opened*\n[time]".into() } else { value }
        }),
        ".blocks[1].fields[6].text" => insta::dynamic_redaction(|value, _| {
            // Who is on call depends on the day (a daily rotation of two).
            let text = value.as_str().unwrap_or_default();
            if text.contains("<@U0ANA>") || text.contains("<@U0BEN>") { "*On call*\n[today's on-call]".into() } else { value }
        }),
    });
}

#[tokio::test]
async fn a_new_deployment_shows_on_the_open_incidents_of_its_service() {
    let app = spawn_app().await;
    app.deliver("alertmanager", "alerts/alertmanager_01_firing.json", "opened").await;
    app.settle().await;

    let response = app
        .http
        .post(format!("{}/hooks/deployments", app.base))
        .bearer_auth(crate::helpers::WEBHOOK_TOKEN)
        .json(&serde_json::json!({ "service": "checkout", "version": "v1.43", "commit": "abc123" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    app.settle().await;

    let updates = app.slack.calls_to("chat.update");
    assert!(
        updates.iter().any(|c| c.params["blocks"].to_string().contains("Last deployment: *v1.43*")),
        "the context message is re-rendered with the deployment: {:?}",
        updates.iter().map(|c| c.params["blocks"].to_string()).collect::<Vec<_>>()
    );
}
