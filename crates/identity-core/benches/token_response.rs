//! Parsing a token endpoint answer into the crate's token type: the app-only shape (client credentials) and
//! the user shape (refresh token, ID token, client_info), each with realistic sizes, then validating it and
//! turning it into the cache record, as `ConfidentialClient` does after every token request.
//! Run with `cargo bench -p identity-core --bench token_response`.
//!
//! The response type is crate-private, so this bench compiles `src/token.rs` itself (below, with the few
//! crate paths it imports pointed at the public items): the code measured is the crate's own, unchanged.

#![allow(clippy::expect_used, reason = "a benchmark stops at the first failure")]

use std::hint::black_box;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use identity_core::SecretToken;
use identity_core::{CachedAccessToken, now_secs};

// The crate paths `src/token.rs` imports, pointed at their public re-exports.
mod account {
    pub use identity_core::Account;
}
mod cache {
    pub use identity_core::CachedAccessToken;
}
mod error {
    pub use identity_core::{ConfigError, HttpError};
}
mod secret {
    pub use identity_core::SecretToken;
}

#[allow(
    dead_code,
    unused_imports,
    unreachable_pub,
    missing_docs,
    reason = "the module is compiled here only for its response type"
)]
#[path = "../src/token.rs"]
mod token;

#[allow(dead_code, reason = "the module is compiled here only for the token parser")]
#[path = "../src/json.rs"]
mod json;

use token::parse_token_response;

const TOKEN_URL: &str = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token";

/// A JWT of the usual size: base64url header and claims, and an RS256 signature's worth of base64url.
fn jwt(claims: serde_json::Value) -> String {
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5t": "JDNa_4i4r7FgigL3sHIlI3xV-IU",
                                    "kid": "JDNa_4i4r7FgigL3sHIlI3xV-IU"});
    let part = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.{}",
        part(&header),
        part(&claims),
        URL_SAFE_NO_PAD.encode([7u8; 256])
    )
}

fn app_only() -> String {
    let at = jwt(serde_json::json!({
        "aud": "https://graph.microsoft.com", "iss": "https://sts.windows.net/aaaabbbb-0000-cccc-1111-dddd2222eeee/",
        "iat": 1732150000, "nbf": 1732150000, "exp": 1732153899, "aio": "k2BgYFj0eGv4bW9yZ3ZkZWZhdWx0",
        "app_displayname": "daemon-console", "appid": "11112222-bbbb-3333-cccc-4444dddd5555", "appidacr": "1",
        "idp": "https://sts.windows.net/aaaabbbb-0000-cccc-1111-dddd2222eeee/", "idtyp": "app",
        "oid": "00001111-aaaa-2222-bbbb-3333cccc4444", "rh": "1.AXkA7dQ0Xq4nZUi0Yz4v3cYkAAMAAAAAAAAAwAAAAAAAAAB5AAA.",
        "roles": ["User.Read.All", "Application.Read.All"], "sub": "00001111-aaaa-2222-bbbb-3333cccc4444",
        "tenant_region_scope": "EU", "tid": "aaaabbbb-0000-cccc-1111-dddd2222eeee",
        "uti": "v6kCzq1Ezk2q6s3b7w1xAA", "ver": "1.0", "wids": ["0997a1d0-0d1d-4acb-b408-d5ca73121e90"],
        "xms_tcdt": 1600000000, "xms_idrel": "7 16"
    }));
    serde_json::json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": at})
        .to_string()
}

