//! The admin-consent page, where an administrator grants an app its permissions for the whole tenant (the fix
//! for AADSTS65001): `GET /{tenant}/adminconsent?client_id=…[&redirect_uri=…][&state=…]` (grants the app's
//! configured permissions) and `GET /{tenant}/v2.0/adminconsent?client_id=…&scope=…[&redirect_uri=…][&state=…]`
//! (grants the listed Graph scopes, `.default` meaning the configured ones).
//!
//! The page is server-rendered with every request value escaped, and names the app, the tenant and the
//! permissions. Accept posts back to the same URL, protected like the sign-in page's forms (its session cookie
//! and anti-forgery token, `routes::signin`); it records the consent in the directory (saved with a state
//! directory), so the app's delegated permissions cover every user of the tenant from then on. There is no
//! administrator sign-in: the emulator stands in for it. Then the browser is redirected to `redirect_uri`
//! with `admin_consent=True&tenant=…&state=…` (or `error=access_denied…` on Cancel), as the real service does,
//! or shown a result page when no `redirect_uri` was given. The emulator's apps register no reply URLs, so
//! only loopback ones (`http://localhost…`, `http://127.0.0.1…`, `http://[::1]…`, any port) are accepted;
//! others get AADSTS50011. Errors (unknown tenant or client id, …) are error pages with the real AADSTS code.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::directory::{GRAPH_APP_ID, GRAPH_RESOURCE};
use crate::error_responses::AadError;
use crate::formats::aad_timestamp;
use crate::ids::guid_eq;
use crate::request_context::Ctx;
use crate::routes::request::{Form, resolve_tenant};
use crate::routes::signin::{accept_post, cookie_token, esc, hidden_token, page, scope_description};
use crate::routes::user_flow::find_app;
use crate::state::AppState;
use crate::state_dir::DirectoryFile;

/// Which endpoint was used: v1 grants the configured permissions, v2 the `scope` parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// The OIDC scopes: consented implicitly, never listed.
const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// A checked request: what would be consented, for which app, in which tenant, and where to go afterwards.
#[derive(Debug)]
struct Consent {
    tenant_id: String,
    tenant_name: String,
    client_id: String,
    app_name: String,
    /// Delegated Graph permissions that will cover every user.
    delegated: Vec<String>,
    /// Application permissions the app holds (listed for the administrator's information).
    application: Vec<String>,
    redirect: Option<url::Url>,
    state: Option<String>,
    /// The `scope` parameter as sent (v2), echoed in the redirect.
    scope: Option<String>,
}

/// Checks the request parameters (from the query on GET, from the form on POST) against the directory.
fn check(state: &AppState, segment: &str, version: Version, params: &Form) -> Result<Consent, AadError> {
    let resolved = resolve_tenant(state, segment, "invalid_tenant")?;
    let client_id = params
        .get("client_id")
        .ok_or_else(|| AadError::missing_parameter("client_id"))?;
    let directory = state.directory();
    let (tenant, app) = find_app(&directory, &resolved, client_id)?;
    let redirect = params
        .get("redirect_uri")
        .map(|uri| loopback_redirect(uri).ok_or_else(|| redirect_mismatch(uri, &app.app_id)))
        .transpose()?;
    let scope = match version {
        Version::V1 => None,
        Version::V2 => Some(
            params
                .get("scope")
                .ok_or_else(|| AadError::missing_parameter("scope"))?,
        ),
    };
    let delegated = match scope {
        None => app.delegated_permissions.clone(),
        Some(scope) => requested_graph_scopes(scope, &app.delegated_permissions, &tenant.display_name)?,
    };
    Ok(Consent {
        tenant_id: tenant.id.clone(),
        tenant_name: tenant.display_name.clone(),
        client_id: app.app_id.clone(),
        app_name: app.display_name.clone(),
        delegated,
        application: app.app_roles.clone(),
        redirect,
        state: params.get("state").map(str::to_owned),
        scope: scope.map(str::to_owned),
    })
}

