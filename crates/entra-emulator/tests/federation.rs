//! Workload identity federation on the emulator: its own token issuer (discovery document, JWKS that verifies
//! the service-account tokens it mints, a key distinct from the token-signing key), the seeded `workload` app
//! whose federated credential trusts it, the token endpoint accepting its tokens as client assertions, and each
//! refusal as the real service answers it (AADSTS70021, 700211, 700212, 700213, 50166, 7000272, 50013, 70023,
//! 700024); the projected token file and its rotation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{GRAPH_DEFAULT, assert_aad_error, b64url_json, client, decode_jwt, start, token_url};
use entra_emulator::{
    Emulator, Endpoint, FederatedIdentityCredential, TOKEN_EXCHANGE_AUDIENCE, WORKLOAD_SUBJECT, WorkloadToken,
};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier as _;
use rsa::{BigUint, RsaPublicKey};
use serde_json::Value;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

async fn exchange(emu: &Emulator, app: &str, assertion: &str) -> reqwest::Response {
    let client_id = emu.app(app).expect("seeded app").app_id;
    client(emu)
        .post(token_url(emu))
        .form(&[
            ("client_id", client_id.as_str()),
            ("grant_type", "client_credentials"),
            ("scope", GRAPH_DEFAULT),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
        ])
        .send()
        .await
        .expect("token request")
}

fn token(emu: &Emulator, token: &WorkloadToken) -> String {
    emu.workload_token(token).expect("minted")
}

fn description(body: &Value) -> &str {
    body["error_description"].as_str().unwrap()
}

#[tokio::test]
async fn the_issuer_publishes_discovery_and_keys_that_verify_its_tokens() {
    let emu = start().await;
    let http = client(&emu);
    let issuer = emu.workload_issuer();
    assert_eq!(issuer, format!("{}/workload-issuer/", emu.https_url()));
    let discovery: Value = http
        .get(format!("{issuer}.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], issuer);
    let jwks_uri = discovery["jwks_uri"].as_str().unwrap();
    assert_eq!(jwks_uri, format!("{issuer}openid/v1/jwks"));
    let jwks: Value = http.get(jwks_uri).send().await.unwrap().json().await.unwrap();
    let jwk = &jwks["keys"][0];
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert_ne!(
        jwk["kid"],
        emu.signing_key_id(),
        "a key of its own, not the token-signing key"
    );

    let jwt = token(&emu, &WorkloadToken::new());
    let (header, claims) = decode_jwt(&jwt);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], jwk["kid"]);
    assert_eq!(claims["iss"], issuer);
    assert_eq!(claims["sub"], WORKLOAD_SUBJECT);
    assert_eq!(claims["aud"], serde_json::json!([TOKEN_EXCHANGE_AUDIENCE]));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert_eq!(
        claims["kubernetes.io"]["serviceaccount"]["name"],
        "workload-identity-sa"
    );
    assert_eq!(claims["kubernetes.io"]["namespace"], "default");

    // The JWKS alone verifies the token, as Entra does with the issuer's published keys.
    let n = BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap());
    let e = BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap());
    let key = VerifyingKey::<sha2::Sha256>::new(RsaPublicKey::new(n, e).unwrap());
    let (input, signature) = jwt.rsplit_once('.').unwrap();
    let signature = Signature::try_from(URL_SAFE_NO_PAD.decode(signature).unwrap().as_slice()).unwrap();
    key.verify(input.as_bytes(), &signature)
        .expect("the JWKS verifies the token");
}

