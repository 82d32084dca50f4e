//! Loading certificate credentials in every supported form, refusing bad ones clearly, and the shape and
//! signature of the client assertions they sign.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use entra_emulator::certificates::{DevCertificate, PfxEncryption};
use identity_core::{AssertionAlgorithm, CertificateCredential, CertificateError};
use rsa::signature::Verifier;

const DAY: Duration = Duration::from_secs(86400);

struct Fixture {
    dir: PathBuf,
    cert: DevCertificate,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = std::env::temp_dir().join(format!("idcore-certs-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Fixture {
            dir,
            cert: DevCertificate::generate("identity-core test", 365 * DAY).unwrap(),
        }
    }

    fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn decode(part: &str) -> serde_json::Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// Checks the assertion's header, claims and signature; returns the header.
fn verify(jwt: &str, cert: &DevCertificate, expected_alg: &str) -> serde_json::Value {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let (header, claims) = (decode(parts[0]), decode(parts[1]));
    assert_eq!(header["alg"], expected_alg);
    assert_eq!(header["typ"], "JWT");
    assert_eq!(claims["aud"], "https://login.example/tenant/oauth2/v2.0/token");
    assert_eq!(claims["iss"], "client-id");
    assert_eq!(claims["sub"], "client-id");
    assert!(uuid::Uuid::try_parse(claims["jti"].as_str().unwrap()).is_ok());
    let (iat, nbf, exp) = (
        claims["iat"].as_u64().unwrap(),
        claims["nbf"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert_eq!(nbf, iat);
    assert_eq!(exp - iat, 600, "ten minutes, like MSAL");

    let public = cert.key().to_public_key();
    let message = format!("{}.{}", parts[0], parts[1]);
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    match expected_alg {
        "PS256" => rsa::pss::VerifyingKey::<sha2::Sha256>::new(public)
            .verify(
                message.as_bytes(),
                &rsa::pss::Signature::try_from(signature.as_slice()).unwrap(),
            )
            .expect("PS256 signature verifies with the certificate's key"),
        _ => rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(public)
            .verify(
                message.as_bytes(),
                &rsa::pkcs1v15::Signature::try_from(signature.as_slice()).unwrap(),
            )
            .expect("RS256 signature verifies with the certificate's key"),
    }
    header
}

fn sign(credential: &CertificateCredential) -> String {
    credential
        .assertion("client-id", "https://login.example/tenant/oauth2/v2.0/token")
        .unwrap()
}

#[test]
fn loads_every_supported_form_and_signs_ps256_by_default() {
    let f = Fixture::new();
    let c = &f.cert;
    let forms: Vec<(&str, CertificateCredential)> = vec![
        (
            "PEM key + certificate",
            CertificateCredential::from_file(f.write("both.pem", c.key_pem() + &c.cert_pem()), None).unwrap(),
        ),
        (
            "certificate first",
            CertificateCredential::from_file(f.write("rev.pem", c.cert_pem() + &c.key_pem()), None).unwrap(),
        ),
        (
            "separate files",
            CertificateCredential::from_key_and_certificate_files(
                f.write("k.pem", c.key_pem()),
                f.write("c.pem", c.cert_pem()),
                None,
            )
            .unwrap(),
        ),
        (
            "separate, DER certificate",
            CertificateCredential::from_key_and_certificate_files(
                f.write("k2.pem", c.key_pem()),
                f.write("c.cer", c.cert_der()),
                None,
            )
            .unwrap(),
        ),
        (
            "PKCS#1 key",
            CertificateCredential::from_file(
                f.write("p1.pem", c.key_pkcs1_pem().unwrap() + &c.cert_pem()),
                None,
            )
            .unwrap(),
        ),
        (
            "encrypted PKCS#8",
            CertificateCredential::from_file(
                f.write("enc.pem", c.encrypted_key_pem("s3cret").unwrap() + &c.cert_pem()),
                Some("s3cret"),
            )
            .unwrap(),
        ),
        (
            "PFX modern",
            CertificateCredential::from_file(
                f.write("m.pfx", c.pfx("pw", PfxEncryption::Modern).unwrap()),
                Some("pw"),
            )
            .unwrap(),
        ),
        (
            "PFX legacy 3DES",
            CertificateCredential::from_file(
                f.write("l.p12", c.pfx("pw", PfxEncryption::Legacy3Des).unwrap()),
                Some("pw"),
            )
            .unwrap(),
        ),
        (
            "PFX without password",
            CertificateCredential::from_file(
                f.write("np.pfx", c.pfx("", PfxEncryption::Modern).unwrap()),
                None,
            )
            .unwrap(),
        ),
    ];
    for (form, credential) in forms {
        assert_eq!(credential.algorithm(), AssertionAlgorithm::Ps256, "{form}");
        assert_eq!(credential.thumbprint_sha1(), c.thumbprint_sha1(), "{form}");
        assert_eq!(
            credential.thumbprint_sha256().as_deref(),
            Some(c.thumbprint_sha256().as_str()),
            "{form}"
        );
        let header = verify(&sign(&credential), c, "PS256");
        assert_eq!(header["x5t#S256"], c.x5t_s256(), "{form}");
        assert!(
            header.get("x5t").is_none() && header.get("x5c").is_none(),
            "{form}: {header}"
        );
    }
}

#[test]
fn rs256_with_x5t_when_asked_or_when_only_a_thumbprint_is_known() {
    let f = Fixture::new();
    let c = &f.cert;
    let asked = CertificateCredential::from_file(f.write("both.pem", c.key_pem() + &c.cert_pem()), None)
        .unwrap()
        .with_rs256();
    let header = verify(&sign(&asked), c, "RS256");
    assert_eq!(header["x5t"], c.x5t());

    let thumbprint = CertificateCredential::from_key_file_and_thumbprint(
        f.write("k.pem", c.key_pem()),
        &c.thumbprint_sha1().to_lowercase(),
        None,
    )
    .unwrap();
    assert_eq!(thumbprint.algorithm(), AssertionAlgorithm::Rs256);
    let header = verify(&sign(&thumbprint), c, "RS256");
    assert_eq!(header["x5t"], c.x5t());
    assert!(header.get("x5t#S256").is_none());
}

#[test]
fn x5c_sends_the_chain_leaf_first_for_subject_name_issuer_auth() {
    let f = Fixture::new();
    let c = &f.cert;
    let other = DevCertificate::generate("intermediate", DAY).unwrap();
    let path = f.write("chain.pem", c.key_pem() + &c.cert_pem() + &other.cert_pem());
    let credential = CertificateCredential::from_file(path, None).unwrap().with_x5c();
    let header = verify(&sign(&credential), c, "PS256");
    let chain = header["x5c"].as_array().unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[0], STANDARD.encode(c.cert_der()));
    assert_eq!(chain[1], STANDARD.encode(other.cert_der()));
}

#[test]
fn the_same_assertion_is_reused_across_calls() {
    let f = Fixture::new();
    let credential =
        CertificateCredential::from_file(f.write("b.pem", f.cert.key_pem() + &f.cert.cert_pem()), None)
            .unwrap();
    assert_eq!(sign(&credential), sign(&credential));
}

fn refused(result: Result<CertificateCredential, CertificateError>) -> CertificateError {
    let err = result.expect_err("refused");
    assert!(err.fix().is_some(), "{err} has a fix");
    err
}

#[test]
fn bad_inputs_are_refused_with_clear_errors() {
    let f = Fixture::new();
    let c = &f.cert;
    let missing = refused(CertificateCredential::from_file(f.dir.join("nope.pem"), None));
    assert!(
        matches!(missing, CertificateError::NotFound { .. }) && missing.to_string().contains("nope.pem"),
        "{missing}"
    );

    let pfx = f.write("a.pfx", c.pfx("right", PfxEncryption::Modern).unwrap());
    assert!(matches!(
        refused(CertificateCredential::from_file(&pfx, Some("wrong"))),
        CertificateError::WrongPassword { .. }
    ));
    assert!(matches!(
        refused(CertificateCredential::from_file(&pfx, None)),
        CertificateError::PasswordRequired { .. }
    ));

    let encrypted = f.write("e.pem", c.encrypted_key_pem("right").unwrap() + &c.cert_pem());
    assert!(matches!(
        refused(CertificateCredential::from_file(&encrypted, Some("wrong"))),
        CertificateError::WrongPassword { .. }
    ));
    assert!(matches!(
        refused(CertificateCredential::from_file(&encrypted, None)),
        CertificateError::PasswordRequired { .. }
    ));

    let no_key = f.write("nokey.pfx", c.pfx_without_key("pw").unwrap());
    assert!(matches!(
        refused(CertificateCredential::from_file(&no_key, Some("pw"))),
        CertificateError::NoKey { .. }
    ));
    let cert_only = f.write("cert-only.pem", c.cert_pem());
    assert!(matches!(
        refused(CertificateCredential::from_file(&cert_only, None)),
        CertificateError::NoKey { .. }
    ));
    let key_only = f.write("key-only.pem", c.key_pem());
    assert!(matches!(
        refused(CertificateCredential::from_file(&key_only, None)),
        CertificateError::NoCertificate { .. }
    ));

    let stranger = DevCertificate::generate("someone else", DAY).unwrap();
    let mismatch = f.write("mismatch.pem", c.key_pem() + &stranger.cert_pem());
    assert!(matches!(
        refused(CertificateCredential::from_file(&mismatch, None)),
        CertificateError::KeyMismatch { .. }
    ));

    let ec = rcgen::KeyPair::generate().unwrap();
    let ec_path = f.write("ec.pem", ec.serialize_pem() + &c.cert_pem());
    let err = refused(CertificateCredential::from_file(&ec_path, None));
    assert!(
        matches!(err, CertificateError::NotRsa { .. }) && err.to_string().contains("EC key"),
        "{err}"
    );

    let now = time::OffsetDateTime::now_utc();
    let expired = DevCertificate::from_key(
        c.key().clone(),
        "old",
        now - time::Duration::days(30),
        now - time::Duration::days(1),
    )
    .unwrap();
    let path = f.write("expired.pem", expired.key_pem() + &expired.cert_pem());
    assert!(matches!(
        refused(CertificateCredential::from_file(&path, None)),
        CertificateError::Expired { .. }
    ));
    let future = DevCertificate::from_key(
        c.key().clone(),
        "later",
        now + time::Duration::days(1),
        now + time::Duration::days(30),
    )
    .unwrap();
    let path = f.write("future.pem", future.key_pem() + &future.cert_pem());
    assert!(matches!(
        refused(CertificateCredential::from_file(&path, None)),
        CertificateError::NotYetValid { .. }
    ));

    let key = f.write("k.pem", c.key_pem());
    for bad in [
        "1234",
        "not hex at all, not hex at all, not hex!",
        "84E05C1D98BCE3A5421D225B140B36E86A3D553",
    ] {
        let err = refused(CertificateCredential::from_key_file_and_thumbprint(
            &key, bad, None,
        ));
        assert!(
            matches!(err, CertificateError::BadThumbprint { .. }),
            "{bad}: {err}"
        );
    }

    let garbage = f.write("garbage.pfx", b"definitely not PKCS#12");
    assert!(matches!(
        refused(CertificateCredential::from_file(&garbage, None)),
        CertificateError::Malformed { .. }
    ));
}

#[test]
fn debug_output_never_shows_key_material() {
    let f = Fixture::new();
    let credential =
        CertificateCredential::from_file(f.write("b.pem", f.cert.key_pem() + &f.cert.cert_pem()), None)
            .unwrap();
    let shown = format!("{credential:?}");
    assert!(shown.contains(&f.cert.thumbprint_sha1()), "{shown}");
    assert!(!shown.contains("MII"), "{shown}");
}

/// Over the wire: two token requests within the assertion's lifetime carry the same assertion. The emulator's
/// strict mode, which refuses a second use of a `jti`, makes that visible.
#[tokio::test]
async fn the_assertion_is_reused_on_the_wire_and_tokens_are_issued() {
    use identity_core::{Authority, ConfidentialClient, Error, HttpClient, HttpConfig, TokenSource};
    for strict in [false, true] {
        let emu = entra_emulator::Emulator::builder()
            .reject_replayed_assertions(strict)
            .start()
            .await
            .unwrap();
        let files = emu.certificate_files("daemon-certificate").unwrap();
        let app = ConfidentialClient::builder(
            emu.app("daemon-certificate").unwrap().app_id,
            Authority::parse(&emu.authority()).unwrap(),
        )
        .credential(CertificateCredential::from_file(&files.pfx_path, Some(&files.pfx_password)).unwrap())
        .http_client(HttpClient::new(HttpConfig::default().with_extra_ca_pem(emu.ca_pem())).unwrap())
        .build()
        .unwrap();
        let first = app
            .acquire_token_for_client(&["https://graph.microsoft.com/.default"])
            .await
            .unwrap();
        assert_eq!(first.source, TokenSource::IdentityProvider);
        // Another scope form of the same resource: a second token request, inside the assertion's lifetime.
        let second = app
            .acquire_token_for_client(&["00000003-0000-0000-c000-000000000000/.default"])
            .await;
        match (strict, second) {
            (false, Ok(token)) => assert_eq!(token.source, TokenSource::IdentityProvider),
            (true, Err(Error::Service(e))) => {
                assert_eq!(e.code(), Some(50013), "the same jti was sent again: {e}")
            }
            (strict, other) => panic!("strict={strict}: unexpected {other:?}"),
        }
    }
}

/// A device, a FIFO or a huge file as the certificate path: a clear error naming the file, at once (no hang, no
/// gigabytes read).
#[test]
fn devices_fifos_and_huge_files_are_refused_without_reading_them() {
    let fx = Fixture::new();
    let fifo = fx.dir.join("cert.pem");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let huge = fx.write("huge.pem", vec![b'A'; 1024 * 1024 + 1]);
    let devices = [PathBuf::from("/dev/zero"), fifo.clone()];
    for path in devices.iter().chain([&huge]) {
        let err = refused(CertificateCredential::from_file(path, None));
        assert!(
            matches!(&err, CertificateError::Unreadable { path: p, .. } if *p == path.display().to_string()),
            "{path:?}: {err:?}"
        );
        assert!(err.fix().is_some());
    }
    for path in &devices {
        let err = refused(CertificateCredential::from_file(path, None)).to_string();
        assert!(err.contains("not a regular file"), "{err}");
        // The key file and the certificate file given apart are read the same way.
        let good_key = fx.write("key.pem", fx.cert.key_pem());
        let err = refused(CertificateCredential::from_key_and_certificate_files(
            &good_key, path, None,
        ))
        .to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }
    let err = refused(CertificateCredential::from_file(&huge, None)).to_string();
    assert!(err.contains("limit of 1048576 bytes"), "{err}");
}
