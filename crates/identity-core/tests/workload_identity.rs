//! Workload identity federation over real HTTPS against the emulator, which also plays the cluster's token
//! issuer: a projected token file rotated between requests is picked up without a new client, a token past its
//! `exp` is refused before anything is sent, the callback form is called for each request to the service, and
//! the service's refusals arrive typed with a fix. The token never shows in errors or `Debug`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use entra_emulator::{Emulator, Endpoint, WorkloadToken};
use identity_core::{
    AcquireOptions, Authority, ConfidentialClient, ConfigError, Error, FederatedCredential, FederatedError,
    HttpClient, HttpConfig, TokenSource,
};

const GRAPH_DEFAULT: &str = "https://graph.microsoft.com/.default";

async fn emulator() -> Emulator {
    Emulator::builder().start().await.expect("emulator starts")
}

fn client(emulator: &Emulator, credential: FederatedCredential) -> ConfidentialClient {
    let app = emulator.app("workload").expect("seeded workload app");
    ConfidentialClient::builder(app.app_id, Authority::parse(&emulator.authority()).unwrap())
        .credential(credential)
        .http_client(HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem())).unwrap())
        .build()
        .unwrap()
}

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("idcore-wif-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether an error is the one a case expects.
type IsExpected = fn(&FederatedError) -> bool;

fn force() -> AcquireOptions {
    AcquireOptions::new().with_force_refresh(true)
}

fn token_requests(emulator: &Emulator) -> u64 {
    emulator.request_counts().get(Endpoint::Token)
}

fn service_code(err: &Error) -> i64 {
    match err {
        Error::Service(e) => e.code().unwrap(),
        other => panic!("expected a service error, got {other:?}"),
    }
}

fn write(emulator: &Emulator, path: &Path, token: &WorkloadToken) -> String {
    emulator.write_workload_token_file(path, token).unwrap();
    std::fs::read_to_string(path).unwrap()
}

#[tokio::test]
async fn a_rotated_token_file_is_picked_up_without_a_new_client() {
    let emu = emulator().await;
    let dir = TempDir::new();
    let file = dir.path("azure-identity-token");
    write(&emu, &file, &WorkloadToken::new());
    let app = client(&emu, FederatedCredential::from_file(&file));

    let first = app.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap();
    assert_eq!(first.source, TokenSource::IdentityProvider);
    let cached = app.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap();
    assert_eq!(cached.source, TokenSource::Cache);
    assert_eq!(token_requests(&emu), 1);

    // The kubelet replaces the file (a rename, as it swaps its ..data link) with a token the app's federated
    // credential does not accept: the next request must send it, so the service refuses it.
    let foreign = write(
        &emu,
        &file,
        &WorkloadToken::new().subject("system:serviceaccount:default:other"),
    );
    let err = app
        .acquire_token_for_client_with(&[GRAPH_DEFAULT], force())
        .await
        .unwrap_err();
    assert_eq!(service_code(&err), 700213, "{err}");
    assert!(err.fix().unwrap().contains("subject"), "{:?}", err.fix());
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(&foreign), "the token is never quoted");

    // Rewritten in place (same inode) with a good token again: picked up too.
    let good = emu.workload_token(&WorkloadToken::new()).unwrap();
    std::fs::write(&file, format!("{good}\n")).unwrap();
    let fresh = app
        .acquire_token_for_client_with(&[GRAPH_DEFAULT], force())
        .await
        .unwrap();
    assert_eq!(fresh.source, TokenSource::IdentityProvider);
    assert_ne!(fresh.access_token, first.access_token);
    assert_eq!(token_requests(&emu), 3);
}

#[tokio::test]
async fn an_expired_token_in_the_file_is_refused_before_anything_is_sent() {
    let emu = emulator().await;
    let dir = TempDir::new();
    let file = dir.path("azure-identity-token");
    let expired = write(&emu, &file, &WorkloadToken::new().issued_secs_ago(7200));
    let app = client(&emu, FederatedCredential::from_file(&file));

    let err = app.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap_err();
    assert!(
        matches!(&err, Error::Config(ConfigError::Federated(FederatedError::Expired { ago_secs, .. })) if *ago_secs >= 3600),
        "{err:?}"
    );
    assert!(err.to_string().contains("was not sent"), "{err}");
    assert!(err.fix().unwrap().contains("rotates"), "{:?}", err.fix());
    assert!(!format!("{err} {err:?}").contains(&expired));
    assert_eq!(token_requests(&emu), 0, "nothing reached the token endpoint");

    // Once the kubelet writes a fresh one, the same client goes ahead.
    write(&emu, &file, &WorkloadToken::new());
    let token = app.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap();
    assert_eq!(token.source, TokenSource::IdentityProvider);
    assert_eq!(token_requests(&emu), 1);
}

