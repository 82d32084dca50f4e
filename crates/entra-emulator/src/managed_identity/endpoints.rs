//! The token endpoints of each source, with their own request checks, answer shapes and error answers.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use super::{HostState, ManagedIdentityEndpoint, ManagedIdentityInfo};
use crate::directory::{GRAPH_APP_ID, GRAPH_RESOURCE};
use crate::ids::{random_b64url, secret_eq_bytes};
use crate::jwt;

type Shared = State<Arc<HostState>>;
type Params = Query<HashMap<String, String>>;

/// Managed-identity tokens live a day (the platform caches them); clients refresh them at half-life.
const LIFETIME: i64 = 86_399;

/// Claims of a managed identity's app-only token (v1, as Graph receives them).
#[derive(Serialize)]
struct Claims<'a> {
    aud: &'a str,
    iss: String,
    iat: i64,
    nbf: i64,
    exp: i64,
    aio: String,
    appid: &'a str,
    appidacr: &'static str,
    idp: String,
    idtyp: &'static str,
    oid: &'a str,
    rh: String,
    roles: &'a [String],
    sub: &'a str,
    tid: &'a str,
    uti: String,
    ver: &'static str,
    xms_mirid: &'a str,
}

/// A minted token: the JWT, its expiry (Unix seconds) and the audience.
struct Minted {
    access_token: String,
    expires_on: i64,
    resource: &'static str,
}

/// The audience for `resource` (Graph by URI or app id), if the emulator knows it.
fn audience(resource: &str) -> Option<&'static str> {
    let r = resource
        .trim()
        .trim_end_matches('/')
        .trim_end_matches("/.default");
    if r.eq_ignore_ascii_case(GRAPH_RESOURCE) {
        Some(GRAPH_RESOURCE)
    } else if r.eq_ignore_ascii_case(GRAPH_APP_ID) {
        Some(GRAPH_APP_ID)
    } else {
        None
    }
}

fn mint(state: &HostState, identity: &ManagedIdentityInfo, resource: &'static str) -> Option<Minted> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let exp = now.saturating_add(LIFETIME);
    let claims = Claims {
        aud: resource,
        iss: format!("https://sts.windows.net/{}/", state.tenant_id),
        iat: now - 300,
        nbf: now - 300,
        exp,
        aio: random_b64url(48),
        appid: &identity.client_id,
        appidacr: "2",
        idp: format!("https://sts.windows.net/{}/", state.tenant_id),
        idtyp: "app",
        oid: &identity.object_id,
        rh: format!("0.A{}", random_b64url(42)),
        roles: &identity.app_roles,
        sub: &identity.object_id,
        tid: &state.tenant_id,
        uti: random_b64url(16),
        ver: "1.0",
        xms_mirid: &identity.resource_id,
    };
    match jwt::encode(&state.app.signing_key, &claims, true) {
        Ok(access_token) => {
            tracing::info!(client_id = %identity.client_id, resource, "issued managed identity token");
            Some(Minted {
                access_token,
                expires_on: exp,
                resource,
            })
        }
        Err(e) => {
            tracing::error!("cannot sign a managed identity token: {e}");
            None
        }
    }
}

/// The identity a request selects (`names`: the source's spellings of client id, object id, resource id).
fn select<'a>(
    state: &'a HostState,
    params: &HashMap<String, String>,
    names: [&str; 3],
) -> Option<&'a ManagedIdentityInfo> {
    let system = state
        .system_assigned_enabled
        .load(Ordering::Relaxed)
        .then_some(&state.system_assigned);
    let candidates = [system, Some(&state.user_assigned)];
    let find = |value: &str, field: fn(&ManagedIdentityInfo) -> &str| {
        candidates
            .into_iter()
            .flatten()
            .find(|i| field(i).eq_ignore_ascii_case(value.trim()))
    };
    if let Some(v) = params.get(names[0]) {
        find(v, |i| &i.client_id)
    } else if let Some(v) = params.get(names[1]) {
        find(v, |i| &i.object_id)
    } else if let Some(v) = params.get(names[2]) {
        find(v, |i| &i.resource_id)
    } else {
        system
    }
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

