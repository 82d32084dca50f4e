//! The emulator's own token issuer, as a Kubernetes API server serves it: the OIDC discovery document and the
//! JWKS its service-account tokens are verified with.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// `GET /workload-issuer/.well-known/openid-configuration`.
pub(crate) async fn openid_configuration(State(state): State<Arc<AppState>>) -> Response {
    Json(state.workload_issuer.openid_configuration()).into_response()
}

/// `GET /workload-issuer/openid/v1/jwks`.
pub(crate) async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    // The key is generated on first use: off the async threads.
    match tokio::task::spawn_blocking(move || state.workload_issuer.jwks()).await {
        Ok(Ok(jwks)) => Json(jwks).into_response(),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the issuer's key is unavailable",
        )
            .into_response(),
    }
}
