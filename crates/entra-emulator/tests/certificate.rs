//! Certificate credentials: the seeded `daemon-certificate` app and its files, client assertions in every
//! accepted form (RS256/x5t, PS256/x5t#S256, padded or not, x5c array or string, float or string times),
//! every rejection with its exact shape, replays, run-time uploads and the Graph view of key credentials.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{
    GRAPH_DEFAULT, JWT_BEARER, assert_aad_error, assertion_request, b64url, b64url_padded, client, creds,
    decode_jwt, msal_python_claims, now_secs, sha1, sha256, sign_jwt, sign_jwt_with_pss_salt, start,
    token_url,
};
use entra_emulator::certificates::DevCertificate;
use entra_emulator::{AppRegistration, CertificateFiles, DEFAULT_TENANT_DOMAIN, Emulator};
use rsa::RsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey as _;
use serde_json::{Value, json};

const APP: &str = "daemon-certificate";

/// The seeded app, its files and its private key.
fn seeded(emu: &Emulator) -> (AppRegistration, CertificateFiles, RsaPrivateKey, Vec<u8>) {
    let app = emu.app(APP).expect("seeded certificate app");
    let files = emu.certificate_files(APP).expect("held certificate files");
    let key = RsaPrivateKey::from_pkcs8_pem(&std::fs::read_to_string(&files.key_path).unwrap()).unwrap();
    let cert_der = app.certificates[0].cert_der.clone();
    (app, files, key, cert_der)
}

/// The SubjectPublicKeyInfo of a DER certificate.
fn x509_spki(cert_der: &[u8]) -> Vec<u8> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).unwrap();
    cert.public_key().raw.to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Gets a token with `assertion` and returns the access token's claims (after checking it works on Graph).
