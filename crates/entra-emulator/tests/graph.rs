//! Microsoft Graph: users paging, single objects, /me, applications, token validation, permissions,
//! request counting and fault injection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{GRAPH_DEFAULT, assert_aad_error, assert_graph_error, client, creds, start, token, token_url};
use entra_emulator::{Emulator, Endpoint, Fault};
use serde_json::Value;

async fn get(http: &reqwest::Client, url: &str, token: &str) -> reqwest::Response {
    http.get(url).bearer_auth(token).send().await.expect("request")
}

#[tokio::test]
async fn users_page_with_top_and_next_links_until_every_user_is_seen_once() {
    let emu = start().await;
    let http = client(&emu);
    let tok = token(&emu, &http, "daemon").await;
    let total = emu.directory().tenants[0].users.len();
    assert!(total > 10);

    let mut url = format!("{}/users?$top=5", emu.graph_base());
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let resp = get(&http, &url, &tok).await;
        assert_eq!(resp.status(), 200);
        let h = resp.headers().clone();
        assert_eq!(
            h["content-type"],
            "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
        );
        assert!(h.contains_key("request-id"));
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body["@odata.context"],
            format!("{}/$metadata#users", emu.graph_base())
        );
        let value = body["value"].as_array().unwrap();
        assert!(value.len() <= 5);
        seen.extend(value.iter().map(|u| u["id"].as_str().unwrap().to_owned()));
        pages += 1;
        match body.get("@odata.nextLink") {
            Some(next) => {
                let next = next.as_str().unwrap();
                assert!(
                    next.starts_with(&format!("{}/users?$top=5&$skiptoken=", emu.graph_base())),
                    "{next}"
                );
                url = next.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(pages, total.div_ceil(5));
    assert_eq!(seen.len(), total);
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        total,
        "every user exactly once"
    );
    assert_eq!(emu.request_counts().get(Endpoint::Graph), pages as u64);
}

#[tokio::test]
async fn users_have_the_eleven_default_properties_and_select_narrows_them() {
    let emu = start().await;
    let http = client(&emu);
    let tok = token(&emu, &http, "daemon").await;
    let resp = get(&http, &format!("{}/users", emu.graph_base()), &tok).await;
    let text = resp.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert!(body.get("@odata.nextLink").is_none(), "one page of at most 100");
    let users = body["value"].as_array().unwrap();
    assert_eq!(users.len(), emu.directory().tenants[0].users.len());
    let adele = &users[0];
    let keys: Vec<&String> = adele.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 11);
    for k in [
        "businessPhones",
        "displayName",
        "givenName",
        "jobTitle",
        "mail",
        "mobilePhone",
        "officeLocation",
        "preferredLanguage",
        "surname",
        "userPrincipalName",
        "id",
    ] {
        assert!(adele.get(k).is_some(), "{k}");
    }
    assert!(
        text.contains(r#"{"businessPhones":["#),
        "Graph's member order: {text}"
    );
    assert_eq!(adele["displayName"], "Adele Vance");
    assert_eq!(adele["userPrincipalName"], "AdeleV@contoso.onmicrosoft.com");
    assert!(adele.get("password").is_none());

    let resp = get(
        &http,
        &format!("{}/users?$select=displayName,mail&$top=2", emu.graph_base()),
        &tok,
    )
    .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["@odata.context"],
        format!("{}/$metadata#users(displayName,mail)", emu.graph_base())
    );
    let first = body["value"][0].as_object().unwrap();
    assert_eq!(first.len(), 2);
    assert!(
        body["@odata.nextLink"]
            .as_str()
            .unwrap()
            .contains("$select=displayName,mail")
    );

    let resp = get(
        &http,
        &format!("{}/users?$select=shoeSize", emu.graph_base()),
        &tok,
    )
    .await;
    let (body, _) = assert_graph_error(resp, 400, "BadRequest").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Could not find a property named 'shoeSize'")
    );
}

