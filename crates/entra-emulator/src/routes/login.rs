//! The authorization endpoint's sign-in pages: sign in with a directory user's name and password → (MFA
//! users) the emulated second factor → consent (Accept / Cancel) when the user has not consented to what is
//! asked, or `prompt=consent` → the answer at the redirect URI. The forms post to `/{tenant}/login`,
//! `/{tenant}/login/verify` and `/{tenant}/login/consent`.
//!
//! The pages look and work like the device-code pages (`routes::signin`, whose page frame, escaping and
//! forgery protection they reuse: the same session cookie, anti-forgery field and `Origin` check), and each
//! form also carries the handle of its authorization request, which belongs to that browser session only.
//! After a sign-in the browser session is remembered (single sign-on): the next request from it skips the
//! sign-in page unless `prompt=login`/`select_account`, or a `login_hint` names someone else.
//!
//! A user of another tenant than the one the request was made on gets the real service's AADSTS50020 page
//! (after the password, as the user's home tenant authenticates them first); Cancel on the consent page
//! sends `access_denied` (AADSTS65004) to the redirect URI.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::auth_codes::{AuthRequest, Prompt, Step};
use crate::directory::{Directory, Tenant, User};
use crate::error_responses::AadError;
use crate::formats::b64url;
use crate::ids::secret_eq;
use crate::request_context::Ctx;
use crate::routes::admin_consent::error_page;
use crate::routes::authorize_answer::{Refusal, Target, code_answer, live_session, refuse};
use crate::routes::device::UserRefusal;
use crate::routes::request::Form;
use crate::routes::signin::{accept_post, esc, hidden_token, page, scope_description};
use crate::routes::user_flow::{self, AccountBlock, Scopes};
use crate::state::AppState;
use crate::tenancy::ResolvedTenant;

const REQUEST_FIELD: &str = "request";

fn action(request: &AuthRequest, step: &str) -> String {
    format!("/{}/login{step}", esc(request.issued_on.segment()))
}

fn hidden_request(handle: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{REQUEST_FIELD}\" value=\"{}\">",
        esc(handle)
    )
}

fn error_line(message: Option<&str>) -> String {
    message
        .map(|m| format!("<p class=\"error\" id=\"error\" role=\"alert\">{}</p>", esc(m)))
        .unwrap_or_default()
}

struct PageCtx<'a> {
    session: &'a str,
    handle: &'a str,
    request: &'a AuthRequest,
    set_cookie: bool,
}

impl PageCtx<'_> {
    fn fields(&self) -> String {
        format!("{}{}", hidden_token(self.session), hidden_request(self.handle))
    }

    fn cookie(&self) -> Option<&str> {
        self.set_cookie.then_some(self.session)
    }
}

fn sign_in_page(p: &PageCtx<'_>, username: &str, error: Option<&str>) -> Response {
    let body = format!(
        "<h1>Sign in</h1><p>to continue to <strong id=\"app\">{}</strong></p>{}\
         <form method=\"post\" action=\"{}\">{}\
         <label for=\"username\">Email, phone, or Skype</label>\
         <input type=\"text\" id=\"username\" name=\"username\" value=\"{}\" autocomplete=\"username\" autofocus>\
         <label for=\"password\">Password</label>\
         <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\">\
         <button type=\"submit\" id=\"signin\">Sign in</button></form>",
        esc(&p.request.app_name),
        error_line(error),
        action(p.request, ""),
        p.fields(),
        esc(username)
    );
    page(StatusCode::OK, "Sign in to your account", &body, p.cookie())
}

fn verify_page(p: &PageCtx<'_>, username: &str) -> Response {
    let body = format!(
        "<h1>Verify your identity</h1><p><strong>{}</strong> must complete multi-factor authentication.</p>\
         <p class=\"note\">The emulator stands in for the second factor (an authenticator app, a text \
         message): select Verify to approve the sign-in request.</p>\
         <form method=\"post\" action=\"{}\">{}\
         <button type=\"submit\" id=\"verify\">Verify</button></form>",
        esc(username),
        action(p.request, "/verify"),
        p.fields()
    );
    page(StatusCode::OK, "Verify your identity", &body, p.cookie())
}

