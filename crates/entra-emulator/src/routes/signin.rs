//! The device-code sign-in page, `GET /devicelogin` (what `verification_uri` points at): plain
//! server-rendered HTML that works without JavaScript. Steps: enter the code → sign in with a directory
//! user's name and password → (MFA users) an emulated second factor → consent (Accept / Decline) → done.
//!
//! Every value that came from a request is HTML-escaped. Forgery protection: each browser session has a
//! random token, held in an `HttpOnly; Secure; SameSite=Strict` cookie and repeated in a hidden form field;
//! every POST must carry both, equal (compared in constant time), and name a live session, and must not
//! come from another origin (`Origin` header), else it gets 403. The admin-consent page
//! (`routes::admin_consent`) protects its form with the same session, cookie and checks.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::device_codes::DeviceCodeStatus;
use crate::ids::secret_eq;
use crate::request_context::Ctx;
use crate::routes::device::{self, ApproveError, SignInError};
use crate::routes::request::Form;
use crate::sessions::Step;
use crate::state::AppState;

/// Session cookie; `__Host-` makes browsers insist on `Secure`, `Path=/` and no `Domain`.
const COOKIE: &str = "__Host-emulator-devicelogin";
const CSRF_FIELD: &str = "csrf_token";

/// The session token from the `Cookie` header, if any.
pub(crate) fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Escapes text for HTML element content and double-quoted attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:'Segoe UI',Helvetica,Arial,sans-serif;background:#f2f2f2;margin:0}\
main{max-width:440px;margin:8vh auto;background:#fff;padding:44px;box-shadow:0 2px 6px rgba(0,0,0,.2)}\
h1{font-size:1.5rem;font-weight:600;margin:0 0 16px}label{display:block;margin:12px 0 4px}\
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:6px 0;border:0;\
border-bottom:1px solid #666;font-size:1rem}button{margin:20px 8px 0 0;padding:6px 24px;font-size:1rem;\
border:0;background:#0067b8;color:#fff}button.secondary{background:#ccc;color:#000}\
.error{color:#e81123}.note{color:#666;font-size:.85rem}";

/// A complete page; `body` must already be escaped.
pub(crate) fn page(status: StatusCode, title: &str, body: &str, set_cookie: Option<&str>) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\"><title>{} - Entra emulator</title><style>{STYLE}</style>\
         </head><body><main><p class=\"note\">Entra emulator &middot; Contoso sign-in</p>{body}</main></body>\
         </html>\n",
        esc(title)
    );
    let mut resp = (status, html).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    // Not `no-referrer`: with it browsers send `Origin: null` on the page's own form posts.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(token) = set_cookie
        && let Ok(v) = HeaderValue::from_str(&format!(
            "{COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict"
        ))
    {
        h.insert(header::SET_COOKIE, v);
    }
    resp
}

fn error_line(message: Option<&str>) -> String {
    message
        .map(|m| format!("<p class=\"error\" id=\"error\" role=\"alert\">{}</p>", esc(m)))
        .unwrap_or_default()
}

pub(crate) fn hidden_token(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{CSRF_FIELD}\" value=\"{}\">",
        esc(token)
    )
}

fn code_page(token: &str, typed: &str, error: Option<&str>, set_cookie: bool) -> Response {
    let body = format!(
        "<h1>Enter code</h1><p>Enter the code displayed on your app or device.</p>{}\
         <form method=\"post\" action=\"/devicelogin\">{}<label for=\"otc\">Code</label>\
         <input type=\"text\" id=\"otc\" name=\"otc\" value=\"{}\" autocomplete=\"off\" autofocus>\
         <button type=\"submit\" id=\"next\">Next</button></form>",
        error_line(error),
        hidden_token(token),
        esc(typed)
    );
    page(StatusCode::OK, "Enter code", &body, set_cookie.then_some(token))
}

fn sign_in_page(token: &str, app: &str, username: &str, error: Option<&str>) -> Response {
    let body = format!(
        "<h1>Sign in</h1><p>to continue to <strong id=\"app\">{}</strong></p>{}\
         <form method=\"post\" action=\"/devicelogin/signin\">{}\
         <label for=\"username\">Email, phone, or Skype</label>\
         <input type=\"text\" id=\"username\" name=\"username\" value=\"{}\" autocomplete=\"username\" autofocus>\
         <label for=\"password\">Password</label>\
         <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\">\
         <button type=\"submit\" id=\"signin\">Sign in</button></form>",
        esc(app),
        error_line(error),
        hidden_token(token),
        esc(username)
    );
    page(StatusCode::OK, "Sign in to your account", &body, None)
}

fn verify_page(token: &str, username: &str) -> Response {
    let body = format!(
        "<h1>Verify your identity</h1><p><strong>{}</strong> must complete multi-factor authentication.</p>\
         <p class=\"note\">The emulator stands in for the second factor (an authenticator app, a text \
         message): select Verify to approve the sign-in request.</p>\
         <form method=\"post\" action=\"/devicelogin/verify\">{}\
         <button type=\"submit\" id=\"verify\">Verify</button></form>",
        esc(username),
        hidden_token(token)
    );
    page(StatusCode::OK, "Verify your identity", &body, None)
}

