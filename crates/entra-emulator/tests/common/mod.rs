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

// ---- client assertions (certificate credentials) ----

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

pub fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// base64url without padding (what the emulator's `DevCertificate::x5t` returns).
pub fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// base64url with padding, as MSAL Python writes `x5t` / `x5t#S256`.
pub fn b64url_padded(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE.encode(data)
}

pub fn sha1(data: &[u8]) -> Vec<u8> {
    use sha1::Digest as _;
    sha1::Sha1::digest(data).to_vec()
}

pub fn sha256(data: &[u8]) -> Vec<u8> {
    use sha2::Digest as _;
    sha2::Sha256::digest(data).to_vec()
}

/// Signs `header` (whose `alg` decides the algorithm: RS256, RS384, RS512, PS256; anything else gets a
/// junk signature) and `claims` into a compact JWS.
pub fn sign_jwt(key: &rsa::RsaPrivateKey, header: &Value, claims: &Value) -> String {
    sign_jwt_with_pss_salt(key, header, claims, 32)
}

/// Like [`sign_jwt`], with an explicit PSS salt length for PS256.
pub fn sign_jwt_with_pss_salt(
    key: &rsa::RsaPrivateKey,
    header: &Value,
    claims: &Value,
    salt: usize,
) -> String {
    use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _, Signer as _};
    use rsa::{pkcs1v15, pss};
    let input = format!(
        "{}.{}",
        b64url(&serde_json::to_vec(header).unwrap()),
        b64url(&serde_json::to_vec(claims).unwrap())
    );
    let msg = input.as_bytes();
    let signature = match header["alg"].as_str().unwrap_or_default() {
        "RS256" => pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone())
            .sign(msg)
            .to_vec(),
        "RS384" => pkcs1v15::SigningKey::<sha2::Sha384>::new(key.clone())
            .sign(msg)
            .to_vec(),
        "RS512" => pkcs1v15::SigningKey::<sha2::Sha512>::new(key.clone())
            .sign(msg)
            .to_vec(),
        "PS256" => pss::SigningKey::<sha2::Sha256>::new_with_salt_len(key.clone(), salt)
            .sign_with_rng(&mut rand::rngs::OsRng, msg)
            .to_vec(),
        "none" => Vec::new(),
        _ => vec![7u8; 64],
    };
    format!("{input}.{}", b64url(&signature))
}

/// The claims MSAL Python sends (floats, no `nbf`), with a fresh `jti`.
pub fn msal_python_claims(client_id: &str, aud: &str) -> Value {
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as f64 / 1e9;
    serde_json::json!({
        "aud": aud,
        "iss": client_id,
        "sub": client_id,
        "exp": now + 600.0,
        "iat": now,
        "jti": uuid::Uuid::new_v4().to_string(),
    })
}

/// A client-credentials request with a client assertion, in MSAL Python's field order.
pub async fn assertion_request(
    http: &reqwest::Client,
    url: &str,
    client_id: &str,
    assertion: &str,
) -> reqwest::Response {
    http.post(url)
        .form(&[
            ("client_id", client_id),
            ("grant_type", "client_credentials"),
            ("client_assertion", assertion),
            ("client_info", "1"),
            ("client_assertion_type", JWT_BEARER),
            ("scope", GRAPH_DEFAULT),
        ])
        .send()
        .await
        .expect("token request")
}

// ---- user flows (device code, username/password, refresh) ----

pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// What MSAL sends for a Graph `User.Read` request (decorated, sorted).
pub const USER_SCOPES: &str = "User.Read offline_access openid profile";

pub fn app_id(emu: &Emulator, app: &str) -> String {
    emu.app(app).expect("seeded app").app_id
}

/// A user of the default tenant by user principal name.
pub fn user(emu: &Emulator, upn: &str) -> entra_emulator::User {
    emu.directory().tenants[0].user(upn).expect("seeded user").clone()
}

pub async fn post_form(http: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
    http.post(url).form(form).send().await.expect("request")
}

/// `POST {https}/{segment}/oauth2/v2.0/devicecode`.
pub async fn devicecode(
    emu: &Emulator,
    http: &reqwest::Client,
    segment: &str,
    client_id: &str,
    scope: &str,
) -> reqwest::Response {
    let url = format!("{}/{segment}/oauth2/v2.0/devicecode", emu.https_url());
    post_form(http, &url, &[("client_id", client_id), ("scope", scope)]).await
}

