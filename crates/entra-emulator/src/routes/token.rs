//! The v2.0 token endpoint: checks the tenant and the grant type, serves the client-credentials grant
//! itself and hands the user grants to `device`, `password` and `refresh`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::directory::{AppRegistration, GRAPH_APP_ID, GRAPH_RESOURCE, MSA_TENANT_ID, Tenant};
use crate::error_responses::{AadError, sts_headers};
use crate::ids::{guid_eq, random_b64url};
use crate::jwt;
use crate::request_context::Ctx;
use crate::routes::client_auth::{ClientAuth, authenticate_client, client_credentials_of};
use crate::routes::request::Form;
use crate::state::AppState;
use crate::tenancy::{ResolvedTenant, TenantSegment};

type Shared = State<Arc<AppState>>;

#[derive(Serialize)]
struct TokenResponse<'a> {
    token_type: &'static str,
    expires_in: u64,
    ext_expires_in: u64,
    access_token: &'a str,
}

/// Claims of an app-only access token for a v1 resource such as Microsoft Graph (key order as the real
/// service emits them).
#[derive(Serialize)]
struct AppTokenClaims<'a> {
    aud: &'a str,
    iss: String,
    iat: i64,
    nbf: i64,
    exp: i64,
    aio: String,
    app_displayname: &'a str,
    appid: &'a str,
    appidacr: &'static str,
    idp: String,
    idtyp: &'static str,
    oid: &'a str,
    rh: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    roles: Option<&'a [String]>,
    sub: &'a str,
    tenant_region_scope: &'static str,
    tid: &'a str,
    uti: String,
    ver: &'static str,
}

/// `GET /{t}/oauth2/v2.0/token`: the real endpoint answers AADSTS900561.
pub(crate) async fn token_wrong_method(ctx: Ctx, method: Method) -> Response {
    AadError::post_only(method.as_str()).into_response_with(&ctx)
}

/// `POST /{t}/oauth2/v2.0/token`
pub(crate) async fn token(
    State(state): Shared,
    mut ctx: Ctx,
    Path(t): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    ctx.adopt_body_client_request_id(form.get("client-request-id"));
    match token_inner(&state, &ctx, &t, &headers, &form) {
        Ok(resp) => resp,
        Err(e) => {
            tracing::info!(
                tenant = %t,
                code = e.code,
                error = e.error,
                correlation_id = %ctx.correlation_id,
                "token request rejected"
            );
            e.into_response_with(&ctx)
        }
    }
}

fn token_inner(
    state: &AppState,
    ctx: &Ctx,
    t: &str,
    headers: &HeaderMap,
    form: &Form,
) -> Result<Response, AadError> {
    let segment = TenantSegment::parse(t);
    if let TenantSegment::Invalid(s) = &segment {
        return Err(AadError::invalid_tenant_syntax(s));
    }
    let directory = state.directory();
    let tenant = match &segment {
        TenantSegment::Specific(s) => Some(
            directory
                .tenant(s)
                .ok_or_else(|| AadError::tenant_not_found(s, "invalid_request"))?,
        ),
        _ => None,
    };
    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| AadError::missing_parameter("grant_type"))?;
    let resolved = match (&segment, tenant) {
        (_, Some(t)) => ResolvedTenant::Tenant { id: t.id.clone() },
        (TenantSegment::Organizations, _) => ResolvedTenant::Organizations,
        (TenantSegment::Consumers, _) => ResolvedTenant::Consumers,
        _ => ResolvedTenant::Common,
    };
    match grant_type {
        "client_credentials" => {
            let credentials = client_credentials_of(form, headers);
            let client_id = credentials
                .client_id
                .ok_or_else(|| AadError::missing_parameter("client_id"))?;
            let tenant = match (&segment, tenant) {
                (_, Some(t)) => t,
                (TenantSegment::Consumers, _) => {
                    return Err(AadError::app_not_found(&client_id, MSA_TENANT_ID));
                }
                _ => return Err(AadError::no_tenant_information()),
            };
            client_credentials(
                state,
                ctx,
                tenant,
                &client_id,
                credentials.secret.as_deref(),
                form,
            )
        }
        DEVICE_CODE_GRANT | "device_code" => {
            super::device::redeem(state, ctx, &directory, &resolved, headers, form)
        }
        "password" => super::password::password_grant(state, ctx, &directory, &resolved, headers, form),
        "refresh_token" => super::refresh::refresh_grant(state, ctx, &directory, &resolved, headers, form),
        "authorization_code" => super::auth_code::redeem(state, ctx, &directory, &resolved, headers, form),
        other => Err(AadError::unsupported_grant_type(other)),
    }
}

