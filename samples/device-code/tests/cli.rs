//! The device-code binary, run as a user would, with the sign-in approved, declined or abandoned at the emulator.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

use std::process::{Output, Stdio};
use std::time::Duration;

use entra_emulator::{DEMO_USERNAME, Emulator, EmulatorBuilder, Endpoint};

#[path = "../../tests-common/mod.rs"]
mod common;

use common::{assert_nothing_secret, graph_result, temp_dir, text};

const BIN: &str = env!("CARGO_BIN_EXE_device-code");

/// An emulator polled every second, and the environment that points the sample at it.
struct External {
    emu: Emulator,
    env: Vec<(String, String)>,
}

async fn external(configure: impl FnOnce(EmulatorBuilder) -> EmulatorBuilder) -> External {
    let emu = configure(Emulator::builder().device_code_interval(1))
        .start()
        .await
        .unwrap();
    let app = emu.app("device-code").unwrap();
    let env = vec![
        ("AZURE_AUTHORITY_HOST".to_string(), emu.https_url()),
        ("AZURE_TENANT_ID".to_string(), emu.tenant_id()),
        ("AZURE_CLIENT_ID".to_string(), app.app_id.clone()),
        ("GRAPH_ENDPOINT".to_string(), format!("{}/me", emu.graph_base())),
        (
            "IDENTITY_EXTRA_CA_CERTS".to_string(),
            emu.ca_path().display().to_string(),
        ),
    ];
    External { emu, env }
}

