//! The username-password binary, run as a user would: success, silence on the second run, and every documented
//! failure with its fix, never showing the password.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

use entra_emulator::{DEMO_PASSWORD, DEMO_USERNAME, Emulator, Endpoint};

#[path = "../../tests-common/mod.rs"]
mod common;

use common::{assert_nothing_secret, graph_result, temp_dir, text};

const BIN: &str = env!("CARGO_BIN_EXE_username-password");

fn show(out: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

struct External {
    emu: Emulator,
    env: Vec<(String, String)>,
}

async fn external() -> External {
    let emu = Emulator::builder().start().await.unwrap();
    let app = emu.app("username-password").unwrap();
    let env = vec![
        ("AZURE_AUTHORITY_HOST".to_string(), emu.https_url()),
        ("AZURE_TENANT_ID".to_string(), emu.tenant_id()),
        ("AZURE_CLIENT_ID".to_string(), app.app_id.clone()),
        (
            "GRAPH_ENDPOINT".to_string(),
            format!("{}/users", emu.graph_base()),
        ),
        (
            "IDENTITY_EXTRA_CA_CERTS".to_string(),
            emu.ca_path().display().to_string(),
        ),
    ];
    External { emu, env }
}

impl External {
    /// Runs the sample as `username` with `password`, with every log on (`-vv`, `RUST_LOG=trace`).
    async fn run_as(&self, username: &str, password: &str, extra: &[(&str, &str)]) -> std::process::Output {
        let mut env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        env.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
        env.extend_from_slice(extra);
        env.extend([
            ("AZURE_USERNAME", username),
            ("AZURE_PASSWORD", password),
            ("RUST_LOG", "trace"),
        ]);
        let out = common::run(BIN, &temp_dir("ropc-test"), &env, &["-vv"]).await;
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert_nothing_secret(&all, &[password]);
        out
    }

    fn user(&self, alias: &str) -> (String, String) {
        let upn = format!("{alias}@{}", self.emu.tenant_domain());
        let password = self
            .emu
            .directory()
            .default_tenant()
            .and_then(|t| t.user(&upn).map(|u| u.password.clone()))
            .unwrap_or_else(|| "No-Such-User-Password-1".into());
        (upn, password)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn signs_in_calls_graph_and_the_second_run_sends_no_password() {
    let ext = external().await;
    let dir = temp_dir("ropc-test");
    let env: Vec<(&str, &str)> = ext
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain([
            ("AZURE_USERNAME", DEMO_USERNAME),
            ("AZURE_PASSWORD", DEMO_PASSWORD),
        ])
        .collect();
    let out = common::run(BIN, &dir, &env, &[]).await;
    assert!(out.status.success(), "{}", show(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("warning: the username/password flow is legacy"),
        "{stderr}"
    );
    assert!(
        stderr.contains("device-code"),
        "the warning names the alternative"
    );
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("Could not find a cached token"), "{stdout}");
    assert!(!graph_result(&stdout)["value"].as_array().unwrap().is_empty());
    let counts = ext.emu.request_counts();
    assert_eq!(counts.get(Endpoint::UserRealm), 1);
    assert_eq!(counts.get(Endpoint::Token), 1);

    ext.emu.reset_request_counts();
    let out = common::run(BIN, &dir, &env, &[]).await;
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        text(&out.stdout).starts_with("Found a cached token"),
        "{}",
        show(&out)
    );
    let counts = ext.emu.request_counts();
    assert_eq!(counts.get(Endpoint::Token), 0);
    assert_eq!(counts.get(Endpoint::UserRealm), 0);
    assert_eq!(counts.get(Endpoint::OpenIdConfiguration), 0);
    assert_eq!(counts.get(Endpoint::Graph), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_failure_reaches_the_user_with_its_fix_and_never_the_password() {
    let ext = external().await;
    let wrong = ext.run_as(DEMO_USERNAME, "Wr0ng-Passw0rd-Value!", &[]).await;
    assert_eq!(wrong.status.code(), Some(3), "{}", show(&wrong));
    assert!(text(&wrong.stderr).contains("AADSTS50126"), "{}", show(&wrong));

    for (alias, code, fix_says) in [
        ("nobody.here", "AADSTS50034", "not in this directory"),
        ("mfa.user", "AADSTS50076", "device-code"),
        ("mfa.register", "AADSTS50079", "device-code"),
        ("locked.user", "AADSTS50053", "locked"),
        ("expired.password", "AADSTS50055", "expired"),
        ("disabled.user", "AADSTS50057", "disabled"),
        ("ca.blocked", "AADSTS53003", "Conditional Access"),
        ("no.consent", "AADSTS65001", "consent"),
    ] {
        let (upn, password) = ext.user(alias);
        let out = ext.run_as(&upn, &password, &[]).await;
        assert_eq!(out.status.code(), Some(3), "{alias}: {}", show(&out));
        let stderr = text(&out.stderr);
        assert!(stderr.contains(code), "{alias}: {stderr}");
        let fix = stderr
            .lines()
            .find(|l| l.trim_start().starts_with("fix:"))
            .unwrap_or_default();
        assert!(fix.contains(fix_says), "{alias}: {fix}");
        if alias == "no.consent" {
            assert!(
                text(&out.stdout).contains("adminconsent?client_id="),
                "{}",
                show(&out)
            );
        }
    }

    let common = format!("{}/common", ext.emu.https_url());
    let out = ext
        .run_as(DEMO_USERNAME, DEMO_PASSWORD, &[("AUTHORITY", &common)])
        .await;
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(text(&out.stderr).contains("AADSTS9001023"), "{}", show(&out));

    let disabled = ext.emu.app("public-flows-disabled").unwrap().app_id;
    let out = ext
        .run_as(DEMO_USERNAME, DEMO_PASSWORD, &[("AZURE_CLIENT_ID", &disabled)])
        .await;
    assert!(
        text(&out.stderr).contains("Allow public client flows"),
        "{}",
        show(&out)
    );

    let out = ext.run_as("someone@fabrikam.com", "Federated-Pass-1", &[]).await;
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("federated") && text(&out.stderr).contains("device-code"),
        "{}",
        show(&out)
    );
    let out = ext.run_as("someone@example.org", "Unknown-Pass-1", &[]).await;
    assert!(
        text(&out.stderr).contains("not a Microsoft Entra ID work or school domain"),
        "{}",
        show(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_password_without_a_terminal_is_a_configuration_error() {
    let ext = external().await;
    let mut env: Vec<(&str, &str)> = ext.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.push(("AZURE_USERNAME", DEMO_USERNAME));
    let mut cmd = common::command(BIN, &temp_dir("ropc-test"), &env, &[]);
    let out = cmd.stdin(std::process::Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(text(&out.stderr).contains("AZURE_PASSWORD"), "{}", show(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn with_nothing_configured_it_signs_in_the_emulators_demo_user() {
    let out = common::run(BIN, &temp_dir("ropc-test"), &[], &[]).await;
    assert!(out.status.success(), "{}", show(&out));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("embedded Entra emulator"), "{stdout}");
    assert!(stdout.contains(DEMO_USERNAME), "{stdout}");
    assert!(
        !stdout.contains(DEMO_PASSWORD),
        "the demo password is not printed"
    );
    assert!(!graph_result(&stdout)["value"].as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn in_a_terminal_without_a_password_it_asks_without_echo() {
    use portable_pty::{CommandBuilder, PtySize, native_pty_system};
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    let ext = external().await;
    let dir = temp_dir("ropc-test");
    // A real pseudo-terminal, with the sample as its session leader, as when a person runs it.
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 24,
            cols: 80,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut command = CommandBuilder::new(BIN);
    command.env_clear();
    command.cwd(&dir);
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    command.env("XDG_CACHE_HOME", dir.join(".cache"));
    for (k, v) in ext.env.iter().map(|(k, v)| (k.as_str(), v.as_str())) {
        command.env(k, v);
    }
    command.env("AZURE_USERNAME", DEMO_USERNAME);
    let mut child = pair.slave.spawn_command(command).unwrap();
    drop(pair.slave);

    let screen = Arc::new(Mutex::new(Vec::new()));
    let mut reader = pair.master.try_clone_reader().unwrap();
    let collected = Arc::clone(&screen);
    // Reads until the sample closes the terminal (EIO on Linux once the last slave descriptor is gone).
    let reading = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            collected.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let shown = || String::from_utf8_lossy(&screen.lock().unwrap()).into_owned();
    let echo_off = || {
        pair.master
            .get_termios()
            .is_some_and(|t| libc::termios::from(t).c_lflag & libc::ECHO == 0)
    };

    // Type only once the prompt is up *and* the terminal no longer echoes: the prompt is written before echo
    // is turned off, so typing on the prompt alone could race it.
    let started = Instant::now();
    while !(shown().contains("Password for") && echo_off()) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no no-echo prompt (echo off: {}):\n{}",
            echo_off(),
            shown()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut writer = pair.master.take_writer().unwrap();
    writer.write_all(format!("{DEMO_PASSWORD}\r").as_bytes()).unwrap();
    writer.flush().unwrap();

    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    drop(writer);
    drop(pair.master);
    reading.join().unwrap();
    let screen = shown();
    assert!(status.success(), "{screen}");
    assert!(
        screen.contains(&format!("Password for {DEMO_USERNAME}: ")),
        "{screen}"
    );
    assert!(
        !screen.contains(DEMO_PASSWORD),
        "the typed password was echoed: {screen}"
    );
    assert!(screen.contains("Graph API call result"), "{screen}");
}
