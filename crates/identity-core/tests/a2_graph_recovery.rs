//! A 401 from the resource: a cached token is dropped and replaced once; a claims challenge (continuous access
//! evaluation) is sent back with the new token request; a 401 on a fresh token is returned with a fix that
//! names the likely causes. Graph is a local stand-in (answers 401 once, then 200); tokens come from the
//! emulator, which counts the token requests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

mod common;

use std::sync::Arc;

use base64::Engine;
use common::{Reply, Stub, discovery_document, loopback_http, serve};
use entra_emulator::{DEMO_PASSWORD, DEMO_USERNAME, Emulator, Endpoint, Fault};
use identity_core::{
    Authority, ClientSecret, ConfidentialClient, Error, GraphClient, MemoryCache, Password, PublicClient,
    TokenSource,
};

const GRAPH_DEFAULT: &str = "https://graph.microsoft.com/.default";
const CLAIMS: &str = r#"{"access_token":{"nbf":{"essential":true,"value":"1604106651"}}}"#;

fn unauthorized() -> Reply {
    Reply::json(
        401,
        serde_json::json!({"error": {"code": "InvalidAuthenticationToken", "message": "Access token validation failure."}}),
    )
}

fn challenge_header() -> String {
    let claims = base64::engine::general_purpose::STANDARD.encode(CLAIMS);
    format!(
        r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="{claims}""#
    )
}

/// A Graph stand-in: the first request gets `first`, the others 200.
async fn graph_stand_in(first: fn() -> Reply) -> Stub {
    serve(move |_, index| {
        if index == 0 {
            first()
        } else {
            Reply::json(200, serde_json::json!({"value": []}))
        }
    })
    .await
}

fn bearer_tokens(stub: &Stub) -> Vec<String> {
    stub.requests()
        .iter()
        .map(|r| r.header("authorization").unwrap().to_string())
        .collect()
}

async fn daemon(emu: &Emulator) -> ConfidentialClient {
    let registration = emu.app("daemon").unwrap();
    ConfidentialClient::builder(
        registration.app_id.clone(),
        Authority::parse(&emu.authority()).unwrap(),
    )
    .client_secret(ClientSecret::new(registration.secrets[0].value.clone()))
    .http_client(loopback_http(Some(emu.ca_pem())))
    .cache(Arc::new(MemoryCache::new()))
    .build()
    .unwrap()
}

#[tokio::test]
async fn a_401_on_a_cached_app_token_replaces_it_once_and_retries() {
    let emu = Emulator::builder().start().await.unwrap();
    let app = daemon(&emu).await;
    app.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap();
    let cached = app.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap();
    assert_eq!(cached.source, TokenSource::Cache);
    let graph_stub = graph_stand_in(unauthorized).await;
    let graph = GraphClient::new(app.http_client().clone());

    let users = graph
        .get_with_token_recovery(&format!("{}/v1.0/users", graph_stub.base()), &cached, |options| {
            assert!(options.force_refresh && options.claims.is_none());
            app.acquire_token_for_client_with(&[GRAPH_DEFAULT], options)
        })
        .await
        .unwrap();
    assert_eq!(users["value"], serde_json::json!([]));
    assert_eq!(emu.request_counts().get(Endpoint::Token), 2, "one new token");
    let sent = bearer_tokens(&graph_stub);
    assert_eq!(sent.len(), 2, "one retry");
    assert_eq!(sent[0], format!("Bearer {}", cached.access_token.secret()));
    assert_ne!(sent[0], sent[1], "the retry carries the new token");

    // The rejected token is gone from the cache: the next run gets the new one.
    let next = app.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap();
    assert_eq!(next.source, TokenSource::Cache);
    assert_eq!(format!("Bearer {}", next.access_token.secret()), sent[1]);
}

#[tokio::test]
async fn a_401_on_a_fresh_token_is_returned_with_the_likely_causes_and_no_new_request() {
    let emu = Emulator::builder().start().await.unwrap();
    let app = daemon(&emu).await;
    let fresh = app.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap();
    assert_eq!(fresh.source, TokenSource::IdentityProvider);
    let graph_stub = graph_stand_in(unauthorized).await;
    let graph = GraphClient::new(app.http_client().clone());

    let err = graph
        .get_with_token_recovery(&format!("{}/v1.0/users", graph_stub.base()), &fresh, |options| {
            app.acquire_token_for_client_with(&[GRAPH_DEFAULT], options)
        })
        .await
        .unwrap_err();
    let Error::Graph(e) = &err else { panic!("{err:?}") };
    assert_eq!(e.status, 401);
    let fix = err.fix().unwrap();
    assert!(
        fix.contains("audience") && fix.contains("policy") && !fix.contains("SCOPE"),
        "{fix}"
    );
    assert_eq!(emu.request_counts().get(Endpoint::Token), 1);
    assert_eq!(graph_stub.requests().len(), 1);
}

