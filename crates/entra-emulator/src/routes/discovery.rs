//! OpenID Connect discovery (v2 and v1 documents), signing keys, instance discovery and user realm
//! discovery: the read-only identity-platform endpoints a client calls before it asks for a token.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error_responses::{AadError, sts_headers};
use crate::formats::{Ordered, percent_decode};
use crate::request_context::Ctx;
use crate::routes::request::resolve_tenant;
use crate::state::AppState;
use crate::tenancy::ResolvedTenant;

type Shared = State<Arc<AppState>>;

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
        ResolvedTenant::Tenant { .. } => "WW".into(),
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
        ResolvedTenant::Tenant { .. } => "WW".into(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_split() {
        assert_eq!(host_without_port("127.0.0.1:8443"), "127.0.0.1");
        assert_eq!(host_without_port("[::1]:8443"), "[::1]");
        assert_eq!(host_without_port("localhost"), "localhost");
    }
}