async fn token_with(
    emu: &Emulator,
    http: &reqwest::Client,
    url: &str,
    client_id: &str,
    assertion: &str,
) -> Value {
    let resp = assertion_request(http, url, client_id, assertion).await;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_object().unwrap().len(), 4, "{body}");
    let token = body["access_token"].as_str().unwrap();
    let users = http
        .get(format!("{}/users?$top=1", emu.graph_base()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(users.status(), 200, "the token works on Graph");
    decode_jwt(token).1
}

#[tokio::test]
async fn the_seeded_certificate_files_load_and_match_the_registration() {
    let emu = start().await;
    let (app, files, key, cert_der) = seeded(&emu);
    assert_eq!(app.display_name, "Contoso daemon (certificate)");
    assert!(app.secrets.is_empty(), "no secret");
    assert_eq!(app.app_roles, ["User.Read.All", "Application.Read.All"]);
    assert_eq!(app.certificates.len(), 1);
    let registered = &app.certificates[0];
    assert_eq!(registered.display_name, "CN=daemon-certificate");
    assert_eq!(registered.thumbprint_sha1, hex(&sha1(&cert_der)));
    assert_eq!(files.thumbprint_sha1, registered.thumbprint_sha1);
    assert_eq!(files.thumbprint_sha256, hex(&sha256(&cert_der)));
    assert!(registered.start_date_time < time::OffsetDateTime::now_utc());
    assert!(registered.end_date_time > time::OffsetDateTime::now_utc() + time::Duration::days(700));
    assert!(
        emu.certificate_files("daemon").is_none(),
        "only seeded certificate apps"
    );
    assert!(emu.certificate_files("nope").is_none());

    // The certificate file is the registered certificate; the key is its key.
    let cer = std::fs::read_to_string(&files.cert_path).unwrap();
    assert_eq!(
        entra_emulator::AppCertificate::from_pem(&cer).unwrap().cert_der,
        cert_der
    );
    let public = rsa::RsaPublicKey::from(&key);
    assert_eq!(
        rsa::pkcs8::DecodePublicKey::from_public_key_der(&x509_spki(&cert_der)).ok(),
        Some(public.clone()),
        "the key file holds the certificate's key"
    );
    // The combined PEM holds the same key and the same certificate.
    let pem = std::fs::read_to_string(&files.pem_path).unwrap();
    assert!(
        pem.starts_with("-----BEGIN PRIVATE KEY-----\n"),
        "PKCS#8 key first"
    );
    assert!(pem.contains(&std::fs::read_to_string(&files.key_path).unwrap()));
    assert!(pem.ends_with(&cer));
    // The PFX opens with its password and holds the key and the certificate.
    let pfx = std::fs::read(&files.pfx_path).unwrap();
    let store = p12_keystore::KeyStore::from_pkcs12(
        &pfx,
        &files.pfx_password,
        p12_keystore::Pkcs12ImportPolicy::Strict,
    )
    .expect("PFX opens with the password");
    let (_, chain) = store.private_key_chain().expect("key and chain");
    assert_eq!(chain.certs()[0].as_der(), cert_der.as_slice());
    let pfx_key = RsaPrivateKey::from_pkcs8_der(chain.key().as_der()).unwrap();
    assert_eq!(rsa::RsaPublicKey::from(&pfx_key), public);
    assert!(
        p12_keystore::KeyStore::from_pkcs12(&pfx, "wrong", p12_keystore::Pkcs12ImportPolicy::Strict).is_err()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&files.pem_path), 0o600);
        assert_eq!(mode(&files.key_path), 0o600);
        assert_eq!(mode(&files.pfx_path), 0o600);
        assert_eq!(mode(&files.cert_path), 0o644);
    }
    assert!(
        !format!("{files:?}").contains(&files.pfx_password),
        "Debug redacts the PFX password"
    );

    // The self-description lists the certificate with its files; Debug never shows the password.
    let d = emu.description();
    let described = d.tenants[0].apps.iter().find(|a| a.name == APP).unwrap();
    assert!(described.client_secret.is_none());
    let c = &described.certificates[0];
    assert_eq!(c.thumbprint_sha1, files.thumbprint_sha1);
    assert_eq!(c.thumbprint_sha256, files.thumbprint_sha256);
    assert_eq!(c.x5t, b64url(&sha1(&cert_der)));
    assert_eq!(c.x5t_s256, b64url(&sha256(&cert_der)));
    assert!(!c.expired);
    let f = c.files.as_ref().expect("files of a held certificate");
    assert_eq!(f.pfx, files.pfx_path.display().to_string());
    assert_eq!(f.pfx_password, files.pfx_password);
    assert_eq!(f.key, files.key_path.display().to_string());
    assert!(!format!("{d:?}").contains(&files.pfx_password));
    let json = serde_json::to_value(&d).unwrap();
    let app_json = json["tenants"][0]["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == APP)
        .unwrap()
        .clone();
    assert_eq!(app_json["certificates"][0]["x5t#S256"], c.x5t_s256.as_str());
    assert_eq!(
        app_json["certificates"][0]["files"]["pfx_password"],
        files.pfx_password.as_str()
    );

    // Without a state directory the files live in the temporary directory and go away with it.
    assert_eq!(files.pfx_path.parent(), emu.ca_path().parent());
    let pfx_path = files.pfx_path.clone();
    emu.shutdown().await;
    assert!(!pfx_path.exists(), "temporary files are removed");
}

