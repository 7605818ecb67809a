//! Tests of the sim, mostly through the real slack-morphism client and listener.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;
use tokio_tungstenite::tungstenite::Message;

use super::*;

type BoxErr = Box<dyn std::error::Error + Send + Sync>;

fn client(sim: &SimSlack) -> Arc<SlackHyperClient> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let conn = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .expect("native roots")
        .https_or_http()
        .enable_http1()
        .build();
    Arc::new(SlackClient::new(SlackClientHyperConnector::from(conn).with_slack_api_url(&sim.api_url())))
}

fn bot_token(sim: &SimSlack) -> SlackApiToken {
    SlackApiToken::new(sim.config().bot_token.clone().into())
}

fn fast_config() -> SimConfig {
    SimConfig { redelivery_after: Duration::from_millis(200), ..SimConfig::default() }
}

async fn started() -> SimSlack {
    let sim = SimSlack::start(fast_config()).await.expect("sim starts");
    sim.add_user("U01ALICE", "alice", "alice@example.com");
    sim.add_user("U02BOB", "bob", "bob@example.com");
    sim
}

fn api_error_code(err: &SlackClientError) -> Option<&str> {
    match err {
        SlackClientError::ApiError(e) => Some(e.code.as_str()),
        _ => None,
    }
}

/// Raw HTTP call to the sim, for what slack-morphism cannot express.
async fn raw_post(sim: &SimSlack, method: &str, auth: Option<&str>, body: &str) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/{method}", sim.api_url()))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = auth {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("http call");
    let status = resp.status().as_u16();
    let v = resp.json::<Value>().await.unwrap_or(Value::Null);
    (status, v)
}

/// A raw Socket Mode client: opens a socket and returns it after reading `hello`.
async fn raw_socket(
    sim: &SimSlack,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let (_, v) = raw_post(sim, "apps.connections.open", Some("xapp-sim-app"), "{}").await;
    let url = v["url"].as_str().expect("url").to_string();
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("ws");
    let hello = next_json(&mut ws).await;
    assert_eq!(hello["type"], "hello");
    ws
}

async fn next_json<S>(ws: &mut S) -> Value
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(2), ws.next())
            .await
            .expect("frame within 2s")
            .expect("stream open")
            .expect("frame ok");
        if let Message::Text(t) = msg {
            return serde_json::from_str(t.as_str()).expect("json frame");
        }
    }
}

// ----- Web API through slack-morphism -----------------------------------------------------

#[tokio::test]
async fn auth_test_through_slack_morphism_returns_the_bot_identity() {
    let sim = started().await;
    let client = client(&sim);
    let token = bot_token(&sim);
    let session = client.open_session(&token);
    let res = session.auth_test().await.expect("auth.test ok");
    assert_eq!(res.user_id.to_string(), "U0BOT");
    assert_eq!(res.team_id.to_string(), "T0SIM");
    assert_eq!(sim.calls_to("auth.test").len(), 1);
    sim.shutdown();
}

#[tokio::test]
async fn creating_a_channel_twice_fails_with_name_taken_as_an_api_error() {
    let sim = started().await;
    let client = client(&sim);
    let token = bot_token(&sim);
    let session = client.open_session(&token);
    let req = SlackApiConversationsCreateRequest::new("inc-2026-db".into());
    let created = session.conversations_create(&req).await.expect("created");
    assert_eq!(created.channel.name.as_deref(), Some("inc-2026-db"));
    let ch = sim.channel_by_name("inc-2026-db").expect("stored");
    assert_eq!(ch.id, created.channel.id.to_string());
    assert_eq!(ch.members, vec!["U0BOT".to_string()]);

    let err = session.conversations_create(&req).await.expect_err("taken");
    assert_eq!(api_error_code(&err), Some("name_taken"));

    for (name, code) in [
        ("Bad Name", "invalid_name_specials"),
        ("", "invalid_name_required"),
        (&"x".repeat(81)[..], "invalid_name_maxlength"),
    ] {
        let err = session
            .conversations_create(&SlackApiConversationsCreateRequest::new(name.into()))
            .await
            .expect_err("invalid");
        assert_eq!(api_error_code(&err), Some(code), "name {name:?}");
    }
    sim.shutdown();
}

