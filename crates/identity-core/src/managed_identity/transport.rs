//! The HTTP side of managed identity: a client that never uses a proxy (the endpoints are on the host or
//! link-local) nor follows redirects, bounded reads, one log line per request (no query, headers or bodies),
//! and secret header values marked sensitive.

use std::time::{Duration, Instant};

use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::error::ManagedIdentityError;
use super::identity::ManagedIdentitySource;

/// Largest answer read: a token answer is a few KiB.
const MAX_ANSWER_BYTES: usize = 256 * 1024;
/// The endpoints are on this host or link-local: a connection that takes longer will not come.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// An answer read in full.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// The client for the plain endpoints (IMDS, App Service, Azure ML, Arc).
pub(crate) fn plain_client() -> Result<reqwest::Client, String> {
    base_builder().build().map_err(|e| e.to_string())
}

pub(crate) fn base_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .use_rustls_tls()
        // The endpoints are http on the host, except Service Fabric's (pinned): reading the system's certificate
        // store would cost tens of milliseconds for nothing; Mozilla's built-in roots are free.
        .tls_built_in_native_certs(false)
        .tls_built_in_webpki_certs(true)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("identity-core.Rust/", env!("CARGO_PKG_VERSION")))
}

/// A header: its value is sensitive when it carries a secret (kept out of any debug output of the request).
pub(crate) fn header(name: &'static str, value: &str, sensitive: bool) -> Option<(HeaderName, HeaderValue)> {
    let mut value = HeaderValue::from_str(value).ok()?;
    value.set_sensitive(sensitive);
    Some((HeaderName::from_static(name), value))
}

/// One GET with `query` and `headers`, read within the size cap. A transport failure becomes
/// [`ManagedIdentityError::Unreachable`] (the reason from `describe_failure`, which knows about pinning).
pub(crate) async fn get(
    client: &reqwest::Client,
    source: ManagedIdentitySource,
    url: &url::Url,
    query: &[(&str, &str)],
    headers: Vec<(HeaderName, HeaderValue)>,
    describe_failure: &(dyn Fn(&reqwest::Error) -> Option<ManagedIdentityError> + Sync),
) -> Result<Reply, ManagedIdentityError> {
    let mut full = url.clone();
    full.query_pairs_mut().extend_pairs(query);
    let mut request = client.get(full);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let shown = shown_url(url);
    let started = Instant::now();
    let unreachable = |e: reqwest::Error| {
        describe_failure(&e).unwrap_or_else(|| ManagedIdentityError::Unreachable {
            platform: source,
            url: shown.clone(),
            reason: failure_reason(&e),
        })
    };
    let outcome = async {
        let mut response = request.send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        if response
            .content_length()
            .is_some_and(|l| l > MAX_ANSWER_BYTES as u64)
        {
            return Err(too_large(source));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(too_large(source));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
    .await;
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match &outcome {
        Ok(reply) => {
            tracing::info!(source = %source, url = %shown, status = reply.status, elapsed_ms, "managed identity request")
        }
        Err(e) => {
            tracing::info!(source = %source, url = %shown, elapsed_ms, error = %e, "managed identity request failed")
        }
    }
    outcome
}

fn too_large(source: ManagedIdentitySource) -> ManagedIdentityError {
    ManagedIdentityError::InvalidResponse {
        platform: source,
        reason: format!("the answer is larger than {MAX_ANSWER_BYTES} bytes"),
    }
}

fn failure_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        // The innermost cause says refused, unreachable, ...; it never holds the query.
        let mut cause: &dyn std::error::Error = e;
        while let Some(next) = cause.source() {
            cause = next;
        }
        format!("connection failed ({cause})")
    } else {
        "the connection was dropped before the answer was complete".into()
    }
}

/// The URL as shown: no query (it holds the identity asked for, harmless, but also whatever the variable
/// carried), no user info.
pub(crate) fn shown_url(url: &url::Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}
