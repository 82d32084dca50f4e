//! The authorization endpoint, `GET /{tenant}/oauth2/v2.0/authorize` (auth code flow with PKCE, as MSAL's
//! `acquire_token_interactive` uses it): checks the request, then shows the sign-in page (`routes::login`)
//! or, for a browser already signed in (single sign-on), answers at once.
//!
//! Which errors go where, as on the real service: an unknown tenant or client, or a redirect URI the app did
//! not register (AADSTS50011, quoting the URI), is an error **page** — the browser is never sent to an
//! unverified URI. Everything after the redirect URI is verified goes **to the redirect URI** as `error`,
//! `error_description` (the AADSTS line with trace and correlation ids), `error_uri` and `state`, in the
//! request's `response_mode`: `query` (the default for `code`), `fragment` or `form_post` (an auto-submitting
//! HTML form POSTed to the redirect URI).
//!
//! Redirect URI matching (Learn, "Redirect URI (reply URL) restrictions"): exact (scheme, host, path and
//! query; the path is case-sensitive), except that for `http://localhost` and `http://127.0.0.1` the port is
//! ignored ("Due to ephemeral port ranges … the port component is ignored"), so a native app registering
//! `http://localhost` may listen on any port. A URI of the "Mobile and desktop applications" platform makes
//! the code a public client's; one of the "Web" platform a confidential client's.
//!
//! PKCE: `code_challenge` with `code_challenge_method` `S256` or `plain` (absent means plain); Learn: "The
//! Microsoft identity platform supports both plain and S256". The verifier is checked at redemption
//! (`routes::auth_code`). `prompt`: `login` and `select_account` always show the sign-in page, `consent`
//! the consent page, `none` never shows a page (`login_required` AADSTS50058 without a sign-in,
//! `consent_required` AADSTS65001 without consent). `login_hint` fills in the user name (and picks the
//! single sign-on account only if it names it); `domain_hint` is accepted and has no effect (no federation).

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::auth_codes::{AuthRequest, Challenge, Prompt, ResponseMode};
use crate::directory::AppRegistration;
use crate::error_responses::AadError;
use crate::request_context::Ctx;
use crate::routes::authorize_answer::{Refusal, Target, refuse};
use crate::routes::login;
use crate::routes::request::{Form, resolve_tenant};
use crate::routes::user_flow::{self, Scopes};
use crate::state::AppState;

/// `GET /{t}/oauth2/v2.0/authorize`
pub(crate) async fn authorize(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    Path(t): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = Form::parse(query.unwrap_or_default().as_bytes());
    match check(&state, &t, &params) {
        Ok(request) => login::begin(&state, &ctx, &headers, request),
        Err(refusal) => refuse(&ctx, refusal),
    }
}

/// AADSTS50011 as the real service words it for the authorize endpoint.
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

fn no_reply_address(app_id: &str) -> AadError {
    AadError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        500113,
        format!("No reply address is registered for the application '{app_id}'."),
    )
}

fn bad_request(error: &'static str, code: u32, message: impl Into<String>) -> AadError {
    AadError::new(StatusCode::BAD_REQUEST, error, code, message)
}

/// Whether a loopback `http` URI (`localhost`, `127.0.0.1`), whose port is ignored when matching.
fn is_loopback_http(url: &url::Url) -> bool {
    url.scheme() == "http"
        && match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            _ => false,
        }
}

/// Whether the redirect URI `sent` matches the registered `registered`.
pub(crate) fn redirect_matches(registered: &str, sent: &url::Url) -> bool {
    let Ok(reg) = url::Url::parse(registered) else {
        return false;
    };
    let port_ignored = is_loopback_http(&reg) && is_loopback_http(sent);
    reg.scheme() == sent.scheme()
        && reg.host() == sent.host()
        && (port_ignored || reg.port_or_known_default() == sent.port_or_known_default())
        && reg.path() == sent.path()
        && reg.query() == sent.query()
        && sent.fragment().is_none()
        && sent.username().is_empty()
        && sent.password().is_none()
}

/// Which platform a sent redirect URI is registered under: `Some(true)` "Mobile and desktop", `Some(false)`
/// "Web", `None` not registered.
pub(crate) fn registered_platform(app: &AppRegistration, sent: &str) -> Option<bool> {
    let url = url::Url::parse(sent).ok()?;
    if app
        .public_client_redirect_uris
        .iter()
        .any(|r| redirect_matches(r, &url))
    {
        Some(true)
    } else if app.web_redirect_uris.iter().any(|r| redirect_matches(r, &url)) {
        Some(false)
    } else {
        None
    }
}

fn page_err(e: AadError) -> Refusal {
    Refusal::Page(e)
}