#[tokio::test]
async fn a_claims_challenge_is_sent_with_a_new_token_request_that_bypasses_the_cache() {
    // A stand-in authority and Graph in one: discovery, token endpoint (records the form), Graph.
    let stub = serve(|request, _| {
        let base = format!("http://{}", request.header("host").unwrap());
        if request.target.contains("openid-configuration") {
            Reply::json(200, discovery_document(&base, "contoso.com", &base))
        } else if request.target.contains("/oauth2/v2.0/token") {
            let n = request.form("claims").map_or("plain", |_| "with-claims");
            Reply::json(200, serde_json::json!({"access_token": format!("token-{n}"), "token_type": "Bearer", "expires_in": 3600}))
        } else if request.header("authorization") == Some("Bearer token-plain") {
            unauthorized().with_header("www-authenticate", &challenge_header())
        } else {
            Reply::json(200, serde_json::json!({"id": "me"}))
        }
    })
    .await;
    let app = ConfidentialClient::builder(
        "11111111-1111-1111-1111-111111111111",
        Authority::parse(&format!("{}/contoso.com", stub.base())).unwrap(),
    )
    .client_secret(ClientSecret::new("s"))
    .http_client(loopback_http(None))
    .build()
    .unwrap();
    let token = app.acquire_token_for_client(&["api://x/.default"]).await.unwrap();
    let graph = GraphClient::new(app.http_client().clone());

    let answer = graph
        .get_with_token_recovery(&format!("{}/v1.0/me", stub.base()), &token, |options| {
            app.acquire_token_for_client_with(&["api://x/.default"], options)
        })
        .await
        .unwrap();
    assert_eq!(answer["id"], "me");
    let token_requests = stub.requests_to("/contoso.com/oauth2/v2.0/token");
    assert_eq!(
        token_requests.len(),
        2,
        "the cached token was not reused for the challenge"
    );
    assert_eq!(token_requests[0].form("claims"), None);
    assert_eq!(token_requests[1].form("claims").as_deref(), Some(CLAIMS));
    let after = app.acquire_token_for_client(&["api://x/.default"]).await.unwrap();
    assert_eq!(after.access_token.secret(), "token-with-claims");
}

#[tokio::test]
async fn the_error_carries_the_decoded_claims_challenge() {
    let graph_stub =
        graph_stand_in(|| unauthorized().with_header("www-authenticate", &challenge_header())).await;
    let graph = GraphClient::new(loopback_http(None));
    let err = graph
        .get(
            &format!("{}/v1.0/me", graph_stub.base()),
            &identity_core::SecretToken::new("t"),
        )
        .await
        .unwrap_err();
    let Error::Graph(e) = err else { panic!("{err:?}") };
    assert_eq!(e.claims_challenge.as_deref(), Some(CLAIMS));
    assert!(e.fix().unwrap().contains("policy"));
}

#[tokio::test]
async fn a_401_on_a_cached_user_token_is_cured_with_the_refresh_token() {
    let emu = Emulator::builder().start().await.unwrap();
    let registration = emu.app("username-password").unwrap();
    let app = PublicClient::builder(registration.app_id, Authority::parse(&emu.authority()).unwrap())
        .http_client(loopback_http(Some(emu.ca_pem())))
        .cache(Arc::new(MemoryCache::new()))
        .build()
        .unwrap();
    app.acquire_token_by_username_password(DEMO_USERNAME, &Password::new(DEMO_PASSWORD), &["User.Read"])
        .await
        .unwrap();
    let account = app.account(DEMO_USERNAME).await.unwrap().unwrap();
    let cached = app
        .acquire_token_silent(&account, &["User.Read"])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cached.source, TokenSource::Cache);
    let graph_stub = graph_stand_in(unauthorized).await;
    let graph = GraphClient::new(app.http_client().clone());

    graph
        .get_with_token_recovery(&format!("{}/v1.0/me", graph_stub.base()), &cached, |options| {
            app.acquire_token_silent_with(&account, &["User.Read"], options)
        })
        .await
        .unwrap();
    assert_eq!(
        emu.request_counts().get(Endpoint::Token),
        2,
        "the password grant, then one refresh"
    );
    let sent = bearer_tokens(&graph_stub);
    assert_eq!(sent.len(), 2);
    assert_ne!(sent[0], sent[1]);
}

#[tokio::test]
async fn a_refused_cached_token_is_dropped_even_when_no_new_token_can_be_had() {
    let emu = Emulator::builder().start().await.unwrap();
    let app = daemon(&emu).await;
    app.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap();
    let cached = app.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap();
    assert_eq!(cached.source, TokenSource::Cache);
    let graph_stub = graph_stand_in(unauthorized).await;
    let graph = GraphClient::new(app.http_client().clone());
    // The identity platform is down when the new token is asked for.
    emu.inject_fault(Fault::status(Endpoint::Token, 503, None).times(1));

    let err = graph
        .get_with_token_recovery(&format!("{}/v1.0/users", graph_stub.base()), &cached, |options| {
            app.acquire_token_for_client_with(&[GRAPH_DEFAULT], options)
        })
        .await
        .unwrap_err();
    assert!(
        !matches!(err, Error::Graph(_)),
        "the token request's failure is reported: {err:?}"
    );
    let next = app.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap();
    assert_eq!(
        next.source,
        TokenSource::IdentityProvider,
        "the refused token was not served again"
    );
    assert_ne!(next.access_token, cached.access_token);
}
