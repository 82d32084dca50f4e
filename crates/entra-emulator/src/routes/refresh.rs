//! The refresh-token grant: opaque tokens issued with `offline_access` are redeemed by the client they were
//! issued to, for the same or other consented scopes, and rotated (the old one stays valid, as Entra's do).
//! Errors, all `invalid_grant`: AADSTS9002313 for a token the emulator did not issue to this client,
//! 700082 after inactivity (or `expire_refresh_tokens`), 50173 after `revoke_refresh_tokens`, 65001 for a
//! scope without consent, and the account blocks of the user.

use axum::http::HeaderMap;
use axum::response::Response;

use crate::directory::{Directory, GRAPH_APP_ID};
use crate::error_responses::AadError;
use crate::grants::RefreshRefusal;
use crate::request_context::Ctx;
use crate::routes::request::Form;
use crate::routes::user_flow::{self, AccountBlock, Scopes, SignedIn};
use crate::state::AppState;
use crate::tenancy::ResolvedTenant;

pub(crate) fn refresh_grant(
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
    let token = form
        .get("refresh_token")
        .ok_or_else(|| AadError::missing_parameter("refresh_token"))?;
    let grant = state
        .grants()
        .use_refresh_token(token, &app.app_id, state.refresh_token_lifetime, ctx.now)
        .map_err(|refusal| match refusal {
            RefreshRefusal::Unknown => AadError::malformed_grant(),
            RefreshRefusal::Revoked { issued_at } => AadError::refresh_token_revoked(issued_at),
            RefreshRefusal::Expired {
                issued_at,
                inactive_secs,
            } => AadError::refresh_token_expired(issued_at, inactive_secs),
        })?;
    if let ResolvedTenant::Tenant { id } = resolved
        && *id != grant.tenant_id
    {
        return Err(AadError::malformed_grant());
    }
    let (tenant, user) = directory
        .tenant(&grant.tenant_id)
        .and_then(|t| t.user(&grant.user_id).map(|u| (t, u)))
        .ok_or_else(AadError::malformed_grant)?;
    if let Some(block) = AccountBlock::of(user) {
        return Err(block.aad_error());
    }
    let mut scopes = match form.get("scope") {
        Some(scope) => Scopes::parse(scope, &tenant.display_name)?,
        None => Scopes {
            graph: grant.graph_scopes.clone(),
            audience: GRAPH_APP_ID,
            ..Scopes::default()
        },
    };
    // The grant already has offline access: refreshing always rotates the refresh token.
    scopes.offline_access = true;
    let consents = state.grants().user_consents(&user.id, &app.app_id);
    let granted = user_flow::grant(app, user, &consents, &scopes)?;
    let signed_in = SignedIn {
        tenant,
        app,
        user,
        mfa: grant.mfa,
        auth,
    };
    user_flow::issue_user_tokens(state, ctx, &signed_in, &granted, form)
}
