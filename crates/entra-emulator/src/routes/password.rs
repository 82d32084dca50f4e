//! The username/password grant (ROPC, `grant_type=password`), with the checks in this order: tenant
//! segment (AADSTS9001023), app and audience, client authentication, parameters, scopes, user (50034),
//! federated domain and password (50126), account blocks (50057, 50053, 50055, 53003), MFA registration
//! (50079), MFA (50076), consent (65001).

use axum::http::HeaderMap;
use axum::response::Response;

use crate::directory::{Directory, GRAPH_APP_ID};
use crate::error_responses::AadError;
use crate::ids::secret_eq;
use crate::request_context::Ctx;
use crate::routes::request::Form;
use crate::routes::user_flow::{self, AccountBlock, Scopes, SignedIn};
use crate::state::AppState;
use crate::tenancy::ResolvedTenant;

pub(crate) fn password_grant(
    state: &AppState,
    ctx: &Ctx,
    directory: &Directory,
    resolved: &ResolvedTenant,
    headers: &HeaderMap,
    form: &Form,
) -> Result<Response, AadError> {
    if matches!(resolved, ResolvedTenant::Common | ResolvedTenant::Consumers) {
        return Err(AadError::ropc_tenant_not_supported());
    }
    let client_id = user_flow::client_id(form, headers)?;
    let (home, app) = user_flow::find_app(directory, resolved, &client_id)?;
    let auth = user_flow::authenticate_user_flow_client(state, ctx, home, app, form, headers)?;
    let username = form
        .get("username")
        .ok_or_else(|| AadError::missing_parameter("username"))?;
    let password = form
        .get("password")
        .ok_or_else(|| AadError::missing_parameter("password"))?;
    let scope = form
        .get("scope")
        .ok_or_else(|| AadError::missing_parameter("scope"))?;
    let tenant = match resolved {
        ResolvedTenant::Tenant { id } => directory.tenant(id),
        _ => directory.tenant_for_username(username),
    };
    let scopes = Scopes::parse(
        scope,
        tenant.map_or(home.display_name.as_str(), |t| &t.display_name),
    )?;
    let not_found = || {
        let directory_name = tenant.map_or_else(
            || username.rsplit_once('@').map_or(username, |(_, d)| d).to_owned(),
            |t| t.id.clone(),
        );
        AadError::user_not_found(&directory_name)
    };
    let tenant = tenant.ok_or_else(not_found)?;
    let user = tenant.user(username).ok_or_else(not_found)?;
    // A federated user's password is checked by their federation server (WS-Trust), which the emulator does
    // not have: the direct password grant fails as for a wrong password.
    if tenant.is_federated_user(user) || !secret_eq(&user.password, password) {
        return Err(AadError::invalid_credentials());
    }
    if let Some(block) = AccountBlock::of(user) {
        return Err(block.aad_error());
    }
    if user.mfa_registration_required {
        return Err(AadError::mfa_registration_required(GRAPH_APP_ID));
    }
    if user.mfa_required {
        return Err(AadError::mfa_required(GRAPH_APP_ID));
    }
    let consents = state.grants().user_consents(&user.id, &app.app_id);
    let granted = user_flow::grant(app, user, &consents, &scopes)?;
    let signed_in = SignedIn {
        tenant,
        app,
        user,
        mfa: false,
        auth,
    };
    user_flow::issue_user_tokens(state, ctx, &signed_in, &granted, form)
}
