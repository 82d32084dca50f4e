//! Discovery, keys, instance discovery, user realm and the server itself, over real HTTPS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{assert_aad_error, client, start};
use entra_emulator::{DEFAULT_TENANT_DOMAIN, DEFAULT_TENANT_ID, Emulator, Endpoint};
use serde_json::Value;
use sha1::{Digest as _, Sha1};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

async fn get_json(http: &reqwest::Client, url: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let resp = http.get(url).send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.expect("json"))
}

#[tokio::test]
async fn guid_and_domain_tenants_publish_guid_urls_on_the_emulator_host() {
    let emu = start().await;
    let http = client(&emu);
    let base = emu.https_url();
    assert!(base.starts_with("https://127.0.0.1:") && !base.ends_with('/'));
    assert_eq!(emu.authority(), format!("{base}/{DEFAULT_TENANT_ID}"));
    assert_eq!(emu.tenant_id(), DEFAULT_TENANT_ID);
    assert_eq!(emu.tenant_domain(), DEFAULT_TENANT_DOMAIN);
    assert_eq!(emu.graph_base(), format!("{base}/v1.0"));

    for tenant in [
        DEFAULT_TENANT_ID,
        DEFAULT_TENANT_DOMAIN,
        "CONTOSO.onmicrosoft.com",
    ] {
        let (status, headers, doc) = get_json(
            &http,
            &format!("{base}/{tenant}/v2.0/.well-known/openid-configuration"),
        )
        .await;
        assert_eq!(status, 200);
        let t = DEFAULT_TENANT_ID;
        assert_eq!(doc["token_endpoint"], format!("{base}/{t}/oauth2/v2.0/token"));
        assert_eq!(
            doc["authorization_endpoint"],
            format!("{base}/{t}/oauth2/v2.0/authorize")
        );
        assert_eq!(
            doc["device_authorization_endpoint"],
            format!("{base}/{t}/oauth2/v2.0/devicecode")
        );
        assert_eq!(doc["jwks_uri"], format!("{base}/{t}/discovery/v2.0/keys"));
        assert_eq!(doc["issuer"], format!("{base}/{t}/v2.0"));
        assert_eq!(doc["tenant_region_scope"], "WW");
        assert_eq!(
            doc["id_token_signing_alg_values_supported"],
            serde_json::json!(["RS256"])
        );
        assert!(
            doc["token_endpoint_auth_methods_supported"]
                .as_array()
                .unwrap()
                .contains(&"client_secret_basic".into())
        );
        assert_eq!(headers["cache-control"], "max-age=86400, private");
        assert_eq!(headers["access-control-allow-origin"], "*");
        assert!(headers.contains_key("x-ms-request-id"));
    }

    // The v1 document: issuer of Graph (v1) access tokens.
    let (status, _, v1) = get_json(
        &http,
        &format!("{base}/{DEFAULT_TENANT_DOMAIN}/.well-known/openid-configuration"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        v1["issuer"],
        format!("https://sts.windows.net/{DEFAULT_TENANT_ID}/")
    );
    assert_eq!(
        v1["jwks_uri"],
        format!("{base}/{DEFAULT_TENANT_ID}/discovery/keys")
    );
    assert_eq!(
        v1["token_endpoint"],
        format!("{base}/{DEFAULT_TENANT_ID}/oauth2/token")
    );
}

#[tokio::test]
async fn multi_tenant_segments_keep_their_name_and_issuer_template() {
    let emu = start().await;
    let http = client(&emu);
    let base = emu.https_url();
    for seg in ["common", "organizations"] {
        let (status, _, doc) = get_json(
            &http,
            &format!("{base}/{seg}/v2.0/.well-known/openid-configuration"),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(doc["token_endpoint"], format!("{base}/{seg}/oauth2/v2.0/token"));
        assert_eq!(doc["jwks_uri"], format!("{base}/{seg}/discovery/v2.0/keys"));
        assert_eq!(doc["issuer"], format!("{base}/{{tenantid}}/v2.0"));
        assert!(doc["tenant_region_scope"].is_null());
    }
    let (_, _, doc) = get_json(
        &http,
        &format!("{base}/consumers/v2.0/.well-known/openid-configuration"),
    )
    .await;
    assert_eq!(
        doc["token_endpoint"],
        format!("{base}/consumers/oauth2/v2.0/token")
    );
    assert_eq!(
        doc["issuer"],
        format!("{base}/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0")
    );
}

#[tokio::test]
async fn unknown_and_invalid_tenants_get_the_real_errors() {
    let emu = start().await;
    let http = client(&emu);
    let base = emu.https_url();
    for unknown in [
        "fabrikam.onmicrosoft.com",
        "contoso",
        "11111111-2222-3333-4444-555555555555",
    ] {
        let resp = http
            .get(format!("{base}/{unknown}/v2.0/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap();
        let body = assert_aad_error(resp, 400, "invalid_tenant", 90002).await;
        let d = body["error_description"].as_str().unwrap();
        assert!(
            d.starts_with(&format!("AADSTS90002: Tenant '{unknown}' not found.")),
            "{d}"
        );
    }
    let resp = http
        .get(format!(
            "{base}/not_a_tenant/v2.0/.well-known/openid-configuration"
        ))
        .send()
        .await
        .unwrap();
    let body = assert_aad_error(resp, 400, "invalid_request", 900023).await;
    assert!(body["error_description"].as_str().unwrap().contains(
        "Specified tenant identifier 'not_a_tenant' is neither a valid DNS name, nor a valid external domain."
    ));
    let resp = http
        .get(format!("{base}/nowhere.example/discovery/v2.0/keys"))
        .send()
        .await
        .unwrap();
    assert_aad_error(resp, 400, "invalid_tenant", 90002).await;
}

#[tokio::test]
async fn jwks_publishes_the_signing_key_with_sha1_thumbprint_ids() {
    let emu = start().await;
    let http = client(&emu);
    let base = emu.https_url();
    let (status, _, v2) = get_json(&http, &format!("{}/discovery/v2.0/keys", emu.authority())).await;
    assert_eq!(status, 200);
    let keys = v2["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let k = &keys[0];
    assert_eq!(k["kty"], "RSA");
    assert_eq!(k["use"], "sig");
    assert_eq!(k["e"], "AQAB");
    assert_eq!(k["kid"], k["x5t"]);
    assert_eq!(
        URL_SAFE_NO_PAD.decode(k["n"].as_str().unwrap()).unwrap().len(),
        256,
        "RSA 2048"
    );
    let der = STANDARD.decode(k["x5c"][0].as_str().unwrap()).unwrap();
    assert_eq!(k["x5t"], URL_SAFE_NO_PAD.encode(Sha1::digest(&der)));
    assert_eq!(k["issuer"], format!("{base}/{DEFAULT_TENANT_ID}/v2.0"));

    let (_, _, common) = get_json(&http, &format!("{base}/common/discovery/v2.0/keys")).await;
    assert_eq!(common["keys"][0]["issuer"], format!("{base}/{{tenantid}}/v2.0"));
    assert_eq!(common["keys"][0]["kid"], k["kid"]);

    let (status, _, v1) = get_json(&http, &format!("{base}/{DEFAULT_TENANT_DOMAIN}/discovery/keys")).await;
    assert_eq!(status, 200);
    assert_eq!(v1["keys"][0]["kid"], k["kid"]);
    assert!(v1["keys"][0].get("issuer").is_none());
}

#[tokio::test]
async fn instance_discovery_knows_the_clouds_and_the_emulator_itself() {
    let emu = start().await;
    let http = client(&emu);
    let base = emu.https_url();
    let host = base.trim_start_matches("https://").to_owned();

    // MSAL Python drops the port from authorization_endpoint and sends api-version 1.0.
    let url = format!(
        "{base}/common/discovery/instance?authorization_endpoint=https://127.0.0.1/{DEFAULT_TENANT_ID}/oauth2/v2.0/authorize&api-version=1.0"
    );
    let (status, _, body) = get_json(&http, &url).await;
    assert_eq!(status, 200);
    assert_eq!(body["api-version"], "1.0");
    assert_eq!(
        body["tenant_discovery_endpoint"],
        format!("{base}/{DEFAULT_TENANT_ID}/v2.0/.well-known/openid-configuration")
    );
    let metadata = body["metadata"].as_array().unwrap();
    let own = metadata
        .iter()
        .find(|m| m["preferred_network"] == host.as_str())
        .expect("own entry");
    let aliases: Vec<&str> = own["aliases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        aliases.contains(&host.as_str()) && aliases.contains(&"127.0.0.1"),
        "{aliases:?}"
    );
    assert!(metadata.iter().any(|m| {
        m["preferred_network"] == "login.microsoftonline.com"
            && m["aliases"]
                .as_array()
                .unwrap()
                .contains(&"sts.windows.net".into())
    }));

    // MSAL.NET: api-version 1.1 and a public-cloud authority.
    let url = format!(
        "{base}/common/discovery/instance?api-version=1.1&authorization_endpoint=https://login.microsoftonline.com/common/oauth2/authorize"
    );
    let (status, _, body) = get_json(&http, &url).await;
    assert_eq!(status, 200);
    assert_eq!(body["api-version"], "1.1");
    assert_eq!(
        body["tenant_discovery_endpoint"],
        "https://login.microsoftonline.com/common/.well-known/openid-configuration"
    );

    let url = format!(
        "{base}/common/discovery/instance?api-version=1.1&authorization_endpoint=https://login.example.com/common/oauth2/v2.0/authorize"
    );
    let resp = http.get(url).send().await.unwrap();
    let body = assert_aad_error(resp, 400, "invalid_instance", 50049).await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS50049: Unknown or invalid instance.")
    );
}

#[tokio::test]
async fn user_realm_is_managed_for_directory_domains_only() {
    let emu = start().await;
    let http = client(&emu);
    let base = emu.https_url();
    let (status, _, body) = get_json(
        &http,
        &format!("{base}/common/userrealm/AdeleV@contoso.onmicrosoft.com?api-version=1.0"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["account_type"], "Managed");
    assert_eq!(body["domain_name"], "contoso.onmicrosoft.com");
    assert_eq!(body["cloud_audience_urn"], "urn:federation:MicrosoftOnline");
    let (_, _, body) = get_json(
        &http,
        &format!("{base}/common/userrealm/someone@outlook.com?api-version=1.0"),
    )
    .await;
    assert_eq!(body["account_type"], "Unknown");
    assert_eq!(emu.request_counts().get(Endpoint::UserRealm), 2);
}

#[tokio::test]
async fn a_failed_handshake_does_not_stop_the_listener() {
    let emu = start().await;
    let addr = emu.https_url().trim_start_matches("https://").to_owned();
    // Plain-text garbage instead of a ClientHello, then an immediate hang-up.
    for _ in 0..3 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf).await;
        drop(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    // A client that does not trust the CA fails…
    let untrusting = reqwest::Client::builder()
        .use_rustls_tls()
        .no_proxy()
        .build()
        .unwrap();
    assert!(
        untrusting
            .get(format!(
                "{}/common/v2.0/.well-known/openid-configuration",
                emu.https_url()
            ))
            .send()
            .await
            .is_err()
    );
    // …and the server still answers.
    let (status, _, _) = get_json(
        &client(&emu),
        &format!("{}/v2.0/.well-known/openid-configuration", emu.authority()),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_certificate_is_valid_for_localhost_too_and_plain_http_is_optional() {
    let emu = Emulator::builder()
        .http_bind("127.0.0.1:0".parse().unwrap())
        .start()
        .await
        .unwrap();
    let port = emu.https_url().rsplit(':').next().unwrap().to_owned();
    let (status, _, doc) = get_json(
        &client(&emu),
        &format!("https://localhost:{port}/{DEFAULT_TENANT_ID}/v2.0/.well-known/openid-configuration"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        doc["token_endpoint"],
        format!("https://localhost:{port}/{DEFAULT_TENANT_ID}/oauth2/v2.0/token")
    );

    let http_url = emu.http_url().expect("http listener");
    assert!(http_url.starts_with("http://127.0.0.1:"));
    let plain = reqwest::Client::builder().no_proxy().build().unwrap();
    let (status, _, doc) = get_json(
        &plain,
        &format!("{http_url}/{DEFAULT_TENANT_ID}/v2.0/.well-known/openid-configuration"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        doc["token_endpoint"],
        format!("{http_url}/{DEFAULT_TENANT_ID}/oauth2/v2.0/token")
    );
    assert!(Emulator::builder().start().await.unwrap().http_url().is_none());
}

#[tokio::test]
async fn unknown_paths_are_404_and_counted_separately() {
    let emu = start().await;
    let resp = client(&emu)
        .get(format!("{}/favicon.ico", emu.https_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let counts = emu.request_counts();
    assert_eq!(counts.total(), 0);
    assert_eq!(counts.other(), 1);
}

#[tokio::test]
async fn the_ca_file_exists_while_running_and_the_temp_dir_goes_away_after() {
    let emu = start().await;
    let path = emu.ca_path().to_owned();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), emu.ca_pem());
    assert!(emu.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    emu.shutdown().await;
    assert!(!path.exists(), "temporary state is removed on shutdown");
}
