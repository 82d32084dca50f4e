//! The identity platform: OpenID Connect discovery (v2 and v1), signing keys, instance discovery, user
//! realm discovery and the v2.0 token endpoint.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Serialize;
use serde_json::{Value, json};

use crate::directory::{AppRegistration, GRAPH_APP_ID, GRAPH_RESOURCE, MSA_TENANT_ID, Tenant};
use crate::errors::{AadError, sts_headers};
use crate::routes::{Ctx, TenantSegment};
use crate::state::AppState;
use crate::util::{Ordered, guid_eq, percent_decode, random_b64url, secret_eq};
use crate::{assertion, jwt};

type Shared = State<Arc<AppState>>;

/// A tenant segment resolved against the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Resolved {
    Common,
    Organizations,
    Consumers,
    Tenant { id: String },
}

impl Resolved {
    /// The path segment endpoints are published under (the GUID for a specific tenant).
    pub(crate) fn segment(&self) -> &str {
        match self {
            Resolved::Common => "common",
            Resolved::Organizations => "organizations",
            Resolved::Consumers => "consumers",
            Resolved::Tenant { id } => id,
        }
    }

    /// The tenant id that goes into issuers (`{tenantid}` template for multi-tenant segments).
    fn issuer_tenant(&self) -> &str {
        match self {
            Resolved::Common | Resolved::Organizations => "{tenantid}",
            Resolved::Consumers => MSA_TENANT_ID,
            Resolved::Tenant { id } => id,
        }
    }
}

/// Resolves the `{t}` path segment; `not_found_error` is the OAuth `error` used for AADSTS90002.
pub(crate) fn resolve_tenant(
    state: &AppState,
    segment: &str,
    not_found_error: &'static str,
) -> Result<Resolved, AadError> {
    match TenantSegment::parse(segment) {
        TenantSegment::Common => Ok(Resolved::Common),
        TenantSegment::Organizations => Ok(Resolved::Organizations),
        TenantSegment::Consumers => Ok(Resolved::Consumers),
        TenantSegment::Invalid(s) => Err(AadError::invalid_tenant_syntax(&s)),
        TenantSegment::Specific(s) => state
            .directory()
            .tenant(&s)
            .map(|t| Resolved::Tenant { id: t.id.clone() })
            .ok_or_else(|| AadError::tenant_not_found(&s, not_found_error)),
    }
}

/// A JSON answer with the STS headers; discovery documents are cacheable like the real ones.
fn sts_json(ctx: &Ctx, body: String, cacheable: bool) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    sts_headers(
        &mut resp,
        ctx,
        if cacheable {
            "max-age=86400, private"
        } else {
            "no-store, no-cache"
        },
    );
    if cacheable {
        resp.headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    }
    resp
}

// ---------------------------------------------------------------------------------------------------
// Discovery

