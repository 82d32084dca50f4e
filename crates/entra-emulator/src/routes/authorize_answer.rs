//! The authorization endpoint's answers, shared by the endpoint (`routes::authorize`) and its sign-in pages
//! (`routes::login`): a refusal on the error page or at the redirect URI, the code, in the request's response
//! mode (`query`, `fragment`, or an auto-submitting `form_post` page), and the browser's sign-in session.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth_codes::{AuthRequest, ResponseMode};
use crate::error_responses::AadError;
use crate::formats::aad_timestamp;
use crate::ids::new_guid;
use crate::request_context::Ctx;
use crate::routes::admin_consent::error_page;
use crate::routes::signin::{cookie_token, esc};
use crate::state::AppState;

/// Where the answer to a request goes once its redirect URI is verified.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub redirect_uri: String,
    pub mode: ResponseMode,
    pub state: Option<String>,
}

impl Target {
    pub(crate) fn of(request: &AuthRequest) -> Self {
        Self {
            redirect_uri: request.redirect_uri.clone(),
            mode: request.response_mode,
            state: request.state.clone(),
        }
    }
}

/// Why a request is refused: on an error page, or at the redirect URI.
pub(crate) enum Refusal {
    Page(AadError),
    Redirect(Target, AadError),
}

/// Renders a refusal (logged without any value from the request).
pub(crate) fn refuse(ctx: &Ctx, refusal: Refusal) -> Response {
    match refusal {
        Refusal::Page(e) => {
            tracing::info!(code = e.code, "authorization request refused on the error page");
            error_page(ctx, &e)
        }
        Refusal::Redirect(target, e) => {
            tracing::info!(
                code = e.code,
                error = e.error,
                "authorization error sent to the redirect URI"
            );
            error_answer(ctx, &target, &e)
        }
    }
}

/// The successful answer: `code`, `state`, `session_state` at the redirect URI.
pub(crate) fn code_answer(target: &Target, code: &str, client_info: Option<String>) -> Response {
    let mut params: Vec<(&str, String)> = vec![("code", code.to_owned())];
    if let Some(info) = client_info {
        params.push(("client_info", info));
    }
    if let Some(s) = &target.state {
        params.push(("state", s.clone()));
    }
    params.push(("session_state", new_guid()));
    answer(target, &params)
}

/// An OAuth error at the redirect URI.
pub(crate) fn error_answer(ctx: &Ctx, target: &Target, e: &AadError) -> Response {
    let description = format!(
        "AADSTS{}: {}\r\nTrace ID: {}\r\nCorrelation ID: {}\r\nTimestamp: {}",
        e.code,
        e.message,
        ctx.trace_id,
        ctx.correlation_id,
        aad_timestamp(ctx.now)
    );
    let mut params: Vec<(&str, String)> = vec![
        ("error", e.error.to_owned()),
        ("error_description", description),
        (
            "error_uri",
            format!("https://login.microsoftonline.com/error?code={}", e.code),
        ),
    ];
    if let Some(s) = &target.state {
        params.push(("state", s.clone()));
    }
    answer(target, &params)
}

/// Sends `params` to the redirect URI in the response mode.
fn answer(target: &Target, params: &[(&str, String)]) -> Response {
    match target.mode {
        ResponseMode::FormPost => form_post(&target.redirect_uri, params),
        ResponseMode::Query | ResponseMode::Fragment => {
            let Ok(mut url) = url::Url::parse(&target.redirect_uri) else {
                return (StatusCode::BAD_REQUEST, "bad redirect URI").into_response();
            };
            if target.mode == ResponseMode::Query {
                let mut query = url.query_pairs_mut();
                for (k, v) in params {
                    query.append_pair(k, v);
                }
            } else {
                let fragment: String = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
                    .finish();
                url.set_fragment(Some(&fragment));
            }
            let mut resp = StatusCode::FOUND.into_response();
            if let Ok(location) = HeaderValue::from_str(url.as_str()) {
                resp.headers_mut().insert(header::LOCATION, location);
            }
            resp.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store, no-cache"),
            );
            resp
        }
    }
}

/// `response_mode=form_post`: the page the real service sends, a hidden form submitted by script (with a
/// button when scripts are off).
fn form_post(redirect_uri: &str, params: &[(&str, String)]) -> Response {
    let inputs: String = params
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\" />",
                esc(k),
                esc(v)
            )
        })
        .collect();
    let html = format!(
        "<html><head><title>Working...</title></head><body><form method=\"POST\" name=\"hiddenform\" \
         action=\"{}\">{inputs}<noscript><p>Script is disabled. Click Submit to continue.</p><input \
         type=\"submit\" value=\"Submit\" /></noscript></form><script>document.forms[0].submit();</script>\
         </body></html>",
        esc(redirect_uri)
    );
    let mut resp = (StatusCode::OK, html).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        // The one inline script is allowed by its hash.
        HeaderValue::from_static(
            "default-src 'none'; script-src 'sha256-8lDeP0UDwCO6/RhblgeH/ctdBzjVpJxrXizsnIk3cEQ='; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// The browser's sign-in session token, if it has a live one.
pub(crate) fn live_session(state: &AppState, headers: &HeaderMap) -> Option<String> {
    cookie_token(headers).filter(|t| state.sessions().is_live(t))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_form_post_script_hash_is_the_scripts() {
        use base64::Engine as _;
        use sha2::{Digest as _, Sha256};
        let hash =
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"document.forms[0].submit();"));
        assert_eq!(hash, "8lDeP0UDwCO6/RhblgeH/ctdBzjVpJxrXizsnIk3cEQ=");
    }
}