#[tokio::test]
async fn every_accepted_assertion_form_gets_a_token_marked_as_certificate_authenticated() {
    let emu = start().await;
    let http = client(&emu);
    let (app, _, key, cert) = seeded(&emu);
    let id = app.app_id.as_str();
    let url = token_url(&emu);
    let aud_guid = url.clone();
    let aud_domain = format!("{}/{DEFAULT_TENANT_DOMAIN}/oauth2/v2.0/token", emu.https_url());
    let x5c_pem_lines = {
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &cert);
        b64.as_bytes()
            .chunks(64)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let now = now_secs();
    let fresh = || uuid::Uuid::new_v4().to_string();
    let cases: Vec<(&str, Value, Value, &str)> = vec![
        (
            "MSAL Python PEM + thumbprint: RS256, padded x5t, float exp/iat, no nbf",
            json!({"alg": "RS256", "typ": "JWT", "x5t": b64url_padded(&sha1(&cert))}),
            msal_python_claims(id, &aud_guid),
            &url,
        ),
        (
            "RS256, unpadded x5t, integer times",
            json!({"alg": "RS256", "typ": "JWT", "x5t": b64url(&sha1(&cert))}),
            json!({"aud": aud_guid, "iss": id, "sub": id, "exp": now + 600, "nbf": now, "iat": now, "jti": fresh()}),
            &url,
        ),
        (
            "MSAL Python PFX: PS256, padded x5t#S256",
            json!({"alg": "PS256", "typ": "JWT", "x5t#S256": b64url_padded(&sha256(&cert))}),
            msal_python_claims(id, &aud_guid),
            &url,
        ),
        (
            "MSAL Python PFX + x5c: x5c array with PEM line breaks",
            json!({"alg": "PS256", "typ": "JWT", "x5c": [x5c_pem_lines], "x5t#S256": b64url_padded(&sha256(&cert))}),
            msal_python_claims(id, &aud_guid),
            &url,
        ),
        (
            "MSAL.NET style: x5c as one string, unpadded x5t#S256, nbf/exp as numeric strings, no iat",
            json!({"alg": "PS256", "typ": "JWT", "x5t#S256": b64url(&sha256(&cert)),
                   "x5c": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &cert)}),
            json!({"aud": aud_guid, "iss": id, "sub": id, "nbf": now.to_string(), "exp": (now + 600).to_string(), "jti": fresh()}),
            &url,
        ),
        (
            "exp only (no nbf, iat or jti), no typ, kid = key id",
            json!({"alg": "RS256", "kid": app.certificates[0].key_id}),
            json!({"aud": aud_guid, "iss": id, "sub": id, "exp": now + 60}),
            &url,
        ),
        (
            "RS512 with both thumbprints; domain-form audience with a trailing slash",
            json!({"alg": "RS512", "typ": "JWT", "x5t": b64url(&sha1(&cert)), "x5t#S256": b64url(&sha256(&cert))}),
            json!({"aud": format!("{aud_domain}/"), "iss": id, "sub": id, "exp": now + 600, "jti": fresh()}),
            &url,
        ),
        (
            "request on the domain URL, GUID-form audience; expired 4 minutes ago (within the skew)",
            json!({"alg": "RS256", "typ": "JWT", "x5t": b64url(&sha1(&cert))}),
            json!({"aud": aud_guid, "iss": id, "sub": id, "exp": now - 240, "jti": fresh()}),
            &aud_domain,
        ),
        (
            "nbf 4 minutes ahead (within the skew), exp as a float string",
            json!({"alg": "RS256", "typ": "JWT", "x5t": b64url(&sha1(&cert))}),
            json!({"aud": aud_guid, "iss": id, "sub": id, "nbf": now + 240, "exp": format!("{}.25", now + 600), "jti": fresh()}),
            &url,
        ),
    ];
    for (name, header, claims, url) in cases {
        let assertion = sign_jwt(&key, &header, &claims);
        let claims = token_with(&emu, &http, url, id, &assertion).await;
        assert_eq!(claims["appidacr"], "2", "{name}");
        assert_eq!(claims["appid"], id, "{name}");
        assert_eq!(
            claims["app_displayname"], "Contoso daemon (certificate)",
            "{name}"
        );
        assert_eq!(claims["oid"], app.service_principal_id.as_str(), "{name}");
        assert_eq!(
            claims["roles"],
            json!(["User.Read.All", "Application.Read.All"]),
            "{name}"
        );
    }
    // PSS with the maximum salt length (some signers' default) verifies too.
    let header = json!({"alg": "PS256", "typ": "JWT", "x5t#S256": b64url(&sha256(&cert))});
    let assertion = sign_jwt_with_pss_salt(&key, &header, &msal_python_claims(id, &aud_guid), 256 - 32 - 2);
    token_with(&emu, &http, &url, id, &assertion).await;
    // A secret still gives appidacr "1".
    let (daemon, secret) = creds(&emu, "daemon");
    let resp = http
        .post(&url)
        .form(&[
            ("client_id", daemon.as_str()),
            ("grant_type", "client_credentials"),
            ("client_secret", secret.as_str()),
            ("scope", GRAPH_DEFAULT),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        decode_jwt(body["access_token"].as_str().unwrap()).1["appidacr"],
        "1"
    );
}

