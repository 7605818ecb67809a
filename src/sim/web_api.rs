//! The Web API side of the sim: an axum server answering `/api/<method>` like Slack does
//! (HTTP 200 + JSON with `ok`, errors as `{"ok":false,"error":…}`, 429 + `Retry-After`),
//! plus `response_url` (`/response/<n>`) and file upload (`/upload/<file_id>`) endpoints.
//!
//! Error codes produced, per method:
//! * every method: `not_authed`, `invalid_auth`, `not_allowed_token_type`,
//!   `invalid_arguments` (unparseable body / missing argument), `unknown_method`,
//!   `channel_not_found`, plus whatever `fail_next` injects;
//! * `conversations.create`: `invalid_name_required`, `invalid_name_maxlength`,
//!   `invalid_name_specials`, `name_taken`;
//! * `conversations.invite`: `no_user`, `too_many_users`, `user_not_found`,
//!   `already_in_channel`, `cant_invite_self` (per user in `errors[]`), `is_archived`,
//!   `not_in_channel`;
//! * `conversations.setTopic/setPurpose`: `too_long`, `is_archived`, `not_in_channel`;
//! * `conversations.archive`: `already_archived`, `cant_archive_general`, `not_in_channel`;
//!   `conversations.unarchive`: always `not_in_channel` for the bot (as real Slack);
//! * `conversations.history/replies/members`: `not_in_channel`, `invalid_cursor`,
//!   `thread_not_found`;
//! * `chat.*`: `not_in_channel`, `is_archived`, `no_text`, `message_not_found`,
//!   `cant_update_message`, `cant_delete_message`, `user_not_in_channel`;
//! * `pins.add`: `already_pinned`, `message_not_found`; `bookmarks.add`: `invalid_type`;
//! * `users.*`: `users_not_found` (lookupByEmail), `user_not_found`;
//!   `usergroups.users.list`: `no_such_subteam`;
//! * `views.*`: `expired_trigger_id`, `exchanged_trigger_id`;
//! * files: `file_not_found`, `invalid_arguments`.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

use super::payloads::{self, parse_ts};
use super::{ApiCall, SimChannel, SimConfig, SimEphemeral, SimFile, SimMessage, SimSlack, State};

/// Serves the HTTP listener until shutdown.
pub(crate) async fn serve(sim: SimSlack, listener: TcpListener) {
    let shutdown = sim.inner.shutdown.clone();
    let app = Router::new()
        .route("/api/{method}", any(api_handler))
        .route("/response/{id}", post(response_url_handler))
        .route("/upload/{file_id}", post(upload_handler))
        // Transcripts can exceed axum's 2 MB default.
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(sim);
    let _ = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await;
}

/// A Slack error answer: the `error` code plus extra top-level fields (e.g. `errors`).
#[derive(Debug)]
pub(crate) struct ApiError {
    code: String,
    extra: Map<String, Value>,
}

impl From<&str> for ApiError {
    fn from(code: &str) -> Self {
        ApiError { code: code.to_string(), extra: Map::new() }
    }
}

/// A successful answer (fields besides `ok`) and the events it causes.
type Outcome = Result<(Value, Vec<Value>), ApiError>;

fn json_response(status: StatusCode, v: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], v.to_string()).into_response()
}

fn error_body(code: &str, extra: Map<String, Value>) -> Value {
    let mut m = extra;
    m.insert("ok".into(), json!(false));
    m.insert("error".into(), json!(code));
    Value::Object(m)
}

/// Request parameters: query string, form body or JSON body merged into one object.
pub(crate) struct Params(Map<String, Value>);

