//! JSON shapes the sim sends: Web API objects (channels, messages, users), Events API
//! callbacks, Socket Mode frames, and the payloads a "human" produces (slash commands,
//! button clicks).
//!
//! Field names follow Slack's wire format and include every field slack-morphism 2.31.1
//! requires when it deserializes them.

use serde_json::{Map, Value, json};

use super::{EnvelopeKind, SimChannel, SimConfig, SimMessage, SimUser};

/// Formats microseconds since the epoch as a Slack timestamp (`"1700000000.000100"`).
pub(crate) fn ts_string(micros: u64) -> String {
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

/// Parses a Slack timestamp into microseconds; `None` when it is not `<secs>[.<frac>]`.
pub(crate) fn parse_ts(ts: &str) -> Option<u64> {
    let (secs, frac) = match ts.split_once('.') {
        Some((s, f)) => (s, f),
        None => (ts, ""),
    };
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = secs.parse().ok()?;
    let mut frac6: String = frac.chars().take(6).collect();
    while frac6.len() < 6 {
        frac6.push('0');
    }
    let micros: u64 = frac6.parse().ok()?;
    secs.checked_mul(1_000_000)?.checked_add(micros)
}

/// Current unix time in seconds.
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Current unix time in microseconds.
pub(crate) fn now_micros() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// A random UUID-shaped id, like Slack's envelope ids.
pub(crate) fn uuid_like() -> String {
    let r: u128 = rand::random();
    let h = format!("{r:032x}");
    format!("{}-{}-4{}-a{}-{}", &h[0..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
}

/// `channel_type` as used in message events: `channel` (public) or `group` (private).
pub(crate) fn message_channel_type(ch: &SimChannel) -> &'static str {
    if ch.is_private { "group" } else { "channel" }
}

/// A conversation object (`conversations.create/info/join/invite`).
pub(crate) fn channel_json(ch: &SimChannel, bot_user_id: &str) -> Value {
    json!({
        "id": ch.id,
        "name": ch.name,
        "name_normalized": ch.name,
        "is_channel": !ch.is_private,
        "is_group": false,
        "is_im": false,
        "is_mpim": false,
        "is_private": ch.is_private,
        "is_archived": ch.is_archived,
        "is_general": ch.name == "general",
        "is_shared": false,
        "is_org_shared": false,
        "is_member": ch.members.iter().any(|m| m == bot_user_id),
        "created": ch.created,
        "creator": ch.created_by,
        "num_members": ch.members.len(),
        "topic": {"value": ch.topic, "creator": "", "last_set": 0},
        "purpose": {"value": ch.purpose, "creator": "", "last_set": 0},
        "previous_names": [],
    })
}

/// A user object (`users.info`, `users.lookupByEmail`).
pub(crate) fn user_json(u: &SimUser, team_id: &str) -> Value {
    json!({
        "id": u.id,
        "team_id": team_id,
        "name": u.name,
        "real_name": u.name,
        "deleted": false,
        "is_bot": u.is_bot,
        "is_admin": false,
        "is_owner": false,
        "is_app_user": false,
        "tz": "Etc/UTC",
        "tz_label": "Coordinated Universal Time",
        "tz_offset": 0,
        "profile": {
            "display_name": u.name,
            "display_name_normalized": u.name,
            "real_name": u.name,
            "real_name_normalized": u.name,
            "email": u.email,
            "team": team_id,
        },
    })
}

/// A message as it appears in `conversations.history`/`replies` and `chat.*` answers
/// (without the thread-parent fields, see [`parent_fields`]).
pub(crate) fn message_json(m: &SimMessage, config: &SimConfig) -> Value {
    let mut o = Map::new();
    o.insert("type".into(), json!("message"));
    o.insert("ts".into(), json!(m.ts));
    o.insert("text".into(), json!(m.text));
    if let Some(u) = &m.user {
        o.insert("user".into(), json!(u));
    }
    if let Some(b) = &m.bot_id {
        o.insert("bot_id".into(), json!(b));
        o.insert("app_id".into(), json!(config.app_id));
    }
    if let Some(b) = &m.blocks {
        o.insert("blocks".into(), b.clone());
    }
    if let Some(t) = &m.thread_ts {
        o.insert("thread_ts".into(), json!(t));
    }
    if let Some(s) = &m.subtype {
        o.insert("subtype".into(), json!(s));
    }
    if m.edited {
        o.insert(
            "edited".into(),
            json!({
                "user": m.user.clone().unwrap_or_default(),
                "ts": m.edited_ts.clone().unwrap_or_else(|| m.ts.clone()),
            }),
        );
    }
    o.insert("team".into(), json!(config.team_id));
    Value::Object(o)
}

/// Adds `reply_count`, `reply_users`, `latest_reply`, `thread_ts` to a thread parent.
pub(crate) fn parent_fields(v: &mut Value, parent_ts: &str, replies: &[&SimMessage]) {
    if replies.is_empty() {
        return;
    }
    let mut users: Vec<String> = Vec::new();
    for r in replies {
        if let Some(u) = &r.user
            && !users.contains(u)
        {
            users.push(u.clone());
        }
    }
    if let Some(o) = v.as_object_mut() {
        o.insert("thread_ts".into(), json!(parent_ts));
        o.insert("reply_count".into(), json!(replies.len()));
        o.insert("reply_users_count".into(), json!(users.len()));
        o.insert("reply_users".into(), json!(users));
        if let Some(last) = replies.last() {
            o.insert("latest_reply".into(), json!(last.ts));
        }
    }
}

/// The `message` event Slack delivers for a new message (user, bot or system subtype).
pub(crate) fn message_event(m: &SimMessage, ch: &SimChannel, config: &SimConfig, parent_user: Option<&str>) -> Value {
    let mut v = message_json(m, config);
    if let Some(o) = v.as_object_mut() {
        o.insert("channel".into(), json!(ch.id));
        o.insert("channel_type".into(), json!(message_channel_type(ch)));
        o.insert("event_ts".into(), json!(m.ts));
        if m.bot_id.is_none() && m.subtype.is_none() {
            o.insert("client_msg_id".into(), json!(uuid_like()));
        }
        if let Some(p) = parent_user {
            o.insert("parent_user_id".into(), json!(p));
        }
    }
    v
}

/// `message` / `message_changed` event.
pub(crate) fn message_changed_event(
    old: &SimMessage,
    new: &SimMessage,
    ch: &SimChannel,
    event_ts: &str,
    config: &SimConfig,
) -> Value {
    json!({
        "type": "message",
        "subtype": "message_changed",
        "hidden": true,
        "channel": ch.id,
        "channel_type": message_channel_type(ch),
        "ts": event_ts,
        "event_ts": event_ts,
        "message": message_json(new, config),
        "previous_message": message_json(old, config),
    })
}

/// `message` / `message_deleted` event.
pub(crate) fn message_deleted_event(old: &SimMessage, ch: &SimChannel, event_ts: &str, config: &SimConfig) -> Value {
    json!({
        "type": "message",
        "subtype": "message_deleted",
        "hidden": true,
        "channel": ch.id,
        "channel_type": message_channel_type(ch),
        "ts": event_ts,
        "event_ts": event_ts,
        "deleted_ts": old.ts,
        "previous_message": message_json(old, config),
    })
}

/// `member_joined_channel` event.
pub(crate) fn member_joined_event(
    user: &str,
    ch: &SimChannel,
    inviter: Option<&str>,
    event_ts: &str,
    team_id: &str,
) -> Value {
    let mut v = json!({
        "type": "member_joined_channel",
        "user": user,
        "channel": ch.id,
        "channel_type": if ch.is_private { "G" } else { "C" },
        "team": team_id,
        "event_ts": event_ts,
    });
    if let (Some(i), Some(o)) = (inviter, v.as_object_mut()) {
        o.insert("inviter".into(), json!(i));
    }
    v
}

/// Wraps an event in the Events API `event_callback` body.
pub(crate) fn event_callback(config: &SimConfig, event_id: &str, event: Value) -> Value {
    let context = format!(
        "sim-{}-{}",
        event.get("type").and_then(Value::as_str).unwrap_or("event"),
        event.get("channel").and_then(Value::as_str).unwrap_or("")
    );
    json!({
        "token": "sim-verification-token",
        "team_id": config.team_id,
        "api_app_id": config.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": now_secs(),
        "authorizations": [{
            "enterprise_id": null,
            "team_id": config.team_id,
            "user_id": config.bot_user_id,
            "is_bot": true,
            "is_enterprise_install": false,
        }],
        "is_ext_shared_channel": false,
        "event_context": context,
    })
}

/// Whether an envelope of this kind and payload accepts a response payload in its ack.
pub(crate) fn accepts_response_payload(kind: EnvelopeKind, payload: &Value) -> bool {
    match kind {
        EnvelopeKind::SlashCommands => true,
        EnvelopeKind::EventsApi => false,
        EnvelopeKind::Interactive => {
            matches!(payload.get("type").and_then(Value::as_str), Some("view_submission") | Some("block_suggestion"))
        }
    }
}

/// A Socket Mode envelope frame.
pub(crate) fn envelope_frame(
    envelope_id: &str,
    kind: EnvelopeKind,
    payload: &Value,
    retry: Option<(u32, &str)>,
) -> Value {
    let mut v = json!({
        "envelope_id": envelope_id,
        "type": kind.as_str(),
        "accepts_response_payload": accepts_response_payload(kind, payload),
        "payload": payload,
    });
    if let (Some((attempt, reason)), Some(o)) = (retry, v.as_object_mut()) {
        o.insert("retry_attempt".into(), json!(attempt));
        o.insert("retry_reason".into(), json!(reason));
    }
    v
}

/// The `hello` frame sent on every new socket.
pub(crate) fn hello_frame(num_connections: usize, app_id: &str) -> Value {
    json!({
        "type": "hello",
        "num_connections": num_connections,
        "debug_info": {"host": "sim", "build_number": 1, "approximate_connection_time": 18060},
        "connection_info": {"app_id": app_id},
    })
}

/// The `disconnect` frame.
pub(crate) fn disconnect_frame(reason: &str) -> Value {
    json!({"type": "disconnect", "reason": reason, "debug_info": {"host": "sim"}})
}

/// A `/incident` slash-command payload.
#[allow(clippy::too_many_arguments)]
pub(crate) fn slash_command(
    config: &SimConfig,
    channel_id: &str,
    channel_name: &str,
    user_id: &str,
    user_name: &str,
    text: &str,
    response_url: &str,
    trigger_id: &str,
) -> Value {
    json!({
        "token": "sim-verification-token",
        "team_id": config.team_id,
        "team_domain": "sim",
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name,
        "command": "/incident",
        "text": text,
        "api_app_id": config.app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    })
}

/// A `block_actions` payload for a button click on a message.
#[allow(clippy::too_many_arguments)]
pub(crate) fn block_action(
    config: &SimConfig,
    channel: &SimChannel,
    user_id: &str,
    user_name: &str,
    message: Option<Value>,
    message_ts: &str,
    action_id: &str,
    value: &str,
    response_url: &str,
    trigger_id: &str,
) -> Value {
    let block_id =
        message.as_ref().and_then(|m| find_block_of_action(m, action_id)).unwrap_or_else(|| "sim_block".to_string());
    let message = message.unwrap_or_else(|| json!({"type": "message", "ts": message_ts, "text": ""}));
    json!({
        "type": "block_actions",
        "team": {"id": config.team_id, "domain": "sim"},
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": config.team_id},
        "api_app_id": config.app_id,
        "token": "sim-verification-token",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel.id,
            "is_ephemeral": false,
        },
        "trigger_id": trigger_id,
        "channel": {"id": channel.id, "name": channel.name},
        "message": message,
        "response_url": response_url,
        "actions": [{
            "type": "button",
            "action_id": action_id,
            "block_id": block_id,
            "text": {"type": "plain_text", "text": action_id},
            "value": value,
            "action_ts": ts_string(now_micros()),
        }],
        "state": {"values": {}},
    })
}

/// The `block_id` of the block containing an element with `action_id`, if any.
fn find_block_of_action(message: &Value, action_id: &str) -> Option<String> {
    let blocks = message.get("blocks")?.as_array()?;
    for b in blocks {
        let mut elements: Vec<&Value> = Vec::new();
        if let Some(es) = b.get("elements").and_then(Value::as_array) {
            elements.extend(es.iter());
        }
        if let Some(acc) = b.get("accessory") {
            elements.push(acc);
        }
        if elements.iter().any(|e| e.get("action_id").and_then(Value::as_str) == Some(action_id)) {
            return b.get("block_id").and_then(Value::as_str).map(str::to_string);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_and_reject_garbage() {
        assert_eq!(parse_ts("1700000000.000100"), Some(1_700_000_000_000_100));
        assert_eq!(ts_string(1_700_000_000_000_100), "1700000000.000100");
        assert_eq!(parse_ts("1700000000"), Some(1_700_000_000_000_000));
        assert_eq!(parse_ts("abc"), None);
        assert_eq!(parse_ts("1.2x"), None);
    }

    #[test]
    fn uuid_like_ids_have_the_uuid_shape() {
        let id = uuid_like();
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
    }
}