impl External {
    fn env(&self) -> Vec<(&str, &str)> {
        self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    /// Starts the sample in `dir` with piped output.
    fn spawn(&self, dir: &std::path::Path, args: &[&str]) -> std::process::Child {
        common::command(BIN, dir, &self.env(), args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Waits for the sample's device code to be polled at least once, then returns its user code.
    async fn polled_code(&self) -> String {
        let code = self
            .emu
            .wait_for_device_code(Duration::from_secs(20))
            .await
            .expect("a device code");
        for _ in 0..200 {
            let info = self
                .emu
                .device_codes()
                .into_iter()
                .find(|c| c.user_code == code.user_code)
                .unwrap();
            if info.poll_count >= 1 {
                return info.user_code;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the sample never polled");
    }
}

async fn wait(child: std::process::Child) -> Output {
    tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap()
}

fn show(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn approved_sign_in_prints_me_and_the_second_run_is_silent() {
    let ext = external(|b| b).await;
    let dir = temp_dir("device-code-test");

    let child = ext.spawn(&dir, &[]);
    let code = ext.polled_code().await;
    ext.emu.approve_device_code(&code, DEMO_USERNAME).unwrap();
    let out = wait(child).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", show(&out));
    // The service's message with the code; no QR code or countdown when stdout is not a terminal.
    assert!(stdout.contains(&format!("enter the code {code}")), "{stdout}");
    assert!(
        !stdout.contains('▀') && !stdout.contains('▄'),
        "no QR code in a pipe"
    );
    assert!(
        !text(&out.stderr).contains("Waiting for you"),
        "no countdown in a pipe"
    );
    assert!(stdout.contains("Could not find a cached token"), "{stdout}");
    assert!(
        stdout.contains(&format!("Signed in as {DEMO_USERNAME}"))
            || stdout.to_lowercase().contains(&DEMO_USERNAME.to_lowercase())
    );
    let me = graph_result(&stdout);
    assert!(
        me["userPrincipalName"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case(DEMO_USERNAME),
        "{me}"
    );
    assert_nothing_secret(&format!("{stdout}{}", text(&out.stderr)), &[]);

    // Second run: the account is cached; no code, no token request, no discovery; one Graph call.
    ext.emu.reset_request_counts();
    let out = common::run(BIN, &dir, &ext.env(), &[]).await;
    assert!(out.status.success(), "{}", show(&out));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("Found a cached token"), "{stdout}");
    let counts = ext.emu.request_counts();
    assert_eq!(counts.get(Endpoint::DeviceCode), 0);
    assert_eq!(counts.get(Endpoint::Token), 0);
    assert_eq!(counts.get(Endpoint::OpenIdConfiguration), 0);
    assert_eq!(counts.get(Endpoint::Graph), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_access_token_is_renewed_with_the_refresh_token_without_a_prompt() {
    // Tokens shorter than the five-minute margin count as expired on the next run.
    let ext = external(|b| b.token_lifetime(Duration::from_secs(120))).await;
    let dir = temp_dir("device-code-test");
    let child = ext.spawn(&dir, &[]);
    let code = ext.polled_code().await;
    ext.emu.approve_device_code(&code, DEMO_USERNAME).unwrap();
    assert!(wait(child).await.status.success());

    ext.emu.reset_request_counts();
    let out = common::run(BIN, &dir, &ext.env(), &[]).await;
    assert!(out.status.success(), "{}", show(&out));
    assert!(text(&out.stdout).contains("Could not find a cached token"));
    let counts = ext.emu.request_counts();
    assert_eq!(counts.get(Endpoint::DeviceCode), 0, "no prompt");
    assert_eq!(counts.get(Endpoint::Token), 1, "one refresh");
    assert_eq!(
        counts.get(Endpoint::OpenIdConfiguration),
        0,
        "discovery is cached too"
    );

    // A revoked refresh token: the sample says so and signs in again.
    ext.emu.revoke_refresh_tokens(DEMO_USERNAME);
    let child = ext.spawn(&dir, &[]);
    let code = ext.polled_code().await;
    ext.emu.approve_device_code(&code, DEMO_USERNAME).unwrap();
    let out = wait(child).await;
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        text(&out.stdout).contains("The cached sign-in is no longer accepted (AADSTS50173"),
        "{}",
        show(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declined_sign_in_exits_3_with_the_fix() {
    let ext = external(|b| b).await;
    let dir = temp_dir("device-code-test");
    let child = ext.spawn(&dir, &[]);
    let code = ext.polled_code().await;
    ext.emu.decline_device_code(&code).unwrap();
    let out = wait(child).await;
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("authorization_declined"), "{stderr}");
    assert!(stderr.contains("fix:") && stderr.contains("Accept"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_abandoned_sign_in_gives_up_when_the_code_expires() {
    let ext = external(|b| b.device_code_lifetime(Duration::from_secs(3))).await;
    let out = common::run(BIN, &temp_dir("device-code-test"), &ext.env(), &[]).await;
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("expired"), "{stderr}");
    assert!(stderr.contains("Run again"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_stops_waiting_with_exit_130_and_caches_no_account() {
    let ext = external(|b| b).await;
    let dir = temp_dir("device-code-test");
    let cache = dir.join("cache.json");
    let mut env = ext.env();
    let cache_path = cache.display().to_string();
    env.push(("IDENTITY_CACHE_PATH", &cache_path));
    let child = common::command(BIN, &dir, &env, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    ext.polled_code().await;
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = wait(child).await;
    assert_eq!(out.status.code(), Some(130), "{}", show(&out));
    assert!(text(&out.stderr).contains("cancelled"), "{}", show(&out));
    // The cache holds the discovery document at most: valid JSON, no account.
    if cache.exists() {
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&cache).unwrap()).unwrap();
        assert!(!json.to_string().contains("\"account\""), "{json}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn public_client_flows_disabled_is_explained() {
    let ext = external(|b| b).await;
    let app = ext.emu.app("public-flows-disabled").unwrap();
    let mut env = ext.env();
    env.retain(|(k, _)| *k != "AZURE_CLIENT_ID");
    env.push(("AZURE_CLIENT_ID", &app.app_id));
    // The token endpoint refuses the first poll: a public client without a credential is not allowed.
    let out = common::run(BIN, &temp_dir("device-code-test"), &env, &[]).await;
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("AADSTS7000218") && stderr.contains("Allow public client flows"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_nothing_configured_the_embedded_emulator_can_approve_for_the_user() {
    let dir = temp_dir("device-code-test");
    let out = common::run(BIN, &dir, &[], &["--emulator-approve=1", "--no-qr"]).await;
    assert!(out.status.success(), "{}", show(&out));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("embedded Entra emulator"), "{stdout}");
    assert!(
        stdout.contains("will approve the sign-in as its demo user"),
        "{stdout}"
    );
    assert!(stdout.contains("/devicelogin"), "{stdout}");
    let me = graph_result(&stdout);
    assert!(
        me["userPrincipalName"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case(DEMO_USERNAME)
    );
    // Runs again (silently if it got the same port; other tests may hold it, hence the flag).
    let again = common::run(BIN, &dir, &[], &["--emulator-approve=1"]).await;
    assert!(again.status.success(), "{}", show(&again));
}

/// Runs the sample under `script`, which gives it a pseudo-terminal, as when a person runs it.
fn in_terminal(ext: &External, dir: &std::path::Path, args: &str) -> std::process::Child {
    common::command(
        "script",
        dir,
        &ext.env(),
        &["-q", "-e", "-c", &format!("{BIN} {args}"), "/dev/null"],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn in_a_terminal_it_shows_the_code_a_qr_code_and_a_countdown() {
    let ext = external(|b| b).await;
    let child = in_terminal(&ext, &temp_dir("device-code-test"), "");
    let code = ext.polled_code().await;
    // Let the countdown tick a few times before approving.
    tokio::time::sleep(Duration::from_millis(600)).await;
    ext.emu.approve_device_code(&code, DEMO_USERNAME).unwrap();
    let out = wait(child).await;
    assert!(out.status.success(), "{}", show(&out));
    let screen = text(&out.stdout);
    assert!(screen.contains(&format!("Code: \x1b[1m{code}")), "{screen}");
    assert!(
        screen.contains('▀') || screen.contains('▄'),
        "a QR code: {screen}"
    );
    assert!(
        screen.contains("Waiting for you to sign in"),
        "a countdown: {screen}"
    );
    assert!(screen.contains("Graph API call result"), "{screen}");

    let child = in_terminal(&ext, &temp_dir("device-code-test"), "--no-qr");
    let code = ext.polled_code().await;
    ext.emu.approve_device_code(&code, DEMO_USERNAME).unwrap();
    let out = wait(child).await;
    assert!(out.status.success(), "{}", show(&out));
    let screen = text(&out.stdout);
    assert!(
        screen.contains(&code) && !screen.contains('▀') && !screen.contains('▄'),
        "{screen}"
    );
}