/// `GET /{t}/v2.0/.well-known/openid-configuration`
pub(crate) async fn openid_configuration_v2(
    State(state): Shared,
    ctx: Ctx,
    Path(t): Path<String>,
) -> Response {
    let resolved = match resolve_tenant(&state, &t, "invalid_tenant") {
        Ok(r) => r,
        Err(e) => return e.into_response_with(&ctx),
    };
    let base = &ctx.base;
    let seg = resolved.segment();
    let region: Value = match resolved {
        Resolved::Tenant { .. } => "WW".into(),
        _ => Value::Null,
    };
    let doc = Ordered::new()
        .with("token_endpoint", format!("{base}/{seg}/oauth2/v2.0/token"))
        .with(
            "token_endpoint_auth_methods_supported",
            json!(["client_secret_post", "private_key_jwt", "client_secret_basic"]),
        )
        .with("jwks_uri", format!("{base}/{seg}/discovery/v2.0/keys"))
        .with(
            "response_modes_supported",
            json!(["query", "fragment", "form_post"]),
        )
        .with("subject_types_supported", json!(["pairwise"]))
        .with("id_token_signing_alg_values_supported", json!(["RS256"]))
        .with(
            "response_types_supported",
            json!(["code", "id_token", "code id_token", "id_token token"]),
        )
        .with(
            "scopes_supported",
            json!(["openid", "profile", "email", "offline_access"]),
        )
        .with("issuer", format!("{base}/{}/v2.0", resolved.issuer_tenant()))
        .with("request_uri_parameter_supported", false)
        .with("userinfo_endpoint", format!("{base}/oidc/userinfo"))
        .with(
            "authorization_endpoint",
            format!("{base}/{seg}/oauth2/v2.0/authorize"),
        )
        .with(
            "device_authorization_endpoint",
            format!("{base}/{seg}/oauth2/v2.0/devicecode"),
        )
        .with("http_logout_supported", true)
        .with("frontchannel_logout_supported", true)
        .with("end_session_endpoint", format!("{base}/{seg}/oauth2/v2.0/logout"))
        .with("claims_supported", json!(CLAIMS_SUPPORTED))
        .with("kerberos_endpoint", format!("{base}/{seg}/kerberos"))
        .with("tenant_region_scope", region)
        .with("cloud_instance_name", "microsoftonline.com")
        .with("cloud_graph_host_name", "graph.windows.net")
        .with("msgraph_host", ctx.host.clone())
        .with("rbac_url", "https://pas.windows.net");
    sts_json(&ctx, doc.to_json(), true)
}

const CLAIMS_SUPPORTED: [&str; 19] = [
    "sub",
    "iss",
    "cloud_instance_name",
    "cloud_instance_host_name",
    "cloud_graph_host_name",
    "msgraph_host",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "acr",
    "nonce",
    "preferred_username",
    "name",
    "tid",
    "ver",
    "at_hash",
    "c_hash",
    "email",
];

/// `GET /{t}/.well-known/openid-configuration` (v1; issuer `https://sts.windows.net/{tid}/`, the issuer of
/// Graph access tokens).
pub(crate) async fn openid_configuration_v1(
    State(state): Shared,
    ctx: Ctx,
    Path(t): Path<String>,
) -> Response {
    let resolved = match resolve_tenant(&state, &t, "invalid_tenant") {
        Ok(r) => r,
        Err(e) => return e.into_response_with(&ctx),
    };
    let base = &ctx.base;
    let seg = resolved.segment();
    let region: Value = match resolved {
        Resolved::Tenant { .. } => "WW".into(),
        _ => Value::Null,
    };
    let doc = Ordered::new()
        .with("token_endpoint", format!("{base}/{seg}/oauth2/token"))
        .with(
            "token_endpoint_auth_methods_supported",
            json!(["client_secret_post", "private_key_jwt", "client_secret_basic"]),
        )
        .with("jwks_uri", format!("{base}/{seg}/discovery/keys"))
        .with(
            "response_modes_supported",
            json!(["query", "fragment", "form_post"]),
        )
        .with("subject_types_supported", json!(["pairwise"]))
        .with("id_token_signing_alg_values_supported", json!(["RS256"]))
        .with(
            "response_types_supported",
            json!(["code", "id_token", "code id_token", "token id_token", "token"]),
        )
        .with("scopes_supported", json!(["openid"]))
        .with(
            "issuer",
            format!("https://sts.windows.net/{}/", resolved.issuer_tenant()),
        )
        .with("microsoft_multi_refresh_token", true)
        .with("authorization_endpoint", format!("{base}/{seg}/oauth2/authorize"))
        .with(
            "device_authorization_endpoint",
            format!("{base}/{seg}/oauth2/devicecode"),
        )
        .with("http_logout_supported", true)
        .with("frontchannel_logout_supported", true)
        .with("end_session_endpoint", format!("{base}/{seg}/oauth2/logout"))
        .with("claims_supported", json!(V1_CLAIMS_SUPPORTED))
        .with(
            "check_session_iframe",
            format!("{base}/{seg}/oauth2/checksession"),
        )
        .with("userinfo_endpoint", format!("{base}/{seg}/openid/userinfo"))
        .with("kerberos_endpoint", format!("{base}/{seg}/kerberos"))
        .with("tenant_region_scope", region)
        .with("cloud_instance_name", "microsoftonline.com")
        .with("cloud_graph_host_name", "graph.windows.net")
        .with("msgraph_host", ctx.host.clone())
        .with("rbac_url", "https://pas.windows.net");
    sts_json(&ctx, doc.to_json(), true)
}