/// The Graph permissions named by a v2 `scope` parameter (`User.Read`, `https://graph.microsoft.com/User.Read`,
/// `…/.default` for the configured ones; OIDC scopes skipped). Another resource gets AADSTS500011.
fn requested_graph_scopes(
    scope: &str,
    configured: &[String],
    tenant_name: &str,
) -> Result<Vec<String>, AadError> {
    let mut scopes: Vec<String> = Vec::new();
    let mut add = |s: &str| {
        if !scopes.iter().any(|have| have.eq_ignore_ascii_case(s)) {
            scopes.push(s.to_owned());
        }
    };
    for requested in scope.split_whitespace() {
        if OIDC_SCOPES.iter().any(|o| o.eq_ignore_ascii_case(requested)) {
            continue;
        }
        let lower = requested.to_ascii_lowercase();
        // Graph's scopes may be qualified by its URI or its app id.
        let name = [format!("{GRAPH_RESOURCE}/"), format!("{GRAPH_APP_ID}/")]
            .iter()
            .find_map(|prefix| {
                lower
                    .starts_with(prefix.as_str())
                    .then(|| &requested[prefix.len()..])
            })
            .unwrap_or(requested);
        if name.contains('/') {
            let resource = requested.rsplit_once('/').map_or(requested, |(r, _)| r);
            return Err(AadError::resource_not_found(resource, tenant_name));
        }
        if name.eq_ignore_ascii_case(".default") {
            configured.iter().for_each(|c| add(c));
        } else if !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            add(name);
        } else {
            return Err(AadError::invalid_scope(requested));
        }
    }
    Ok(scopes)
}

/// A redirect URI the emulator treats as registered: loopback only, as its apps register none.
fn loopback_redirect(uri: &str) -> Option<url::Url> {
    let url = url::Url::parse(uri).ok()?;
    let loopback = match url.host()? {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    };
    (matches!(url.scheme(), "http" | "https") && loopback && url.fragment().is_none()).then_some(url)
}

/// AADSTS50011, the real service's answer for a reply URL the app did not register.
fn redirect_mismatch(uri: &str, app_id: &str) -> AadError {
    AadError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        50011,
        format!(
            "The redirect URI '{uri}' specified in the request does not match the redirect URIs configured for \
             the application '{app_id}'. Make sure the redirect URI sent in the request matches one added to \
             your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn \
             more about how to fix this."
        ),
    )
}

/// The sign-in service's error page: the AADSTS line and the ids support asks for.
pub(crate) fn error_page(ctx: &Ctx, e: &AadError) -> Response {
    let body = format!(
        "<h1>Sorry, but we're having trouble signing you in.</h1>\
         <p class=\"error\" id=\"error\" role=\"alert\">{}</p>\
         <p class=\"note\">Request Id: {}<br>Correlation Id: {}<br>Timestamp: {}</p>",
        esc(&format!("AADSTS{}: {}", e.code, e.message)),
        esc(&ctx.trace_id),
        esc(&ctx.correlation_id),
        esc(&aad_timestamp(ctx.now))
    );
    page(e.status, "Sign in to your account", &body, None)
}

fn hidden(name: &str, value: Option<&str>) -> String {
    value
        .map(|v| format!("<input type=\"hidden\" name=\"{name}\" value=\"{}\">", esc(v)))
        .unwrap_or_default()
}

