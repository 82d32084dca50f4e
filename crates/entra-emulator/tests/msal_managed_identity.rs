//! Fidelity of the managed-identity endpoints with the reference client: MSAL Python 1.39.0's
//! `ManagedIdentityClient` (`msal-python/managed_identity_sample.py`) gets tokens from the emulator's IMDS (through
//! MSAL's host override, `AZURE_POD_IDENTITY_AUTHORITY_HOST`) and App Service (through `IDENTITY_ENDPOINT` and
//! `IDENTITY_HEADER`), system- and user-assigned, and Graph accepts them.
//!
//! Python comes from `$MSAL_PYTHON` if set, else `<workspace>/target/msal-venv/bin/python`, created on first use.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use entra_emulator::{Emulator, ManagedIdentityEndpoint, ManagedIdentityHost};
use serde_json::Value;

fn python() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    test_support::msal_python::provision(&target).unwrap_or_else(|e| {
        panic!("MSAL Python is needed for the fidelity tests and could not be provisioned:\n{e}")
    })
}

/// Runs the managed-identity sample with only `vars` among the managed-identity variables.
async fn run(emu: &Emulator, vars: Vec<(&'static str, String)>) -> Output {
    let dir = test_support::msal_python::samples_dir();
    let mut cmd = Command::new(python());
    cmd.arg(dir.join("managed_identity_sample.py"))
        .current_dir(&dir)
        .env("ENDPOINT", format!("{}/users", emu.graph_base()))
        .env("REQUESTS_CA_BUNDLE", emu.ca_path())
        .env("NO_PROXY", "127.0.0.1,localhost");
    for name in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
        "IDENTITY_SERVER_THUMBPRINT",
        "IMDS_ENDPOINT",
        "MSI_ENDPOINT",
        "MSI_SECRET",
        "AZUREPS_HOST_ENVIRONMENT",
        "AZURE_POD_IDENTITY_AUTHORITY_HOST",
        "MANAGED_IDENTITY_CLIENT_ID",
    ] {
        cmd.env_remove(name);
    }
    for (name, value) in vars {
        cmd.env(name, value);
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

/// MSAL got a token from the endpoint, then from its cache, and Graph answered with the users.
fn assert_success(out: &Output, what: &str) {
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "{what}: stdout: {stdout}\nstderr: {}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("token source: identity_provider"),
        "{what}: {stdout}"
    );
    assert!(stdout.contains("second token source: cache"), "{what}: {stdout}");
    let (_, json) = stdout
        .split_once("Graph API call result: \n")
        .expect("the result header");
    let users: Value = serde_json::from_str(json).expect("Graph's JSON");
    assert!(!users["value"].as_array().unwrap().is_empty(), "{what}: {json}");
}

async fn start() -> (Emulator, ManagedIdentityHost) {
    let emu = Emulator::builder().start().await.unwrap();
    let host = emu.start_managed_identity_host().await.unwrap();
    (emu, host)
}

#[tokio::test(flavor = "multi_thread")]
async fn msal_python_gets_managed_identity_tokens_from_imds_and_app_service() {
    let (emu, host) = start().await;
    for endpoint in [ManagedIdentityEndpoint::Imds, ManagedIdentityEndpoint::AppService] {
        let before = host.requests(endpoint);
        let out = run(&emu, host.env(endpoint)).await;
        assert_success(&out, &format!("{endpoint:?}"));
        assert_eq!(
            host.requests(endpoint),
            before + 1,
            "{endpoint:?}: one request, then MSAL's cache"
        );

        let mut vars = host.env(endpoint);
        vars.push((
            "MANAGED_IDENTITY_CLIENT_ID",
            host.user_assigned().client_id.clone(),
        ));
        assert_success(&run(&emu, vars).await, &format!("{endpoint:?}, user-assigned"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn msal_python_reads_the_error_answers() {
    let (emu, host) = start().await;
    let mut vars = host.env(ManagedIdentityEndpoint::Imds);
    vars.push((
        "MANAGED_IDENTITY_CLIENT_ID",
        "00000000-1111-2222-3333-444444444444".into(),
    ));
    let out = run(&emu, vars).await;
    let stdout = text(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("invalid_request") && stdout.contains("Identity not found"),
        "{stdout}"
    );

    let mut vars = host.env(ManagedIdentityEndpoint::AppService);
    vars.push((
        "MANAGED_IDENTITY_CLIENT_ID",
        "00000000-1111-2222-3333-444444444444".into(),
    ));
    let out = run(&emu, vars).await;
    let stdout = text(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    // MSAL reports App Service's {statusCode, message} as "400, <message>".
    assert!(stdout.contains("400, No managed identity found"), "{stdout}");
}