fn user() -> String {
    let at = jwt(serde_json::json!({
        "aud": "00000003-0000-0000-c000-000000000000", "iss": "https://sts.windows.net/aaaabbbb-0000-cccc-1111-dddd2222eeee/",
        "iat": 1732150000, "nbf": 1732150000, "exp": 1732154549, "acct": 0, "acr": "1",
        "aio": "AVQAq/8YAAAAm3x0dGVzdGF1dGhkYXRhdGhhdGlzbG9uZ2Vub3VnaA==", "amr": ["pwd", "mfa"],
        "app_displayname": "device-code-console", "appid": "22223333-cccc-4444-dddd-5555eeee6666", "appidacr": "0",
        "family_name": "Vance", "given_name": "Adele", "idtyp": "user", "ipaddr": "203.0.113.7",
        "name": "Adele Vance", "oid": "56785678-5678-5678-5678-567856785678", "platf": "14",
        "puid": "10032001A2B3C4D5", "rh": "0.AXkA7dQ0Xq4nZUi0Yz4v3cYkAAMAAAAAAAAAwAAAAAAAAAB5AGE.",
        "scp": "openid profile User.Read email", "signin_state": ["kmsi"], "sub": "pV3cKx3oPaA1vUqz8m9bEwq0xN2f5hT6rY7uI8oP9aQ",
        "tenant_region_scope": "EU", "tid": "aaaabbbb-0000-cccc-1111-dddd2222eeee",
        "unique_name": "AdeleV@contoso.onmicrosoft.com", "upn": "AdeleV@contoso.onmicrosoft.com",
        "uti": "AbCdEfGhIjKlMnOpQrStAA", "ver": "1.0", "wids": ["b79fbf4d-3ef9-4689-8143-76b194e85509"],
        "xms_st": {"sub": "q1w2e3r4t5y6u7i8o9p0a1s2d3f4g5h6j7k8l9z0x1c"}, "xms_tcdt": 1600000000
    }));
    let id_token = jwt(serde_json::json!({
        "aud": "22223333-cccc-4444-dddd-5555eeee6666",
        "iss": "https://login.microsoftonline.com/aaaabbbb-0000-cccc-1111-dddd2222eeee/v2.0",
        "iat": 1732150000, "nbf": 1732150000, "exp": 1732153900, "name": "Adele Vance",
        "oid": "56785678-5678-5678-5678-567856785678", "preferred_username": "AdeleV@contoso.onmicrosoft.com",
        "rh": "0.AXkA7dQ0Xq4nZUi0Yz4v3cYkAAMAAAAAAAAAwAAAAAAAAAB5AGE.", "sub": "7x1r2T3y4U5i6O7p8A9s0D1f2G3h4J5k6L7z8X9c0V1",
        "tid": "aaaabbbb-0000-cccc-1111-dddd2222eeee", "uti": "AbCdEfGhIjKlMnOpQrStAA", "ver": "2.0"
    }));
    // Refresh tokens are opaque to clients; about 1.1 KB of base64url-like text.
    let refresh_token = format!(
        "1.AXkA7dQ0Xq4nZUi0Yz4v3cYkAAMAAAAAAAAAwAAAAAAAAAB5AGE.{}",
        "AgABAwEAAADW6jl31mB3T7ugrWTT8pFeAwDs_wUA9P_".repeat(25)
    );
    let client_info = URL_SAFE_NO_PAD.encode(
        r#"{"uid":"56785678-5678-5678-5678-567856785678","utid":"aaaabbbb-0000-cccc-1111-dddd2222eeee"}"#,
    );
    serde_json::json!({
        "token_type": "Bearer", "scope": "email openid profile https://graph.microsoft.com/User.Read",
        "expires_in": 4549, "ext_expires_in": 4549, "access_token": at, "refresh_token": refresh_token,
        "id_token": id_token, "client_info": client_info
    })
    .to_string()
}

/// What the client does with a token endpoint answer: parse, validate, make the cache record.
fn parse(body: &[u8]) -> CachedAccessToken {
    let response = parse_token_response(body, TOKEN_URL).expect("a valid token response");
    let scopes = response
        .scope
        .map(|s| s.into_iter().map(|s| s.to_string()).collect())
        .unwrap_or_else(|| vec!["https://graph.microsoft.com/.default".to_owned()]);
    CachedAccessToken::new(
        SecretToken::new(response.access_token.into_secret()),
        response.token_type.0.into(),
        scopes,
        now_secs(),
        response.expires_in.unwrap_or(600),
        response.ext_expires_in,
        response.refresh_in,
    )
}

fn responses(c: &mut Criterion) {
    let mut group = c.benchmark_group("token response");
    for (name, body) in [("app-only", app_only()), ("user", user())] {
        println!("{name} token response: {} bytes", body.len());
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(format!("parse + validate + cache record ({name})"), |b| {
            b.iter(|| black_box(parse(black_box(body.as_bytes()))))
        });
    }
    group.finish();
}

criterion_group!(benches, responses);
criterion_main!(benches);
