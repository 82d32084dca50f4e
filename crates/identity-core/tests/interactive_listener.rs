//! The interactive flow's loopback listener, driven over real TCP like a browser (and an attacker) would: the
//! URL hook hands over the sign-in URL, the test posts answers to its redirect URI. The sign-in page itself
//! is driven in Chromium in `interactive_browser.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use entra_emulator::Emulator;
use identity_core::{
    Authority, Error, HttpClient, HttpConfig, InteractiveOptions, MemoryCache, PublicClient, Result,
    SignInError, TokenResult,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use url::Url;

/// The tokens a stand-in token endpoint answers, with an ID token carrying `nonce`.
fn token_answer(nonce: &str) -> serde_json::Value {
    use base64::Engine as _;
    let b64 = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let claims = serde_json::json!({"oid": "u-1", "tid": "t-1", "preferred_username": "adele@contoso.com", "nonce": nonce});
    serde_json::json!({
        "token_type": "Bearer",
        "access_token": "stand-in-access-token",
        "expires_in": 3600,
        "refresh_token": "stand-in-refresh-token",
        "scope": "User.Read openid profile offline_access",
        "id_token": format!("{}.{}.sig", b64(serde_json::json!({"alg": "none"})), b64(claims)),
        "client_info": b64(serde_json::json!({"uid": "u-1", "utid": "t-1"})),
    })
}

/// A stand-in authority (plain http on loopback) whose token endpoint answers with an ID token carrying the
/// nonce in `nonce` (set by the test once the sign-in URL is known).
async fn stand_in_authority(nonce: Arc<std::sync::Mutex<String>>) -> common::Stub {
    common::serve(move |request, _| {
        let base = format!("http://{}", request.header("host").unwrap());
        if request.target.contains("/oauth2/v2.0/token") {
            common::Reply::json(200, token_answer(&nonce.lock().unwrap()))
        } else {
            common::Reply::json(
                200,
                common::discovery_document(&base, "contoso.onmicrosoft.com", &base),
            )
        }
    })
    .await
}

fn stand_in_app(stub: &common::Stub, cache: Arc<MemoryCache>) -> PublicClient {
    let authority = Authority::parse(&format!("{}/contoso.onmicrosoft.com", stub.base())).unwrap();
    PublicClient::builder("00000000-0000-0000-0000-000000000002", authority)
        .http_client(common::loopback_http(None))
        .cache(cache)
        .build()
        .unwrap()
}

fn app(emu: &Emulator) -> PublicClient {
    let registration = emu.app("device-code").expect("seeded public app");
    PublicClient::builder(registration.app_id, Authority::parse(&emu.authority()).unwrap())
        .http_client(HttpClient::new(HttpConfig::default().with_extra_ca_pem(emu.ca_pem())).unwrap())
        .cache(Arc::new(MemoryCache::new()))
        .build()
        .unwrap()
}

/// A sign-in in progress: the task, the URL it opened, and its redirect URI's port and state.
struct Attempt {
    task: JoinHandle<Result<TokenResult>>,
    url: Url,
    port: u16,
    state: String,
}

impl Attempt {
    fn param(&self, name: &str) -> String {
        let q: HashMap<String, String> = self.url.query_pairs().into_owned().collect();
        q.get(name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {}", self.url))
    }
}

/// Starts `acquire_token_interactive` with a hook that hands the URL to the test.
async fn start(app: &PublicClient, options: InteractiveOptions) -> Attempt {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let options = options.with_url_opener(move |url| tx.send(url.to_string()).map_err(|e| e.to_string()));
    let app = app.clone();
    let task = tokio::spawn(async move { app.acquire_token_interactive(&["User.Read"], options).await });
    let url = Url::parse(&rx.recv().await.expect("the hook was called")).unwrap();
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    let redirect = Url::parse(&q["redirect_uri"]).unwrap();
    assert_eq!(redirect.scheme(), "http");
    assert_eq!(redirect.host_str(), Some("localhost"));
    assert_eq!(redirect.path(), "/");
    Attempt {
        task,
        port: redirect.port().expect("a port"),
        state: q["state"].clone(),
        url,
    }
}

/// Sends raw bytes to the listener and reads the whole answer.
async fn raw(port: u16, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// A form POST as the sign-in page's auto-submitting form sends it.
async fn post_form(port: u16, fields: &[(&str, &str)]) -> String {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let request = format!(
        "POST / HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Origin: https://login.microsoftonline.com\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    raw(port, request.as_bytes()).await
}

fn status(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"))
}

async fn nothing_listens(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).await.is_err()
}

const DECLINED: &str = "AADSTS65004: User declined to consent to access the app.\r\nTrace ID: 5c3b\r\n\
                        Correlation ID: 9f1e\r\nTimestamp: 2026-12-01 10:00:00Z";

#[tokio::test]
async fn a_forged_state_and_a_code_by_get_are_refused_and_the_real_answer_is_accepted() {
    let emu = Emulator::builder().start().await.unwrap();
    let attempt = start(&app(&emu), InteractiveOptions::new()).await;
    let port = attempt.port;

    let forged = post_form(port, &[("code", "attacker-code"), ("state", "forged")]).await;
    assert_eq!(status(&forged), 400, "{forged}");
    assert!(forged.contains("State mismatch"), "{forged}");
    let no_state = post_form(port, &[("code", "attacker-code")]).await;
    assert_eq!(status(&no_state), 400, "{no_state}");

    let get = format!(
        "GET /?code=attacker-code&state={} HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n",
        attempt.state
    );
    let by_get = raw(port, get.as_bytes()).await;
    assert_eq!(status(&by_get), 400, "{by_get}");
    assert!(by_get.contains("only as a form POST"), "{by_get}");
    assert!(
        !attempt.task.is_finished(),
        "a refused answer does not end the sign-in"
    );

    let real = post_form(
        port,
        &[
            ("error", "access_denied"),
            (
                "error_description",
                &format!("{DECLINED} <script>alert(1)</script>"),
            ),
            ("error_uri", "https://login.microsoftonline.com/error?code=65004"),
            ("state", &attempt.state),
        ],
    )
    .await;
    assert_eq!(status(&real), 200, "{real}");
    assert!(real.contains("Sign-in failed"), "{real}");
    assert!(
        real.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the page escapes: {real}"
    );
    assert!(!real.contains("<script>"), "{real}");

    let error = attempt.task.await.unwrap().unwrap_err();
    let Error::Service(e) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(e.error, "access_denied");
    assert_eq!(e.code(), Some(65004));
    assert_eq!(e.correlation_id.as_deref(), Some("9f1e"));
    assert_eq!(e.trace_id.as_deref(), Some("5c3b"));
    assert_eq!(
        e.error_uri.as_deref(),
        Some("https://login.microsoftonline.com/error?code=65004")
    );
    assert!(
        error.fix().unwrap().contains("choose Accept"),
        "{:?}",
        error.fix()
    );
    assert!(
        nothing_listens(port).await,
        "the listener is closed once answered"
    );
}

#[tokio::test]
async fn malformed_and_oversized_requests_are_refused_while_a_silent_connection_does_not_block() {
    let emu = Emulator::builder().start().await.unwrap();
    let attempt = start(&app(&emu), InteractiveOptions::new()).await;
    let port = attempt.port;
    // A connection that never sends anything (browsers open spare ones) stays open throughout.
    let _silent = TcpStream::connect(("127.0.0.1", port)).await.unwrap();

    let huge_header = format!(
        "POST / HTTP/1.1\r\nHost: localhost:{port}\r\nX-Filler: {}\r\n\r\n",
        "a".repeat(40_000)
    );
    assert_eq!(status(&raw(port, huge_header.as_bytes()).await), 431);
    let huge_body = format!(
        "POST / HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: 10000000\r\n\r\nstate="
    );
    assert_eq!(status(&raw(port, huge_body.as_bytes()).await), 413);
    let chunked =
        format!("POST / HTTP/1.1\r\nHost: localhost:{port}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    assert_eq!(status(&raw(port, chunked.as_bytes()).await), 411);
    let rebound = format!(
        "POST / HTTP/1.1\r\nHost: evil.example:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: 0\r\n\r\n"
    );
    assert_eq!(status(&raw(port, rebound.as_bytes()).await), 400);
    let put = format!("PUT / HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(status(&raw(port, put.as_bytes()).await), 405);
    let text = format!(
        "POST / HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\ncode"
    );
    assert_eq!(status(&raw(port, text.as_bytes()).await), 415);
    let twice = post_form(port, &[("state", &attempt.state), ("state", "x"), ("code", "c")]).await;
    assert_eq!(status(&twice), 400, "{twice}");
    assert_eq!(status(&raw(port, b"\x16\x03\x01garbage\r\n\r\n").await), 400);
    assert!(!attempt.task.is_finished());

    let real = post_form(port, &[("error", "login_required"), ("state", &attempt.state)]).await;
    assert_eq!(status(&real), 200, "{real}");
    let error = attempt.task.await.unwrap().unwrap_err();
    assert!(
        matches!(&error, Error::Service(e) if e.error == "login_required"),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_wait_ends_at_the_timeout_and_closes_the_listener() {
    let emu = Emulator::builder().start().await.unwrap();
    let options = InteractiveOptions::new().with_timeout(Duration::from_millis(300));
    let attempt = start(&app(&emu), options).await;
    let error = attempt.task.await.unwrap().unwrap_err();
    assert!(
        matches!(error, Error::SignIn(SignInError::InteractionTimedOut { .. })),
        "{error:?}"
    );
    assert!(
        error.fix().unwrap().contains("http://localhost"),
        "{:?}",
        error.fix()
    );
    assert!(nothing_listens(attempt.port).await);
}

#[tokio::test]
async fn concurrent_attempts_get_distinct_ports_and_secrets_and_nothing_listens_afterwards() {
    let emu = Emulator::builder().start().await.unwrap();
    let app = app(&emu);
    let (a, b) = tokio::join!(
        start(&app, InteractiveOptions::new()),
        start(&app, InteractiveOptions::new())
    );
    assert_ne!(a.port, b.port);
    for name in ["state", "nonce", "code_challenge"] {
        assert_ne!(a.param(name), b.param(name), "{name} is fresh per attempt");
    }
    for attempt in [&a, &b] {
        assert_eq!(attempt.param("response_mode"), "form_post");
        assert_eq!(attempt.param("code_challenge_method"), "S256");
        assert_eq!(attempt.param("response_type"), "code");
        assert_eq!(attempt.param("client_info"), "1");
        assert_eq!(attempt.param("scope"), "User.Read openid profile offline_access");
        assert_eq!(attempt.param("client_id"), app.client_id());
        assert!(attempt.url.as_str().starts_with(&emu.authority()));
        assert!(attempt.url.path().ends_with("/oauth2/v2.0/authorize"));
    }
    // Each listener answers only its own attempt.
    let crossed = post_form(a.port, &[("error", "access_denied"), ("state", &b.state)]).await;
    assert_eq!(status(&crossed), 400);
    for attempt in [a, b] {
        let answer = post_form(
            attempt.port,
            &[("error", "access_denied"), ("state", &attempt.state)],
        )
        .await;
        assert_eq!(status(&answer), 200);
        assert!(attempt.task.await.unwrap().is_err());
        assert!(nothing_listens(attempt.port).await);
    }
}

#[tokio::test]
async fn dropping_the_future_closes_the_listener() {
    let emu = Emulator::builder().start().await.unwrap();
    let attempt = start(&app(&emu), InteractiveOptions::new()).await;
    // What Ctrl-C does in the sample: the future is dropped.
    attempt.task.abort();
    assert!(attempt.task.await.unwrap_err().is_cancelled());
    assert!(nothing_listens(attempt.port).await);
}

#[tokio::test]
async fn an_opener_that_fails_ends_the_sign_in_with_the_device_code_advice() {
    let emu = Emulator::builder().start().await.unwrap();
    let options = InteractiveOptions::new().with_url_opener(|_| Err("no graphical session".into()));
    let error = app(&emu)
        .acquire_token_interactive(&["User.Read"], options)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::SignIn(SignInError::BrowserUnavailable { reason }) if reason == "no graphical session"),
        "{error:?}"
    );
    assert!(
        error.fix().unwrap().contains("device-code flow"),
        "{:?}",
        error.fix()
    );
}

#[tokio::test]
async fn the_code_is_redeemed_with_the_verifier_and_the_id_token_nonce_is_checked() {
    use base64::Engine as _;
    use identity_core::{TokenCache, TokenSource};
    use sha2::Digest as _;
    let nonce = Arc::new(std::sync::Mutex::new(String::new()));
    let stub = stand_in_authority(nonce.clone()).await;

    // The ID token carries another sign-in's nonce: refused, nothing cached.
    let cache = Arc::new(MemoryCache::new());
    let attempt = start(&stand_in_app(&stub, cache.clone()), InteractiveOptions::new()).await;
    *nonce.lock().unwrap() = "another-sign-in".into();
    post_form(attempt.port, &[("code", "the-code"), ("state", &attempt.state)]).await;
    let error = attempt.task.await.unwrap().unwrap_err();
    assert!(
        matches!(error, Error::SignIn(SignInError::NonceMismatch { .. })),
        "{error:?}"
    );
    assert!(cache.entries().await.unwrap().is_empty(), "nothing cached");

    // This sign-in's nonce: the code is redeemed with the verifier of the challenge sent, and cached.
    let attempt = start(&stand_in_app(&stub, cache.clone()), InteractiveOptions::new()).await;
    *nonce.lock().unwrap() = attempt.param("nonce");
    let (redirect_uri, code_challenge) = (attempt.param("redirect_uri"), attempt.param("code_challenge"));
    let page = post_form(attempt.port, &[("code", "the-code"), ("state", &attempt.state)]).await;
    assert_eq!(status(&page), 200);
    assert!(page.contains("Authentication complete"), "{page}");
    let token = attempt.task.await.unwrap().unwrap();
    assert_eq!(token.source, TokenSource::IdentityProvider);
    assert_eq!(token.account.as_ref().unwrap().username, "adele@contoso.com");
    let redemption = stub
        .requests_to("/contoso.onmicrosoft.com/oauth2/v2.0/token")
        .pop()
        .unwrap();
    assert_eq!(
        redemption.form("grant_type").as_deref(),
        Some("authorization_code")
    );
    assert_eq!(redemption.form("code").as_deref(), Some("the-code"));
    assert_eq!(redemption.form("redirect_uri"), Some(redirect_uri));
    assert_eq!(redemption.form("client_info").as_deref(), Some("1"));
    let verifier = redemption.form("code_verifier").unwrap();
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&verifier));
    assert_eq!(challenge, code_challenge);
    assert!(!page.contains("the-code"), "the page does not repeat the code");
    assert!(!cache.entries().await.unwrap().is_empty());
}
