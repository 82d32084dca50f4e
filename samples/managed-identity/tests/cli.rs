//! The managed-identity binary, run as a user would: with nothing configured (the embedded emulator playing
//! IMDS), and on a "host" whose platform variables point at an emulator's managed-identity endpoints.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

use entra_emulator::{Emulator, ManagedIdentityEndpoint, ManagedIdentityHost};

#[path = "../../tests-common/mod.rs"]
mod common;

use common::{assert_nothing_secret, closed_port, graph_result, temp_dir as temp, text};

const BIN: &str = env!("CARGO_BIN_EXE_managed-identity");

async fn run(dir: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    common::run(BIN, dir, env, args).await
}

fn temp_dir() -> std::path::PathBuf {
    temp("managed-identity-test")
}

/// An emulator and its managed-identity endpoints, standing in for an Azure host and Graph.
async fn host() -> (Emulator, ManagedIdentityHost) {
    let emulator = Emulator::builder().start().await.unwrap();
    let host = emulator.start_managed_identity_host().await.unwrap();
    (emulator, host)
}

/// The platform's variables for `endpoint`, plus Graph at the emulator.
fn host_env(
    emulator: &Emulator,
    host: &ManagedIdentityHost,
    endpoint: ManagedIdentityEndpoint,
) -> Vec<(&'static str, String)> {
    let mut env = host.env(endpoint);
    env.push(("GRAPH_ENDPOINT", format!("{}/users", emulator.graph_base())));
    env.push((
        "IDENTITY_EXTRA_CA_CERTS",
        emulator.ca_path().display().to_string(),
    ));
    env.push(("IDENTITY_CACHE", "memory".into()));
    env
}

