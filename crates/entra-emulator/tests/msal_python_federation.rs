//! Fidelity of workload identity federation with the reference client: MSAL Python 1.39.0's
//! `ConfidentialClientApplication` with `client_credential={"client_assertion": ...}` — a callable re-reading
//! the token file for every request, as the AKS samples do, and a plain string — exchanges a service-account
//! token minted by the emulator's issuer for a Graph token and calls Graph; a token the federated credential does
//! not match comes back to MSAL as the service's error.
//!
//! Python comes from `$MSAL_PYTHON` if set, else `<workspace>/target/msal-venv/bin/python` (created on first use).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::start;
use entra_emulator::{Emulator, Endpoint, WorkloadToken};
use serde_json::Value;

fn python() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    test_support::msal_python::provision(&target).unwrap_or_else(|e| {
        panic!("MSAL Python is needed for the fidelity tests and could not be provisioned:\n{e}")
    })
}

async fn run(emu: &Emulator, token_file: &Path, form: &str) -> Output {
    let dir = test_support::msal_python::samples_dir();
    let mut cmd = Command::new(python());
    cmd.arg(dir.join("confidential_client_federated_sample.py"))
        .current_dir(&dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AUTHORITY", emu.authority())
        .env("CLIENT_ID", emu.app("workload").unwrap().app_id)
        .env("FEDERATED_TOKEN_FILE", token_file)
        .env("ASSERTION_FORM", form)
        .env("ENDPOINT", format!("{}/users", emu.graph_base()))
        .env("INSTANCE_DISCOVERY", "false")
        .env("REQUESTS_CA_BUNDLE", emu.ca_path())
        .env("NO_PROXY", "127.0.0.1,localhost");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msal_python_exchanges_a_federated_token_as_a_callable_and_as_a_string() {
    let emu = start().await;
    let dir = std::env::temp_dir().join(format!(
        "msal-wif-{}-{}",
        std::process::id(),
        emu.https_url().rsplit(':').next().unwrap()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("azure-identity-token");
    emu.write_workload_token_file(&file, &WorkloadToken::new())
        .unwrap();
    for (n, form) in ["callable", "string"].into_iter().enumerate() {
        let out = run(&emu, &file, form).await;
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "{form}: exit {}\nstdout:\n{stdout}\nstderr:\n{}",
            out.status,
            text(&out.stderr)
        );
        let (_, json) = stdout
            .split_once("Graph API call result: ")
            .expect("the result line");
        let users: Value = serde_json::from_str(json.trim_start()).expect("the users JSON");
        assert_eq!(
            users["value"].as_array().unwrap().len(),
            emu.directory().tenants[0].users.len()
        );
        assert_eq!(emu.request_counts().get(Endpoint::Token), n as u64 + 1, "{form}");
    }

    // A token for another service account: MSAL gets the service's AADSTS700213 and prints it.
    emu.write_workload_token_file(
        &file,
        &WorkloadToken::new().subject("system:serviceaccount:prod:api"),
    )
    .unwrap();
    let out = run(&emu, &file, "callable").await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.starts_with("invalid_client\nAADSTS700213: No matching federated identity record found"),
        "{stdout}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
