//! Pure helpers for `POST /hooks/jira`: checking a delivery's signature, reading the changes
//! worth posting to the incident Channel, and recognising warroom's own writes.
//!
//! Jira admin webhooks registered with a secret sign the raw body with HMAC-SHA256 and send
//! `X-Hub-Signature: sha256=<hex>` (the WebSub `method=signature` form). Unsigned deliveries are
//! rejected: the route must answer 401 when [`verify_signature`] says no.
//!
//! Loop prevention: every write warroom makes goes through the API token of one Jira account,
//! and Jira names the account that caused an event in `user.accountId` (or the comment's
//! author). A change whose actor is that account is warroom's own write and is not posted back;
//! comments also end in warroom's signature line, which catches them even if the account id of
//! the API user is not known yet.

use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The header Jira puts the signature in.
pub const SIGNATURE_HEADER: &str = "x-hub-signature";

/// One change made in Jira that the incident Channel should hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JiraChange {
    /// The issue, such as `OPS-154`.
    pub issue_key: String,
    pub kind: ChangeKind,
    /// The Jira account that made the change, when the payload names one.
    pub actor_account_id: Option<String>,
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    /// The workflow status moved, by status name.
    StatusChanged { from: Option<String>, to: String },
    /// The assignee changed; `None` fields mean unassigned.
    AssigneeChanged { to: Option<String>, to_account_id: Option<String> },
    /// A customer-visible comment was added.
    PublicComment { author: String, text: String },
}

/// Why a delivery could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JiraHookError {
    #[error("the Jira webhook body is not JSON of the expected shape: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("the Jira webhook names no issue")]
    NoIssue,
}

/// Whether `header` (the `X-Hub-Signature` value) is the HMAC-SHA256 of `body` under `secret`.
/// A missing header, another method than `sha256`, bad hex or an empty secret all fail; the
/// comparison takes the same time wherever the first differing byte is.
#[must_use]
pub fn verify_signature(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some((method, signature)) = header.and_then(|value| value.trim().split_once('=')) else {
        return false;
    };
    if !method.eq_ignore_ascii_case("sha256") || secret.is_empty() {
        return false;
    }
    let Ok(given) = hex::decode(signature) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    let expected = mac.finalize().into_bytes();
    expected.as_slice().ct_eq(&given).into()
}

/// The changes in one delivery: `jira:issue_updated` yields one per status or assignee item of
/// its changelog, `comment_created` one public comment; anything else (other fields, other
/// events, internal comments) yields none.
pub fn parse_event(body: &[u8]) -> Result<Vec<JiraChange>, JiraHookError> {
    let event: Event = serde_json::from_slice(body)?;
    let issue_key = event.issue.map(|issue| issue.key).filter(|key| !key.is_empty()).ok_or(JiraHookError::NoIssue)?;
    let mut actor = event.user.and_then(|user| user.account_id);
    let mut changes = Vec::new();
    match event.webhook_event.as_str() {
        "jira:issue_updated" => {
            for item in event.changelog.map(|log| log.items).unwrap_or_default() {
                let kind = match item.field.as_str() {
                    "status" => match item.to_string {
                        Some(to) => ChangeKind::StatusChanged { from: item.from_string, to },
                        None => continue,
                    },
                    "assignee" => ChangeKind::AssigneeChanged { to: item.to_string, to_account_id: item.to },
                    _ => continue,
                };
                changes.push(JiraChange { issue_key: issue_key.clone(), kind, actor_account_id: actor.clone() });
            }
        }
        "comment_created" => {
            let Some(comment) = event.comment.filter(Comment::is_public) else {
                return Ok(changes);
            };
            let author = comment.author.unwrap_or_default();
            if actor.is_none() {
                actor = author.account_id;
            }
            changes.push(JiraChange {
                issue_key,
                kind: ChangeKind::PublicComment {
                    author: author.display_name.unwrap_or_else(|| "someone in Jira".to_owned()),
                    text: crate::desk::jira::adf::plain_text(&comment.body),
                },
                actor_account_id: actor,
            });
        }
        _ => {}
    }
    Ok(changes)
}

