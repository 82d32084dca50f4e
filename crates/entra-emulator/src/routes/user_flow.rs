//! What the user flows (device code, username/password, refresh token) share: finding the app under the
//! tenant rules (which sign-in audiences each tenant segment accepts), public-client authentication, scopes
//! and consent, account checks, and issuing the user-token response.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::directory::{
    AppRegistration, Directory, GRAPH_APP_ID, GRAPH_RESOURCE, MSA_TENANT_ID, SignInAudience, Tenant, User,
};
use crate::error_responses::{AadError, sts_headers};
use crate::formats::{Ordered, b64url};
use crate::grants::RefreshGrant;
use crate::ids::random_b64url;
use crate::jwt;
use crate::request_context::Ctx;
use crate::routes::client_auth::{ClientAuth, authenticate_client, client_credentials_of};
use crate::routes::request::Form;
use crate::state::AppState;
use crate::tenancy::ResolvedTenant;

/// OIDC scopes every app may ask for without consent.
const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// The app a user flow names, looked up under the tenant rules: in the tenant for a tenant segment, in any
/// tenant for `common`/`organizations`/`consumers`. Then the sign-in audience is checked against the
/// segment. Returns the app's home tenant and the app.
pub(crate) fn find_app<'d>(
    directory: &'d Directory,
    resolved: &ResolvedTenant,
    client_id: &str,
) -> Result<(&'d Tenant, &'d AppRegistration), AadError> {
    let found = match resolved {
        ResolvedTenant::Tenant { id } => {
            let tenant = directory
                .tenant(id)
                .ok_or_else(|| AadError::tenant_not_found(id, "invalid_request"))?;
            tenant
                .app_by_client_id(client_id)
                .map(|a| (tenant, a))
                .ok_or_else(|| AadError::app_not_found(client_id, &tenant.display_name))?
        }
        other => directory
            .tenants
            .iter()
            .find_map(|t| t.app_by_client_id(client_id).map(|a| (t, a)))
            .ok_or_else(|| {
                let directory_name = match other {
                    ResolvedTenant::Consumers => MSA_TENANT_ID,
                    _ => other.segment(),
                };
                AadError::app_not_found(client_id, directory_name)
            })?,
    };
    check_audience(resolved, found.1)?;
    Ok(found)
}

/// Which sign-in audiences each tenant segment accepts.
fn check_audience(resolved: &ResolvedTenant, app: &AppRegistration) -> Result<(), AadError> {
    let (id, name) = (app.app_id.as_str(), app.display_name.as_str());
    match (resolved, app.audience()) {
        (ResolvedTenant::Common, SignInAudience::MyOrg) => {
            Err(AadError::single_tenant_app_on_common(id, name))
        }
        (ResolvedTenant::Organizations, SignInAudience::MyOrg) => Err(AadError::no_tenant_information()),
        (ResolvedTenant::Consumers, SignInAudience::MyOrg | SignInAudience::MultipleOrgs) => {
            Err(AadError::organizations_only(id, name))
        }
        // The tenant-segment case is not in the reference; the same answer as on /common is assumed.
        (
            ResolvedTenant::Common | ResolvedTenant::Organizations | ResolvedTenant::Tenant { .. },
            SignInAudience::PersonalOnly,
        ) => Err(AadError::personal_accounts_only(id, name)),
        _ => Ok(()),
    }
}

/// The client id of a token request (body, or HTTP Basic).
pub(crate) fn client_id(form: &Form, headers: &HeaderMap) -> Result<String, AadError> {
    client_credentials_of(form, headers)
        .client_id
        .ok_or_else(|| AadError::missing_parameter("client_id"))
}

/// Authenticates the client of a user flow: a public client (public client flows on) must send no
/// credential (AADSTS700025); any other app must authenticate as a confidential client, and sending nothing
/// is AADSTS7000218.
pub(crate) fn authenticate_user_flow_client(
    state: &AppState,
    ctx: &Ctx,
    home: &Tenant,
    app: &AppRegistration,
    form: &Form,
    headers: &HeaderMap,
) -> Result<ClientAuth, AadError> {
    let credentials = client_credentials_of(form, headers);
    let presents = credentials.secret.is_some()
        || form.get("client_assertion").is_some()
        || form.get("client_assertion_type").is_some();
    match (app.is_fallback_public_client, presents) {
        (true, true) => Err(AadError::public_client_sent_credential()),
        (true, false) => Ok(ClientAuth::Public),
        (false, false) => Err(AadError::public_client_flows_disabled()),
        (false, true) => authenticate_client(state, ctx, home, app, credentials.secret.as_deref(), form),
    }
}

