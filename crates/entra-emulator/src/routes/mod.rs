//! HTTP routes. `identity` serves the identity platform (discovery, keys, token), with the user flows in
//! `device` (device code), `password` (username/password) and `refresh` sharing `user_flow`; `graph` serves
//! Microsoft Graph, `admin` the emulator's own `/_emulator/*` endpoints, `admin_consent` the admin-consent page.
//! The device-code sign-in page is `crate::signin`.

pub(crate) mod admin;
pub(crate) mod admin_consent;
pub(crate) mod device;
pub(crate) mod graph;
pub(crate) mod identity;
pub(crate) mod password;
pub(crate) mod refresh;
pub(crate) mod user_flow;

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use time::OffsetDateTime;

use crate::util::{is_guid, new_guid};

/// Which listener a request arrived on (inserted by the server into every request's extensions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scheme {
    Https,
    Http,
}

/// Fallback `scheme://host:port` per listener (inserted by the server), used without a `Host` header.
#[derive(Clone, Debug)]
pub(crate) struct DefaultBase(pub String);

/// Per-request context: the emulator's own base URL as the client sees it, ids and the clock.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    /// `https://127.0.0.1:PORT` (scheme of the listener, host and port from the `Host` header).
    pub base: String,
    /// The `Host` header value (`127.0.0.1:PORT`).
    pub host: String,
    /// New per request; `x-ms-request-id` / Graph `request-id`.
    pub trace_id: String,
    /// The `client-request-id` header as sent, if any.
    pub client_request_id: Option<String>,
    /// STS correlation id: the client's `client-request-id` if it is a GUID, else a new GUID.
    pub correlation_id: String,
    pub now: OffsetDateTime,
}

impl Ctx {
    /// Graph echoes the caller's `client-request-id`, else uses its request id.
    pub fn graph_client_request_id(&self) -> &str {
        self.client_request_id.as_deref().unwrap_or(&self.trace_id)
    }

    /// Uses a `client-request-id` sent in the form body (MSAL Node does) when no header was sent.
    pub fn adopt_body_client_request_id(&mut self, id: Option<&str>) {
        if self.client_request_id.is_none()
            && let Some(id) = id
            && is_guid(id)
        {
            self.client_request_id = Some(id.to_owned());
            self.correlation_id = id.trim_matches(['{', '}']).to_owned();
        }
    }
}

/// A `Host` header value we are willing to put into URLs.
fn sane_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_'))
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let scheme = parts.extensions.get::<Scheme>().copied().unwrap_or(Scheme::Https);
        let default_base = parts
            .extensions
            .get::<DefaultBase>()
            .map(|b| b.0.clone())
            .unwrap_or_default();
        let host_header = parts
            .headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
            .or_else(|| parts.uri.authority().map(|a| a.as_str().to_owned()))
            .filter(|h| sane_host(h));
        let (base, host) = match host_header {
            Some(h) => (
                format!("{}://{h}", if scheme == Scheme::Https { "https" } else { "http" }),
                h,
            ),
            None => {
                let host = default_base
                    .split_once("://")
                    .map(|(_, h)| h.to_owned())
                    .unwrap_or_default();
                (default_base, host)
            }
        };
        let client_request_id = parts
            .headers
            .get("client-request-id")
            .and_then(|h| h.to_str().ok())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let correlation_id = client_request_id
            .as_deref()
            .filter(|id| is_guid(id))
            .map(|id| id.trim_matches(['{', '}']).to_owned())
            .unwrap_or_else(new_guid);
        Ok(Ctx {
            base,
            host,
            trace_id: new_guid(),
            client_request_id,
            correlation_id,
            now: OffsetDateTime::now_utc(),
        })
    }
}

/// The tenant segment of an identity-platform URL, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TenantSegment {
    Common,
    Organizations,
    Consumers,
    /// A GUID or a DNS name; may or may not exist in the directory.
    Specific(String),
    /// Neither a GUID nor a DNS name (AADSTS900023).
    Invalid(String),
}

impl TenantSegment {
    pub fn parse(segment: &str) -> Self {
        match segment.to_ascii_lowercase().as_str() {
            "common" => return Self::Common,
            "organizations" => return Self::Organizations,
            "consumers" => return Self::Consumers,
            _ => {}
        }
        if is_guid(segment) || is_dns_name(segment) {
            Self::Specific(segment.to_owned())
        } else {
            Self::Invalid(segment.to_owned())
        }
    }
}

/// A syntactically valid DNS name (single labels such as `contoso` included: the real service answers
/// "tenant not found" for them, not "invalid identifier").
fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_segments() {
        assert_eq!(TenantSegment::parse("Common"), TenantSegment::Common);
        assert_eq!(
            TenantSegment::parse("organizations"),
            TenantSegment::Organizations
        );
        assert_eq!(TenantSegment::parse("consumers"), TenantSegment::Consumers);
        assert!(matches!(
            TenantSegment::parse("contoso.onmicrosoft.com"),
            TenantSegment::Specific(_)
        ));
        assert!(matches!(
            TenantSegment::parse("contoso"),
            TenantSegment::Specific(_)
        ));
        assert!(matches!(
            TenantSegment::parse("3f2c8a91-5b7e-4d06-9c1a-8e4b2d7f6a53"),
            TenantSegment::Specific(_)
        ));
        assert!(matches!(
            TenantSegment::parse("not_a_tenant"),
            TenantSegment::Invalid(_)
        ));
        assert!(matches!(
            TenantSegment::parse("{tenant id}"),
            TenantSegment::Invalid(_)
        ));
        assert!(matches!(TenantSegment::parse("a..b"), TenantSegment::Invalid(_)));
    }
}