/// Whether warroom made this change itself: its actor is warroom's API account, or it is a
/// comment ending in warroom's signature line.
#[must_use]
pub fn is_own_write(change: &JiraChange, our_account_id: &str) -> bool {
    if change.actor_account_id.as_deref().is_some_and(|actor| actor == our_account_id) {
        return true;
    }
    match &change.kind {
        ChangeKind::PublicComment { text, .. } => {
            text.lines().last().is_some_and(|line| line.starts_with("— ") && line.contains(" via warroom · ref "))
        }
        _ => false,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    #[serde(default)]
    webhook_event: String,
    #[serde(default)]
    user: Option<Account>,
    #[serde(default)]
    issue: Option<Issue>,
    #[serde(default)]
    changelog: Option<Changelog>,
    #[serde(default)]
    comment: Option<Comment>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Account {
    #[serde(default)]
    account_id: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
}

#[derive(Deserialize)]
struct Issue {
    #[serde(default)]
    key: String,
}

#[derive(Deserialize)]
struct Changelog {
    #[serde(default)]
    items: Vec<ChangeItem>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChangeItem {
    #[serde(default)]
    field: String,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    from_string: Option<String>,
    #[serde(default)]
    to_string: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Comment {
    #[serde(default)]
    body: Value,
    #[serde(default)]
    author: Option<Account>,
    /// Set by Jira Service Management: false for internal notes.
    #[serde(default)]
    jsd_public: Option<bool>,
    /// A comment restricted to a role or group is not public.
    #[serde(default)]
    visibility: Option<Value>,
}

impl Comment {
    fn is_public(&self) -> bool {
        self.jsd_public != Some(false) && self.visibility.as_ref().is_none_or(Value::is_null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/jira/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
    }

    const SECRET: &[u8] = b"It is a secret";
    /// HMAC-SHA256 of `webhook_comment_created.json` under [`SECRET`], computed outside Rust.
    const SIGNATURE: &str = "sha256=68a5a791fb16126f1861148996cefcaa568734889a90e71efc648178d0618878";

    #[test]
    fn a_delivery_signed_with_the_secret_is_accepted() {
        let body = fixture("webhook_comment_created.json");

        assert!(verify_signature(SECRET, &body, Some(SIGNATURE)));
        assert!(verify_signature(SECRET, &body, Some(&SIGNATURE.to_uppercase().replace("SHA256", "sha256"))));
    }

    type Case<'a> = (&'a str, &'a [u8], &'a [u8], Option<&'a str>);

    #[test]
    fn unsigned_or_badly_signed_deliveries_are_refused() {
        let body = fixture("webhook_comment_created.json");
        let mut tampered = body.clone();
        tampered.extend_from_slice(b" ");
        // (case, secret, body, header)
        let cases: [Case<'_>; 7] = [
            ("no header", SECRET, &body, None),
            ("another secret", b"not the secret", &body, Some(SIGNATURE)),
            ("a changed body", SECRET, &tampered, Some(SIGNATURE)),
            ("another method", SECRET, &body, Some(&SIGNATURE.replacen("sha256", "sha1", 1))),
            ("no method", SECRET, &body, Some(&SIGNATURE["sha256=".len()..])),
            ("bad hex", SECRET, &body, Some("sha256=zz")),
            ("an empty secret", b"", &body, Some(SIGNATURE)),
        ];
        for (case, secret, body, header) in cases {
            assert!(!verify_signature(secret, body, header), "{case} must be refused");
        }
    }

    #[test]
    fn a_status_change_and_an_assignment_are_read_from_one_update() {
        let changes = parse_event(&fixture("webhook_issue_updated_status.json")).expect("parse");

        let actor = Some("5b10ac8d82e05b22cc7d4ef5".to_owned());
        assert_eq!(
            changes,
            [
                JiraChange {
                    issue_key: "OPS-42".to_owned(),
                    kind: ChangeKind::StatusChanged { from: Some("In Progress".to_owned()), to: "Resolved".to_owned() },
                    actor_account_id: actor.clone(),
                },
                JiraChange {
                    issue_key: "OPS-42".to_owned(),
                    kind: ChangeKind::AssigneeChanged {
                        to: Some("Ana Lopez".to_owned()),
                        to_account_id: Some("5b10a2844c20165700ede21g".to_owned()),
                    },
                    actor_account_id: actor,
                },
            ],
            "the resolution item is not posted"
        );
    }

    #[test]
    fn a_public_comment_is_read_with_its_author_and_text() {
        let changes = parse_event(&fixture("webhook_comment_created.json")).expect("parse");

        assert_eq!(
            changes,
            [JiraChange {
                issue_key: "OPS-42".to_owned(),
                kind: ChangeKind::PublicComment {
                    author: "Carla Customer".to_owned(),
                    text: "Checkout works again for us, thanks!".to_owned(),
                },
                actor_account_id: Some("qm:customer-1".to_owned()),
            }]
        );
    }

    #[test]
    fn internal_comments_and_other_events_yield_nothing() {
        let internal = String::from_utf8(fixture("webhook_comment_created.json"))
            .expect("utf-8")
            .replace(r#""jsdPublic":true"#, r#""jsdPublic":false"#);
        let deleted = r#"{"webhookEvent":"jira:issue_deleted","issue":{"key":"OPS-42"}}"#;

        assert_eq!(parse_event(internal.as_bytes()).expect("parse"), []);
        assert_eq!(parse_event(deleted.as_bytes()).expect("parse"), []);
    }

    #[test]
    fn a_body_that_is_not_a_jira_event_is_an_error() {
        assert!(matches!(parse_event(b"not json"), Err(JiraHookError::Malformed(_))));
        assert!(matches!(parse_event(br#"{"webhookEvent":"comment_created"}"#), Err(JiraHookError::NoIssue)));
    }

    #[test]
    fn changes_made_by_warroom_s_account_or_carrying_its_signature_are_its_own() {
        let ours = "557058:warroom-bot";
        let change = |actor: &str, kind: ChangeKind| JiraChange {
            issue_key: "OPS-42".to_owned(),
            kind,
            actor_account_id: Some(actor.to_owned()),
        };
        let status = ChangeKind::StatusChanged { from: None, to: "Resolved".to_owned() };
        let signed = ChangeKind::PublicComment {
            author: "warroom bot".to_owned(),
            text: format!("We are rolling back.\n\n{}", crate::desk::jira::signature("ana", "job-7")),
        };
        let human = ChangeKind::PublicComment { author: "Ana".to_owned(), text: "Seen, thanks".to_owned() };

        assert!(is_own_write(&change(ours, status.clone()), ours));
        assert!(is_own_write(&change("someone-else", signed), ours), "a signed comment is ours whoever posted it");
        assert!(!is_own_write(&change("5b10ac8d82e05b22cc7d4ef5", status), ours));
        assert!(!is_own_write(&change("5b10ac8d82e05b22cc7d4ef5", human), ours));
    }
}
