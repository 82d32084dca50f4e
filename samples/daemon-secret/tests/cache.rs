//! The file token cache across runs and processes, counted at the emulator.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

#[path = "../../tests-common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::text;
use entra_emulator::{AppRegistration, ClientSecret, Directory, Emulator, Endpoint};

const BIN: &str = env!("CARGO_BIN_EXE_daemon-secret");

struct Setup {
    emu: Emulator,
    dir: PathBuf,
}

impl Setup {
    async fn new(directory: Option<Directory>) -> Setup {
        let mut builder = Emulator::builder();
        if let Some(d) = directory {
            builder = builder.directory(d);
        }
        Setup {
            emu: builder.start().await.unwrap(),
            dir: common::temp_dir("daemon-secret-cache"),
        }
    }

    fn cache_file(&self) -> PathBuf {
        self.dir.join("tokens.json")
    }

    fn env(&self, app: &str) -> Vec<(&'static str, String)> {
        let app = self.emu.app(app).unwrap();
        vec![
            ("AUTHORITY", self.emu.authority()),
            ("AZURE_CLIENT_ID", app.app_id.clone()),
            ("AZURE_CLIENT_SECRET", app.secrets[0].value.clone()),
            (
                "IDENTITY_EXTRA_CA_CERTS",
                self.emu.ca_path().display().to_string(),
            ),
            ("GRAPH_ENDPOINT", format!("{}/users", self.emu.graph_base())),
            ("IDENTITY_CACHE_PATH", self.cache_file().display().to_string()),
        ]
    }

    async fn run(&self, app: &str) -> Output {
        let env = self.env(app);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        common::run(BIN, &self.dir, &env, &[]).await
    }

    fn counts(&self) -> (u64, u64, u64) {
        let c = self.emu.request_counts();
        (
            c.get(Endpoint::OpenIdConfiguration),
            c.get(Endpoint::Token),
            c.get(Endpoint::Graph),
        )
    }
}

fn ok(out: &Output) -> String {
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        text(&out.stderr)
    );
    stdout
}

fn cache_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).expect("the cache file is valid JSON")
}

fn access_tokens(path: &Path) -> usize {
    cache_json(path)["records"]
        .as_object()
        .unwrap()
        .values()
        .filter(|r| r["entry"]["kind"] == "access_token")
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_second_run_asks_neither_for_a_token_nor_for_discovery() {
    let s = Setup::new(None).await;
    let first = ok(&s.run("daemon").await);
    assert!(first.starts_with("Could not find a cached token"), "{first}");
    assert_eq!(
        s.counts(),
        (0, 1, 1),
        "(discovery, token, graph): a cold run makes two requests"
    );

    let second = ok(&s.run("daemon").await);
    assert!(second.starts_with("Found a cached token"), "{second}");
    assert_eq!(
        s.counts(),
        (0, 1, 2),
        "(discovery, token, graph): only Graph was called again"
    );

    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(s.cache_file()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "owner-only cache file");
    let raw = std::fs::read_to_string(s.cache_file()).unwrap();
    assert!(
        cache_json(&s.cache_file())["version"] == 1
            && raw.contains("\"kind\":\"access_token\"")
            && !raw.contains("\"kind\":\"metadata\""),
        "the token, and no discovery document (none was read): {raw}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_cached_token_costs_exactly_one_token_request_and_no_discovery() {
    let s = Setup::new(None).await;
    ok(&s.run("daemon").await);
    // Age the cached token: one minute left, which is under the five-minute margin.
    let mut json = cache_json(&s.cache_file());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for record in json["records"].as_object_mut().unwrap().values_mut() {
        if record["entry"]["kind"] == "access_token" {
            record["entry"]["expires_on"] = (now + 60).into();
        }
    }
    std::fs::write(s.cache_file(), serde_json::to_vec(&json).unwrap()).unwrap();

    let out = ok(&s.run("daemon").await);
    assert!(out.starts_with("Could not find a cached token"), "{out}");
    assert_eq!(s.counts(), (0, 2, 2), "(discovery, token, graph)");
}

/// A directory with `n` extra daemon apps, so each process writes its own cache entry.
fn directory_with_apps(n: usize) -> Directory {
    let mut directory = Directory::seeded();
    for i in 0..n {
        let mut app = AppRegistration::new(&format!("fleet-{i}"), &format!("Fleet daemon {i}"));
        app.secrets
            .push(ClientSecret::generate_valid_for_days("fleet", 30));
        app.app_roles = vec!["User.Read.All".into()];
        directory.tenants[0].apps.push(app);
    }
    directory
}

async fn run_at_once(s: &Setup, apps: &[String]) -> Vec<Output> {
    let commands = apps
        .iter()
        .map(|app| {
            let env = s.env(app);
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            common::command(BIN, &s.dir, &env, &[])
        })
        .collect();
    common::run_all(commands).await
}

#[tokio::test(flavor = "multi_thread")]
async fn processes_started_together_share_one_token_request_and_lose_no_entry() {
    for n in [2usize, 8] {
        // Same app: the processes wait for each other's token request.
        let s = Setup::new(None).await;
        let outputs = run_at_once(&s, &vec!["daemon".to_string(); n]).await;
        outputs.iter().for_each(|o| {
            ok(o);
        });
        let (_, tokens, graph) = s.counts();
        eprintln!("{n} processes, one app, cold file cache: {tokens} token request(s)");
        assert_eq!(tokens, 1, "{n} processes on a cold cache ask once");
        assert_eq!(graph, n as u64);

        // Different apps: every process writes its own entry; none is lost.
        let s = Setup::new(Some(directory_with_apps(n))).await;
        let apps: Vec<String> = (0..n).map(|i| format!("fleet-{i}")).collect();
        let outputs = run_at_once(&s, &apps).await;
        outputs.iter().for_each(|o| {
            ok(o);
        });
        assert_eq!(s.counts().1, n as u64);
        assert_eq!(access_tokens(&s.cache_file()), n, "{n} processes, {n} entries");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_memory_cache_asks_every_run_and_a_bad_cache_setting_is_refused() {
    let s = Setup::new(None).await;
    let mut env = s.env("daemon");
    env.push(("IDENTITY_CACHE", "memory".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    ok(&common::run(BIN, &s.dir, &env, &[]).await);
    ok(&common::run(BIN, &s.dir, &env, &[]).await);
    assert_eq!(s.counts().1, 2);
    assert!(!s.cache_file().exists());

    let mut bad = env.clone();
    bad.push(("IDENTITY_CACHE", "postgres://x"));
    let out = common::run(BIN, &s.dir, &bad, &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("IDENTITY_CACHE"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_encrypted_file_cache_is_silent_on_the_second_run_and_opaque_on_disk() {
    let s = Setup::new(None).await;
    let mut env = s.env("daemon");
    env.push(("IDENTITY_CACHE", "encrypted-file".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    ok(&common::run(BIN, &s.dir, &env, &[]).await);
    let second = ok(&common::run(BIN, &s.dir, &env, &[]).await);
    assert!(second.starts_with("Found a cached token"), "{second}");
    assert_eq!(s.counts(), (0, 1, 2));
    let raw = std::fs::read_to_string(s.cache_file()).unwrap();
    let json: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(json["encryption"]["alg"], "A256GCM", "{raw}");
    assert!(!raw.contains("access_token") && !raw.contains("eyJ"), "{raw}");
}
