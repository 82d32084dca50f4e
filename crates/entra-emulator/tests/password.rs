//! Username/password (ROPC), refresh tokens and user realm discovery over real HTTPS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

mod common;

use std::time::Duration;

use common::*;
use entra_emulator::{DEMO_PASSWORD, DEMO_USERNAME, Emulator, FEDERATED_DOMAIN};
use serde_json::Value;

const DOMAIN: &str = "contoso.onmicrosoft.com";

#[tokio::test]
async fn ropc_issues_user_tokens_on_the_tenant_and_organizations() {
    let emu = start().await;
    let http = client(&emu);
    let cid = app_id(&emu, "username-password");
    let demo = user(&emu, DEMO_USERNAME);
    assert_eq!(demo.password, DEMO_PASSWORD);
    for segment in [emu.tenant_id(), "organizations".to_owned(), emu.tenant_domain()] {
        let resp = ropc(
            &emu,
            &http,
            &segment,
            &cid,
            DEMO_USERNAME,
            DEMO_PASSWORD,
            USER_SCOPES,
        )
        .await;
        assert_eq!(resp.status(), 200, "{segment}");
        let body: Value = resp.json().await.unwrap();
        assert_user_tokens(&body, &emu, &cid, &demo);
    }
    // Without openid/offline_access: no id token, no refresh token; the user name is case-insensitive.
    let resp = ropc(
        &emu,
        &http,
        &emu.tenant_id(),
        &cid,
        &DEMO_USERNAME.to_uppercase(),
        DEMO_PASSWORD,
        "https://graph.microsoft.com/User.Read",
    )
    .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["scope"], "User.Read");
    assert!(
        body.get("refresh_token").is_none() && body.get("id_token").is_none(),
        "{body}"
    );
    let (_, at) = decode_jwt(body["access_token"].as_str().unwrap());
    assert_eq!(at["aud"], "https://graph.microsoft.com");
    // A confidential client may use ROPC with its secret (appidacr 1): `daemon` is single-tenant and has no
    // delegated permissions, so only the OIDC scopes.
    let (daemon, secret) = creds(&emu, "daemon");
    let resp = post_form(
        &http,
        &format!("{}/oauth2/v2.0/token", emu.authority()),
        &[
            ("grant_type", "password"),
            ("client_id", daemon.as_str()),
            ("client_secret", secret.as_str()),
            ("username", DEMO_USERNAME),
            ("password", DEMO_PASSWORD),
            ("scope", "openid profile"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["scope"], "profile openid");
    assert_eq!(
        decode_jwt(body["access_token"].as_str().unwrap()).1["appidacr"],
        "1"
    );
}

#[tokio::test]
async fn ropc_errors_have_their_codes_and_suberrors() {
    let emu = start().await;
    let http = client(&emu);
    let tid = emu.tenant_id();
    let cid = app_id(&emu, "username-password");
    let pw = |upn: &str| user(&emu, upn).password;
    let upn = |alias: &str| format!("{alias}@{DOMAIN}");
    type Case = (
        String,
        String,
        String,
        String,
        &'static str,
        u64,
        Option<&'static str>,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "common".into(),
            DEMO_USERNAME.into(),
            DEMO_PASSWORD.into(),
            USER_SCOPES.into(),
            "invalid_request",
            9001023,
            None,
            "/common or /consumers",
        ),
        (
            "consumers".into(),
            DEMO_USERNAME.into(),
            DEMO_PASSWORD.into(),
            USER_SCOPES.into(),
            "invalid_request",
            9001023,
            None,
            "",
        ),
        (
            tid.clone(),
            DEMO_USERNAME.into(),
            "wrong".into(),
            USER_SCOPES.into(),
            "invalid_grant",
            50126,
            None,
            "Error validating credentials due to invalid username or password.",
        ),
        (
            tid.clone(),
            upn("nobody"),
            "x".into(),
            USER_SCOPES.into(),
            "invalid_grant",
            50034,
            None,
            "The user account {EmailHidden} does not exist in the 3f2c8a91-5b7e-4d06-9c1a-8e4b2d7f6a53 directory.",
        ),
        (
            "organizations".into(),
            "someone@outlook.com".into(),
            "x".into(),
            USER_SCOPES.into(),
            "invalid_grant",
            50034,
            None,
            "does not exist in the outlook.com directory",
        ),
        (
            tid.clone(),
            upn("mfa.user"),
            pw(&upn("mfa.user")),
            USER_SCOPES.into(),
            "invalid_grant",
            50076,
            Some("basic_action"),
            "you must use multi-factor authentication to access '00000003-0000-0000-c000-000000000000'",
        ),
        (
            tid.clone(),
            upn("mfa.register"),
            pw(&upn("mfa.register")),
            USER_SCOPES.into(),
            "invalid_grant",
            50079,
            Some("basic_action"),
            "enroll in multi-factor authentication",
        ),
        (
            tid.clone(),
            upn("locked.user"),
            pw(&upn("locked.user")),
            USER_SCOPES.into(),
            "invalid_grant",
            50053,
            None,
            "",
        ),
        (
            tid.clone(),
            upn("disabled.user"),
            pw(&upn("disabled.user")),
            USER_SCOPES.into(),
            "invalid_grant",
            50057,
            None,
            "disabled",
        ),
        (
            tid.clone(),
            upn("expired.password"),
            pw(&upn("expired.password")),
            USER_SCOPES.into(),
            "invalid_grant",
            50055,
            Some("user_password_expired"),
            "The password is expired.",
        ),
        (
            tid.clone(),
            upn("ca.blocked"),
            pw(&upn("ca.blocked")),
            USER_SCOPES.into(),
            "invalid_grant",
            53003,
            None,
            "Conditional Access",
        ),
        (
            tid.clone(),
            upn("no.consent"),
            pw(&upn("no.consent")),
            USER_SCOPES.into(),
            "invalid_grant",
            65001,
            Some("consent_required"),
            "has not consented to use the application",
        ),
        (
            tid.clone(),
            DEMO_USERNAME.into(),
            DEMO_PASSWORD.into(),
            "Mail.Read openid".into(),
            "invalid_grant",
            65001,
            Some("consent_required"),
            "",
        ),
        (
            tid.clone(),
            format!("federated.user@{FEDERATED_DOMAIN}"),
            pw(&format!("federated.user@{FEDERATED_DOMAIN}")),
            USER_SCOPES.into(),
            "invalid_grant",
            50126,
            None,
            "",
        ),
        (
            tid.clone(),
            DEMO_USERNAME.into(),
            DEMO_PASSWORD.into(),
            "User.Read \"x\"".into(),
            "invalid_scope",
            70011,
            None,
            "",
        ),
    ];
    for (segment, username, password, scope, error, code, suberror, text) in cases {
        let resp = ropc(&emu, &http, &segment, &cid, &username, &password, &scope).await;
        let body = assert_aad_error(resp, 400, error, code).await;
        assert_eq!(body["suberror"].as_str(), suberror, "{body}");
        let description = body["error_description"].as_str().unwrap();
        assert!(description.contains(text), "{description}");
        assert!(
            !description.contains(&password) || password.len() < 3,
            "never the password"
        );
        if code == 50034 {
            assert!(!description.contains(&username), "the name is hidden");
        }
    }
    // Client errors.
    let resp = ropc(
        &emu,
        &http,
        &tid,
        &app_id(&emu, "public-flows-disabled"),
        DEMO_USERNAME,
        DEMO_PASSWORD,
        USER_SCOPES,
    )
    .await;
    assert_aad_error(resp, 401, "invalid_client", 7000218).await;
    let resp = post_form(
        &http,
        &format!("{}/oauth2/v2.0/token", emu.authority()),
        &[
            ("grant_type", "password"),
            ("client_id", cid.as_str()),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", "a.b.c"),
            ("username", DEMO_USERNAME),
            ("password", DEMO_PASSWORD),
            ("scope", USER_SCOPES),
        ],
    )
    .await;
    assert_aad_error(resp, 401, "invalid_client", 700025).await;
    let resp = ropc(
        &emu,
        &http,
        "common",
        &app_id(&emu, "single-tenant"),
        DEMO_USERNAME,
        DEMO_PASSWORD,
        USER_SCOPES,
    )
    .await;
    assert_aad_error(resp, 400, "invalid_request", 9001023).await;
    let resp = ropc(
        &emu,
        &http,
        "organizations",
        &app_id(&emu, "single-tenant"),
        DEMO_USERNAME,
        DEMO_PASSWORD,
        USER_SCOPES,
    )
    .await;
    assert_aad_error(resp, 400, "invalid_request", 50059).await;
    let resp = ropc(
        &emu,
        &http,
        "organizations",
        &app_id(&emu, "personal-only"),
        DEMO_USERNAME,
        DEMO_PASSWORD,
        USER_SCOPES,
    )
    .await;
    assert_aad_error(resp, 400, "invalid_request", 9002331).await;
}

