//! Persistence: with a state directory, a restart keeps the tenant, apps, secrets, users, the CA and the
//! token-signing key, so tokens and trust survive.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{assertion_request, b64url, client, msal_python_claims, sha1, sign_jwt, token, token_url};
use entra_emulator::{AppRegistration, CertificateFiles, ClientSecret, Directory, Emulator, EmulatorError};

struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("entra-emulator-test-{}", uuid::Uuid::new_v4())))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn a_restart_with_the_same_state_dir_keeps_secrets_trust_and_tokens() {
    let dir = TempDir::new();
    let first = Emulator::builder().state_dir(&dir.0).start().await.unwrap();
    let http1 = client(&first);
    let tok = token(&first, &http1, "daemon").await;
    let (tenant, directory, ca, jwks) = (
        first.tenant_id(),
        first.directory(),
        first.ca_pem().to_owned(),
        http1
            .get(format!("{}/discovery/v2.0/keys", first.authority()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    assert!(first.ca_path().starts_with(&dir.0));
    first.shutdown().await;
    assert!(
        dir.0.join("ca.pem").exists(),
        "a state dir is not removed on shutdown"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for private in ["ca-key.pem", "token-signing-key.pem", "directory.json"] {
            let mode = std::fs::metadata(dir.0.join(private))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{private}");
        }
    }

    let second = Emulator::builder().state_dir(&dir.0).start().await.unwrap();
    assert_eq!(second.tenant_id(), tenant);
    assert_eq!(second.directory(), directory, "same ids, secrets and passwords");
    assert_eq!(second.ca_pem(), ca, "same CA");
    // The old client (trusting the first run's CA) talks to the second run: same CA, new server cert.
    let jwks2 = http1
        .get(format!("{}/discovery/v2.0/keys", second.authority()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let kid = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap()["keys"][0]["kid"].clone();
    assert_eq!(kid(&jwks2), kid(&jwks), "same signing key");
    let resp = http1
        .get(format!("{}/users", second.graph_base()))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "a token from run 1 is accepted by run 2");
}

#[tokio::test]
async fn a_given_directory_is_served_and_persisted() {
    let dir = TempDir::new();
    let mut directory = Directory::seeded();
    let mut app = AppRegistration::new("reporting", "Contoso reporting");
    app.secrets.push(ClientSecret::generate_valid_for_days("ci", 1));
    app.app_roles.push("Directory.Read.All".into());
    directory.tenants[0].apps.push(app.clone());
    directory.tenants[0].users.truncate(3);

    let emu = Emulator::builder()
        .state_dir(&dir.0)
        .directory(directory.clone())
        .start()
        .await
        .unwrap();
    assert_eq!(emu.app("reporting").unwrap(), app);
    // Served as given, plus the held certificate attached to the seeded daemon-certificate app.
    let served = emu.directory();
    let mut without_held = served.clone();
    for a in &mut without_held.tenants[0].apps {
        if a.name == "daemon-certificate" {
            assert_eq!(a.certificates.len(), 1);
            a.certificates.clear();
        }
    }
    assert_eq!(without_held, directory);
    let http = client(&emu);
    let tok = token(&emu, &http, "reporting").await;
    let body: serde_json::Value = http
        .get(format!("{}/users", emu.graph_base()))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["value"].as_array().unwrap().len(),
        3,
        "Directory.Read.All reads users"
    );
    emu.shutdown().await;

    let again = Emulator::builder().state_dir(&dir.0).start().await.unwrap();
    assert_eq!(again.directory(), served);
}

#[tokio::test]
async fn unusable_state_and_directories_are_reported() {
    let dir = TempDir::new();
    std::fs::create_dir_all(&dir.0).unwrap();
    std::fs::write(dir.0.join("directory.json"), "{ not json").unwrap();
    match Emulator::builder().state_dir(&dir.0).start().await {
        Err(EmulatorError::CorruptState { path, .. }) => assert!(path.ends_with("directory.json")),
        other => panic!("expected CorruptState, got {other:?}"),
    }
    match Emulator::builder().directory(Directory::default()).start().await {
        Err(EmulatorError::InvalidDirectory(_)) => {}
        other => panic!("expected InvalidDirectory, got {other:?}"),
    }
    let taken = Emulator::builder().start().await.unwrap();
    let addr: std::net::SocketAddr = taken.https_url().trim_start_matches("https://").parse().unwrap();
    match Emulator::builder().bind(addr).start().await {
        Err(EmulatorError::Bind { addr: a, .. }) => assert_eq!(a, addr),
        other => panic!("expected Bind, got {other:?}"),
    }
}

/// Gets a token for `daemon-certificate` with an assertion signed by `key_pem`.
async fn certificate_token(emu: &Emulator, key_pem: &str, cert_der: &[u8]) -> u16 {
    use rsa::pkcs8::DecodePrivateKey as _;
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(key_pem).unwrap();
    let app = emu.app("daemon-certificate").unwrap();
    let assertion = sign_jwt(
        &key,
        &serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t": b64url(&sha1(cert_der))}),
        &msal_python_claims(&app.app_id, &token_url(emu)),
    );
    assertion_request(&client(emu), &token_url(emu), &app.app_id, &assertion)
        .await
        .status()
        .as_u16()
}

fn contents(files: &CertificateFiles) -> Vec<Vec<u8>> {
    [
        &files.pem_path,
        &files.key_path,
        &files.cert_path,
        &files.pfx_path,
    ]
    .iter()
    .map(|p| std::fs::read(p).unwrap())
    .collect()
}

#[tokio::test]
async fn seeded_certificate_files_persist_and_older_states_gain_them() {
    let dir = TempDir::new();
    let first = Emulator::builder().state_dir(&dir.0).start().await.unwrap();
    let files = first.certificate_files("daemon-certificate").unwrap();
    for path in [
        &files.pem_path,
        &files.key_path,
        &files.cert_path,
        &files.pfx_path,
    ] {
        assert!(path.starts_with(&dir.0), "{}", path.display());
    }
    let before = contents(&files);
    let key_pem = String::from_utf8(before[1].clone()).unwrap();
    let app = first.app("daemon-certificate").unwrap();
    let cert_der = app.certificates[0].cert_der.clone();
    assert_eq!(certificate_token(&first, &key_pem, &cert_der).await, 200);
    first.shutdown().await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for private in [
            "certificates.json",
            "daemon-certificate.pem",
            "daemon-certificate.key.pem",
            "daemon-certificate.pfx",
        ] {
            let mode = std::fs::metadata(dir.0.join(private))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{private}");
        }
    }

    // A restart reuses the files, the password and the registration; run 1's key still authenticates.
    let second = Emulator::builder().state_dir(&dir.0).start().await.unwrap();
    let files2 = second.certificate_files("daemon-certificate").unwrap();
    assert_eq!(files2.pfx_password, files.pfx_password);
    assert_eq!(files2.thumbprint_sha1, files.thumbprint_sha1);
    assert_eq!(files2.pfx_path, files.pfx_path);
    assert_eq!(contents(&files2), before, "files are not rewritten");
    assert_eq!(
        second.app("daemon-certificate").unwrap(),
        app,
        "registered once, same key id"
    );
    assert_eq!(certificate_token(&second, &key_pem, &cert_der).await, 200);
    second.shutdown().await;

    // A state saved before certificate credentials existed: no daemon-certificate app, no `certificates`.
    let path = dir.0.join("directory.json");
    let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let apps = json["tenants"][0]["apps"].as_array_mut().unwrap();
    apps.retain(|a| a["name"] != "daemon-certificate");
    for a in apps.iter_mut() {
        a.as_object_mut().unwrap().remove("certificates");
    }
    std::fs::write(&path, serde_json::to_string(&json).unwrap()).unwrap();
    let third = Emulator::builder().state_dir(&dir.0).start().await.unwrap();
    let migrated = third.app("daemon-certificate").expect("the seeded app is added");
    assert_eq!(migrated.app_id, app.app_id);
    assert_eq!(migrated.certificates.len(), 1);
    assert_eq!(
        migrated.certificates[0].cert_der, cert_der,
        "the held certificate is attached again"
    );
    assert_eq!(certificate_token(&third, &key_pem, &cert_der).await, 200);
    third.shutdown().await;

    // A missing file: a new certificate is generated and registered next to the old one.
    std::fs::remove_file(&files.pfx_path).unwrap();
    let fourth = Emulator::builder().state_dir(&dir.0).start().await.unwrap();
    let files4 = fourth.certificate_files("daemon-certificate").unwrap();
    assert_ne!(files4.thumbprint_sha1, files.thumbprint_sha1);
    assert!(files4.pfx_path.exists());
    let certs = fourth.app("daemon-certificate").unwrap().certificates;
    assert_eq!(certs.len(), 2);
    assert_eq!(certs[1].thumbprint_sha1, files4.thumbprint_sha1);
}