#[tokio::test]
async fn page_size_limits_and_bad_skiptokens_are_rejected() {
    let emu = start().await;
    let http = client(&emu);
    let tok = token(&emu, &http, "daemon").await;
    for top in ["1000", "0"] {
        let resp = get(&http, &format!("{}/users?$top={top}", emu.graph_base()), &tok).await;
        let (body, _) = assert_graph_error(resp, 400, "Request_UnsupportedQuery").await;
        assert_eq!(
            body["error"]["message"],
            format!("Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive.")
        );
    }
    let resp = get(&http, &format!("{}/users?$top=999", emu.graph_base()), &tok).await;
    assert_eq!(resp.status(), 200);
    let resp = get(
        &http,
        &format!("{}/users?$skiptoken=bm9wZQ", emu.graph_base()),
        &tok,
    )
    .await;
    assert_graph_error(resp, 400, "Directory_ExpiredPageToken").await;
}

#[tokio::test]
async fn single_users_by_id_or_upn_and_me_needs_a_user() {
    let emu = start().await;
    let http = client(&emu);
    let tok = token(&emu, &http, "daemon").await;
    let user = emu.directory().tenants[0].users[3].clone();
    for key in [
        user.id.clone(),
        user.user_principal_name.clone(),
        user.user_principal_name.to_lowercase(),
    ] {
        let resp = get(&http, &format!("{}/users/{key}", emu.graph_base()), &tok).await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body["@odata.context"],
            format!("{}/$metadata#users/$entity", emu.graph_base())
        );
        assert_eq!(body["id"], user.id.as_str());
        assert_eq!(body["displayName"], user.display_name.as_str());
    }
    let resp = get(
        &http,
        &format!("{}/users/nobody@contoso.onmicrosoft.com", emu.graph_base()),
        &tok,
    )
    .await;
    let (body, _) = assert_graph_error(resp, 404, "Request_ResourceNotFound").await;
    assert_eq!(
        body["error"]["message"],
        "Resource 'nobody@contoso.onmicrosoft.com' does not exist or one of its queried reference-property objects are not present."
    );

    let resp = http
        .get(format!("{}/me", emu.graph_base()))
        .bearer_auth(&tok)
        .header("client-request-id", "my-request-42")
        .send()
        .await
        .unwrap();
    let (body, headers) = assert_graph_error(resp, 400, "BadRequest").await;
    assert_eq!(
        body["error"]["message"],
        "/me request is only valid with delegated authentication flow."
    );
    assert_eq!(body["error"]["innerError"]["client-request-id"], "my-request-42");
    assert_eq!(headers["client-request-id"], "my-request-42");
    let date = body["error"]["innerError"]["date"].as_str().unwrap();
    assert_eq!(date.len(), "2022-10-23T22:59:31".len(), "{date}");
}