fn consent_page(consent: &Consent, action: &str, token: &str, set_cookie: bool) -> Response {
    let delegated: String = if consent.delegated.is_empty() {
        "<li class=\"note\">none</li>".to_owned()
    } else {
        consent.delegated.iter().map(|s| scope_description(s)).collect()
    };
    let application: String = consent
        .application
        .iter()
        .map(|r| format!("<li><code>{}</code></li>", esc(r)))
        .collect();
    let application = if application.is_empty() {
        String::new()
    } else {
        format!(
            "<p>Application permissions it holds:</p><ul id=\"application-permissions\">{application}</ul>"
        )
    };
    let body = format!(
        "<h1>Permissions requested</h1><p>Accept for your organization</p>\
         <p><strong id=\"app\">{app}</strong> <span class=\"note\" id=\"client-id\">{client_id}</span></p>\
         <p>This app would like to, for every user:</p><ul id=\"permissions\">{delegated}</ul>{application}\
         <p>If you accept, this app gets access to the specified resources for all users in \
         <strong id=\"tenant\">{tenant}</strong>. No one else will be prompted to review these permissions.</p>\
         <p class=\"note\">The emulator stands in for the administrator's sign-in.</p>\
         <form method=\"post\" action=\"{action}\">{csrf}{client_id_field}{redirect}{state}{scope}\
         <button type=\"submit\" id=\"accept\" name=\"action\" value=\"accept\">Accept</button>\
         <button type=\"submit\" id=\"cancel\" class=\"secondary\" name=\"action\" value=\"cancel\">Cancel</button>\
         </form>",
        app = esc(&consent.app_name),
        client_id = esc(&consent.client_id),
        tenant = esc(&consent.tenant_name),
        action = esc(action),
        csrf = hidden_token(token),
        client_id_field = hidden("client_id", Some(&consent.client_id)),
        redirect = hidden("redirect_uri", consent.redirect.as_ref().map(url::Url::as_str)),
        state = hidden("state", consent.state.as_deref()),
        scope = hidden("scope", consent.scope.as_deref()),
    );
    page(
        StatusCode::OK,
        "Permissions requested",
        &body,
        set_cookie.then_some(token),
    )
}

/// The browser's sign-in session (created if it has none): its token protects the form.
fn session(state: &AppState, headers: &HeaderMap) -> (String, bool) {
    let mut sessions = state.sessions();
    match cookie_token(headers) {
        Some(token) if sessions.is_live(&token) => (token, false),
        _ => (sessions.create(), true),
    }
}

fn show(
    state: &AppState,
    ctx: &Ctx,
    headers: &HeaderMap,
    (tenant, path): (&str, &str),
    version: Version,
    query: Option<String>,
) -> Response {
    let params = Form::parse(query.unwrap_or_default().as_bytes());
    match check(state, tenant, version, &params) {
        Ok(consent) => {
            let (token, new) = session(state, headers);
            // The form posts back to the URL it came from (its query travels in hidden fields).
            consent_page(&consent, path, &token, new)
        }
        Err(e) => error_page(ctx, &e),
    }
}

/// `GET /{tenant}/adminconsent`.
pub(crate) async fn get_v1(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    ctx: Ctx,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(query): RawQuery,
) -> Response {
    show(&state, &ctx, &headers, (&tenant, uri.path()), Version::V1, query)
}

/// `GET /{tenant}/v2.0/adminconsent`.
pub(crate) async fn get_v2(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    ctx: Ctx,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(query): RawQuery,
) -> Response {
    show(&state, &ctx, &headers, (&tenant, uri.path()), Version::V2, query)
}

/// `POST /{tenant}/adminconsent`: Accept or Cancel.
pub(crate) async fn post_v1(
    State(state): State<Arc<AppState>>,
    Extension(file): Extension<DirectoryFile>,
    Path(tenant): Path<String>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    decide(&state, &file, &tenant, Version::V1, &ctx, &headers, &body)
}

/// `POST /{tenant}/v2.0/adminconsent`: Accept or Cancel.
pub(crate) async fn post_v2(
    State(state): State<Arc<AppState>>,
    Extension(file): Extension<DirectoryFile>,
    Path(tenant): Path<String>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    decide(&state, &file, &tenant, Version::V2, &ctx, &headers, &body)
}

