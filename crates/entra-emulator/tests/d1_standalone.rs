//! The standalone emulator (`entra-emulator` binary): where `--describe` writes, what the summary offers (our
//! Rust samples' lines, object ids, the signing key id), and `Emulator::signing_key_id`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use entra_emulator::{Description, Emulator};

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("entra-emulator-d1-standalone-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running binary, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary in `cwd` with `args` and returns its summary, up to the line naming the description.
fn run_until_described(cwd: &Path, args: &[&str]) -> (Running, String) {
    let mut running = Running(
        Command::new(env!("CARGO_BIN_EXE_entra-emulator"))
            .args(["--port", "0"])
            .args(args)
            .current_dir(cwd)
            .env_remove("ENTRA_EMULATOR_PORT")
            .env_remove("ENTRA_EMULATOR_STATE")
            .env_remove("ENTRA_EMULATOR_DESCRIBE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = running.0.stdout.take().unwrap();
    let mut summary = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        summary.push_str(&line);
        summary.push('\n');
        if line.starts_with("Self-description written to") {
            return (running, summary);
        }
    }
    panic!("the emulator exited early:\n{summary}");
}

fn written_to(summary: &str) -> PathBuf {
    let line = summary
        .lines()
        .find(|l| l.starts_with("Self-description written to "))
        .unwrap();
    PathBuf::from(line.trim_start_matches("Self-description written to "))
}

#[test]
fn a_bare_describe_writes_into_the_state_directory_and_the_summary_has_the_rust_lines() {
    let dir = TempDir::new();
    let (cwd, state) = (dir.0.join("work"), dir.0.join("state"));
    std::fs::create_dir_all(&cwd).unwrap();
    let (running, summary) = run_until_described(&cwd, &["--state", state.to_str().unwrap(), "--describe"]);
    let path = written_to(&summary);
    assert_eq!(path, state.join("emulator.json"));
    assert_eq!(
        std::fs::read_dir(&cwd).unwrap().count(),
        0,
        "nothing in the working directory"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let d: Description = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(!d.signing_key_id.is_empty());
    assert!(summary.contains(&format!("  signing key id   {}\n", d.signing_key_id)));

    let app = |name: &str| d.tenants[0].apps.iter().find(|a| a.name == name).unwrap();
    let daemon = app("daemon");
    assert!(summary.contains(&format!("object id {}", daemon.object_id)));
    assert!(summary.contains(&format!("{}/applications/{}", d.graph_base_url, daemon.object_id)));
    let rust_line = |package: &str| {
        summary
            .lines()
            .find(|l| l.ends_with(&format!(" cargo run -p {package}")))
            .unwrap_or_else(|| panic!("no line for {package}:\n{summary}"))
            .to_owned()
    };
    let common = |line: &str, client_id: &str, path: &str| {
        assert!(line.contains(&format!("AUTHORITY={} ", d.authority)), "{line}");
        assert!(line.contains(&format!("AZURE_CLIENT_ID={client_id} ")), "{line}");
        assert!(
            line.contains(&format!("IDENTITY_EXTRA_CA_CERTS={} ", d.ca_file)),
            "{line}"
        );
        assert!(
            line.contains(&format!("GRAPH_ENDPOINT={}/{path} ", d.graph_base_url)),
            "{line}"
        );
    };
    let line = rust_line("daemon-secret");
    common(&line, &daemon.client_id, "users");
    assert!(line.contains(&format!(
        "AZURE_CLIENT_SECRET='{}'",
        daemon.client_secret.as_deref().unwrap()
    )));
    let cert = app("daemon-certificate");
    let files = cert.certificates[0].files.as_ref().unwrap();
    let line = rust_line("daemon-certificate");
    common(&line, &cert.client_id, "users");
    assert!(line.contains(&format!("AZURE_CLIENT_CERTIFICATE_PATH={} ", files.pfx)));
    common(&rust_line("device-code"), &app("device-code").client_id, "me");
    let line = rust_line("username-password");
    common(&line, &app("username-password").client_id, "users");
    assert!(
        line.contains("AZURE_USERNAME=DebraB@contoso.onmicrosoft.com AZURE_PASSWORD='Emulator-Demo-2024!'")
    );
    drop(running);
}

#[test]
fn an_explicit_relative_describe_path_goes_where_asked() {
    let dir = TempDir::new();
    let state = dir.0.join("state");
    let (_running, summary) = run_until_described(
        &dir.0,
        &["--state", state.to_str().unwrap(), "--describe", "out.json"],
    );
    assert_eq!(written_to(&summary), Path::new("out.json"));
    assert!(dir.0.join("out.json").is_file());
}

#[tokio::test]
async fn the_signing_key_id_is_stable_with_the_state_and_differs_without() {
    let dir = TempDir::new();
    let first = Emulator::builder().state_dir(&dir.0).start().await.unwrap();
    let kid = first.signing_key_id().to_owned();
    first.shutdown().await;
    let again = Emulator::builder().state_dir(&dir.0).start().await.unwrap();
    assert_eq!(again.signing_key_id(), kid, "same state, same key");
    let stateless = Emulator::builder().start().await.unwrap();
    assert_ne!(stateless.signing_key_id(), kid, "another emulator, another key");
    // The self-description carries it too (d1_concurrent_state checks it against the JWKS).
    assert_eq!(again.description().signing_key_id, kid);
}