/// Requested scopes of a user flow, split into OIDC scopes and Microsoft Graph permissions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Scopes {
    pub openid: bool,
    pub profile: bool,
    pub email: bool,
    pub offline_access: bool,
    /// Graph permission names as written (`User.Read`), without `.default`.
    pub graph: Vec<String>,
    /// `…/.default` was asked for: every consented permission.
    pub default: bool,
    /// The `aud` of the access token: Graph's URL when the scopes named it, else Graph's app id.
    pub audience: &'static str,
}

impl Scopes {
    /// Parses a `scope` value. Bare names (`User.Read`) and `https://graph.microsoft.com/…` or
    /// `00000003-…/…` prefixes mean Graph; any other resource is AADSTS500011.
    pub fn parse(scope: &str, tenant_name: &str) -> Result<Self, AadError> {
        let mut scopes = Scopes {
            audience: GRAPH_APP_ID,
            ..Scopes::default()
        };
        let tokens: Vec<&str> = scope.split_whitespace().collect();
        if tokens.is_empty() {
            return Err(AadError::missing_parameter("scope"));
        }
        let mut audience: Option<&'static str> = None;
        for tok in tokens {
            let bad_char = tok
                .chars()
                .any(|c| c.is_control() || matches!(c, '"' | '<' | '>' | '\\' | '{' | '}' | '|' | '^' | '`'));
            if bad_char {
                return Err(AadError::invalid_scope(scope));
            }
            match tok.to_ascii_lowercase().as_str() {
                "openid" => scopes.openid = true,
                "profile" => scopes.profile = true,
                "email" => scopes.email = true,
                "offline_access" => scopes.offline_access = true,
                _ => {
                    let (permission, aud) = graph_permission(tok)
                        .ok_or_else(|| AadError::resource_not_found(resource_of(tok), tenant_name))?;
                    audience.get_or_insert(aud);
                    if permission.eq_ignore_ascii_case(".default") {
                        scopes.default = true;
                    } else if permission.is_empty() || permission.contains('/') {
                        return Err(AadError::invalid_scope(scope));
                    } else if !scopes.graph.iter().any(|g| g.eq_ignore_ascii_case(permission)) {
                        scopes.graph.push(permission.to_owned());
                    }
                }
            }
        }
        if let Some(aud) = audience {
            scopes.audience = aud;
        }
        Ok(scopes)
    }

    /// The scopes again, space-separated, as sent (for the device-code record).
    pub fn split(scope: &str) -> Vec<String> {
        scope.split_whitespace().map(str::to_owned).collect()
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix))
    .then(|| &s[prefix.len()..])
}

/// `(permission, audience)` of a Graph scope, `None` for another resource.
fn graph_permission(tok: &str) -> Option<(&str, &'static str)> {
    if let Some(rest) = strip_prefix_ci(tok, GRAPH_RESOURCE) {
        let rest = rest.strip_prefix('/')?;
        // `https://graph.microsoft.com//.default` is accepted like the single-slash form.
        return Some((rest.trim_start_matches('/'), GRAPH_RESOURCE));
    }
    if let Some(rest) = strip_prefix_ci(tok, GRAPH_APP_ID) {
        return Some((rest.strip_prefix('/')?, GRAPH_APP_ID));
    }
    (!tok.contains('/') && !tok.contains(':')).then_some((tok, GRAPH_APP_ID))
}

fn resource_of(tok: &str) -> &str {
    tok.rsplit_once('/').map_or(tok, |(r, _)| r)
}

/// Scopes a token is issued for, after consent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Granted {
    pub graph: Vec<String>,
    pub openid: bool,
    pub profile: bool,
    pub email: bool,
    pub offline_access: bool,
    pub audience: &'static str,
}