/// The RFC 8628 grant type (MSAL.NET sends the short `device_code`, which is accepted too).
pub(crate) const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Validates a client-credentials scope: exactly one resource, as `<resource>/.default`. Returns the
/// resource as written.
fn client_credentials_resource(scope: &str) -> Result<String, AadError> {
    let tokens: Vec<&str> = scope.split_whitespace().collect();
    if tokens.is_empty() {
        return Err(AadError::missing_parameter("scope"));
    }
    let mut resources: Vec<&str> = Vec::new();
    for tok in &tokens {
        let bad_char = tok
            .chars()
            .any(|c| c.is_control() || matches!(c, '"' | '<' | '>' | '\\' | '{' | '}' | '|' | '^' | '`'));
        if bad_char {
            return Err(AadError::invalid_scope(scope));
        }
        match tok.strip_suffix("/.default") {
            Some("") => return Err(AadError::invalid_scope(scope)),
            Some(resource) => resources.push(resource),
            None if tok.eq_ignore_ascii_case(".default") => return Err(AadError::invalid_scope(scope)),
            None => return Err(AadError::scope_requires_default(tok)),
        }
    }
    let normalise = |r: &str| r.trim_end_matches('/').to_ascii_lowercase();
    let first = resources.first().copied().unwrap_or_default();
    if resources.iter().any(|r| normalise(r) != normalise(first)) {
        return Err(AadError::multiple_resources(scope));
    }
    Ok(first.to_owned())
}

/// The audience of a token for `resource`, if the resource exists.
fn resolve_resource(_tenant: &Tenant, resource: &str) -> Option<&'static str> {
    let r = resource.trim_end_matches('/');
    if r.eq_ignore_ascii_case(GRAPH_RESOURCE) {
        Some(GRAPH_RESOURCE)
    } else if guid_eq(r, GRAPH_APP_ID) {
        Some(GRAPH_APP_ID)
    } else {
        None
    }
}

fn client_credentials(
    state: &AppState,
    ctx: &Ctx,
    tenant: &Tenant,
    client_id: &str,
    secret: Option<&str>,
    form: &Form,
) -> Result<Response, AadError> {
    let app = tenant
        .app_by_client_id(client_id)
        .ok_or_else(|| AadError::app_not_found(client_id, &tenant.display_name))?;
    let scope = form
        .get("scope")
        .ok_or_else(|| AadError::missing_parameter("scope"))?;
    let resource = client_credentials_resource(scope)?;
    let auth = authenticate_client(state, ctx, tenant, app, secret, form)?;
    let audience = resolve_resource(tenant, &resource)
        .ok_or_else(|| AadError::resource_not_found(&resource, &tenant.display_name))?;
    issue_app_token(state, ctx, tenant, app, audience, auth)
}

fn issue_app_token(
    state: &AppState,
    ctx: &Ctx,
    tenant: &Tenant,
    app: &AppRegistration,
    audience: &str,
    auth: ClientAuth,
) -> Result<Response, AadError> {
    let now = ctx.now.unix_timestamp();
    let lifetime = state.token_lifetime.as_secs();
    let lifetime_i64 = i64::try_from(lifetime).unwrap_or(i64::MAX / 2);
    let claims = AppTokenClaims {
        aud: audience,
        iss: format!("https://sts.windows.net/{}/", tenant.id),
        iat: now - 300,
        nbf: now - 300,
        exp: now.saturating_add(lifetime_i64),
        aio: random_b64url(48),
        app_displayname: &app.display_name,
        appid: &app.app_id,
        appidacr: auth.appidacr(),
        idp: format!("https://sts.windows.net/{}/", tenant.id),
        idtyp: "app",
        oid: &app.service_principal_id,
        rh: format!("0.A{}", random_b64url(42)),
        roles: (!app.app_roles.is_empty()).then_some(app.app_roles.as_slice()),
        sub: &app.service_principal_id,
        tenant_region_scope: "WW",
        tid: &tenant.id,
        uti: random_b64url(16),
        ver: "1.0",
    };
    let access_token = jwt::encode(&state.signing_key, &claims, true).map_err(|e| {
        tracing::error!("cannot sign a token: {e}");
        AadError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            90033,
            "A transient error has occurred. Please try again.",
        )
    })?;
    tracing::info!(
        client_id = %app.app_id,
        tenant = %tenant.id,
        audience,
        appidacr = auth.appidacr(),
        "issued app-only access token"
    );
    let body = TokenResponse {
        token_type: "Bearer",
        expires_in: lifetime,
        ext_expires_in: lifetime,
        access_token: &access_token,
    };
    let mut resp = (StatusCode::OK, serde_json::to_string(&body).unwrap_or_default()).into_response();
    sts_headers(&mut resp, ctx, "no-store, no-cache");
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cc_scope_rules() {
        assert_eq!(
            client_credentials_resource("https://graph.microsoft.com/.default")
                .ok()
                .as_deref(),
            Some("https://graph.microsoft.com")
        );
        assert_eq!(
            client_credentials_resource(
                "https://graph.microsoft.com/.default https://graph.microsoft.com//.default"
            )
            .ok()
            .as_deref(),
            Some("https://graph.microsoft.com")
        );
        assert_eq!(
            client_credentials_resource("User.Read").err().map(|e| e.code),
            Some(1002012)
        );
        assert_eq!(
            client_credentials_resource("https%3A%2F%2Fgraph.microsoft.com%2F.default")
                .err()
                .map(|e| e.code),
            Some(1002012)
        );
        assert_eq!(
            client_credentials_resource("/.default").err().map(|e| e.code),
            Some(70011)
        );
        assert_eq!(
            client_credentials_resource("https://x/.default\"")
                .err()
                .map(|e| e.code),
            Some(70011)
        );
        assert_eq!(
            client_credentials_resource(
                "https://graph.microsoft.com/.default https://management.azure.com/.default"
            )
            .err()
            .map(|e| e.code),
            Some(700022)
        );
        assert_eq!(
            client_credentials_resource("  ").err().map(|e| e.code),
            Some(900144)
        );
    }
}
