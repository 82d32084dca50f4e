//! Fidelity with the reference client: MSAL Python 1.39.0 runs its unchanged confidential-client sample
//! against the emulator, pointed at it only through the authority URL, the CA bundle and
//! `INSTANCE_DISCOVERY=false`.
//!
//! Python comes from `$MSAL_PYTHON` if set, else `<workspace>/target/msal-venv/bin/python`, which is
//! created on first use (`python3 -m venv` + `pip install msal==1.39.0`). The samples come from
//! `$MSAL_PEERS_DIR`, else `<workspace>/../shared/peers/msal-python`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use common::{creds, start};
use entra_emulator::{DEFAULT_TENANT_DOMAIN, Emulator, Endpoint};
use serde_json::Value;

const MSAL_VERSION: &str = "1.39.0";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn peers_dir() -> PathBuf {
    std::env::var_os("MSAL_PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/peers/msal-python"))
}

fn has_msal(python: &Path) -> bool {
    python.exists()
        && Command::new(python)
            .args([
                "-c",
                &format!("import msal, sys; sys.exit(msal.__version__ != '{MSAL_VERSION}')"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

fn run_checked(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{what}: cannot run: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Finds or provisions a Python with msal==1.39.0. The venv is built in a private directory and renamed
/// into place, so concurrent test processes never see a half-built one.
fn provision() -> Result<PathBuf, String> {
    if let Some(python) = std::env::var_os("MSAL_PYTHON") {
        let python = PathBuf::from(python);
        return if has_msal(&python) {
            Ok(python)
        } else {
            Err(format!(
                "MSAL_PYTHON={} cannot import msal {MSAL_VERSION}",
                python.display()
            ))
        };
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let venv = target.join("msal-venv");
    let python = venv.join("bin/python");
    if has_msal(&python) {
        return Ok(python);
    }
    let staging = target.join(format!("msal-venv.staging-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&target).map_err(|e| format!("{}: {e}", target.display()))?;
    let built = run_checked(
        Command::new("python3").args(["-m", "venv"]).arg(&staging),
        "python3 -m venv",
    )
    .and_then(|()| {
        run_checked(
            Command::new(staging.join("bin/python")).args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                &format!("msal=={MSAL_VERSION}"),
            ]),
            "pip install msal",
        )
    });
    if let Err(e) = built {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    if std::fs::rename(&staging, &venv).is_err() {
        // Another process won the race, or a broken venv is in the way.
        if !has_msal(&python) {
            let _ = std::fs::remove_dir_all(&venv);
            std::fs::rename(&staging, &venv).map_err(|e| format!("cannot move the venv into place: {e}"))?;
        } else {
            let _ = std::fs::remove_dir_all(&staging);
        }
    }
    if has_msal(&python) {
        Ok(python)
    } else {
        Err(format!(
            "{} cannot import msal after installing it",
            python.display()
        ))
    }
}

fn python() -> PathBuf {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PYTHON.get_or_init(provision) {
        Ok(p) => p.clone(),
        Err(e) => panic!(
            "MSAL Python is needed for the fidelity tests and could not be provisioned:\n{e}\n\
             Fix: install python3 with venv and pip (Debian: apt-get install python3-venv) and network access to \
             PyPI, or create a venv yourself and point MSAL_PYTHON at its python (pip install msal=={MSAL_VERSION})."
        ),
    }
}

/// Runs the unchanged MSAL Python sample against the emulator (off the async runtime, which keeps
/// serving).
async fn run_sample(emu: &Emulator, authority: &str, client_id: &str, secret: &str) -> Output {
    let script = peers_dir().join("confidential_client_secret_sample.py");
    assert!(
        script.exists(),
        "{} not found; set MSAL_PEERS_DIR",
        script.display()
    );
    let mut cmd = Command::new(python());
    cmd.arg(&script)
        .current_dir(peers_dir())
        .env("AUTHORITY", authority)
        .env("CLIENT_ID", client_id)
        .env("CLIENT_SECRET", secret)
        .env("ENDPOINT", format!("{}/users", emu.graph_base()))
        .env("INSTANCE_DISCOVERY", "false")
        .env("REQUESTS_CA_BUNDLE", emu.ca_path())
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("SCOPE")
        .env_remove("TIMING");
    for proxy in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env_remove(proxy);
    }
    let run = tokio::task::spawn_blocking(move || cmd.output());
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("MSAL Python finishes")
        .expect("join")
        .expect("python starts")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_graph_result(out: &Output, emu: &Emulator) {
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "exit {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        text(&out.stderr)
    );
    let (_, json) = stdout
        .split_once("Graph API call result: \n")
        .expect("the sample's result line");
    let users: Value = serde_json::from_str(json).expect("the users JSON");
    let value = users["value"].as_array().expect("value");
    assert_eq!(value.len(), emu.directory().tenants[0].users.len());
    assert_eq!(value[0]["userPrincipalName"], "AdeleV@contoso.onmicrosoft.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msal_python_client_credentials_sample_runs_unchanged_with_the_guid_authority() {
    let emu = start().await;
    let (id, secret) = creds(&emu, "daemon");
    let out = run_sample(&emu, &emu.authority(), &id, &secret).await;
    assert_graph_result(&out, &emu);
    let counts = emu.request_counts();
    assert_eq!(counts.get(Endpoint::OpenIdConfiguration), 1);
    assert_eq!(counts.get(Endpoint::Token), 1);
    assert_eq!(counts.get(Endpoint::Graph), 1);
    assert_eq!(counts.get(Endpoint::InstanceDiscovery), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msal_python_accepts_the_domain_authority() {
    let emu = start().await;
    let (id, secret) = creds(&emu, "daemon");
    let authority = format!("{}/{DEFAULT_TENANT_DOMAIN}", emu.https_url());
    let out = run_sample(&emu, &authority, &id, &secret).await;
    assert_graph_result(&out, &emu);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msal_python_reports_a_wrong_secret_like_the_real_service() {
    let emu = start().await;
    let (id, _) = creds(&emu, "daemon");
    let out = run_sample(&emu, &emu.authority(), &id, "definitely-not-the-secret").await;
    let stdout = text(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.first().copied(), Some("invalid_client"), "{stdout}");
    assert!(
        stdout.contains("AADSTS7000215: Invalid client secret provided."),
        "{stdout}"
    );
    assert!(
        stdout.contains("Trace ID: ") && stdout.contains("Correlation ID: "),
        "{stdout}"
    );
    // The last line is the correlation id MSAL sent as client-request-id, echoed back.
    let correlation = lines.last().copied().unwrap_or_default();
    assert!(uuid::Uuid::parse_str(correlation).is_ok(), "{stdout}");
    assert!(stdout.contains(&format!("Correlation ID: {correlation}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msal_python_reports_an_expired_secret() {
    let emu = start().await;
    let (id, secret) = creds(&emu, "expired-secret");
    let out = run_sample(&emu, &emu.authority(), &id, &secret).await;
    let stdout = text(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.starts_with("invalid_client\nAADSTS7000222: "), "{stdout}");
}
