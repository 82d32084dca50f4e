//! The one HTTP client: rustls, no redirects, timeouts, a response-size cap, correlation and library headers,
//! extra trusted CA certificates, proxies from the environment, and retries only where they are safe.

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION, RETRY_AFTER};
use reqwest::StatusCode;

use crate::error::{ConfigError, Error, GraphError, HttpError, Result, ServiceError};
use crate::json::{first_non_space, html_title, parse_json};

/// Environment variable naming a PEM file of extra CA certificates to trust (a TLS-inspecting proxy's CA, or
/// the emulator's). They are trusted in addition to Mozilla's roots (and the system's, see
/// [`HttpConfig::system_ca_certs`]).
pub const EXTRA_CA_CERTS_VAR: &str = "IDENTITY_EXTRA_CA_CERTS";

/// Largest CA bundle file read by [`HttpConfig::with_extra_ca_file`]: the full system bundle is about 200 KiB.
pub const MAX_CA_FILE_BYTES: u64 = 1024 * 1024;

const SKU: &str = "identity-core.Rust";
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Settings of the HTTP client. `Default` gives sensible production values.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HttpConfig {
    /// Limit for establishing a connection (TCP + TLS).
    pub connect_timeout: Duration,
    /// Limit for a whole request, from sending to the last byte of the answer.
    pub request_timeout: Duration,
    /// Answers larger than this are refused rather than read.
    pub max_response_bytes: usize,
    /// How many times a request is retried after a connection failure (refused, reset, or closed before the
    /// answer was complete), a 429, or a 5xx.
    pub max_retries: u32,
    /// The most one request waits between its attempts, in all: a `Retry-After` beyond what is left is not
    /// waited for, the error is returned instead.
    pub max_retry_wait: Duration,
    /// Extra trusted CA certificates, PEM.
    pub extra_ca_pem: Vec<Vec<u8>>,
    /// Use the proxies named by `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` (minus `NO_PROXY`). Turn off for a
    /// loopback-only client, such as one talking to the local emulator.
    pub proxy_from_env: bool,
    /// Also trust the operating system's certificate store (off by default). Mozilla's roots, built in, cover
    /// the Microsoft endpoints, as Python's `certifi` does for MSAL Python; reading and parsing the system store
    /// (hundreds of files on Debian) costs a few milliseconds per process, a third of a cached run. Behind a
    /// TLS-inspecting proxy, name its CA (or the system bundle) in [`EXTRA_CA_CERTS_VAR`], or turn this on.
    pub system_ca_certs: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_response_bytes: 4 * 1024 * 1024,
            max_retries: 2,
            max_retry_wait: Duration::from_secs(30),
            extra_ca_pem: Vec::new(),
            proxy_from_env: true,
            system_ca_certs: false,
        }
    }
}

impl HttpConfig {
    /// Defaults, plus the CA certificates named by `IDENTITY_EXTRA_CA_CERTS` when it is set.
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{HttpClient, HttpConfig};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // Production settings, trusting the CAs named by IDENTITY_EXTRA_CA_CERTS too when it is set.
    /// let http = HttpClient::new(HttpConfig::from_env()?)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_env() -> Result<HttpConfig, ConfigError> {
        let mut config = HttpConfig::default();
        if let Some(path) = std::env::var_os(EXTRA_CA_CERTS_VAR).filter(|p| !p.is_empty()) {
            config = config.with_extra_ca_file(Path::new(&path))?;
        }
        Ok(config)
    }

    /// Adds the certificates of a PEM file (a regular file of at most [`MAX_CA_FILE_BYTES`]) to the trusted roots.
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{HttpClient, HttpConfig};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// // A TLS-inspecting proxy's CA (here, the emulator's), trusted besides the built-in roots.
    /// let http = HttpClient::new(HttpConfig::default().with_extra_ca_file(emulator.ca_path())?)?;
    ///
    /// // Anything else is refused with the file named, at startup.
    /// assert!(HttpConfig::default().with_extra_ca_file(std::path::Path::new("/no/such/ca.pem")).is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_extra_ca_file(mut self, path: &Path) -> Result<HttpConfig, ConfigError> {
        let pem =
            crate::fs::read_bounded(path, MAX_CA_FILE_BYTES).map_err(|e| ConfigError::CaCertificates {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        parse_pem_bundle(&pem).map_err(|reason| ConfigError::CaCertificates {
            path: path.display().to_string(),
            reason,
        })?;
        self.extra_ca_pem.push(pem);
        Ok(self)
    }

    /// Adds PEM certificates given in memory.
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{Authority, HttpClient, HttpConfig, PublicClient};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let client_id = emulator.app("device-code").ok_or("no device-code app")?.app_id;
    /// let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// // The emulator's certificate is trusted: discovery over HTTPS succeeds.
    /// let app = PublicClient::builder(client_id, Authority::parse(&emulator.authority())?)
    ///     .http_client(http)
    ///     .build()?;
    /// app.metadata().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_extra_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> HttpConfig {
        self.extra_ca_pem.push(pem.into());
        self
    }
}

