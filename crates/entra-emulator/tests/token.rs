//! The token endpoint (client credentials with a secret): success by body and by HTTP Basic, the token's
//! shape and signature, and every error with its exact shape.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{GRAPH_DEFAULT, assert_aad_error, client, creds, decode_jwt, start, token_url};
use entra_emulator::{DEFAULT_TENANT_ID, Emulator, Endpoint};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier as _;
use rsa::{BigUint, RsaPublicKey};
use serde_json::Value;

fn urlenc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Verifies a JWT's RS256 signature with the key the emulator publishes.
async fn verify_with_jwks(emu: &Emulator, http: &reqwest::Client, token: &str) {
    let jwks: Value = http
        .get(format!("{}/discovery/v2.0/keys", emu.authority()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (header, _) = decode_jwt(token);
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("kid in JWKS");
    let n = BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap());
    let e = BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap());
    let key = VerifyingKey::<sha2::Sha256>::new(RsaPublicKey::new(n, e).unwrap());
    let (signing_input, signature) = token.rsplit_once('.').unwrap();
    let signature = Signature::try_from(URL_SAFE_NO_PAD.decode(signature).unwrap().as_slice()).unwrap();
    key.verify(signing_input.as_bytes(), &signature)
        .expect("signature verifies against the JWKS");
}

