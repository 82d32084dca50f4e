//! Helpers shared by the emulator's integration tests: real HTTPS clients trusting the emulator's CA,
//! token acquisition, JWT decoding and the AADSTS error-shape assertions.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use entra_emulator::Emulator;
use serde_json::Value;

pub const GRAPH_DEFAULT: &str = "https://graph.microsoft.com/.default";

pub async fn start() -> Emulator {
    Emulator::builder().start().await.expect("emulator starts")
}

/// A reqwest client that trusts only the emulator's CA and ignores proxy settings.
pub fn client(emu: &Emulator) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(emu.ca_pem().as_bytes()).expect("CA PEM parses");
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .no_proxy()
        .build()
        .expect("client")
}

/// `(client_id, first secret value)` of a seeded app.
pub fn creds(emu: &Emulator, app: &str) -> (String, String) {
    let app = emu.app(app).expect("seeded app");
    (app.app_id.clone(), app.secrets[0].value.clone())
}

pub fn token_url(emu: &Emulator) -> String {
    format!("{}/oauth2/v2.0/token", emu.authority())
}

/// Gets an app-only Graph token for a seeded app.
pub async fn token(emu: &Emulator, http: &reqwest::Client, app: &str) -> String {
    let (id, secret) = creds(emu, app);
    let resp = http
        .post(token_url(emu))
        .form(&[
            ("client_id", id.as_str()),
            ("grant_type", "client_credentials"),
            ("client_secret", secret.as_str()),
            ("scope", GRAPH_DEFAULT),
        ])
        .send()
        .await
        .expect("token request");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    body["access_token"].as_str().expect("access_token").to_owned()
}

pub fn b64url_json(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("json")
}

/// `(header, claims)` of a compact JWS.
pub fn decode_jwt(token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "three parts");
    (b64url_json(parts[0]), b64url_json(parts[1]))
}

/// Checks the full AADSTS error shape and returns the body.
pub async fn assert_aad_error(resp: reqwest::Response, status: u16, error: &str, code: u64) -> Value {
    assert_eq!(resp.status().as_u16(), status, "HTTP status");
    let headers = resp.headers().clone();
    assert_eq!(headers["content-type"], "application/json; charset=utf-8");
    assert!(headers["cache-control"].to_str().unwrap().contains("no-store"));
    let body: Value = resp.json().await.expect("json error body");
    let obj = body.as_object().expect("object");
    for member in [
        "error",
        "error_description",
        "error_codes",
        "timestamp",
        "trace_id",
        "correlation_id",
        "error_uri",
    ] {
        assert!(obj.contains_key(member), "missing {member} in {body}");
    }
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], serde_json::json!([code]), "{body}");
    assert_eq!(
        body["error_uri"],
        format!("https://login.microsoftonline.com/error?code={code}")
    );
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.starts_with(&format!("AADSTS{code}: ")),
        "{description}"
    );
    let trailer = format!(
        "\r\nTrace ID: {}\r\nCorrelation ID: {}\r\nTimestamp: {}",
        body["trace_id"].as_str().unwrap(),
        body["correlation_id"].as_str().unwrap(),
        body["timestamp"].as_str().unwrap()
    );
    assert!(description.ends_with(&trailer), "trailer of {description:?}");
    let ts = body["timestamp"].as_str().unwrap();
    assert_eq!(ts.len(), "2024-01-02 03:04:05Z".len(), "{ts}");
    assert_eq!(&ts[10..11], " ");
    assert!(ts.ends_with('Z'));
    assert_eq!(
        headers["x-ms-request-id"].to_str().unwrap(),
        body["trace_id"].as_str().unwrap()
    );
    assert_eq!(
        headers["client-request-id"].to_str().unwrap(),
        body["correlation_id"].as_str().unwrap()
    );
    body
}

/// Checks Graph's error envelope and returns `(code, message)`.
pub async fn assert_graph_error(
    resp: reqwest::Response,
    status: u16,
    code: &str,
) -> (Value, reqwest::header::HeaderMap) {
    assert_eq!(resp.status().as_u16(), status, "HTTP status");
    let headers = resp.headers().clone();
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], code, "{body}");
    let inner = &body["error"]["innerError"];
    for member in ["date", "request-id", "client-request-id"] {
        assert!(
            inner.get(member).is_some(),
            "innerError.{member} missing in {body}"
        );
    }
    assert_eq!(
        headers["request-id"].to_str().unwrap(),
        inner["request-id"].as_str().unwrap()
    );
    (body, headers)
}