fn parse_pem_bundle(pem: &[u8]) -> Result<Vec<reqwest::Certificate>, String> {
    let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no -----BEGIN CERTIFICATE----- block found".into());
    }
    Ok(certs)
}

/// Per-operation context: the correlation id sent as `client-request-id` on every request of one acquisition.
#[derive(Clone, Debug)]
pub(crate) struct RequestContext {
    correlation_id: String,
}

impl RequestContext {
    /// A new context with a fresh correlation id.
    pub fn new() -> Self {
        RequestContext {
            correlation_id: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// The correlation id.
    pub fn correlation_id(&self) -> &str {
        &self.correlation_id
    }
}

impl Default for RequestContext {
    fn default() -> Self {
        Self::new()
    }
}

/// A response read in full (within the size cap).
#[derive(Debug)]
pub(crate) struct Response {
    pub url: String,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// The shared HTTP client. Cheap to clone; build it once and hand it to every client.
#[derive(Clone, Debug)]
pub struct HttpClient {
    inner: reqwest::Client,
    config: std::sync::Arc<HttpConfig>,
}

impl HttpClient {
    /// Builds the client. Proxies come from `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`/`NO_PROXY`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use identity_core::{HttpClient, HttpConfig};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // Build one and share it (clones are cheap) with every identity and Graph client.
    /// let mut config = HttpConfig::from_env()?;
    /// config.request_timeout = Duration::from_secs(10);
    /// let http = HttpClient::new(config)?;
    /// assert_eq!(http.config().request_timeout, Duration::from_secs(10));
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(config: HttpConfig) -> Result<HttpClient, ConfigError> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_webpki_certs(true)
            .tls_built_in_native_certs(config.system_ca_certs)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(format!("{SKU}/{VERSION}"));
        if !config.proxy_from_env {
            builder = builder.no_proxy();
        }
        for pem in &config.extra_ca_pem {
            for cert in parse_pem_bundle(pem).map_err(|reason| ConfigError::CaCertificates {
                path: "(in memory)".into(),
                reason,
            })? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let inner = builder
            .build()
            .map_err(|e| ConfigError::HttpClient(e.to_string()))?;
        Ok(HttpClient {
            inner,
            config: std::sync::Arc::new(config),
        })
    }

    /// The settings in force.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// Sends a request built by `build` (called again for each retry), reads the answer within the size cap,
    /// and retries what may heal: a connection refused, reset or closed mid-answer, a connect timeout, a 429 or
    /// a 5xx, waiting for `Retry-After` or an exponential back-off. Every request this client sends is safe to
    /// repeat: GETs, and identity form POSTs (a token or device-code request sent again just gets a new answer;
    /// a device code is redeemed once, whichever poll wins). A TLS certificate that is not trusted is never retried: it will not heal. The waits of
    /// one call add up to at most [`HttpConfig::max_retry_wait`].
    ///
    /// Logs one line per attempt at INFO (target `identity_core::http`): method, URL without query or user
    /// info, status or failure, elapsed time, attempt and correlation id. Never headers or bodies.
    async fn execute(
        &self,
        method: &reqwest::Method,
        url: &str,
        correlation_id: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Response, HttpError> {
        let shown_url = loggable_url(url);
        let mut attempt = 0;
        let mut waited = Duration::ZERO;
        loop {
            let started = Instant::now();
            let outcome = self.send_once(url, build()).await;
            let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let retry_wait = match &outcome {
                Err(e) if is_transient(e) => Some(backoff(attempt)),
                Ok(resp) if is_retryable(resp.status) => {
                    Some(retry_after(&resp.headers).unwrap_or_else(|| backoff(attempt)))
                }
                _ => None,
            };
            match &outcome {
                Ok(resp) => tracing::info!(
                    method = %method,
                    url = %shown_url,
                    status = resp.status.as_u16(),
                    elapsed_ms,
                    attempt,
                    correlation_id = %correlation_id,
                    "http request"
                ),
                Err(e) => tracing::info!(
                    method = %method,
                    url = %shown_url,
                    failure = failure_kind(e),
                    elapsed_ms,
                    attempt,
                    correlation_id = %correlation_id,
                    "http request failed"
                ),
            }
            match retry_wait {
                Some(wait)
                    if attempt < self.config.max_retries
                        && waited.saturating_add(wait) <= self.config.max_retry_wait =>
                {
                    let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
                    tracing::info!(url = %shown_url, wait_ms, "retrying");
                    tokio::time::sleep(wait).await;
                    waited = waited.saturating_add(wait);
                    attempt += 1;
                }
                _ => return outcome,
            }
        }
    }

    async fn send_once(&self, url: &str, request: reqwest::RequestBuilder) -> Result<Response, HttpError> {
        let mut response = request.send().await.map_err(|e| self.transport_error(url, e))?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            // Shown in the error: resolved against the request, without query, fragment or user info, which
            // could carry a code or a token.
            let location = url::Url::parse(url)
                .and_then(|base| base.join(location))
                .map_or_else(|_| "(unparsable URL)".to_string(), |l| loggable_url(l.as_str()));
            return Err(HttpError::Redirect {
                url: url.to_string(),
                status: status.as_u16(),
                location,
            });
        }
        let limit = self.config.max_response_bytes;
        let too_large = || HttpError::TooLarge {
            url: url.to_string(),
            limit,
        };
        if response.content_length().is_some_and(|len| len > limit as u64) {
            return Err(too_large());
        }
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport_error(url, e))? {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            url: url.to_string(),
            status,
            headers,
            body,
        })
    }

    fn transport_error(&self, url: &str, e: reqwest::Error) -> HttpError {
        let url = url.to_string();
        // A connect timeout is a connection failure (retried); a timeout of the whole request is not.
        if e.is_connect() {
            HttpError::Connect {
                url,
                source: e.without_url(),
            }
        } else if e.is_timeout() {
            HttpError::Timeout {
                url,
                timeout: self.config.request_timeout,
            }
        } else {
            HttpError::Request {
                url,
                source: e.without_url(),
            }
        }
    }

    fn identity_request(
        &self,
        method: reqwest::Method,
        url: &str,
        ctx: &RequestContext,
    ) -> reqwest::RequestBuilder {
        let post = method == reqwest::Method::POST;
        let request = self
            .inner
            .request(method, url)
            .header(ACCEPT, "application/json")
            .header("client-request-id", ctx.correlation_id())
            .header("return-client-request-id", "true")
            .header("x-client-SKU", SKU)
            .header("x-client-Ver", VERSION)
            .header("x-client-OS", std::env::consts::OS);
        if post {
            // Token and device-code requests: we honour Retry-After and understand 429 (as MSAL says).
            request.header("x-ms-lib-capability", "retry-after, h429")
        } else {
            request
        }
    }

    /// GET on an identity endpoint (discovery); an error answer becomes a [`ServiceError`].
    pub(crate) async fn get_identity_json(&self, url: &str, ctx: &RequestContext) -> Result<Vec<u8>> {
        let method = reqwest::Method::GET;
        let resp = self
            .execute(&method, url, ctx.correlation_id(), || {
                self.identity_request(method.clone(), url, ctx)
            })
            .await?;
        identity_answer(resp)
    }

    /// POST a form to an identity endpoint (device code, token); an error answer becomes a [`ServiceError`].
    pub(crate) async fn post_identity_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        ctx: &RequestContext,
    ) -> Result<Vec<u8>> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let method = reqwest::Method::POST;
        let resp = self
            .execute(&method, url, ctx.correlation_id(), || {
                self.identity_request(method.clone(), url, ctx)
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(body.clone())
            })
            .await?;
        identity_answer(resp)
    }

    /// An adapter that lets the `oauth2` crate send its requests through this client.
    pub(crate) fn oauth2_transport<'a>(&'a self, ctx: &'a RequestContext) -> OAuthTransport<'a> {
        OAuthTransport { http: self, ctx }
    }

    /// GET a Microsoft Graph URL with a bearer token; an error answer becomes a [`GraphError`].
    pub(crate) async fn get_graph_json(
        &self,
        url: &str,
        token: &crate::SecretToken,
        ctx: &RequestContext,
    ) -> Result<serde_json::Value> {
        let mut auth = HeaderValue::try_from(format!("Bearer {}", token.secret())).map_err(|_| {
            HttpError::InvalidResponse {
                url: url.to_string(),
                reason: "the access token is not a valid header value".into(),
            }
        })?;
        auth.set_sensitive(true);
        let resp = self
            .execute(&reqwest::Method::GET, url, ctx.correlation_id(), || {
                self.inner
                    .get(url)
                    .header(ACCEPT, "application/json")
                    .header(AUTHORIZATION, auth.clone())
                    .header("client-request-id", ctx.correlation_id())
            })
            .await?;
        if !resp.status.is_success() {
            return Err(graph_error(resp));
        }
        Ok(parse_json(&resp.body, url, "Graph answer")?)
    }
}