const V1_CLAIMS_SUPPORTED: [&str; 21] = [
    "sub",
    "iss",
    "cloud_instance_name",
    "cloud_instance_host_name",
    "cloud_graph_host_name",
    "msgraph_host",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "acr",
    "amr",
    "nonce",
    "email",
    "given_name",
    "family_name",
    "nickname",
    "tid",
    "ver",
    "upn",
    "unique_name",
];

/// `GET /{t}/discovery/v2.0/keys`
pub(crate) async fn keys_v2(State(state): Shared, ctx: Ctx, Path(t): Path<String>) -> Response {
    let resolved = match resolve_tenant(&state, &t, "invalid_tenant") {
        Ok(r) => r,
        Err(e) => return e.into_response_with(&ctx),
    };
    let issuer = format!("{}/{}/v2.0", ctx.base, resolved.issuer_tenant());
    let body = json!({ "keys": [state.signing_key.jwk(Some(&issuer))] });
    sts_json(&ctx, body.to_string(), true)
}

/// `GET /{t}/discovery/keys` (v1: same keys, no `issuer` member).
pub(crate) async fn keys_v1(State(state): Shared, ctx: Ctx, Path(t): Path<String>) -> Response {
    if let Err(e) = resolve_tenant(&state, &t, "invalid_tenant") {
        return e.into_response_with(&ctx);
    }
    let body = json!({ "keys": [state.signing_key.jwk(None)] });
    sts_json(&ctx, body.to_string(), true)
}

// ---------------------------------------------------------------------------------------------------
// Instance discovery and user realm

/// Public-cloud hosts and their aliases, as the real instance discovery lists them.
const CLOUDS: [(&str, &str, &[&str]); 4] = [
    (
        "login.microsoftonline.com",
        "login.windows.net",
        &[
            "login.microsoftonline.com",
            "login.windows.net",
            "login.microsoft.com",
            "sts.windows.net",
        ],
    ),
    (
        "login.partner.microsoftonline.cn",
        "login.partner.microsoftonline.cn",
        &["login.partner.microsoftonline.cn", "login.chinacloudapi.cn"],
    ),
    (
        "login.microsoftonline.us",
        "login.microsoftonline.us",
        &["login.microsoftonline.us", "login.usgovcloudapi.net"],
    ),
    (
        "login-us.microsoftonline.com",
        "login-us.microsoftonline.com",
        &["login-us.microsoftonline.com"],
    ),
];

fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

fn query_get<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

/// Host names (without port, IPv6 in brackets) that designate this emulator.
fn own_host_names(ctx: &Ctx) -> Vec<String> {
    let mut names = vec![host_without_port(&ctx.host).to_ascii_lowercase()];
    for n in ["127.0.0.1", "localhost", "[::1]"] {
        if !names.iter().any(|x| x == n) {
            names.push(n.to_owned());
        }
    }
    names
}

fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map(|(h, _)| &host[..h.len() + 1])
            .unwrap_or(host);
    }
    host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
}