#[tokio::test]
async fn the_seeded_workload_app_exchanges_its_service_account_token_for_a_graph_token() {
    let emu = start().await;
    let app = emu.app("workload").unwrap();
    assert!(
        app.secrets.is_empty() && app.certificates.is_empty(),
        "no secret, no certificate"
    );
    let credential = &app.federated_credentials[0];
    assert_eq!(credential.issuer, emu.workload_issuer());
    assert_eq!(credential.subject, WORKLOAD_SUBJECT);
    assert_eq!(credential.audiences, vec![TOKEN_EXCHANGE_AUDIENCE.to_owned()]);

    let jwt = token(&emu, &WorkloadToken::new());
    for _ in 0..2 {
        // A projected token is reused until the kubelet rotates it: no replay refusal.
        let resp = exchange(&emu, "workload", &jwt).await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        let (_, claims) = decode_jwt(body["access_token"].as_str().unwrap());
        assert_eq!(claims["appid"], app.app_id);
        assert_eq!(claims["appidacr"], "2", "a client assertion");
        assert_eq!(
            claims["roles"],
            serde_json::json!(["User.Read.All", "Application.Read.All"])
        );
    }
    // Graph accepts the token.
    let resp = exchange(&emu, "workload", &jwt).await;
    let access: Value = resp.json().await.unwrap();
    let users = client(&emu)
        .get(format!("{}/users", emu.graph_base()))
        .bearer_auth(access["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(users.status(), 200);
}

#[tokio::test]
async fn no_matching_federated_credential_is_refused_as_the_service_does() {
    let emu = start().await;

    // An app without federated credentials: AADSTS70021 names the assertion's issuer, subject and audience.
    let resp = exchange(&emu, "daemon", &token(&emu, &WorkloadToken::new())).await;
    let body = assert_aad_error(resp, 401, "invalid_client", 70021).await;
    assert!(
        description(&body).starts_with(&format!(
            "AADSTS70021: No matching federated identity record found for presented assertion. Assertion Issuer: \
             '{}'. Assertion Subject: '{WORKLOAD_SUBJECT}'. Assertion Audience: '{TOKEN_EXCHANGE_AUDIENCE}'.",
            emu.workload_issuer()
        )),
        "{body}"
    );

    // Issuer, then subject, then audience (matching is case-sensitive).
    let upper_issuer = emu.workload_issuer().to_uppercase();
    for (minted, code, quoted) in [
        (
            WorkloadToken::new().issuer(upper_issuer.clone()),
            700211,
            format!("issuer '{upper_issuer}'"),
        ),
        (
            WorkloadToken::new().subject("system:serviceaccount:default:Workload-Identity-SA"),
            700213,
            "subject 'system:serviceaccount:default:Workload-Identity-SA'".to_owned(),
        ),
        (
            WorkloadToken::new().audience("api://AzureADTokenExchange2"),
            700212,
            "audience 'api://AzureADTokenExchange2'".to_owned(),
        ),
    ] {
        let resp = exchange(&emu, "workload", &token(&emu, &minted)).await;
        let body = assert_aad_error(resp, 401, "invalid_client", code).await;
        assert!(
            description(&body).contains(&format!(
                "No matching federated identity record found for presented assertion {quoted}."
            )),
            "{body}"
        );
    }
}

#[tokio::test]
async fn an_issuer_the_service_cannot_reach_gets_aadsts50166() {
    let emu = start().await;
    let unknown = "https://oidc.example.invalid/cluster/";
    assert!(emu.add_federated_credential(
        "workload",
        FederatedIdentityCredential {
            name: "elsewhere".to_owned(),
            issuer: unknown.to_owned(),
            subject: WORKLOAD_SUBJECT.to_owned(),
            audiences: vec![TOKEN_EXCHANGE_AUDIENCE.to_owned()],
        }
    ));
    let resp = exchange(
        &emu,
        "workload",
        &token(&emu, &WorkloadToken::new().issuer(unknown)),
    )
    .await;
    let body = assert_aad_error(resp, 400, "invalid_request", 50166).await;
    assert!(description(&body).starts_with("AADSTS50166: Request to External OIDC endpoint failed."));
}

#[tokio::test]
async fn a_bad_signature_or_an_unpublished_key_is_refused() {
    let emu = start().await;
    let jwt = token(&emu, &WorkloadToken::new());
    let (input, signature) = jwt.rsplit_once('.').unwrap();

    // One bit of the signature flipped.
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
    bytes[10] ^= 0x01;
    let tampered = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&bytes));
    let body = assert_aad_error(
        exchange(&emu, "workload", &tampered).await,
        401,
        "invalid_client",
        50013,
    )
    .await;
    assert!(
        description(&body).contains("Assertion failed signature validation."),
        "{body}"
    );

    // The claims changed (another subject would need another credential; here a later exp), signature kept.
    let (header, claims) = input.split_once('.').unwrap();
    let mut claims = b64url_json(claims);
    claims["exp"] = Value::from(claims["exp"].as_i64().unwrap() + 60);
    let forged = format!(
        "{header}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    assert_aad_error(
        exchange(&emu, "workload", &forged).await,
        401,
        "invalid_client",
        50013,
    )
    .await;

    // A kid the issuer does not publish.
    let mut header_json = b64url_json(header);
    header_json["kid"] = Value::from("not-a-published-key");
    let unknown_kid = format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header_json.to_string()),
        input.split_once('.').unwrap().1
    );
    let body = assert_aad_error(
        exchange(&emu, "workload", &unknown_kid).await,
        401,
        "invalid_client",
        7000272,
    )
    .await;
    assert!(
        description(&body).contains(&format!(
            "The certificate with identifier not-a-published-key used to sign the federated credential could not be \
             found in the metadata of identity provider {}.",
            emu.workload_issuer()
        )),
        "{body}"
    );
}

