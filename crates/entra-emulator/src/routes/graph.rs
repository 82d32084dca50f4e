//! Microsoft Graph v1.0: `/users` (paged), `/users/{id|upn}`, `/me`, `/applications`,
//! `/applications/{object-id}` and `/applications(appId='{appId}')`, behind bearer-token validation.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::directory::{AppRegistration, GRAPH_APP_ID, GRAPH_RESOURCE, Tenant, User};
use crate::error_responses::{GraphError, graph_headers};
use crate::formats::{Node, Ordered, b64url, b64url_decode, graph_datetime, percent_decode};
use crate::ids::stable_guid;
use crate::jwt::{self, TokenRejection};
use crate::request_context::Ctx;
use crate::state::AppState;

/// Application permissions that allow reading users.
const USER_READ_ROLES: &[&str] = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "User.ReadBasic.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
/// Delegated permissions that allow reading other users.
const USER_READ_SCOPES: &[&str] = &[
    "User.ReadBasic.All",
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
];
/// Application permissions that allow reading applications.
const APP_READ_ROLES: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const APP_READ_SCOPES: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
];
/// Delegated permissions that allow reading the signed-in user.
const ME_SCOPES: &[&str] = &[
    "User.Read",
    "User.ReadWrite",
    "User.ReadBasic.All",
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
];