fn borrowed<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn with_nothing_configured_it_runs_against_the_embedded_emulator_playing_imds() {
    let dir = temp_dir();
    let out = run(&dir, &[], &[]).await;
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        text(&out.stderr)
    );
    let first_line = stdout.lines().next().unwrap();
    assert!(
        first_line.contains("embedded Entra emulator playing IMDS at http://127.0.0.1:"),
        "{first_line}"
    );
    assert!(stdout.contains("Managed identity source: IMDS."), "{stdout}");
    assert!(
        stdout.contains("Could not find a cached token, so fetching a new one."),
        "{stdout}"
    );
    let users = graph_result(&stdout);
    assert!(!users["value"].as_array().unwrap().is_empty());

    // The second run finds the token in the file cache.
    let again = run(&dir, &[], &[]).await;
    let stdout = text(&again.stdout);
    assert!(again.status.success(), "{stdout}");
    assert!(stdout.contains("Found a cached token"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn on_each_host_it_detects_the_source_and_calls_graph() {
    let (emulator, host) = host().await;
    let cases = [
        (ManagedIdentityEndpoint::Imds, "IMDS"),
        (ManagedIdentityEndpoint::AppService, "App Service"),
        (ManagedIdentityEndpoint::AzureMl, "Azure Machine Learning"),
        (ManagedIdentityEndpoint::ServiceFabric, "Service Fabric"),
    ];
    let secrets: Vec<String> = [
        ManagedIdentityEndpoint::AppService,
        ManagedIdentityEndpoint::AzureMl,
        ManagedIdentityEndpoint::ServiceFabric,
    ]
    .into_iter()
    .flat_map(|e| host.env(e))
    .filter(|(k, _)| *k == "IDENTITY_HEADER" || *k == "MSI_SECRET")
    .map(|(_, v)| v)
    .collect();
    for (endpoint, name) in cases {
        let dir = temp_dir();
        let env = host_env(&emulator, &host, endpoint);
        let before = host.requests(endpoint);
        let out = run(&dir, &borrowed(&env), &["-v"]).await;
        let stdout = text(&out.stdout);
        let stderr = text(&out.stderr);
        assert!(out.status.success(), "{name}: stdout: {stdout}\nstderr: {stderr}");
        assert!(!stdout.contains("emulator playing IMDS"), "{stdout}");
        assert!(
            stdout.contains(&format!("Managed identity source: {name}.")),
            "{stdout}"
        );
        assert!(!graph_result(&stdout)["value"].as_array().unwrap().is_empty());
        assert_eq!(host.requests(endpoint), before + 1, "{name}");
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        assert_nothing_secret(&format!("{stdout}{stderr}"), &secrets);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_assigned_identity_is_chosen_by_its_client_id() {
    let (emulator, host) = host().await;
    let mut env = host_env(&emulator, &host, ManagedIdentityEndpoint::AppService);
    env.push((
        "MANAGED_IDENTITY_CLIENT_ID",
        host.user_assigned().client_id.clone(),
    ));
    let out = run(&temp_dir(), &borrowed(&env), &[]).await;
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));

    // One that is not assigned: the endpoint's refusal, the setting to check, and the fix.
    let mut env = host_env(&emulator, &host, ManagedIdentityEndpoint::AppService);
    env.push((
        "MANAGED_IDENTITY_CLIENT_ID",
        "00000000-1111-2222-3333-444444444444".into(),
    ));
    let out = run(&temp_dir(), &borrowed(&env), &[]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr
            .contains("no managed identity with client id 00000000-1111-2222-3333-444444444444 is assigned"),
        "{stderr}"
    );
    assert!(
        stderr.contains("setting:") && stderr.contains("MANAGED_IDENTITY_CLIENT_ID"),
        "{stderr}"
    );
    assert!(stderr.contains("fix:"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_get_their_exit_codes_and_fixes() {
    let (emulator, host) = host().await;
    // A VM whose IMDS does not answer.
    let closed = format!("http://127.0.0.1:{}", closed_port());
    let out = run(
        &temp_dir(),
        &[
            ("MANAGED_IDENTITY", "host"),
            ("AZURE_POD_IDENTITY_AUTHORITY_HOST", &closed),
        ],
        &[],
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("IMDS managed identity endpoint") && stderr.contains("could not be reached"),
        "{stderr}"
    );

    // Cloud Shell hands out user tokens only.
    let out = run(
        &temp_dir(),
        &[("AZUREPS_HOST_ENVIRONMENT", "cloud-shell/1.0")],
        &[],
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("Cloud Shell"), "{stderr}");

    // A Service Fabric endpoint whose certificate is not the pinned one: nothing is sent to it.
    let mut env = host_env(&emulator, &host, ManagedIdentityEndpoint::ServiceFabric);
    for (k, v) in &mut env {
        if *k == "IDENTITY_SERVER_THUMBPRINT" {
            *v = "AB".repeat(20);
        }
    }
    let out = run(&temp_dir(), &borrowed(&env), &[]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("is not the one pinned by IDENTITY_SERVER_THUMBPRINT"),
        "{stderr}"
    );
    assert_eq!(host.requests(ManagedIdentityEndpoint::ServiceFabric), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn processes_started_together_on_a_cold_file_cache_ask_the_host_once() {
    let (emulator, host) = host().await;
    for (n, endpoint) in [
        (8usize, ManagedIdentityEndpoint::AppService),
        (4, ManagedIdentityEndpoint::Imds),
    ] {
        let dir = temp_dir();
        // The default cache: one file in the user's cache directory, shared by the processes.
        let mut env = host_env(&emulator, &host, endpoint);
        env.retain(|(k, _)| *k != "IDENTITY_CACHE");
        let env = borrowed(&env);
        let before = host.requests(endpoint);
        let commands = (0..n).map(|_| common::command(BIN, &dir, &env, &[])).collect();
        let outputs = common::run_all(commands).await;
        for out in &outputs {
            assert!(
                out.status.success(),
                "stdout: {}\nstderr: {}",
                text(&out.stdout),
                text(&out.stderr)
            );
            assert!(
                !graph_result(&text(&out.stdout))["value"]
                    .as_array()
                    .unwrap()
                    .is_empty()
            );
        }
        let fetched = outputs
            .iter()
            .filter(|o| text(&o.stdout).contains("Could not find a cached token"))
            .count();
        assert_eq!(host.requests(endpoint) - before, 1, "{n} processes, {endpoint:?}");
        // The others waited for the one that asked, then found its token in the file.
        assert_eq!(fetched, 1, "{n} processes, {endpoint:?}");

        // A later run finds the token the first one stored (flushed before it exited).
        let out = run(&dir, &env, &[]).await;
        assert!(
            text(&out.stdout).contains("Found a cached token"),
            "{}",
            text(&out.stdout)
        );
        assert_eq!(host.requests(endpoint) - before, 1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shared_settings_are_checked_as_in_the_other_samples() {
    let (emulator, host) = host().await;
    // Credentials in the Graph URL: refused before anything is sent, the password never shown.
    let mut env = host_env(&emulator, &host, ManagedIdentityEndpoint::AppService);
    env.retain(|(k, _)| *k != "GRAPH_ENDPOINT");
    env.push((
        "GRAPH_ENDPOINT",
        "https://admin:Hunter2pw@graph.microsoft.com/v1.0/users".into(),
    ));
    let before = host.requests(ManagedIdentityEndpoint::AppService);
    let out = run(&temp_dir(), &borrowed(&env), &["-vv"]).await;
    let all = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(
        all.contains("GRAPH_ENDPOINT: the URL holds a user name or password"),
        "{all}"
    );
    assert!(!all.contains("Hunter2pw"), "the password leaked:\n{all}");
    assert_eq!(host.requests(ManagedIdentityEndpoint::AppService), before);

    // A leading ~ in the CA file and the cache file is the home directory, as in .env or a systemd unit.
    let dir = temp_dir();
    let home = dir.join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::copy(emulator.ca_path(), home.join("ca.pem")).unwrap();
    let mut env = host_env(&emulator, &host, ManagedIdentityEndpoint::AppService);
    env.retain(|(k, _)| !["IDENTITY_EXTRA_CA_CERTS", "IDENTITY_CACHE"].contains(k));
    env.push(("IDENTITY_EXTRA_CA_CERTS", "~/ca.pem".into()));
    env.push(("IDENTITY_CACHE_PATH", "~/tokens.json".into()));
    env.push(("HOME", home.display().to_string()));
    let out = run(&dir, &borrowed(&env), &[]).await;
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        home.join("tokens.json").is_file(),
        "the cache is in the home directory"
    );
    assert!(!dir.join("~").exists(), "no directory named ~");
}