impl Params {
    /// Parses query + body; `Err` when the body is neither JSON object nor form.
    fn parse(uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<Params, ()> {
        let mut m = Map::new();
        if let Some(q) = uri.query() {
            for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
                m.insert(k.into_owned(), Value::String(v.into_owned()));
            }
        }
        let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
        let trimmed = body.iter().skip_while(|b| b.is_ascii_whitespace()).count();
        if trimmed == 0 {
            return Ok(Params(m));
        }
        let is_json = ct.contains("json")
            || (!ct.contains("x-www-form-urlencoded") && body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'));
        if is_json {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(o)) => m.extend(o),
                _ => return Err(()),
            }
        } else {
            for (k, v) in url::form_urlencoded::parse(body) {
                m.insert(k.into_owned(), Value::String(v.into_owned()));
            }
        }
        Ok(Params(m))
    }

    fn value(&self) -> Value {
        Value::Object(self.0.clone())
    }

    /// A string argument (numbers and booleans are stringified); empty counts as absent.
    fn str(&self, k: &str) -> Option<String> {
        match self.0.get(k)? {
            Value::String(s) if s.is_empty() => None,
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    fn req(&self, k: &str) -> Result<String, ApiError> {
        self.str(k).ok_or_else(|| ApiError::from("invalid_arguments"))
    }

    fn bool(&self, k: &str) -> bool {
        match self.0.get(k) {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true" || s == "1",
            Some(Value::Number(n)) => n.as_u64() == Some(1),
            _ => false,
        }
    }

    fn u64(&self, k: &str) -> Result<Option<u64>, ApiError> {
        match self.str(k) {
            None => Ok(None),
            Some(s) => s.parse().map(Some).map_err(|_| ApiError::from("invalid_arguments")),
        }
    }

    /// A JSON argument; form bodies carry it as a JSON string.
    fn json(&self, k: &str) -> Result<Option<Value>, ApiError> {
        match self.0.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => {
                serde_json::from_str(s).map(Some).map_err(|_| ApiError::from("invalid_arguments"))
            }
            Some(v) => Ok(Some(v.clone())),
        }
    }

    /// A list argument given as JSON array or comma-separated string.
    fn list(&self, k: &str) -> Vec<String> {
        match self.0.get(k) {
            Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            Some(Value::String(s)) => {
                s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
            }
            _ => Vec::new(),
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    v.strip_prefix("Bearer ").map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
}

async fn api_handler(
    AxState(sim): AxState<SimSlack>,
    Path(method): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let resp = handle_api_call(&sim, method, uri, headers, body).await;
    sim.notify_changed();
    resp
}

async fn handle_api_call(sim: &SimSlack, method: String, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let parsed = Params::parse(&uri, &headers, &body);
    let token = bearer(&headers).or_else(|| parsed.as_ref().ok().and_then(|p| p.str("token")));
    let latency = {
        let mut st = sim.state();
        st.calls.push(ApiCall {
            method: method.clone(),
            params: parsed.as_ref().map(Params::value).unwrap_or_else(|_| json!({})),
            at: Instant::now(),
        });
        st.latency
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let cfg = &sim.inner.config;

    // Injected failures and authentication, in the order Slack would hit them.
    {
        let mut st = sim.state();
        if let Some(code) = st.auth_error.clone() {
            return json_response(StatusCode::OK, &error_body(&code, Map::new()));
        }
        let auth = match token.as_deref() {
            None => Err("not_authed"),
            Some(t) if method == "apps.connections.open" => {
                if t == cfg.app_token {
                    Ok(())
                } else if t == cfg.bot_token {
                    Err("not_allowed_token_type")
                } else {
                    Err("invalid_auth")
                }
            }
            Some(t) if t == cfg.bot_token => Ok(()),
            Some(t) if t == cfg.app_token => Err("not_allowed_token_type"),
            Some(_) => Err("invalid_auth"),
        };
        if let Err(code) = auth {
            return json_response(StatusCode::OK, &error_body(code, Map::new()));
        }
        if let Some(secs) = st.rate_limit_next.get_mut(&method).and_then(|q| q.pop_front()) {
            let mut resp = json_response(StatusCode::TOO_MANY_REQUESTS, &error_body("ratelimited", Map::new()));
            if let Ok(v) = secs.to_string().parse() {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return resp;
        }
        if let Some(code) = st.fail_next.get_mut(&method).and_then(|q| q.pop_front()) {
            return json_response(StatusCode::OK, &error_body(&code, Map::new()));
        }
    }

    let Ok(params) = parsed else {
        return json_response(StatusCode::OK, &error_body("invalid_arguments", Map::new()));
    };

    let outcome = if method == "apps.connections.open" {
        Ok((json!({"url": sim.new_socket_url()}), Vec::new()))
    } else {
        let http_base = sim.http_base_url();
        let mut st = sim.state();
        dispatch(&mut st, cfg, &http_base, &method, &params)
    };
    match outcome {
        Ok((v, events)) => {
            for e in events {
                sim.emit_event(e);
            }
            let mut body = match v {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            body.insert("ok".into(), json!(true));
            json_response(StatusCode::OK, &Value::Object(body))
        }
        Err(e) => json_response(StatusCode::OK, &error_body(&e.code, e.extra)),
    }
}

fn dispatch(st: &mut State, cfg: &SimConfig, http_base: &str, method: &str, p: &Params) -> Outcome {
    match method {
        "auth.test" => Ok((
            json!({
                "url": "https://sim.slack.invalid/",
                "team": "Sim Workspace",
                "user": "warroom",
                "team_id": cfg.team_id,
                "user_id": cfg.bot_user_id,
                "bot_id": cfg.bot_id,
                "is_enterprise_install": false,
            }),
            Vec::new(),
        )),
        "conversations.create" => conversations_create(st, cfg, p),
        "conversations.invite" => conversations_invite(st, cfg, p),
        "conversations.setTopic" => set_topic_or_purpose(st, cfg, p, true),
        "conversations.setPurpose" => set_topic_or_purpose(st, cfg, p, false),
        "conversations.archive" => conversations_archive(st, cfg, p),
        "conversations.unarchive" => {
            find_channel(st, &p.req("channel")?)?;
            Err("not_in_channel".into())
        }
        "conversations.info" => {
            let ch = find_channel(st, &p.req("channel")?)?;
            Ok((json!({"channel": payloads::channel_json(ch, &cfg.bot_user_id)}), Vec::new()))
        }
        "conversations.members" => conversations_members(st, cfg, p),
        "conversations.list" => conversations_list(st, cfg, p),
        "conversations.join" => conversations_join(st, cfg, p),
        "conversations.history" => conversations_history(st, cfg, p),
        "conversations.replies" => conversations_replies(st, cfg, p),
        "chat.postMessage" => chat_post_message(st, cfg, http_base, p),
        "chat.update" => chat_update(st, cfg, p),
        "chat.delete" => chat_delete(st, cfg, p),
        "chat.postEphemeral" => chat_post_ephemeral(st, cfg, p),
        "pins.add" => pins_add(st, cfg, p),
        "bookmarks.add" => bookmarks_add(st, cfg, p),
        "users.lookupByEmail" => {
            let email = p.req("email")?;
            let u = st
                .users
                .values()
                .find(|u| !u.email.is_empty() && u.email.eq_ignore_ascii_case(&email))
                .ok_or(ApiError::from("users_not_found"))?;
            Ok((json!({"user": payloads::user_json(u, &cfg.team_id)}), Vec::new()))
        }
        "users.info" => {
            let id = p.req("user")?;
            let u = st.users.get(&id).ok_or(ApiError::from("user_not_found"))?;
            Ok((json!({"user": payloads::user_json(u, &cfg.team_id)}), Vec::new()))
        }
        "usergroups.users.list" => {
            let id = p.req("usergroup")?;
            let (_, members) = st.usergroups.get(&id).ok_or(ApiError::from("no_such_subteam"))?;
            Ok((json!({"users": members}), Vec::new()))
        }
        "views.open" | "views.push" => views_open(st, cfg, p, method == "views.push"),
        "views.update" => views_update(st, cfg, p),
        "files.getUploadURLExternal" => {
            let filename = p.req("filename")?;
            let _length = p.u64("length")?.ok_or(ApiError::from("invalid_arguments"))?;
            let n = st.next_n();
            let file_id = format!("F0SIM{n:04}");
            st.pending_uploads.insert(file_id.clone(), (filename, None));
            Ok((json!({"upload_url": format!("{http_base}/upload/{file_id}"), "file_id": file_id}), Vec::new()))
        }
        "files.completeUploadExternal" => files_complete(st, cfg, p),
        _ => Err("unknown_method".into()),
    }
}

// ----- helpers ---------------------------------------------------------------------------

fn find_channel<'a>(st: &'a State, id: &str) -> Result<&'a SimChannel, ApiError> {
    st.channel(id).ok_or_else(|| "channel_not_found".into())
}

/// Resolves a channel id, or a name (`#name` / `name`) as `chat.postMessage` allows.
fn resolve_channel(st: &State, id_or_name: &str) -> Result<SimChannel, ApiError> {
    let name = id_or_name.trim_start_matches('#');
    st.channels
        .iter()
        .find(|c| c.id == id_or_name)
        .or_else(|| st.channels.iter().find(|c| c.name == name))
        .cloned()
        .ok_or_else(|| "channel_not_found".into())
}

fn is_member(ch: &SimChannel, user: &str) -> bool {
    ch.members.iter().any(|m| m == user)
}

/// The channel, checked to exist, not be archived and have the bot as member.
fn writable_channel(st: &State, cfg: &SimConfig, id: &str) -> Result<SimChannel, ApiError> {
    let ch = resolve_channel(st, id)?;
    if ch.is_archived {
        return Err("is_archived".into());
    }
    if !is_member(&ch, &cfg.bot_user_id) {
        return Err("not_in_channel".into());
    }
    Ok(ch)
}

/// Stores a message and returns the `message` event for it.
fn store_message(st: &mut State, cfg: &SimConfig, ch: &SimChannel, msg: SimMessage) -> Value {
    let parent_user = msg.thread_ts.as_ref().and_then(|t| {
        st.messages.get(&ch.id).and_then(|ms| ms.iter().find(|m| &m.ts == t)).and_then(|m| m.user.clone())
    });
    let event = payloads::message_event(&msg, ch, cfg, parent_user.as_deref());
    st.messages.entry(ch.id.clone()).or_default().push(msg);
    event
}

/// A system message (`channel_join`, `channel_topic`, …) posted on behalf of `user`.
fn system_message(st: &mut State, cfg: &SimConfig, ch: &SimChannel, user: &str, subtype: &str, text: String) -> Value {
    let ts = st.next_ts();
    let msg = SimMessage {
        ts,
        user: Some(user.to_string()),
        bot_id: None,
        text,
        blocks: None,
        thread_ts: None,
        edited: false,
        edited_ts: None,
        deleted: false,
        subtype: Some(subtype.to_string()),
    };
    store_message(st, cfg, ch, msg)
}

/// Adds `user` to the channel; returns the `member_joined_channel` event and the
/// `channel_join` message event.
fn join(st: &mut State, cfg: &SimConfig, channel_id: &str, user: &str, inviter: Option<&str>) -> Vec<Value> {
    let Some(ch) = st.channel_mut(channel_id) else {
        return Vec::new();
    };
    ch.members.push(user.to_string());
    let ch = ch.clone();
    let ts = st.next_ts();
    let joined = payloads::member_joined_event(user, &ch, inviter, &ts, &cfg.team_id);
    let msg = system_message(st, cfg, &ch, user, "channel_join", format!("<@{user}> has joined the channel"));
    vec![joined, msg]
}

fn valid_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
}

// ----- conversations.* -------------------------------------------------------------------

fn conversations_create(st: &mut State, cfg: &SimConfig, p: &Params) -> Outcome {
    let name = p.str("name").unwrap_or_default();
    if name.is_empty() {
        return Err("invalid_name_required".into());
    }
    if name.chars().count() > 80 {
        return Err("invalid_name_maxlength".into());
    }
    if !name.chars().all(valid_name_char) {
        return Err("invalid_name_specials".into());
    }
    if st.channels.iter().any(|c| c.name == name) {
        return Err("name_taken".into());
    }
    let n = st.next_n();
    let ch = SimChannel {
        id: format!("C0SIM{n:04}"),
        name,
        is_private: p.bool("is_private"),
        is_archived: false,
        topic: String::new(),
        purpose: String::new(),
        members: vec![cfg.bot_user_id.clone()],
        pins: Vec::new(),
        bookmarks: Vec::new(),
        created_by: cfg.bot_user_id.clone(),
        created: payloads::now_secs(),
    };
    let v = json!({"channel": payloads::channel_json(&ch, &cfg.bot_user_id)});
    st.channels.push(ch);
    Ok((v, Vec::new()))
}

fn conversations_invite(st: &mut State, cfg: &SimConfig, p: &Params) -> Outcome {
    let ch = find_channel(st, &p.req("channel")?)?.clone();
    if ch.is_archived {
        return Err("is_archived".into());
    }
    if !is_member(&ch, &cfg.bot_user_id) {
        return Err("not_in_channel".into());
    }
    let users = p.list("users");
    if users.is_empty() {
        return Err("no_user".into());
    }
    if users.len() > 100 {
        return Err("too_many_users".into());
    }
    let mut errors = Vec::new();
    let mut ok_users: Vec<String> = Vec::new();
    for u in &users {
        let err = if u == &cfg.bot_user_id {
            Some("cant_invite_self")
        } else if !st.users.contains_key(u) {
            Some("user_not_found")
        } else if is_member(&ch, u) || ok_users.contains(u) {
            Some("already_in_channel")
        } else {
            None
        };
        match err {
            Some(e) => errors.push(json!({"user": u, "ok": false, "error": e})),
            None => ok_users.push(u.clone()),
        }
    }
    let force = p.bool("force");
    if !errors.is_empty() && (!force || ok_users.is_empty()) {
        let code = errors[0]["error"].as_str().unwrap_or("user_not_found").to_string();
        let mut extra = Map::new();
        extra.insert("errors".into(), Value::Array(errors));
        return Err(ApiError { code, extra });
    }
    let mut events = Vec::new();
    for u in &ok_users {
        events.extend(join(st, cfg, &ch.id, u, Some(&cfg.bot_user_id)));
    }
    let ch = find_channel(st, &ch.id)?;
    let mut v = json!({"channel": payloads::channel_json(ch, &cfg.bot_user_id)});
    if !errors.is_empty()
        && let Some(o) = v.as_object_mut()
    {
        o.insert("errors".into(), Value::Array(errors));
    }
    Ok((v, events))
}

fn set_topic_or_purpose(st: &mut State, cfg: &SimConfig, p: &Params, topic: bool) -> Outcome {
    let id = p.req("channel")?;
    let key = if topic { "topic" } else { "purpose" };
    let value = p.str(key).unwrap_or_default();
    if value.chars().count() > 250 {
        return Err("too_long".into());
    }
    let ch = writable_channel(st, cfg, &id)?;
    if let Some(c) = st.channel_mut(&ch.id) {
        if topic {
            c.topic = value.clone();
        } else {
            c.purpose = value.clone();
        }
    }
    let (subtype, verb) = if topic {
        ("channel_topic", "set the channel topic")
    } else {
        ("channel_purpose", "set the channel description")
    };
    let event = system_message(st, cfg, &ch, &cfg.bot_user_id, subtype, format!("{verb}: {value}"));
    let mut m = Map::new();
    m.insert(key.into(), json!(value));
    Ok((Value::Object(m), vec![event]))
}

fn conversations_archive(st: &mut State, cfg: &SimConfig, p: &Params) -> Outcome {
    let ch = find_channel(st, &p.req("channel")?)?.clone();
    if ch.is_archived {
        return Err("already_archived".into());
    }
    if ch.name == "general" {
        return Err("cant_archive_general".into());
    }
    if !is_member(&ch, &cfg.bot_user_id) {
        return Err("not_in_channel".into());
    }
    if let Some(c) = st.channel_mut(&ch.id) {
        c.is_archived = true;
    }
    let event = json!({"type": "channel_archive", "channel": ch.id, "user": cfg.bot_user_id});
    Ok((json!({}), vec![event]))
}

fn conversations_join(st: &mut State, cfg: &SimConfig, p: &Params) -> Outcome {
    let ch = find_channel(st, &p.req("channel")?)?.clone();
    if ch.is_archived {
        return Err("is_archived".into());
    }
    if ch.is_private && !is_member(&ch, &cfg.bot_user_id) {
        return Err("channel_not_found".into());
    }
    let mut events = Vec::new();
    let mut extra = json!({});
    if is_member(&ch, &cfg.bot_user_id) {
        extra = json!({"warning": "already_in_channel",
            "response_metadata": {"warnings": ["already_in_channel"]}});
    } else {
        events = join(st, cfg, &ch.id, &cfg.bot_user_id, None);
    }
    let ch = find_channel(st, &ch.id)?;
    let mut v = json!({"channel": payloads::channel_json(ch, &cfg.bot_user_id)});
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    Ok((v, events))
}

/// Pagination over a list: returns the page and the `next_cursor` ("" at the end).
fn paginate<T: Clone>(items: &[T], p: &Params) -> Result<(Vec<T>, String, bool), ApiError> {
    let limit = p.u64("limit")?.unwrap_or(100).clamp(1, 999) as usize;
    let start = match p.str("cursor") {
        None => 0,
        Some(c) => c
            .strip_prefix("sim_offset:")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= items.len())
            .ok_or(ApiError::from("invalid_cursor"))?,
    };
    let end = (start + limit).min(items.len());
    let page = items[start..end].to_vec();
    let has_more = end < items.len();
    let next = if has_more { format!("sim_offset:{end}") } else { String::new() };
    Ok((page, next, has_more))
}

fn conversations_members(st: &mut State, _cfg: &SimConfig, p: &Params) -> Outcome {
    let ch = find_channel(st, &p.req("channel")?)?;
    let (page, next, _) = paginate(&ch.members, p)?;
    Ok((json!({"members": page, "response_metadata": {"next_cursor": next}}), Vec::new()))
}

/// `conversations.list`: every channel (archived ones too unless `exclude_archived`), paginated.
fn conversations_list(st: &mut State, cfg: &SimConfig, p: &Params) -> Outcome {
    let exclude_archived = p.bool("exclude_archived");
    let all: Vec<Value> = st
        .channels
        .iter()
        .filter(|c| !(exclude_archived && c.is_archived))
        .map(|c| payloads::channel_json(c, &cfg.bot_user_id))
        .collect();
    let (page, next, _) = paginate(&all, p)?;
    Ok((json!({"channels": page, "response_metadata": {"next_cursor": next}}), Vec::new()))
}

/// `oldest`/`latest`/`inclusive` bounds check on a ts.
fn in_bounds(ts: u64, p: &Params) -> Result<bool, ApiError> {
    let bound = |k: &str| -> Result<Option<u64>, ApiError> {
        match p.str(k) {
            None => Ok(None),
            Some(s) => parse_ts(&s).map(Some).ok_or_else(|| ApiError::from("invalid_ts_oldest")),
        }
    };
    let inclusive = p.bool("inclusive");
    if let Some(o) = bound("oldest")?
        && (ts < o || (!inclusive && ts == o))
    {
        return Ok(false);
    }
    if let Some(l) = bound("latest")?
        && (ts > l || (!inclusive && ts == l))
    {
        return Ok(false);
    }
    Ok(true)
}

fn history_json(st: &State, cfg: &SimConfig, channel: &str, m: &SimMessage) -> Value {
    let mut v = payloads::message_json(m, cfg);
    let replies: Vec<&SimMessage> = st
        .messages
        .get(channel)
        .map(|ms| ms.iter().filter(|r| !r.deleted && r.thread_ts.as_deref() == Some(&m.ts) && r.ts != m.ts).collect())
        .unwrap_or_default();
    payloads::parent_fields(&mut v, &m.ts, &replies);
    v
}

fn readable_channel(st: &State, cfg: &SimConfig, id: &str) -> Result<SimChannel, ApiError> {
    let ch = find_channel(st, id)?.clone();
    if !is_member(&ch, &cfg.bot_user_id) {
        return Err("not_in_channel".into());
    }
    Ok(ch)
}

fn conversations_history(st: &mut State, cfg: &SimConfig, p: &Params) -> Outcome {
    let ch = readable_channel(st, cfg, &p.req("channel")?)?;
    let mut items: Vec<&SimMessage> = Vec::new();
    for m in st.messages.get(&ch.id).map(Vec::as_slice).unwrap_or(&[]) {
        let top_level = m.thread_ts.is_none()
            || m.thread_ts.as_deref() == Some(&m.ts)
            || m.subtype.as_deref() == Some("thread_broadcast");
        if m.deleted || !top_level || !in_bounds(parse_ts(&m.ts).unwrap_or(0), p)? {
            continue;
        }
        items.push(m);
    }
    items.reverse(); // newest first
    let (page, next, has_more) = paginate(&items, p)?;
    let messages: Vec<Value> = page.iter().map(|m| history_json(st, cfg, &ch.id, m)).collect();
    Ok((
        json!({
            "messages": messages,
            "has_more": has_more,
            "pin_count": ch.pins.len(),
            "response_metadata": {"next_cursor": next},
        }),
        Vec::new(),
    ))
}

fn conversations_replies(st: &mut State, cfg: &SimConfig, p: &Params) -> Outcome {
    let ch = readable_channel(st, cfg, &p.req("channel")?)?;
    let ts = p.req("ts")?;
    let all = st.messages.get(&ch.id).map(Vec::as_slice).unwrap_or(&[]);
    let parent = all.iter().find(|m| m.ts == ts && !m.deleted).ok_or(ApiError::from("thread_not_found"))?;
    let mut items: Vec<&SimMessage> = vec![parent];
    for m in all {
        if !m.deleted
            && m.ts != ts
            && m.thread_ts.as_deref() == Some(ts.as_str())
            && in_bounds(parse_ts(&m.ts).unwrap_or(0), p)?
        {
            items.push(m);
        }
    }
    let (page, next, has_more) = paginate(&items, p)?;
    let messages: Vec<Value> = page
        .iter()
        .map(|m| if m.ts == ts { history_json(st, cfg, &ch.id, m) } else { payloads::message_json(m, cfg) })
        .collect();
    Ok((
        json!({
            "messages": messages,
            "has_more": has_more,
            "response_metadata": {"next_cursor": next},
        }),
        Vec::new(),
    ))
}

// ----- chat.* ----------------------------------------------------------------------------

fn chat_post_message(st: &mut State, cfg: &SimConfig, _http_base: &str, p: &Params) -> Outcome {
    let ch = writable_channel(st, cfg, &p.req("channel")?)?;
    let text = p.str("text");
    let blocks = p.json("blocks")?;
    if text.is_none() && blocks.is_none() && p.str("markdown_text").is_none() {
        return Err("no_text".into());
    }
    // A thread_ts naming no message in the channel posts at top level (unverified).
    let thread_ts = p
        .str("thread_ts")
        .filter(|t| st.messages.get(&ch.id).is_some_and(|ms| ms.iter().any(|m| &m.ts == t && m.thread_ts.is_none())));
    let ts = st.next_ts();
    let msg = SimMessage {
        ts: ts.clone(),
        user: Some(cfg.bot_user_id.clone()),
        bot_id: Some(cfg.bot_id.clone()),
        text: text.or_else(|| p.str("markdown_text")).unwrap_or_default(),
        blocks,
        subtype: (thread_ts.is_some() && p.bool("reply_broadcast")).then(|| "thread_broadcast".to_string()),
        thread_ts,
        edited: false,
        edited_ts: None,
        deleted: false,
    };
    let message = payloads::message_json(&msg, cfg);
    let event = store_message(st, cfg, &ch, msg);
    Ok((json!({"channel": ch.id, "ts": ts, "message": message}), vec![event]))
}

fn chat_update(st: &mut State, cfg: &SimConfig, p: &Params) -> Outcome {
    let ch = resolve_channel(st, &p.req("channel")?)?;
    let ts = p.req("ts")?;
    let text = p.str("text");
    let blocks = p.json("blocks")?;
    let event_ts = st.next_ts();
    let msg = st
        .messages
        .get_mut(&ch.id)
        .and_then(|ms| ms.iter_mut().find(|m| m.ts == ts && !m.deleted))
        .ok_or(ApiError::from("message_not_found"))?;
    if msg.bot_id.as_deref() != Some(cfg.bot_id.as_str()) {
        return Err("cant_update_message".into());
    }
    let old = msg.clone();
    if let Some(t) = text {
        msg.text = t;
    }
    if blocks.is_some() {
        msg.blocks = blocks;
    }
    msg.edited = true;
    msg.edited_ts = Some(event_ts.clone());
    let new = msg.clone();
    let event = payloads::message_changed_event(&old, &new, &ch, &event_ts, cfg);
    let message = payloads::message_json(&new, cfg);
    Ok((
        json!({"channel": ch.id, "ts": ts, "text": new.text, "thread_ts": new.thread_ts, "message": message}),
        vec![event],
    ))
}

fn chat_delete(st: &mut State, cfg: &SimConfig, p: &Params) -> Outcome {
    let ch = resolve_channel(st, &p.req("channel")?)?;
    let ts = p.req("ts")?;
    let event_ts = st.next_ts();
    let msg = st
        .messages
        .get_mut(&ch.id)
        .and_then(|ms| ms.iter_mut().find(|m| m.ts == ts && !m.deleted))
        .ok_or(ApiError::from("message_not_found"))?;
    if msg.bot_id.as_deref() != Some(cfg.bot_id.as_str()) {
        return Err("cant_delete_message".into());
    }
    msg.deleted = true;
    let old = msg.clone();
    let event = payloads::message_deleted_event(&old, &ch, &event_ts, cfg);
    Ok((json!({"channel": ch.id, "ts": ts}), vec![event]))
}

fn chat_post_ephemeral(st: &mut State, cfg: &SimConfig, p: &Params) -> Outcome {
    let ch = writable_channel(st, cfg, &p.req("channel")?)?;
    let user = p.req("user")?;
    if !is_member(&ch, &user) {
        return Err("user_not_in_channel".into());
    }
    let text = p.str("text");
    let blocks = p.json("blocks")?;
    if text.is_none() && blocks.is_none() {
        return Err("no_text".into());
    }
    let ts = st.next_ts();
    st.ephemerals.push(SimEphemeral { channel: ch.id, user, text, blocks });
    Ok((json!({"message_ts": ts}), Vec::new()))
}

// ----- pins, bookmarks -------------------------------------------------------------------

fn pins_add(st: &mut State, cfg: &SimConfig, p: &Params) -> Outcome {
    let ch = writable_channel(st, cfg, &p.req("channel")?)?;
    let ts = p.req("timestamp")?;
    let exists = st.messages.get(&ch.id).is_some_and(|ms| ms.iter().any(|m| m.ts == ts && !m.deleted));
    if !exists {
        return Err("message_not_found".into());
    }
    if ch.pins.contains(&ts) {
        return Err("already_pinned".into());
    }
    if let Some(c) = st.channel_mut(&ch.id) {
        c.pins.push(ts);
    }
    Ok((json!({}), Vec::new()))
}

fn bookmarks_add(st: &mut State, cfg: &SimConfig, p: &Params) -> Outcome {
    let ch = writable_channel(st, cfg, &p.req("channel_id")?)?;
    let title = p.req("title")?;
    let kind = p.str("type").unwrap_or_else(|| "link".into());
    if kind != "link" {
        return Err("invalid_type".into());
    }
    let link = p.req("link")?;
    let n = st.next_n();
    if let Some(c) = st.channel_mut(&ch.id) {
        c.bookmarks.push((title.clone(), link.clone()));
    }
    Ok((
        json!({"bookmark": {
            "id": format!("Bk0SIM{n:04}"),
            "channel_id": ch.id,
            "title": title,
            "link": link,
            "emoji": p.str("emoji"),
            "type": "link",
            "date_created": payloads::now_secs(),
        }}),
        Vec::new(),
    ))
}

// ----- views.* ---------------------------------------------------------------------------

/// Validates a trigger id issued by the sim (3 s lifetime, single use); unknown ones pass.
fn use_trigger(st: &mut State, trigger_id: &str) -> Result<(), ApiError> {
    if let Some((issued, used)) = st.triggers.get_mut(trigger_id) {
        if *used {
            return Err("exchanged_trigger_id".into());
        }
        if issued.elapsed() > Duration::from_secs(3) {
            return Err("expired_trigger_id".into());
        }
        *used = true;
    }
    Ok(())
}

fn stateful_view(st: &mut State, cfg: &SimConfig, view: &Value, id: &str, root: &str) -> Value {
    let mut v = view.clone();
    let n = st.next_n();
    if let Some(o) = v.as_object_mut() {
        o.insert("id".into(), json!(id));
        o.insert("team_id".into(), json!(cfg.team_id));
        o.insert("app_id".into(), json!(cfg.app_id));
        o.insert("bot_id".into(), json!(cfg.bot_id));
        o.insert("hash".into(), json!(format!("{n}.sim")));
        o.insert("root_view_id".into(), json!(root));
        o.insert("state".into(), json!({"values": {}}));
    }
    v
}

fn views_open(st: &mut State, cfg: &SimConfig, p: &Params, push: bool) -> Outcome {
    let trigger = p.req("trigger_id")?;
    let view = p.json("view")?.ok_or(ApiError::from("invalid_arguments"))?;
    if !view.is_object() {
        return Err("invalid_arguments".into());
    }
    use_trigger(st, &trigger)?;
    let n = st.next_n();
    let id = format!("V0SIM{n:04}");
    st.views.push(view.clone());
    let _ = push;
    let v = stateful_view(st, cfg, &view, &id, &id);
    Ok((json!({"view": v}), Vec::new()))
}

fn views_update(st: &mut State, cfg: &SimConfig, p: &Params) -> Outcome {
    let view = p.json("view")?.ok_or(ApiError::from("invalid_arguments"))?;
    let id = p.str("view_id").or_else(|| p.str("external_id")).ok_or(ApiError::from("invalid_arguments"))?;
    if !view.is_object() {
        return Err("invalid_arguments".into());
    }
    let v = stateful_view(st, cfg, &view, &id, &id);
    Ok((json!({"view": v}), Vec::new()))
}

// ----- files -----------------------------------------------------------------------------

fn files_complete(st: &mut State, cfg: &SimConfig, p: &Params) -> Outcome {
    let files = p.json("files")?.ok_or(ApiError::from("invalid_arguments"))?;
    let files = files.as_array().cloned().ok_or(ApiError::from("invalid_arguments"))?;
    let mut channels = p.list("channels");
    if let Some(c) = p.str("channel_id") {
        channels.insert(0, c);
    }
    for c in &channels {
        writable_channel(st, cfg, c)?;
    }
    let mut wanted = Vec::new();
    for f in &files {
        let id = f.get("id").and_then(Value::as_str).ok_or(ApiError::from("invalid_arguments"))?;
        match st.pending_uploads.get(id) {
            Some((_, Some(_))) => {
                wanted.push((id.to_string(), f.get("title").and_then(Value::as_str).map(str::to_string)))
            }
            _ => return Err("file_not_found".into()),
        }
    }
    let mut out = Vec::new();
    for (id, title) in wanted {
        let Some((filename, Some(bytes))) = st.pending_uploads.remove(&id) else {
            continue;
        };
        let title = title.unwrap_or_else(|| filename.clone());
        out.push(json!({
            "id": id,
            "name": filename,
            "title": title,
            "created": payloads::now_secs(),
            "timestamp": payloads::now_secs(),
            "user": cfg.bot_user_id,
            "size": bytes.len(),
        }));
        st.files.push(SimFile {
            id,
            filename,
            title,
            bytes,
            channels: channels.clone(),
            initial_comment: p.str("initial_comment"),
        });
    }
    Ok((json!({"files": out}), Vec::new()))
}

async fn upload_handler(AxState(sim): AxState<SimSlack>, Path(file_id): Path<String>, body: Bytes) -> Response {
    let mut st = sim.state();
    sim.notify_changed();
    match st.pending_uploads.get_mut(&file_id) {
        Some(entry) => {
            let len = body.len();
            entry.1 = Some(body.to_vec());
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], format!("OK - {len}")).into_response()
        }
        None => (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain")], "file_not_found".to_string())
            .into_response(),
    }
}