/// Default user properties, in Graph's order (`id` last).
const USER_PROPERTIES: [&str; 11] = [
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

/// Who is calling, from a validated token.
struct Caller {
    tenant_id: String,
    /// `idtyp` "app" (or no `scp`): app-only token.
    app_only: bool,
    roles: Vec<String>,
    scopes: Vec<String>,
    oid: String,
}

impl Caller {
    fn allowed(&self, roles: &[&str], scopes: &[&str]) -> bool {
        if self.app_only {
            self.roles
                .iter()
                .any(|r| roles.iter().any(|x| x.eq_ignore_ascii_case(r)))
        } else {
            self.scopes
                .iter()
                .any(|s| scopes.iter().any(|x| x.eq_ignore_ascii_case(s)))
        }
    }
}

fn www_authenticate(ctx: &Ctx) -> String {
    format!(
        "Bearer realm=\"\", authorization_uri=\"{}/common/oauth2/authorize\", client_id=\"{GRAPH_APP_ID}\"",
        ctx.base
    )
}

/// Validates the bearer token like Graph does (signature, lifetime, audience, issuer).
fn authenticate(state: &AppState, ctx: &Ctx, headers: &HeaderMap) -> Result<Caller, GraphError> {
    let unauthorized = |message: &str| GraphError::unauthorized(message, www_authenticate(ctx));
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ').unwrap_or((v.trim(), ""));
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        })
        .unwrap_or_default();
    if token.is_empty() {
        return Err(unauthorized("Access token is empty."));
    }
    let claims = jwt::decode_verified(&state.signing_key, &token).map_err(|e| match e {
        TokenRejection::Malformed => unauthorized("CompactToken parsing failed with error code: 80049217"),
        TokenRejection::BadSignature => unauthorized("Signature is invalid."),
    })?;
    let now = ctx.now.unix_timestamp();
    let exp = claims.get("exp").and_then(Value::as_i64);
    let nbf = claims.get("nbf").and_then(Value::as_i64).unwrap_or(i64::MIN);
    if exp.is_none_or(|exp| now >= exp) || now < nbf {
        return Err(unauthorized("Access token has expired or is not yet valid."));
    }
    let aud = claims.get("aud").and_then(Value::as_str).unwrap_or_default();
    let aud_ok = aud.trim_end_matches('/').eq_ignore_ascii_case(GRAPH_RESOURCE)
        || aud.eq_ignore_ascii_case(GRAPH_APP_ID);
    if !aud_ok {
        return Err(unauthorized("Access token validation failure. Invalid audience."));
    }
    let tid = claims
        .get("tid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let iss_ok =
        claims.get("iss").and_then(Value::as_str) == Some(format!("https://sts.windows.net/{tid}/").as_str());
    if !iss_ok {
        return Err(unauthorized("Access token validation failure. Invalid issuer."));
    }
    if state.directory().tenant(&tid).is_none() {
        return Err(unauthorized("Access token validation failure."));
    }
    let strings = |name: &str| -> Vec<String> {
        claims
            .get(name)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let scopes: Vec<String> = claims
        .get("scp")
        .and_then(Value::as_str)
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let app_only = claims.get("idtyp").and_then(Value::as_str) == Some("app") || claims.get("scp").is_none();
    Ok(Caller {
        tenant_id: tid,
        app_only,
        roles: strings("roles"),
        scopes,
        oid: claims
            .get("oid")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    })
}

/// Everything under `/v1.0/`.
pub(crate) async fn graph(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match graph_inner(&state, &ctx, &method, &uri, &headers, query.as_deref()) {
        Ok(body) => {
            let mut resp = (StatusCode::OK, body).into_response();
            graph_headers(&mut resp, &ctx, true);
            resp
        }
        Err(e) => {
            tracing::info!(path = %uri.path(), code = e.code, status = e.status.as_u16(), "graph request rejected");
            e.into_response_with(&ctx)
        }
    }
}

fn graph_inner(
    state: &AppState,
    ctx: &Ctx,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<String, GraphError> {
    let caller = authenticate(state, ctx, headers)?;
    if method != Method::GET {
        return Err(GraphError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request target.",
        ));
    }
    let path = uri.path().strip_prefix("/v1.0").unwrap_or_default();
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let query = Query::parse(query)?;
    let directory = state.directory();
    let tenant = directory
        .tenant(&caller.tenant_id)
        .ok_or_else(|| GraphError::unauthorized("Access token validation failure.", www_authenticate(ctx)))?;
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["users"] => {
            require(&caller, USER_READ_ROLES, USER_READ_SCOPES)?;
            let select = query.select(&USER_PROPERTIES, "microsoft.graph.user")?;
            let items: Vec<Ordered> = tenant.users.iter().map(|u| user_json(u, &select)).collect();
            collection(ctx, &query, "users", &select, items)
        }
        ["users", id] => {
            require(&caller, USER_READ_ROLES, USER_READ_SCOPES)?;
            let select = query.select(&USER_PROPERTIES, "microsoft.graph.user")?;
            let user = tenant.user(id).ok_or_else(|| GraphError::not_found(id))?;
            Ok(entity(ctx, "users", &select, user_json(user, &select)))
        }
        ["me"] => {
            if caller.app_only {
                return Err(GraphError::bad_request(
                    "/me request is only valid with delegated authentication flow.",
                ));
            }
            require(&caller, &[], ME_SCOPES)?;
            let select = query.select(&USER_PROPERTIES, "microsoft.graph.user")?;
            let user = tenant
                .user(&caller.oid)
                .ok_or_else(|| GraphError::not_found(&caller.oid))?;
            Ok(entity(ctx, "users", &select, user_json(user, &select)))
        }
        ["applications"] => {
            require(&caller, APP_READ_ROLES, APP_READ_SCOPES)?;
            let items: Vec<Ordered> = tenant.apps.iter().map(|a| application_json(tenant, a)).collect();
            collection(ctx, &query, "applications", &[], items)
        }
        ["applications", id] => {
            require(&caller, APP_READ_ROLES, APP_READ_SCOPES)?;
            let app = tenant
                .app_by_object_id(id)
                .ok_or_else(|| GraphError::not_found(id))?;
            Ok(entity(ctx, "applications", &[], application_json(tenant, app)))
        }
        [seg] if seg.starts_with("applications(") => {
            require(&caller, APP_READ_ROLES, APP_READ_SCOPES)?;
            let app_id = parse_alternate_key(seg, "applications", "appId").ok_or_else(|| {
                GraphError::bad_request(format!("Resource not found for the segment '{seg}'."))
            })?;
            let app = tenant
                .app_by_client_id(&app_id)
                .ok_or_else(|| GraphError::not_found(&app_id))?;
            Ok(entity(ctx, "applications", &[], application_json(tenant, app)))
        }
        [] => Err(GraphError::bad_request("Invalid request.")),
        [first, ..] => Err(GraphError::bad_request(format!(
            "Resource not found for the segment '{first}'."
        ))),
    }
}

fn require(caller: &Caller, roles: &[&str], scopes: &[&str]) -> Result<(), GraphError> {
    if caller.allowed(roles, scopes) {
        Ok(())
    } else {
        Err(GraphError::forbidden())
    }
}

/// `applications(appId='…')` → the key value.
fn parse_alternate_key(segment: &str, entity_set: &str, key: &str) -> Option<String> {
    let inner = segment
        .strip_prefix(entity_set)?
        .strip_prefix('(')?
        .strip_suffix(')')?;
    let (name, value) = inner.split_once('=')?;
    if !name.trim().eq_ignore_ascii_case(key) {
        return None;
    }
    let value = value.trim();
    let value = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\''))?;
    Some(value.replace("''", "'"))
}

