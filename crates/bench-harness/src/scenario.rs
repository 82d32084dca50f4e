//! The scenarios: one small table entry each, saying how to run the Rust sample and its MSAL Python twin
//! against the emulator. The runner (`main.rs`) does the rest.

use std::path::PathBuf;

use entra_emulator::{Emulator, WorkloadToken};

/// Environment variables for one process.
pub type Env = Vec<(String, String)>;

/// A scenario: a Rust sample and the MSAL Python sample it mirrors.
pub struct Scenario {
    /// Name on the command line and in the report.
    pub name: &'static str,
    /// Cargo package of the Rust sample (under `samples/`).
    pub package: &'static str,
    /// Its binary in `target/release/`.
    pub bin: &'static str,
    /// The MSAL Python script (in `test_support::msal_python::samples_dir()`).
    pub python_script: &'static str,
    /// The Rust sample's settings (the runner adds the token cache location).
    pub rust_env: fn(&Emulator) -> anyhow::Result<Env>,
    /// The MSAL Python sample's settings (the runner adds the CA bundle, `INSTANCE_DISCOVERY` and `NO_PROXY`).
    pub python_env: fn(&Emulator) -> anyhow::Result<Env>,
    /// For interactive flows: how to see the code on stdout and approve it.
    pub device_code: Option<DeviceCode>,
    /// MSAL Python needs the emulator on 127.0.0.1:443 (it drops the port for user realm discovery).
    pub needs_port_443: bool,
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scenario")
            .field("name", &self.name)
            .field("package", &self.package)
            .finish_non_exhaustive()
    }
}

/// How a device code flow shows its code and how the harness approves it.
#[derive(Debug, Clone, Copy)]
pub struct DeviceCode {
    /// Finds the user code in a line of stdout (the same message for both clients: the service's `message`).
    pub find_code: fn(&str) -> Option<String>,
    /// Approves `user_code` at the emulator, as the demo user.
    pub approve: fn(&Emulator, &str) -> anyhow::Result<()>,
}

fn env(pairs: &[(&str, String)]) -> Env {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

/// `AUTHORITY`, the CA and the Graph URL, for a Rust sample.
pub fn rust_common(emu: &Emulator, client_id: &str, graph_path: &str) -> Env {
    env(&[
        ("AUTHORITY", emu.authority()),
        ("AZURE_CLIENT_ID", client_id.to_owned()),
        ("IDENTITY_EXTRA_CA_CERTS", emu.ca_path().display().to_string()),
        ("GRAPH_ENDPOINT", format!("{}/{graph_path}", emu.graph_base())),
    ])
}

/// `AUTHORITY`, `CLIENT_ID` and `ENDPOINT`, for an MSAL Python sample.
pub fn python_common(emu: &Emulator, client_id: &str, graph_path: &str) -> Env {
    env(&[
        ("AUTHORITY", emu.authority()),
        ("CLIENT_ID", client_id.to_owned()),
        ("ENDPOINT", format!("{}/{graph_path}", emu.graph_base())),
    ])
}

fn seeded_secret(emu: &Emulator) -> anyhow::Result<(String, String)> {
    let app = emu
        .app("daemon")
        .ok_or_else(|| anyhow::anyhow!("the emulator has no seeded 'daemon' app"))?;
    let secret = app
        .secrets
        .first()
        .ok_or_else(|| anyhow::anyhow!("the emulator's 'daemon' app has no secret"))?;
    Ok((app.app_id.clone(), secret.value.clone()))
}

pub fn daemon_secret() -> Scenario {
    Scenario {
        name: "daemon-secret",
        package: "daemon-secret",
        bin: "daemon-secret",
        python_script: "confidential_client_secret_sample.py",
        rust_env: |emu| {
            let (id, secret) = seeded_secret(emu)?;
            let mut e = rust_common(emu, &id, "users");
            e.push(("AZURE_CLIENT_SECRET".into(), secret));
            Ok(e)
        },
        python_env: |emu| {
            let (id, secret) = seeded_secret(emu)?;
            let mut e = python_common(emu, &id, "users");
            e.push(("CLIENT_SECRET".into(), secret));
            Ok(e)
        },
        device_code: None,
        needs_port_443: false,
    }
}

/// Both clients load the same PKCS#12 file with the same password and sign PS256 assertions with `x5t#S256`,
/// so the credential work (PBES2 decryption, RSA-PSS signature) is the same on both sides.
pub fn daemon_certificate() -> Scenario {
    fn app(emu: &Emulator) -> anyhow::Result<(String, entra_emulator::CertificateFiles)> {
        let app = emu
            .app("daemon-certificate")
            .ok_or_else(|| anyhow::anyhow!("the emulator has no seeded 'daemon-certificate' app"))?;
        let files = emu
            .certificate_files("daemon-certificate")
            .ok_or_else(|| anyhow::anyhow!("the emulator holds no certificate for 'daemon-certificate'"))?;
        Ok((app.app_id, files))
    }
    Scenario {
        name: "daemon-certificate",
        package: "daemon-certificate",
        bin: "daemon-certificate",
        python_script: "confidential_client_certificate_sample.py",
        rust_env: |emu| {
            let (id, files) = app(emu)?;
            let mut e = rust_common(emu, &id, "users");
            e.push((
                "AZURE_CLIENT_CERTIFICATE_PATH".into(),
                files.pfx_path.display().to_string(),
            ));
            e.push((
                "AZURE_CLIENT_CERTIFICATE_PASSWORD".into(),
                files.pfx_password.clone(),
            ));
            Ok(e)
        },
        python_env: |emu| {
            let (id, files) = app(emu)?;
            let mut e = python_common(emu, &id, "users");
            e.push(("CERT_PFX_PATH".into(), files.pfx_path.display().to_string()));
            e.push(("CERT_PASSPHRASE".into(), files.pfx_password.clone()));
            Ok(e)
        },
        device_code: None,
        needs_port_443: false,
    }
}

/// The workload's service-account token, as the AKS webhook projects it: a file signed by the emulator's
/// issuer, valid for an hour (a benchmark takes minutes), which both clients read on every run.
fn workload_app(emu: &Emulator) -> anyhow::Result<(String, PathBuf)> {
    let app = emu
        .app("workload")
        .ok_or_else(|| anyhow::anyhow!("the emulator has no seeded 'workload' app"))?;
    // In the run's scratch directory (see `main.rs`), removed with it.
    let dir = std::env::temp_dir().join(format!("bench-harness-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let file = dir.join("workload-token");
    emu.write_workload_token_file(&file, &WorkloadToken::new())
        .map_err(|e| anyhow::anyhow!("cannot write the workload token file {}: {e}", file.display()))?;
    Ok((app.app_id, file))
}

/// Workload identity federation: both clients send the projected token as the client assertion (MSAL Python
/// through a callable that re-reads the file, as on AKS).
pub fn workload_identity() -> Scenario {
    Scenario {
        name: "workload-identity",
        package: "workload-identity",
        bin: "workload-identity",
        python_script: "confidential_client_federated_sample.py",
        rust_env: |emu| {
            let (id, file) = workload_app(emu)?;
            let mut e = rust_common(emu, &id, "users");
            e.push(("AZURE_FEDERATED_TOKEN_FILE".into(), file.display().to_string()));
            Ok(e)
        },
        python_env: |emu| {
            let (id, file) = workload_app(emu)?;
            let mut e = python_common(emu, &id, "users");
            e.push(("FEDERATED_TOKEN_FILE".into(), file.display().to_string()));
            Ok(e)
        },
        device_code: None,
        needs_port_443: false,
    }
}
