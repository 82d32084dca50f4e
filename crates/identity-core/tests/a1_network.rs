//! Faults the emulator cannot give, over real HTTP: a tiny local identity stand-in (plain http on 127.0.0.1, which
//! the library accepts for loopback) that serves discovery and answers the token and device-code endpoints as each
//! test scripts: absurd lifetimes, malformed or HTML answers, OAuth errors with HTTP 200, connections closed before
//! or during the answer. Every test counts what reached the server.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use identity_core::{
    Authority, CacheEntry, CacheKey, ClientSecret, ConfidentialClient, Error, HttpClient, HttpConfig,
    HttpError, MemoryCache, PublicClient, TokenCache, TokenSource,
};

mod common;
use common::{Reply, Request, Stub, relay, serve_identity};

const SCOPE: &str = "https://graph.microsoft.com/.default";
const TENANT: &str = "contoso.onmicrosoft.com";
/// The value of every access token the stand-in issues: it must never appear in an error.
const TOKEN_VALUE: &str = "SECRET-ACCESS-TOKEN-VALUE";

fn json(status: u16, body: impl Into<String>) -> Reply {
    Reply::raw(status, body.into())
}

/// A token answer with these extra members (raw JSON text, so any type can be written).
fn token_answer(extra: &str) -> Reply {
    json(
        200,
        format!(r#"{{"token_type":"Bearer","access_token":"{TOKEN_VALUE}"{extra}}}"#),
    )
}

/// A 503 with this `Retry-After` and an OAuth error body.
fn busy(retry_after: &str) -> Reply {
    json(503, r#"{"error":"temporarily_unavailable"}"#).with_header("retry-after", retry_after)
}

/// The local identity stand-in: discovery is answered by the stand-in itself; `script` answers the token and
/// device-code endpoints (and anything else), with how many earlier requests went to the same path.
async fn stand_in(script: impl Fn(&Request, usize) -> Reply + Send + Sync + 'static) -> Stub {
    serve_identity(TENANT, script).await
}

fn authority(stub: &Stub) -> Authority {
    Authority::parse(&format!("{}/{TENANT}", stub.base())).unwrap()
}

fn token_requests(stub: &Stub) -> usize {
    stub.requests_ending("/oauth2/v2.0/token").len()
}

fn http_client() -> HttpClient {
    let mut config = HttpConfig::default();
    // Loopback only: a proxy from the environment must not get in the way.
    config.proxy_from_env = false;
    HttpClient::new(config).unwrap()
}

fn daemon(stub: &Stub, cache: Arc<dyn TokenCache>) -> ConfidentialClient {
    ConfidentialClient::builder("00000000-0000-0000-0000-0000000000a1", authority(stub))
        .client_secret(ClientSecret::new("the-client-secret"))
        .http_client(http_client())
        .cache(cache)
        .build()
        .unwrap()
}

async fn access_tokens_in(cache: &dyn TokenCache) -> usize {
    cache
        .entries()
        .await
        .unwrap()
        .into_iter()
        .filter(|(k, _)| matches!(k, CacheKey::AccessToken(_)))
        .count()
}

fn invalid_reason(err: &Error) -> &str {
    match err {
        Error::Http(HttpError::InvalidResponse { reason, .. }) => reason,
        other => panic!("expected an invalid answer, got {other:?}"),
    }
}

#[tokio::test]
async fn absurd_lifetimes_are_clamped_to_a_day_and_the_entry_reads_back() {
    for lifetimes in [
        r#","expires_in":1e30,"ext_expires_in":1e30,"refresh_in":1e30"#,
        r#","expires_in":18446744073709551615,"refresh_in":18446744073709551615"#,
        r#","expires_in":"99999999999999999999999","ext_expires_in":"18446744073709551615""#,
        r#","expires_in":1000000000000000000000000000000"#,
    ] {
        let stub = stand_in(move |_, _| token_answer(lifetimes)).await;
        let dir = std::env::temp_dir().join(format!("a1-lifetimes-{}", uuid::Uuid::new_v4()));
        let cache: Arc<dyn TokenCache> = Arc::new(identity_core::FileCache::new(dir.join("cache.json")));
        let app = daemon(&stub, cache.clone());

        let token = app.acquire_token_for_client(&[SCOPE]).await.unwrap();
        assert_eq!(token.source, TokenSource::IdentityProvider, "{lifetimes}");
        assert!(
            token.expires_in() <= Duration::from_secs(24 * 3600),
            "{lifetimes}"
        );
        assert!(token.expires_in() > Duration::from_secs(23 * 3600), "{lifetimes}");

        // A new client on the same store (a later run) reads the entry back and serves it.
        let later = daemon(&stub, cache.clone());
        let again = later.acquire_token_for_client(&[SCOPE]).await.unwrap();
        assert_eq!(again.access_token.secret(), TOKEN_VALUE);
        assert_eq!(token_requests(&stub), 1, "{lifetimes}");
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[tokio::test]
async fn a_refresh_in_beyond_expires_in_is_clamped_to_it() {
    let stub = stand_in(|_, _| token_answer(r#","expires_in":3600,"refresh_in":1e30"#)).await;
    let app = daemon(&stub, Arc::new(MemoryCache::new()));
    let token = app.acquire_token_for_client(&[SCOPE]).await.unwrap();
    let refresh_on = token.refresh_on.expect("refresh_in was sent");
    assert!(refresh_on <= token.expires_on);
}

#[tokio::test]
async fn negative_or_garbage_lifetimes_are_refused_naming_the_member() {
    for (member, lifetimes) in [
        ("expires_in", r#","expires_in":-1"#),
        ("expires_in", r#","expires_in":"NaN""#),
        ("ext_expires_in", r#","expires_in":3600,"ext_expires_in":true"#),
        ("refresh_in", r#","expires_in":3600,"refresh_in":{"a":1}"#),
        ("expires_in", r#","expires_in":-1e30"#),
    ] {
        let stub = stand_in(move |_, _| token_answer(lifetimes)).await;
        let cache = Arc::new(MemoryCache::new());
        let err = daemon(&stub, cache.clone())
            .acquire_token_for_client(&[SCOPE])
            .await
            .unwrap_err();
        let reason = invalid_reason(&err);
        assert!(
            reason.contains(&format!("member '{member}'")),
            "{lifetimes}: {reason}"
        );
        assert!(!reason.contains(TOKEN_VALUE), "{reason}");
        assert!(err.fix().is_some());
        assert_eq!(access_tokens_in(&*cache).await, 0, "{lifetimes}");
    }
}

#[tokio::test]
async fn a_hostile_cache_entry_with_absurd_times_counts_as_expired() {
    let stub = stand_in(|_, _| token_answer(r#","expires_in":3599"#)).await;
    let cache: Arc<dyn TokenCache> = Arc::new(MemoryCache::new());
    let app = daemon(&stub, cache.clone());
    app.acquire_token_for_client(&[SCOPE]).await.unwrap();

    // Rewrite the stored entry as a corrupt or hostile store could hold it.
    let (key, entry) = cache
        .entries()
        .await
        .unwrap()
        .into_iter()
        .find(|(k, _)| matches!(k, CacheKey::AccessToken(_)))
        .unwrap();
    let mut raw = serde_json::to_value(&entry).unwrap();
    raw["expires_on"] = u64::MAX.into();
    raw["refresh_on"] = u64::MAX.into();
    raw["extended_expires_on"] = u64::MAX.into();
    let hostile: CacheEntry = serde_json::from_value(raw).unwrap();
    cache.put(&key, &hostile).await.unwrap();

    let token = daemon(&stub, cache.clone())
        .acquire_token_for_client(&[SCOPE])
        .await
        .unwrap();
    assert_eq!(token.source, TokenSource::IdentityProvider);
    assert_eq!(token_requests(&stub), 2);
}

#[tokio::test]
async fn a_connection_closed_before_the_answer_is_retried() {
    let stub = stand_in(|_, previous| {
        if previous < 2 {
            Reply::Close
        } else {
            token_answer(r#","expires_in":3599"#)
        }
    })
    .await;
    let token = daemon(&stub, Arc::new(MemoryCache::new()))
        .acquire_token_for_client(&[SCOPE])
        .await
        .unwrap();
    assert_eq!(token.access_token.secret(), TOKEN_VALUE);
    assert_eq!(token_requests(&stub), 3);
}

#[tokio::test]
async fn an_answer_cut_mid_body_is_retried_then_reported_with_a_fix() {
    let stub = stand_in(|_, _| Reply::Cut {
        partial: format!(r#"{{"token_type":"Bearer","access_token":"{TOKEN_VALUE}""#),
        declared: 4000,
    })
    .await;
    let cache = Arc::new(MemoryCache::new());
    let err = daemon(&stub, cache.clone())
        .acquire_token_for_client(&[SCOPE])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Http(HttpError::Request { .. })), "{err:?}");
    assert!(err.fix().unwrap().contains("dropped"), "{:?}", err.fix());
    assert!(!format!("{err} {err:?}").contains(TOKEN_VALUE));
    // The first attempt and the default two retries.
    assert_eq!(token_requests(&stub), 3);
    assert_eq!(access_tokens_in(&*cache).await, 0);
}

#[tokio::test]
async fn a_discovery_get_closed_before_the_answer_is_retried() {
    let stub = stand_in(|_, _| token_answer(r#","expires_in":3599"#)).await;
    // The stand-in answers discovery itself; a relay in front of it closes the first connection.
    let relay = relay(stub.addr.to_string(), 1).await;
    // Endpoints from discovery: the GET under test.
    let authority = Authority::parse(&format!("http://{}/{TENANT}", relay.addr))
        .unwrap()
        .discover_endpoints(true);
    let app = ConfidentialClient::builder("client", authority)
        .client_secret(ClientSecret::new("s"))
        .http_client(http_client())
        .build()
        .unwrap();
    let metadata = app.metadata().await.unwrap();
    assert!(metadata.token_endpoint.as_str().ends_with("/oauth2/v2.0/token"));
    assert_eq!(relay.connections(), 2);
    assert_eq!(stub.requests_ending("/openid-configuration").len(), 1);
}

#[tokio::test]
async fn an_html_page_with_status_200_names_the_page_and_the_proxy() {
    let stub = stand_in(|_, _| {
        json(200, "\n<!DOCTYPE html><html><head><title>Hotel\tGuest WiFi - Sign in</title></head><body>Accept the terms</body></html>")
            .with_header("content-type", "text/html")
    })
    .await;
    let cache = Arc::new(MemoryCache::new());
    let err = daemon(&stub, cache.clone())
        .acquire_token_for_client(&[SCOPE])
        .await
        .unwrap_err();
    let reason = invalid_reason(&err);
    assert!(
        reason.contains("not JSON: an HTML page from 127.0.0.1"),
        "{reason}"
    );
    assert!(reason.contains("Hotel Guest WiFi - Sign in"), "{reason}");
    assert!(err.fix().unwrap().contains("captive portal"), "{:?}", err.fix());
    assert!(err.fix().unwrap().contains("HTTPS_PROXY"), "{:?}", err.fix());
    assert_eq!(access_tokens_in(&*cache).await, 0);
    // A wrong answer is not a network failure: not retried.
    assert_eq!(token_requests(&stub), 1);
}

#[tokio::test]
async fn malformed_token_answers_name_the_member_never_the_value() {
    let cases: [(&str, &str); 8] = [
        ("", "the token response is empty"),
        ("   \n", "the token response is empty"),
        (
            r#"{"token_type":"Bearer","access_token":"SECRET-ACCESS-TOKEN-VALUE","expires_in":35"#,
            "truncated",
        ),
        (
            r#"{"token_type":"Bearer","expires_in":3599}"#,
            "member 'access_token' of the token response is missing",
        ),
        (
            r#"{"access_token":"SECRET-ACCESS-TOKEN-VALUE"}"#,
            "member 'token_type' of the token response is missing",
        ),
        (
            r#"{"token_type":"Bearer","access_token":["SECRET-ACCESS-TOKEN-VALUE"]}"#,
            "member 'access_token' of the token response is malformed: expected a string",
        ),
        (r#"["SECRET-ACCESS-TOKEN-VALUE"]"#, "a JSON array"),
        (
            r#"{"token_type":"Bearer","access_token":"SECRET-ACCESS-TOKEN-VALUE"} trailing"#,
            "not JSON",
        ),
    ];
    for (body, expected) in cases {
        let stub = stand_in(move |_, _| json(200, body)).await;
        let cache = Arc::new(MemoryCache::new());
        let err = daemon(&stub, cache.clone())
            .acquire_token_for_client(&[SCOPE])
            .await
            .unwrap_err();
        let reason = invalid_reason(&err);
        assert!(reason.contains(expected), "{body}: {reason}");
        assert!(!reason.contains("field '"), "{reason}");
        assert!(!format!("{err} {err:?}").contains(TOKEN_VALUE), "{err:?}");
        assert!(err.fix().is_some());
        assert_eq!(access_tokens_in(&*cache).await, 0);
    }
}

const ERROR_200: &str = r#"{"error":"invalid_client","error_description":"AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.\r\nTrace ID: t\r\nCorrelation ID: c\r\nTimestamp: 2026-01-01 00:00:00Z","error_codes":[7000218],"timestamp":"2026-01-01 00:00:00Z","trace_id":"t","correlation_id":"6a5b5e54-0000-0000-0000-00000000c0de","error_uri":"https://login.microsoftonline.com/error?code=7000218"}"#;

#[tokio::test]
async fn the_device_code_endpoint_answering_an_error_with_200_is_a_service_error() {
    let stub = stand_in(|_, _| json(200, ERROR_200)).await;
    let app = PublicClient::builder("public-app", authority(&stub))
        .http_client(http_client())
        .build()
        .unwrap();
    let err = app.initiate_device_flow(&["User.Read"]).await.unwrap_err();
    let Error::Service(e) = &err else {
        panic!("expected a service error, got {err:?}")
    };
    assert_eq!(
        (e.error.as_str(), e.status, e.code()),
        ("invalid_client", 200, Some(7000218))
    );
    assert_eq!(
        e.correlation_id.as_deref(),
        Some("6a5b5e54-0000-0000-0000-00000000c0de")
    );
    assert!(err.fix().is_some());
    assert_eq!(stub.requests_ending("/oauth2/v2.0/devicecode").len(), 1);
}

#[tokio::test]
async fn the_token_endpoint_answering_an_error_with_200_is_a_service_error() {
    // Odd types in the other members do not lose the error.
    let body = r#"{"error":"invalid_client","error_codes":["x",7000215],"trace_id":5,"error_description":"AADSTS7000215: Invalid client secret provided."}"#;
    let stub = stand_in(move |_, _| json(200, body)).await;
    let cache = Arc::new(MemoryCache::new());
    let err = daemon(&stub, cache.clone())
        .acquire_token_for_client(&[SCOPE])
        .await
        .unwrap_err();
    let Error::Service(e) = &err else {
        panic!("expected a service error, got {err:?}")
    };
    assert_eq!(
        (e.status, e.code(), e.trace_id.as_deref()),
        (200, Some(7000215), None)
    );
    assert!(err.fix().is_some());
    assert_eq!(access_tokens_in(&*cache).await, 0);
}

#[tokio::test]
async fn identity_posts_announce_retry_after_and_h429() {
    let stub = stand_in(|hit, _| {
        if hit.path().ends_with("/devicecode") {
            json(200, r#"{"error":"authorization_declined"}"#)
        } else {
            token_answer(r#","expires_in":3599"#)
        }
    })
    .await;
    daemon(&stub, Arc::new(MemoryCache::new()))
        .acquire_token_for_client(&[SCOPE])
        .await
        .unwrap();
    // Endpoints from discovery, to see that its GET does not announce the capability.
    let public = PublicClient::builder("public-app", authority(&stub).discover_endpoints(true))
        .http_client(http_client())
        .build()
        .unwrap();
    public.initiate_device_flow(&["User.Read"]).await.unwrap_err();
    let posts: Vec<Request> = stub
        .requests()
        .into_iter()
        .filter(|h| h.method == "POST")
        .collect();
    assert_eq!(posts.len(), 2);
    for post in posts {
        assert_eq!(
            post.header("x-ms-lib-capability"),
            Some("retry-after, h429"),
            "{}",
            post.target
        );
    }
    let discovery = &stub.requests_ending("/openid-configuration")[0];
    assert_eq!(discovery.header("x-ms-lib-capability"), None);
}

/// Collects what the tracing subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Captures this thread's logs that pass `filter` until the guard is dropped.
    fn start(filter: &str) -> (Captured, tracing::subscriber::DefaultGuard) {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (captured, tracing::subscriber::set_default(subscriber))
    }
}

#[tokio::test]
async fn each_request_is_logged_once_at_info_with_its_correlation_id_and_no_query() {
    let (captured, _guard) = Captured::start("warn,identity_core=debug");

    let stub = stand_in(|hit, _| {
        if hit.path().starts_with("/v1.0/") {
            json(200, r#"{"value":[]}"#)
        } else {
            token_answer(r#","expires_in":3599"#)
        }
    })
    .await;
    let app = daemon(&stub, Arc::new(MemoryCache::new()));
    let token = app.acquire_token_for_client(&[SCOPE]).await.unwrap();
    let correlation_id = token.correlation_id.clone().unwrap();
    identity_core::GraphClient::new(app.http_client().clone())
        .get(
            &format!("{}/v1.0/users?$select=secretQuery", stub.base()),
            &token.access_token,
        )
        .await
        .unwrap();

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("http request")).collect();
    assert_eq!(lines.len(), 2, "token and Graph (no discovery): {log}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains(" INFO ") && l.contains("identity_core::http")),
        "{log}"
    );
    let token_line = lines
        .iter()
        .find(|l| l.contains("/oauth2/v2.0/token"))
        .expect("a line for the token request");
    for part in [
        "method=POST",
        "status=200",
        "attempt=0",
        "elapsed_ms=",
        &format!("correlation_id={correlation_id}"),
    ] {
        assert!(token_line.contains(part), "{part} in {token_line}");
    }
    let graph_line = lines.iter().find(|l| l.contains("/v1.0/users")).unwrap();
    assert!(graph_line.contains("method=GET"), "{graph_line}");
    assert!(!log.contains("secretQuery"), "{log}");
    assert!(
        !log.contains(TOKEN_VALUE) && !log.contains("the-client-secret"),
        "{log}"
    );
}

#[tokio::test]
async fn an_untrusted_certificate_is_not_retried_and_its_fix_names_the_ca_setting() {
    let emu = entra_emulator::Emulator::builder().start().await.unwrap();
    // A counting TCP relay in front of the emulator's HTTPS port: each connection is one attempt.
    let target = emu
        .https_url()
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string();
    let relay = relay(target, 0).await;
    let authority = Authority::parse(&format!("https://{}/{}", relay.addr, emu.tenant_id())).unwrap();
    // No emulator CA: its certificate is not trusted.
    let app = ConfidentialClient::builder("client", authority)
        .client_secret(ClientSecret::new("s"))
        .http_client(http_client())
        .build()
        .unwrap();
    let err = app.acquire_token_for_client(&[SCOPE]).await.unwrap_err();
    assert!(matches!(err, Error::Http(HttpError::Connect { .. })), "{err:?}");
    let fix = err.fix().unwrap();
    assert!(
        fix.contains("IDENTITY_EXTRA_CA_CERTS") && fix.contains("not retried"),
        "{fix}"
    );
    assert_eq!(relay.connections(), 1);
}

#[tokio::test]
async fn the_waits_between_retries_add_up_to_at_most_max_retry_wait() {
    let stub = stand_in(|_, _| busy("1.5")).await;
    let mut config = HttpConfig::default();
    config.proxy_from_env = false;
    config.max_retry_wait = Duration::from_secs(2);
    let app = ConfidentialClient::builder("client", authority(&stub))
        .client_secret(ClientSecret::new("s"))
        .http_client(HttpClient::new(config).unwrap())
        .build()
        .unwrap();
    let err = app.acquire_token_for_client(&[SCOPE]).await.unwrap_err();
    let Error::Service(e) = &err else {
        panic!("expected the service's answer, got {err:?}")
    };
    assert_eq!(
        (e.status, e.retry_after),
        (503, Some(Duration::from_millis(1500)))
    );
    // 1.5 s was waited once; a second 1.5 s would exceed the 2 s budget, so the answer is returned.
    assert_eq!(token_requests(&stub), 2);
}

#[tokio::test]
async fn a_refused_connection_is_retried_and_each_attempt_is_logged() {
    let (captured, _guard) = Captured::start("identity_core::http=info");
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let app = ConfidentialClient::builder(
        "client",
        Authority::parse(&format!("http://127.0.0.1:{port}/{TENANT}")).unwrap(),
    )
    .client_secret(ClientSecret::new("s"))
    .http_client(http_client())
    .build()
    .unwrap();
    let err = app.acquire_token_for_client(&[SCOPE]).await.unwrap_err();
    assert!(matches!(err, Error::Http(HttpError::Connect { .. })), "{err:?}");
    assert!(err.fix().unwrap().contains("HTTPS_PROXY"), "{:?}", err.fix());
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let attempts: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("http request failed"))
        .collect();
    assert_eq!(attempts.len(), 3, "{log}");
    for (n, line) in attempts.iter().enumerate() {
        assert!(
            line.contains("failure=\"connect\"") || line.contains("failure=connect"),
            "{line}"
        );
        assert!(line.contains(&format!("attempt={n}")), "{line}");
    }
}

/// A device code living u64::MAX seconds: the lifetime meets the monotonic clock, and must not overflow it.
#[tokio::test]
async fn a_huge_device_code_lifetime_does_not_panic() {
    let stub = stand_in(|hit, _| {
        if hit.path().ends_with("/devicecode") {
            json(
                200,
                r#"{"user_code":"ABCD","device_code":"dc","verification_uri":"https://microsoft.com/devicelogin","expires_in":18446744073709551615,"interval":1}"#,
            )
        } else {
            json(400, r#"{"error":"expired_token"}"#)
        }
    })
    .await;
    let app = PublicClient::builder("public-app", authority(&stub))
        .http_client(http_client())
        .build()
        .unwrap();
    let flow = app.initiate_device_flow(&["User.Read"]).await.unwrap();
    assert!(flow.expires_in <= std::time::Duration::from_secs(24 * 3600));
    let err = app.acquire_token_by_device_flow(&flow).await.unwrap_err();
    assert!(matches!(err, Error::Service(_)), "{err:?}");
}