/// `GET /common/discovery/instance?api-version=1.1&authorization_endpoint=…`
pub(crate) async fn instance_discovery(ctx: Ctx, RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query.as_deref());
    let api_version = query_get(&pairs, "api-version").unwrap_or("1.1").to_owned();
    let own_names = own_host_names(&ctx);
    let port = ctx.host.strip_prefix(host_without_port(&ctx.host)).unwrap_or("");
    let mut own_aliases: Vec<String> = vec![ctx.host.clone()];
    for candidate in own_names.iter().flat_map(|n| [format!("{n}{port}"), n.clone()]) {
        if !own_aliases.contains(&candidate) {
            own_aliases.push(candidate);
        }
    }

    let tenant_discovery_endpoint = match query_get(&pairs, "authorization_endpoint") {
        None => format!("{}/common/v2.0/.well-known/openid-configuration", ctx.base),
        Some(endpoint) => {
            let Ok(url) = url::Url::parse(endpoint) else {
                return AadError::unknown_instance().into_response_with(&ctx);
            };
            let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
            let tenant = url
                .path_segments()
                .and_then(|mut s| s.next())
                .filter(|s| !s.is_empty())
                .unwrap_or("common");
            let tenant = percent_decode(tenant);
            let version = if url.path().contains("/v2.0/") {
                "/v2.0"
            } else {
                ""
            };
            if CLOUDS
                .iter()
                .any(|(_, _, aliases)| aliases.contains(&host.as_str()))
            {
                format!("https://{host}/{tenant}{version}/.well-known/openid-configuration")
            } else if own_names.contains(&host) {
                format!("{}/{tenant}{version}/.well-known/openid-configuration", ctx.base)
            } else {
                return AadError::unknown_instance().into_response_with(&ctx);
            }
        }
    };
    let mut metadata: Vec<Value> = CLOUDS
        .iter()
        .map(|(network, cache, aliases)| json!({"preferred_network": network, "preferred_cache": cache, "aliases": aliases}))
        .collect();
    metadata
        .push(json!({"preferred_network": ctx.host, "preferred_cache": ctx.host, "aliases": own_aliases}));
    let body = Ordered::new()
        .with("tenant_discovery_endpoint", tenant_discovery_endpoint)
        .with("api-version", api_version)
        .with("metadata", metadata);
    sts_json(&ctx, body.to_json(), true)
}

/// `GET /common/userrealm/{username}?api-version=1.0`: `Managed` for the directory's domains, `Federated`
/// (WS-Trust, with metadata and active-auth URLs on the emulator, where no federation server answers) for
/// its federated domains, `Unknown` otherwise.
pub(crate) async fn user_realm(
    State(state): Shared,
    ctx: Ctx,
    Path((_t, username)): Path<(String, String)>,
) -> Response {
    let domain = username.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase());
    let directory = state.directory();
    let tenant = directory.tenant_for_username(&username);
    let federated = tenant
        .zip(domain.as_deref())
        .is_some_and(|(t, d)| t.is_federated_domain(d));
    let account_type = match (tenant, federated) {
        (Some(_), true) => "Federated",
        (Some(_), false) => "Managed",
        (None, _) => "Unknown",
    };
    let mut body = Ordered::new()
        .with("ver", "1.0")
        .with("account_type", account_type);
    if tenant.is_some()
        && let Some(d) = &domain
    {
        body.push("domain_name", d.as_str());
        if federated {
            let base = format!("{}/_federation/{d}", ctx.base);
            body.push("federation_protocol", "WSTrust");
            body.push("federation_metadata_url", format!("{base}/mex"));
            body.push(
                "federation_active_auth_url",
                format!("{base}/trust/2005/usernamemixed"),
            );
        }
    }
    body.push("cloud_instance_name", "microsoftonline.com");
    body.push("cloud_audience_urn", "urn:federation:MicrosoftOnline");
    sts_json(&ctx, body.to_json(), false)
}

// ---------------------------------------------------------------------------------------------------
// Token endpoint

/// The parsed form body (first non-empty value wins for repeated names).
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    pub(crate) fn parse(body: &[u8]) -> Self {
        Self(url::form_urlencoded::parse(body).into_owned().collect())
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

/// Client id and secret from `Authorization: Basic b64(urlenc(id):urlenc(secret))`.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| -> String {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((unescape(id), unescape(secret)))
}

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
        (_, Some(t)) => Resolved::Tenant { id: t.id.clone() },
        (TenantSegment::Organizations, _) => Resolved::Organizations,
        (TenantSegment::Consumers, _) => Resolved::Consumers,
        _ => Resolved::Common,
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
        other => Err(AadError::unsupported_grant_type(other)),
    }
}

