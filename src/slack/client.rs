//! The Slack Web API client: one slack-morphism client built once, aimed at
//! `WARROOM_SLACK_API_URL`, plain JSON in and out. Errors are typed by what the caller does
//! about them: retry after `Retry-After`, give up, or treat as success (`already_in_channel`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;
use tokio::sync::Mutex;

use crate::jobs::runner::JobError;

/// The HTTPS (and, for the simulated workspace, plain HTTP) connector slack-morphism uses.
pub type Connector = SlackClientHyperConnector<HttpsConnector<HttpConnector>>;

/// Builds the connector: rustls with the ring provider and the OS roots; `http://` allowed so
/// tests and the demo reach the simulated workspace with the same type.
pub fn connector(api_url: &str) -> std::io::Result<Connector> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .or_else(|_| {
            // No CA bundle on this host: only plain-HTTP URLs (the simulated workspace) work.
            Ok::<_, std::io::Error>(
                hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                    rustls::ClientConfig::builder()
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth(),
                ),
            )
        })?
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .build();
    Ok(SlackClientHyperConnector::from(https).with_slack_api_url(api_url))
}

/// A failed Slack call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SlackError {
    /// Slack answered `{"ok": false, "error": code}`.
    #[error("{method}: {code}")]
    Api { method: &'static str, code: String },
    /// HTTP 429.
    #[error("{method}: rate limited (retry after {retry_after:?})")]
    RateLimited { method: &'static str, retry_after: Option<Duration> },
    /// Slack could not be reached or answered something unreadable.
    #[error("{method}: {message}")]
    Transport { method: &'static str, message: String },
}

impl SlackError {
    /// The Slack error code, if Slack gave one.
    #[must_use]
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// A short cause for health and logs: the Slack code or the transport problem.
    #[must_use]
    pub fn cause(&self) -> String {
        match self {
            Self::Api { code, .. } => code.clone(),
            Self::RateLimited { .. } => "ratelimited".to_owned(),
            Self::Transport { message, .. } => message.clone(),
        }
    }

    fn from_client(method: &'static str, error: SlackClientError) -> Self {
        match error {
            SlackClientError::ApiError(e) => Self::Api { method, code: e.code },
            SlackClientError::RateLimitError(e) => Self::RateLimited { method, retry_after: e.retry_after },
            other => Self::Transport { method, message: transport_message(&other) },
        }
    }
}

/// Condenses a transport error to its root cause ("connection refused", "HTTP 503").
fn transport_message(error: &SlackClientError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text = cause.to_string();
        source = cause.source();
    }
    let lower = text.to_ascii_lowercase();
    if lower.contains("connection refused") {
        "connection refused".to_owned()
    } else if lower.contains("dns") || lower.contains("failed to lookup") {
        "DNS lookup failed".to_owned()
    } else {
        text.chars().take(200).collect()
    }
}

/// Codes that retrying cannot fix: the job is dead at once, with the code as the reason.
const PERMANENT: [&str; 9] = [
    "invalid_blocks",
    "msg_too_long",
    "invalid_arguments",
    "channel_not_found",
    "is_archived",
    "cant_update_message",
    "message_not_found",
    "too_many_pins",
    "restricted_action",
];

impl From<SlackError> for JobError {
    fn from(error: SlackError) -> Self {
        match &error {
            SlackError::RateLimited { retry_after, .. } => {
                Self::Retry { message: error.to_string(), retry_after: *retry_after }
            }
            SlackError::Api { code, .. } if PERMANENT.contains(&code.as_str()) => Self::Permanent(error.to_string()),
            _ => Self::retry(error.to_string()),
        }
    }
}

/// Who the bot is, from `auth.test`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub team_id: String,
    pub user_id: String,
    pub bot_id: Option<String>,
}

/// A created or found channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub id: String,
    pub name: String,
}