#[tokio::test]
async fn client_secret_in_the_body_gets_a_graph_app_token() {
    let emu = start().await;
    let http = client(&emu);
    let (id, secret) = creds(&emu, "daemon");
    let app = emu.app("daemon").unwrap();
    // What MSAL Python sends, in its order, plus telemetry it adds.
    let resp = http
        .post(token_url(&emu))
        .header("client-request-id", "0a1b2c3d-0000-4000-8000-000000000001")
        .header("x-client-sku", "MSAL.Python")
        .header("x-client-current-telemetry", "4|730,2|")
        .header("x-ms-lib-capability", "retry-after, h429")
        .form(&[
            ("client_id", id.as_str()),
            ("grant_type", "client_credentials"),
            ("client_info", "1"),
            ("client_secret", secret.as_str()),
            ("scope", GRAPH_DEFAULT),
            ("claims", r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#),
            ("x-client-SKU", "msal.js.node"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert_eq!(h["content-type"], "application/json; charset=utf-8");
    assert_eq!(h["cache-control"], "no-store, no-cache");
    assert_eq!(h["pragma"], "no-cache");
    assert!(h.contains_key("x-ms-request-id"));
    assert_eq!(h["client-request-id"], "0a1b2c3d-0000-4000-8000-000000000001");
    let text = resp.text().await.unwrap();
    assert!(
        text.starts_with(
            r#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":""#
        ),
        "{text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        body.as_object().unwrap().len(),
        4,
        "no scope, no refresh_token, no id_token"
    );
    let token = body["access_token"].as_str().unwrap();

    let (header, claims) = decode_jwt(token);
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], header["x5t"]);
    assert_eq!(claims["aud"], "https://graph.microsoft.com");
    assert_eq!(
        claims["iss"],
        format!("https://sts.windows.net/{DEFAULT_TENANT_ID}/")
    );
    assert_eq!(
        claims["idp"],
        format!("https://sts.windows.net/{DEFAULT_TENANT_ID}/")
    );
    assert_eq!(claims["tid"], DEFAULT_TENANT_ID);
    assert_eq!(claims["appid"], app.app_id.as_str());
    assert_eq!(claims["app_displayname"], "Contoso daemon (client secret)");
    assert_eq!(claims["appidacr"], "1");
    assert_eq!(claims["idtyp"], "app");
    assert_eq!(claims["oid"], app.service_principal_id.as_str());
    assert_eq!(claims["sub"], app.service_principal_id.as_str());
    assert_eq!(
        claims["roles"],
        serde_json::json!(["User.Read.All", "Application.Read.All"])
    );
    assert_eq!(claims["ver"], "1.0");
    assert!(claims["uti"].as_str().unwrap().len() >= 16);
    assert!(claims.get("scp").is_none());
    let (iat, nbf, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["nbf"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(iat, nbf);
    assert_eq!(exp - iat, 3599 + 300, "iat/nbf back-dated five minutes");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((exp - now - 3599).abs() <= 5);
    verify_with_jwks(&emu, &http, token).await;
    assert_eq!(emu.request_counts().get(Endpoint::Token), 1);
}

#[tokio::test]
async fn client_secret_basic_and_the_graph_app_id_resource_work_too() {
    let emu = Emulator::builder()
        .token_lifetime(Duration::from_secs(600))
        .start()
        .await
        .unwrap();
    let http = client(&emu);
    let (id, secret) = creds(&emu, "daemon");
    let basic = STANDARD.encode(format!("{}:{}", urlenc(&id), urlenc(&secret)));
    let resp = http
        .post(token_url(&emu))
        .header("authorization", format!("Basic {basic}"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "00000003-0000-0000-c000-000000000000/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["ext_expires_in"], 600);
    let (_, claims) = decode_jwt(body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], "00000003-0000-0000-c000-000000000000");
    assert_eq!(claims["appid"], id.as_str());

    // The domain name works as tenant too, and an app without roles gets no `roles` claim.
    let (np_id, np_secret) = creds(&emu, "no-permissions");
    let resp = http
        .post(format!(
            "{}/contoso.onmicrosoft.com/oauth2/v2.0/token",
            emu.https_url()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", np_id.as_str()),
            ("client_secret", np_secret.as_str()),
            ("scope", "https://graph.microsoft.com//.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let (_, claims) = decode_jwt(body["access_token"].as_str().unwrap());
    assert!(claims.get("roles").is_none(), "{claims}");
    assert_eq!(claims["tid"], DEFAULT_TENANT_ID);
}

struct Case {
    name: &'static str,
    tenant: Option<&'static str>,
    form: Vec<(&'static str, String)>,
    status: u16,
    error: &'static str,
    code: u64,
    text: String,
}

#[tokio::test]
async fn every_client_credentials_error_has_the_real_status_code_and_shape() {
    let emu = start().await;
    let http = client(&emu);
    let (id, secret) = creds(&emu, "daemon");
    let (expired_id, expired_secret) = creds(&emu, "expired-secret");
    let unknown_app = "11111111-1111-1111-1111-111111111111";
    let base = |extra: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
        let mut f = vec![("grant_type", "client_credentials".to_owned())];
        f.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        f
    };
    let ok = |scope: &str| base(&[("client_id", &id), ("client_secret", &secret), ("scope", scope)]);
    let cases = vec![
        Case {
            name: "unknown tenant",
            tenant: Some("fabrikam.onmicrosoft.com"),
            form: ok(GRAPH_DEFAULT),
            status: 400,
            error: "invalid_request",
            code: 90002,
            text: "Tenant 'fabrikam.onmicrosoft.com' not found.".into(),
        },
        Case {
            name: "invalid tenant",
            tenant: Some("my_tenant"),
            form: ok(GRAPH_DEFAULT),
            status: 400,
            error: "invalid_request",
            code: 900023,
            text: "Specified tenant identifier 'my_tenant' is neither a valid DNS name".into(),
        },
        Case {
            name: "common",
            tenant: Some("common"),
            form: ok(GRAPH_DEFAULT),
            status: 400,
            error: "invalid_request",
            code: 50059,
            text: "No tenant-identifying information found in either the request or implied by any provided credentials.".into(),
        },
        Case {
            name: "organizations",
            tenant: Some("organizations"),
            form: ok(GRAPH_DEFAULT),
            status: 400,
            error: "invalid_request",
            code: 50059,
            text: "No tenant-identifying information".into(),
        },
        Case {
            name: "unknown app",
            tenant: None,
            form: base(&[("client_id", unknown_app), ("client_secret", &secret), ("scope", GRAPH_DEFAULT)]),
            status: 400,
            error: "unauthorized_client",
            code: 700016,
            text: format!(
                "Application with identifier '{unknown_app}' was not found in the directory 'Contoso'. This can happen \
                 if the application has not been installed by the administrator of the tenant or consented to by any \
                 user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        },
        Case {
            name: "wrong secret",
            tenant: None,
            form: base(&[("client_id", &id), ("client_secret", "not-the-secret"), ("scope", GRAPH_DEFAULT)]),
            status: 401,
            error: "invalid_client",
            code: 7000215,
            text: format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret \
                 value, not the client secret ID, for a secret added to app '{id}'."
            ),
        },
        Case {
            name: "expired secret",
            tenant: None,
            form: base(&[("client_id", &expired_id), ("client_secret", &expired_secret), ("scope", GRAPH_DEFAULT)]),
            status: 401,
            error: "invalid_client",
            code: 7000222,
            text: format!("The provided client secret keys for app '{expired_id}' are expired."),
        },
        Case {
            name: "no credential",
            tenant: None,
            form: base(&[("client_id", &id), ("scope", GRAPH_DEFAULT)]),
            status: 401,
            error: "invalid_client",
            code: 7000216,
            text: "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.".into(),
        },
        Case {
            name: "named permission instead of /.default",
            tenant: None,
            form: ok("https://graph.microsoft.com/User.Read"),
            status: 400,
            error: "invalid_scope",
            code: 1002012,
            text: "The provided value for scope https://graph.microsoft.com/User.Read is not valid. Client credential \
                   flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
                .into(),
        },
        Case {
            name: "double-encoded scope",
            tenant: None,
            form: ok("https%3A%2F%2Fgraph.microsoft.com%2F.default"),
            status: 400,
            error: "invalid_scope",
            code: 1002012,
            text: "is not valid. Client credential flows must have a scope value with /.default".into(),
        },
        Case {
            name: "several resources",
            tenant: None,
            form: ok("https://graph.microsoft.com/.default https://management.azure.com/.default"),
            status: 400,
            error: "invalid_scope",
            code: 700022,
            text: "contains more than one resource".into(),
        },
        Case {
            name: "unknown resource",
            tenant: None,
            form: ok("https://api.fabrikam.com/.default"),
            status: 400,
            error: "invalid_resource",
            code: 500011,
            text: "The resource principal named https://api.fabrikam.com was not found in the tenant named Contoso.".into(),
        },
        Case {
            name: "malformed scope",
            tenant: None,
            form: ok("/.default"),
            status: 400,
            error: "invalid_scope",
            code: 70011,
            text: "The provided value for the input parameter 'scope' is not valid.".into(),
        },
        Case {
            name: "unsupported grant type",
            tenant: None,
            form: vec![("grant_type", "magic".into()), ("client_id", id.clone())],
            status: 400,
            error: "unsupported_grant_type",
            code: 70003,
            text: "The app requested an unsupported grant type 'magic'.".into(),
        },
        Case {
            name: "missing grant_type",
            tenant: None,
            form: vec![("client_id", id.clone()), ("scope", GRAPH_DEFAULT.into())],
            status: 400,
            error: "invalid_request",
            code: 900144,
            text: "The request body must contain the following parameter: 'grant_type'.".into(),
        },
        Case {
            name: "missing client_id",
            tenant: None,
            form: base(&[("client_secret", &secret), ("scope", GRAPH_DEFAULT)]),
            status: 400,
            error: "invalid_request",
            code: 900144,
            text: "The request body must contain the following parameter: 'client_id'.".into(),
        },
        Case {
            name: "missing scope",
            tenant: None,
            form: base(&[("client_id", &id), ("client_secret", &secret)]),
            status: 400,
            error: "invalid_request",
            code: 900144,
            text: "The request body must contain the following parameter: 'scope'.".into(),
        },
    ];
    for (i, case) in cases.iter().enumerate() {
        let url = match case.tenant {
            Some(t) => format!("{}/{t}/oauth2/v2.0/token", emu.https_url()),
            None => token_url(&emu),
        };
        let correlation = format!("00000000-0000-4000-8000-{i:012}");
        let resp = http
            .post(url)
            .header("client-request-id", &correlation)
            .form(&case.form)
            .send()
            .await
            .unwrap();
        let body = assert_aad_error(resp, case.status, case.error, case.code).await;
        let description = body["error_description"].as_str().unwrap();
        assert!(description.contains(&case.text), "{}: {description}", case.name);
        assert_eq!(body["correlation_id"], correlation.as_str(), "{}", case.name);
        assert!(
            !description.contains(&secret),
            "{}: never echo secrets",
            case.name
        );
    }
}

#[tokio::test]
async fn correlation_ids_are_echoed_or_generated_and_get_is_refused() {
    let emu = start().await;
    let http = client(&emu);
    let (id, _) = creds(&emu, "daemon");
    // No client-request-id: a fresh GUID, also in the response header.
    let resp = http
        .post(token_url(&emu))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("scope", GRAPH_DEFAULT),
        ])
        .send()
        .await
        .unwrap();
    let body = assert_aad_error(resp, 401, "invalid_client", 7000216).await;
    assert!(uuid::Uuid::parse_str(body["correlation_id"].as_str().unwrap()).is_ok());
    assert_ne!(body["correlation_id"], body["trace_id"]);

    // MSAL Node puts client-request-id into the form body.
    let resp = http
        .post(token_url(&emu))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("scope", GRAPH_DEFAULT),
            ("client-request-id", "abcdef01-2345-4678-89ab-cdef01234567"),
        ])
        .send()
        .await
        .unwrap();
    let body = assert_aad_error(resp, 401, "invalid_client", 7000216).await;
    assert_eq!(body["correlation_id"], "abcdef01-2345-4678-89ab-cdef01234567");

    let resp = http.get(token_url(&emu)).send().await.unwrap();
    let body = assert_aad_error(resp, 400, "invalid_request", 900561).await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("Received a GET request.")
    );
}

#[tokio::test]
async fn the_description_lists_everything_and_is_private() {
    let emu = start().await;
    let d = emu.description();
    assert_eq!(d.version, 1);
    assert_eq!(d.https_url, emu.https_url());
    assert_eq!(d.authority, emu.authority());
    assert_eq!(d.authority_host, emu.https_url());
    assert_eq!(d.graph_base_url, emu.graph_base());
    assert_eq!(d.ca_file, emu.ca_path().display().to_string());
    let dbg = format!("{d:?} {:?}", emu.directory());
    let t = &d.tenants[0];
    assert_eq!(t.id, DEFAULT_TENANT_ID);
    assert_eq!(t.users.len(), emu.directory().tenants[0].users.len());
    assert!(t.users.len() > 16, "demo, sample, flagged and federated users");
    let demo = d.demo_user.as_ref().expect("the sample user");
    assert_eq!(demo.username, entra_emulator::DEMO_USERNAME);
    assert_eq!(demo.password, entra_emulator::DEMO_PASSWORD);
    assert!(
        !dbg.contains(entra_emulator::DEMO_PASSWORD),
        "Debug never shows the demo password"
    );
    assert_eq!(d.verification_uri, emu.verification_uri());
    assert_eq!(t.federated_domains, ["fabrikam.com"]);
    let mfa = t
        .users
        .iter()
        .find(|u| u.user_principal_name.starts_with("mfa.user@"))
        .unwrap();
    assert_eq!(mfa.flags, ["mfa_required"]);
    let device = t.apps.iter().find(|a| a.name == "device-code").unwrap();
    assert!(device.is_fallback_public_client);
    assert_eq!(device.sign_in_audience, "AzureADMultipleOrgs");
    assert_eq!(device.delegated_permissions, ["User.Read", "User.ReadBasic.All"]);
    let daemon = t.apps.iter().find(|a| a.name == "daemon").unwrap();
    let secret = daemon.client_secret.clone().expect("valid secret");
    assert_eq!(secret, emu.app("daemon").unwrap().secrets[0].value);
    assert!(!dbg.contains(&secret), "Debug never shows secrets");
    assert!(!dbg.contains(&t.users[0].password), "Debug never shows passwords");
    let expired = t.apps.iter().find(|a| a.name == "expired-secret").unwrap();
    assert!(expired.client_secret.is_none());
    assert!(expired.secrets[0].expired);
    assert!(
        t.apps
            .iter()
            .find(|a| a.name == "no-permissions")
            .unwrap()
            .roles
            .is_empty()
    );

    let dir = std::env::temp_dir().join(format!("emu-desc-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("emulator.json");
    emu.write_description(&path).unwrap();
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["authority"], emu.authority());
    assert!(json["http_url"].is_null());
    assert_eq!(json["tenants"][0]["apps"][0]["client_secret"], secret.as_str());
    assert!(json["tenants"][0]["users"][0]["password"].is_string());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}
