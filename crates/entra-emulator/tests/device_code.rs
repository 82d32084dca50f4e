//! The device code flow over real HTTPS: `/devicecode`, polling (pending, slow_down, declined, expired,
//! bad and reused codes, both grant_type spellings), the tenant rules, public-client errors, the handle and
//! the admin API, and delegated Graph calls with the resulting token.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

mod common;

use std::time::Duration;

use common::*;
use entra_emulator::{DEMO_USERNAME, DeviceCodeStatus, Emulator, EmulatorError, Endpoint};
use serde_json::Value;

#[tokio::test]
async fn devicecode_answers_like_the_real_service() {
    let emu = start().await;
    let http = client(&emu);
    let resp = devicecode(
        &emu,
        &http,
        &emu.tenant_id(),
        &app_id(&emu, "device-code"),
        USER_SCOPES,
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store, no-cache");
    let body: Value = resp.json().await.unwrap();
    let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected = [
        "device_code",
        "expires_in",
        "interval",
        "message",
        "user_code",
        "verification_uri",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected);
    let user_code = body["user_code"].as_str().unwrap();
    assert_eq!(user_code.len(), 9);
    assert!(
        user_code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            && !user_code.contains(['0', 'O', '1', 'I', 'L']),
        "{user_code}"
    );
    assert!(body["device_code"].as_str().unwrap().len() > 150);
    assert_eq!(body["verification_uri"], emu.verification_uri());
    assert_eq!(emu.verification_uri(), format!("{}/devicelogin", emu.https_url()));
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["interval"], 5);
    assert_eq!(
        body["message"],
        format!(
            "To sign in, use a web browser to open the page {} and enter the code {user_code} to authenticate.",
            emu.verification_uri()
        )
    );
    assert_eq!(emu.request_counts().get(Endpoint::DeviceCode), 1);
    let codes = emu.device_codes();
    assert_eq!(codes.len(), 1);
    assert_eq!(codes[0].user_code, user_code);
    assert_eq!(codes[0].status, DeviceCodeStatus::Pending);
    assert_eq!(
        codes[0].scopes,
        ["User.Read", "offline_access", "openid", "profile"]
    );

    // The metadata names the endpoint.
    let doc: Value = http
        .get(format!(
            "{}/v2.0/.well-known/openid-configuration",
            emu.authority()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc["device_authorization_endpoint"],
        format!("{}/oauth2/v2.0/devicecode", emu.authority())
    );
    // GET is refused like on the token endpoint.
    let resp = http
        .get(format!("{}/oauth2/v2.0/devicecode", emu.authority()))
        .send()
        .await
        .unwrap();
    assert_aad_error(resp, 400, "invalid_request", 900561).await;
}

#[tokio::test]
async fn polling_goes_slow_down_pending_then_tokens_once() {
    let emu = Emulator::builder().slow_down_polls(1).start().await.unwrap();
    let http = client(&emu);
    let tid = emu.tenant_id();
    let cid = app_id(&emu, "device-code");
    let (device_code, user_code) = new_device_code(&emu, &http).await;

    let resp = poll(&emu, &http, &tid, &cid, &device_code).await;
    let body = assert_aad_error(resp, 400, "slow_down", 70016).await;
    assert!(body.get("suberror").is_none());
    let resp = poll(&emu, &http, &tid, &cid, &device_code).await;
    let body = assert_aad_error(resp, 400, "authorization_pending", 70016).await;
    assert!(body["error_description"].as_str().unwrap().starts_with(
        "AADSTS70016: OAuth 2.0 device flow error. Authorization is pending. Continue polling."
    ));

    emu.approve_device_code(&user_code.to_lowercase(), DEMO_USERNAME)
        .unwrap();
    assert_eq!(emu.device_codes()[0].status, DeviceCodeStatus::Approved);
    let resp = poll(&emu, &http, &tid, &cid, &device_code).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let demo = user(&emu, DEMO_USERNAME);
    let (at, _) = assert_user_tokens(&body, &emu, &cid, &demo);
    assert_eq!(at["amr"], serde_json::json!(["pwd"]));

    // Single use.
    let resp = poll(&emu, &http, &tid, &cid, &device_code).await;
    assert_aad_error(resp, 400, "bad_verification_code", 70000).await;
    let info = &emu.device_codes()[0];
    assert_eq!(info.status, DeviceCodeStatus::Redeemed);
    assert_eq!(info.poll_count, 4);
    assert_eq!(info.username.as_deref(), Some(DEMO_USERNAME));
    assert!(matches!(
        emu.approve_device_code(&user_code, DEMO_USERNAME),
        Err(EmulatorError::DeviceCode { .. })
    ));

    // The delegated token reads the signed-in user, and (User.ReadBasic.All being consented) the directory.
    let token = body["access_token"].as_str().unwrap();
    let me: Value = http
        .get(format!("{}/me", emu.graph_base()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["userPrincipalName"], DEMO_USERNAME);
    assert_eq!(me["id"], demo.id.as_str());
    let resp = http
        .get(format!("{}/users", emu.graph_base()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_graph_error(resp, 403, "Authorization_RequestDenied").await;
}

#[tokio::test]
async fn the_short_grant_type_works_and_declined_codes_say_so() {
    let emu = start().await;
    let http = client(&emu);
    let tid = emu.tenant_id();
    let cid = app_id(&emu, "device-code");
    let url = format!("{}/oauth2/v2.0/token", emu.authority());
    // MSAL.NET's spelling, for a code asking for User.ReadBasic.All too.
    let resp = devicecode(
        &emu,
        &http,
        &tid,
        &cid,
        "User.Read User.ReadBasic.All openid profile offline_access",
    )
    .await;
    let body: Value = resp.json().await.unwrap();
    let device_code = body["device_code"].as_str().unwrap();
    emu.approve_device_code(body["user_code"].as_str().unwrap(), DEMO_USERNAME)
        .unwrap();
    let resp = post_form(
        &http,
        &url,
        &[
            ("grant_type", "device_code"),
            ("client_id", cid.as_str()),
            ("device_code", device_code),
        ],
    )
    .await;
    assert_eq!(resp.status(), 200);
    let tokens: Value = resp.json().await.unwrap();
    assert_eq!(tokens["scope"], "User.Read User.ReadBasic.All profile openid");
    assert!(tokens.get("client_info").is_none(), "only with client_info=1");
    let resp = http
        .get(format!("{}/users?$top=5", emu.graph_base()))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "User.ReadBasic.All reads the directory");

    let (device_code, user_code) = new_device_code(&emu, &http).await;
    emu.decline_device_code(&user_code).unwrap();
    let resp = poll(&emu, &http, &tid, &cid, &device_code).await;
    assert_aad_error(resp, 400, "authorization_declined", 65004).await;
    assert_eq!(emu.device_codes()[1].status, DeviceCodeStatus::Declined);
}

#[tokio::test]
async fn expired_codes_get_expired_token() {
    let emu = Emulator::builder()
        .device_code_lifetime(Duration::ZERO)
        .start()
        .await
        .unwrap();
    let http = client(&emu);
    let resp = devicecode(
        &emu,
        &http,
        &emu.tenant_id(),
        &app_id(&emu, "device-code"),
        USER_SCOPES,
    )
    .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["expires_in"], 0);
    let device_code = body["device_code"].as_str().unwrap();
    let resp = poll(
        &emu,
        &http,
        &emu.tenant_id(),
        &app_id(&emu, "device-code"),
        device_code,
    )
    .await;
    assert_aad_error(resp, 400, "expired_token", 70019).await;
    assert_eq!(emu.device_codes()[0].status, DeviceCodeStatus::Expired);
    let err = emu
        .approve_device_code(body["user_code"].as_str().unwrap(), DEMO_USERNAME)
        .unwrap_err();
    assert!(err.to_string().contains("Expired"), "{err}");
}

#[tokio::test]
async fn unknown_codes_and_codes_from_another_segment_or_client_are_bad() {
    let emu = start().await;
    let http = client(&emu);
    let tid = emu.tenant_id();
    let cid = app_id(&emu, "device-code");
    let resp = poll(&emu, &http, &tid, &cid, "BAQABAAEAAAAnot-a-real-code").await;
    let body = assert_aad_error(resp, 400, "bad_verification_code", 70000).await;
    assert!(
        !body["error_description"]
            .as_str()
            .unwrap()
            .contains("not-a-real-code")
    );

    let (device_code, user_code) = new_device_code(&emu, &http).await;
    emu.approve_device_code(&user_code, DEMO_USERNAME).unwrap();
    let resp = poll(&emu, &http, "organizations", &cid, &device_code).await;
    assert_aad_error(resp, 400, "bad_verification_code", 70000).await;
    let resp = poll(
        &emu,
        &http,
        &tid,
        &app_id(&emu, "username-password"),
        &device_code,
    )
    .await;
    assert_aad_error(resp, 400, "bad_verification_code", 70000).await;
    // The same tenant by its domain is the same segment.
    let resp = poll(&emu, &http, &emu.tenant_domain(), &cid, &device_code).await;
    assert_eq!(resp.status(), 200);
    let resp = post_form(
        &http,
        &format!("{}/oauth2/v2.0/token", emu.authority()),
        &[("grant_type", DEVICE_GRANT), ("client_id", cid.as_str())],
    )
    .await;
    assert_aad_error(resp, 400, "invalid_request", 900144).await;
}

#[tokio::test]
async fn multi_tenant_apps_work_on_organizations_and_common() {
    let emu = start().await;
    let http = client(&emu);
    let cid = app_id(&emu, "device-code");
    for segment in ["organizations", "common"] {
        let resp = devicecode(&emu, &http, segment, &cid, USER_SCOPES).await;
        assert_eq!(resp.status(), 200, "{segment}");
        let body: Value = resp.json().await.unwrap();
        emu.approve_device_code(body["user_code"].as_str().unwrap(), DEMO_USERNAME)
            .unwrap();
        let resp = poll(&emu, &http, segment, &cid, body["device_code"].as_str().unwrap()).await;
        assert_eq!(resp.status(), 200, "{segment}");
        let tokens: Value = resp.json().await.unwrap();
        assert_user_tokens(&tokens, &emu, &cid, &user(&emu, DEMO_USERNAME));
    }
}

#[tokio::test]
async fn tenant_rules_and_bad_requests_fail_at_devicecode() {
    let emu = start().await;
    let http = client(&emu);
    let tid = emu.tenant_id();
    let cases: [(&str, &str, &str, &str, u16, &str, u64); 9] = [
        (
            "organizations",
            "single-tenant",
            USER_SCOPES,
            "invalid_request",
            400,
            "",
            50059,
        ),
        (
            "common",
            "single-tenant",
            USER_SCOPES,
            "invalid_request",
            400,
            "is not configured as a multi-tenant application",
            50194,
        ),
        (
            "common",
            "personal-only",
            USER_SCOPES,
            "invalid_request",
            400,
            "is configured for use by Microsoft Account users only",
            9002331,
        ),
        (
            "organizations",
            "personal-only",
            USER_SCOPES,
            "invalid_request",
            400,
            "Please use the /consumers endpoint",
            9002331,
        ),
        (
            "consumers",
            "device-code",
            USER_SCOPES,
            "invalid_request",
            400,
            "Azure Active Directory users only",
            9002332,
        ),
        (
            "consumers",
            "single-tenant",
            USER_SCOPES,
            "invalid_request",
            400,
            "",
            9002332,
        ),
        (
            tid.as_str(),
            "daemon",
            "User.Read <script>",
            "invalid_scope",
            400,
            "",
            70011,
        ),
        (
            tid.as_str(),
            "device-code",
            "api://other-api/read openid",
            "invalid_resource",
            400,
            "",
            500011,
        ),
        (
            tid.as_str(),
            "device-code",
            "",
            "invalid_request",
            400,
            "'scope'",
            900144,
        ),
    ];
    for (segment, app, scope, error, status, text, code) in cases {
        let resp = devicecode(&emu, &http, segment, &app_id(&emu, app), scope).await;
        let body = assert_aad_error(resp, status, error, code).await;
        assert!(
            body["error_description"].as_str().unwrap().contains(text),
            "{body}"
        );
    }
    // The single-tenant app is fine on its tenant.
    let resp = devicecode(&emu, &http, &tid, &app_id(&emu, "single-tenant"), USER_SCOPES).await;
    assert_eq!(resp.status(), 200);
    let resp = devicecode(
        &emu,
        &http,
        &tid,
        "11111111-2222-3333-4444-555555555555",
        USER_SCOPES,
    )
    .await;
    let body = assert_aad_error(resp, 400, "unauthorized_client", 700016).await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("directory 'Contoso'")
    );
    let resp = devicecode(
        &emu,
        &http,
        "nope.example",
        &app_id(&emu, "device-code"),
        USER_SCOPES,
    )
    .await;
    assert_aad_error(resp, 400, "invalid_request", 90002).await;
}

#[tokio::test]
async fn public_client_errors_at_the_token_endpoint() {
    let emu = start().await;
    let http = client(&emu);
    let tid = emu.tenant_id();
    // "Allow public client flows" off: the code is issued, redeeming it needs a client credential.
    let disabled = app_id(&emu, "public-flows-disabled");
    let resp = devicecode(&emu, &http, &tid, &disabled, USER_SCOPES).await;
    let body: Value = resp.json().await.unwrap();
    let resp = poll(
        &emu,
        &http,
        &tid,
        &disabled,
        body["device_code"].as_str().unwrap(),
    )
    .await;
    let body = assert_aad_error(resp, 401, "invalid_client", 7000218).await;
    assert!(body["error_description"].as_str().unwrap().contains(
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."
    ));
    // A public client must not send a secret.
    let (device_code, _) = new_device_code(&emu, &http).await;
    let cid = app_id(&emu, "device-code");
    let resp = post_form(
        &http,
        &format!("{}/oauth2/v2.0/token", emu.authority()),
        &[
            ("grant_type", DEVICE_GRANT),
            ("client_id", cid.as_str()),
            ("client_secret", "s3cret"),
            ("device_code", device_code.as_str()),
        ],
    )
    .await;
    assert_aad_error(resp, 401, "invalid_client", 700025).await;
}

#[tokio::test]
async fn the_admin_api_lists_approves_and_declines() {
    let emu = start().await;
    let http = client(&emu);
    let (device_code, user_code) = new_device_code(&emu, &http).await;
    let (_, other) = new_device_code(&emu, &http).await;
    let base = format!("{}/_emulator/device-codes", emu.https_url());
    let list: Value = http.get(&base).send().await.unwrap().json().await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["user_code"], user_code.as_str());
    assert_eq!(list[0]["status"], "pending");
    assert_eq!(list[0]["client_id"], app_id(&emu, "device-code"));
    assert!(!list.to_string().contains(&device_code), "never the device code");

    let approve = |code: &str, username: &str| {
        http.post(format!("{base}/{code}/approve"))
            .json(&serde_json::json!({ "username": username }))
            .send()
    };
    let resp = approve(&user_code, "locked.user@contoso.onmicrosoft.com")
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("AADSTS50053"), "{body}");
    assert_eq!(
        approve(&user_code, "nobody@contoso.onmicrosoft.com")
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        approve(&user_code, "federated.user@fabrikam.com")
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(approve("AAAAAAAAA", DEMO_USERNAME).await.unwrap().status(), 404);
    let resp = approve(&user_code, DEMO_USERNAME).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "approved");
    assert_eq!(body["username"], DEMO_USERNAME);
    assert_eq!(approve(&user_code, DEMO_USERNAME).await.unwrap().status(), 409);
    let resp = http.post(format!("{base}/{other}/decline")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(emu.device_codes()[1].status, DeviceCodeStatus::Declined);
    // Admin requests are not counted.
    assert_eq!(emu.request_counts().get(Endpoint::DeviceCode), 2);
    assert_eq!(emu.request_counts().other(), 0);
}