/// Sends `oauth2`'s requests through the shared client. Error answers are turned into [`ServiceError`]s here,
/// where the HTTP status and `Retry-After` are still known; `oauth2` only ever sees successful answers.
#[derive(Debug)]
pub(crate) struct OAuthTransport<'a> {
    http: &'a HttpClient,
    ctx: &'a RequestContext,
}

type BoxFuture<'c, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'c>>;

impl<'c> oauth2::AsyncHttpClient<'c> for OAuthTransport<'_> {
    type Error = Error;
    type Future = BoxFuture<'c, Result<oauth2::HttpResponse, Error>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let url = parts.uri.to_string();
            let resp = self
                .http
                .execute(&parts.method, &url, self.ctx.correlation_id(), || {
                    self.http
                        .identity_request(parts.method.clone(), &url, self.ctx)
                        .headers(parts.headers.clone())
                        .body(body.clone())
                })
                .await?;
            let status = resp.status;
            let headers = resp.headers.clone();
            let body = identity_answer(resp)?;
            // `oauth2` is only used for token requests. Parsing here first names what is wrong with a malformed
            // answer (its own parse error gives a bare JSON path, or none).
            crate::token::parse_token_response(&body, &url)?;
            let mut out = http::Response::builder().status(status);
            if let Some(out_headers) = out.headers_mut() {
                *out_headers = headers;
            }
            out.body(body).map_err(|e| {
                HttpError::InvalidResponse {
                    url,
                    reason: format!("cannot rebuild the response: {e}"),
                }
                .into()
            })
        })
    }
}

