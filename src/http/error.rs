//! Errors as HTTP answers: every failure is a JSON body `{"error": "..."}` (plus `"field"` for a
//! 400). This is the only place HTTP errors become words.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tracing::error;

use crate::intake::IntakeError;
use crate::store::StoreError;

/// Why a request failed, by who must act.
#[derive(Debug)]
pub enum ApiError {
    /// 401: bad or missing token.
    Unauthorized(&'static str),
    /// 404.
    NotFound(String),
    /// 413.
    TooLarge { limit: usize },
    /// 415.
    NotJson,
    /// 400 naming the field (or `body`).
    BadRequest(IntakeError),
    /// 503: the database is unavailable; the sender should retry.
    Unavailable(StoreError),
    /// 500: a bug; logged once here.
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => Self::Unavailable(error),
            StoreError::NotFound => Self::NotFound("not found".to_owned()),
            StoreError::Corrupt(message) => Self::Internal(message),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            Self::Unauthorized(why) => (StatusCode::UNAUTHORIZED, json!({ "error": why })),
            Self::NotFound(what) => (StatusCode::NOT_FOUND, json!({ "error": what })),
            Self::TooLarge { limit } => {
                (StatusCode::PAYLOAD_TOO_LARGE, json!({ "error": format!("the body is larger than {limit} bytes") }))
            }
            Self::NotJson => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                json!({ "error": "the body must be JSON: send Content-Type: application/json" }),
            ),
            Self::BadRequest(e) => (StatusCode::BAD_REQUEST, json!({ "error": e.to_string(), "field": e.field })),
            Self::Unavailable(e) => {
                error!(error = %e, "database unavailable; answering 503 so the sender retries");
                (StatusCode::SERVICE_UNAVAILABLE, json!({ "error": "the database is unavailable; retry later" }))
            }
            Self::Internal(message) => {
                error!(error = %message, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, json!({ "error": "internal error; see the server log" }))
            }
        };
        (status, Json(body)).into_response()
    }
}

/// The fallback route.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {}", uri.path()))
}