/// OData system query options we understand.
struct Query {
    top: Option<usize>,
    skip_offset: usize,
    select: Option<Vec<String>>,
    /// Original `name=value` pairs (still encoded), minus `$skiptoken`, for next links.
    passthrough: Vec<String>,
}

impl Query {
    fn parse(raw: Option<&str>) -> Result<Self, GraphError> {
        let mut q = Query {
            top: None,
            skip_offset: 0,
            select: None,
            passthrough: Vec::new(),
        };
        for part in raw.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            let name = decode_query_component(k);
            let value = decode_query_component(v);
            match name.to_ascii_lowercase().as_str() {
                "$skiptoken" => {
                    q.skip_offset = decode_skiptoken(&value).ok_or_else(|| {
                        GraphError::new(
                            StatusCode::BAD_REQUEST,
                            "Directory_ExpiredPageToken",
                            "The specified page token value has expired and can no longer be included in your request.",
                        )
                    })?;
                    continue;
                }
                "$top" => {
                    let top = value.trim().parse::<i64>().ok().filter(|t| (1..=999).contains(t)).ok_or_else(|| {
                        GraphError::new(
                            StatusCode::BAD_REQUEST,
                            "Request_UnsupportedQuery",
                            format!("Invalid page size specified: '{value}'. Must be between 1 and 999 inclusive."),
                        )
                    })?;
                    q.top = usize::try_from(top).ok();
                }
                "$select" => {
                    q.select = Some(
                        value
                            .split(',')
                            .map(|s| s.trim().to_owned())
                            .filter(|s| !s.is_empty())
                            .collect(),
                    );
                }
                _ => {}
            }
            q.passthrough.push(part.to_owned());
        }
        Ok(q)
    }

    /// The `$select`ed properties in canonical spelling (empty = defaults). Unknown names → 400.
    fn select(&self, known: &[&str], type_name: &str) -> Result<Vec<String>, GraphError> {
        let Some(names) = &self.select else {
            return Ok(Vec::new());
        };
        names
            .iter()
            .map(|n| {
                known.iter().find(|k| k.eq_ignore_ascii_case(n)).map(|k| (*k).to_owned()).ok_or_else(|| {
                    GraphError::bad_request(format!(
                        "Parsing OData Select and Expand failed: Could not find a property named '{n}' on type '{type_name}'."
                    ))
                })
            })
            .collect()
    }
}