#[tokio::test]
async fn history_pages_newest_first_and_threads_come_only_through_replies() {
    let sim = started().await;
    let client = client(&sim);
    let token = bot_token(&sim);
    let session = client.open_session(&token);
    let ch = session
        .conversations_create(&SlackApiConversationsCreateRequest::new("inc-hist".into()))
        .await
        .expect("created")
        .channel
        .id;
    let mut posted = Vec::new();
    for i in 0..5 {
        let res = session
            .chat_post_message(&SlackApiChatPostMessageRequest::new(
                ch.clone(),
                SlackMessageContent::new().with_text(format!("msg {i}")),
            ))
            .await
            .expect("posted");
        assert_eq!(res.message.origin.ts, res.ts);
        posted.push(res.ts);
    }
    assert!(posted.windows(2).all(|w| w[0].0 < w[1].0), "ts increase");
    let reply = session
        .chat_post_message(
            &SlackApiChatPostMessageRequest::new(ch.clone(), SlackMessageContent::new().with_text("in thread".into()))
                .with_thread_ts(posted[0].clone()),
        )
        .await
        .expect("reply");

    let mut seen = Vec::new();
    let mut cursor: Option<SlackCursorId> = None;
    let mut pages = 0;
    loop {
        let mut req = SlackApiConversationsHistoryRequest::new().with_channel(ch.clone()).with_limit(2);
        if let Some(c) = cursor.take() {
            req = req.with_cursor(c);
        }
        let res = session.conversations_history(&req).await.expect("history");
        pages += 1;
        seen.extend(res.messages.iter().map(|m| m.origin.ts.clone()));
        if let Some(parent) = res.messages.iter().find(|m| m.origin.ts == posted[0]) {
            assert_eq!(parent.parent.reply_count, Some(1));
        }
        match res.response_metadata.and_then(|m| m.next_cursor) {
            Some(c) => {
                assert_eq!(res.has_more, Some(true));
                cursor = Some(c);
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut newest_first = posted.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);

    let replies = session
        .conversations_replies(&SlackApiConversationsRepliesRequest::new(ch.clone(), posted[0].clone()))
        .await
        .expect("replies");
    let ts: Vec<_> = replies.messages.iter().map(|m| m.origin.ts.clone()).collect();
    assert_eq!(ts, vec![posted[0].clone(), reply.ts.clone()]);

    let oldest_bound = session
        .conversations_history(
            &SlackApiConversationsHistoryRequest::new().with_channel(ch.clone()).with_oldest(posted[2].clone()),
        )
        .await
        .expect("bounded");
    assert_eq!(oldest_bound.messages.len(), 2, "oldest is exclusive");
    sim.shutdown();
}

#[tokio::test]
async fn a_wrong_or_missing_token_is_rejected_like_slack() {
    let sim = started().await;
    let client = client(&sim);
    let bad = SlackApiToken::new("xoxb-not-the-sim-token".into());
    let err = client.open_session(&bad).auth_test().await.expect_err("invalid");
    assert_eq!(api_error_code(&err), Some("invalid_auth"));

    let (status, v) = raw_post(&sim, "auth.test", None, "{}").await;
    assert_eq!((status, v["error"].as_str()), (200, Some("not_authed")));
    let (_, v) = raw_post(&sim, "apps.connections.open", Some("xoxb-sim-bot"), "{}").await;
    assert_eq!(v["error"], "not_allowed_token_type");

    sim.set_auth_error(Some("account_inactive"));
    let err = client.open_session(&bot_token(&sim)).auth_test().await.expect_err("inactive");
    assert_eq!(api_error_code(&err), Some("account_inactive"));
    sim.set_auth_error(None);
    assert!(client.open_session(&bot_token(&sim)).auth_test().await.is_ok());
    sim.shutdown();
}

#[tokio::test]
async fn bad_json_and_unknown_methods_get_slack_errors_not_crashes() {
    let sim = started().await;
    let (status, v) = raw_post(&sim, "chat.postMessage", Some("xoxb-sim-bot"), "{nope").await;
    assert_eq!((status, v["error"].as_str()), (200, Some("invalid_arguments")));
    let (_, v) = raw_post(&sim, "nothing.here", Some("xoxb-sim-bot"), "{}").await;
    assert_eq!(v["error"], "unknown_method");
    let (_, v) = raw_post(&sim, "chat.postMessage", Some("xoxb-sim-bot"), "{}").await;
    assert_eq!(v["error"], "invalid_arguments");
    assert_eq!(v["ok"], false);
    sim.shutdown();
}

#[tokio::test]
async fn rate_limited_calls_answer_429_with_retry_after_and_fail_next_injects_errors() {
    let sim = started().await;
    let client = client(&sim);
    let token = bot_token(&sim);
    let session = client.open_session(&token);
    sim.rate_limit_next("auth.test", 1);
    match session.auth_test().await {
        Err(SlackClientError::RateLimitError(e)) => {
            assert_eq!(e.retry_after, Some(Duration::from_secs(1)));
        }
        other => panic!("expected a rate limit error, got {other:?}"),
    }
    assert!(session.auth_test().await.is_ok(), "only the next call");

    sim.fail_next("auth.test", "fatal_error");
    let err = session.auth_test().await.expect_err("injected");
    assert_eq!(api_error_code(&err), Some("fatal_error"));
    assert!(session.auth_test().await.is_ok());
    sim.shutdown();
}

#[tokio::test]
async fn invite_is_all_or_nothing_without_force_and_announces_joins() {
    let sim = started().await;
    let channel = {
        let (_, v) = raw_post(&sim, "conversations.create", Some("xoxb-sim-bot"), r#"{"name":"inc-invite"}"#).await;
        v["channel"]["id"].as_str().expect("id").to_string()
    };
    let body = json!({"channel": channel, "users": "U01ALICE,U0NOBODY"}).to_string();
    let (_, v) = raw_post(&sim, "conversations.invite", Some("xoxb-sim-bot"), &body).await;
    assert_eq!(v["error"], "user_not_found");
    assert_eq!(v["errors"][0]["user"], "U0NOBODY");
    assert_eq!(sim.channels()[0].members, vec!["U0BOT".to_string()]);

    let mut ws = raw_socket(&sim).await;
    let body = json!({"channel": channel, "users": ["U01ALICE", "U02BOB"]}).to_string();
    let (_, v) = raw_post(&sim, "conversations.invite", Some("xoxb-sim-bot"), &body).await;
    assert_eq!(v["ok"], true, "{v}");
    let members = sim.channel_by_name("inc-invite").expect("ch").members;
    assert_eq!(members, vec!["U0BOT", "U01ALICE", "U02BOB"]);
    let mut joined = Vec::new();
    for _ in 0..4 {
        let frame = next_json(&mut ws).await;
        let event = &frame["payload"]["event"];
        if event["type"] == "member_joined_channel" {
            assert_eq!(event["inviter"], "U0BOT");
            joined.push(event["user"].as_str().unwrap_or_default().to_string());
        }
        let id = frame["envelope_id"].as_str().unwrap_or_default().to_string();
        ws.send(Message::Text(json!({"envelope_id": id}).to_string().into())).await.expect("ack");
    }
    assert_eq!(joined, vec!["U01ALICE", "U02BOB"]);

    let body = json!({"channel": channel, "users": "U01ALICE"}).to_string();
    let (_, v) = raw_post(&sim, "conversations.invite", Some("xoxb-sim-bot"), &body).await;
    assert_eq!(v["error"], "already_in_channel");
    let body = json!({"channel": channel, "users": "U0BOT"}).to_string();
    let (_, v) = raw_post(&sim, "conversations.invite", Some("xoxb-sim-bot"), &body).await;
    assert_eq!(v["error"], "cant_invite_self");
    sim.shutdown();
}

#[tokio::test]
async fn the_bots_own_posts_come_back_as_message_events_with_bot_id() {
    let sim = started().await;
    let general = sim.add_channel("general");
    let mut ws = raw_socket(&sim).await;
    let body = json!({"channel": general, "text": "hello"}).to_string();
    let (_, v) = raw_post(&sim, "chat.postMessage", Some("xoxb-sim-bot"), &body).await;
    let frame = next_json(&mut ws).await;
    assert_eq!(frame["type"], "events_api");
    assert_eq!(frame["accepts_response_payload"], false);
    assert_eq!(frame["retry_attempt"], 0);
    let payload = &frame["payload"];
    assert!(payload["event_id"].as_str().is_some_and(|e| e.starts_with("Ev")));
    let event = &payload["event"];
    assert_eq!(event["type"], "message");
    assert_eq!(event["bot_id"], "B0SIM");
    assert_eq!(event["user"], "U0BOT");
    assert_eq!(event["ts"], v["ts"]);
    assert!(event.get("subtype").is_none());
    sim.shutdown();
}

#[tokio::test]
async fn file_upload_v2_records_the_file_with_title_bytes_and_channel() {
    let sim = started().await;
    let general = sim.add_channel("general");
    let client = client(&sim);
    let token = bot_token(&sim);
    let session = client.open_session(&token);
    let content = b"transcript line 1\n".to_vec();
    let url = session
        .get_upload_url_external(&SlackApiFilesGetUploadUrlExternalRequest::new("transcript.txt".into(), content.len()))
        .await
        .expect("url");
    session
        .files_upload_via_url(&SlackApiFilesUploadViaUrlRequest::new(
            url.upload_url.clone(),
            content.clone(),
            "text/plain".into(),
        ))
        .await
        .expect("uploaded");
    let done = session
        .files_complete_upload_external(
            &SlackApiFilesCompleteUploadExternalRequest::new(vec![
                SlackApiFilesComplete::new(url.file_id.clone()).with_title("Transcript".into()),
            ])
            .with_channel_id(general.clone().into()),
        )
        .await
        .expect("completed");
    assert_eq!(done.files.len(), 1);
    let files = sim.uploaded_files();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].title, "Transcript");
    assert_eq!(files[0].bytes, content);
    assert_eq!(files[0].channels, vec![general]);
    sim.shutdown();
}

// ----- Socket Mode ------------------------------------------------------------------------

async fn on_command(
    ev: SlackCommandEvent,
    _c: Arc<SlackHyperClient>,
    _s: SlackClientEventsUserState,
) -> UserCallbackResult<SlackCommandEventResponse> {
    Ok(SlackCommandEventResponse::new(
        SlackMessageContent::new().with_text(format!("got {}", ev.text.unwrap_or_default())),
    )
    .with_response_type(SlackMessageResponseType::Ephemeral))
}

async fn on_push(
    _ev: SlackPushEventCallback,
    _c: Arc<SlackHyperClient>,
    _s: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    Ok(())
}

fn on_error(_err: BoxErr, _c: Arc<SlackHyperClient>, _s: SlackClientEventsUserState) -> HttpStatusCode {
    HttpStatusCode::OK
}

async fn listener(sim: &SimSlack) -> SlackClientSocketModeListener<SlackClientHyperHttpsConnector> {
    let env = Arc::new(SlackClientEventsListenerEnvironment::new(client(sim)).with_error_handler(on_error));
    let callbacks = SlackSocketModeListenerCallbacks::new().with_command_events(on_command).with_push_events(on_push);
    let config = SlackClientSocketModeConfig::new()
        .with_max_connections_count(1)
        .with_initial_backoff_in_seconds(0)
        .with_reconnect_timeout_in_seconds(1);
    let listener = SlackClientSocketModeListener::new(&config, env, callbacks);
    listener.listen_for(&SlackApiToken::new(sim.config().app_token.clone().into())).await.expect("listen");
    listener.start().await;
    listener
}

#[tokio::test]
async fn slack_morphism_listener_acks_a_slash_command_with_its_response_payload() {
    let sim = started().await;
    let general = sim.add_channel("general");
    let listener = listener(&sim).await;
    assert!(sim.wait_for_connections(1, Duration::from_secs(2)).await);
    let payload = sim.slash_command_payload(&general, "U01ALICE", "status monitoring");
    assert!(payload["response_url"].as_str().is_some_and(|u| u.contains("/response/")));
    let id = sim.send_envelope(EnvelopeKind::SlashCommands, payload).await;
    let ack = sim.wait_for_ack(&id, Duration::from_secs(2)).await.expect("acked");
    let payload = ack.payload.expect("ack payload");
    assert_eq!(payload["text"], "got status monitoring");
    assert_eq!(payload["response_type"], "ephemeral");
    assert_eq!(sim.acks().len(), 1);

    // Events are acked too, and user messages reach the bot.
    sim.user_says(&general, "U01ALICE", "db is down", None).await;
    assert!(sim.wait_until(Duration::from_secs(2), |st| st.acks.len() == 2).await);
    listener.shutdown().await;
    sim.shutdown();
}

#[tokio::test]
async fn an_unacked_events_api_envelope_is_redelivered_with_retry_attempt_1() {
    let sim = started().await;
    let general = sim.add_channel("general");
    let mut ws = raw_socket(&sim).await;
    sim.user_says(&general, "U01ALICE", "hello", None).await;
    let first = next_json(&mut ws).await;
    assert_eq!(first["retry_attempt"], 0);
    let second = next_json(&mut ws).await;
    assert_eq!(second["retry_attempt"], 1);
    assert_eq!(second["retry_reason"], "timeout");
    assert_eq!(second["payload"]["event_id"], first["payload"]["event_id"]);
    assert_ne!(second["envelope_id"], first["envelope_id"]);
    let id = second["envelope_id"].as_str().expect("id").to_string();
    ws.send(Message::Text(json!({"envelope_id": id}).to_string().into())).await.expect("ack");
    assert!(sim.wait_for_ack(&id, Duration::from_secs(1)).await.is_some());
    // Nothing more after the ack.
    let more = tokio::time::timeout(Duration::from_millis(500), ws.next()).await;
    assert!(more.is_err(), "no third delivery: {more:?}");
    sim.shutdown();
}

#[tokio::test]
async fn redelivery_stops_after_max_redeliveries() {
    let sim = SimSlack::start(SimConfig {
        redelivery_after: Duration::from_millis(50),
        max_redeliveries: 2,
        ..SimConfig::default()
    })
    .await
    .expect("start");
    let mut ws = raw_socket(&sim).await;
    sim.send_event(json!({"type": "app_mention", "text": "hi", "user": "U1", "channel": "C1", "ts": "1.000001"})).await;
    for attempt in 0..3 {
        assert_eq!(next_json(&mut ws).await["retry_attempt"], attempt);
    }
    let more = tokio::time::timeout(Duration::from_millis(300), ws.next()).await;
    assert!(more.is_err(), "gave up after 2 redeliveries");
    sim.shutdown();
}

#[tokio::test]
async fn a_disconnect_frame_makes_the_listener_reconnect() {
    let sim = started().await;
    let listener = listener(&sim).await;
    assert!(sim.wait_for_connections(1, Duration::from_secs(2)).await);
    sim.send_disconnect("refresh_requested").await;
    assert!(sim.wait_for_connections_opened(2, Duration::from_secs(3)).await, "reconnected");
    assert!(sim.wait_for_connections(1, Duration::from_secs(2)).await);
    assert_eq!(sim.calls_to("apps.connections.open").len(), 2);

    sim.drop_sockets();
    assert!(sim.wait_for_connections_opened(3, Duration::from_secs(3)).await, "reconnected after an abrupt close");
    listener.shutdown().await;
    sim.shutdown();
}

#[tokio::test]
async fn envelopes_sent_while_no_socket_is_open_are_delivered_on_connect() {
    let sim = started().await;
    let general = sim.add_channel("general");
    sim.user_says(&general, "U02BOB", "anyone?", None).await;
    let mut ws = raw_socket(&sim).await;
    let frame = next_json(&mut ws).await;
    assert_eq!(frame["payload"]["event"]["text"], "anyone?");
    sim.shutdown();
}

#[tokio::test]
async fn user_edits_and_deletes_update_history_and_emit_events() {
    let sim = started().await;
    let general = sim.add_channel("general");
    let mut ws = raw_socket(&sim).await;
    let ts = sim.user_says(&general, "U01ALICE", "typo", None).await;
    let _ = next_json(&mut ws).await;
    sim.user_edits(&general, "U01ALICE", &ts, "fixed").await;
    let changed = next_json(&mut ws).await;
    assert_eq!(changed["payload"]["event"]["subtype"], "message_changed");
    assert_eq!(changed["payload"]["event"]["message"]["text"], "fixed");
    assert_eq!(changed["payload"]["event"]["previous_message"]["text"], "typo");
    assert!(sim.messages(&general)[0].edited);

    sim.user_deletes(&general, &ts).await;
    let deleted = next_json(&mut ws).await;
    assert_eq!(deleted["payload"]["event"]["subtype"], "message_deleted");
    assert_eq!(deleted["payload"]["event"]["deleted_ts"], ts.as_str());
    let body = json!({"channel": general}).to_string();
    let (_, v) = raw_post(&sim, "conversations.history", Some("xoxb-sim-bot"), &body).await;
    assert_eq!(v["messages"].as_array().map(Vec::len), Some(0));
    sim.shutdown();
}

// ----- payload builders, views, response_url, misc errors ---------------------------------

#[tokio::test]
async fn payload_builders_parse_as_slack_morphism_events() {
    let sim = started().await;
    let general = sim.add_channel("general");
    let body = json!({"channel": general, "text": "Remediation", "blocks": [
        {"type": "actions", "block_id": "remediation", "elements": [
            {"type": "button", "action_id": "remediate_rollback", "text": {"type": "plain_text", "text": "Rollback"}, "value": "job=1"}
        ]}
    ]})
    .to_string();
    let (_, v) = raw_post(&sim, "chat.postMessage", Some("xoxb-sim-bot"), &body).await;
    let ts = v["ts"].as_str().expect("ts").to_string();

    let cmd = sim.slash_command_payload(&general, "U01ALICE", "declare db down");
    let cmd: SlackCommandEvent = serde_json::from_value(cmd).expect("command parses");
    assert_eq!(cmd.command.0, "/incident");
    assert_eq!(cmd.channel_id.to_string(), general);

    let click = sim.block_action_payload(&general, "U01ALICE", &ts, "remediate_rollback", "job=1");
    assert_eq!(click["actions"][0]["block_id"], "remediation");
    match serde_json::from_value::<SlackInteractionEvent>(click).expect("interaction parses") {
        SlackInteractionEvent::BlockActions(ev) => {
            let action = &ev.actions.expect("actions")[0];
            assert_eq!(action.action_id.to_string(), "remediate_rollback");
            assert_eq!(action.value.as_deref(), Some("job=1"));
            assert!(ev.message.is_some(), "the stored message is included");
        }
        other => panic!("unexpected {other:?}"),
    }
    sim.shutdown();
}

#[tokio::test]
async fn views_open_echoes_the_view_with_an_id_and_trigger_ids_are_single_use() {
    let sim = started().await;
    let general = sim.add_channel("general");
    let client = client(&sim);
    let token = bot_token(&sim);
    let session = client.open_session(&token);
    let cmd = sim.slash_command_payload(&general, "U01ALICE", "");
    let trigger = cmd["trigger_id"].as_str().expect("trigger").to_string();
    let view = SlackView::Modal(SlackModalView::new(SlackBlockPlainTextOnly::from("Declare incident"), vec![]));
    let req = SlackApiViewsOpenRequest::new(trigger.into(), view);
    let opened = session.views_open(&req).await.expect("opened");
    assert!(opened.view.state_params.id.to_string().starts_with('V'));
    assert_eq!(sim.views_opened().len(), 1);
    assert_eq!(sim.views_opened()[0]["type"], "modal");
    let err = session.views_open(&req).await.expect_err("reused");
    assert_eq!(api_error_code(&err), Some("exchanged_trigger_id"));
    sim.shutdown();
}

#[tokio::test]
async fn response_url_posts_are_recorded_and_in_channel_ones_become_bot_messages() {
    let sim = started().await;
    let general = sim.add_channel("general");
    let client = client(&sim);
    let cmd = sim.slash_command_payload(&general, "U01ALICE", "");
    let url: url::Url = cmd["response_url"].as_str().expect("url").parse().expect("valid");
    client
        .respond_to_event(
            &SlackResponseUrl::new(url.clone()),
            &SlackApiPostWebhookMessageRequest::new(SlackMessageContent::new().with_text("only you".into())),
        )
        .await
        .expect("ephemeral response");
    let reply: Value = reqwest::Client::new()
        .post(url)
        .json(&json!({"response_type": "in_channel", "text": "for everyone"}))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    assert_eq!(reply["ok"], true);
    assert_eq!(sim.response_url_posts().len(), 2);
    let msgs = sim.messages(&general);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].text, "for everyone");
    assert_eq!(msgs[0].bot_id.as_deref(), Some("B0SIM"));
    sim.shutdown();
}

