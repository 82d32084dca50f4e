//! The daemon-certificate binary and the certificate helper, run as a user would.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

#[path = "../../tests-common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::{graph_result, text};
use entra_emulator::certificates::{DevCertificate, PfxEncryption};
use entra_emulator::{CertificateFiles, Emulator, Endpoint};

const BIN: &str = env!("CARGO_BIN_EXE_daemon-certificate");
const HELPER: &str = env!("CARGO_BIN_EXE_create-certificate");

async fn run(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    common::run(BIN, dir, env, args).await
}

struct External {
    emu: Emulator,
    client_id: String,
    files: CertificateFiles,
    dir: PathBuf,
}

impl External {
    async fn start() -> External {
        let emu = Emulator::builder().start().await.unwrap();
        let client_id = emu.app("daemon-certificate").unwrap().app_id;
        let files = emu.certificate_files("daemon-certificate").unwrap();
        External {
            emu,
            client_id,
            files,
            dir: common::temp_dir("daemon-certificate-test"),
        }
    }

    /// Authority, client id, CA and Graph endpoint; the test adds the certificate settings.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AUTHORITY", self.emu.authority()),
            ("AZURE_CLIENT_ID", self.client_id.clone()),
            (
                "IDENTITY_EXTRA_CA_CERTS",
                self.emu.ca_path().display().to_string(),
            ),
            ("GRAPH_ENDPOINT", format!("{}/users", self.emu.graph_base())),
            // Every run must authenticate with its certificate, not find the last run's token.
            ("IDENTITY_CACHE", "memory".into()),
        ]
    }

    async fn run_with(&self, certificate: &[(&'static str, String)], args: &[&str]) -> Output {
        let env: Vec<(&str, String)> = self
            .env()
            .into_iter()
            .chain(certificate.iter().cloned())
            .collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        run(&self.dir, &env, args).await
    }
}

/// Environment settings of one run.
type Settings = Vec<(&'static str, String)>;

fn path(p: &Path) -> String {
    p.display().to_string()
}

fn succeeded(out: &Output) -> serde_json::Value {
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        text(&out.stderr)
    );
    graph_result(&stdout)
}

#[tokio::test(flavor = "multi_thread")]
async fn with_nothing_configured_it_runs_against_the_embedded_emulator() {
    let dir = common::temp_dir("daemon-certificate-test");
    let out = run(&dir, &[], &[]).await;
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        text(&out.stderr)
    );
    assert!(
        stdout.lines().next().unwrap().contains("embedded Entra emulator"),
        "{stdout}"
    );
    assert!(
        graph_result(&stdout)["value"]
            .as_array()
            .is_some_and(|v| !v.is_empty())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_certificate_form_gets_a_token_and_a_graph_answer() {
    let ext = External::start().await;
    let f = &ext.files;
    let forms: Vec<(&str, Settings, Vec<&str>)> = vec![
        (
            "PEM key + certificate",
            vec![("AZURE_CLIENT_CERTIFICATE_PATH", path(&f.pem_path))],
            vec![],
        ),
        (
            "PFX with password",
            vec![
                ("AZURE_CLIENT_CERTIFICATE_PATH", path(&f.pfx_path)),
                ("AZURE_CLIENT_CERTIFICATE_PASSWORD", f.pfx_password.clone()),
            ],
            vec![],
        ),
        (
            "PEM key + SHA-1 thumbprint",
            vec![
                ("AZURE_CLIENT_CERTIFICATE_PATH", path(&f.key_path)),
                ("AZURE_CLIENT_CERTIFICATE_THUMBPRINT", f.thumbprint_sha1.clone()),
            ],
            vec![],
        ),
        (
            "separate key and certificate",
            vec![
                ("AZURE_CLIENT_CERTIFICATE_PATH", path(&f.cert_path)),
                ("AZURE_CLIENT_CERTIFICATE_KEY_PATH", path(&f.key_path)),
            ],
            vec![],
        ),
        (
            "RS256 by flag, x5c by variable",
            vec![
                ("AZURE_CLIENT_CERTIFICATE_PATH", path(&f.pem_path)),
                ("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", "true".into()),
            ],
            vec!["--rs256"],
        ),
    ];
    for (form, certificate, args) in forms {
        let before = ext.emu.request_counts().get(Endpoint::Token);
        let out = ext.run_with(&certificate, &args).await;
        let users = succeeded(&out);
        assert!(!users["value"].as_array().unwrap().is_empty(), "{form}");
        assert_eq!(
            ext.emu.request_counts().get(Endpoint::Token),
            before + 1,
            "{form}: one token request"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partial_configuration_names_the_certificate_setting() {
    let ext = External::start().await;
    let out = run(
        &ext.dir,
        &[
            ("AZURE_CLIENT_ID", &ext.client_id),
            ("AZURE_TENANT_ID", &ext.emu.tenant_id()),
        ],
        &[],
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("AZURE_CLIENT_CERTIFICATE_PATH: the PEM (key + certificate) or .pfx file"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_certificate_settings_exit_2_with_the_setting_and_fix() {
    let ext = External::start().await;
    let f = &ext.files;
    let cases: Vec<(Vec<(&'static str, String)>, &str)> = vec![
        (
            vec![(
                "AZURE_CLIENT_CERTIFICATE_PATH",
                path(&ext.dir.join("missing.pfx")),
            )],
            "certificate file '",
        ),
        (
            vec![
                ("AZURE_CLIENT_CERTIFICATE_PATH", path(&f.pfx_path)),
                ("AZURE_CLIENT_CERTIFICATE_PASSWORD", "wrong".into()),
            ],
            "AZURE_CLIENT_CERTIFICATE_PATH: wrong password",
        ),
        (
            vec![("AZURE_CLIENT_CERTIFICATE_PATH", path(&f.pfx_path))],
            "no password was given",
        ),
        (
            vec![
                ("AZURE_CLIENT_CERTIFICATE_PATH", path(&f.key_path)),
                ("AZURE_CLIENT_CERTIFICATE_THUMBPRINT", "ABC".into()),
            ],
            "AZURE_CLIENT_CERTIFICATE_THUMBPRINT: thumbprint 'ABC' is not a SHA-1 thumbprint",
        ),
        (
            vec![("AZURE_CLIENT_CERTIFICATE_PATH", path(&f.key_path))],
            "holds no certificate",
        ),
    ];
    for (certificate, expected) in cases {
        let out = ext.run_with(&certificate, &[]).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{expected}: {stderr}");
        assert!(stderr.contains(expected), "expected '{expected}' in:\n{stderr}");
        assert!(stderr.contains("fix:"), "{stderr}");
        assert!(!stderr.contains(&f.pfx_password), "the password never shows");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_that_was_not_uploaded_is_700027_naming_the_thumbprint_sent() {
    let ext = External::start().await;
    let stranger = DevCertificate::generate("not uploaded", Duration::from_secs(86400)).unwrap();
    let pem = ext.dir.join("stranger.pem");
    std::fs::write(&pem, stranger.key_pem() + &stranger.cert_pem()).unwrap();
    let out = ext
        .run_with(
            &[
                ("AZURE_CLIENT_CERTIFICATE_PATH", path(&pem)),
                ("AZURE_CLIENT_ASSERTION_RS256", "1".into()),
            ],
            &[],
        )
        .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("AADSTS700027"), "{stderr}");
    assert!(
        stderr.contains(&stranger.thumbprint_sha1()),
        "the service names the thumbprint sent: {stderr}"
    );
    assert!(
        stderr.contains("fix:            Upload the certificate"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_certificate_helper_writes_files_that_work_once_uploaded() {
    let ext = External::start().await;
    let out_dir = ext.dir.join("certs");
    let out = common::run(
        HELPER,
        &ext.dir,
        &[],
        &[
            "--out",
            &path(&out_dir),
            "--name",
            "my-daemon",
            "--password",
            "pfx-pass",
        ],
    )
    .await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    for (file, mode) in [
        ("my-daemon.pem", 0o600),
        ("my-daemon.pfx", 0o600),
        ("my-daemon.cer", 0o644),
    ] {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(out_dir.join(file)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, mode, "{file}");
    }
    assert!(
        stdout.contains("Thumbprint (SHA-1):") && stdout.contains("Certificates & secrets > Certificates"),
        "{stdout}"
    );
    assert!(!stdout.contains("pfx-pass"));

    assert!(
        stdout.contains("Thumbprint (SHA-256):"),
        "both thumbprints, as the docs say: {stdout}"
    );

    // A second run refuses to overwrite: one error line, no backtrace even when one is asked for.
    let again = common::run(
        HELPER,
        &ext.dir,
        &[("RUST_BACKTRACE", "1")],
        &["--out", &path(&out_dir), "--name", "my-daemon"],
    )
    .await;
    let stderr = text(&again.stderr);
    assert_eq!(again.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("error: cannot write"), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!stderr.to_lowercase().contains("backtrace"), "{stderr}");

    // Upload the .cer to the app registration, then use the PEM and the PFX.
    let cer = std::fs::read_to_string(out_dir.join("my-daemon.cer")).unwrap();
    let der = pem_to_der(&cer);
    assert!(ext.emu.upload_certificate("daemon-certificate", &der));
    succeeded(
        &ext.run_with(
            &[(
                "AZURE_CLIENT_CERTIFICATE_PATH",
                path(&out_dir.join("my-daemon.pem")),
            )],
            &[],
        )
        .await,
    );
    succeeded(
        &ext.run_with(
            &[
                (
                    "AZURE_CLIENT_CERTIFICATE_PATH",
                    path(&out_dir.join("my-daemon.pfx")),
                ),
                ("AZURE_CLIENT_CERTIFICATE_PASSWORD", "pfx-pass".into()),
            ],
            &[],
        )
        .await,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_legacy_pfx_works_and_nothing_secret_is_logged_at_trace_level() {
    let ext = External::start().await;
    let cert = DevCertificate::generate("legacy", Duration::from_secs(86400)).unwrap();
    assert!(ext.emu.upload_certificate("daemon-certificate", cert.cert_der()));
    let pfx = ext.dir.join("legacy.pfx");
    std::fs::write(
        &pfx,
        cert.pfx("Legacy-Pa55word", PfxEncryption::Legacy3Des).unwrap(),
    )
    .unwrap();
    let out = ext
        .run_with(
            &[
                ("AZURE_CLIENT_CERTIFICATE_PATH", path(&pfx)),
                ("AZURE_CLIENT_CERTIFICATE_PASSWORD", "Legacy-Pa55word".into()),
            ],
            &["-vv"],
        )
        .await;
    succeeded(&out);
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(all.contains("TRACE"));
    common::assert_nothing_secret(&all, &["Legacy-Pa55word", "client_assertion="]);
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(body).unwrap()
}