struct Case {
    name: &'static str,
    /// `None`: the seeded certificate app.
    client_id: Option<String>,
    form: Vec<(&'static str, String)>,
    status: u16,
    error: &'static str,
    code: u64,
    texts: Vec<String>,
}

#[tokio::test]
async fn every_assertion_error_has_the_real_status_code_and_shape() {
    let emu = start().await;
    let http = client(&emu);
    let (app, _, key, cert) = seeded(&emu);
    let id = app.app_id.clone();
    let url = token_url(&emu);
    let now = now_secs();
    let rs256 = json!({"alg": "RS256", "typ": "JWT", "x5t": b64url(&sha1(&cert))});
    let good_claims = || msal_python_claims(&id, &url);
    let with = |changes: Value| {
        let mut c = good_claims();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let signed = |header: &Value, claims: &Value| sign_jwt(&key, header, claims);
    let form = |assertion: String| -> Vec<(&'static str, String)> {
        vec![
            ("client_assertion_type", JWT_BEARER.to_owned()),
            ("client_assertion", assertion),
        ]
    };

    // A certificate whose key the app does not know, and an expired certificate of the right key.
    let stranger = DevCertificate::generate("stranger", std::time::Duration::from_secs(86400)).unwrap();
    let past = time::OffsetDateTime::now_utc() - time::Duration::days(30);
    let expired =
        DevCertificate::from_key(key.clone(), "expired", past - time::Duration::days(365), past).unwrap();
    assert!(emu.upload_certificate(APP, expired.cert_der()));
    let expired_app = emu.app(APP).unwrap();
    let expired_reg = expired_app
        .certificates
        .iter()
        .find(|c| c.cert_der == expired.cert_der())
        .unwrap();
    let us = |t: time::OffsetDateTime| {
        t.format(time::macros::format_description!(
            "[month]/[day]/[year] [hour]:[minute]:[second]"
        ))
        .unwrap()
    };
    let tampered = {
        let good = signed(&rs256, &good_claims());
        let (input, sig) = good.rsplit_once('.').unwrap();
        let mut sig = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sig).unwrap();
        sig[10] ^= 0x55;
        format!("{input}.{}", b64url(&sig))
    };
    let (daemon_id, daemon_secret) = creds(&emu, "daemon");
    let keys_hint = format!(
        "Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id \
         '{id}'. Review the documentation at https://docs.microsoft.com/en-us/graph/deployments to determine the \
         corresponding service endpoint and https://docs.microsoft.com/en-us/graph/api/application-get?view=graph-rest-1.0&tabs=http \
         to build a query request URL, such as 'https://graph.microsoft.com/beta/applications/{id}']."
    );
    let cert_doc = "Review the documentation at \
                    https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials .";
    let reg = &app.certificates[0];
    let found_key = format!(
        "Found key 'Start={}, End={}'",
        us(reg.start_date_time),
        us(reg.end_date_time)
    );

    let cases = vec![
        Case {
            name: "not a JWS",
            client_id: None,
            form: form("not-a-jwt".into()),
            status: 400,
            error: "invalid_request",
            code: 50027,
            texts: vec!["AADSTS50027: JWT token is invalid or malformed.\r\n".into()],
        },
        Case {
            name: "header not JSON",
            client_id: None,
            form: form(format!("{}.{}.{}", b64url(b"{nope"), b64url(b"{}"), b64url(b"sig"))),
            status: 400,
            error: "invalid_request",
            code: 50027,
            texts: vec!["JWT token is invalid or malformed.".into()],
        },
        Case {
            name: "wrong typ",
            client_id: None,
            form: form(signed(&json!({"alg": "RS256", "typ": "JOSE", "x5t": b64url(&sha1(&cert))}), &good_claims())),
            status: 400,
            error: "invalid_request",
            code: 5002727,
            texts: vec!["Invalid JWT header type specified, must be 'JWT' or 'http://openid.net/specs/jwt/1.0'.".into()],
        },
        Case {
            name: "ES256",
            client_id: None,
            form: form(signed(&json!({"alg": "ES256", "typ": "JWT", "x5t": b64url(&sha1(&cert))}), &good_claims())),
            status: 400,
            error: "invalid_request",
            code: 5002738,
            texts: vec![
                "AADSTS5002738: Invalid JWT token. 'ES256' is not a supported signature algorithm. Supported signing \
                 algorithms are: 'RS256,RS384,RS512,PS256'\r\n"
                    .into(),
            ],
        },
        Case {
            name: "HS256",
            client_id: None,
            form: form(signed(&json!({"alg": "HS256", "typ": "JWT", "x5t": b64url(&sha1(&cert))}), &good_claims())),
            status: 400,
            error: "invalid_request",
            code: 5002738,
            texts: vec!["'HS256' is not a supported signature algorithm.".into()],
        },
        Case {
            name: "alg none",
            client_id: None,
            form: form(signed(&json!({"alg": "none", "typ": "JWT", "x5t": b64url(&sha1(&cert))}), &good_claims())),
            status: 400,
            error: "invalid_request",
            code: 5002738,
            texts: vec!["'none' is not a supported signature algorithm.".into()],
        },
        Case {
            name: "no key identifier",
            client_id: None,
            form: form(signed(&json!({"alg": "RS256", "typ": "JWT"}), &good_claims())),
            status: 401,
            error: "invalid_client",
            code: 5002723,
            texts: vec![
                "Invalid JWT token. No certificate SHA-1 thumbprint, certificate SHA-256 thumbprint, nor keyId \
                 specified in token header."
                    .into(),
            ],
        },
        Case {
            name: "unknown thumbprint",
            client_id: None,
            form: form(
                sign_jwt(
                    stranger.key(),
                    &json!({"alg": "RS256", "typ": "JWT", "x5t": stranger.x5t()}),
                    &good_claims(),
                ),
            ),
            status: 401,
            error: "invalid_client",
            code: 700027,
            texts: vec![format!(
                "AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on \
                 application. [Reason - The key was not found., Thumbprint of key used by client: '{}', {keys_hint}\r\n",
                stranger.thumbprint_sha1()
            )],
        },
        Case {
            name: "unknown SHA-256 thumbprint",
            client_id: None,
            form: form(sign_jwt(
                stranger.key(),
                &json!({"alg": "PS256", "typ": "JWT", "x5t#S256": stranger.x5t_s256()}),
                &good_claims(),
            )),
            status: 401,
            error: "invalid_client",
            code: 700027,
            texts: vec![format!("Thumbprint of key used by client: '{}'", stranger.thumbprint_sha256())],
        },
        Case {
            name: "thumbprint in standard base64 (undecodable): no thumbprint in the text",
            client_id: None,
            form: form(signed(&json!({"alg": "RS256", "typ": "JWT", "x5t": "ab+/cd=="}), &good_claims())),
            status: 401,
            error: "invalid_client",
            code: 700027,
            texts: vec![format!("[Reason - The key was not found., {keys_hint}")],
        },
        Case {
            name: "an app without certificates",
            client_id: Some(daemon_id.clone()),
            form: form(signed(&rs256, &msal_python_claims(&daemon_id, &url))),
            status: 401,
            error: "invalid_client",
            code: 700027,
            texts: vec![format!("see configured keys for app Id '{daemon_id}'")],
        },
        Case {
            name: "tampered signature",
            client_id: None,
            form: form(tampered),
            status: 401,
            error: "invalid_client",
            code: 700027,
            texts: vec![format!(
                "AADSTS700027: Client assertion contains an invalid signature. [Reason - Key was found, but use of the \
                 key to verify the signature failed., Thumbprint of key used by client: '{}', {found_key}, {keys_hint}",
                reg.thumbprint_sha1
            )],
        },
        Case {
            name: "signed with another key",
            client_id: None,
            form: form(sign_jwt(stranger.key(), &rs256, &good_claims())),
            status: 401,
            error: "invalid_client",
            code: 700027,
            texts: vec!["Key was found, but use of the key to verify the signature failed.".into()],
        },
        Case {
            name: "expired certificate",
            client_id: None,
            form: form(signed(
                &json!({"alg": "RS256", "typ": "JWT", "x5t": expired.x5t()}),
                &good_claims(),
            )),
            status: 401,
            error: "invalid_client",
            code: 700027,
            texts: vec![format!(
                "AADSTS700027: The certificate with identifier used to sign the client assertion is expired on \
                 application. [Reason - The key used is expired., Thumbprint of key used by client: '{}', Found key \
                 'Start={}, End={}', {keys_hint}",
                expired.thumbprint_sha1(),
                us(expired_reg.start_date_time),
                us(expired_reg.end_date_time)
            )],
        },
        Case {
            name: "iss is not the client id",
            client_id: None,
            form: form(signed(&rs256, &with(json!({"iss": daemon_id})))),
            status: 401,
            error: "invalid_client",
            code: 700021,
            texts: vec![format!(
                "AADSTS700021: Client assertion application identifier doesn't match 'client_id' parameter. {cert_doc}"
            )],
        },
        Case {
            name: "sub is not the client id",
            client_id: None,
            form: form(signed(&rs256, &with(json!({"sub": "someone"})))),
            status: 401,
            error: "invalid_client",
            code: 700021,
            texts: vec!["doesn't match 'client_id' parameter.".into()],
        },
        Case {
            name: "no iss",
            client_id: None,
            form: form(signed(&rs256, &with(json!({"iss": null})))),
            status: 400,
            error: "invalid_request",
            code: 90014,
            texts: vec![
                "The required field 'iss' is missing from the credential. Ensure that you have all the necessary \
                 parameters for the login request."
                    .into(),
            ],
        },
        Case {
            name: "no aud",
            client_id: None,
            form: form(signed(&rs256, &with(json!({"aud": null})))),
            status: 400,
            error: "invalid_request",
            code: 90014,
            texts: vec!["The required field 'aud' is missing from the credential.".into()],
        },
        Case {
            name: "aud of the real cloud",
            client_id: None,
            form: form(signed(
                &rs256,
                &with(json!({"aud": format!("https://login.microsoftonline.com/{}/oauth2/v2.0/token", emu.tenant_id())})),
            )),
            status: 401,
            error: "invalid_client",
            code: 700023,
            texts: vec![format!(
                "AADSTS700023: Client assertion audience claim does not match Realm issuer. {cert_doc}"
            )],
        },
        Case {
            name: "aud of another tenant segment (common)",
            client_id: None,
            form: form(signed(
                &rs256,
                &with(json!({"aud": format!("{}/common/oauth2/v2.0/token", emu.https_url())})),
            )),
            status: 401,
            error: "invalid_client",
            code: 700023,
            texts: vec!["does not match Realm issuer".into()],
        },
        Case {
            name: "aud as an array",
            client_id: None,
            form: form(signed(&rs256, &with(json!({"aud": [url.clone()]})))),
            status: 400,
            error: "invalid_request",
            code: 50027,
            texts: vec!["JWT token is invalid or malformed.".into()],
        },
        Case {
            name: "expired assertion",
            client_id: None,
            form: form(signed(&rs256, &with(json!({"exp": now - 400, "iat": now - 1000})))),
            status: 401,
            error: "invalid_client",
            code: 700024,
            texts: vec![
                "AADSTS700024: Client assertion is not within its valid time range. Current time: ".into(),
                format!(
                    ", assertion valid from 1970-01-01T00:00:00.0000000Z, expiry time of assertion {}.0000000Z. Review \
                     the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
                    iso(now - 400)
                ),
            ],
        },
        Case {
            name: "not yet valid",
            client_id: None,
            form: form(signed(&rs256, &with(json!({"nbf": now + 900, "exp": now + 1500})))),
            status: 401,
            error: "invalid_client",
            code: 700024,
            texts: vec![format!(
                "assertion valid from {}.0000000Z, expiry time of assertion {}.0000000Z.",
                iso(now + 900),
                iso(now + 1500)
            )],
        },
        Case {
            name: "no exp",
            client_id: None,
            form: form(signed(&rs256, &with(json!({"exp": null})))),
            status: 401,
            error: "invalid_client",
            code: 700024,
            texts: vec!["expiry time of assertion 1970-01-01T00:00:00.0000000Z.".into()],
        },
        Case {
            name: "exp not a number",
            client_id: None,
            form: form(signed(&rs256, &with(json!({"exp": "tomorrow"})))),
            status: 400,
            error: "invalid_request",
            code: 50027,
            texts: vec!["JWT token is invalid or malformed.".into()],
        },
        Case {
            name: "wrong client_assertion_type",
            client_id: None,
            form: vec![
                ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer".into()),
                ("client_assertion", signed(&rs256, &good_claims())),
            ],
            status: 400,
            error: "invalid_request",
            code: 90011,
            texts: vec!["AADSTS90011: Unexpected client assertion type.\r\n".into()],
        },
        Case {
            name: "no client_assertion_type",
            client_id: None,
            form: vec![("client_assertion", signed(&rs256, &good_claims()))],
            status: 400,
            error: "invalid_request",
            code: 900144,
            texts: vec!["The request body must contain the following parameter: 'client_assertion_type'.".into()],
        },
        Case {
            name: "client_assertion_type without an assertion",
            client_id: None,
            form: vec![("client_assertion_type", JWT_BEARER.into())],
            status: 401,
            error: "invalid_client",
            code: 7000216,
            texts: vec!["'client_assertion', 'client_secret' or 'request' is required".into()],
        },
        Case {
            name: "a secret and an assertion",
            client_id: Some(daemon_id.clone()),
            form: vec![
                ("client_secret", daemon_secret.clone()),
                ("client_assertion_type", JWT_BEARER.into()),
                ("client_assertion", signed(&rs256, &msal_python_claims(&daemon_id, &url))),
            ],
            status: 400,
            error: "invalid_request",
            code: 9002313,
            texts: vec!["AADSTS9002313: Invalid request. Request is malformed or invalid.\r\n".into()],
        },
    ];
    for (i, case) in cases.iter().enumerate() {
        let client_id = case.client_id.clone().unwrap_or_else(|| id.clone());
        let mut form = vec![
            ("client_id", client_id),
            ("grant_type", "client_credentials".to_owned()),
            ("scope", GRAPH_DEFAULT.to_owned()),
        ];
        form.extend(case.form.iter().cloned());
        let correlation = format!("00000000-0000-4000-8000-{i:012}");
        let resp = http
            .post(&url)
            .header("client-request-id", &correlation)
            .form(&form)
            .send()
            .await
            .unwrap();
        let body = assert_aad_error(resp, case.status, case.error, case.code).await;
        let description = body["error_description"].as_str().unwrap();
        for text in &case.texts {
            assert!(
                description.contains(text.as_str()),
                "{}:\n{description}\nlacks\n{text}",
                case.name
            );
        }
        assert_eq!(body["correlation_id"], correlation.as_str(), "{}", case.name);
        if let Some((_, assertion)) = case.form.iter().find(|(k, _)| *k == "client_assertion") {
            let signature = assertion.rsplit('.').next().unwrap();
            assert!(
                signature.len() < 8 || !description.contains(signature),
                "{}: never echo the assertion",
                case.name
            );
        }
    }
}

/// `yyyy-MM-ddTHH:mm:ss` of a unix time.
fn iso(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .unwrap()
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]"
        ))
        .unwrap()
}

