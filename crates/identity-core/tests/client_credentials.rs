//! Client credentials with a secret, over real HTTPS against the emulator.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

use std::sync::Arc;
use std::time::Duration;

use entra_emulator::{Emulator, Endpoint, Fault};
use identity_core::{
    AccessTokenKey, Authority, CacheEntry, CacheKey, CachedAccessToken, ClientCredential, ClientSecret,
    ConfidentialClient, Error, HttpClient, HttpConfig, MemoryCache, TokenCache, TokenSource, now_secs,
};

const GRAPH_DEFAULT: &str = "https://graph.microsoft.com/.default";

async fn emulator() -> Emulator {
    Emulator::builder().start().await.expect("emulator starts")
}

fn http(emulator: &Emulator) -> HttpClient {
    HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem())).unwrap()
}

fn secret_of(emulator: &Emulator, app: &str) -> (String, ClientSecret) {
    let app = emulator.app(app).expect("seeded app");
    (
        app.app_id.clone(),
        ClientSecret::new(app.secrets[0].value.clone()),
    )
}

fn client_on(
    emulator: &Emulator,
    authority: &str,
    client_id: &str,
    secret: ClientSecret,
) -> ConfidentialClient {
    ConfidentialClient::builder(client_id, Authority::parse(authority).unwrap())
        .client_secret(secret)
        .http_client(http(emulator))
        .build()
        .unwrap()
}

fn daemon(emulator: &Emulator) -> ConfidentialClient {
    let (id, secret) = secret_of(emulator, "daemon");
    client_on(emulator, &emulator.authority(), &id, secret)
}

fn service_error(err: Error) -> Box<identity_core::ServiceError> {
    match err {
        Error::Service(e) => e,
        other => panic!("expected a service error, got {other:?}"),
    }
}

#[tokio::test]
async fn second_acquisition_is_served_from_the_cache_without_a_request() {
    let emu = emulator().await;
    let app = daemon(&emu);

    let first = app.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap();
    assert_eq!(first.source, TokenSource::IdentityProvider);
    assert!(first.correlation_id.is_some());
    assert!(
        first.expires_in() > Duration::from_secs(3000),
        "about an hour: {:?}",
        first.expires_in()
    );
    assert_eq!(first.token_type, "Bearer");
    assert_eq!(first.access_token.secret().split('.').count(), 3, "a JWT");

    let before = emu.request_counts();
    let second = app.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap();
    let after = emu.request_counts();
    assert_eq!(second.source, TokenSource::Cache);
    assert_eq!(second.access_token, first.access_token);
    assert_eq!(
        after.total(),
        before.total(),
        "no request at all for a cached token"
    );
    assert_eq!(after.get(Endpoint::Token), 1);
    assert_eq!(
        after.get(Endpoint::OpenIdConfiguration),
        0,
        "the token endpoint of Entra's layout needs no discovery"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_callers_on_a_cold_cache_make_one_token_request() {
    let emu = emulator().await;
    let app = daemon(&emu);
    let callers: Vec<_> = (0..100)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { app.acquire_token_for_client(&[GRAPH_DEFAULT]).await })
        })
        .collect();
    let mut tokens = Vec::new();
    for caller in callers {
        tokens.push(caller.await.unwrap().unwrap());
    }
    assert_eq!(emu.request_counts().get(Endpoint::Token), 1);
    assert_eq!(emu.request_counts().get(Endpoint::OpenIdConfiguration), 0);
    assert_eq!(
        tokens
            .iter()
            .filter(|t| t.source == TokenSource::IdentityProvider)
            .count(),
        1
    );
    assert!(tokens.iter().all(|t| t.access_token == tokens[0].access_token));
}

/// A client using `cache`, in which `token` is already stored under the client's Graph key.
async fn client_with_cached(
    emu: &Emulator,
    client_id: &str,
    secret: ClientSecret,
    cache: &Arc<MemoryCache>,
    token: CachedAccessToken,
) -> (ConfidentialClient, CacheKey) {
    let authority = Authority::parse(&emu.authority()).unwrap();
    let key = CacheKey::AccessToken(
        AccessTokenKey::new(
            None,
            &authority.environment(),
            client_id,
            authority.tenant(),
            &[GRAPH_DEFAULT],
        )
        .with_credential(&ClientCredential::from(secret.clone()).fingerprint()),
    );
    cache.put(&key, &CacheEntry::AccessToken(token)).await.unwrap();
    let app = ConfidentialClient::builder(client_id, authority)
        .client_secret(secret)
        .http_client(http(emu))
        .cache(cache.clone())
        .build()
        .unwrap();
    (app, key)
}

