//! Authorities (`https://host/tenant`), the Microsoft clouds, and OIDC discovery of the endpoints.

use std::fmt;
use std::net::IpAddr;

use serde::Deserialize;
use url::Url;

use crate::error::{ConfigError, HttpError, Result};
use crate::http::{HttpClient, RequestContext};

/// Authority host of the public cloud.
pub const PUBLIC_CLOUD_HOST: &str = "https://login.microsoftonline.com";

/// Where an authority host that is not a known Microsoft cloud is validated (instance discovery), as MSAL does.
pub const INSTANCE_DISCOVERY_ENDPOINT: &str = "https://login.microsoftonline.com/common/discovery/instance";

/// The variable by which applications let users turn authority validation off (`off`), for a private
/// deployment that Microsoft's instance discovery does not know; the library reads no variable itself: see
/// [`Authority::validated`].
pub const AUTHORITY_VALIDATION_VAR: &str = "IDENTITY_AUTHORITY_VALIDATION";

/// The Microsoft clouds this crate knows by host name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cloud {
    /// Global Azure (`login.microsoftonline.com` and its aliases).
    Public,
    /// Azure US Government (`login.microsoftonline.us`).
    UsGovernment,
    /// Azure operated by 21Vianet (`login.chinacloudapi.cn`, `login.partner.microsoftonline.cn`).
    China,
    /// Any other host: a private deployment, a proxy, or a local emulator.
    Other,
}

impl Cloud {
    /// Which cloud a host name belongs to.
    pub fn of_host(host: &str) -> Cloud {
        match host.to_ascii_lowercase().as_str() {
            "login.microsoftonline.com" | "login.windows.net" | "login.microsoft.com" | "sts.windows.net" => {
                Cloud::Public
            }
            "login.microsoftonline.us" | "login.usgovcloudapi.net" => Cloud::UsGovernment,
            "login.chinacloudapi.cn" | "login.partner.microsoftonline.cn" => Cloud::China,
            _ => Cloud::Other,
        }
    }
}

/// The kinds of tenant segment an authority may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TenantKind {
    /// A directory (tenant) ID.
    Guid,
    /// A verified domain such as `contoso.onmicrosoft.com`.
    Domain,
    /// `common`: work, school and personal accounts (user flows only).
    Common,
    /// `organizations`: any work or school account (user flows only).
    Organizations,
    /// `consumers`: personal Microsoft accounts only.
    Consumers,
}

impl TenantKind {
    /// Classifies a tenant segment, or refuses it.
    pub fn classify(tenant: &str) -> Result<TenantKind, ConfigError> {
        let invalid = || ConfigError::InvalidTenant {
            tenant: tenant.to_string(),
        };
        match tenant.to_ascii_lowercase().as_str() {
            "common" => return Ok(TenantKind::Common),
            "organizations" => return Ok(TenantKind::Organizations),
            "consumers" => return Ok(TenantKind::Consumers),
            _ => {}
        }
        if uuid::Uuid::try_parse(tenant).is_ok() && tenant.len() == 36 {
            return Ok(TenantKind::Guid);
        }
        if is_dns_name(tenant) {
            Ok(TenantKind::Domain)
        } else {
            Err(invalid())
        }
    }

    /// Whether the tenant names one directory (GUID or domain), as app-only tokens require.
    pub fn is_specific(self) -> bool {
        matches!(self, TenantKind::Guid | TenantKind::Domain)
    }
}

fn is_dns_name(s: &str) -> bool {
    let labels: Vec<&str> = s.split('.').collect();
    s.len() <= 253
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.chars().any(|c| c.is_ascii_alphabetic()))
}

/// A validated authority: scheme, host, optional port, and one tenant segment.
///
/// Before the first request that carries a credential, a host that is neither a known Microsoft cloud nor
/// loopback is checked with Microsoft's instance discovery, as MSAL does, and refused if unknown. Turn that off
/// with [`Authority::validated`] for a private deployment (applications map [`AUTHORITY_VALIDATION_VAR`]`=off`
/// to it).
#[derive(Clone, PartialEq, Eq)]
pub struct Authority {
    host_url: Url,
    tenant: String,
    kind: TenantKind,
    validate: bool,
    instance_discovery: Option<Url>,
    /// Always read the endpoints from OIDC discovery, even where Entra's layout would give them.
    discover_endpoints: bool,
}

