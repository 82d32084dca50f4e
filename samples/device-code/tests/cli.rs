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
        "no discovery request"
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
    // Runs again: silently if it got the same port (other processes may hold it, hence the flag). The notice
    // about signing in comes exactly when a sign-in starts, never with a cached token.
    let again = common::run(BIN, &dir, &[], &["--emulator-approve=1"]).await;
    assert!(again.status.success(), "{}", show(&again));
    let stdout = text(&again.stdout);
    let signed_in = stdout.contains("/devicelogin");
    assert_eq!(stdout.contains("will approve the sign-in"), signed_in, "{stdout}");
    assert_eq!(stdout.contains("Found a cached token"), !signed_in, "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn emulator_approve_with_a_tenant_is_refused() {
    let ext = external(|b| b).await;
    let out = common::run(
        BIN,
        &temp_dir("device-code-test"),
        &ext.env(),
        &["--emulator-approve"],
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        stderr.contains("--emulator-approve only applies to the embedded emulator"),
        "{stderr}"
    );
    assert_eq!(ext.emu.request_counts().get(Endpoint::DeviceCode), 0);
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
    // The countdown's first frame is drawn before the first poll is sent, so it is on screen by now.
    let code = ext.polled_code().await;
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

/// tmux, installed with apt-get when missing and running as root (else the test fails saying what to install).
fn tmux_program() -> &'static str {
    use std::process::Command;
    static FOUND: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let found = FOUND.get_or_init(|| {
        let present = || {
            Command::new("tmux")
                .arg("-V")
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if present() {
            return Ok(());
        }
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if !root {
            return Err("it is not installed, and the test is not running as root to install it".into());
        }
        let apt = |args: &[&str]| {
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let install = ["install", "-y", "-qq", "tmux"];
        if !(apt(&install) || (apt(&["update", "-qq"]) && apt(&install))) {
            return Err("apt-get install -y tmux failed".into());
        }
        present()
            .then_some(())
            .ok_or_else(|| "installed, but tmux is not on the PATH".into())
    });
    match found {
        Ok(()) => "tmux",
        Err(e) => panic!("The terminal tests need tmux ({e}).\nFix: apt-get install -y tmux"),
    }
}

/// The sample in a tmux pane of a given size: a real terminal, whose screen the test reads as a person would.
struct Pane {
    socket: std::path::PathBuf,
    dir: std::path::PathBuf,
}

impl Pane {
    fn start(ext: &External, columns: u16, rows: u16, args: &str) -> Pane {
        let dir = temp_dir("device-code-tmux");
        let socket = dir.join("tmux.sock");
        // The pane stays after the sample exits, so that what it printed last can still be read.
        std::fs::write(
            dir.join("tmux.conf"),
            "set -g remain-on-exit on\nset -g history-limit 5000\n",
        )
        .unwrap();
        let mut env = ext.env();
        env.push(("TERM", "xterm-256color"));
        let conf = dir.join("tmux.conf").display().to_string();
        let socket_arg = socket.display().to_string();
        let status = common::command(
            tmux_program(),
            &dir,
            &env,
            &[
                "-S",
                &socket_arg,
                "-f",
                &conf,
                "new-session",
                "-d",
                "-x",
                &columns.to_string(),
                "-y",
                &rows.to_string(),
                &format!("{BIN} {args}"),
            ],
        )
        .status()
        .unwrap();
        assert!(status.success(), "tmux started");
        Pane { socket, dir }
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = std::process::Command::new(tmux_program())
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "tmux {args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    }

    /// The visible screen, one string per row as drawn (wrapped lines stay wrapped).
    fn screen(&self) -> Vec<String> {
        self.tmux(&["capture-pane", "-p"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Everything drawn since the start, history included, wrapped lines joined.
    fn history(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-J", "-S", "-"])
    }

    /// Waits until the screen shows `what`.
    async fn wait_for(&self, what: impl Fn(&str) -> bool) -> Vec<String> {
        for _ in 0..400 {
            let screen = self.screen();
            if what(&screen.join("\n")) {
                return screen;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("never shown; the screen:\n{}", self.screen().join("\n"));
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The "mm:ss left" of a countdown on the screen.
fn countdown_shown(screen: &str) -> Option<String> {
    let end = screen.find(" left")?;
    screen.get(end.checked_sub(5)?..end).map(str::to_string)
}

#[tokio::test(flavor = "multi_thread")]
async fn in_an_80x24_terminal_the_qr_code_the_page_and_the_code_are_all_on_screen() {
    let ext = external(|b| b).await;
    let pane = Pane::start(&ext, 80, 24, "");
    let code = ext.polled_code().await;
    let uri = ext
        .emu
        .device_codes()
        .into_iter()
        .find(|c| c.user_code == code)
        .map(|_| format!("{}/devicelogin", ext.emu.https_url()))
        .unwrap();
    let screen = pane.wait_for(|s| s.contains(" left")).await;
    let drawn = screen.join("\n");
    assert_eq!(screen.len(), 24, "{drawn}");
    // The instructions are last, so the page and the code are in view; the header above the QR code is too,
    // so the whole QR code is.
    assert!(drawn.contains(&format!("    Code: {code}")), "{drawn}");
    let joined = pane.tmux(&["capture-pane", "-p", "-J"]);
    assert!(joined.contains(&uri), "the page: {joined}");
    assert!(drawn.contains(&format!("Or scan this to open {uri}:")), "{drawn}");
    let qr_rows: Vec<&String> = screen
        .iter()
        .filter(|l| !l.is_empty() && l.chars().all(|c| "█▀▄ ".contains(c)))
        .collect();
    assert!(qr_rows.len() >= 15, "a whole QR code: {drawn}");
    let top = qr_rows[0].trim_end();
    assert!(
        !top.is_empty() && top.chars().all(|c| c == '█'),
        "its quiet zone is on screen: {drawn}"
    );
    assert!(countdown_shown(&drawn).is_some(), "{drawn}");

    ext.emu.approve_device_code(&code, DEMO_USERNAME).unwrap();
    pane.wait_for(|s| s.contains("Pane is dead") || s.contains("Graph API call result") && s.contains('}'))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn in_a_narrow_terminal_the_countdown_redraws_in_place() {
    let ext = external(|b| b).await;
    let pane = Pane::start(&ext, 36, 24, "");
    let code = ext.polled_code().await;
    // Wait for the countdown to show two different times: it has been redrawn several times by then.
    let first = pane.wait_for(|s| countdown_shown(s).is_some()).await.join("\n");
    let first = countdown_shown(&first).unwrap();
    let later = pane
        .wait_for(|s| countdown_shown(s).is_some_and(|t| t != first))
        .await
        .join("\n");
    let all = pane.history();
    assert_eq!(
        all.matches(" left").count(),
        1,
        "one countdown line, redrawn in place ({first} then {:?}):\n{all}",
        countdown_shown(&later)
    );
    assert!(later.contains(&code), "the code is on screen: {later}");
    assert!(
        !later.contains('▀') && !later.contains('▄'),
        "no QR code where it does not fit: {later}"
    );

    ext.emu.approve_device_code(&code, DEMO_USERNAME).unwrap();
    pane.wait_for(|s| s.contains("Pane is dead") || s.contains('}'))
        .await;
}
