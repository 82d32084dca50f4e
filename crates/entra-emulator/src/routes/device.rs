//! The device code flow: `POST /{t}/oauth2/v2.0/devicecode` issues codes, the token endpoint redeems them
//! (`grant_type=urn:ietf:params:oauth:grant-type:device_code` or `device_code`), and approval — from the
//! sign-in page, the admin API, the handle or auto-approval — goes through [`approve`] / [`decline`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::device_codes::{
    Approval, DeviceCode, DeviceCodeInfo, DeviceCodeStatus, DeviceStore, State as CodeState,
};
use crate::directory::{Directory, Tenant, User};
use crate::error_responses::{AadError, sts_headers};
use crate::formats::Ordered;
use crate::ids::guid_eq;
use crate::request_context::Ctx;
use crate::routes::request::{Form, resolve_tenant};
use crate::routes::user_flow::{self, AccountBlock, Scopes, SignedIn};
use crate::state::AppState;
use crate::tenancy::ResolvedTenant;

/// `POST /{t}/oauth2/v2.0/devicecode`
pub(crate) async fn devicecode(
    State(state): State<Arc<AppState>>,
    mut ctx: Ctx,
    Path(t): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    ctx.adopt_body_client_request_id(form.get("client-request-id"));
    match issue(&state, &ctx, &t, &headers, &form) {
        Ok(resp) => resp,
        Err(e) => {
            tracing::info!(tenant = %t, code = e.code, error = e.error, "device code request rejected");
            e.into_response_with(&ctx)
        }
    }
}

fn issue(
    state: &AppState,
    ctx: &Ctx,
    t: &str,
    headers: &HeaderMap,
    form: &Form,
) -> Result<Response, AadError> {
    let resolved = resolve_tenant(state, t, "invalid_request")?;
    let directory = state.directory();
    let client_id = user_flow::client_id(form, headers)?;
    let (home, app) = user_flow::find_app(&directory, &resolved, &client_id)?;
    let scope = form
        .get("scope")
        .ok_or_else(|| AadError::missing_parameter("scope"))?;
    let tenant_name = match &resolved {
        ResolvedTenant::Tenant { .. } => home.display_name.as_str(),
        other => other.segment(),
    };
    Scopes::parse(scope, tenant_name)?;
    let config = &state.device_config;
    let issued = state.devices().issue(
        config,
        &app.app_id,
        &app.display_name,
        resolved,
        Scopes::split(scope),
    );
    tracing::info!(client_id = %app.app_id, user_code = %issued.user_code, "issued a device code");
    state.device_issued.notify_waiters();
    let verification_uri = state.verification_uri(&ctx.base);
    let body = Ordered::new()
        .with("user_code", issued.user_code.as_str())
        .with("device_code", issued.device_code)
        .with("verification_uri", verification_uri.as_str())
        .with("expires_in", config.lifetime.as_secs())
        .with("interval", config.interval)
        .with(
            "message",
            format!(
                "To sign in, use a web browser to open the page {verification_uri} and enter the code {} to \
                 authenticate.",
                issued.user_code
            ),
        );
    let mut resp = (StatusCode::OK, body.to_json()).into_response();
    sts_headers(&mut resp, ctx, "no-store, no-cache");
    Ok(resp)
}

