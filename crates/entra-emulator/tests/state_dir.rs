//! Persistence: with a state directory, a restart keeps the tenant, apps, secrets, users, the CA and the
//! token-signing key, so tokens and trust survive.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{client, token};
use entra_emulator::{AppRegistration, ClientSecret, Directory, Emulator, EmulatorError};

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
    assert_eq!(again.directory(), directory);
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
