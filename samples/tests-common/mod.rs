//! Helpers shared by the samples' end-to-end tests (included with `#[path]`, so each test crate compiles them).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

/// Runs a sample binary in `dir` with only the given environment (plus PATH), so the developer's own settings
/// and `.env` never leak into a test.
pub async fn run(bin: &str, dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new(bin);
    cmd.env_clear().current_dir(dir).args(args);
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::task::spawn_blocking(move || cmd.output().expect("the sample starts"))
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