/// The token request of a polling client.
pub(crate) fn redeem(
    state: &AppState,
    ctx: &Ctx,
    directory: &Directory,
    resolved: &ResolvedTenant,
    headers: &HeaderMap,
    form: &Form,
) -> Result<Response, AadError> {
    let client_id = user_flow::client_id(form, headers)?;
    let (home, app) = user_flow::find_app(directory, resolved, &client_id)?;
    let auth = user_flow::authenticate_user_flow_client(state, ctx, home, app, form, headers)?;
    // MSAL Python also sends the code as `code`.
    let device_code = form
        .get("device_code")
        .or_else(|| form.get("code"))
        .ok_or_else(|| AadError::missing_parameter("device_code"))?;
    let (approval, scopes) = {
        let mut devices = state.devices();
        settle(state, directory, &mut devices);
        let code = devices
            .by_device_code(device_code)
            .filter(|c| guid_eq(&c.client_id, &app.app_id) && c.issued_on == *resolved)
            .ok_or_else(AadError::bad_verification_code)?;
        code.poll_count = code.poll_count.saturating_add(1);
        match &code.state {
            CodeState::Pending if code.slow_downs_left > 0 => {
                code.slow_downs_left -= 1;
                return Err(AadError::slow_down());
            }
            CodeState::Pending => return Err(AadError::authorization_pending()),
            CodeState::Declined => return Err(AadError::authorization_declined()),
            CodeState::Expired => return Err(AadError::device_code_expired()),
            CodeState::Redeemed(_) => return Err(AadError::bad_verification_code()),
            CodeState::Approved(approval) => {
                let approval = approval.clone();
                code.state = CodeState::Redeemed(approval.clone());
                (approval, code.scopes.clone())
            }
        }
    };
    let (tenant, user) = directory
        .tenant(&approval.tenant_id)
        .and_then(|t| t.user(&approval.user_id).map(|u| (t, u)))
        .ok_or_else(AadError::bad_verification_code)?;
    // Approving the code was consenting to what it asked for.
    let consents = {
        let mut grants = state.grants();
        grants.consent(&user.id, &app.app_id, &scopes);
        grants.user_consents(&user.id, &app.app_id)
    };
    let requested = Scopes::parse(&scopes.join(" "), &tenant.display_name)?;
    let granted = user_flow::grant(app, user, &consents, &requested)?;
    let signed_in = SignedIn {
        tenant,
        app,
        user,
        mfa: approval.mfa,
        auth,
    };
    user_flow::issue_user_tokens(state, ctx, &signed_in, &granted, form)
}

/// Applies expiry and auto-approval (see `EmulatorBuilder::auto_approve_device_codes`).
pub(crate) fn settle(state: &AppState, directory: &Directory, devices: &mut DeviceStore) {
    devices.settle(&state.device_config, |code, username| {
        match approval_for(directory, code, username) {
            Ok((tenant, user)) => Some(approval_of(tenant, user)),
            Err(reason) => {
                tracing::debug!(user_code = %code.user_code, "not auto-approving: {reason}");
                None
            }
        }
    });
}

/// MFA users count as having done their second factor: approval stands for the whole interactive sign-in
/// (the sign-in page asks for the emulated factor before approving).
fn approval_of(tenant: &Tenant, user: &User) -> Approval {
    Approval {
        user_id: user.id.clone(),
        username: user.user_principal_name.clone(),
        tenant_id: tenant.id.clone(),
        mfa: user.needs_mfa(),
    }
}

/// Why a user cannot approve a device code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UserRefusal {
    /// No such user (in the code's tenant, or at all).
    Unknown,
    /// The code was issued on `/consumers`: the emulator has no personal Microsoft accounts.
    PersonalAccountsOnly,
    /// The user's domain is federated; there is no federation server.
    Federated,
    Blocked(AccountBlock),
}

impl std::fmt::Display for UserRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unknown => f.write_str(
                "This username may be incorrect. Make sure you typed it correctly. Otherwise, contact your admin.",
            ),
            Self::PersonalAccountsOnly => f.write_str(
                "This code was requested on /consumers, for personal Microsoft accounts; the emulator has none.",
            ),
            Self::Federated => f.write_str(
                "This account's domain is federated: it signs in at its organization's federation server, which \
                 the emulator does not have.",
            ),
            Self::Blocked(block) => f.write_str(block.page_message()),
        }
    }
}

/// The user that may approve `code` under `username`, with their tenant: a user of the code's tenant (any
/// tenant for `common`/`organizations`), not federated, not blocked. The password is the caller's business.
pub(crate) fn approval_for<'d>(
    directory: &'d Directory,
    code: &DeviceCode,
    username: &str,
) -> Result<(&'d Tenant, &'d User), UserRefusal> {
    let (tenant, user) = find_user(directory, &code.issued_on, username)?;
    match AccountBlock::of(user) {
        Some(block) => Err(UserRefusal::Blocked(block)),
        None => Ok((tenant, user)),
    }
}

/// The user `username` as a code issued on `issued_on` sees them (not federated; blocks not checked).
fn find_user<'d>(
    directory: &'d Directory,
    issued_on: &ResolvedTenant,
    username: &str,
) -> Result<(&'d Tenant, &'d User), UserRefusal> {
    let (tenant, user) = match issued_on {
        ResolvedTenant::Consumers => return Err(UserRefusal::PersonalAccountsOnly),
        ResolvedTenant::Tenant { id } => directory
            .tenant(id)
            .and_then(|t| t.user(username).map(|u| (t, u)))
            .ok_or(UserRefusal::Unknown)?,
        ResolvedTenant::Common | ResolvedTenant::Organizations => directory
            .tenants
            .iter()
            .find_map(|t| t.user(username).map(|u| (t, u)))
            .ok_or(UserRefusal::Unknown)?,
    };
    if tenant.is_federated_user(user) {
        return Err(UserRefusal::Federated);
    }
    Ok((tenant, user))
}

