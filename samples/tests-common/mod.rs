//! Helpers shared by the samples' end-to-end tests (included with `#[path]`, so each test crate compiles them).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

/// A sample binary's command in `dir` with only the given environment (plus PATH), so the developer's own
/// settings, `.env` and token cache never leak into a test.
pub fn command(bin: &str, dir: &Path, env: &[(&str, &str)], args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(bin);
    cmd.env_clear().current_dir(dir).args(args);
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    // The token cache and the embedded emulator's state live in the test's own directory.
    cmd.env("XDG_CACHE_HOME", dir.join(".cache"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs a sample binary (see [`command`]) to completion.
pub async fn run(bin: &str, dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = command(bin, dir, env, args);
    tokio::task::spawn_blocking(move || cmd.output().expect("the sample starts"))
        .await
        .unwrap()
}

/// Starts all the commands at once, then waits for every one.
pub async fn run_all(commands: Vec<std::process::Command>) -> Vec<Output> {
    use std::process::Stdio;
    let children: Vec<_> = commands
        .into_iter()
        .map(|mut c| {
            c.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("the sample starts")
        })
        .collect();
    tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect()
    })
    .await
    .unwrap()
}

/// A fresh empty directory under the system temp dir.
pub fn temp_dir(prefix: &str) -> PathBuf {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The JSON printed after "Graph API call result:".
pub fn graph_result(stdout: &str) -> serde_json::Value {
    let (_, json) = stdout
        .split_once("Graph API call result: \n")
        .expect("the result header");
    serde_json::from_str(json).expect("pretty JSON")
}

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Asserts that no JWT (token or assertion) and none of `secrets` appear in `output`.
pub fn assert_nothing_secret(output: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!output.contains(secret), "a secret leaked:\n{output}");
    }
    assert!(
        !output.contains("eyJ0eXAi") && !output.contains("eyJhbGci"),
        "a JWT leaked:\n{output}"
    );
}