#[tokio::test]
async fn applications_by_object_id_and_app_id_never_show_secrets() {
    let emu = start().await;
    let http = client(&emu);
    let tok = token(&emu, &http, "daemon").await;
    let app = emu.app("daemon").unwrap();
    let urls = [
        format!("{}/applications/{}", emu.graph_base(), app.object_id),
        format!("{}/applications(appId='{}')", emu.graph_base(), app.app_id),
        format!("{}/applications(appId=%27{}%27)", emu.graph_base(), app.app_id),
    ];
    for url in urls {
        let resp = get(&http, &url, &tok).await;
        assert_eq!(resp.status(), 200, "{url}");
        let text = resp.text().await.unwrap();
        assert!(!text.contains(&app.secrets[0].value), "never the secret value");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            body["@odata.context"],
            format!("{}/$metadata#applications/$entity", emu.graph_base())
        );
        assert_eq!(body["id"], app.object_id.as_str());
        assert_eq!(body["appId"], app.app_id.as_str());
        assert_eq!(body["displayName"], app.display_name.as_str());
        assert_eq!(body["signInAudience"], "AzureADMyOrg");
        assert_eq!(body["isFallbackPublicClient"], false);
        assert_eq!(body["publisherDomain"], "contoso.onmicrosoft.com");
        let cred = &body["passwordCredentials"][0];
        assert!(cred["secretText"].is_null());
        assert_eq!(cred["hint"], app.secrets[0].hint.as_str());
        assert_eq!(cred["keyId"], app.secrets[0].key_id.as_str());
        assert_eq!(
            body["requiredResourceAccess"][0]["resourceAppId"],
            "00000003-0000-0000-c000-000000000000"
        );
        assert_eq!(
            body["requiredResourceAccess"][0]["resourceAccess"][0]["id"],
            "df021288-bdef-4463-88db-98f22de89214"
        );
    }
    let missing = "99999999-8888-7777-6666-555555555555";
    for url in [
        format!("{}/applications/{missing}", emu.graph_base()),
        format!("{}/applications(appId='{missing}')", emu.graph_base()),
    ] {
        let resp = get(&http, &url, &tok).await;
        let (body, _) = assert_graph_error(resp, 404, "Request_ResourceNotFound").await;
        assert_eq!(
            body["error"]["message"],
            format!(
                "Resource '{missing}' does not exist or one of its queried reference-property objects are not present."
            )
        );
    }
    let resp = get(&http, &format!("{}/applications", emu.graph_base()), &tok).await;
    let body: Value = resp.json().await.unwrap();
    let apps = body["value"].as_array().unwrap();
    assert_eq!(apps.len(), emu.directory().tenants[0].apps.len());
    let device = apps
        .iter()
        .find(|a| a["appId"] == emu.app("device-code").unwrap().app_id)
        .unwrap();
    assert_eq!(device["isFallbackPublicClient"], true);
    assert_eq!(device["signInAudience"], "AzureADMultipleOrgs");
    assert_eq!(
        device["requiredResourceAccess"][0]["resourceAccess"][0],
        serde_json::json!({"id": "e1fe6dd8-ba31-4d61-89e7-88639da4683d", "type": "Scope"})
    );
}

#[tokio::test]
async fn missing_expired_malformed_and_tampered_tokens_are_401() {
    let emu = start().await;
    let http = client(&emu);
    let users = format!("{}/users", emu.graph_base());

    let resp = http.get(&users).send().await.unwrap();
    let (body, headers) = assert_graph_error(resp, 401, "InvalidAuthenticationToken").await;
    assert_eq!(body["error"]["message"], "Access token is empty.");
    let www = headers["www-authenticate"].to_str().unwrap();
    assert!(
        www.starts_with("Bearer realm=\"\", authorization_uri=\""),
        "{www}"
    );
    assert!(www.contains("client_id=\"00000003-0000-0000-c000-000000000000\""));

    let resp = get(&http, &users, "not-a-jwt").await;
    let (body, _) = assert_graph_error(resp, 401, "InvalidAuthenticationToken").await;
    assert_eq!(
        body["error"]["message"],
        "CompactToken parsing failed with error code: 80049217"
    );

    let tok = token(&emu, &http, "daemon").await;
    let mut parts: Vec<String> = tok.split('.').map(str::to_owned).collect();
    parts[2] = parts[2].chars().rev().collect();
    let resp = get(&http, &users, &parts.join(".")).await;
    let (body, _) = assert_graph_error(resp, 401, "InvalidAuthenticationToken").await;
    assert_eq!(body["error"]["message"], "Signature is invalid.");

    // A token signed by another emulator (another key) is rejected too.
    let other = start().await;
    let foreign = token(&other, &client(&other), "daemon").await;
    let resp = get(&http, &users, &foreign).await;
    assert_graph_error(resp, 401, "InvalidAuthenticationToken").await;

    let short = Emulator::builder()
        .token_lifetime(Duration::ZERO)
        .start()
        .await
        .unwrap();
    let short_http = client(&short);
    let expired = token(&short, &short_http, "daemon").await;
    let resp = get(&short_http, &format!("{}/users", short.graph_base()), &expired).await;
    let (body, _) = assert_graph_error(resp, 401, "InvalidAuthenticationToken").await;
    assert_eq!(
        body["error"]["message"],
        "Access token has expired or is not yet valid."
    );
}