/// Why the sign-in page refuses a username and password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SignInError {
    Code(ApproveError),
    WrongPassword,
    User(UserRefusal),
}

/// Checks a username and password typed on the sign-in page for a pending code: the user (in the code's
/// tenant), the password, then the account blocks. Returns the user's canonical name and whether they need
/// a second factor.
pub(crate) fn check_sign_in(
    state: &AppState,
    user_code: &str,
    username: &str,
    password: &str,
) -> Result<(String, bool), SignInError> {
    let directory = state.directory();
    let mut devices = state.devices();
    let code = pending(state, &directory, &mut devices, user_code).map_err(SignInError::Code)?;
    let (_, user) = find_user(&directory, &code.issued_on, username).map_err(SignInError::User)?;
    if !crate::ids::secret_eq(&user.password, password) {
        return Err(SignInError::WrongPassword);
    }
    if let Some(block) = AccountBlock::of(user) {
        return Err(SignInError::User(UserRefusal::Blocked(block)));
    }
    Ok((user.user_principal_name.clone(), user.needs_mfa()))
}

/// Why a device code could not be approved or declined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ApproveError {
    NotFound,
    NotPending(DeviceCodeStatus),
    User(UserRefusal),
}

impl std::fmt::Display for ApproveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotFound => f.write_str("no such device code"),
            Self::NotPending(status) => write!(f, "the device code is {status:?}, not pending"),
            Self::User(refusal) => refusal.fmt(f),
        }
    }
}

/// The pending code for a user code, after settling.
fn pending<'s>(
    state: &AppState,
    directory: &Directory,
    devices: &'s mut DeviceStore,
    user_code: &str,
) -> Result<&'s mut DeviceCode, ApproveError> {
    settle(state, directory, devices);
    let code = devices.by_user_code(user_code).ok_or(ApproveError::NotFound)?;
    match code.info().status {
        DeviceCodeStatus::Pending => Ok(code),
        other => Err(ApproveError::NotPending(other)),
    }
}

/// A pending code's details (for the sign-in page): its info and the app's display name.
pub(crate) fn pending_code(
    state: &AppState,
    user_code: &str,
) -> Result<(DeviceCodeInfo, String), ApproveError> {
    let directory = state.directory();
    let mut devices = state.devices();
    let code = pending(state, &directory, &mut devices, user_code)?;
    Ok((code.info(), code.app_display_name.clone()))
}

/// Approves a pending code as `username` (after the caller checked the password, where there is one).
pub(crate) fn approve(
    state: &AppState,
    user_code: &str,
    username: &str,
) -> Result<DeviceCodeInfo, ApproveError> {
    let directory = state.directory();
    let mut devices = state.devices();
    let code = pending(state, &directory, &mut devices, user_code)?;
    let (tenant, user) = approval_for(&directory, code, username).map_err(ApproveError::User)?;
    code.state = CodeState::Approved(approval_of(tenant, user));
    tracing::info!(user_code = %code.user_code, user = %user.id, "device code approved");
    Ok(code.info())
}

/// Declines a pending code: the poller gets `authorization_declined`.
pub(crate) fn decline(state: &AppState, user_code: &str) -> Result<DeviceCodeInfo, ApproveError> {
    let directory = state.directory();
    let mut devices = state.devices();
    let code = pending(state, &directory, &mut devices, user_code)?;
    code.state = CodeState::Declined;
    tracing::info!(user_code = %code.user_code, "device code declined");
    Ok(code.info())
}

/// Every device code, settled.
pub(crate) fn list(state: &AppState) -> Vec<DeviceCodeInfo> {
    let directory = state.directory();
    let mut devices = state.devices();
    settle(state, &directory, &mut devices);
    devices.list()
}

/// The newest pending code, settled.
pub(crate) fn newest_pending(state: &AppState) -> Option<DeviceCodeInfo> {
    let directory = state.directory();
    let mut devices = state.devices();
    settle(state, &directory, &mut devices);
    devices.newest_pending()
}