impl Authority {
    /// Parses a full authority URL such as `https://login.microsoftonline.com/contoso.onmicrosoft.com`.
    ///
    /// A URL with a user name or password (`https://user:password@host/…`) is refused, and the error does not
    /// repeat them.
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{Authority, Cloud};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let authority = Authority::parse("https://login.microsoftonline.com/contoso.onmicrosoft.com")?;
    /// assert_eq!(authority.tenant(), "contoso.onmicrosoft.com");
    /// assert_eq!(authority.cloud(), Cloud::Public);
    ///
    /// // The error names the problem (and never repeats a password found in the URL).
    /// assert!(Authority::parse("https://login.microsoftonline.com").is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn parse(value: &str) -> Result<Authority, ConfigError> {
        let bad = |reason: &str| ConfigError::InvalidAuthority {
            value: without_userinfo(value),
            reason: without_userinfo(reason),
        };
        let url = Url::parse(value.trim()).map_err(|e| bad(&e.to_string()))?;
        let segments: Vec<&str> = url
            .path_segments()
            .map(|s| s.filter(|p| !p.is_empty()).collect())
            .unwrap_or_default();
        let tenant = match segments.as_slice() {
            [tenant] => *tenant,
            [] => return Err(bad("it has no tenant: expected https://<host>/<tenant>")),
            _ => {
                return Err(bad(
                    "expected exactly one path segment, the tenant: https://<host>/<tenant>",
                ));
            }
        };
        let host = host_url_of(&url).map_err(|reason| bad(&reason))?;
        Authority::new(host, tenant)
    }

    /// Builds an authority from a host URL (`AZURE_AUTHORITY_HOST`, default public cloud) and a tenant.
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{Authority, Cloud};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // AZURE_AUTHORITY_HOST and AZURE_TENANT_ID, e.g. for Microsoft Entra ID operated by 21Vianet.
    /// let host = Some("https://login.chinacloudapi.cn");
    /// let authority = Authority::from_host_and_tenant(host, "contoso.partner.onmschina.cn")?;
    /// assert_eq!(authority.to_string(), "https://login.chinacloudapi.cn/contoso.partner.onmschina.cn");
    /// assert_eq!(authority.cloud(), Cloud::China);
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_host_and_tenant(host: Option<&str>, tenant: &str) -> Result<Authority, ConfigError> {
        let host_value = host.unwrap_or(PUBLIC_CLOUD_HOST).trim();
        let bad = |reason: &str| ConfigError::InvalidAuthority {
            value: without_userinfo(host_value),
            reason: without_userinfo(reason),
        };
        let url =
            Url::parse(host_value).map_err(|e| bad(&format!("{e} (expected e.g. {PUBLIC_CLOUD_HOST})")))?;
        if url.path() != "/" && !url.path().is_empty() {
            return Err(bad(
                "an authority host has no path; give the tenant apart from the host",
            ));
        }
        let host = host_url_of(&url).map_err(|reason| bad(&reason))?;
        Authority::new(host, tenant.trim())
    }

    /// Public cloud authority for a tenant.
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::Authority;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let authority = Authority::public_cloud("organizations")?;
    /// assert_eq!(authority.to_string(), "https://login.microsoftonline.com/organizations");
    /// assert!(!authority.tenant_kind().is_specific());
    /// # Ok(())
    /// # }
    /// ```
    pub fn public_cloud(tenant: &str) -> Result<Authority, ConfigError> {
        Authority::from_host_and_tenant(None, tenant)
    }

    fn new(host_url: Url, tenant: &str) -> Result<Authority, ConfigError> {
        let kind = TenantKind::classify(tenant)?;
        Ok(Authority {
            host_url,
            tenant: tenant.to_string(),
            kind,
            validate: true,
            instance_discovery: None,
            discover_endpoints: false,
        })
    }

    /// Turns authority validation on (the default) or off. Off, any https host is trusted with the credential:
    /// only for a private deployment that Microsoft's instance discovery does not know. Applications let users
    /// choose with [`AUTHORITY_VALIDATION_VAR`]`=off`.
    pub fn validated(mut self, validate: bool) -> Authority {
        self.validate = validate;
        self
    }

    /// Validates the host at this instance discovery endpoint instead of [`INSTANCE_DISCOVERY_ENDPOINT`] (a
    /// sovereign or test deployment). It must be https (plain http only on loopback).
    pub fn with_instance_discovery_endpoint(mut self, endpoint: &str) -> Result<Authority, ConfigError> {
        let url = Url::parse(endpoint).map_err(|e| ConfigError::InvalidUrl {
            setting: "the instance discovery endpoint",
            value: without_userinfo(endpoint),
            reason: e.to_string(),
        })?;
        ensure_secure(&url)?;
        self.instance_discovery = Some(url);
        Ok(self)
    }

    /// Reads the endpoints from the OIDC discovery document even where the authority has Entra's layout (see
    /// [`Authority::has_entra_layout`]): for a deployment that serves another layout behind an Entra-like
    /// authority. Costs one request per run (the document is cached with the tokens).
    pub fn discover_endpoints(mut self, discover: bool) -> Authority {
        self.discover_endpoints = discover;
        self
    }

    /// Whether the token and device-code endpoints follow Entra's layout, `{authority}/oauth2/v2.0/token` and
    /// `{authority}/oauth2/v2.0/devicecode`, so that no discovery request is needed (as the Azure SDKs do):
    /// the host is a known Microsoft cloud, or a host that is not validated (loopback, or validation turned
    /// off), and the tenant segment is not `adfs` (AD FS has another layout), unless
    /// [`Authority::discover_endpoints`] asks for discovery. Otherwise the endpoints come from OIDC discovery;
    /// a derived endpoint that answers 404 also falls back to it.
    pub fn has_entra_layout(&self) -> bool {
        !self.discover_endpoints
            && !self.tenant.eq_ignore_ascii_case("adfs")
            && (self.cloud() != Cloud::Other || !self.validate || is_loopback(&self.host_url))
    }

    /// `{authority}/{path…}`, for the endpoints of Entra's layout.
    pub(crate) fn endpoint(&self, path: &[&str]) -> Result<Url, ConfigError> {
        let mut url = self.host_url.clone();
        url.path_segments_mut()
            .map_err(|()| ConfigError::InvalidAuthority {
                value: self.to_string(),
                reason: "it cannot have a path".into(),
            })?
            .clear()
            .push(&self.tenant)
            .extend(path);
        Ok(url)
    }

    /// Whether the host is checked with instance discovery before use: validation is on, and the host is
    /// neither a known Microsoft cloud nor loopback.
    pub fn needs_validation(&self) -> bool {
        self.validate && self.cloud() == Cloud::Other && !is_loopback(&self.host_url)
    }

    /// The instance discovery request that validates this authority's host (MSAL's form, api-version 1.1).
    pub(crate) fn instance_discovery_url(&self) -> Result<Url, ConfigError> {
        let mut url = match &self.instance_discovery {
            Some(url) => url.clone(),
            None => Url::parse(INSTANCE_DISCOVERY_ENDPOINT).map_err(|e| ConfigError::InvalidUrl {
                setting: "the instance discovery endpoint",
                value: INSTANCE_DISCOVERY_ENDPOINT.into(),
                reason: e.to_string(),
            })?,
        };
        let authorize = format!("{}/{}/oauth2/v2.0/authorize", self.host_url(), self.tenant);
        url.query_pairs_mut()
            .clear()
            .append_pair("api-version", "1.1")
            .append_pair("authorization_endpoint", &authorize);
        Ok(url)
    }

    /// Reads an instance discovery answer (the body of a success, or of an error answer): `invalid_instance`
    /// refuses the host; a document naming a `tenant_discovery_endpoint` accepts it.
    pub(crate) fn check_instance_discovery(&self, url: &str, body: &[u8]) -> Result<()> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            error: Option<String>,
            #[serde(default)]
            tenant_discovery_endpoint: Option<String>,
        }
        let answer: Answer = crate::json::parse_json(body, url, "instance discovery answer")?;
        match (answer.error.as_deref(), answer.tenant_discovery_endpoint) {
            (Some("invalid_instance"), _) => Err(self.unknown_host().into()),
            (None, Some(endpoint)) if !endpoint.is_empty() => Ok(()),
            (error, _) => Err(HttpError::InvalidResponse {
                url: url.to_string(),
                reason: format!(
                    "no tenant_discovery_endpoint in the instance discovery answer (error: {})",
                    error.unwrap_or("none")
                ),
            }
            .into()),
        }
    }

    /// The refusal of a host instance discovery does not know.
    pub(crate) fn unknown_host(&self) -> ConfigError {
        ConfigError::UnknownAuthorityHost {
            host: self.environment(),
        }
    }

    /// `https://host[:port]` without a trailing slash.
    pub fn host_url(&self) -> &str {
        self.host_url.as_str().trim_end_matches('/')
    }

    /// The host name (and port, if any): the cache's "environment".
    pub fn environment(&self) -> String {
        match (self.host_url.host_str(), self.host_url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => String::new(),
        }
    }

    /// The tenant segment as configured.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// What kind of tenant segment this is.
    pub fn tenant_kind(&self) -> TenantKind {
        self.kind
    }

    /// Which cloud the host belongs to.
    pub fn cloud(&self) -> Cloud {
        Cloud::of_host(self.host_url.host_str().unwrap_or_default())
    }

    /// `scheme://host[:port]`: where token and device-code requests must go.
    pub fn origin(&self) -> url::Origin {
        self.host_url.origin()
    }

    /// The OIDC discovery document URL: `{authority}/v2.0/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            self.host_url(),
            self.tenant
        )
    }
}

