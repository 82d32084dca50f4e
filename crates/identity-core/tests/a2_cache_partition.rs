//! App-only tokens are cached per credential: a client configured with another secret is never served a
//! token obtained with the right one (it asks the service, which refuses it).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

mod common;

use std::sync::Arc;

use common::loopback_http;
use entra_emulator::certificates::DevCertificate;
use entra_emulator::{Emulator, Endpoint};
use identity_core::CertificateCredential;
use identity_core::{
    Authority, CacheKey, ClientCredential, ClientSecret, ConfidentialClient, Error, MemoryCache, TokenCache,
    TokenSource,
};

const GRAPH_DEFAULT: &str = "https://graph.microsoft.com/.default";

#[tokio::test]
async fn a_token_obtained_with_one_secret_is_not_served_to_a_client_with_another() {
    let emu = Emulator::builder().start().await.unwrap();
    let registration = emu.app("daemon").unwrap();
    let right = registration.secrets[0].value.clone();
    let cache = Arc::new(MemoryCache::new());
    let client = |secret: &str| {
        ConfidentialClient::builder(
            registration.app_id.clone(),
            Authority::parse(&emu.authority()).unwrap(),
        )
        .client_secret(ClientSecret::new(secret))
        .http_client(loopback_http(Some(emu.ca_pem())))
        .cache(cache.clone())
        .build()
        .unwrap()
    };

    let first = client(&right)
        .acquire_token_for_client(&[GRAPH_DEFAULT])
        .await
        .unwrap();
    assert_eq!(first.source, TokenSource::IdentityProvider);

    let err = client("a-wrong-secret")
        .acquire_token_for_client(&[GRAPH_DEFAULT])
        .await
        .unwrap_err();
    let Error::Service(e) = err else {
        panic!("expected the service's refusal, got {err:?}")
    };
    assert_eq!(e.error, "invalid_client");
    assert_eq!(
        emu.request_counts().get(Endpoint::Token),
        2,
        "the wrong secret was checked by the service"
    );

    let again = client(&right)
        .acquire_token_for_client(&[GRAPH_DEFAULT])
        .await
        .unwrap();
    assert_eq!(
        again.source,
        TokenSource::Cache,
        "the right secret still finds its token"
    );

    for (key, _) in cache.entries().await.unwrap() {
        let text = format!("{} {:?}", key.storage_key(), key);
        assert!(
            !text.contains(&right),
            "the secret is not in the cache key: {text}"
        );
        if let CacheKey::AccessToken(k) = &key {
            let expected = ClientCredential::from(ClientSecret::new(right.clone())).fingerprint();
            assert_eq!(k.credential.as_deref(), Some(expected.as_str()));
        }
    }
}

#[tokio::test]
async fn a_token_obtained_with_one_certificate_is_not_served_to_a_client_with_another() {
    let emu = Emulator::builder().start().await.unwrap();
    let registration = emu.app("daemon-certificate").unwrap();
    let files = emu.certificate_files("daemon-certificate").unwrap();
    let registered = ClientCredential::from(CertificateCredential::from_file(&files.pem_path, None).unwrap());
    // A certificate the app registration does not know, in a file of its own.
    let other = DevCertificate::generate("not uploaded", std::time::Duration::from_secs(86_400)).unwrap();
    let other_path = std::env::temp_dir().join(format!("a2-other-cert-{}.pem", std::process::id()));
    std::fs::write(&other_path, other.key_pem() + &other.cert_pem()).unwrap();
    let unregistered = ClientCredential::from(CertificateCredential::from_file(&other_path, None).unwrap());
    std::fs::remove_file(&other_path).unwrap();
    assert_ne!(registered.fingerprint(), unregistered.fingerprint());

    let cache = Arc::new(MemoryCache::new());
    let client = |credential: ClientCredential| {
        ConfidentialClient::builder(
            registration.app_id.clone(),
            Authority::parse(&emu.authority()).unwrap(),
        )
        .credential(credential)
        .http_client(loopback_http(Some(emu.ca_pem())))
        .cache(cache.clone())
        .build()
        .unwrap()
    };
    let first = client(registered)
        .acquire_token_for_client(&[GRAPH_DEFAULT])
        .await
        .unwrap();
    assert_eq!(first.source, TokenSource::IdentityProvider);
    let err = client(unregistered)
        .acquire_token_for_client(&[GRAPH_DEFAULT])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Service(_)),
        "refused by the service, not served from the cache: {err:?}"
    );
    assert_eq!(emu.request_counts().get(Endpoint::Token), 2);
}
