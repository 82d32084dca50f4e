//! Authority validation: a host that is neither a known Microsoft cloud nor loopback is checked with instance
//! discovery before any credential is sent; an unknown one is refused, a known answer is cached in the store,
//! and validation can be turned off explicitly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

mod common;

use std::sync::Arc;

use common::{Reply, loopback_http, serve};
use entra_emulator::{Emulator, Endpoint};
use identity_core::{
    AUTHORITY_VALIDATION_VAR, Authority, CacheKey, ClientSecret, ConfidentialClient, ConfigError, Error,
    MemoryCache, Password, PublicClient, TokenCache,
};

/// `.test` names never resolve (RFC 2606): nothing can be sent to this host.
const PRIVATE_HOST: &str = "https://login.contoso.test";
const SCOPE: &str = "https://graph.microsoft.com/.default";

fn daemon(
    authority: Authority,
    http: identity_core::HttpClient,
    cache: Arc<MemoryCache>,
) -> ConfidentialClient {
    ConfidentialClient::builder("11111111-1111-1111-1111-111111111111", authority)
        .client_secret(ClientSecret::new("the-secret"))
        .http_client(http)
        .cache(cache)
        .build()
        .unwrap()
}

#[tokio::test]
async fn an_unknown_host_is_refused_before_any_credential_is_sent_and_the_refusal_is_not_cached() {
    let emu = Emulator::builder().start().await.unwrap();
    let authority = Authority::parse(&format!("{PRIVATE_HOST}/contoso.com"))
        .unwrap()
        .with_instance_discovery_endpoint(&format!("{}/common/discovery/instance", emu.https_url()))
        .unwrap();
    let cache = Arc::new(MemoryCache::new());
    let app = daemon(authority, loopback_http(Some(emu.ca_pem())), cache.clone());

    for attempt in 1..=2 {
        let err = app.acquire_token_for_client(&[SCOPE]).await.unwrap_err();
        match &err {
            Error::Config(ConfigError::UnknownAuthorityHost { host }) => {
                assert_eq!(host, "login.contoso.test")
            }
            other => panic!("expected the host to be refused, got {other:?}"),
        }
        let fix = err.fix().unwrap();
        assert!(
            fix.contains(AUTHORITY_VALIDATION_VAR) && fix.contains("=off"),
            "{fix}"
        );
        assert_eq!(emu.request_counts().get(Endpoint::InstanceDiscovery), attempt);
    }
    assert!(cache.entries().await.unwrap().is_empty());

    // The username/password flow: neither the username (user realm) nor the password goes to the host.
    let public = PublicClient::builder("22222222-2222-2222-2222-222222222222", app.authority().clone())
        .http_client(loopback_http(Some(emu.ca_pem())))
        .build()
        .unwrap();
    let err = public
        .acquire_token_by_username_password("adele@contoso.com", &Password::new("pw"), &["User.Read"])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Config(ConfigError::UnknownAuthorityHost { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_known_instance_answer_is_cached_in_the_store_and_reused_by_the_next_client() {
    let discovery = serve(|_, _| {
        Reply::json(
            200,
            serde_json::json!({
                "tenant_discovery_endpoint": "https://login.contoso.test/contoso.com/v2.0/.well-known/openid-configuration",
                "api-version": "1.1",
                "metadata": [],
            }),
        )
    })
    .await;
    let authority = Authority::parse(&format!("{PRIVATE_HOST}/contoso.com"))
        .unwrap()
        .with_instance_discovery_endpoint(&format!("{}/common/discovery/instance", discovery.base()))
        .unwrap();
    let cache = Arc::new(MemoryCache::new());

    for _ in 0..2 {
        // A new client each time (as a new run): the answer comes from the store the second time.
        let app = daemon(authority.clone(), loopback_http(None), cache.clone());
        let err = app.acquire_token_for_client(&[SCOPE]).await.unwrap_err();
        assert!(
            matches!(err, Error::Http(_)),
            "validated: discovery was attempted at the (unresolvable) host: {err:?}"
        );
    }
    assert_eq!(discovery.requests().len(), 1, "the answer was cached");
    let request = &discovery.requests()[0];
    assert!(
        request.target
            == "/common/discovery/instance?api-version=1.1&authorization_endpoint=https%3A%2F%2Flogin.contoso.test%2Fcontoso.com%2Foauth2%2Fv2.0%2Fauthorize",
        "{}",
        request.target
    );
    let cached: Vec<CacheKey> = cache
        .entries()
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(
        cached
            .iter()
            .any(|k| matches!(k, CacheKey::Metadata { url } if url.contains("/common/discovery/instance"))),
        "{cached:?}"
    );
}

#[tokio::test]
async fn validation_turned_off_sends_no_instance_discovery() {
    let emu = Emulator::builder().start().await.unwrap();
    let authority = Authority::parse(&format!("{PRIVATE_HOST}/contoso.com"))
        .unwrap()
        .with_instance_discovery_endpoint(&format!("{}/common/discovery/instance", emu.https_url()))
        .unwrap()
        .validated(false);
    let app = daemon(
        authority,
        loopback_http(Some(emu.ca_pem())),
        Arc::new(MemoryCache::new()),
    );
    let err = app.acquire_token_for_client(&[SCOPE]).await.unwrap_err();
    assert!(matches!(err, Error::Http(_)), "{err:?}");
    assert_eq!(emu.request_counts().get(Endpoint::InstanceDiscovery), 0);
}

#[tokio::test]
async fn loopback_authorities_are_never_validated() {
    let emu = Emulator::builder().start().await.unwrap();
    let registration = emu.app("daemon").unwrap();
    let app = ConfidentialClient::builder(
        registration.app_id.clone(),
        Authority::parse(&emu.authority()).unwrap(),
    )
    .client_secret(ClientSecret::new(registration.secrets[0].value.clone()))
    .http_client(loopback_http(Some(emu.ca_pem())))
    .build()
    .unwrap();
    app.acquire_token_for_client(&[SCOPE]).await.unwrap();
    assert_eq!(emu.request_counts().get(Endpoint::InstanceDiscovery), 0);
}