/// The RFC 8628 grant type (MSAL.NET sends the short `device_code`, which is accepted too).
pub(crate) const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Client id and secret of a token request: from the body, else from HTTP Basic.
pub(crate) struct ClientCredentials {
    pub client_id: Option<String>,
    pub secret: Option<String>,
}

pub(crate) fn client_credentials_of(form: &Form, headers: &HeaderMap) -> ClientCredentials {
    let basic = basic_credentials(headers);
    let client_id = form.get("client_id").map(str::to_owned).or_else(|| {
        basic
            .as_ref()
            .map(|(id, _)| id.clone())
            .filter(|id| !id.is_empty())
    });
    let secret = form
        .get("client_secret")
        .map(str::to_owned)
        .or_else(|| basic.map(|(_, s)| s).filter(|s| !s.is_empty()));
    ClientCredentials { client_id, secret }
}

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

/// How the client authenticated; becomes the token's `appidacr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientAuth {
    /// A public client (no credential).
    Public,
    Secret,
    Certificate,
}

impl ClientAuth {
    pub(crate) fn appidacr(self) -> &'static str {
        match self {
            ClientAuth::Public => "0",
            ClientAuth::Secret => "1",
            ClientAuth::Certificate => "2",
        }
    }
}

/// Checks the client's credential: a client secret (body or Basic) or a client assertion signed with the
/// key of one of the app's certificates.
pub(crate) fn authenticate_client(
    state: &AppState,
    ctx: &Ctx,
    tenant: &Tenant,
    app: &AppRegistration,
    secret: Option<&str>,
    form: &Form,
) -> Result<ClientAuth, AadError> {
    let assertion = form.get("client_assertion");
    let assertion_type = form.get("client_assertion_type");
    if secret.is_some() && assertion.is_some() {
        return Err(AadError::conflicting_client_credentials());
    }
    if let Some(secret) = secret {
        let now = ctx.now;
        return match app.secrets.iter().find(|s| secret_eq(&s.value, secret)) {
            Some(s) if s.is_valid_at(now) => Ok(ClientAuth::Secret),
            Some(s) if s.is_expired_at(now) => Err(AadError::client_secret_expired(&app.app_id)),
            _ => Err(AadError::invalid_client_secret(&app.app_id)),
        };
    }
    if assertion_type.is_some_and(|t| t != assertion::JWT_BEARER) {
        return Err(AadError::unexpected_assertion_type());
    }
    let assertion = match (assertion, assertion_type) {
        (Some(a), Some(_)) => a,
        (Some(_), None) => return Err(AadError::missing_parameter("client_assertion_type")),
        (None, _) => return Err(AadError::credential_required("client_credentials")),
    };
    let expected = assertion::Expected {
        app,
        tenant,
        base: &ctx.base,
        now: ctx.now,
    };
    let verified = assertion::verify(&expected, assertion)?;
    if state.reject_replayed_assertions
        && let Some(jti) = &verified.jti
    {
        let until = verified.exp.saturating_add(assertion::CLOCK_SKEW_SECS);
        if !state.record_assertion(&app.app_id, jti, ctx.now.unix_timestamp(), until) {
            return Err(AadError::assertion_replayed());
        }
    }
    Ok(ClientAuth::Certificate)
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

    #[test]
    fn basic_header_parsing() {
        let mut h = HeaderMap::new();
        let enc = base64::engine::general_purpose::STANDARD.encode("abc:s%7Ee+cret");
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {enc}")).expect("hv"),
        );
        assert_eq!(
            basic_credentials(&h),
            Some(("abc".to_owned(), "s~e cret".to_owned()))
        );
    }

    #[test]
    fn host_port_split() {
        assert_eq!(host_without_port("127.0.0.1:8443"), "127.0.0.1");
        assert_eq!(host_without_port("[::1]:8443"), "[::1]");
        assert_eq!(host_without_port("localhost"), "localhost");
    }
}