fn is_retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || matches!(status.as_u16(), 500 | 502 | 503 | 504)
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(500 * 2u64.pow(attempt.min(6)))
}

/// `Retry-After` in seconds (integer or decimal, as Graph has sent both). HTTP dates are not used by these services.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()?;
    (value.is_finite() && value >= 0.0).then(|| Duration::from_secs_f64(value.min(3600.0)))
}

/// The start of an error answer that is not the protocol's, for diagnosis: at most 200 printable characters, or
/// for an HTML page (a proxy's or a portal's), its title.
/// Names of what a request can carry that must never be printed back (form fields and the bearer header).
const CREDENTIAL_MARKERS: [&str; 8] = [
    "client_secret",
    "client_assertion",
    "password",
    "device_code",
    "refresh_token",
    "access_token",
    "code_verifier",
    "bearer ",
];

fn excerpt(body: &[u8]) -> String {
    if first_non_space(body) == Some(b'<') {
        return match html_title(body) {
            Some(title) => format!("an HTML page (title: \"{title}\")"),
            None => "an HTML page".to_string(),
        };
    }
    let text = String::from_utf8_lossy(body);
    // A proxy or broken server that echoes the request back would hand us our own credentials to print.
    let lower = text.to_ascii_lowercase();
    if CREDENTIAL_MARKERS.iter().any(|marker| lower.contains(marker)) {
        return "an answer that repeats the request's credentials (not shown)".to_string();
    }
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    clean.trim().to_string()
}