impl fmt::Display for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.host_url(), self.tenant)
    }
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Authority({self})")
    }
}

/// The value with any `user:password@` of its URL replaced, so an error can quote it.
fn without_userinfo(value: &str) -> String {
    let Some(scheme_end) = value.find("://") else {
        return value.to_string();
    };
    let rest = &value[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}://[redacted]@{}", &value[..scheme_end], &rest[at + 1..]),
        None => value.to_string(),
    }
}

/// Reduces a URL to `scheme://host[:port]/`, enforcing https except on loopback.
fn host_url_of(url: &Url) -> Result<Url, String> {
    if url.query().is_some() || url.fragment().is_some() {
        return Err("it must not have a query or fragment".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("it must not contain a user name or password".into());
    }
    let host = url.host_str().ok_or("it has no host")?;
    match url.scheme() {
        "https" => {}
        "http" if ensure_secure(url).is_ok() => {}
        "http" => {
            return Err(
                "plain http is only allowed for loopback hosts (127.0.0.1, ::1, localhost); use https".into(),
            );
        }
        other => return Err(format!("scheme '{other}' is not supported; use https")),
    }
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    Url::parse(&format!("{}://{host}{port}/", url.scheme())).map_err(|e| e.to_string())
}

/// Refuses URLs that would send secrets or tokens in clear text: https, or plain http to a loopback host only.
pub fn ensure_secure(url: &Url) -> Result<(), ConfigError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        _ => Err(ConfigError::InsecureUrl { url: url.to_string() }),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// A tenant's endpoints: as its OIDC discovery document announces them, or as Entra's layout gives them
/// ([`Metadata::from_entra_layout`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metadata {
    /// Where token requests go.
    pub token_endpoint: Url,
    /// Authorization endpoint (interactive flows).
    pub authorization_endpoint: Option<Url>,
    /// Device authorization endpoint (device-code flow).
    pub device_authorization_endpoint: Option<Url>,
    /// Issuer of ID tokens.
    pub issuer: String,
    /// Signing keys.
    pub jwks_uri: Option<Url>,
    /// The tenant as the service names it: the first path segment of `token_endpoint` (a GUID for a domain).
    pub tenant_id: String,
}