#[tokio::test]
async fn channel_lifecycle_errors_match_slack() {
    let sim = started().await;
    let post = |method: &'static str, body: Value| {
        let sim = sim.clone();
        async move { raw_post(&sim, method, Some("xoxb-sim-bot"), &body.to_string()).await.1 }
    };
    let ch = post("conversations.create", json!({"name": "inc-life"})).await["channel"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let msg = post("chat.postMessage", json!({"channel": ch, "text": "summary"})).await;
    let ts = msg["ts"].as_str().expect("ts").to_string();
    assert_eq!(post("pins.add", json!({"channel": ch, "timestamp": ts})).await["ok"], true);
    assert_eq!(post("pins.add", json!({"channel": ch, "timestamp": ts})).await["error"], "already_pinned");
    let bm = post(
        "bookmarks.add",
        json!({"channel_id": ch, "title": "Jira", "type": "link", "link": "https://jira.invalid/INC-1"}),
    )
    .await;
    assert_eq!(bm["bookmark"]["title"], "Jira");
    let topic = post("conversations.setTopic", json!({"channel": ch, "topic": "SEV1"})).await;
    assert_eq!(topic["topic"], "SEV1");
    assert_eq!(
        post("chat.update", json!({"channel": ch, "ts": "1.000001", "text": "x"})).await["error"],
        "message_not_found"
    );
    assert_eq!(post("conversations.archive", json!({"channel": ch})).await["ok"], true);
    assert_eq!(post("conversations.archive", json!({"channel": ch})).await["error"], "already_archived");
    assert_eq!(post("chat.postMessage", json!({"channel": ch, "text": "late"})).await["error"], "is_archived");
    assert_eq!(post("conversations.unarchive", json!({"channel": ch})).await["error"], "not_in_channel");
    assert_eq!(post("conversations.create", json!({"name": "inc-life"})).await["error"], "name_taken");
    assert_eq!(post("chat.postMessage", json!({"channel": "C0NOPE", "text": "x"})).await["error"], "channel_not_found");
    let ch = sim.channel_by_name("inc-life").expect("ch");
    assert!(ch.is_archived);
    assert_eq!(ch.topic, "SEV1");
    assert_eq!(ch.pins, vec![ts]);
    assert_eq!(ch.bookmarks, vec![("Jira".to_string(), "https://jira.invalid/INC-1".to_string())]);
    sim.shutdown();
}