fn decide(
    state: &AppState,
    file: &DirectoryFile,
    tenant: &str,
    version: Version,
    ctx: &Ctx,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let form = match accept_post(state, ctx, headers, body) {
        Ok((form, _)) => form,
        Err(reason) => {
            tracing::info!("admin-consent POST refused: {reason}");
            let body = format!(
                "<h1>Forbidden</h1><p class=\"error\" id=\"error\">{}</p>",
                esc(&format!(
                    "This request did not come from the admin-consent page ({reason}). Open the page again."
                ))
            );
            return page(StatusCode::FORBIDDEN, "Forbidden", &body, None);
        }
    };
    let consent = match check(state, tenant, version, &form) {
        Ok(consent) => consent,
        Err(e) => return error_page(ctx, &e),
    };
    if form.get("action") != Some("accept") {
        return declined(&consent);
    }
    let snapshot = {
        let mut directory = state
            .directory
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let app = directory
            .tenants
            .iter_mut()
            .filter(|t| t.id == consent.tenant_id)
            .flat_map(|t| t.apps.iter_mut())
            .find(|a| guid_eq(&a.app_id, &consent.client_id));
        let Some(app) = app else {
            // Removed between the check and now: nothing to grant.
            return error_page(
                ctx,
                &AadError::app_not_found(&consent.client_id, &consent.tenant_name),
            );
        };
        app.admin_consent_granted = true;
        for scope in &consent.delegated {
            if !app.has_delegated_permission(scope) {
                app.delegated_permissions.push(scope.clone());
            }
        }
        directory.clone()
    };
    tracing::info!(client_id = %consent.client_id, tenant = %consent.tenant_id, "admin consent granted");
    if let Err(e) = file.save(&snapshot) {
        tracing::warn!("cannot save the directory after an admin consent: {e}");
    }
    match &consent.redirect {
        Some(redirect) => {
            let mut url = redirect.clone();
            {
                let mut query = url.query_pairs_mut();
                query.append_pair("admin_consent", "True");
                query.append_pair("tenant", &consent.tenant_id);
                if let Some(scope) = &consent.scope {
                    query.append_pair("scope", scope);
                }
                if let Some(s) = &consent.state {
                    query.append_pair("state", s);
                }
            }
            redirect_to(&url)
        }
        None => {
            let body = format!(
                "<h1 id=\"done\">Permissions granted</h1><p><strong>{}</strong> now has these permissions for \
                 every user in <strong>{}</strong>. You may now close this window.</p>",
                esc(&consent.app_name),
                esc(&consent.tenant_name)
            );
            page(StatusCode::OK, "Permissions granted", &body, None)
        }
    }
}

/// Cancel: nothing is granted; the client hears `access_denied` (AADSTS65004).
fn declined(consent: &Consent) -> Response {
    match &consent.redirect {
        Some(redirect) => {
            let mut url = redirect.clone();
            {
                let mut query = url.query_pairs_mut();
                query.append_pair("error", "access_denied");
                query.append_pair(
                    "error_description",
                    "AADSTS65004: User declined to consent to access the app.",
                );
                if let Some(s) = &consent.state {
                    query.append_pair("state", s);
                }
            }
            redirect_to(&url)
        }
        None => {
            let body = format!(
                "<h1 id=\"done\">Consent declined</h1><p>Nothing was granted to <strong>{}</strong>. You may now \
                 close this window.</p>",
                esc(&consent.app_name)
            );
            page(StatusCode::OK, "Consent declined", &body, None)
        }
    }
}

fn redirect_to(url: &url::Url) -> Response {
    let mut resp = StatusCode::FOUND.into_response();
    if let Ok(location) = HeaderValue::from_str(url.as_str()) {
        resp.headers_mut().insert(header::LOCATION, location);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_redirects_count_as_registered() {
        assert!(loopback_redirect("http://localhost:8400/callback").is_some());
        assert!(loopback_redirect("http://127.0.0.1/").is_some());
        assert!(loopback_redirect("https://[::1]:9/x").is_some());
        assert!(loopback_redirect("https://evil.example/").is_none());
        assert!(loopback_redirect("http://localhost.evil.example/").is_none());
        assert!(loopback_redirect("javascript:alert(1)").is_none());
        assert!(loopback_redirect("http://localhost/#frag").is_none());
    }

    #[test]
    fn v2_scopes_are_graph_permissions() {
        let configured = ["User.Read".to_owned(), "User.ReadBasic.All".to_owned()];
        let scopes = |s: &str| requested_graph_scopes(s, &configured, "Contoso");
        assert_eq!(
            scopes("openid https://graph.microsoft.com/Mail.Read user.read").unwrap(),
            ["Mail.Read", "user.read"]
        );
        assert_eq!(
            scopes("https://graph.microsoft.com/.default").unwrap(),
            configured
        );
        assert_eq!(
            scopes("https://contoso.example/api/Read").unwrap_err().code,
            500011
        );
        assert_eq!(scopes("User.Read<script>").unwrap_err().code, 70011);
    }
}
