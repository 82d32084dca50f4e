//! The per-request context every answer is built with: the emulator's base URL as the client addressed it,
//! the request and correlation ids, and the clock. The server tags each request with its listener's scheme and
//! fallback base URL; the routes extract the context from it.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use time::OffsetDateTime;

use crate::ids::{is_guid, new_guid};

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