/// A readable line per requested scope (what the real consent page lists).
pub(crate) fn scope_description(scope: &str) -> String {
    let name = scope.rsplit('/').next().unwrap_or(scope);
    let text = match name.to_ascii_lowercase().as_str() {
        "openid" => "Sign you in",
        "profile" => "View your basic profile",
        "email" => "View your email address",
        "offline_access" => "Maintain access to data you have given it access to",
        "user.read" => "Sign you in and read your profile",
        "user.readbasic.all" => "Read all users' basic profiles",
        "user.read.all" => "Read all users' full profiles",
        ".default" => "Everything the app has been granted",
        _ => "",
    };
    if text.is_empty() {
        format!("<li><code>{}</code></li>", esc(name))
    } else {
        format!(
            "<li>{} <span class=\"note\">({})</span></li>",
            esc(text),
            esc(name)
        )
    }
}

fn consent_page(token: &str, app: &str, username: &str, scopes: &[String]) -> Response {
    let items: String = scopes.iter().map(|s| scope_description(s)).collect();
    let body = format!(
        "<h1>Permissions requested</h1><p class=\"note\">Signed in as <span id=\"user\">{}</span></p>\
         <p>Are you trying to sign in to <strong id=\"app\">{}</strong>? Only continue if you started this \
         from an app or device you trust.</p><p>This app would like to:</p><ul id=\"scopes\">{items}</ul>\
         <form method=\"post\" action=\"/devicelogin/consent\">{}\
         <button type=\"submit\" id=\"accept\" name=\"action\" value=\"accept\">Accept</button>\
         <button type=\"submit\" id=\"decline\" class=\"secondary\" name=\"action\" value=\"decline\">Decline</button>\
         </form>",
        esc(username),
        esc(app),
        hidden_token(token)
    );
    page(StatusCode::OK, "Permissions requested", &body, None)
}

fn done_page(app: &str, accepted: bool) -> Response {
    let body = if accepted {
        format!(
            "<h1 id=\"done\">{}</h1><p>You have signed in to the <strong>{}</strong> application on your device. \
             You may now close this window.</p>",
            "You're signed in",
            esc(app)
        )
    } else {
        format!(
            "<h1 id=\"done\">{}</h1><p>You declined to sign in to <strong>{}</strong> on your device. You may now \
             close this window.</p>",
            "Sign-in declined",
            esc(app)
        )
    };
    page(StatusCode::OK, "Device sign-in", &body, None)
}

fn forbidden(reason: &str) -> Response {
    tracing::info!("sign-in page POST refused: {reason}");
    let body = format!(
        "<h1>Forbidden</h1><p class=\"error\" id=\"error\">{}</p><p><a href=\"/devicelogin\">Start again</a></p>",
        esc(&format!(
            "This request did not come from the sign-in page ({reason}). Open the sign-in page again."
        ))
    );
    page(StatusCode::FORBIDDEN, "Forbidden", &body, None)
}

/// The message for a code that cannot be used (any more).
fn code_error(e: &ApproveError, typed: &str) -> String {
    match e {
        ApproveError::NotPending(DeviceCodeStatus::Expired) => {
            format!("The code '{typed}' has expired. Go back to your app or device and request a new code.")
        }
        ApproveError::NotPending(_) => {
            format!(
                "The code '{typed}' has already been used. Go back to your app or device and start again."
            )
        }
        _ => format!("We don't recognize the code '{typed}'. Check the code and try again."),
    }
}

/// `GET /devicelogin`: the code form. Starts a session (or restarts the existing one).
pub(crate) async fn get(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let mut sessions = state.sessions();
    if let Some(token) = cookie_token(&headers)
        && sessions.set_step(&token, Step::EnterCode)
    {
        return code_page(&token, "", None, false);
    }
    let token = sessions.create();
    code_page(&token, "", None, true)
}

/// Parses a POST and checks origin, cookie and form token; returns the form and the session token, or why
/// the request is refused.
pub(crate) fn accept_post(
    state: &AppState,
    ctx: &Ctx,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Form, String), &'static str> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let same = origin.to_str().is_ok_and(|o| o.eq_ignore_ascii_case(&ctx.base));
        if !same {
            return Err("cross-origin request");
        }
    }
    let form = Form::parse(body);
    let cookie = cookie_token(headers).ok_or("no session cookie")?;
    let field = form.get(CSRF_FIELD).ok_or("no anti-forgery token")?;
    if !secret_eq(&cookie, field) {
        return Err("anti-forgery token mismatch");
    }
    if !state.sessions().is_live(&cookie) {
        return Err("session expired");
    }
    Ok((form, cookie))
}