/// A device code for the seeded `device-code` app on the default tenant: `(device_code, user_code)`.
pub async fn new_device_code(emu: &Emulator, http: &reqwest::Client) -> (String, String) {
    let resp = devicecode(
        emu,
        http,
        &emu.tenant_id(),
        &app_id(emu, "device-code"),
        USER_SCOPES,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    (
        body["device_code"].as_str().unwrap().to_owned(),
        body["user_code"].as_str().unwrap().to_owned(),
    )
}

/// One poll as MSAL Python sends it (both `code` and `device_code`, `client_info=1`).
pub async fn poll(
    emu: &Emulator,
    http: &reqwest::Client,
    segment: &str,
    client_id: &str,
    device_code: &str,
) -> reqwest::Response {
    let url = format!("{}/{segment}/oauth2/v2.0/token", emu.https_url());
    post_form(
        http,
        &url,
        &[
            ("client_id", client_id),
            ("grant_type", DEVICE_GRANT),
            ("client_info", "1"),
            ("code", device_code),
            ("device_code", device_code),
        ],
    )
    .await
}

/// A username/password request on `segment`, as MSAL sends it.
pub async fn ropc(
    emu: &Emulator,
    http: &reqwest::Client,
    segment: &str,
    client_id: &str,
    username: &str,
    password: &str,
    scope: &str,
) -> reqwest::Response {
    let url = format!("{}/{segment}/oauth2/v2.0/token", emu.https_url());
    post_form(
        http,
        &url,
        &[
            ("client_id", client_id),
            ("grant_type", "password"),
            ("client_info", "1"),
            ("username", username),
            ("password", password),
            ("scope", scope),
        ],
    )
    .await
}

/// Checks a user-token response for `user` and `client_id` with `User.Read offline_access
/// openid profile` requested and `client_info=1`; returns `(access claims, id claims)`.
pub fn assert_user_tokens(
    body: &Value,
    emu: &Emulator,
    client_id: &str,
    user: &entra_emulator::User,
) -> (Value, Value) {
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    for key in [
        "token_type",
        "scope",
        "expires_in",
        "ext_expires_in",
        "access_token",
        "refresh_token",
        "id_token",
        "client_info",
    ] {
        assert!(keys.iter().any(|k| *k == key), "{key} missing in {body}");
    }
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "User.Read profile openid");
    let expires_in = body["expires_in"].as_u64().expect("numeric expires_in");
    assert!((3600..=5400).contains(&expires_in), "{expires_in}");
    assert_eq!(body["ext_expires_in"], body["expires_in"]);
    assert!(body["refresh_token"].as_str().unwrap().starts_with("0.A"));
    let tid = emu.tenant_id();
    let (header, at) = decode_jwt(body["access_token"].as_str().unwrap());
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["x5t"], header["kid"]);
    assert_eq!(at["aud"], entra_emulator::GRAPH_APP_ID);
    assert_eq!(at["iss"], format!("https://sts.windows.net/{tid}/"));
    assert_eq!(at["scp"], "User.Read profile openid");
    assert_eq!(at["upn"], user.user_principal_name.as_str());
    assert_eq!(at["unique_name"], user.user_principal_name.as_str());
    assert_eq!(at["name"], user.display_name.as_str());
    assert_eq!(at["oid"], user.id.as_str());
    assert_eq!(at["tid"], tid.as_str());
    assert_eq!(at["idtyp"], "user");
    assert_eq!(at["appid"], client_id);
    assert_eq!(at["appidacr"], "0");
    assert_eq!(at["ver"], "1.0");
    assert_eq!(at["sub"].as_str().unwrap().len(), 43);
    assert_eq!(
        at["exp"].as_i64().unwrap() - at["iat"].as_i64().unwrap(),
        expires_in as i64 + 300
    );
    let (id_header, id) = decode_jwt(body["id_token"].as_str().unwrap());
    assert!(id_header.get("x5t").is_none(), "v2 tokens have no x5t");
    assert_eq!(id["aud"], client_id);
    assert_eq!(id["iss"], format!("{}/{tid}/v2.0", emu.https_url()));
    assert_eq!(id["ver"], "2.0");
    assert_eq!(id["tid"], tid.as_str());
    assert_eq!(id["oid"], user.id.as_str());
    assert_eq!(id["name"], user.display_name.as_str());
    assert_eq!(id["preferred_username"], user.user_principal_name.as_str());
    let sub = id["sub"].as_str().unwrap();
    assert_eq!(sub.len(), 43);
    assert_ne!(sub, at["sub"].as_str().unwrap(), "pairwise: differs per audience");
    let info = body["client_info"].as_str().unwrap();
    assert!(!info.contains('='), "no padding");
    let info = b64url_json(info);
    assert_eq!(info, serde_json::json!({"uid": user.id, "utid": tid}));
    (at, id)
}