impl Granted {
    /// The response's `scope` and the token's `scp`: Graph permissions, then the OIDC scopes that were
    /// asked for (`offline_access` is never echoed).
    pub fn scope_string(&self) -> String {
        let oidc = [
            (self.profile, "profile"),
            (self.openid, "openid"),
            (self.email, "email"),
        ];
        self.graph
            .iter()
            .map(String::as_str)
            .chain(oidc.into_iter().filter_map(|(on, s)| on.then_some(s)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Checks consent: every Graph permission asked for must be admin-consented for the app (unless the user
/// is flagged `consent_missing` and no administrator consented for the whole tenant on the admin-consent page)
/// or consented by the user on the sign-in page; `.default` means all of them. A `consent_missing` user who
/// never consented to anything gets AADSTS65001 whatever is asked, until an administrator consents.
pub(crate) fn grant(
    app: &AppRegistration,
    user: &User,
    user_consents: &[String],
    scopes: &Scopes,
) -> Result<Granted, AadError> {
    let refuse = || AadError::consent_required(&app.app_id, &app.display_name);
    let covered_by_admin = !user.consent_missing || app.admin_consent_granted;
    if !covered_by_admin && user_consents.is_empty() {
        return Err(refuse());
    }
    let admin: &[String] = if covered_by_admin {
        &app.delegated_permissions
    } else {
        &[]
    };
    let consented = |scope: &str| {
        admin
            .iter()
            .chain(user_consents)
            .find(|c| c.eq_ignore_ascii_case(scope))
            .cloned()
    };
    let mut graph: Vec<String> = Vec::new();
    if scopes.default {
        for scope in admin.iter().chain(user_consents) {
            let oidc = OIDC_SCOPES.iter().any(|o| o.eq_ignore_ascii_case(scope));
            if !oidc && !graph.iter().any(|g| g.eq_ignore_ascii_case(scope)) {
                graph.push(scope.clone());
            }
        }
    }
    for scope in &scopes.graph {
        let canonical = consented(scope).ok_or_else(refuse)?;
        if !graph.iter().any(|g| g.eq_ignore_ascii_case(&canonical)) {
            graph.push(canonical);
        }
    }
    Ok(Granted {
        graph,
        openid: scopes.openid,
        profile: scopes.profile,
        email: scopes.email,
        offline_access: scopes.offline_access,
        audience: scopes.audience,
    })
}

/// Why an account cannot sign in (checked after the password).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AccountBlock {
    Disabled,
    Locked,
    PasswordExpired,
    ConditionalAccess,
}

impl AccountBlock {
    /// The first block of a user, in the order the emulator checks them.
    pub fn of(user: &User) -> Option<Self> {
        [
            (user.disabled, Self::Disabled),
            (user.locked, Self::Locked),
            (user.password_expired, Self::PasswordExpired),
            (user.blocked_by_conditional_access, Self::ConditionalAccess),
        ]
        .into_iter()
        .find_map(|(set, block)| set.then_some(block))
    }

    pub fn aad_error(self) -> AadError {
        match self {
            Self::Disabled => AadError::account_disabled(),
            Self::Locked => AadError::account_locked(),
            Self::PasswordExpired => AadError::password_expired(),
            Self::ConditionalAccess => AadError::blocked_by_conditional_access(),
        }
    }

    /// What the sign-in page says (the real pages' wording, with the code).
    pub fn page_message(self) -> &'static str {
        match self {
            Self::Disabled => {
                "Your account has been disabled. Contact your administrator to enable it. (AADSTS50057)"
            }
            Self::Locked => {
                "Your account is temporarily locked to prevent unauthorized use. Try again later, and if you still \
                 have trouble, contact your admin. (AADSTS50053)"
            }
            Self::PasswordExpired => {
                "Your password has expired. Update your password: the emulator cannot change it; clear the \
                 user's password_expired flag. (AADSTS50055)"
            }
            Self::ConditionalAccess => {
                "You cannot access this right now. Your sign-in was successful but does not meet the criteria to \
                 access this resource (blocked by Conditional Access). (AADSTS53003)"
            }
        }
    }
}

/// A successful sign-in, ready for tokens.
pub(crate) struct SignedIn<'a> {
    pub tenant: &'a Tenant,
    pub app: &'a AppRegistration,
    pub user: &'a User,
    pub mfa: bool,
    pub auth: ClientAuth,
}

/// Claims of a delegated v1 access token for Graph, in the real service's order.
#[derive(Serialize)]
struct DelegatedClaims<'a> {
    aud: &'a str,
    iss: String,
    iat: i64,
    nbf: i64,
    exp: i64,
    acct: u8,
    acr: &'static str,
    aio: String,
    amr: Vec<&'static str>,
    app_displayname: &'a str,
    appid: &'a str,
    appidacr: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    family_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    given_name: Option<&'a str>,
    idtyp: &'static str,
    ipaddr: &'static str,
    name: &'a str,
    oid: &'a str,
    platf: &'static str,
    puid: String,
    rh: String,
    scp: String,
    sub: String,
    tenant_region_scope: &'static str,
    tid: &'a str,
    unique_name: &'a str,
    upn: &'a str,
    uti: String,
    ver: &'static str,
}

/// Claims of a v2 ID token.
#[derive(Serialize)]
struct IdTokenClaims<'a> {
    aud: &'a str,
    iss: String,
    iat: i64,
    nbf: i64,
    exp: i64,
    aio: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    /// The authorization request's `nonce` (auth code flow only).
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    oid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<&'a str>,
    rh: String,
    sub: String,
    tid: &'a str,
    uti: String,
    ver: &'static str,
}