fn decode_query_component(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

const SKIPTOKEN_MAGIC: &[u8] = b"DSpt\x02\x00\x01\x00";

/// Opaque page token: magic + offset + checksum, base64url.
fn encode_skiptoken(offset: usize) -> String {
    let offset = u32::try_from(offset).unwrap_or(u32::MAX);
    let mut bytes = SKIPTOKEN_MAGIC.to_vec();
    bytes.extend_from_slice(&offset.to_be_bytes());
    let check = bytes.iter().fold(0x5au8, |a, b| a.rotate_left(3) ^ b);
    bytes.push(check);
    b64url(&bytes)
}

fn decode_skiptoken(token: &str) -> Option<usize> {
    let bytes = b64url_decode(token)?;
    let (body, check) = bytes.split_at(bytes.len().checked_sub(1)?);
    if body.len() != SKIPTOKEN_MAGIC.len() + 4 || !body.starts_with(SKIPTOKEN_MAGIC) {
        return None;
    }
    if body.iter().fold(0x5au8, |a, b| a.rotate_left(3) ^ b) != *check.first()? {
        return None;
    }
    let mut offset = [0u8; 4];
    offset.copy_from_slice(&body[SKIPTOKEN_MAGIC.len()..]);
    usize::try_from(u32::from_be_bytes(offset)).ok()
}

/// `{base}/v1.0/$metadata#users`, or `…#users(displayName,mail)` with `$select`.
fn context_url(ctx: &Ctx, set: &str, select: &[String]) -> String {
    if select.is_empty() {
        format!("{}/v1.0/$metadata#{set}", ctx.base)
    } else {
        format!("{}/v1.0/$metadata#{set}({})", ctx.base, select.join(","))
    }
}

/// A paged collection response.
fn collection(
    ctx: &Ctx,
    query: &Query,
    set: &str,
    select: &[String],
    items: Vec<Ordered>,
) -> Result<String, GraphError> {
    let page_size = query.top.unwrap_or(100);
    let start = query.skip_offset.min(items.len());
    let end = start.saturating_add(page_size).min(items.len());
    let mut body = Ordered::new().with("@odata.context", context_url(ctx, set, select));
    if end < items.len() {
        let mut parts = query.passthrough.clone();
        parts.push(format!("$skiptoken={}", encode_skiptoken(end)));
        body.push(
            "@odata.nextLink",
            format!("{}/v1.0/{set}?{}", ctx.base, parts.join("&")),
        );
    }
    body.push_objects("value", items.into_iter().skip(start).take(end - start).collect());
    Ok(body.to_json())
}

/// A single-entity response.
fn entity(ctx: &Ctx, set: &str, select: &[String], value: Ordered) -> String {
    let mut body = Ordered::new().with(
        "@odata.context",
        format!("{}/$entity", context_url(ctx, set, select)),
    );
    body.0.extend(value.0);
    body.to_json()
}

fn opt(s: &Option<String>) -> Value {
    s.as_deref().map_or(Value::Null, Value::from)
}

/// A user with the default properties, or the `$select`ed ones, in Graph's member order.
fn user_json(u: &User, select: &[String]) -> Ordered {
    let all = [
        ("businessPhones", json!(u.business_phones)),
        ("displayName", json!(u.display_name)),
        ("givenName", opt(&u.given_name)),
        ("jobTitle", opt(&u.job_title)),
        ("mail", opt(&u.mail)),
        ("mobilePhone", opt(&u.mobile_phone)),
        ("officeLocation", opt(&u.office_location)),
        ("preferredLanguage", opt(&u.preferred_language)),
        ("surname", opt(&u.surname)),
        ("userPrincipalName", json!(u.user_principal_name)),
        ("id", json!(u.id)),
    ];
    Ordered(
        all.into_iter()
            .filter(|(k, _)| select.is_empty() || select.iter().any(|s| s == k))
            .map(|(k, v)| (k.to_owned(), Node::Value(v)))
            .collect(),
    )
}

/// Well-known ids of Microsoft Graph application permissions (unknown names get a stable made-up id).
fn graph_app_role_id(role: &str) -> String {
    let known = [
        ("User.Read.All", "df021288-bdef-4463-88db-98f22de89214"),
        ("User.ReadWrite.All", "741f803b-c850-494e-b5df-cde7c675a1ca"),
        ("User.ReadBasic.All", "97235f07-e226-4f63-ace3-39588e11d3a1"),
        ("Application.Read.All", "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30"),
        (
            "Application.ReadWrite.All",
            "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9",
        ),
        ("Directory.Read.All", "7ab1d382-f21e-4acd-a863-ba3e13f7da61"),
        ("Directory.ReadWrite.All", "19dbc75e-c2e2-444c-a770-ec69d8559fc7"),
    ];
    known
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(role))
        .map(|(_, id)| (*id).to_owned())
        .unwrap_or_else(|| stable_guid("graph-app-role", role))
}

/// Well-known ids of Microsoft Graph delegated permissions (unknown names get a stable made-up id).
fn graph_scope_id(scope: &str) -> String {
    let known = [
        ("User.Read", "e1fe6dd8-ba31-4d61-89e7-88639da4683d"),
        ("User.ReadBasic.All", "b340eb25-3456-403f-be2f-af7a0d370277"),
    ];
    known
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(scope))
        .map(|(_, id)| (*id).to_owned())
        .unwrap_or_else(|| stable_guid("graph-scope", scope))
}