fn header_is(headers: &HeaderMap, name: &str, expected: &str) -> bool {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| secret_eq_bytes(v.as_bytes(), expected.as_bytes()))
}

/// An OAuth-style error, as IMDS and Arc send them.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(
        status,
        json!({ "error": error, "error_description": description }),
    )
}

/// IMDS's (and Arc's) refusal of a malformed request.
fn imds_bad_request(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

/// What IMDS and Arc say of a resource the tenant does not have.
const UNKNOWN_RESOURCE: &str = "AADSTS500011: The resource principal was not found in the tenant.";

/// App Service's (and Azure ML's) answer to any failure on its side, the wrong resource included.
const APP_SERVICE_FAILURE: &str = "An unexpected error occured while fetching the AAD Token.";

/// The status a test injected (`ManagedIdentityHost::fail_next`); a number that is not one is a 500.
fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// IMDS's transient answers (Learn: 404 updating, 410 restarting, 429 throttled, 5xx).
fn imds_transient(status: u16) -> Response {
    let code = status_code(status);
    let (error, description) = match status {
        404 => ("not_found", "IMDS endpoint is updating"),
        410 => ("gone", "IMDS is restarting; available within 70 seconds"),
        429 => ("too_many_requests", "Too many requests to IMDS"),
        _ => ("internal_error", "IMDS encountered an internal error"),
    };
    let mut resp = oauth_error(code, error, description);
    if status == 429 {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

/// The IMDS-shaped success body (numbers as strings, as IMDS sends them); Arc echoes the identity.
fn imds_body(minted: &Minted, identity: &ManagedIdentityInfo, echo: bool) -> serde_json::Value {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut body = json!({
        "access_token": minted.access_token,
        "client_id": identity.client_id,
        "expires_in": (minted.expires_on - now).to_string(),
        "expires_on": minted.expires_on.to_string(),
        "ext_expires_in": (minted.expires_on - now).to_string(),
        "not_before": (now - 300).to_string(),
        "resource": minted.resource,
        "token_type": "Bearer",
    });
    if echo {
        body["object_id"] = json!(identity.object_id);
        body["msi_res_id"] = json!(identity.resource_id);
    }
    body
}

pub(super) async fn imds(State(state): Shared, Query(params): Params, headers: HeaderMap) -> Response {
    if let Some(status) = state.arrive(ManagedIdentityEndpoint::Imds) {
        return imds_transient(status);
    }
    if !header_is(&headers, "metadata", "true") {
        return imds_bad_request("Required metadata header not specified");
    }
    let Some(resource) = params.get("resource").filter(|r| !r.trim().is_empty()) else {
        return imds_bad_request("Required audience parameter not specified");
    };
    let Some(identity) = select(&state, &params, ["client_id", "object_id", "msi_res_id"]) else {
        return imds_bad_request("Identity not found");
    };
    let Some(aud) = audience(resource) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_resource", UNKNOWN_RESOURCE);
    };
    match mint(&state, identity, aud) {
        Some(minted) => json_response(StatusCode::OK, imds_body(&minted, identity, false)),
        None => imds_transient(500),
    }
}

/// App Service's error shape.
fn app_service_error(status: StatusCode, message: &str) -> Response {
    json_response(
        status,
        json!({ "statusCode": status.as_u16(), "message": message, "correlationId": uuid::Uuid::new_v4().to_string() }),
    )
}

pub(super) async fn app_service(State(state): Shared, Query(params): Params, headers: HeaderMap) -> Response {
    if let Some(status) = state.arrive(ManagedIdentityEndpoint::AppService) {
        return app_service_error(status_code(status), APP_SERVICE_FAILURE);
    }
    if !header_is(&headers, "x-identity-header", &state.app_service_header) {
        return app_service_error(
            StatusCode::UNAUTHORIZED,
            "The X-IDENTITY-HEADER is missing or does not match.",
        );
    }
    if params.get("api-version").map(String::as_str) != Some("2019-08-01") {
        return app_service_error(
            StatusCode::BAD_REQUEST,
            "The api-version is missing or not supported.",
        );
    }
    let Some(identity) = select(&state, &params, ["client_id", "object_id", "mi_res_id"]) else {
        return app_service_error(
            StatusCode::BAD_REQUEST,
            "No managed identity found for specified ClientId/ResourceId/PrincipalId.",
        );
    };
    // A wrong resource gets a vague 500 from App Service (MSAL Python's comment says so).
    let Some(minted) = params
        .get("resource")
        .and_then(|r| audience(r))
        .and_then(|aud| mint(&state, identity, aud))
    else {
        return app_service_error(StatusCode::INTERNAL_SERVER_ERROR, APP_SERVICE_FAILURE);
    };
    json_response(
        StatusCode::OK,
        json!({
            "access_token": minted.access_token,
            "expires_on": minted.expires_on.to_string(),
            "resource": minted.resource,
            "token_type": "Bearer",
            "client_id": identity.client_id,
        }),
    )
}

pub(super) async fn azure_ml(State(state): Shared, Query(params): Params, headers: HeaderMap) -> Response {
    if let Some(status) = state.arrive(ManagedIdentityEndpoint::AzureMl) {
        return app_service_error(status_code(status), APP_SERVICE_FAILURE);
    }
    if !header_is(&headers, "secret", &state.azure_ml_secret) {
        return app_service_error(
            StatusCode::UNAUTHORIZED,
            "The secret header is missing or does not match.",
        );
    }
    let Some(identity) = select(&state, &params, ["clientid", "object_id", "mi_res_id"]) else {
        return app_service_error(
            StatusCode::BAD_REQUEST,
            "No managed identity found for specified ClientId.",
        );
    };
    let Some(minted) = params
        .get("resource")
        .and_then(|r| audience(r))
        .and_then(|aud| mint(&state, identity, aud))
    else {
        return app_service_error(StatusCode::BAD_REQUEST, "The resource is missing or unknown.");
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // Integers, not strings (azure-sdk-for-net #40348).
    json_response(
        StatusCode::OK,
        json!({
            "access_token": minted.access_token,
            "expires_in": minted.expires_on - now,
            "expires_on": minted.expires_on,
            "resource": minted.resource,
            "token_type": "Bearer",
        }),
    )
}

pub(super) async fn arc(State(state): Shared, Query(params): Params, headers: HeaderMap) -> Response {
    if let Some(status) = state.arrive(ManagedIdentityEndpoint::AzureArc) {
        return imds_transient(status);
    }
    if !header_is(&headers, "metadata", "true") {
        return imds_bad_request("Required metadata header not specified");
    }
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let Some(presented) = authorization else {
        return arc_challenge(&state);
    };
    let expected = state.arc_key.lock().unwrap_or_else(|e| e.into_inner()).take();
    let valid = match (presented.strip_prefix("Basic "), expected) {
        (Some(p), Some(e)) => secret_eq_bytes(p.trim().as_bytes(), e.as_bytes()),
        _ => false,
    };
    if !valid {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request",
            "The challenge key is missing, wrong or already used.",
        );
    }
    let Some(resource) = params.get("resource").filter(|r| !r.trim().is_empty()) else {
        return imds_bad_request("Required audience parameter not specified");
    };
    let echoes = state.arc_echoes_identity.load(Ordering::Relaxed);
    // An older agent ignores the selector and answers for the machine's own identity.
    let identity = if echoes {
        select(&state, &params, ["client_id", "object_id", "msi_res_id"])
    } else {
        select(&state, &HashMap::new(), ["client_id", "object_id", "msi_res_id"])
    };
    let Some(identity) = identity else {
        return imds_bad_request("Identity not found");
    };
    let Some(aud) = audience(resource) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_resource", UNKNOWN_RESOURCE);
    };
    let asked_for_user_assigned = ["client_id", "object_id", "msi_res_id"]
        .iter()
        .any(|n| params.contains_key(*n));
    match mint(&state, identity, aud) {
        Some(minted) => {
            let mut body = imds_body(&minted, identity, echoes && asked_for_user_assigned);
            if !echoes && let Some(members) = body.as_object_mut() {
                members.remove("client_id");
            }
            json_response(StatusCode::OK, body)
        }
        None => imds_transient(500),
    }
}

/// Writes a fresh key file to the token directory and names it in the challenge (or names the file a test
/// asked for).
fn arc_challenge(state: &HostState) -> Response {
    let realm = match state
        .arc_realm_override
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
    {
        Some(file) => {
            // The test's file: its content is what a client that (wrongly) read it would send.
            // Only a small regular file is read (a FIFO would block the emulator).
            let small_file = std::fs::metadata(&file).is_ok_and(|m| m.is_file() && m.len() <= 64 * 1024);
            *state.arc_key.lock().unwrap_or_else(|e| e.into_inner()) = small_file
                .then(|| std::fs::read_to_string(&file).ok())
                .flatten()
                .map(|k| k.trim().to_string());
            file
        }
        None => {
            let key = random_b64url(32);
            let file = state.arc_token_dir.join(format!("{}.key", uuid::Uuid::new_v4()));
            if let Err(e) = write_private(&file, key.as_bytes()) {
                tracing::error!("cannot write the Arc challenge file: {e}");
                return imds_transient(500);
            }
            *state.arc_key.lock().unwrap_or_else(|e| e.into_inner()) = Some(key);
            file
        }
    };
    let mut resp = oauth_error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Authentication with the challenge file is required",
    );
    if let Ok(value) = HeaderValue::from_str(&format!("Basic realm={}", realm.display())) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    resp
}