/// An identity endpoint's answer: the body of a success, else a typed error. A success carrying an `error`
/// member is an error too: the device-code endpoint has answered errors with HTTP 200.
pub(crate) fn identity_answer(resp: Response) -> Result<Vec<u8>> {
    if !resp.status.is_success() {
        return Err(identity_error(resp));
    }
    /// Just the `error` member (the others are skipped unparsed): cheap on every token answer.
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(default)]
        error: Option<serde_json::Value>,
    }
    // Only a JSON object can carry it; anything else is left to the caller's parser, which names the problem.
    let may_carry_error = || match serde_json::from_slice::<Probe>(&resp.body) {
        Ok(probe) => probe
            .error
            .as_ref()
            .and_then(|e| e.as_str())
            .is_some_and(|e| !e.trim().is_empty()),
        // A duplicate member, say: the full parse below decides (the last duplicate counts).
        Err(_) => true,
    };
    if first_non_space(&resp.body) == Some(b'{')
        && may_carry_error()
        && let Ok(members) = serde_json::from_slice(&resp.body)
        && let Some(e) = service_error_from_json(&members)
    {
        return Err(ServiceError {
            status: resp.status.as_u16(),
            retry_after: retry_after(&resp.headers),
            ..e
        }
        .into());
    }
    Ok(resp.body)
}

/// A [`ServiceError`] from an OAuth error object: one with a non-empty string `error`. Each other member is
/// kept when it has the protocol's type and skipped otherwise, so one odd member does not lose the rest.
fn service_error_from_json(members: &serde_json::Map<String, serde_json::Value>) -> Option<ServiceError> {
    let text = |name: &str| members.get(name).and_then(|v| v.as_str()).map(str::to_string);
    let error = text("error").filter(|e| !e.trim().is_empty())?;
    let error_codes = members
        .get("error_codes")
        .and_then(|v| v.as_array())
        .map(|codes| codes.iter().filter_map(serde_json::Value::as_i64).collect())
        .unwrap_or_default();
    Some(ServiceError {
        error,
        error_description: text("error_description"),
        error_codes,
        timestamp: text("timestamp"),
        trace_id: text("trace_id"),
        correlation_id: text("correlation_id"),
        error_uri: text("error_uri"),
        suberror: text("suberror"),
        claims: text("claims"),
        ..ServiceError::default()
    })
}