#[tokio::test]
async fn a_replayed_assertion_is_rejected_only_when_asked() {
    let emu = Emulator::builder()
        .reject_replayed_assertions(true)
        .start()
        .await
        .unwrap();
    let http = client(&emu);
    let (app, _, key, cert) = seeded(&emu);
    let header = json!({"alg": "PS256", "typ": "JWT", "x5t#S256": b64url_padded(&sha256(&cert))});
    let assertion = sign_jwt(&key, &header, &msal_python_claims(&app.app_id, &token_url(&emu)));
    token_with(&emu, &http, &token_url(&emu), &app.app_id, &assertion).await;
    let resp = assertion_request(&http, &token_url(&emu), &app.app_id, &assertion).await;
    let body = assert_aad_error(resp, 401, "invalid_client", 50013).await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("The client assertion's 'jti' has already been used")
    );
    // A new jti is fine.
    let again = sign_jwt(&key, &header, &msal_python_claims(&app.app_id, &token_url(&emu)));
    token_with(&emu, &http, &token_url(&emu), &app.app_id, &again).await;

    // By default, as the real service: the same assertion for several requests, as MSAL and identity-core send.
    let lenient = start().await;
    let http = client(&lenient);
    let (app, _, key, cert) = seeded(&lenient);
    let header = json!({"alg": "RS256", "typ": "JWT", "x5t": b64url_padded(&sha1(&cert))});
    let assertion = sign_jwt(
        &key,
        &header,
        &msal_python_claims(&app.app_id, &token_url(&lenient)),
    );
    for _ in 0..2 {
        token_with(&lenient, &http, &token_url(&lenient), &app.app_id, &assertion).await;
    }
    // An assertion for one emulator is refused by another (its audience names the other port).
    let resp = assertion_request(
        &http,
        &token_url(&lenient),
        &app.app_id,
        &sign_jwt(&key, &header, &msal_python_claims(&app.app_id, &token_url(&emu))),
    )
    .await;
    assert_aad_error(resp, 401, "invalid_client", 700023).await;
}

