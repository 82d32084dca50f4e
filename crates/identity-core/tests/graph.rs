//! Microsoft Graph calls with app-only tokens, over real HTTPS against the emulator.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

use entra_emulator::Emulator;
use identity_core::{
    Authority, ClientSecret, ConfidentialClient, Error, GraphClient, HttpClient, HttpConfig, SecretToken,
};

const GRAPH_DEFAULT: &str = "https://graph.microsoft.com/.default";

struct Setup {
    emu: Emulator,
    graph: GraphClient,
    token: SecretToken,
}

async fn setup(app: &str) -> Setup {
    let emu = Emulator::builder().start().await.unwrap();
    let registration = emu.app(app).unwrap();
    let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emu.ca_pem())).unwrap();
    let client = ConfidentialClient::builder(
        registration.app_id.clone(),
        Authority::parse(&emu.authority()).unwrap(),
    )
    .client_secret(ClientSecret::new(registration.secrets[0].value.clone()))
    .http_client(http.clone())
    .build()
    .unwrap();
    let token = client
        .acquire_token_for_client(&[GRAPH_DEFAULT])
        .await
        .unwrap()
        .access_token;
    Setup {
        graph: GraphClient::new(http),
        token,
        emu,
    }
}

fn graph_error(err: Error) -> Box<identity_core::GraphError> {
    match err {
        Error::Graph(e) => e,
        other => panic!("expected a Graph error, got {other:?}"),
    }
}

#[tokio::test]
async fn lists_users_and_follows_every_page() {
    let s = setup("daemon").await;
    let directory_users = s.emu.directory().tenants[0].users.len();
    let first = s
        .graph
        .get(&format!("{}/users", s.emu.graph_base()), &s.token)
        .await
        .unwrap();
    assert_eq!(first["value"].as_array().unwrap().len(), directory_users.min(100));
    assert!(
        first["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#users")
    );

    let all = s
        .graph
        .get_all_pages(&format!("{}/users?$top=5", s.emu.graph_base()), &s.token, 100)
        .await
        .unwrap();
    assert_eq!(all.len(), directory_users);
    let mut ids: Vec<&str> = all.iter().map(|u| u["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), directory_users, "every user exactly once");

    let two_pages = s
        .graph
        .get_all_pages(&format!("{}/users?$top=5", s.emu.graph_base()), &s.token, 2)
        .await
        .unwrap();
    assert_eq!(two_pages.len(), 10.min(directory_users));
}

#[tokio::test]
async fn reads_an_application_by_object_id() {
    let s = setup("daemon").await;
    let app = s.emu.app("daemon").unwrap();
    let body = s
        .graph
        .get(
            &format!("{}/applications/{}", s.emu.graph_base(), app.object_id),
            &s.token,
        )
        .await
        .unwrap();
    assert_eq!(body["appId"], app.app_id.as_str());
    assert_eq!(body["id"], app.object_id.as_str());
    assert!(
        !body.to_string().contains(&app.secrets[0].value),
        "Graph never returns secret values"
    );

    let missing = uuid::Uuid::new_v4();
    let e = graph_error(
        s.graph
            .get(
                &format!("{}/applications/{missing}", s.emu.graph_base()),
                &s.token,
            )
            .await
            .unwrap_err(),
    );
    assert_eq!((e.status, e.code.as_str()), (404, "Request_ResourceNotFound"));
    assert!(e.fix().unwrap().contains("Object ID"));
}

#[tokio::test]
async fn me_with_an_app_token_is_a_bad_request_with_a_fix() {
    let s = setup("daemon").await;
    let e = graph_error(
        s.graph
            .get(&format!("{}/me", s.emu.graph_base()), &s.token)
            .await
            .unwrap_err(),
    );
    assert_eq!((e.status, e.code.as_str()), (400, "BadRequest"));
    assert!(e.request_id.is_some());
    assert!(e.fix().unwrap().contains("/me needs a signed-in user"));
}

#[tokio::test]
async fn missing_permission_is_authorization_request_denied_with_the_admin_consent_fix() {
    let s = setup("no-permissions").await;
    let e = graph_error(
        s.graph
            .get(&format!("{}/users", s.emu.graph_base()), &s.token)
            .await
            .unwrap_err(),
    );
    assert_eq!((e.status, e.code.as_str()), (403, "Authorization_RequestDenied"));
    assert!(e.request_id.is_some() && e.date.is_some());
    assert!(e.fix().unwrap().contains("Grant admin consent"));
}

#[tokio::test]
async fn a_tampered_token_is_invalid_authentication_token_with_a_fix() {
    let s = setup("daemon").await;
    let mut parts: Vec<String> = s.token.secret().split('.').map(str::to_string).collect();
    parts[2] = parts[2].chars().rev().collect();
    let tampered = SecretToken::new(parts.join("."));
    let e = graph_error(
        s.graph
            .get(&format!("{}/users", s.emu.graph_base()), &tampered)
            .await
            .unwrap_err(),
    );
    assert_eq!((e.status, e.code.as_str()), (401, "InvalidAuthenticationToken"));
    let fix = e.fix().unwrap();
    assert!(fix.contains("audience") && fix.contains("the scopes"), "{fix}");
    assert!(
        !fix.contains("SCOPE"),
        "no sample variable in a library fix: {fix}"
    );
    assert_eq!(e.claims_challenge, None);
}

#[tokio::test]
async fn refuses_to_send_a_token_over_plain_http_to_a_remote_host() {
    let s = setup("daemon").await;
    let err = s
        .graph
        .get("http://graph.example.com/v1.0/users", &s.token)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Config(identity_core::ConfigError::InsecureUrl { .. })),
        "{err:?}"
    );
    let err = s.graph.get("not a url", &s.token).await.unwrap_err();
    assert!(
        matches!(err, Error::Config(identity_core::ConfigError::InvalidUrl { .. })),
        "{err:?}"
    );
}