#[tokio::test]
async fn expired_and_too_long_lived_tokens_are_refused() {
    let emu = start().await;
    // Expired an hour ago (beyond the clock skew allowed).
    let expired = token(&emu, &WorkloadToken::new().issued_secs_ago(7200));
    let body = assert_aad_error(
        exchange(&emu, "workload", &expired).await,
        401,
        "invalid_client",
        700024,
    )
    .await;
    assert!(
        description(&body).starts_with("AADSTS700024: Client assertion is not within its valid time range.")
    );
    // Not valid for another hour.
    let early = token(&emu, &WorkloadToken::new().issued_secs_ago(-3600));
    assert_aad_error(
        exchange(&emu, "workload", &early).await,
        401,
        "invalid_client",
        700024,
    )
    .await;
    // Lifetime over 1 day and 1 hour; exactly that is accepted.
    let long = token(&emu, &WorkloadToken::new().lifetime_secs(25 * 3600 + 1));
    let body = assert_aad_error(
        exchange(&emu, "workload", &long).await,
        400,
        "invalid_request",
        70023,
    )
    .await;
    assert!(
        description(&body).contains(
            "External OIDC Provider token must have a lifetime of less than or equal to 1.01:00:00."
        ),
        "{body}"
    );
    let longest = token(&emu, &WorkloadToken::new().lifetime_secs(25 * 3600));
    assert_eq!(exchange(&emu, "workload", &longest).await.status(), 200);
}

#[tokio::test]
async fn a_certificate_app_still_gets_its_client_assertion_checks() {
    // The federated path is taken only for an assertion whose iss is not the client id.
    let emu = start().await;
    let client_id = emu.app("daemon-certificate").unwrap().app_id;
    let self_signed = token(
        &emu,
        &WorkloadToken::new().issuer(client_id.clone()).subject(client_id),
    );
    // Not signed with the app's certificate: the client-assertion answer, not a federation one.
    let body: Value = exchange(&emu, "daemon-certificate", &self_signed)
        .await
        .json()
        .await
        .unwrap();
    let code = body["error_codes"][0].as_u64().unwrap();
    assert!(![70021, 700211, 700212, 700213, 50166].contains(&code), "{body}");
}

#[tokio::test]
async fn the_projected_token_file_is_written_and_rotated() {
    let emu = start().await;
    let dir = std::env::temp_dir().join(format!("emu-wif-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("token-{}", emu.https_url().rsplit(':').next().unwrap()));
    let projected = emu
        .project_workload_token(&path, Duration::from_secs(10))
        .unwrap();
    let first = std::fs::read_to_string(projected.path()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let (_, claims) = decode_jwt(&first);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        10
    );
    assert_eq!(exchange(&emu, "workload", &first).await.status(), 200);
    // Rotated at 80 % of the lifetime (8 s): wait for the file to change, polling its content.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let rotated = loop {
        let now = std::fs::read_to_string(&path).unwrap();
        if now != first {
            break now;
        }
        assert!(std::time::Instant::now() < deadline, "the token was not rotated");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(exchange(&emu, "workload", &rotated).await.status(), 200);
    assert!(emu.request_counts().get(Endpoint::Token) >= 2);
    drop(projected);
    std::fs::remove_dir_all(&dir).unwrap();
}
