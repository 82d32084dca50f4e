//! User realm discovery before the password grant: a 404 falls back to the grant whatever its body (as MSAL
//! does), and the username goes in the path with its `@` as is, escaping only what would break the URL.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

mod common;

use std::sync::Arc;

use base64::Engine;
use common::{Reply, discovery_document, loopback_http, serve};
use entra_emulator::{DEMO_PASSWORD, DEMO_USERNAME, Emulator, Endpoint, Fault};
use identity_core::{Authority, MemoryCache, Password, PublicClient, TokenSource};

#[tokio::test]
async fn a_404_with_a_json_error_body_falls_back_to_the_password_grant() {
    let emu = Emulator::builder().start().await.unwrap();
    // The emulator's fault answers in the endpoint's dialect: an AADSTS JSON error body.
    emu.inject_fault(Fault::status(Endpoint::UserRealm, 404, None).times(1));
    let registration = emu.app("username-password").unwrap();
    let app = PublicClient::builder(registration.app_id, Authority::parse(&emu.authority()).unwrap())
        .http_client(loopback_http(Some(emu.ca_pem())))
        .cache(Arc::new(MemoryCache::new()))
        .build()
        .unwrap();
    let token = app
        .acquire_token_by_username_password(DEMO_USERNAME, &Password::new(DEMO_PASSWORD), &["User.Read"])
        .await
        .unwrap();
    assert_eq!(token.source, TokenSource::IdentityProvider);
    let counts = emu.request_counts();
    assert_eq!(
        (counts.get(Endpoint::UserRealm), counts.get(Endpoint::Token)),
        (1, 1)
    );
}

#[tokio::test]
async fn the_username_is_sent_in_the_path_with_its_at_sign() {
    let client_info = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"uid":"u1","utid":"t1"}"#);
    let stub = serve(move |request, _| {
        let base = format!("http://{}", request.header("host").unwrap());
        if request.target.contains("openid-configuration") {
            Reply::json(200, discovery_document(&base, "contoso.com", &base))
        } else if request.target.contains("/userrealm/") {
            Reply::json(200, serde_json::json!({"ver": "1.0", "account_type": "Managed"}))
        } else {
            Reply::json(
                200,
                serde_json::json!({"access_token": "at", "token_type": "Bearer", "expires_in": 3600,
                    "client_info": client_info, "refresh_token": "rt"}),
            )
        }
    })
    .await;
    let app = PublicClient::builder(
        "22222222-2222-2222-2222-222222222222",
        Authority::parse(&format!("{}/contoso.com", stub.base())).unwrap(),
    )
    .http_client(loopback_http(None))
    .build()
    .unwrap();
    for (username, path) in [
        (
            "adele@contoso.com",
            "/common/userrealm/adele@contoso.com?api-version=1.0",
        ),
        (
            "o'neil+a #1?/%@contoso.com",
            "/common/userrealm/o'neil+a%20%231%3F%2F%25@contoso.com?api-version=1.0",
        ),
    ] {
        app.acquire_token_by_username_password(username, &Password::new("pw"), &["User.Read"])
            .await
            .unwrap();
        let realm_requests = stub.requests_to("/common/userrealm/");
        assert_eq!(realm_requests.last().unwrap().target, path);
    }
}