/// What an invite did, per person.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InviteReport {
    pub invited: Vec<String>,
    pub already_in: Vec<String>,
    /// People who could not be invited, with Slack's reason.
    pub failed: Vec<(String, String)>,
}

/// The Slack Web API, as warroom uses it.
#[derive(Clone)]
pub struct SlackApi {
    client: Arc<SlackClient<Connector>>,
    token: SlackApiToken,
    emails: Arc<Mutex<BTreeMap<String, String>>>,
    names: Arc<Mutex<BTreeMap<String, String>>>,
    /// For `response_url` posts, which carry no token.
    http: reqwest::Client,
}

impl std::fmt::Debug for SlackApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackApi").finish_non_exhaustive()
    }
}

/// Largest batch `conversations.invite` accepts.
pub const INVITE_CHUNK: usize = 100;

impl SlackApi {
    /// A client for `api_url` calling with `bot_token`.
    pub fn new(client: Arc<SlackClient<Connector>>, bot_token: &SecretString) -> Self {
        let token = SlackApiToken::new(bot_token.expose_secret().to_owned().into());
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
        Self {
            client,
            token,
            emails: Arc::new(Mutex::new(BTreeMap::new())),
            names: Arc::new(Mutex::new(BTreeMap::new())),
            http,
        }
    }

    /// The underlying client (the Socket Mode listener shares it).
    #[must_use]
    pub fn client(&self) -> Arc<SlackClient<Connector>> {
        Arc::clone(&self.client)
    }

    async fn post(&self, method: &'static str, body: Value) -> Result<Value, SlackError> {
        let session = self.client.open_session(&self.token);
        session
            .http_session_api
            .http_post::<Value, Value>(method, &body, None)
            .await
            .map_err(|e| SlackError::from_client(method, e))
    }

    async fn get(&self, method: &'static str, params: &[(&str, Option<String>)]) -> Result<Value, SlackError> {
        let session = self.client.open_session(&self.token);
        let params: Vec<(&str, Option<String>)> = params.to_vec();
        session
            .http_session_api
            .http_get::<Value, _, String>(method, &params, None)
            .await
            .map_err(|e| SlackError::from_client(method, e))
    }

    /// `auth.test`.
    pub async fn auth_test(&self) -> Result<Identity, SlackError> {
        let v = self.get("auth.test", &[]).await?;
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        Ok(Identity {
            team_id: text("team_id").unwrap_or_default(),
            user_id: text("user_id").unwrap_or_default(),
            bot_id: text("bot_id"),
        })
    }

    /// Checks an app-level token with `apps.connections.open` (the URL is not used).
    pub async fn check_app_token(&self, app_token: &SecretString) -> Result<(), SlackError> {
        let token = SlackApiToken::new(app_token.expose_secret().to_owned().into());
        let session = self.client.open_session(&token);
        session
            .http_session_api
            .http_post::<Value, Value>("apps.connections.open", &json!({}), None)
            .await
            .map(|_| ())
            .map_err(|e| SlackError::from_client("apps.connections.open", e))
    }

    /// `conversations.create`.
    pub async fn create_channel(&self, name: &str, private: bool) -> Result<Channel, SlackError> {
        let v = self.post("conversations.create", json!({ "name": name, "is_private": private })).await?;
        channel_of(&v, "conversations.create")
    }

    /// Finds a channel by exact name (archived ones too) with `conversations.list`, walking
    /// every page. Only used to recover from a crash between create and recording its answer.
    pub async fn find_channel(&self, name: &str) -> Result<Option<(Channel, Value)>, SlackError> {
        let mut cursor: Option<String> = None;
        loop {
            let v = self
                .get(
                    "conversations.list",
                    &[
                        ("types", Some("public_channel,private_channel".to_owned())),
                        ("limit", Some("1000".to_owned())),
                        ("cursor", cursor.clone()),
                    ],
                )
                .await?;
            for channel in v.get("channels").and_then(Value::as_array).into_iter().flatten() {
                if channel.get("name").and_then(Value::as_str) == Some(name) {
                    let id = channel.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
                    return Ok(Some((Channel { id, name: name.to_owned() }, channel.clone())));
                }
            }
            cursor = next_cursor(&v);
            if cursor.is_none() {
                return Ok(None);
            }
        }
    }

