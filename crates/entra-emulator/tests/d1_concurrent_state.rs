//! Emulators started at once on one fresh state directory (samples started together on a fresh HOME) all
//! start, with the same CA, signing key and directory, and accept each other's tokens — in one process and as
//! separate processes (the `entra-emulator` binary).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{GRAPH_DEFAULT, creds, token};
use entra_emulator::{Description, Emulator};
use serde_json::Value;

const RACERS: usize = 6;

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("entra-emulator-d1-{}", uuid::Uuid::new_v4())))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A client trusting only the CA in a PEM file.
fn client_trusting(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .no_proxy()
        .build()
        .unwrap()
}

/// The `kid`s the emulator at `base` publishes.
async fn published_kids(http: &reqwest::Client, authority: &str) -> Vec<String> {
    let jwks: Value = http
        .get(format!("{authority}/discovery/v2.0/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// Graph `/users` status for `token` at the emulator whose Graph base is `graph`.
async fn graph_status(http: &reqwest::Client, graph: &str, token: &str) -> u16 {
    http.get(format!("{graph}/users"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// An app-only token from the emulator with this authority, for `(client_id, secret)`.
async fn token_from(http: &reqwest::Client, authority: &str, client_id: &str, secret: &str) -> String {
    let resp = http
        .post(format!("{authority}/oauth2/v2.0/token"))
        .form(&[
            ("client_id", client_id),
            ("grant_type", "client_credentials"),
            ("client_secret", secret),
            ("scope", GRAPH_DEFAULT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let body: Value = resp.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn emulators_started_at_once_in_one_process_share_one_state() {
    let dir = TempDir::new();
    let state = dir.0.join("nested/emulator");
    // Half on this runtime, half on threads with runtimes of their own, all released at once.
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(RACERS));
    let (stop, stopped) = tokio::sync::watch::channel(());
    let mut started = Vec::new();
    for i in 0..RACERS {
        let (state, barrier) = (state.clone(), barrier.clone());
        let start = async move {
            barrier.wait().await;
            Emulator::builder().state_dir(state).start().await
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        if i % 2 == 0 {
            tokio::spawn(async move { tx.send(start.await) });
        } else {
            let mut stopped = stopped.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                // The server runs on this runtime: keep driving it until the test is done.
                rt.block_on(async move {
                    let _ = tx.send(start.await);
                    let _ = stopped.changed().await;
                });
            });
        }
        started.push(rx);
    }
    let mut emulators = Vec::new();
    for rx in started {
        emulators.push(rx.await.unwrap().expect("every racer starts"));
    }
    let first = &emulators[0];
    let (id, secret) = creds(first, "daemon");
    let http = client_trusting(first.ca_pem());
    for (i, emu) in emulators.iter().enumerate() {
        assert_eq!(emu.ca_pem(), first.ca_pem(), "emulator {i}: same CA");
        assert_eq!(
            emu.signing_key_id(),
            first.signing_key_id(),
            "emulator {i}: same signing key"
        );
        assert_eq!(emu.directory(), first.directory(), "emulator {i}: same directory");
        assert_eq!(
            emu.certificate_files("daemon-certificate").unwrap(),
            first.certificate_files("daemon-certificate").unwrap(),
            "emulator {i}: same certificate files"
        );
        // Each one's token is good at the next one's Graph (the bug: 401 "Signature is invalid").
        let tok = token_from(&http, &emu.authority(), &id, &secret).await;
        let next = &emulators[(i + 1) % emulators.len()];
        assert_eq!(
            graph_status(&http, &next.graph_base(), &tok).await,
            200,
            "emulator {i}"
        );
        assert_eq!(
            published_kids(&http, &emu.authority()).await,
            [first.signing_key_id()]
        );
    }

    // A later run finds the state complete and consistent.
    let later = Emulator::builder().state_dir(&state).start().await.unwrap();
    assert_eq!(later.signing_key_id(), first.signing_key_id());
    let tok = token(first, &client_trusting(first.ca_pem()), "daemon").await;
    assert_eq!(graph_status(&http, &later.graph_base(), &tok).await, 200);
    drop(emulators);
    drop(stop);
}

/// A running `entra-emulator` process, killed when dropped.
struct Process {
    child: Child,
    description: Description,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary on a free port with `state`, and waits until it says where its description is.
fn spawn_emulator(state: &Path, describe: &Path, home: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_entra-emulator"))
        .args(["--port", "0", "--state"])
        .arg(state)
        .arg("--describe")
        .arg(describe)
        .env("HOME", home)
        .env_remove("ENTRA_EMULATOR_PORT")
        .env_remove("ENTRA_EMULATOR_STATE")
        .env_remove("ENTRA_EMULATOR_DESCRIBE")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the emulator binary starts")
}

/// Reads the child's stdout until its description is written (or it exits, with its stderr in the panic).
fn wait_ready(mut child: Child, describe: &Path) -> Process {
    let stdout = child.stdout.take().unwrap();
    let ready = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.starts_with("Self-description written to"));
    if !ready {
        let status = child.wait().unwrap();
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
        }
        panic!("the emulator exited before it was ready ({status}): {stderr}");
    }
    let description: Description = serde_json::from_str(&std::fs::read_to_string(describe).unwrap()).unwrap();
    Process { child, description }
}

/// The tenants of a description without the per-process authority URLs.
fn without_urls(d: &Description) -> Vec<entra_emulator::TenantDescription> {
    let mut tenants = d.tenants.clone();
    for t in &mut tenants {
        t.authority.clear();
    }
    tenants
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_processes_started_at_once_share_one_state() {
    let dir = TempDir::new();
    let home = dir.0.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let state = home.join(".cache/identity-core/emulator");
    let children: Vec<(Child, PathBuf)> = (0..RACERS)
        .map(|i| {
            let describe = dir.0.join(format!("emulator-{i}.json"));
            (spawn_emulator(&state, &describe, &home), describe)
        })
        .collect();
    let wait = tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|(child, describe)| wait_ready(child, &describe))
            .collect::<Vec<_>>()
    });
    let processes = tokio::time::timeout(Duration::from_secs(180), wait)
        .await
        .expect("every emulator is ready")
        .unwrap();

    let ca = std::fs::read_to_string(state.join("ca.pem")).unwrap();
    let http = client_trusting(&ca);
    let first = &processes[0].description;
    let app = first.tenants[0].apps.iter().find(|a| a.name == "daemon").unwrap();
    let secret = app.client_secret.clone().unwrap();
    let mut kids = Vec::new();
    for (i, p) in processes.iter().enumerate() {
        let d = &p.description;
        assert_eq!(
            without_urls(d),
            without_urls(first),
            "process {i}: same directory"
        );
        // The one CA file on disk is trusted by every process's server certificate.
        let tok = token_from(&http, &d.authority, &app.client_id, &secret).await;
        let next = &processes[(i + 1) % processes.len()].description;
        assert_eq!(
            graph_status(&http, &next.graph_base_url, &tok).await,
            200,
            "a token of process {i} at process {}",
            (i + 1) % processes.len()
        );
        kids.push(published_kids(&http, &d.authority).await);
    }
    assert!(kids.iter().all(|k| k == &kids[0] && k.len() == 1), "{kids:?}");

    // A later in-process run on the same state: same key, and it accepts the processes' tokens.
    let later = Emulator::builder().state_dir(&state).start().await.unwrap();
    assert_eq!(later.signing_key_id(), kids[0][0]);
    assert_eq!(later.ca_pem(), ca);
    let tok = token_from(&http, &first.authority, &app.client_id, &secret).await;
    assert_eq!(graph_status(&http, &later.graph_base(), &tok).await, 200);
}
