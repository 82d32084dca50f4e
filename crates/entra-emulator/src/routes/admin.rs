//! The emulator's own endpoints under `/_emulator/` (not counted, not subject to faults).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::routes::device::{self, ApproveError};
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

/// `POST /_emulator/faults` with a JSON [`Fault`]: 204, or 400 saying what is wrong with it.
pub(crate) async fn inject_fault(State(state): State<Arc<AppState>>, Json(fault): Json<Fault>) -> Response {
    if let Err(e) = fault.validate() {
        return (StatusCode::BAD_REQUEST, e).into_response();
    }
    state.inject_fault(fault);
    StatusCode::NO_CONTENT.into_response()
}

/// `DELETE /_emulator/faults`: drops every pending fault; 200 with how many there were.
pub(crate) async fn clear_faults(State(state): State<Arc<AppState>>) -> Response {
    Json(serde_json::json!({"cleared": state.clear_faults()})).into_response()
}

/// `GET /_emulator/health`
pub(crate) async fn health() -> Response {
    Json(serde_json::json!({"status": "ok"})).into_response()
}

/// `GET /_emulator/device-codes`: every device code (never the secret `device_code`).
pub(crate) async fn device_codes(State(state): State<Arc<AppState>>) -> Response {
    Json(device::list(&state)).into_response()
}

/// Body of `POST /_emulator/device-codes/{user_code}/approve`.
#[derive(Debug, Deserialize)]
pub(crate) struct ApproveBody {
    username: String,
}

/// `POST /_emulator/device-codes/{user_code}/approve` with `{"username": "…"}`: 200 with the code, 404 for an
/// unknown code, 409 when it is not pending, 400 when that user cannot sign in.
pub(crate) async fn approve_device_code(
    State(state): State<Arc<AppState>>,
    Path(user_code): Path<String>,
    Json(body): Json<ApproveBody>,
) -> Response {
    outcome(device::approve(&state, &user_code, &body.username))
}

/// `POST /_emulator/device-codes/{user_code}/decline`.
pub(crate) async fn decline_device_code(
    State(state): State<Arc<AppState>>,
    Path(user_code): Path<String>,
) -> Response {
    outcome(device::decline(&state, &user_code))
}

fn outcome(result: Result<crate::device_codes::DeviceCodeInfo, ApproveError>) -> Response {
    match result {
        Ok(info) => Json(info).into_response(),
        Err(e) => {
            let status = match e {
                ApproveError::NotFound => StatusCode::NOT_FOUND,
                ApproveError::NotPending(_) => StatusCode::CONFLICT,
                ApproveError::User(_) => StatusCode::BAD_REQUEST,
            };
            (status, Json(serde_json::json!({"error": e.to_string()}))).into_response()
        }
    }
}