impl Metadata {
    /// The endpoints of an authority with Entra's layout ([`Authority::has_entra_layout`]), without a
    /// request: `{authority}/oauth2/v2.0/token`, `…/devicecode`, `…/authorize`, keys at
    /// `{authority}/discovery/v2.0/keys`. The issuer is unknown without discovery (empty), and `tenant_id` is
    /// the tenant as configured (a domain stays a domain).
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{Authority, Metadata};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let authority = Authority::parse("https://login.microsoftonline.com/contoso.onmicrosoft.com")?;
    /// assert!(authority.has_entra_layout());
    /// let metadata = Metadata::from_entra_layout(&authority)?;
    /// assert_eq!(
    ///     metadata.token_endpoint.as_str(),
    ///     "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    /// );
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_entra_layout(authority: &Authority) -> Result<Metadata, ConfigError> {
        Ok(Metadata {
            token_endpoint: authority.endpoint(&["oauth2", "v2.0", "token"])?,
            authorization_endpoint: Some(authority.endpoint(&["oauth2", "v2.0", "authorize"])?),
            device_authorization_endpoint: Some(authority.endpoint(&["oauth2", "v2.0", "devicecode"])?),
            issuer: String::new(),
            jwks_uri: Some(authority.endpoint(&["discovery", "v2.0", "keys"])?),
            tenant_id: authority.tenant().to_string(),
        })
    }
}