/// A pairwise subject: stable per user and audience, 43 base64url characters like the real ones.
fn pairwise_sub(user_id: &str, audience: &str) -> String {
    b64url(&Sha256::digest(format!(
        "sub/{user_id}/{}",
        audience.to_ascii_lowercase()
    )))
}

/// `expires_in` of user tokens: the builder's lifetime if set, else randomised 60–90 minutes like Entra's.
fn user_token_lifetime(state: &AppState) -> u64 {
    use rand::Rng as _;
    state
        .user_token_lifetime
        .map(|d| d.as_secs())
        .unwrap_or_else(|| rand::rngs::OsRng.gen_range(3600..=5400))
}

fn signing_failed(e: String) -> AadError {
    tracing::error!("cannot sign a token: {e}");
    AadError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        90033,
        "A transient error has occurred. Please try again.",
    )
}

/// Issues the user-token response: access token, `refresh_token` with `offline_access` (recorded so it can be
/// redeemed), `id_token` with `openid`, `client_info` when the request had `client_info=1`.
pub(crate) fn issue_user_tokens(
    state: &AppState,
    ctx: &Ctx,
    signed_in: &SignedIn<'_>,
    granted: &Granted,
    form: &Form,
) -> Result<Response, AadError> {
    issue_user_tokens_with_nonce(state, ctx, signed_in, granted, form, None)
}