    /// Invites `users` in chunks of 100 with `force`, so one bad user does not block the others.
    /// When a whole chunk fails, its users are retried one by one to learn each reason.
    pub async fn invite(&self, channel: &str, users: &[String]) -> Result<InviteReport, SlackError> {
        let mut report = InviteReport::default();
        for chunk in users.chunks(INVITE_CHUNK) {
            match self
                .post("conversations.invite", json!({ "channel": channel, "users": chunk.join(","), "force": true }))
                .await
            {
                Ok(v) => {
                    let failed = per_user_errors(&v);
                    for user in chunk {
                        match failed.iter().find(|(u, _)| u == user) {
                            Some((_, code)) if code == "already_in_channel" => report.already_in.push(user.clone()),
                            Some((_, code)) => report.failed.push((user.clone(), code.clone())),
                            None => report.invited.push(user.clone()),
                        }
                    }
                }
                Err(SlackError::Api { code, .. }) if chunk.len() == 1 => {
                    if code == "already_in_channel" {
                        report.already_in.push(chunk[0].clone());
                    } else if is_per_user_code(&code) {
                        report.failed.push((chunk[0].clone(), code));
                    } else {
                        return Err(SlackError::Api { method: "conversations.invite", code });
                    }
                }
                Err(SlackError::Api { code, .. } | SlackError::Transport { message: code, .. })
                    if is_per_user_code(&code) || code.contains("errors") =>
                {
                    for user in chunk {
                        let single = Box::pin(self.invite(channel, std::slice::from_ref(user))).await?;
                        report.invited.extend(single.invited);
                        report.already_in.extend(single.already_in);
                        report.failed.extend(single.failed);
                    }
                }
                Err(other) => return Err(other),
            }
        }
        Ok(report)
    }

    /// `conversations.setTopic`.
    pub async fn set_topic(&self, channel: &str, topic: &str) -> Result<(), SlackError> {
        self.post("conversations.setTopic", json!({ "channel": channel, "topic": topic })).await.map(|_| ())
    }

    /// `chat.postMessage`; returns the message ts.
    pub async fn post_message(
        &self,
        channel: &str,
        text: &str,
        blocks: Option<&Value>,
        thread_ts: Option<&str>,
    ) -> Result<String, SlackError> {
        let mut body = json!({ "channel": channel, "text": text, "unfurl_links": false });
        if let Some(blocks) = blocks {
            body["blocks"] = blocks.clone();
        }
        if let Some(ts) = thread_ts {
            body["thread_ts"] = json!(ts);
        }
        let v = self.post("chat.postMessage", body).await?;
        v.get("ts")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(SlackError::Transport { method: "chat.postMessage", message: "answer without ts".to_owned() })
    }

    /// `chat.update`.
    pub async fn update_message(&self, channel: &str, ts: &str, text: &str, blocks: &Value) -> Result<(), SlackError> {
        self.post("chat.update", json!({ "channel": channel, "ts": ts, "text": text, "blocks": blocks }))
            .await
            .map(|_| ())
    }

    /// `views.open` (the `trigger_id` must be fresh: open before any slow work).
    pub async fn open_view(&self, trigger_id: &str, view: &Value) -> Result<(), SlackError> {
        self.post("views.open", json!({ "trigger_id": trigger_id, "view": view })).await.map(|_| ())
    }

    /// `chat.postEphemeral`.
    pub async fn post_ephemeral(&self, channel: &str, user: &str, text: &str) -> Result<(), SlackError> {
        self.post("chat.postEphemeral", json!({ "channel": channel, "user": user, "text": text })).await.map(|_| ())
    }