#[tokio::test]
async fn the_callback_is_asked_for_each_request_to_the_service_and_not_for_cached_tokens() {
    let emu = Arc::new(emulator().await);
    let calls = Arc::new(AtomicUsize::new(0));
    let credential = FederatedCredential::from_callback({
        let (emu, calls) = (emu.clone(), calls.clone());
        move || {
            calls.fetch_add(1, Ordering::SeqCst);
            let token = emu.workload_token(&WorkloadToken::new());
            async move { token }
        }
    });
    let app = client(&emu, credential);
    assert_eq!(
        app.acquire_token_for_client(&[GRAPH_DEFAULT])
            .await
            .unwrap()
            .source,
        TokenSource::IdentityProvider
    );
    assert_eq!(
        app.acquire_token_for_client(&[GRAPH_DEFAULT])
            .await
            .unwrap()
            .source,
        TokenSource::Cache
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    app.acquire_token_for_client_with(&[GRAPH_DEFAULT], force())
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(token_requests(&emu), 2);

    // A failing callback, and one returning something that is not a JWT: typed errors, nothing sent.
    let failing = client(
        &emu,
        FederatedCredential::from_callback(|| async {
            Err::<String, _>(std::io::Error::other("OIDC request denied"))
        }),
    );
    let err = failing
        .acquire_token_for_client(&[GRAPH_DEFAULT])
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Config(ConfigError::Federated(FederatedError::Callback { .. }))
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("OIDC request denied"), "{err}");
    let garbage = client(
        &emu,
        FederatedCredential::from_callback(|| async {
            Ok::<_, std::io::Error>("s3cr3t-not-a-jwt".to_owned())
        }),
    );
    let err = garbage
        .acquire_token_for_client(&[GRAPH_DEFAULT])
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Config(ConfigError::Federated(FederatedError::NotJwt { .. }))
        ),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains("s3cr3t"));
    assert_eq!(token_requests(&emu), 2);
}

#[tokio::test]
async fn unusable_token_files_get_typed_errors_and_nothing_is_sent() {
    let emu = emulator().await;
    let dir = TempDir::new();
    let cases: Vec<(PathBuf, IsExpected)> = vec![
        (dir.path("missing"), |e| {
            matches!(e, FederatedError::NotFound { .. })
        }),
        (dir.0.clone(), |e| matches!(e, FederatedError::Unreadable { .. })),
        (
            {
                let p = dir.path("empty");
                std::fs::write(&p, "\n").unwrap();
                p
            },
            |e| matches!(e, FederatedError::Empty { .. }),
        ),
        (
            {
                let p = dir.path("not-a-jwt");
                std::fs::write(&p, "hunter2-secret").unwrap();
                p
            },
            |e| matches!(e, FederatedError::NotJwt { .. }),
        ),
        (
            {
                let p = dir.path("huge");
                std::fs::write(&p, vec![b'a'; 17 * 1024]).unwrap();
                p
            },
            |e| matches!(e, FederatedError::Unreadable { .. }),
        ),
    ];
    for (path, expected) in cases {
        let err = client(&emu, FederatedCredential::from_file(&path))
            .acquire_token_for_client(&[GRAPH_DEFAULT])
            .await
            .unwrap_err();
        let Error::Config(ConfigError::Federated(federated)) = &err else {
            panic!("{}: {err:?}", path.display());
        };
        assert!(expected(federated), "{}: {federated:?}", path.display());
        assert!(err.fix().is_some());
        assert!(!format!("{err} {err:?}").contains("hunter2"));
    }
    assert_eq!(token_requests(&emu), 0);
}

#[tokio::test]
async fn the_service_refusals_arrive_typed_with_a_fix() {
    let emu = emulator().await;
    let dir = TempDir::new();
    let file = dir.path("token");
    let app = client(&emu, FederatedCredential::from_file(&file));
    for (token, code, fix_word) in [
        (
            WorkloadToken::new().issuer("https://oidc.example.invalid/"),
            700211,
            "issuer",
        ),
        (WorkloadToken::new().audience("api://other"), 700212, "audience"),
        (
            WorkloadToken::new().lifetime_secs(2 * 86400),
            70023,
            "lives longer",
        ),
    ] {
        write(&emu, &file, &token);
        let err = app
            .acquire_token_for_client_with(&[GRAPH_DEFAULT], force())
            .await
            .unwrap_err();
        assert_eq!(service_code(&err), code, "{err}");
        assert!(err.fix().unwrap().contains(fix_word), "{code}: {:?}", err.fix());
    }
}