/// [`issue_user_tokens`] with the authorization request's `nonce` in the ID token.
pub(crate) fn issue_user_tokens_with_nonce(
    state: &AppState,
    ctx: &Ctx,
    signed_in: &SignedIn<'_>,
    granted: &Granted,
    form: &Form,
    nonce: Option<&str>,
) -> Result<Response, AadError> {
    let SignedIn {
        tenant,
        app,
        user,
        mfa,
        auth,
    } = *signed_in;
    let now = ctx.now.unix_timestamp();
    let lifetime = user_token_lifetime(state);
    let scope = granted.scope_string();
    let sts_issuer = format!("https://sts.windows.net/{}/", tenant.id);
    let access = DelegatedClaims {
        aud: granted.audience,
        iss: sts_issuer,
        iat: now - 300,
        nbf: now - 300,
        exp: now.saturating_add(i64::try_from(lifetime).unwrap_or(i64::MAX / 2)),
        acct: 0,
        acr: "1",
        aio: random_b64url(48),
        amr: if mfa { vec!["pwd", "mfa"] } else { vec!["pwd"] },
        app_displayname: &app.display_name,
        appid: &app.app_id,
        appidacr: auth.appidacr(),
        family_name: user.surname.as_deref(),
        given_name: user.given_name.as_deref(),
        idtyp: "user",
        ipaddr: "127.0.0.1",
        name: &user.display_name,
        oid: &user.id,
        platf: "3",
        puid: crate::formats::hex_upper(&Sha256::digest(user.id.as_bytes())[..8]),
        rh: format!("0.A{}", random_b64url(42)),
        scp: scope.clone(),
        sub: pairwise_sub(&user.id, granted.audience),
        tenant_region_scope: "WW",
        tid: &tenant.id,
        unique_name: &user.user_principal_name,
        upn: &user.user_principal_name,
        uti: random_b64url(16),
        ver: "1.0",
    };
    let access_token = jwt::encode(&state.signing_key, &access, true).map_err(signing_failed)?;
    let id_token = if granted.openid {
        let claims = IdTokenClaims {
            aud: &app.app_id,
            iss: format!("{}/{}/v2.0", ctx.base, tenant.id),
            iat: now - 300,
            nbf: now - 300,
            exp: now + 3600,
            aio: random_b64url(48),
            email: user.mail.as_deref().filter(|_| granted.email),
            name: granted.profile.then_some(user.display_name.as_str()),
            nonce,
            oid: granted.profile.then_some(user.id.as_str()),
            preferred_username: granted.profile.then_some(user.user_principal_name.as_str()),
            rh: format!("0.A{}", random_b64url(42)),
            sub: pairwise_sub(&user.id, &app.app_id),
            tid: &tenant.id,
            uti: random_b64url(16),
            ver: "2.0",
        };
        Some(jwt::encode(&state.signing_key, &claims, false).map_err(signing_failed)?)
    } else {
        None
    };
    let refresh_token = granted.offline_access.then(|| {
        state.grants().issue_refresh_token(RefreshGrant {
            client_id: app.app_id.clone(),
            user_id: user.id.clone(),
            tenant_id: tenant.id.clone(),
            graph_scopes: granted.graph.clone(),
            mfa,
            issued_at: ctx.now,
            last_used: ctx.now,
            revoked: false,
            expired: false,
        })
    });
    let mut body = Ordered::new()
        .with("token_type", "Bearer")
        .with("scope", scope)
        .with("expires_in", lifetime)
        .with("ext_expires_in", lifetime)
        .with("access_token", access_token);
    if let Some(rt) = refresh_token {
        body.push("refresh_token", rt);
    }
    if let Some(id_token) = id_token {
        body.push("id_token", id_token);
    }
    if form.get("client_info") == Some("1") {
        let info = serde_json::json!({"uid": user.id, "utid": tenant.id});
        body.push("client_info", b64url(info.to_string().as_bytes()));
    }
    tracing::info!(
        client_id = %app.app_id,
        tenant = %tenant.id,
        user = %user.id,
        appidacr = auth.appidacr(),
        "issued user tokens"
    );
    let mut resp = (StatusCode::OK, body.to_json()).into_response();
    sts_headers(&mut resp, ctx, "no-store, no-cache");
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_graph_and_oidc() {
        let s = Scopes::parse("User.Read offline_access openid profile", "Contoso").expect("ok");
        assert!(s.openid && s.profile && s.offline_access && !s.email);
        assert_eq!(s.graph, ["User.Read"]);
        assert_eq!(s.audience, GRAPH_APP_ID);
        let s = Scopes::parse(
            "https://graph.microsoft.com/User.Read https://graph.microsoft.com//.default",
            "C",
        )
        .expect("ok");
        assert_eq!(
            (s.graph.as_slice(), s.default, s.audience),
            (&["User.Read".to_owned()][..], true, GRAPH_RESOURCE)
        );
        assert_eq!(
            Scopes::parse("api://other/read", "C").err().map(|e| e.code),
            Some(500011)
        );
        assert_eq!(
            Scopes::parse("User.Read <x>", "C").err().map(|e| e.code),
            Some(70011)
        );
        assert_eq!(Scopes::parse(" ", "C").err().map(|e| e.code), Some(900144));
    }

    #[test]
    fn consent_rules() {
        let d = Directory::seeded();
        let t = &d.tenants[0];
        let app = t.app("device-code").expect("app");
        let user = t.user(crate::seed::DEMO_USERNAME).expect("user");
        let s = Scopes::parse("user.read openid", "C").expect("ok");
        let g = grant(app, user, &[], &s).expect("admin-consented");
        assert_eq!(g.scope_string(), "User.Read openid");
        let s = Scopes::parse("Mail.Read", "C").expect("ok");
        assert_eq!(grant(app, user, &[], &s).err().map(|e| e.code), Some(65001));
        assert!(grant(app, user, &["Mail.Read".into()], &s).is_ok());
        let nc = t.user("no.consent@contoso.onmicrosoft.com").expect("nc");
        let s = Scopes::parse("openid", "C").expect("ok");
        assert_eq!(
            grant(app, nc, &[], &s).err().map(|e| e.suberror),
            Some(Some("consent_required"))
        );
        let s = Scopes::parse(".default openid", "C").expect("ok");
        assert_eq!(
            grant(app, user, &[], &s).expect("ok").scope_string(),
            "User.Read User.ReadBasic.All openid"
        );
    }
}