    /// `pins.add`; an already pinned message is fine.
    pub async fn pin(&self, channel: &str, ts: &str) -> Result<(), SlackError> {
        match self.post("pins.add", json!({ "channel": channel, "timestamp": ts })).await {
            Err(SlackError::Api { code, .. }) if code == "already_pinned" => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// `bookmarks.add` (a link).
    pub async fn bookmark(&self, channel: &str, title: &str, link: &str) -> Result<(), SlackError> {
        self.post("bookmarks.add", json!({ "channel_id": channel, "title": title, "type": "link", "link": link }))
            .await
            .map(|_| ())
    }

    /// `conversations.archive`; an already archived channel is fine.
    pub async fn archive(&self, channel: &str) -> Result<(), SlackError> {
        match self.post("conversations.archive", json!({ "channel": channel })).await {
            Err(SlackError::Api { code, .. }) if code == "already_archived" => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// `users.lookupByEmail`, cached for the life of the process.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<String>, SlackError> {
        if let Some(id) = self.emails.lock().await.get(email) {
            return Ok(Some(id.clone()));
        }
        match self.get("users.lookupByEmail", &[("email", Some(email.to_owned()))]).await {
            Ok(v) => {
                let id = v.pointer("/user/id").and_then(Value::as_str).map(str::to_owned);
                if let Some(id) = &id {
                    self.emails.lock().await.insert(email.to_owned(), id.clone());
                }
                Ok(id)
            }
            Err(SlackError::Api { code, .. }) if code == "users_not_found" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `usergroups.users.list`.
    pub async fn usergroup_members(&self, group: &str) -> Result<Vec<String>, SlackError> {
        let v = self.get("usergroups.users.list", &[("usergroup", Some(group.to_owned()))]).await?;
        Ok(v.get("users")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect())
    }

    /// The newest `limit` messages of a channel (one page).
    pub async fn history(&self, channel: &str, limit: u32) -> Result<Vec<Value>, SlackError> {
        let v = self
            .get("conversations.history", &[("channel", Some(channel.to_owned())), ("limit", Some(limit.to_string()))])
            .await?;
        Ok(v.get("messages").and_then(Value::as_array).cloned().unwrap_or_default())
    }

    /// Every message of a channel between two Slack timestamps, walking all pages.
    pub async fn history_between(&self, channel: &str, oldest: &str, latest: &str) -> Result<Vec<Value>, SlackError> {
        self.paginate(
            "conversations.history",
            &[("channel", channel), ("oldest", oldest), ("latest", latest), ("inclusive", "true")],
        )
        .await
    }

    /// Every reply of a thread between two Slack timestamps (the parent first), all pages.
    pub async fn replies_between(
        &self,
        channel: &str,
        ts: &str,
        oldest: &str,
        latest: &str,
    ) -> Result<Vec<Value>, SlackError> {
        let fixed = [("channel", channel), ("ts", ts), ("oldest", oldest), ("latest", latest), ("inclusive", "true")];
        match self.paginate("conversations.replies", &fixed).await {
            // A message nobody replied to (or one deleted since) has no thread.
            Err(SlackError::Api { code, .. }) if code == "thread_not_found" => Ok(Vec::new()),
            other => other,
        }
    }

    async fn paginate(&self, method: &'static str, fixed: &[(&str, &str)]) -> Result<Vec<Value>, SlackError> {
        let mut messages = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut params: Vec<(&str, Option<String>)> =
                fixed.iter().map(|(k, v)| (*k, Some((*v).to_owned()))).collect();
            params.push(("limit", Some("200".to_owned())));
            params.push(("cursor", cursor.clone()));
            let v = self.get(method, &params).await?;
            messages.extend(v.get("messages").and_then(Value::as_array).cloned().unwrap_or_default());
            cursor = next_cursor(&v);
            if cursor.is_none() {
                return Ok(messages);
            }
        }
    }

    /// A user's email (`users.info`, needs `users:read.email`).
    pub async fn user_email(&self, user: &str) -> Result<Option<String>, SlackError> {
        match self.get("users.info", &[("user", Some(user.to_owned()))]).await {
            Ok(v) => Ok(v.pointer("/user/profile/email").and_then(Value::as_str).map(str::to_owned)),
            Err(SlackError::Api { code, .. }) if code == "user_not_found" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A user's display name (`users.info`), cached for the life of the process.
    pub async fn user_name(&self, user: &str) -> Result<Option<String>, SlackError> {
        if let Some(name) = self.names.lock().await.get(user) {
            return Ok(Some(name.clone()));
        }
        let v = match self.get("users.info", &[("user", Some(user.to_owned()))]).await {
            Ok(v) => v,
            Err(SlackError::Api { code, .. }) if code == "user_not_found" => return Ok(None),
            Err(e) => return Err(e),
        };
        let profile =
            |k: &str| v.pointer(&format!("/user/profile/{k}")).and_then(Value::as_str).filter(|s| !s.is_empty());
        let name = profile("display_name")
            .or_else(|| profile("real_name"))
            .or_else(|| v.pointer("/user/name").and_then(Value::as_str))
            .map(str::to_owned);
        if let Some(name) = &name {
            self.names.lock().await.insert(user.to_owned(), name.clone());
        }
        Ok(name)
    }

    /// Thread replies (parent first), one page of up to `limit`.
    pub async fn replies(&self, channel: &str, ts: &str, limit: u32) -> Result<Vec<Value>, SlackError> {
        let v = self
            .get(
                "conversations.replies",
                &[
                    ("channel", Some(channel.to_owned())),
                    ("ts", Some(ts.to_owned())),
                    ("limit", Some(limit.to_string())),
                ],
            )
            .await?;
        Ok(v.get("messages").and_then(Value::as_array).cloned().unwrap_or_default())
    }

    /// Posts to a slash command's or interaction's `response_url` (no token is sent).
    pub async fn respond(&self, response_url: &str, text: &str, in_channel: bool) -> Result<(), SlackError> {
        let transport = |message: String| SlackError::Transport { method: "response_url", message };
        let kind = if in_channel { "in_channel" } else { "ephemeral" };
        let response = self
            .http
            .post(response_url)
            .json(&json!({ "response_type": kind, "text": text }))
            .send()
            .await
            .map_err(|e| transport(e.without_url().to_string()))?;
        if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .map(Duration::from_secs);
            return Err(SlackError::RateLimited { method: "response_url", retry_after });
        }
        if !response.status().is_success() {
            return Err(transport(format!("HTTP {}", response.status())));
        }
        Ok(())
    }
}

fn channel_of(v: &Value, method: &'static str) -> Result<Channel, SlackError> {
    let text = |k: &str| v.pointer(&format!("/channel/{k}")).and_then(Value::as_str).map(str::to_owned);
    match (text("id"), text("name")) {
        (Some(id), Some(name)) => Ok(Channel { id, name }),
        _ => Err(SlackError::Transport { method, message: "answer without channel id and name".to_owned() }),
    }
}

fn next_cursor(v: &Value) -> Option<String> {
    v.pointer("/response_metadata/next_cursor").and_then(Value::as_str).filter(|c| !c.is_empty()).map(str::to_owned)
}

/// `errors: [{"user": "U1", "error": "user_not_found"}]` of a forced invite.
fn per_user_errors(v: &Value) -> Vec<(String, String)> {
    v.get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| Some((e.get("user")?.as_str()?.to_owned(), e.get("error")?.as_str()?.to_owned())))
        .collect()
}

fn is_per_user_code(code: &str) -> bool {
    matches!(
        code,
        "user_not_found"
            | "already_in_channel"
            | "cant_invite_self"
            | "cant_invite"
            | "user_is_restricted"
            | "user_is_ultra_restricted"
            | "user_disabled"
            | "ura_max_channels"
            | "no_user"
    )
}