#[derive(Deserialize)]
struct RawMetadata {
    token_endpoint: Option<String>,
    authorization_endpoint: Option<String>,
    device_authorization_endpoint: Option<String>,
    issuer: Option<String>,
    jwks_uri: Option<String>,
}

impl Metadata {
    /// Fetches and validates `{authority}/v2.0/.well-known/openid-configuration`; also returns the document
    /// as served, for caching.
    pub async fn discover(authority: &Authority, http: &HttpClient) -> Result<(Metadata, serde_json::Value)> {
        let url = authority.discovery_url();
        let ctx = RequestContext::new();
        let body = http.get_identity_json(&url, &ctx).await?;
        let metadata = Metadata::from_json(authority, &body)?;
        let document = crate::json::parse_json(&body, &url, "OpenID configuration document")?;
        Ok((metadata, document))
    }

    /// Validates `authority`'s discovery document. The token and device authorization endpoints must be on the
    /// authority's own origin (scheme, host and port), as Entra's always are: a document that sends the
    /// credential elsewhere is refused.
    pub fn from_json(authority: &Authority, body: &[u8]) -> Result<Metadata, HttpError> {
        let source_url = authority.discovery_url();
        let invalid = |reason: String| HttpError::InvalidResponse {
            url: source_url.clone(),
            reason,
        };
        let same_origin = |name: &str, url: Url| -> Result<Url, HttpError> {
            if url.origin() == authority.origin() {
                Ok(url)
            } else {
                Err(invalid(format!(
                    "{name} '{}' is not on the authority's origin ({}); not sending credentials there",
                    url.origin().ascii_serialization(),
                    authority.host_url()
                )))
            }
        };
        let raw: RawMetadata = crate::json::parse_json(body, &source_url, "OpenID configuration document")?;
        let endpoint = |name: &str, value: Option<String>| -> Result<Option<Url>, HttpError> {
            let Some(value) = value else { return Ok(None) };
            let url =
                Url::parse(&value).map_err(|e| invalid(format!("{name} '{value}' is not a URL: {e}")))?;
            ensure_secure(&url).map_err(|e| invalid(format!("{name}: {e}")))?;
            Ok(Some(url))
        };
        let token_endpoint = endpoint("token_endpoint", raw.token_endpoint)?
            .ok_or_else(|| invalid("it has no token_endpoint".into()))?;
        let token_endpoint = same_origin("token_endpoint", token_endpoint)?;
        let device_authorization_endpoint =
            endpoint("device_authorization_endpoint", raw.device_authorization_endpoint)?
                .map(|url| same_origin("device_authorization_endpoint", url))
                .transpose()?;
        let tenant_id = token_endpoint
            .path_segments()
            .and_then(|mut s| s.next())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid(format!("token_endpoint '{token_endpoint}' has no tenant segment")))?
            .to_string();
        Ok(Metadata {
            authorization_endpoint: endpoint("authorization_endpoint", raw.authorization_endpoint)?,
            device_authorization_endpoint,
            jwks_uri: endpoint("jwks_uri", raw.jwks_uri)?,
            issuer: raw.issuer.unwrap_or_default(),
            token_endpoint,
            tenant_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_tenant_forms() {
        for (tenant, kind) in [
            ("72f988bf-86f1-41af-91ab-2d7cd011db47", TenantKind::Guid),
            ("contoso.onmicrosoft.com", TenantKind::Domain),
            ("common", TenantKind::Common),
            ("Organizations", TenantKind::Organizations),
            ("consumers", TenantKind::Consumers),
        ] {
            let a = Authority::parse(&format!("https://login.microsoftonline.com/{tenant}/")).unwrap();
            assert_eq!(a.tenant_kind(), kind, "{tenant}");
            assert_eq!(a.tenant(), tenant);
            assert_eq!(a.cloud(), Cloud::Public);
        }
    }

    #[test]
    fn builds_from_host_and_tenant() {
        let a =
            Authority::from_host_and_tenant(Some("https://login.microsoftonline.us/"), "contoso.us").unwrap();
        assert_eq!(a.to_string(), "https://login.microsoftonline.us/contoso.us");
        assert_eq!(a.cloud(), Cloud::UsGovernment);
        assert_eq!(
            a.discovery_url(),
            "https://login.microsoftonline.us/contoso.us/v2.0/.well-known/openid-configuration"
        );
        let local = Authority::parse("http://127.0.0.1:8443/common").unwrap();
        assert_eq!(local.environment(), "127.0.0.1:8443");
    }

    #[test]
    fn refuses_bad_authorities() {
        let refused = |value: &str| Authority::parse(value).unwrap_err().to_string();
        assert!(
            refused("http://login.microsoftonline.com/contoso.com")
                .contains("plain http is only allowed for loopback")
        );
        assert!(refused("https://login.microsoftonline.com").contains("no tenant"));
        assert!(
            refused("https://login.microsoftonline.com/contoso/oauth2/v2.0/token")
                .contains("one path segment")
        );
        assert!(refused("login.microsoftonline.com/contoso.com").contains("invalid authority"));
        assert!(refused("https://login.microsoftonline.com/not a tenant!").contains("invalid tenant"));
        assert!(refused("https://login.microsoftonline.com/-contoso").contains("invalid tenant"));
        assert!(refused("https://login.microsoftonline.com/12345").contains("invalid tenant"));
        // A single-label name is syntactically a DNS name; the service decides whether it exists.
        assert_eq!(
            Authority::parse("https://login.microsoftonline.com/contoso")
                .unwrap()
                .tenant_kind(),
            TenantKind::Domain
        );
        assert!(refused("https://login.microsoftonline.com/t.com?x=1").contains("query"));
        assert!(refused("ftp://example.com/t.com").contains("scheme 'ftp' is not supported"));
        assert!(Authority::parse("http://localhost:1234/t.com").is_ok());
        assert!(Authority::parse("http://[::1]:1234/t.com").is_ok());
        let err = Authority::from_host_and_tenant(Some("https://login.microsoftonline.com/x"), "t.com")
            .unwrap_err();
        assert!(err.to_string().contains("no path"), "{err}");
    }

    #[test]
    fn validates_discovery_documents() {
        let authority = Authority::parse("https://login.microsoftonline.com/contoso.com").unwrap();
        let doc = br#"{"token_endpoint":"https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001/oauth2/v2.0/token","issuer":"x"}"#;
        let m = Metadata::from_json(&authority, doc).unwrap();
        assert_eq!(m.tenant_id, "00000000-0000-0000-0000-000000000001");
        assert!(Metadata::from_json(&authority, b"<html>").is_err());
        assert!(
            Metadata::from_json(&authority, br#"{"issuer":"x"}"#)
                .unwrap_err()
                .to_string()
                .contains("token_endpoint")
        );
        let insecure = br#"{"token_endpoint":"http://evil.example/t/oauth2/v2.0/token"}"#;
        assert!(
            Metadata::from_json(&authority, insecure)
                .unwrap_err()
                .to_string()
                .contains("only https")
        );
    }

    #[test]
    fn endpoints_must_be_on_the_authority_origin() {
        let authority = Authority::parse("https://login.microsoftonline.com/contoso.com").unwrap();
        let refused = |doc: &str| {
            Metadata::from_json(&authority, doc.as_bytes())
                .unwrap_err()
                .to_string()
        };
        for elsewhere in [
            "https://evil.example/t/oauth2/v2.0/token",
            "https://login.microsoftonline.com:8443/t/oauth2/v2.0/token",
            "https://login.microsoftonline.com.evil.example/t/oauth2/v2.0/token",
        ] {
            let err = refused(&format!(r#"{{"token_endpoint":"{elsewhere}"}}"#));
            assert!(
                err.contains("token_endpoint") && err.contains("not on the authority's origin"),
                "{err}"
            );
        }
        let err = refused(
            r#"{"token_endpoint":"https://login.microsoftonline.com/t/oauth2/v2.0/token",
                "device_authorization_endpoint":"https://evil.example/t/oauth2/v2.0/devicecode"}"#,
        );
        assert!(err.contains("device_authorization_endpoint"), "{err}");
        let local = Authority::parse("http://127.0.0.1:4000/t.com").unwrap();
        let err = Metadata::from_json(
            &local,
            br#"{"token_endpoint":"http://127.0.0.1:4001/t/oauth2/v2.0/token"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("127.0.0.1:4001"),
            "another port is another origin: {err}"
        );
    }

    #[test]
    fn userinfo_is_refused_and_never_repeated() {
        for value in [
            "https://user:hunter2@login.microsoftonline.com/contoso.com",
            "https://user:hunter2@login microsoftonline.com/contoso.com",
        ] {
            let err = Authority::parse(value).unwrap_err().to_string();
            assert!(!err.contains("hunter2") && !err.contains("user:"), "{err}");
        }
        let err =
            Authority::from_host_and_tenant(Some("https://u:hunter2@login.microsoftonline.us"), "t.com")
                .unwrap_err()
                .to_string();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains("user name or password"), "{err}");
        let a = Authority::parse("https://login.microsoftonline.com/contoso.com").unwrap();
        assert_eq!(a.to_string(), "https://login.microsoftonline.com/contoso.com");
    }

    #[test]
    fn entra_layout_is_known_clouds_and_unvalidated_hosts_but_not_adfs() {
        let layout = |value: &str| Authority::parse(value).unwrap().has_entra_layout();
        assert!(layout("https://login.microsoftonline.com/contoso.com"));
        assert!(layout("https://login.microsoftonline.us/contoso.com"));
        assert!(layout("https://127.0.0.1:8443/contoso.com"));
        assert!(
            !layout("https://login.contoso.com/t.com"),
            "validated by discovery first"
        );
        assert!(
            Authority::parse("https://login.contoso.com/t.com")
                .unwrap()
                .validated(false)
                .has_entra_layout()
        );
        assert!(!layout("https://127.0.0.1:8443/adfs"));
        assert!(
            !Authority::parse("https://login.microsoftonline.com/t.com")
                .unwrap()
                .discover_endpoints(true)
                .has_entra_layout()
        );
        let m =
            Metadata::from_entra_layout(&Authority::parse("https://127.0.0.1:8443/t.com").unwrap()).unwrap();
        assert_eq!(
            m.token_endpoint.as_str(),
            "https://127.0.0.1:8443/t.com/oauth2/v2.0/token"
        );
        assert_eq!(
            m.device_authorization_endpoint.unwrap().as_str(),
            "https://127.0.0.1:8443/t.com/oauth2/v2.0/devicecode"
        );
        assert_eq!(m.tenant_id, "t.com");
    }

    #[test]
    fn only_unknown_remote_hosts_are_validated() {
        let needs = |value: &str| Authority::parse(value).unwrap().needs_validation();
        assert!(needs("https://login.contoso.com/t.com"));
        assert!(!needs("https://login.microsoftonline.com/t.com"));
        assert!(!needs("https://login.microsoftonline.us/t.com"));
        assert!(!needs("https://127.0.0.1:8443/t.com"));
        assert!(!needs("http://localhost:8443/t.com"));
        assert!(
            !Authority::parse("https://login.contoso.com/t.com")
                .unwrap()
                .validated(false)
                .needs_validation()
        );
        let url = Authority::parse("https://login.contoso.com/t.com")
            .unwrap()
            .instance_discovery_url()
            .unwrap();
        assert_eq!(
            url.as_str(),
            "https://login.microsoftonline.com/common/discovery/instance?api-version=1.1&authorization_endpoint=https%3A%2F%2Flogin.contoso.com%2Ft.com%2Foauth2%2Fv2.0%2Fauthorize"
        );
    }
}
