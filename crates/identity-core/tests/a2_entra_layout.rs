//! Round trips of a cold run, counted at the emulator over real HTTPS: an authority with Entra's layout
//! needs no discovery request (daemon: token and Graph; device code: code, token and Graph; username/password:
//! user realm, token and Graph). A host whose derived endpoint answers 404 is asked for its discovery
//! document, once; an authority without Entra's layout is always.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

mod common;

use std::time::Duration;

use common::{Reply, loopback_http, serve};
use entra_emulator::{DEMO_PASSWORD, DEMO_USERNAME, Emulator, Endpoint};
use identity_core::{
    Authority, ClientSecret, ConfidentialClient, GraphClient, HttpClient, HttpConfig, Password, PublicClient,
    TokenSource,
};

const GRAPH_DEFAULT: &str = "https://graph.microsoft.com/.default";
const TENANT: &str = "contoso.onmicrosoft.com";

fn http(emu: &Emulator) -> HttpClient {
    HttpClient::new(HttpConfig::default().with_extra_ca_pem(emu.ca_pem())).unwrap()
}

/// The requests counted at the emulator, by endpoint, leaving out those that were not made.
fn counts(emu: &Emulator) -> Vec<(Endpoint, u64)> {
    let counts = emu.request_counts();
    Endpoint::ALL
        .into_iter()
        .map(|e| (e, counts.get(e)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[tokio::test]
async fn a_cold_daemon_run_makes_two_requests_token_and_graph() {
    let emu = Emulator::builder().start().await.unwrap();
    let app = emu.app("daemon").unwrap();
    let client = ConfidentialClient::builder(app.app_id.clone(), Authority::parse(&emu.authority()).unwrap())
        .client_secret(ClientSecret::new(app.secrets[0].value.clone()))
        .http_client(http(&emu))
        .build()
        .unwrap();
    let token = client.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap();
    assert_eq!(token.source, TokenSource::IdentityProvider);
    GraphClient::new(client.http_client().clone())
        .get(&format!("{}/users", emu.graph_base()), &token.access_token)
        .await
        .unwrap();
    assert_eq!(counts(&emu), [(Endpoint::Token, 1), (Endpoint::Graph, 1)]);
}

#[tokio::test]
async fn a_cold_device_code_run_makes_three_requests() {
    let emu = Emulator::builder()
        .device_code_interval(1)
        .auto_approve_device_codes(DEMO_USERNAME, Duration::ZERO)
        .start()
        .await
        .unwrap();
    let app = emu.app("device-code").unwrap();
    let client = PublicClient::builder(app.app_id.clone(), Authority::parse(&emu.authority()).unwrap())
        .http_client(http(&emu))
        .build()
        .unwrap();
    let flow = client.initiate_device_flow(&["User.Read"]).await.unwrap();
    let token = client.acquire_token_by_device_flow(&flow).await.unwrap();
    GraphClient::new(client.http_client().clone())
        .get(&format!("{}/me", emu.graph_base()), &token.access_token)
        .await
        .unwrap();
    assert_eq!(
        counts(&emu),
        [
            (Endpoint::DeviceCode, 1),
            (Endpoint::Token, 1),
            (Endpoint::Graph, 1)
        ]
    );
}

#[tokio::test]
async fn a_cold_username_password_run_makes_three_requests_user_realm_token_and_graph() {
    let emu = Emulator::builder().start().await.unwrap();
    let app = emu.app("username-password").unwrap();
    let client = PublicClient::builder(app.app_id.clone(), Authority::parse(&emu.authority()).unwrap())
        .http_client(http(&emu))
        .build()
        .unwrap();
    let token = client
        .acquire_token_by_username_password(DEMO_USERNAME, &Password::new(DEMO_PASSWORD), &["User.Read"])
        .await
        .unwrap();
    GraphClient::new(client.http_client().clone())
        .get(&format!("{}/me", emu.graph_base()), &token.access_token)
        .await
        .unwrap();
    // The user realm request stays: it is how a federated account is told apart before its password is sent.
    assert_eq!(
        counts(&emu),
        [
            (Endpoint::UserRealm, 1),
            (Endpoint::Token, 1),
            (Endpoint::Graph, 1)
        ]
    );
}

#[tokio::test]
async fn an_authority_asked_to_discover_its_endpoints_reads_the_document_once() {
    let emu = Emulator::builder().start().await.unwrap();
    let app = emu.app("daemon").unwrap();
    let authority = Authority::parse(&emu.authority())
        .unwrap()
        .discover_endpoints(true);
    assert!(!authority.has_entra_layout());
    let client = ConfidentialClient::builder(app.app_id.clone(), authority)
        .client_secret(ClientSecret::new(app.secrets[0].value.clone()))
        .http_client(http(&emu))
        .build()
        .unwrap();
    client.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap();
    let metadata = client.metadata().await.unwrap();
    assert!(
        !metadata.issuer.is_empty(),
        "the document's issuer, not a derived one"
    );
    assert_eq!(
        counts(&emu),
        [(Endpoint::OpenIdConfiguration, 1), (Endpoint::Token, 1)]
    );
}

/// A token answer as Entra sends it.
fn token_answer() -> Reply {
    Reply::json(
        200,
        serde_json::json!({
            "token_type": "Bearer",
            "expires_in": 3599,
            "ext_expires_in": 3599,
            "access_token": "eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJ4In0.c2ln",
        }),
    )
}

/// A stand-in host with another layout: its token and device-code endpoints are under `/custom/`, as its
/// discovery document says; anything else (Entra's paths among them) is a 404.
async fn host_with_another_layout() -> common::Stub {
    serve(|request, _| {
        let base = format!("http://{}", request.header("host").unwrap());
        match (request.method.as_str(), request.target.as_str()) {
            ("GET", target) if target.ends_with("/v2.0/.well-known/openid-configuration") => Reply::json(
                200,
                serde_json::json!({
                    "token_endpoint": format!("{base}/custom/token"),
                    "device_authorization_endpoint": format!("{base}/custom/devicecode"),
                    "issuer": format!("{base}/{TENANT}/v2.0"),
                }),
            ),
            ("POST", "/custom/token") => token_answer(),
            ("POST", "/custom/devicecode") => Reply::json(
                200,
                serde_json::json!({
                    "user_code": "ABCD-EFGH",
                    "device_code": "device-code-value",
                    "verification_uri": "https://microsoft.com/devicelogin",
                    "expires_in": 900,
                    "interval": 5,
                }),
            ),
            _ => Reply::json(404, serde_json::json!({"error": "not_found"})),
        }
    })
    .await
}

fn route(request: &common::Request) -> String {
    format!("{} {}", request.method, request.target)
}

#[tokio::test]
async fn a_derived_endpoint_that_answers_404_sends_the_client_to_discovery_once() {
    let host = host_with_another_layout().await;
    let authority = Authority::parse(&format!("{}/{TENANT}", host.base())).unwrap();
    assert!(
        authority.has_entra_layout(),
        "loopback, so the layout is assumed first"
    );
    let daemon = ConfidentialClient::builder("11111111-1111-1111-1111-111111111111", authority.clone())
        .client_secret(ClientSecret::new("the-secret"))
        .http_client(loopback_http(None))
        .build()
        .unwrap();
    let token = daemon
        .acquire_token_for_client(&["api://x/.default"])
        .await
        .unwrap();
    assert_eq!(token.source, TokenSource::IdentityProvider);
    // A second request goes straight to the discovered endpoint.
    let options = identity_core::AcquireOptions::new().with_force_refresh(true);
    daemon
        .acquire_token_for_client_with(&["api://x/.default"], options)
        .await
        .unwrap();
    let routes: Vec<String> = host.requests().iter().map(route).collect();
    assert_eq!(
        routes,
        [
            format!("POST /{TENANT}/oauth2/v2.0/token"),
            format!("GET /{TENANT}/v2.0/.well-known/openid-configuration"),
            "POST /custom/token".to_string(),
            "POST /custom/token".to_string(),
        ]
    );

    let public = PublicClient::builder("22222222-2222-2222-2222-222222222222", authority)
        .http_client(loopback_http(None))
        .build()
        .unwrap();
    let flow = public.initiate_device_flow(&["User.Read"]).await.unwrap();
    assert_eq!(flow.user_code, "ABCD-EFGH");
    let routes: Vec<String> = host.requests().iter().skip(4).map(route).collect();
    assert_eq!(
        routes,
        [
            format!("POST /{TENANT}/oauth2/v2.0/devicecode"),
            format!("GET /{TENANT}/v2.0/.well-known/openid-configuration"),
            "POST /custom/devicecode".to_string(),
        ]
    );
}

#[tokio::test]
async fn an_authority_without_entra_layout_uses_discovery_first() {
    // AD FS (`https://host/adfs`) has another layout: its endpoints come from its document.
    let host = host_with_another_layout().await;
    let authority = Authority::parse(&format!("{}/adfs", host.base())).unwrap();
    assert!(!authority.has_entra_layout());
    let daemon = ConfidentialClient::builder("11111111-1111-1111-1111-111111111111", authority)
        .client_secret(ClientSecret::new("the-secret"))
        .http_client(loopback_http(None))
        .build()
        .unwrap();
    daemon
        .acquire_token_for_client(&["api://x/.default"])
        .await
        .unwrap();
    let routes: Vec<String> = host.requests().iter().map(route).collect();
    assert_eq!(
        routes,
        [
            "GET /adfs/v2.0/.well-known/openid-configuration".to_string(),
            "POST /custom/token".to_string(),
        ]
    );
}

#[tokio::test]
async fn a_404_from_the_discovered_endpoint_too_is_the_error() {
    // Discovery names the same endpoint that answered 404: no second attempt.
    let host = serve(|request, _| {
        let base = format!("http://{}", request.header("host").unwrap());
        if request.target.ends_with("openid-configuration") {
            Reply::json(200, common::discovery_document(&base, TENANT, &base))
        } else {
            Reply::json(404, serde_json::json!({"error": "not_found"}))
        }
    })
    .await;
    let authority = Authority::parse(&format!("{}/{TENANT}", host.base())).unwrap();
    let daemon = ConfidentialClient::builder("11111111-1111-1111-1111-111111111111", authority)
        .client_secret(ClientSecret::new("the-secret"))
        .http_client(loopback_http(None))
        .build()
        .unwrap();
    let err = daemon
        .acquire_token_for_client(&["api://x/.default"])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    assert_eq!(host.requests_to(&format!("/{TENANT}/oauth2/v2.0/token")).len(), 1);
}