#[tokio::test]
async fn auto_approval_and_waiting_for_a_code() {
    let emu = Emulator::builder()
        .auto_approve_device_codes(DEMO_USERNAME, Duration::ZERO)
        .device_code_interval(1)
        .start()
        .await
        .unwrap();
    let http = client(&emu);
    let cid = app_id(&emu, "device-code");
    let resp = devicecode(&emu, &http, "organizations", &cid, USER_SCOPES).await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["interval"], 1);
    let resp = poll(
        &emu,
        &http,
        "organizations",
        &cid,
        body["device_code"].as_str().unwrap(),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(emu.device_codes()[0].status, DeviceCodeStatus::Redeemed);

    let err = Emulator::builder()
        .auto_approve_device_codes("nobody@contoso.onmicrosoft.com", Duration::ZERO)
        .start()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("auto_approve_device_codes"), "{err}");

    let emu = start().await;
    assert!(
        emu.wait_for_device_code(Duration::from_millis(10))
            .await
            .is_none()
    );
    let http = client(&emu);
    let waiter = emu.wait_for_device_code(Duration::from_secs(30));
    let issue = new_device_code(&emu, &http);
    let (info, (_, user_code)) = tokio::join!(waiter, issue);
    assert_eq!(info.expect("a pending code").user_code, user_code);
}