#[tokio::test]
async fn an_app_without_permissions_gets_403() {
    let emu = start().await;
    let http = client(&emu);
    let tok = token(&emu, &http, "no-permissions").await;
    let app = emu.app("daemon").unwrap();
    for url in [
        format!("{}/users", emu.graph_base()),
        format!("{}/applications/{}", emu.graph_base(), app.object_id),
    ] {
        let resp = get(&http, &url, &tok).await;
        let (body, _) = assert_graph_error(resp, 403, "Authorization_RequestDenied").await;
        assert_eq!(
            body["error"]["message"],
            "Insufficient privileges to complete the operation."
        );
    }
}

#[tokio::test]
async fn requests_are_counted_per_endpoint_and_over_http() {
    let emu = start().await;
    let http = client(&emu);
    http.get(format!(
        "{}/v2.0/.well-known/openid-configuration",
        emu.authority()
    ))
    .send()
    .await
    .unwrap();
    let tok = token(&emu, &http, "daemon").await;
    get(&http, &format!("{}/users", emu.graph_base()), &tok).await;
    get(&http, &format!("{}/me", emu.graph_base()), &tok).await;
    let counts = emu.request_counts();
    assert_eq!(counts.get(Endpoint::OpenIdConfiguration), 1);
    assert_eq!(counts.get(Endpoint::Token), 1);
    assert_eq!(counts.get(Endpoint::Graph), 2);
    assert_eq!(counts.get(Endpoint::Keys), 0);
    assert_eq!(counts.total(), 4);

    let over_http: Value = http
        .get(format!("{}/_emulator/requests", emu.https_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(over_http["open_id_configuration"], 1);
    assert_eq!(over_http["token"], 1);
    assert_eq!(over_http["graph"], 2);
    assert_eq!(over_http["total"], 4);
    assert_eq!(
        serde_json::to_value(emu.request_counts()).unwrap(),
        over_http,
        "the admin endpoint is not counted"
    );

    emu.reset_request_counts();
    assert_eq!(emu.request_counts().total(), 0);
    get(&http, &format!("{}/users", emu.graph_base()), &tok).await;
    let reset: Value = http
        .post(format!("{}/_emulator/requests/reset", emu.https_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reset["total"], 0);
    assert_eq!(emu.request_counts().total(), 0);
}

#[tokio::test]
async fn injected_faults_answer_first_then_normal_handling_resumes() {
    let emu = start().await;
    let http = client(&emu);
    let tok = token(&emu, &http, "daemon").await;
    let users = format!("{}/users", emu.graph_base());
    emu.inject_fault(Fault::status(Endpoint::Graph, 429, Some(7)).times(2));
    for _ in 0..2 {
        let resp = get(&http, &users, &tok).await;
        assert_eq!(resp.headers()["retry-after"], "7");
        let (body, _) = assert_graph_error(resp, 429, "TooManyRequests").await;
        assert_eq!(body["error"]["innerError"]["status"], "429");
    }
    assert_eq!(get(&http, &users, &tok).await.status(), 200);

    // Token endpoint outage, injected over HTTP: an AADSTS-shaped body, before any validation.
    let resp = http
        .post(format!("{}/_emulator/faults", emu.https_url()))
        .json(&serde_json::json!({"endpoint": "token", "status": 503, "retry_after": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let resp = http
        .post(token_url(&emu))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["retry-after"], "3");
    let body = assert_aad_error(resp, 503, "temporarily_unavailable", 90033).await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("A transient error has occurred.")
    );

    emu.inject_fault(Fault::status(Endpoint::Token, 429, None));
    let (id, secret) = creds(&emu, "daemon");
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", &id),
        ("client_secret", &secret),
        ("scope", GRAPH_DEFAULT),
    ];
    let resp = http.post(token_url(&emu)).form(&form).send().await.unwrap();
    assert!(resp.headers().get("retry-after").is_none());
    assert_aad_error(resp, 429, "temporarily_unavailable", 50196).await;
    assert_eq!(
        http.post(token_url(&emu))
            .form(&form)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        emu.request_counts().get(Endpoint::Token),
        4,
        "faulted requests are counted"
    );
}