fn consent_page(p: &PageCtx<'_>, username: &str) -> Response {
    let items: String = p
        .request
        .scope
        .split_whitespace()
        .map(scope_description)
        .collect();
    let body = format!(
        "<h1>Permissions requested</h1><p class=\"note\">Signed in as <span id=\"user\">{}</span></p>\
         <p><strong id=\"app\">{}</strong> would like to:</p><ul id=\"scopes\">{items}</ul>\
         <p class=\"note\">Accepting these permissions means that you allow this app to use your data as \
         specified in their terms of service and privacy statement.</p>\
         <form method=\"post\" action=\"{}\">{}\
         <button type=\"submit\" id=\"accept\" name=\"action\" value=\"accept\">Accept</button>\
         <button type=\"submit\" id=\"decline\" class=\"secondary\" name=\"action\" value=\"decline\">Cancel</button>\
         </form>",
        esc(username),
        esc(&p.request.app_name),
        action(p.request, "/consent"),
        p.fields()
    );
    page(StatusCode::OK, "Permissions requested", &body, p.cookie())
}

fn forbidden(reason: &str) -> Response {
    tracing::info!("sign-in page POST refused: {reason}");
    let body = format!(
        "<h1>Forbidden</h1><p class=\"error\" id=\"error\">{}</p>",
        esc(&format!(
            "This request did not come from the sign-in page ({reason}). Go back to the application and \
             sign in again."
        ))
    );
    page(StatusCode::FORBIDDEN, "Forbidden", &body, None)
}

fn login_required() -> AadError {
    AadError::new(
        StatusCode::BAD_REQUEST,
        "login_required",
        50058,
        "A silent sign-in request was sent but no user is signed in.",
    )
}

fn declined() -> AadError {
    AadError::new(
        StatusCode::BAD_REQUEST,
        "access_denied",
        65004,
        "User declined to consent to access the app.",
    )
}

fn consent_required(app_id: &str, app_name: &str) -> AadError {
    let e = AadError::consent_required(app_id, app_name);
    AadError {
        error: "consent_required",
        ..e
    }
}

/// AADSTS50020: the account exists, but in another tenant.
fn other_tenant(user: &User, home: &Tenant, tenant: &Tenant, request: &AuthRequest) -> AadError {
    AadError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        50020,
        format!(
            "User account '{}' from identity provider 'https://sts.windows.net/{}/' does not exist in tenant \
             '{}' and cannot access the application '{}'({}) in that tenant. The account needs to be added as \
             an external user in the tenant first. Sign out and sign in again with a different Azure Active \
             Directory user account.",
            user.user_principal_name, home.id, tenant.display_name, request.client_id, request.app_name
        ),
    )
}

/// The user a request may sign in: one of the request's tenant (any tenant on `common`/`organizations`).
fn fits(request: &AuthRequest, tenant_id: &str) -> bool {
    match &request.issued_on {
        ResolvedTenant::Tenant { id } => id == tenant_id,
        ResolvedTenant::Common | ResolvedTenant::Organizations => true,
        ResolvedTenant::Consumers => false,
    }
}

/// Whether the signed-in user still has to consent to what the request asks for.
fn needs_consent(
    directory: &Directory,
    state: &AppState,
    request: &AuthRequest,
    tenant_id: &str,
    user_id: &str,
) -> bool {
    let Some(app) = directory
        .tenants
        .iter()
        .find_map(|t| t.app_by_client_id(&request.client_id))
    else {
        return true;
    };
    let Some((tenant, user)) = directory
        .tenant(tenant_id)
        .and_then(|t| t.user(user_id).map(|u| (t, u)))
    else {
        return true;
    };
    let consents = state.grants().user_consents(&user.id, &app.app_id);
    Scopes::parse(&request.scope, &tenant.display_name)
        .map_or(true, |s| user_flow::grant(app, user, &consents, &s).is_err())
}