/// Checks an authorization request: the tenant, the client and the redirect URI (errors on a page), then
/// the rest (errors to the redirect URI).
fn check(state: &AppState, segment: &str, params: &Form) -> Result<AuthRequest, Refusal> {
    let resolved = resolve_tenant(state, segment, "invalid_request").map_err(page_err)?;
    let client_id = params
        .get("client_id")
        .ok_or_else(|| page_err(AadError::missing_parameter("client_id")))?;
    let directory = state.directory();
    let (_, app) = user_flow::find_app(&directory, &resolved, client_id).map_err(page_err)?;
    let registered: Vec<&String> = app
        .public_client_redirect_uris
        .iter()
        .chain(&app.web_redirect_uris)
        .collect();
    // Without `redirect_uri` the service uses the app's first registered one.
    let redirect_uri = match params.get("redirect_uri") {
        Some(uri) => uri.to_owned(),
        None => registered
            .first()
            .map(|r| (*r).clone())
            .ok_or_else(|| page_err(no_reply_address(&app.app_id)))?,
    };
    let public_client = registered_platform(app, &redirect_uri)
        .ok_or_else(|| page_err(redirect_mismatch(&redirect_uri, &app.app_id)))?;

    let mut target = Target {
        redirect_uri: redirect_uri.clone(),
        mode: ResponseMode::Query,
        state: params.get("state").map(str::to_owned),
    };
    let to_redirect = |target: &Target, e: AadError| Refusal::Redirect(target.clone(), e);
    target.mode = match params.get("response_mode") {
        None | Some("query") => ResponseMode::Query,
        Some("fragment") => ResponseMode::Fragment,
        Some("form_post") => ResponseMode::FormPost,
        // (unconfirmed: the real code and wording for an unknown response_mode)
        Some(other) => {
            return Err(to_redirect(
                &target,
                bad_request(
                    "invalid_request",
                    900144,
                    format!("The value '{other}' of the parameter 'response_mode' is not supported."),
                ),
            ));
        }
    };
    match params.get("response_type") {
        None => {
            return Err(to_redirect(&target, AadError::missing_parameter("response_type")));
        }
        Some("code") => {}
        Some(other) => {
            // Implicit grant and hybrid flows are not enabled for the emulator's apps.
            return Err(to_redirect(
                &target,
                bad_request(
                    "unsupported_response_type",
                    700054,
                    format!("response_type '{other}' is not enabled for the application."),
                ),
            ));
        }
    }
    let scope = params
        .get("scope")
        .ok_or_else(|| to_redirect(&target, AadError::missing_parameter("scope")))?;
    let tenant_name = match &resolved {
        crate::tenancy::ResolvedTenant::Tenant { id } => directory
            .tenant(id)
            .map_or_else(|| id.clone(), |t| t.display_name.clone()),
        other => other.segment().to_owned(),
    };
    Scopes::parse(scope, &tenant_name).map_err(|e| to_redirect(&target, e))?;
    let challenge = match (params.get("code_challenge"), params.get("code_challenge_method")) {
        (None, _) => None,
        (Some(value), method) => {
            let s256 = match method {
                None | Some("plain") => false,
                Some("S256") => true,
                Some(_) => {
                    return Err(to_redirect(
                        &target,
                        bad_request(
                            "invalid_request",
                            501491,
                            "Invalid code_challenge_method: supported values are 'S256' and 'plain'.",
                        ),
                    ));
                }
            };
            // RFC 7636: 43 to 128 characters (an S256 challenge is always 43).
            if !(43..=128).contains(&value.len()) {
                return Err(to_redirect(
                    &target,
                    bad_request(
                        "invalid_request",
                        501491,
                        "Invalid size of Code_Challenge parameter.",
                    ),
                ));
            }
            Some(Challenge {
                value: value.to_owned(),
                s256,
            })
        }
    };
    let prompt = match params.get("prompt") {
        None => Prompt::Unset,
        Some("login") | Some("create") => Prompt::Login,
        Some("none") => Prompt::None,
        Some("consent") => Prompt::Consent,
        Some("select_account") => Prompt::SelectAccount,
        // (unconfirmed: the real code for an unknown prompt value)
        Some(other) => {
            return Err(to_redirect(
                &target,
                bad_request(
                    "invalid_request",
                    90023,
                    format!("Invalid prompt value '{other}'."),
                ),
            ));
        }
    };
    Ok(AuthRequest {
        client_id: app.app_id.clone(),
        app_name: app.display_name.clone(),
        issued_on: resolved,
        redirect_uri,
        public_client,
        response_mode: target.mode,
        state: target.state,
        nonce: params.get("nonce").map(str::to_owned),
        scope: scope.to_owned(),
        challenge,
        login_hint: params.get("login_hint").map(str::to_owned),
        prompt,
        client_info: params.get("client_info") == Some("1"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(registered: &str, sent: &str) -> bool {
        redirect_matches(registered, &url::Url::parse(sent).unwrap())
    }

    #[test]
    fn loopback_ports_are_ignored_everything_else_is_exact() {
        assert!(matches("http://localhost", "http://localhost:53127"));
        assert!(matches("http://localhost", "http://localhost:53127/"));
        assert!(matches("http://127.0.0.1", "http://127.0.0.1:8400"));
        assert!(!matches("http://localhost", "http://127.0.0.1:8400"));
        assert!(!matches("http://localhost", "http://localhost:8400/callback"));
        assert!(matches("http://localhost/cb", "http://localhost:1/cb"));
        assert!(!matches("http://localhost/cb", "http://localhost:1/CB"));
        assert!(!matches("http://localhost", "https://localhost:8400"));
        assert!(!matches("http://localhost", "http://localhost.evil.example:8400"));
        assert!(!matches("http://localhost", "http://localhost:1/#x"));
        assert!(matches("https://app.example/cb", "https://app.example/cb"));
        assert!(matches("https://app.example/cb", "https://app.example:443/cb"));
        assert!(!matches("https://app.example/cb", "https://app.example:8443/cb"));
        assert!(!matches("https://app.example/cb", "https://app.example/cb?x=1"));
    }
}