/// Turns an identity endpoint's error answer into a [`ServiceError`], or an [`HttpError`] if it is not one.
fn identity_error(resp: Response) -> Error {
    let retry = retry_after(&resp.headers);
    match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&resp.body)
        .ok()
        .as_ref()
        .and_then(service_error_from_json)
    {
        Some(e) => ServiceError {
            status: resp.status.as_u16(),
            retry_after: retry,
            ..e
        }
        .into(),
        None => HttpError::UnexpectedStatus {
            url: resp.url,
            status: resp.status.as_u16(),
            excerpt: excerpt(&resp.body),
            retry_after: retry,
        }
        .into(),
    }
}

/// A network failure that may heal on a new connection: refused, reset, closed mid-answer, connect timeout.
/// A TLS certificate that is not trusted will not heal.
fn is_transient(e: &HttpError) -> bool {
    match e {
        HttpError::Connect { source, .. } => !crate::error::is_certificate_error(source),
        // A request that could not even be built fails the same way every time.
        HttpError::Request { source, .. } => !source.is_builder(),
        _ => false,
    }
}

/// A short word for the log line of a failed attempt.
fn failure_kind(e: &HttpError) -> &'static str {
    match e {
        HttpError::Connect { source, .. } if crate::error::is_certificate_error(source) => {
            "untrusted certificate"
        }
        HttpError::Connect { .. } => "connect",
        HttpError::Timeout { .. } => "timeout",
        HttpError::Request { .. } => "connection dropped",
        HttpError::TooLarge { .. } => "too large",
        HttpError::Redirect { .. } => "redirect",
        HttpError::UnexpectedStatus { .. } | HttpError::InvalidResponse { .. } => "invalid answer",
    }
}

/// The URL as logged: no user info and no query (either could carry a secret), no fragment.
fn loggable_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            // Only fails for URLs that cannot have user info, which then have none.
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => "(unparsable URL)".to_string(),
    }
}

#[derive(serde::Deserialize)]
struct GraphEnvelope {
    error: GraphErrorBody,
}

#[derive(serde::Deserialize)]
struct GraphErrorBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default, rename = "innerError", alias = "innererror")]
    inner_error: Option<GraphInnerError>,
}

#[derive(serde::Deserialize)]
struct GraphInnerError {
    #[serde(default, rename = "request-id")]
    request_id: Option<String>,
    #[serde(default, rename = "client-request-id")]
    client_request_id: Option<String>,
    #[serde(default)]
    date: Option<String>,
}

