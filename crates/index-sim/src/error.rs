//! The index's error answers: `{"error": {"code": ..., "message": ...}}`,
//! and how a store error becomes one.
//!
//! A leaf (it knows only the store's error type): every handler module, the
//! chaos layer and the extractors answer with it. It used to live in
//! `http.rs`, which imports those modules to route to them, so each of them
//! imported `http.rs` back; now they all import it from here.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::store::StoreError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

/// `400 bad_request`: the request as a whole is not the protocol's.
pub fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            StoreError::NotActive => {
                ApiError::new(StatusCode::CONFLICT, "not_active", e.to_string())
            }
            StoreError::EndDate(m) => ApiError::new(StatusCode::BAD_REQUEST, "end_date_too_far", m),
            other => {
                tracing::error!(error = %other, "store");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the index store failed; retry later",
                )
            }
        }
    }
}