// ----- response_url ------------------------------------------------------------------------

async fn response_url_handler(AxState(sim): AxState<SimSlack>, Path(id): Path<String>, body: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return json_response(StatusCode::BAD_REQUEST, &error_body("invalid_payload", Map::new()));
    };
    let cfg = &sim.inner.config;
    let event = {
        let mut st = sim.state();
        st.response_url_posts.push(v.clone());
        let channel = st.response_urls.get(&id).cloned();
        let in_channel = v.get("response_type").and_then(Value::as_str) == Some("in_channel");
        match (channel.and_then(|c| st.channel(&c).cloned()), in_channel) {
            (Some(ch), true) => {
                let ts = st.next_ts();
                let msg = SimMessage {
                    ts,
                    user: Some(cfg.bot_user_id.clone()),
                    bot_id: Some(cfg.bot_id.clone()),
                    text: v.get("text").and_then(Value::as_str).unwrap_or_default().to_string(),
                    blocks: v.get("blocks").cloned(),
                    thread_ts: v.get("thread_ts").and_then(Value::as_str).map(str::to_string),
                    edited: false,
                    edited_ts: None,
                    deleted: false,
                    subtype: None,
                };
                Some(store_message(&mut st, cfg, &ch, msg))
            }
            _ => None,
        }
    };
    if let Some(e) = event {
        sim.emit_event(e);
    }
    sim.notify_changed();
    json_response(StatusCode::OK, &json!({"ok": true}))
}