/// An application object as Graph returns it (never the secret values: `secretText` is null).
fn application_json(tenant: &Tenant, app: &AppRegistration) -> Ordered {
    let created = app
        .secrets
        .iter()
        .map(|s| s.start_date_time)
        .chain(app.certificates.iter().map(|c| c.start_date_time))
        .min()
        .map(graph_datetime)
        .unwrap_or_else(|| "2024-01-01T00:00:00Z".to_owned());
    let password_credentials: Vec<Value> = app
        .secrets
        .iter()
        .map(|s| {
            json!({
                "customKeyIdentifier": null,
                "displayName": s.display_name,
                "endDateTime": graph_datetime(s.end_date_time),
                "hint": s.hint,
                "keyId": s.key_id,
                "secretText": null,
                "startDateTime": graph_datetime(s.start_date_time),
            })
        })
        .collect();
    // `key` (the certificate) is only returned when `$select`ed on the real service; null here.
    let key_credentials: Vec<Value> = app
        .certificates
        .iter()
        .map(|c| {
            json!({
                "customKeyIdentifier": c.thumbprint_sha1,
                "displayName": c.display_name,
                "endDateTime": graph_datetime(c.end_date_time),
                "key": null,
                "keyId": c.key_id,
                "startDateTime": graph_datetime(c.start_date_time),
                "type": "AsymmetricX509Cert",
                "usage": "Verify",
            })
        })
        .collect();
    let resource_access: Vec<Value> = app
        .delegated_permissions
        .iter()
        .map(|p| json!({"id": graph_scope_id(p), "type": "Scope"}))
        .chain(
            app.app_roles
                .iter()
                .map(|r| json!({"id": graph_app_role_id(r), "type": "Role"})),
        )
        .collect();
    let required_resource_access = if resource_access.is_empty() {
        json!([])
    } else {
        json!([{ "resourceAppId": GRAPH_APP_ID, "resourceAccess": resource_access }])
    };
    Ordered::new()
        .with("id", app.object_id.as_str())
        .with("deletedDateTime", json!(null))
        .with("appId", app.app_id.as_str())
        .with("applicationTemplateId", json!(null))
        .with("disabledByMicrosoftStatus", json!(null))
        .with("createdDateTime", created)
        .with("displayName", app.display_name.as_str())
        .with("description", json!(null))
        .with("groupMembershipClaims", json!(null))
        .with("identifierUris", json!([]))
        .with("isDeviceOnlyAuthSupported", json!(null))
        .with("isFallbackPublicClient", app.is_fallback_public_client)
        .with("notes", json!(null))
        .with("publisherDomain", tenant.primary_domain())
        .with("serviceManagementReference", json!(null))
        .with("signInAudience", app.sign_in_audience.as_str())
        .with("tags", json!([]))
        .with("tokenEncryptionKeyId", json!(null))
        .with("defaultRedirectUri", json!(null))
        .with("certification", json!(null))
        .with("optionalClaims", json!(null))
        .with("requestSignatureVerification", json!(null))
        .with("addIns", json!([]))
        .with("api", json!({
            "acceptMappedClaims": null,
            "knownClientApplications": [],
            "requestedAccessTokenVersion": null,
            "oauth2PermissionScopes": [],
            "preAuthorizedApplications": [],
        }))
        .with("appRoles", json!([]))
        .with("info", json!({
            "logoUrl": null,
            "marketingUrl": null,
            "privacyStatementUrl": null,
            "supportUrl": null,
            "termsOfServiceUrl": null,
        }))
        .with("keyCredentials", key_credentials)
        .with("parentalControlSettings", json!({ "countriesBlockedForMinors": [], "legalAgeGroupRule": "Allow" }))
        .with("passwordCredentials", password_credentials)
        .with("publicClient", json!({ "redirectUris": app.public_client_redirect_uris }))
        .with("requiredResourceAccess", required_resource_access)
        .with("verifiedPublisher", json!({ "displayName": null, "verifiedPublisherId": null, "addedDateTime": null }))
        .with("web", json!({
            "homePageUrl": null,
            "logoutUrl": null,
            "redirectUris": app.web_redirect_uris,
            "implicitGrantSettings": { "enableAccessTokenIssuance": false, "enableIdTokenIssuance": false },
            "redirectUriSettings": [],
        }))
        .with("spa", json!({ "redirectUris": [] }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skiptoken_roundtrip() {
        for n in [0usize, 5, 999, 123_456] {
            assert_eq!(decode_skiptoken(&encode_skiptoken(n)), Some(n));
        }
        assert_eq!(decode_skiptoken("garbage"), None);
        let mut t = encode_skiptoken(5);
        t.push('A');
        assert_eq!(decode_skiptoken(&t), None);
    }

    #[test]
    fn alternate_key() {
        assert_eq!(
            parse_alternate_key("applications(appId='abc')", "applications", "appId").as_deref(),
            Some("abc")
        );
        assert_eq!(
            parse_alternate_key("applications(appid='abc')", "applications", "appId").as_deref(),
            Some("abc")
        );
        assert_eq!(
            parse_alternate_key("applications(appId=abc)", "applications", "appId"),
            None
        );
        assert_eq!(
            parse_alternate_key("applications(uniqueName='x')", "applications", "appId"),
            None
        );
    }

    #[test]
    fn top_validation() {
        assert!(Query::parse(Some("$top=5")).is_ok());
        let e = Query::parse(Some("%24top=1000")).err().expect("error");
        assert_eq!(e.code, "Request_UnsupportedQuery");
        assert!(e.message.contains("'1000'"));
        assert!(Query::parse(Some("$top=0")).is_err());
    }
}