#[tokio::test]
async fn users_and_usergroups_are_looked_up_through_slack_morphism() {
    let sim = started().await;
    sim.add_usergroup("S0ONCALL", "oncall-db", &["U01ALICE", "U02BOB"]);
    let client = client(&sim);
    let token = bot_token(&sim);
    let session = client.open_session(&token);
    let found = session
        .users_lookup_by_email(&SlackApiUsersLookupByEmailRequest::new(EmailAddress("bob@example.com".into())))
        .await
        .expect("found");
    assert_eq!(found.user.id.to_string(), "U02BOB");
    let err = session
        .users_lookup_by_email(&SlackApiUsersLookupByEmailRequest::new(EmailAddress("nobody@example.com".into())))
        .await
        .expect_err("missing");
    assert_eq!(api_error_code(&err), Some("users_not_found"));
    let info = session.users_info(&SlackApiUsersInfoRequest::new("U01ALICE".into())).await.expect("info");
    assert_eq!(info.user.name.as_deref(), Some("alice"));
    let (_, v) = raw_post(&sim, "usergroups.users.list", Some("xoxb-sim-bot"), r#"{"usergroup":"S0ONCALL"}"#).await;
    assert_eq!(v["users"], json!(["U01ALICE", "U02BOB"]));
    sim.shutdown();
}

#[tokio::test]
async fn form_bodies_and_query_strings_are_accepted() {
    let sim = started().await;
    let general = sim.add_channel("general");
    let resp: Value = reqwest::Client::new()
        .post(format!("{}/chat.postMessage", sim.api_url()))
        .bearer_auth("xoxb-sim-bot")
        .form(&[("channel", general.as_str()), ("text", "from a form")])
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    assert_eq!(resp["ok"], true, "{resp}");
    let resp: Value = reqwest::Client::new()
        .get(format!("{}/conversations.history?channel={general}&limit=1", sim.api_url()))
        .bearer_auth("xoxb-sim-bot")
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(resp["messages"][0]["text"], "from a form");
    assert_eq!(sim.calls_to("chat.postMessage")[0].params["text"], "from a form");
    sim.shutdown();
}

#[tokio::test]
async fn wait_for_wakes_up_on_web_api_calls_and_large_uploads_fit() {
    let sim = started().await;
    let general = sim.add_channel("general");
    let poster = sim.clone();
    let channel = general.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let body = json!({"channel": channel, "text": "late"}).to_string();
        raw_post(&poster, "chat.postMessage", Some("xoxb-sim-bot"), &body).await;
    });
    assert!(sim.wait_for(Duration::from_secs(2), |s| !s.calls_to("chat.postMessage").is_empty()).await);
    assert!(!sim.wait_for(Duration::from_millis(20), |_| false).await);

    let (_, v) = raw_post(
        &sim,
        "files.getUploadURLExternal",
        Some("xoxb-sim-bot"),
        r#"{"filename":"big.txt","length":3145728}"#,
    )
    .await;
    let url = v["upload_url"].as_str().expect("upload_url").to_string();
    let resp = reqwest::Client::new().post(url).body(vec![b'x'; 3 * 1024 * 1024]).send().await.expect("upload");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.text().await.expect("text"), "OK - 3145728");
    sim.shutdown();
}
