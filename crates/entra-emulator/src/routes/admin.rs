//! The emulator's own endpoints under `/_emulator/` (not counted, not subject to faults).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::state::{AppState, Fault};

/// `GET /_emulator/requests`
pub(crate) async fn requests(State(state): State<Arc<AppState>>) -> Response {
    Json(state.counters.snapshot()).into_response()
}

/// `POST /_emulator/requests/reset`: zeroes the counters and returns them.
pub(crate) async fn reset_requests(State(state): State<Arc<AppState>>) -> Response {
    state.counters.reset();
    Json(state.counters.snapshot()).into_response()
}

/// `POST /_emulator/faults` with a JSON [`Fault`].
pub(crate) async fn inject_fault(State(state): State<Arc<AppState>>, Json(fault): Json<Fault>) -> Response {
    if StatusCode::from_u16(fault.status).is_err() {
        return (
            StatusCode::BAD_REQUEST,
            "status must be an HTTP status code between 100 and 999",
        )
            .into_response();
    }
    state.inject_fault(fault);
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /_emulator/health`
pub(crate) async fn health() -> Response {
    Json(serde_json::json!({"status": "ok"})).into_response()
}