fn write_private(path: &std::path::Path, content: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)?.write_all(content)
}

/// Service Fabric's error shape.
fn service_fabric_error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(status, json!({ "error": { "code": code, "message": message } }))
}

pub(super) async fn service_fabric(
    State(state): Shared,
    Query(params): Params,
    headers: HeaderMap,
) -> Response {
    if let Some(status) = state.arrive(ManagedIdentityEndpoint::ServiceFabric) {
        return service_fabric_error(
            status_code(status),
            "InternalServerError",
            "The token service failed to process the request.",
        );
    }
    if !header_is(&headers, "secret", &state.service_fabric_header) {
        return service_fabric_error(
            StatusCode::UNAUTHORIZED,
            "SecretHeaderNotFound",
            "Secret is not found in the request headers.",
        );
    }
    let Some(resource) = params.get("resource").filter(|r| !r.trim().is_empty()) else {
        return service_fabric_error(
            StatusCode::BAD_REQUEST,
            "ArgumentNullOrEmpty",
            "Value cannot be null. Parameter name: resource",
        );
    };
    let Some(identity) = state
        .system_assigned_enabled
        .load(Ordering::Relaxed)
        .then_some(&state.system_assigned)
    else {
        return service_fabric_error(
            StatusCode::NOT_FOUND,
            "ManagedIdentityNotFound",
            "Managed Identity not found for the application.",
        );
    };
    let Some(minted) = audience(resource).and_then(|aud| mint(&state, identity, aud)) else {
        return service_fabric_error(
            StatusCode::BAD_REQUEST,
            "InvalidResource",
            "The resource is not known to the tenant.",
        );
    };
    json_response(
        StatusCode::OK,
        json!({
            "token_type": "Bearer",
            "access_token": minted.access_token,
            "expires_on": minted.expires_on,
            "resource": minted.resource,
        }),
    )
}
