//! A discovery document that names token or device-code endpoints on another origin is refused: no secret,
//! device code or password goes there, and nothing is cached; a poisoned cached document is dropped. The
//! endpoints of Entra's layout need no document, so each test takes the discovery path: after a derived
//! endpoint answers 404, or with discovery asked for (`Authority::discover_endpoints`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

mod common;

use std::sync::Arc;

use common::{Reply, Stub, counting_listener, discovery_document, loopback_http, serve};
use entra_emulator::{Emulator, Endpoint};
use identity_core::CachedMetadata;
use identity_core::{
    Authority, CacheEntry, CacheKey, ClientSecret, ConfidentialClient, Error, HttpError, MemoryCache,
    Password, PublicClient, TokenCache, TokenSource,
};

const TENANT: &str = "contoso.onmicrosoft.com";

/// A stub authority whose discovery document sends token and device-code requests to `endpoints_base`; its
/// user realm endpoint says "Managed", and the endpoints of Entra's layout answer 404 (so the client reads the
/// document).
async fn spoofing_authority(endpoints_base: String) -> Stub {
    serve(move |request, _| {
        if request.target.contains("/userrealm/") {
            Reply::json(200, serde_json::json!({"ver": "1.0", "account_type": "Managed"}))
        } else if request.target.contains("/oauth2/") {
            Reply::json(404, serde_json::json!({"error": "not_found"}))
        } else {
            let base = format!("http://{}", request.header("host").unwrap());
            Reply::json(200, discovery_document(&base, TENANT, &endpoints_base))
        }
    })
    .await
}

fn refused_for_origin(err: &Error) {
    match err {
        Error::Http(HttpError::InvalidResponse { reason, .. }) => {
            assert!(reason.contains("not on the authority's origin"), "{reason}");
        }
        other => panic!("expected the document to be refused, got {other:?}"),
    }
}

#[tokio::test]
async fn a_token_endpoint_on_another_port_gets_no_secret_device_code_or_password_and_nothing_is_cached() {
    let elsewhere = counting_listener().await;
    let authority_stub = spoofing_authority(format!("http://{}", elsewhere.addr)).await;
    let authority = Authority::parse(&format!("{}/{TENANT}", authority_stub.base())).unwrap();
    let cache = Arc::new(MemoryCache::new());

    let daemon = ConfidentialClient::builder("11111111-1111-1111-1111-111111111111", authority.clone())
        .client_secret(ClientSecret::new("the-secret"))
        .http_client(loopback_http(None))
        .cache(cache.clone())
        .build()
        .unwrap();
    refused_for_origin(
        &daemon
            .acquire_token_for_client(&["api://x/.default"])
            .await
            .unwrap_err(),
    );

    let public = PublicClient::builder("22222222-2222-2222-2222-222222222222", authority)
        .http_client(loopback_http(None))
        .cache(cache.clone())
        .build()
        .unwrap();
    refused_for_origin(&public.initiate_device_flow(&["User.Read"]).await.unwrap_err());
    refused_for_origin(
        &public
            .acquire_token_by_username_password(
                "adele@contoso.onmicrosoft.com",
                &Password::new("pw"),
                &["User.Read"],
            )
            .await
            .unwrap_err(),
    );

    assert_eq!(elsewhere.count(), 0, "nothing was sent to the other origin");
    let requests = authority_stub.requests();
    assert!(
        requests.iter().all(|r| r.method == "GET"
            || r.target == format!("/{TENANT}/oauth2/v2.0/token")
            || r.target == format!("/{TENANT}/oauth2/v2.0/devicecode")),
        "only discovery and user realm GETs, and the derived endpoints (404), reached the authority: {requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.target.ends_with("/v2.0/.well-known/openid-configuration")),
        "the 404 sent the client to discovery"
    );
    assert!(
        cache.entries().await.unwrap().is_empty(),
        "the refused document is not cached"
    );
}

#[tokio::test]
async fn a_poisoned_cached_document_is_dropped_and_discovery_runs_again() {
    let emu = Emulator::builder().start().await.unwrap();
    let elsewhere = counting_listener().await;
    // Endpoints from discovery, so the cached document is read.
    let authority = Authority::parse(&emu.authority())
        .unwrap()
        .discover_endpoints(true);
    let cache = Arc::new(MemoryCache::new());
    let key = CacheKey::Metadata {
        url: authority.discovery_url(),
    };
    let poisoned: CachedMetadata = serde_json::from_value(serde_json::json!({
        "document": discovery_document(&emu.https_url(), authority.tenant(), &format!("http://{}", elsewhere.addr)),
        "expires_on": identity_core::now_secs() + 24 * 3600,
    }))
    .unwrap();
    cache.put(&key, &CacheEntry::Metadata(poisoned)).await.unwrap();

    let registration = emu.app("daemon").unwrap();
    let daemon = ConfidentialClient::builder(registration.app_id.clone(), authority.clone())
        .client_secret(ClientSecret::new(registration.secrets[0].value.clone()))
        .http_client(loopback_http(Some(emu.ca_pem())))
        .cache(cache.clone())
        .build()
        .unwrap();
    let token = daemon
        .acquire_token_for_client(&["https://graph.microsoft.com/.default"])
        .await
        .unwrap();
    assert_eq!(token.source, TokenSource::IdentityProvider);
    assert_eq!(elsewhere.count(), 0, "the poisoned token endpoint got nothing");
    let counts = emu.request_counts();
    assert_eq!(
        (
            counts.get(Endpoint::OpenIdConfiguration),
            counts.get(Endpoint::Token)
        ),
        (1, 1)
    );
    let Some(CacheEntry::Metadata(stored)) = cache.get(&key).await.unwrap() else {
        panic!("the fresh document is cached");
    };
    let token_endpoint = stored.document["token_endpoint"].as_str().unwrap();
    assert!(token_endpoint.starts_with(&emu.https_url()), "{token_endpoint}");
}