/// `GET …/authorize` with a checked request: a page, or (single sign-on) the answer right away.
pub(crate) fn begin(state: &AppState, ctx: &Ctx, headers: &HeaderMap, request: AuthRequest) -> Response {
    let session = live_session(state, headers);
    let sso = session.as_deref().and_then(|s| {
        let (tenant_id, user_id, mfa) = state.auth_codes().signed_in(s)?;
        let directory = state.directory();
        let user = directory.tenant(&tenant_id)?.user(&user_id)?;
        let hinted = request
            .login_hint
            .as_deref()
            .is_none_or(|h| h.eq_ignore_ascii_case(&user.user_principal_name));
        let ok = fits(&request, &tenant_id) && hinted && AccountBlock::of(user).is_none();
        ok.then(|| (tenant_id, user_id, mfa, user.user_principal_name.clone()))
    });
    if request.prompt == Prompt::None {
        let target = Target::of(&request);
        let Some((tenant_id, user_id, mfa, _)) = sso else {
            return refuse(ctx, Refusal::Redirect(target, login_required()));
        };
        if needs_consent(&state.directory(), state, &request, &tenant_id, &user_id) {
            let e = consent_required(&request.client_id, &request.app_name);
            return refuse(ctx, Refusal::Redirect(target, e));
        }
        return complete(state, None, &request, &tenant_id, &user_id, mfa);
    }
    let (session, set_cookie) = match session {
        Some(s) => (s, false),
        None => (state.sessions().create(), true),
    };
    let handle = state.auth_codes().start(&session, request.clone());
    let p = PageCtx {
        session: &session,
        handle: &handle,
        request: &request,
        set_cookie,
    };
    match (request.prompt, sso) {
        (Prompt::Unset | Prompt::Consent, Some((tenant_id, user_id, mfa, upn))) => {
            signed_in(state, &p, &tenant_id, &user_id, mfa, &upn)
        }
        _ => sign_in_page(&p, request.login_hint.as_deref().unwrap_or_default(), None),
    }
}

/// After the sign-in (and second factor): the consent page if needed, else the answer.
fn signed_in(
    state: &AppState,
    p: &PageCtx<'_>,
    tenant_id: &str,
    user_id: &str,
    mfa: bool,
    upn: &str,
) -> Response {
    state
        .auth_codes()
        .remember_sign_in(p.session, tenant_id, user_id, mfa);
    let consent = p.request.prompt == Prompt::Consent
        || needs_consent(&state.directory(), state, p.request, tenant_id, user_id);
    if consent {
        state.auth_codes().set_step(
            p.handle,
            p.session,
            Step::Consent {
                tenant_id: tenant_id.to_owned(),
                user_id: user_id.to_owned(),
                mfa,
            },
        );
        consent_page(p, upn)
    } else {
        complete(state, Some(p.handle), p.request, tenant_id, user_id, mfa)
    }
}

/// Issues the code and sends it to the redirect URI.
fn complete(
    state: &AppState,
    handle: Option<&str>,
    request: &AuthRequest,
    tenant_id: &str,
    user_id: &str,
    mfa: bool,
) -> Response {
    let code = {
        let mut codes = state.auth_codes();
        if let Some(handle) = handle {
            codes.finish(handle);
        }
        codes.issue(request.clone(), tenant_id, user_id, mfa)
    };
    tracing::info!(client_id = %request.client_id, user = %user_id, "authorization code issued");
    let client_info = request.client_info.then(|| {
        b64url(
            serde_json::json!({"uid": user_id, "utid": tenant_id})
                .to_string()
                .as_bytes(),
        )
    });
    code_answer(&Target::of(request), &code, client_info)
}

/// A checked POST of one of the pages: the form, the session and the request with its step.
struct Posted {
    form: Form,
    session: String,
    handle: String,
    request: AuthRequest,
    step: Step,
}

/// Why a POST is refused goes into the 403 page.
fn accept(state: &AppState, ctx: &Ctx, headers: &HeaderMap, body: &[u8]) -> Result<Posted, &'static str> {
    let (form, session) = accept_post(state, ctx, headers, body)?;
    let handle = form
        .get(REQUEST_FIELD)
        .ok_or("no authorization request")?
        .to_owned();
    let (request, step) = state
        .auth_codes()
        .pending(&handle, &session)
        .ok_or("the authorization request expired or belongs to another browser")?;
    Ok(Posted {
        form,
        session,
        handle,
        request,
        step,
    })
}

/// Finds the user typed on the sign-in page and checks the password and the account.
enum Outcome<'d> {
    SignedIn(&'d Tenant, &'d User),
    /// Shown on the sign-in page again.
    Retry(String),
    /// The error page.
    Page(AadError),
}