pub(crate) fn graph_error(resp: Response) -> Error {
    let header = |name: &str| {
        resp.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let retry = retry_after(&resp.headers);
    match serde_json::from_slice::<GraphEnvelope>(&resp.body) {
        Ok(GraphEnvelope { error }) if !error.code.is_empty() => {
            let inner = error.inner_error;
            GraphError {
                status: resp.status.as_u16(),
                code: error.code,
                message: error.message,
                request_id: inner
                    .as_ref()
                    .and_then(|i| i.request_id.clone())
                    .or_else(|| header("request-id")),
                client_request_id: inner
                    .as_ref()
                    .and_then(|i| i.client_request_id.clone())
                    .or_else(|| header("client-request-id")),
                date: inner.and_then(|i| i.date),
                retry_after: retry,
                claims_challenge: crate::challenge::claims_challenge(&resp.headers),
            }
            .into()
        }
        _ => HttpError::UnexpectedStatus {
            url: resp.url,
            status: resp.status.as_u16(),
            excerpt: excerpt(&resp.body),
            retry_after: retry,
        }
        .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_retry_after_in_seconds() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("2.128"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs_f64(2.128)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), None);
    }

    fn ok_answer(body: &str) -> Result<Vec<u8>> {
        identity_answer(Response {
            url: "https://login.example.com/t/oauth2/v2.0/token".into(),
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        })
    }

    #[test]
    fn a_success_answer_with_an_error_member_is_a_service_error() {
        for body in [
            r#"{"error":"authorization_pending"}"#,
            r#"{"error":1,"error":"authorization_pending"}"#,
            r#"{"error_codes":"x","error":"authorization_pending","trace_id":[]}"#,
        ] {
            match ok_answer(body) {
                Err(Error::Service(e)) => {
                    assert_eq!((e.error.as_str(), e.status), ("authorization_pending", 200))
                }
                other => panic!("{body}: {other:?}"),
            }
        }
        for body in [
            r#"{"error":""}"#,
            r#"{"error":null,"access_token":"a"}"#,
            r#"{"error":{"code":"x"}}"#,
            "[1]",
            "",
        ] {
            assert_eq!(ok_answer(body).unwrap(), body.as_bytes(), "{body}");
        }
    }

    #[test]
    fn an_answer_echoing_the_request_is_not_quoted() {
        for echoed in [
            "grant_type=client_credentials&client_id=x&client_secret=Zx9~supersecret",
            "POST /token HTTP/1.1\r\nAuthorization: Bearer eyJ0eXAi.secret\r\n",
            "username=a%40b&password=hunter2",
        ] {
            let shown = excerpt(echoed.as_bytes());
            assert!(
                !shown.contains("supersecret") && !shown.contains("eyJ0eXAi") && !shown.contains("hunter2"),
                "{shown}"
            );
            assert!(shown.contains("not shown"), "{shown}");
        }
        assert_eq!(excerpt(b"Service Unavailable"), "Service Unavailable");
    }

    #[test]
    fn error_pages_are_summarised_short_and_printable() {
        assert_eq!(
            excerpt(b"\n<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"),
            "an HTML page (title: \"502 Bad Gateway\")"
        );
        assert_eq!(excerpt(b"<!DOCTYPE html><p>down</p>"), "an HTML page");
        let text = excerpt(format!("Service\u{1b}[2J unavailable {}", "x".repeat(500)).as_bytes());
        assert!(text.starts_with("Service [2J unavailable x"), "{text}");
        assert!(text.chars().count() <= 200 && !text.chars().any(char::is_control));
    }

    #[test]
    fn logged_urls_have_no_user_info_nor_query() {
        assert_eq!(
            loggable_url("https://user:pw@graph.example.com/v1.0/users?$skiptoken=abc#f"),
            "https://graph.example.com/v1.0/users"
        );
        assert_eq!(loggable_url("not a url ?secret"), "(unparsable URL)");
    }

    #[test]
    fn refuses_a_ca_file_without_certificates() {
        let dir = std::env::temp_dir().join(format!("idcore-ca-{}", uuid::Uuid::new_v4()));
        std::fs::write(&dir, "not a certificate").unwrap();
        let err = HttpConfig::default().with_extra_ca_file(&dir).unwrap_err();
        assert!(err.to_string().contains("no -----BEGIN CERTIFICATE"), "{err}");
        let missing = HttpConfig::default()
            .with_extra_ca_file(Path::new("/nonexistent/ca.pem"))
            .unwrap_err();
        assert!(missing.to_string().contains("/nonexistent/ca.pem"), "{missing}");
        std::fs::remove_file(dir).unwrap();
    }

    #[test]
    fn refuses_an_oversized_ca_file_and_a_fifo() {
        let big = std::env::temp_dir().join(format!("idcore-ca-big-{}", uuid::Uuid::new_v4()));
        std::fs::write(&big, vec![b'a'; MAX_CA_FILE_BYTES as usize + 1]).unwrap();
        let err = HttpConfig::default().with_extra_ca_file(&big).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&big.display().to_string()) && text.contains("1048576 bytes"),
            "{text}"
        );
        std::fs::remove_file(big).unwrap();

        #[cfg(unix)]
        {
            let fifo = std::env::temp_dir().join(format!("idcore-ca-fifo-{}", uuid::Uuid::new_v4()));
            assert!(
                std::process::Command::new("mkfifo")
                    .arg(&fifo)
                    .status()
                    .unwrap()
                    .success()
            );
            let err = HttpConfig::default().with_extra_ca_file(&fifo).unwrap_err();
            assert!(err.to_string().contains("not a regular file"), "{err}");
            std::fs::remove_file(fifo).unwrap();
        }
    }
}
