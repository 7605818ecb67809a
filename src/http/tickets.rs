//! The built-in desk's read API, behind the same bearer token as `/api/incidents`:
//! `GET /api/tickets/{key}` (the contract's ticket JSON) and
//! `GET /api/tickets/{key}/attachments/{name}` (the file's bytes with its content type).
//! An unknown or malformed key answers 404 with a JSON body.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::HttpState;
use super::auth::require_bearer;
use super::error::ApiError;
use crate::desk::{DeskError, Ticket};
use crate::domain::TicketKey;

/// `GET /api/tickets/{key}`: `{"key", "url", "status", "assignee", "priority", "summary",
/// "description", "comments": [...], "attachments": [...]}`.
pub async fn get_ticket(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers)?;
    let key = parse_key(&key)?;
    let ticket =
        state.desk.get(&key).await.map_err(api_error)?.ok_or_else(|| ApiError::NotFound(format!("no ticket {key}")))?;
    Ok(Json(ticket_json(&ticket, &state.public_url)))
}

/// `GET /api/tickets/{key}/attachments/{name}`: the attachment's bytes, served as a download
/// with its stored content type.
pub async fn get_attachment(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path((key, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let key = parse_key(&key)?;
    let (content_type, bytes) = state
        .desk
        .attachment(&key, &name)
        .await
        .map_err(api_error)?
        .ok_or_else(|| ApiError::NotFound(format!("no attachment {name} on {key}")))?;
    let content_type =
        HeaderValue::from_str(&content_type).unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    // Served as a download and never sniffed: a stored file must not run as a page of this origin.
    let disposition = HeaderValue::from_str(&format!("attachment; filename*=UTF-8''{}", encode_path_segment(&name)))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    Ok((
        [
            (CONTENT_TYPE, content_type),
            (CONTENT_DISPOSITION, disposition),
            (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        bytes,
    )
        .into_response())
}

/// The contract's ticket shape; links start at `public_url`.
#[must_use]
pub fn ticket_json(ticket: &Ticket, public_url: &str) -> Value {
    let url = format!("{public_url}/api/tickets/{}", ticket.key);
    let comments: Vec<Value> = ticket
        .comments
        .iter()
        .map(|c| json!({ "at": c.at.to_string(), "author": c.author, "text": c.text, "public": c.public }))
        .collect();
    let attachments: Vec<Value> = ticket
        .attachments
        .iter()
        .map(|a| {
            json!({
                "at": a.at.to_string(),
                "name": a.name,
                "content_type": a.content_type,
                "size": a.size,
                "url": format!("{url}/attachments/{}", encode_path_segment(&a.name)),
            })
        })
        .collect();
    json!({
        "key": ticket.key.as_str(),
        "url": url,
        "status": ticket.status.as_str(),
        "assignee": ticket.assignee,
        "priority": ticket.priority,
        "summary": ticket.summary,
        "description": ticket.description,
        "comments": comments,
        "attachments": attachments,
    })
}

/// Percent-encodes `text` for one URL path segment: every byte but RFC 3986's unreserved
/// characters (`A-Z a-z 0-9 - . _ ~`) becomes `%XX`.
#[must_use]
pub fn encode_path_segment(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push('%');
            encoded.push(char::from(HEX[usize::from(byte >> 4)]));
            encoded.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
    encoded
}

fn authorize(state: &HttpState, headers: &HeaderMap) -> Result<(), ApiError> {
    match &state.api_token {
        Some(token) => require_bearer(headers, token),
        None => Err(ApiError::Unauthorized("the read API is disabled: set WARROOM_API_TOKEN or WARROOM_WEBHOOK_TOKEN")),
    }
}

/// A built-in key in its canonical spelling (`wr-7` → `WR-7`); anything else is a 404.
fn parse_key(key: &str) -> Result<TicketKey, ApiError> {
    TicketKey::builtin_seq(key).map(TicketKey::builtin).map_err(|e| ApiError::NotFound(e.to_string()))
}

fn api_error(error: DeskError) -> ApiError {
    match error {
        DeskError::NotFound(what) => ApiError::NotFound(what),
        other => ApiError::Internal(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::desk::{Attachment, Comment, TicketStatus};
    use crate::domain::IncidentId;

    #[test]
    fn a_ticket_renders_as_the_contract_shape_with_links() {
        let at: Timestamp = "2026-03-01T10:01:00Z".parse().expect("time");
        let ticket = Ticket {
            key: TicketKey::builtin(42),
            incident: IncidentId::from_seq(7),
            status: TicketStatus::Closed,
            assignee: Some("U42".to_owned()),
            priority: "P1".to_owned(),
            summary: "INC-7: checkout is down".to_owned(),
            description: "HTTP 500".to_owned(),
            comments: vec![Comment { at, author: "U1".to_owned(), text: "rolled back".to_owned(), public: false }],
            attachments: vec![Attachment {
                at,
                name: "INC-7 transcript.md".to_owned(),
                content_type: "text/markdown".to_owned(),
                size: 12,
            }],
        };

        let body = ticket_json(&ticket, "https://warroom.example");

        assert_eq!(
            body,
            json!({
                "key": "WR-42",
                "url": "https://warroom.example/api/tickets/WR-42",
                "status": "closed",
                "assignee": "U42",
                "priority": "P1",
                "summary": "INC-7: checkout is down",
                "description": "HTTP 500",
                "comments": [{ "at": "2026-03-01T10:01:00Z", "author": "U1", "text": "rolled back", "public": false }],
                "attachments": [{
                    "at": "2026-03-01T10:01:00Z",
                    "name": "INC-7 transcript.md",
                    "content_type": "text/markdown",
                    "size": 12,
                    "url": "https://warroom.example/api/tickets/WR-42/attachments/INC-7%20transcript.md",
                }],
            })
        );
    }

    #[test]
    fn path_segments_keep_only_unreserved_characters() {
        let cases = [
            ("transcript.md", "transcript.md", "plain names stay"),
            ("a b", "a%20b", "a space is encoded"),
            ("a/b?c#d%", "a%2Fb%3Fc%23d%25", "separators are encoded"),
            ("é", "%C3%A9", "UTF-8 bytes are encoded one by one"),
        ];
        for (input, expected, why) in cases {
            assert_eq!(encode_path_segment(input), expected, "{why}");
        }
    }

    #[test]
    fn only_builtin_keys_name_a_ticket() {
        assert_eq!(parse_key("wr-7").expect("key").as_str(), "WR-7");
        for bad in ["OPS-7", "WR-", "WR-0", "7"] {
            assert!(parse_key(bad).is_err(), "`{bad}` must be a 404");
        }
    }
}

#[cfg(test)]
mod route_tests {
    use std::sync::Arc;

    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header::AUTHORIZATION};
    use axum::routing::get;
    use secrecy::SecretString;
    use tower::ServiceExt;

    use super::*;
    use crate::config::Settings;
    use crate::desk::Desk;
    use crate::desk::builtin::tests::Fixture;
    use crate::handlers::Services;
    use crate::health::Health;
    use crate::jobs::runner::Nudge;

    const TOKEN: &str = "api-t0ken";

    /// The two ticket routes over a desk holding WR-1 with one attachment.
    async fn app() -> (Fixture, Router) {
        let f = Fixture::new().await;
        let key = f.ticket("a").await;
        f.desk.attach(&key, "INC-1 transcript.md", "text/markdown", b"# INC-1").await.expect("attach");
        let services = Services {
            store: Arc::new(f.store.clone()),
            clock: Arc::new(f.clock.clone()),
            settings: Arc::new(Settings::default()),
            nudge: Nudge::default(),
            desk: Arc::new(f.desk.clone()),
            catalog: Arc::default(),
        };
        let state = HttpState {
            ingester: crate::handlers::ingester::Ingester::start(services.clone()),
            services,
            health: Health::default(),
            webhook_token: None,
            api_token: Some(Arc::new(SecretString::from(TOKEN))),
            public_url: "http://warroom.test".to_owned(),
            desk: Arc::new(f.desk.clone()),
            jira: None,
        };
        let router = Router::new()
            .route("/api/tickets/{key}", get(get_ticket))
            .route("/api/tickets/{key}/attachments/{name}", get(get_attachment))
            .with_state(state);
        (f, router)
    }

    async fn call(router: &Router, path: &str, token: Option<&str>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut request = Request::get(path);
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let response = router.clone().oneshot(request.body(Body::empty()).expect("request")).await.expect("response");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        (status, headers, body.to_vec())
    }

    fn json_of(body: &[u8]) -> Value {
        serde_json::from_slice(body).expect("a JSON body")
    }

    #[tokio::test]
    async fn a_ticket_is_served_as_json_with_its_attachment_links() {
        let (_f, router) = app().await;

        let (status, _, body) = call(&router, "/api/tickets/WR-1", Some(TOKEN)).await;

        assert_eq!(status, StatusCode::OK);
        let body = json_of(&body);
        assert_eq!(body["key"], "WR-1");
        assert_eq!(body["url"], "http://warroom.test/api/tickets/WR-1");
        assert_eq!(body["status"], "open");
        assert_eq!(
            body["attachments"][0]["url"],
            "http://warroom.test/api/tickets/WR-1/attachments/INC-1%20transcript.md"
        );
    }

    #[tokio::test]
    async fn an_attachment_link_serves_the_bytes_with_their_content_type() {
        let (_f, router) = app().await;

        let (status, headers, body) =
            call(&router, "/api/tickets/WR-1/attachments/INC-1%20transcript.md", Some(TOKEN)).await;

        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[CONTENT_TYPE], "text/markdown");
        assert_eq!(headers[X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(body, b"# INC-1");
    }

    #[tokio::test]
    async fn unknown_or_malformed_keys_and_names_answer_404_json() {
        let (_f, router) = app().await;

        for path in [
            "/api/tickets/WR-2",
            "/api/tickets/OPS-1",
            "/api/tickets/WR-x",
            "/api/tickets/WR-1/attachments/missing.md",
            "/api/tickets/WR-2/attachments/INC-1%20transcript.md",
        ] {
            let (status, _, body) = call(&router, path, Some(TOKEN)).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            assert!(json_of(&body)["error"].is_string(), "{path}");
        }
    }

    #[tokio::test]
    async fn ticket_routes_need_the_api_token() {
        let (_f, router) = app().await;

        for (path, token) in [
            ("/api/tickets/WR-1", None),
            ("/api/tickets/WR-1", Some("wrong")),
            ("/api/tickets/WR-1/attachments/INC-1%20transcript.md", None),
        ] {
            let (status, _, _) = call(&router, path, token).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} with {token:?}");
        }
    }
}
