//! Bearer tokens, compared in constant time.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// Checks `Authorization: Bearer <token>` against `expected`.
pub fn require_bearer(headers: &HeaderMap, expected: &SecretString) -> Result<(), ApiError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Err(ApiError::Unauthorized("missing Authorization: Bearer <token> header"));
    };
    let presented = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .unwrap_or_default();
    if bool::from(presented.as_bytes().ct_eq(expected.expose_secret().as_bytes())) && !presented.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Unauthorized("invalid bearer token"))
    }
}