#[tokio::test]
async fn uploaded_certificates_authenticate_and_show_in_graph() {
    let emu = start().await;
    let http = client(&emu);
    let second = DevCertificate::generate("second key", std::time::Duration::from_secs(3600)).unwrap();
    let daemon = emu.app("daemon").unwrap();
    assert!(daemon.certificates.is_empty());
    assert!(!emu.upload_certificate("no-such-app", second.cert_der()));
    assert!(!emu.upload_certificate("daemon", b"not a certificate"));
    assert!(emu.upload_certificate("daemon", second.cert_der()));
    let uploaded = emu.app("daemon").unwrap().certificates;
    assert_eq!(uploaded.len(), 1);
    assert_eq!(uploaded[0].thumbprint_sha1, second.thumbprint_sha1());
    assert_eq!(uploaded[0].display_name, "CN=second key");
    assert_eq!(
        uploaded[0].end_date_time,
        second.not_after().replace_nanosecond(0).unwrap()
    );

    // The secret app now also authenticates with the uploaded certificate.
    let assertion = sign_jwt(
        second.key(),
        &json!({"alg": "PS256", "typ": "JWT", "x5t#S256": second.x5t_s256()}),
        &msal_python_claims(&daemon.app_id, &token_url(&emu)),
    );
    let claims = token_with(&emu, &http, &token_url(&emu), &daemon.app_id, &assertion).await;
    assert_eq!(claims["appidacr"], "2");
    assert_eq!(claims["appid"], daemon.app_id.as_str());

    // A second key for the certificate app: both keys work.
    assert!(emu.upload_certificate(APP, second.cert_der()));
    let (app, _, key, cert) = seeded(&emu);
    assert_eq!(app.certificates.len(), 2);
    for (k, c) in [(&key, cert.as_slice()), (second.key(), second.cert_der())] {
        let assertion = sign_jwt(
            k,
            &json!({"alg": "RS256", "typ": "JWT", "x5t": b64url(&sha1(c))}),
            &msal_python_claims(&app.app_id, &token_url(&emu)),
        );
        token_with(&emu, &http, &token_url(&emu), &app.app_id, &assertion).await;
    }
    // Uploaded certificates are described without files.
    let d = emu.description();
    let described = d.tenants[0].apps.iter().find(|a| a.name == APP).unwrap();
    assert!(described.certificates[0].files.is_some());
    assert!(described.certificates[1].files.is_none());

    // Graph lists key credentials (never the certificate itself).
    let tok = common::token(&emu, &http, "daemon").await;
    let body: Value = http
        .get(format!(
            "{}/applications(appId='{}')",
            emu.graph_base(),
            app.app_id
        ))
        .bearer_auth(tok)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = body["keyCredentials"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(
        keys[0]["customKeyIdentifier"],
        app.certificates[0].thumbprint_sha1.as_str()
    );
    assert_eq!(keys[0]["displayName"], "CN=daemon-certificate");
    assert_eq!(keys[0]["keyId"], app.certificates[0].key_id.as_str());
    assert_eq!(keys[0]["type"], "AsymmetricX509Cert");
    assert_eq!(keys[0]["usage"], "Verify");
    assert!(keys[0]["key"].is_null());
    assert_eq!(body["passwordCredentials"], json!([]));
}