fn authenticate<'d>(
    directory: &'d Directory,
    request: &AuthRequest,
    username: &str,
    password: &str,
) -> Outcome<'d> {
    if request.issued_on == ResolvedTenant::Consumers {
        return Outcome::Retry(UserRefusal::PersonalAccountsOnly.to_string());
    }
    let Some((home, user)) = directory
        .tenants
        .iter()
        .filter_map(|t| t.user(username).map(|u| (t, u)))
        .find(|(t, _)| fits(request, &t.id))
        .or_else(|| {
            directory
                .tenants
                .iter()
                .find_map(|t| t.user(username).map(|u| (t, u)))
        })
    else {
        return Outcome::Retry(UserRefusal::Unknown.to_string());
    };
    if home.is_federated_user(user) {
        return Outcome::Retry(UserRefusal::Federated.to_string());
    }
    if !secret_eq(&user.password, password) {
        return Outcome::Retry(
            "Your account or password is incorrect. If you don't remember your password, reset it now. \
             (AADSTS50126)"
                .to_owned(),
        );
    }
    if let Some(block) = AccountBlock::of(user) {
        return Outcome::Retry(block.page_message().to_owned());
    }
    if !fits(request, &home.id) {
        let tenant = match &request.issued_on {
            ResolvedTenant::Tenant { id } => directory.tenant(id),
            _ => None,
        };
        if let Some(tenant) = tenant {
            return Outcome::Page(other_tenant(user, home, tenant, request));
        }
        return Outcome::Retry(UserRefusal::Unknown.to_string());
    }
    Outcome::SignedIn(home, user)
}

/// `POST /{t}/login`: user name and password.
pub(crate) async fn post_login(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let posted = match accept(&state, &ctx, &headers, &body) {
        Ok(p) => p,
        Err(reason) => return forbidden(reason),
    };
    if posted.step != Step::SignIn {
        return forbidden("out of sequence: this request is past the sign-in");
    }
    let p = PageCtx {
        session: &posted.session,
        handle: &posted.handle,
        request: &posted.request,
        set_cookie: false,
    };
    let username = posted.form.get("username").unwrap_or_default().trim().to_owned();
    let password = posted.form.get("password").unwrap_or_default();
    let outcome = {
        let directory = state.directory();
        match authenticate(&directory, &posted.request, &username, password) {
            Outcome::SignedIn(tenant, user) => Ok((
                tenant.id.clone(),
                user.id.clone(),
                user.user_principal_name.clone(),
                user.needs_mfa(),
            )),
            Outcome::Retry(message) => Err(Ok(message)),
            Outcome::Page(e) => Err(Err(e)),
        }
    };
    match outcome {
        Ok((tenant_id, user_id, upn, true)) => {
            state.auth_codes().set_step(
                &posted.handle,
                &posted.session,
                Step::Verify { tenant_id, user_id },
            );
            verify_page(&p, &upn)
        }
        Ok((tenant_id, user_id, upn, false)) => signed_in(&state, &p, &tenant_id, &user_id, false, &upn),
        Err(Ok(message)) => sign_in_page(&p, &username, Some(&message)),
        Err(Err(e)) => {
            state.auth_codes().finish(&posted.handle);
            tracing::info!(code = e.code, "sign-in refused on the error page");
            error_page(&ctx, &e)
        }
    }
}

/// `POST /{t}/login/verify`: the emulated second factor.
pub(crate) async fn post_verify(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let posted = match accept(&state, &ctx, &headers, &body) {
        Ok(p) => p,
        Err(reason) => return forbidden(reason),
    };
    let Step::Verify { tenant_id, user_id } = &posted.step else {
        return forbidden("out of sequence: sign in first");
    };
    let upn = state
        .directory()
        .tenant(tenant_id)
        .and_then(|t| t.user(user_id))
        .map(|u| u.user_principal_name.clone())
        .unwrap_or_default();
    let p = PageCtx {
        session: &posted.session,
        handle: &posted.handle,
        request: &posted.request,
        set_cookie: false,
    };
    signed_in(&state, &p, tenant_id, user_id, true, &upn)
}

/// `POST /{t}/login/consent`: `action=accept` consents and answers with a code; anything else is Cancel.
pub(crate) async fn post_consent(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let posted = match accept(&state, &ctx, &headers, &body) {
        Ok(p) => p,
        Err(reason) => return forbidden(reason),
    };
    let Step::Consent {
        tenant_id,
        user_id,
        mfa,
    } = &posted.step
    else {
        return forbidden("out of sequence: sign in first");
    };
    if posted.form.get("action") != Some("accept") {
        state.auth_codes().finish(&posted.handle);
        return refuse(&ctx, Refusal::Redirect(Target::of(&posted.request), declined()));
    }
    // Recorded as Graph permission names (`User.Read`), however the request spelled them.
    let scopes = Scopes::parse(&posted.request.scope, "")
        .map(|s| s.graph)
        .unwrap_or_default();
    state
        .grants()
        .consent(user_id, &posted.request.client_id, &scopes);
    complete(
        &state,
        Some(&posted.handle),
        &posted.request,
        tenant_id,
        user_id,
        *mfa,
    )
}