/// Signs in the demo user and returns the token response.
async fn sign_in(emu: &Emulator, http: &reqwest::Client, scope: &str) -> Value {
    let resp = ropc(
        emu,
        http,
        &emu.tenant_id(),
        &app_id(emu, "username-password"),
        DEMO_USERNAME,
        DEMO_PASSWORD,
        scope,
    )
    .await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

async fn refresh(emu: &Emulator, http: &reqwest::Client, rt: &str, scope: &str) -> reqwest::Response {
    let cid = app_id(emu, "username-password");
    post_form(
        http,
        &format!("{}/oauth2/v2.0/token", emu.authority()),
        &[
            ("client_id", cid.as_str()),
            ("grant_type", "refresh_token"),
            ("client_info", "1"),
            ("refresh_token", rt),
            ("scope", scope),
        ],
    )
    .await
}

#[tokio::test]
async fn refresh_tokens_rotate_and_change_scopes_within_consent() {
    let emu = start().await;
    let http = client(&emu);
    let first = sign_in(&emu, &http, USER_SCOPES).await;
    let rt = first["refresh_token"].as_str().unwrap();
    let resp = refresh(
        &emu,
        &http,
        rt,
        "User.ReadBasic.All offline_access openid profile",
    )
    .await;
    assert_eq!(resp.status(), 200);
    let second: Value = resp.json().await.unwrap();
    assert_eq!(second["scope"], "User.ReadBasic.All profile openid");
    let rt2 = second["refresh_token"].as_str().unwrap();
    assert_ne!(rt2, rt, "rotated");
    let (_, at) = decode_jwt(second["access_token"].as_str().unwrap());
    assert_eq!(at["scp"], "User.ReadBasic.All profile openid");
    assert_eq!(at["upn"], DEMO_USERNAME);
    assert_eq!(
        decode_jwt(second["id_token"].as_str().unwrap()).1["aud"],
        app_id(&emu, "username-password")
    );
    assert!(second["client_info"].is_string());
    let resp = http
        .get(format!("{}/users", emu.graph_base()))
        .bearer_auth(second["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // The old token still works (Entra does not invalidate it on rotation); an unconsented scope does not.
    assert_eq!(refresh(&emu, &http, rt, USER_SCOPES).await.status(), 200);
    let resp = refresh(&emu, &http, rt2, "Mail.Read offline_access").await;
    assert_aad_error(resp, 400, "invalid_grant", 65001).await;
    // Garbage, or another client's token.
    let resp = refresh(&emu, &http, "0.Anot-a-token", USER_SCOPES).await;
    assert_aad_error(resp, 400, "invalid_grant", 9002313).await;
    let other = app_id(&emu, "device-code");
    let resp = post_form(
        &http,
        &format!("{}/oauth2/v2.0/token", emu.authority()),
        &[
            ("client_id", other.as_str()),
            ("grant_type", "refresh_token"),
            ("refresh_token", rt2),
        ],
    )
    .await;
    assert_aad_error(resp, 400, "invalid_grant", 9002313).await;
    let resp = post_form(
        &http,
        &format!("{}/oauth2/v2.0/token", emu.authority()),
        &[
            ("client_id", app_id(&emu, "username-password").as_str()),
            ("grant_type", "refresh_token"),
        ],
    )
    .await;
    assert_aad_error(resp, 400, "invalid_request", 900144).await;
}

#[tokio::test]
async fn expired_and_revoked_refresh_tokens_are_refused() {
    let emu = start().await;
    let http = client(&emu);
    let rt = sign_in(&emu, &http, USER_SCOPES).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    emu.expire_refresh_tokens();
    let resp = refresh(&emu, &http, &rt, USER_SCOPES).await;
    let body = assert_aad_error(resp, 400, "invalid_grant", 700082).await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("The refresh token has expired due to inactivity.")
    );

    let rt = sign_in(&emu, &http, USER_SCOPES).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(emu.revoke_refresh_tokens(&DEMO_USERNAME.to_lowercase()), 2);
    let resp = refresh(&emu, &http, &rt, USER_SCOPES).await;
    assert_aad_error(resp, 400, "invalid_grant", 50173).await;

    // A lifetime shorter than the inactivity.
    let emu = Emulator::builder()
        .refresh_token_lifetime(Duration::ZERO)
        .start()
        .await
        .unwrap();
    let http = client(&emu);
    let rt = sign_in(&emu, &http, USER_SCOPES).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let resp = refresh(&emu, &http, &rt, USER_SCOPES).await;
    assert_aad_error(resp, 400, "invalid_grant", 700082).await;
}

#[tokio::test]
async fn a_set_token_lifetime_applies_to_user_tokens() {
    let emu = Emulator::builder()
        .token_lifetime(Duration::from_secs(600))
        .start()
        .await
        .unwrap();
    let http = client(&emu);
    let body = sign_in(&emu, &http, USER_SCOPES).await;
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["ext_expires_in"], 600);
}

#[tokio::test]
async fn user_realm_is_managed_federated_or_unknown() {
    let emu = start().await;
    let http = client(&emu);
    let realm = |user: &str| {
        let url = format!("{}/common/userrealm/{user}?api-version=1.0", emu.https_url());
        let http = http.clone();
        async move { http.get(url).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let managed = realm(DEMO_USERNAME).await;
    assert_eq!(managed["account_type"], "Managed");
    assert_eq!(managed["domain_name"], DOMAIN);
    assert!(managed.get("federation_protocol").is_none());
    let federated = realm("federated.user@fabrikam.com").await;
    let keys: Vec<&str> = federated
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "ver",
        "account_type",
        "domain_name",
        "federation_protocol",
        "federation_metadata_url",
        "federation_active_auth_url",
        "cloud_instance_name",
        "cloud_audience_urn",
    ] {
        assert!(keys.contains(&key), "{key} in {federated}");
    }
    assert_eq!(federated["account_type"], "Federated");
    assert_eq!(federated["domain_name"], FEDERATED_DOMAIN);
    assert_eq!(federated["federation_protocol"], "WSTrust");
    assert!(
        federated["federation_metadata_url"]
            .as_str()
            .unwrap()
            .starts_with(&emu.https_url())
    );
    assert!(
        federated["federation_active_auth_url"]
            .as_str()
            .unwrap()
            .starts_with(&emu.https_url())
    );
    let unknown = realm("someone@outlook.com").await;
    assert_eq!(unknown["account_type"], "Unknown");
    assert!(unknown.get("domain_name").is_none());
}