#[tokio::test]
async fn a_token_with_less_than_five_minutes_left_is_replaced() {
    let emu = emulator().await;
    let (id, secret) = secret_of(&emu, "daemon");
    let cache = Arc::new(MemoryCache::new());
    let old = identity_core::SecretToken::new("old-token");
    // Issued 55 minutes ago, valid for an hour: under five minutes left.
    let nearly_expired = CachedAccessToken::new(
        old.clone(),
        "Bearer".into(),
        vec![],
        now_secs() - 3300,
        3599,
        None,
        None,
    );
    let (app, key) = client_with_cached(&emu, &id, secret, &cache, nearly_expired).await;

    let token = app.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap();
    assert_eq!(token.source, TokenSource::IdentityProvider);
    assert_ne!(token.access_token, old);
    assert_eq!(emu.request_counts().get(Endpoint::Token), 1);
    let Some(CacheEntry::AccessToken(stored)) = cache.get(&key).await.unwrap() else {
        panic!("stored")
    };
    assert_eq!(
        stored.access_token, token.access_token,
        "the new token replaced the old one"
    );
}

#[tokio::test]
async fn refresh_in_is_honoured_and_a_failed_early_refresh_keeps_the_valid_token() {
    let emu = emulator().await;
    let (id, secret) = secret_of(&emu, "daemon");
    let cache = Arc::new(MemoryCache::new());
    let valid = identity_core::SecretToken::new("still-valid");
    // Issued 40 minutes ago, valid for an hour, refresh asked for after 30 minutes.
    let aging = CachedAccessToken::new(
        valid.clone(),
        "Bearer".into(),
        vec![],
        now_secs() - 2400,
        3600,
        None,
        Some(1800),
    );
    let wrong = ClientSecret::new("wrong secret so the refresh fails");
    let (app, _) = client_with_cached(&emu, &id, wrong, &cache, aging).await;

    let token = app.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap();
    assert_eq!(
        emu.request_counts().get(Endpoint::Token),
        1,
        "refresh_in passed: the service was asked"
    );
    assert_eq!(token.source, TokenSource::Cache);
    assert_eq!(token.access_token, valid);

    // With the right secret, the early refresh replaces the token.
    let good = ConfidentialClient::builder(id, Authority::parse(&emu.authority()).unwrap())
        .client_secret(secret)
        .http_client(http(&emu))
        .cache(cache)
        .build()
        .unwrap();
    let token = good.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap();
    assert_eq!(token.source, TokenSource::IdentityProvider);
    assert_ne!(token.access_token, valid);
}

#[tokio::test]
async fn a_domain_tenant_works_and_discovery_reports_the_tenant_guid() {
    let emu = emulator().await;
    let (id, secret) = secret_of(&emu, "daemon");
    let authority = format!("{}/{}", emu.https_url(), emu.tenant_domain());
    let app = client_on(&emu, &authority, &id, secret.clone());
    // Entra's layout: the domain as configured, no request.
    let metadata = app.metadata().await.unwrap();
    assert_eq!(metadata.tenant_id, emu.tenant_domain());
    assert!(metadata.token_endpoint.as_str().starts_with(&emu.https_url()));
    app.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap();
    // Discovery names the tenant by its GUID.
    let discovering = ConfidentialClient::builder(
        &id,
        Authority::parse(&authority).unwrap().discover_endpoints(true),
    )
    .client_secret(secret)
    .http_client(http(&emu))
    .build()
    .unwrap();
    assert_eq!(discovering.metadata().await.unwrap().tenant_id, emu.tenant_id());
    discovering
        .acquire_token_for_client(&[GRAPH_DEFAULT])
        .await
        .unwrap();
}

#[tokio::test]
async fn retries_a_503_after_retry_after_then_succeeds() {
    let emu = emulator().await;
    let app = daemon(&emu);
    app.metadata().await.unwrap();
    emu.inject_fault(Fault::status(Endpoint::Token, 503, Some(1)));
    let token = app.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap();
    assert_eq!(token.source, TokenSource::IdentityProvider);
    assert_eq!(emu.request_counts().get(Endpoint::Token), 2);
}

#[tokio::test]
async fn a_retry_after_beyond_the_limit_is_returned_not_waited_for() {
    let emu = emulator().await;
    let app = daemon(&emu);
    app.metadata().await.unwrap();
    emu.inject_fault(Fault::status(Endpoint::Token, 429, Some(600)));
    let err = app.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap_err();
    let retry_after = match &err {
        Error::Service(e) => e.retry_after,
        Error::Http(identity_core::HttpError::UnexpectedStatus {
            status: 429,
            retry_after,
            ..
        }) => *retry_after,
        other => panic!("expected a throttling error, got {other:?}"),
    };
    assert_eq!(retry_after, Some(Duration::from_secs(600)));
    assert_eq!(emu.request_counts().get(Endpoint::Token), 1);
}

