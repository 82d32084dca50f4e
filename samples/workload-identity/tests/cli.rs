//! The workload-identity binary, run as a user would: with nothing configured (the embedded emulator plays the
//! cluster's token issuer too), and configured as the AKS webhook configures a pod (AZURE_CLIENT_ID,
//! AZURE_TENANT_ID, AZURE_AUTHORITY_HOST, AZURE_FEDERATED_TOKEN_FILE), with a token file the emulator
//! projects; a missing file, an expired token and a token the app's federated credential does not match each
//! give a clear error naming the setting, without quoting the token.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

use entra_emulator::{Emulator, Endpoint, WorkloadToken};

#[path = "../../tests-common/mod.rs"]
mod common;

use common::{assert_nothing_secret, graph_result, temp_dir as temp, text};

const BIN: &str = env!("CARGO_BIN_EXE_workload-identity");

async fn run(dir: &std::path::Path, env: &[(&str, &str)]) -> std::process::Output {
    common::run(BIN, dir, env, &[]).await
}

fn temp_dir() -> std::path::PathBuf {
    temp("workload-identity-test")
}

/// The variables the AKS workload identity webhook injects, pointing at `emu`, plus the CA and Graph URL.
fn webhook_env(emu: &Emulator, token_file: &str, ca: &str) -> Vec<(&'static str, String)> {
    vec![
        // The webhook sets the host with a trailing slash.
        ("AZURE_AUTHORITY_HOST", format!("{}/", emu.https_url())),
        ("AZURE_TENANT_ID", emu.tenant_id()),
        ("AZURE_CLIENT_ID", emu.app("workload").unwrap().app_id),
        ("AZURE_FEDERATED_TOKEN_FILE", token_file.to_owned()),
        ("GRAPH_ENDPOINT", format!("{}/users", emu.graph_base())),
        ("IDENTITY_EXTRA_CA_CERTS", ca.to_owned()),
        ("IDENTITY_CACHE", "memory".to_owned()),
    ]
}

fn borrow<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn with_nothing_configured_it_runs_against_the_embedded_emulator_as_the_token_issuer() {
    let dir = temp_dir();
    let out = run(&dir, &[]).await;
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        text(&out.stderr)
    );
    let first_line = stdout.lines().next().unwrap();
    assert!(
        first_line.contains("embedded Entra emulator at https://127.0.0.1:"),
        "{first_line}"
    );
    assert!(
        stdout.contains("Contoso workload (federated credential)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("plays the cluster's token issuer")
            && stdout.contains(entra_emulator::WORKLOAD_SUBJECT),
        "{stdout}"
    );
    assert!(stdout.contains("Could not find a cached token, so fetching a new one."));
    let users = graph_result(&stdout);
    assert!(!users["value"].as_array().unwrap().is_empty());
    assert_nothing_secret(&format!("{stdout}{}", text(&out.stderr)), &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn configured_as_the_aks_webhook_does_it_exchanges_the_projected_token() {
    let emu = Emulator::builder().start().await.unwrap();
    let dir = temp_dir();
    let file = dir.join("azure-identity-token");
    let projected = emu
        .project_workload_token(&file, std::time::Duration::from_secs(3600))
        .unwrap();
    let token = std::fs::read_to_string(projected.path()).unwrap();
    let ca = emu.ca_path().display().to_string();
    let env = webhook_env(&emu, &file.display().to_string(), &ca);
    let out = run(&dir, &borrow(&env)).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        !stdout.contains("emulator"),
        "configured runs do not start the embedded emulator"
    );
    let users = graph_result(&stdout);
    assert_eq!(
        users["value"].as_array().unwrap().len(),
        emu.directory().tenants[0].users.len().min(100)
    );
    assert_eq!(emu.request_counts().get(Endpoint::Token), 1);
    assert_nothing_secret(&format!("{stdout}{stderr}"), &[&token]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_file_an_expired_token_and_a_foreign_subject_get_clear_errors() {
    let emu = Emulator::builder().start().await.unwrap();
    let dir = temp_dir();
    let ca = emu.ca_path().display().to_string();

    // No token file: a configuration error naming the variable (exit 2), nothing sent.
    let missing = dir.join("nowhere").display().to_string();
    let out = run(&dir, &borrow(&webhook_env(&emu, &missing, &ca))).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("not found") && stderr.contains("AZURE_FEDERATED_TOKEN_FILE"),
        "{stderr}"
    );

    // An expired token: refused before sending (exit 2), the token never printed.
    let file = dir.join("token");
    emu.write_workload_token_file(&file, &WorkloadToken::new().issued_secs_ago(7200))
        .unwrap();
    let expired = std::fs::read_to_string(&file).unwrap();
    let out = run(
        &dir,
        &borrow(&webhook_env(&emu, &file.display().to_string(), &ca)),
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("expired") && stderr.contains("AZURE_FEDERATED_TOKEN_FILE"),
        "{stderr}"
    );
    assert_nothing_secret(&format!("{}{stderr}", text(&out.stdout)), &[&expired]);
    assert_eq!(emu.request_counts().get(Endpoint::Token), 0);

    // A token for another service account: the service's AADSTS700213 with the fix (exit 3).
    emu.write_workload_token_file(
        &file,
        &WorkloadToken::new().subject("system:serviceaccount:prod:api"),
    )
    .unwrap();
    let foreign = std::fs::read_to_string(&file).unwrap();
    let out = run(
        &dir,
        &borrow(&webhook_env(&emu, &file.display().to_string(), &ca)),
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("AADSTS700213") && stderr.contains("system:serviceaccount:prod:api"),
        "{stderr}"
    );
    assert!(stderr.contains("AZURE_FEDERATED_TOKEN_FILE"), "{stderr}");
    assert_nothing_secret(&format!("{}{stderr}", text(&out.stdout)), &[&foreign]);
}