fn set_step(state: &AppState, token: &str, step: Step) {
    state.sessions().set_step(token, step);
}

fn current_step(state: &AppState, token: &str) -> Option<Step> {
    state.sessions().step(token)
}

/// Back to the code form with an error (the session starts over).
fn restart(state: &AppState, token: &str, e: &ApproveError, typed: &str) -> Response {
    set_step(state, token, Step::EnterCode);
    code_page(token, typed, Some(&code_error(e, typed)), false)
}

/// `POST /devicelogin`: the code.
pub(crate) async fn post_code(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, token) = match accept_post(&state, &ctx, &headers, &body) {
        Ok(accepted) => accepted,
        Err(reason) => return forbidden(reason),
    };
    let typed = form.get("otc").unwrap_or_default().trim().to_owned();
    match device::pending_code(&state, &typed) {
        Ok((info, app)) => {
            set_step(
                &state,
                &token,
                Step::SignIn {
                    user_code: info.user_code,
                },
            );
            sign_in_page(&token, &app, "", None)
        }
        Err(e) => restart(&state, &token, &e, &typed),
    }
}

/// `POST /devicelogin/signin`: username and password.
pub(crate) async fn post_sign_in(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, token) = match accept_post(&state, &ctx, &headers, &body) {
        Ok(accepted) => accepted,
        Err(reason) => return forbidden(reason),
    };
    let Some(Step::SignIn { user_code }) = current_step(&state, &token) else {
        return forbidden("out of sequence: enter the code first");
    };
    let username = form.get("username").unwrap_or_default().trim().to_owned();
    let password = form.get("password").unwrap_or_default();
    let app = match device::pending_code(&state, &user_code) {
        Ok((_, app)) => app,
        Err(e) => return restart(&state, &token, &e, &user_code),
    };
    match device::check_sign_in(&state, &user_code, &username, password) {
        Ok((username, needs_mfa)) => {
            if needs_mfa {
                set_step(
                    &state,
                    &token,
                    Step::Verify {
                        user_code,
                        username: username.clone(),
                    },
                );
                verify_page(&token, &username)
            } else {
                consent_step(&state, &token, user_code, username)
            }
        }
        Err(SignInError::Code(e)) => restart(&state, &token, &e, &user_code),
        Err(SignInError::WrongPassword) => sign_in_page(
            &token,
            &app,
            &username,
            Some(
                "Your account or password is incorrect. If you don't remember your password, reset it now. \
                 (AADSTS50126)",
            ),
        ),
        Err(SignInError::User(refusal)) => sign_in_page(&token, &app, &username, Some(&refusal.to_string())),
    }
}

fn consent_step(state: &AppState, token: &str, user_code: String, username: String) -> Response {
    match device::pending_code(state, &user_code) {
        Ok((info, app)) => {
            set_step(
                state,
                token,
                Step::Consent {
                    user_code,
                    username: username.clone(),
                },
            );
            consent_page(token, &app, &username, &info.scopes)
        }
        Err(e) => restart(state, token, &e, &user_code),
    }
}

/// `POST /devicelogin/verify`: the emulated second factor.
pub(crate) async fn post_verify(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (_, token) = match accept_post(&state, &ctx, &headers, &body) {
        Ok(accepted) => accepted,
        Err(reason) => return forbidden(reason),
    };
    match current_step(&state, &token) {
        Some(Step::Verify { user_code, username }) => consent_step(&state, &token, user_code, username),
        _ => forbidden("out of sequence: sign in first"),
    }
}

/// `POST /devicelogin/consent`: `action=accept` approves the code, anything else declines it.
pub(crate) async fn post_consent(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, token) = match accept_post(&state, &ctx, &headers, &body) {
        Ok(accepted) => accepted,
        Err(reason) => return forbidden(reason),
    };
    let Some(Step::Consent { user_code, username }) = current_step(&state, &token) else {
        return forbidden("out of sequence: sign in first");
    };
    let accepted = form.get("action") == Some("accept");
    let app = match device::pending_code(&state, &user_code) {
        Ok((_, app)) => app,
        Err(e) => return restart(&state, &token, &e, &user_code),
    };
    let outcome = if accepted {
        device::approve(&state, &user_code, &username)
    } else {
        device::decline(&state, &user_code)
    };
    set_step(&state, &token, Step::EnterCode);
    match outcome {
        Ok(_) => done_page(&app, accepted),
        Err(ApproveError::User(refusal)) => sign_in_page(&token, &app, &username, Some(&refusal.to_string())),
        Err(e) => restart(&state, &token, &e, &user_code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc(r#"<script>alert('x')</script>&"#),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;"
        );
        assert_eq!(esc("a\"b"), "a&quot;b");
    }

    #[test]
    fn cookie_parsing() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; __Host-emulator-devicelogin=tok; c=d"),
        );
        assert_eq!(cookie_token(&h).as_deref(), Some("tok"));
        assert_eq!(cookie_token(&HeaderMap::new()), None);
    }
}