#[tokio::test]
async fn wrong_secret_is_7000215_with_every_field_and_the_fix() {
    let emu = emulator().await;
    let (id, _) = secret_of(&emu, "daemon");
    let app = client_on(&emu, &emu.authority(), &id, ClientSecret::new("not-the-secret"));
    let e = service_error(app.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap_err());
    assert_eq!(
        (e.status, e.error.as_str(), e.code()),
        (401, "invalid_client", Some(7000215))
    );
    assert!(e.summary().starts_with("AADSTS7000215:"), "{}", e.summary());
    assert!(e.error_description.as_deref().unwrap().contains("\r\nTrace ID: "));
    assert!(uuid::Uuid::try_parse(e.correlation_id.as_deref().unwrap()).is_ok());
    assert!(e.trace_id.is_some() && e.timestamp.is_some());
    assert_eq!(
        e.error_uri.as_deref(),
        Some("https://login.microsoftonline.com/error?code=7000215")
    );
    assert!(e.fix().unwrap().contains("Value, not its Secret ID"));
    assert!(
        !format!("{e:?} {e}").contains("not-the-secret"),
        "the secret never shows"
    );
}

/// A case: name, authority, client id, secret, scope, expected AADSTS code, OAuth error, HTTP status.
type ErrorCase<'a> = (&'a str, String, String, ClientSecret, &'a str, i64, &'a str, u16);

/// Each case: how the request is made wrong, and the code, OAuth error and HTTP status the service answers.
#[tokio::test]
async fn every_emulated_service_error_reaches_the_caller_typed_with_its_fix() {
    let emu = emulator().await;
    let (daemon_id, daemon_secret) = secret_of(&emu, "daemon");
    let (expired_id, expired_secret) = secret_of(&emu, "expired-secret");
    let host = emu.https_url();
    let unknown_tenant = format!("{host}/{}", uuid::Uuid::new_v4());
    let cases: Vec<ErrorCase<'_>> = vec![
        (
            "unknown tenant",
            unknown_tenant,
            daemon_id.clone(),
            daemon_secret.clone(),
            GRAPH_DEFAULT,
            90002,
            // The token endpoint's dialect (discovery would say invalid_tenant): no discovery request is made.
            "invalid_request",
            400,
        ),
        (
            "unknown app",
            emu.authority(),
            uuid::Uuid::new_v4().to_string(),
            daemon_secret.clone(),
            GRAPH_DEFAULT,
            700016,
            "unauthorized_client",
            400,
        ),
        (
            "expired secret",
            emu.authority(),
            expired_id,
            expired_secret,
            GRAPH_DEFAULT,
            7000222,
            "invalid_client",
            401,
        ),
        (
            "named scope",
            emu.authority(),
            daemon_id.clone(),
            daemon_secret.clone(),
            "https://graph.microsoft.com/User.Read",
            1002012,
            "invalid_scope",
            400,
        ),
        (
            "unknown resource",
            emu.authority(),
            daemon_id.clone(),
            daemon_secret.clone(),
            "https://unknown.example.com/.default",
            500011,
            "invalid_resource",
            400,
        ),
        (
            "common",
            format!("{host}/common"),
            daemon_id.clone(),
            daemon_secret.clone(),
            GRAPH_DEFAULT,
            50059,
            "invalid_request",
            400,
        ),
        (
            "organizations",
            format!("{host}/organizations"),
            daemon_id,
            daemon_secret,
            GRAPH_DEFAULT,
            50059,
            "invalid_request",
            400,
        ),
    ];
    for (case, authority, client_id, secret, scope, code, error, status) in cases {
        let app = client_on(&emu, &authority, &client_id, secret);
        let e = service_error(app.acquire_token_for_client(&[scope]).await.unwrap_err());
        assert_eq!(e.code(), Some(code), "{case}: {e}");
        assert_eq!(e.error, error, "{case}");
        assert_eq!(e.status, status, "{case}");
        assert!(
            e.correlation_id.is_some() && e.trace_id.is_some() && e.timestamp.is_some(),
            "{case}"
        );
        assert!(e.fix().is_some(), "{case} has a fix");
        assert_eq!(e.fix(), identity_core::aadsts_fix(code), "{case}");
    }
}

