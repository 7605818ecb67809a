//! Slack `message` events (and history items) → transcript changes. One parser for live
//! events and backfilled history, reading Slack's wire shape.

use serde_json::Value;

use crate::domain::transcript::{Capture, Captured, EntryKind, FileRef};

/// Slack's `ts` form of an instant: `secs.micros`.
#[must_use]
pub fn slack_ts(at: jiff::Timestamp) -> String {
    let micros = at.as_microsecond();
    format!("{}.{:06}", micros.div_euclid(1_000_000), micros.rem_euclid(1_000_000))
}

fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The change a `message` event (or a history item) of `channel` makes, if any.
#[must_use]
pub fn capture_of(channel: &str, message: &Value) -> Option<Capture> {
    let subtype = text(message, "subtype");
    match subtype {
        Some("message_changed") => {
            let edited = message.get("message")?;
            let ts = text(edited, "ts")?.to_owned();
            let edited_ts = edited
                .pointer("/edited/ts")
                .and_then(Value::as_str)
                .or_else(|| text(message, "event_ts"))
                .or_else(|| text(message, "ts"))
                .unwrap_or(&ts)
                .to_owned();
            Some(Capture::Edit {
                channel: channel.to_owned(),
                ts,
                text: text(edited, "text").unwrap_or_default().to_owned(),
                edited_ts,
            })
        }
        Some("message_deleted") => {
            Some(Capture::Delete { channel: channel.to_owned(), ts: text(message, "deleted_ts")?.to_owned() })
        }
        // Bookkeeping Slack posts about replies and pins: not part of the conversation.
        Some("message_replied" | "pinned_item" | "unpinned_item" | "tombstone") => None,
        _ => {
            let ts = text(message, "ts")?.to_owned();
            let kind = match subtype {
                None | Some("bot_message" | "thread_broadcast" | "me_message") => EntryKind::Message,
                Some("file_share") => EntryKind::FileShare,
                Some("channel_join" | "group_join") => EntryKind::Join,
                Some("channel_leave" | "group_leave") => EntryKind::Leave,
                Some("channel_topic" | "group_topic" | "channel_purpose" | "channel_name") => EntryKind::Topic,
                Some(other) => EntryKind::Other(other.to_owned()),
            };
            let thread_ts = text(message, "thread_ts").filter(|t| *t != ts).map(str::to_owned);
            let files = message
                .get("files")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|f| {
                    let name = text(f, "name").or_else(|| text(f, "title"))?.to_owned();
                    let url = text(f, "permalink").or_else(|| text(f, "url_private")).unwrap_or_default().to_owned();
                    Some(FileRef { name, url })
                })
                .collect();
            Some(Capture::New(Captured {
                channel: channel.to_owned(),
                ts,
                thread_ts,
                user: text(message, "user").map(str::to_owned),
                bot: message.get("bot_id").is_some_and(|b| !b.is_null()),
                kind,
                text: text(message, "text").unwrap_or_default().to_owned(),
                files,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/../shared/fixtures/slack-samples/events/{name}", env!("CARGO_MANIFEST_DIR"));
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str::<Value>(&text).map(|v| v["event"].clone()).unwrap_or(Value::Null),
            Err(_) => Value::Null,
        }
    }

    #[test]
    fn a_plain_message_and_a_thread_reply_are_new_lines() {
        let reply = serde_json::json!({"type":"message","user":"U1","text":"rolled back","ts":"2.0","thread_ts":"1.0"});
        let Some(Capture::New(line)) = capture_of("C1", &reply) else { panic!("a reply is a new line") };
        assert_eq!(
            (line.thread_ts.as_deref(), line.kind, line.user.as_deref()),
            (Some("1.0"), EntryKind::Message, Some("U1"))
        );
        let parent = serde_json::json!({"type":"message","user":"U1","text":"x","ts":"1.0","thread_ts":"1.0"});
        let Some(Capture::New(line)) = capture_of("C1", &parent) else { panic!() };
        assert_eq!(line.thread_ts, None, "a parent is not a reply to itself");
    }

    #[test]
    fn edits_and_deletions_name_the_original_message() {
        let edit = serde_json::json!({"type":"message","subtype":"message_changed","channel":"C1","ts":"9.0",
            "message":{"user":"U1","text":"new","ts":"1.0","edited":{"user":"U1","ts":"8.0"}},
            "previous_message":{"user":"U1","text":"old","ts":"1.0"}});
        assert_eq!(
            capture_of("C1", &edit),
            Some(Capture::Edit { channel: "C1".into(), ts: "1.0".into(), text: "new".into(), edited_ts: "8.0".into() })
        );
        let delete = serde_json::json!({"type":"message","subtype":"message_deleted","ts":"9.1","deleted_ts":"1.0"});
        assert_eq!(capture_of("C1", &delete), Some(Capture::Delete { channel: "C1".into(), ts: "1.0".into() }));
    }

    #[test]
    fn files_joins_and_bot_posts_are_kept_with_their_kind() {
        let share = serde_json::json!({"type":"message","subtype":"file_share","user":"U1","ts":"1.0","text":"",
            "files":[{"name":"graph.png","permalink":"https://x.slack.com/files/graph.png"}]});
        let Some(Capture::New(line)) = capture_of("C1", &share) else { panic!() };
        assert_eq!(
            line.files,
            [FileRef { name: "graph.png".into(), url: "https://x.slack.com/files/graph.png".into() }]
        );
        let join = serde_json::json!({"type":"message","subtype":"channel_join","user":"U1","ts":"2.0","text":"<@U1> has joined"});
        assert!(matches!(capture_of("C1", &join), Some(Capture::New(Captured { kind: EntryKind::Join, .. }))));
        let bot = serde_json::json!({"type":"message","user":"U0BOT","bot_id":"B1","ts":"3.0","text":"hi"});
        assert!(matches!(capture_of("C1", &bot), Some(Capture::New(Captured { bot: true, .. }))));
    }

    #[test]
    fn every_captured_slack_sample_of_a_message_parses_without_panicking() {
        for name in [
            "MessagePayload.json",
            "MessageChangedPayload.json",
            "MessageDeletedPayload.json",
            "MessageFileSharePayload.json",
            "MessageChannelJoinPayload.json",
            "MessageBotPayload.json",
            "MessageRepliedPayload.json",
            "MessageThreadBroadcastPayload.json",
        ] {
            let _ = capture_of("C1", &fixture(name));
        }
    }
}