#[tokio::test]
async fn a_request_without_a_credential_is_7000216_and_parses_with_its_fix() {
    // Our client cannot be built without a credential, so send the request by hand and parse the real answer.
    let emu = emulator().await;
    let (id, _) = secret_of(&emu, "daemon");
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(emu.ca_pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let resp = http
        .post(format!("{}/oauth2/v2.0/token", emu.authority()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("scope", GRAPH_DEFAULT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let e: identity_core::ServiceError = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!((e.error.as_str(), e.code()), ("invalid_client", Some(7000216)));
    assert_eq!(
        e.fix(),
        Some("Configure the client secret or a certificate for this app.")
    );
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_connect_error_that_names_the_ca_setting() {
    let emu = emulator().await;
    let (id, secret) = secret_of(&emu, "daemon");
    let app = ConfidentialClient::builder(id, Authority::parse(&emu.authority()).unwrap())
        .client_secret(secret)
        .http_client(HttpClient::new(HttpConfig::default()).unwrap())
        .build()
        .unwrap();
    let err = app.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap_err();
    assert!(
        matches!(err, Error::Http(identity_core::HttpError::Connect { .. })),
        "{err:?}"
    );
    assert!(
        err.fix().unwrap().contains("IDENTITY_EXTRA_CA_CERTS"),
        "{:?}",
        err.fix()
    );
}

#[tokio::test]
async fn an_unreachable_authority_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut no_retries = HttpConfig::default();
    no_retries.max_retries = 0;
    let app = ConfidentialClient::builder(
        "id",
        Authority::parse(&format!("https://127.0.0.1:{port}/contoso.com")).unwrap(),
    )
    .client_secret(ClientSecret::new("s"))
    .http_client(HttpClient::new(no_retries).unwrap())
    .build()
    .unwrap();
    let err = app.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap_err();
    assert!(
        matches!(err, Error::Http(identity_core::HttpError::Connect { .. })),
        "{err:?}"
    );
    assert!(err.fix().is_some());
}

/// A memory cache that counts how many writes reach it.
#[derive(Debug, Default)]
struct CountingCache {
    inner: MemoryCache,
    writes: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl TokenCache for CountingCache {
    async fn get(&self, key: &CacheKey) -> Result<Option<CacheEntry>, identity_core::CacheError> {
        self.inner.get(key).await
    }
    async fn put(&self, key: &CacheKey, entry: &CacheEntry) -> Result<(), identity_core::CacheError> {
        self.writes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.put(key, entry).await
    }
    async fn put_all(&self, records: &[(CacheKey, CacheEntry)]) -> Result<(), identity_core::CacheError> {
        self.writes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        for (key, entry) in records {
            self.inner.put(key, entry).await?;
        }
        Ok(())
    }
    async fn remove(&self, key: &CacheKey) -> Result<(), identity_core::CacheError> {
        self.inner.remove(key).await
    }
    async fn entries(&self) -> Result<Vec<(CacheKey, CacheEntry)>, identity_core::CacheError> {
        self.inner.entries().await
    }
    async fn clear(&self) -> Result<(), identity_core::CacheError> {
        self.inner.clear().await
    }
}

#[tokio::test]
async fn a_cold_acquisition_writes_the_metadata_and_the_token_in_one_cache_write() {
    let emu = emulator().await;
    let (id, secret) = secret_of(&emu, "daemon");
    let cache = Arc::new(CountingCache::default());
    // Endpoints from discovery, so there is a document to store with the token.
    let authority = Authority::parse(&emu.authority())
        .unwrap()
        .discover_endpoints(true);
    let app = ConfidentialClient::builder(id, authority)
        .client_secret(secret)
        .http_client(http(&emu))
        .cache(cache.clone())
        .build()
        .unwrap();
    app.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap();
    assert_eq!(cache.writes.load(std::sync::atomic::Ordering::SeqCst), 1);
    let kinds: Vec<_> = cache
        .entries()
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| matches!(k, CacheKey::Metadata { .. }))
        .collect();
    assert_eq!(kinds.len(), 2, "the discovery document and the token");
    assert!(kinds.contains(&true) && kinds.contains(&false));
}

#[tokio::test]
async fn a_redirect_is_refused_and_its_location_shown_without_what_could_carry_a_code_or_token() {
    let emulator = emulator().await;
    emulator.inject_fault(Fault::new(
        Endpoint::Token,
        entra_emulator::FaultKind::Redirect {
            status: 302,
            location: "https://user:pw@login.evil.example/cb?code=SECRETCODE#access_token=SECRETTOKEN".into(),
        },
    ));
    let err = daemon(&emulator)
        .acquire_token_for_client(&["https://graph.microsoft.com/.default"])
        .await
        .unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("https://login.evil.example/cb"), "{shown}");
    for secret in ["SECRETCODE", "SECRETTOKEN", "pw@"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert_eq!(
        emulator.request_counts().get(Endpoint::Token),
        1,
        "a redirect is not retried"
    );
}
