//! MSAL Python for the fidelity tests and the benchmarks: our MSAL Python versions of the four samples
//! ([`samples_dir`]) and the Python they run with: `$MSAL_PYTHON` if set, else `<target dir>/msal-venv/bin/python`
//! with `msal==1.39.0`, created on first use.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The MSAL Python version the samples are written against.
pub const MSAL_VERSION: &str = "1.39.0";

/// The directory of the MSAL Python samples (`crates/entra-emulator/msal-python` in the repository, beside the
/// emulator they are run against): `confidential_client_secret_sample.py`,
/// `confidential_client_certificate_sample.py`, `device_flow_sample.py` and `username_password_sample.py`.
pub fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../entra-emulator/msal-python")
}

/// Whether `python` imports exactly [`MSAL_VERSION`].
pub fn has_msal(python: &Path) -> bool {
    python.exists()
        && Command::new(python)
            .args([
                "-c",
                &format!("import msal, sys; sys.exit(msal.__version__ != '{MSAL_VERSION}')"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// Finds or creates the venv under `target_dir`. It is built in a private directory and renamed into place, so
/// processes provisioning at the same time never see a half-built one. The error says what failed and how to
/// fix it.
pub fn provision(target_dir: &Path) -> Result<PathBuf, String> {
    if let Some(python) = std::env::var_os("MSAL_PYTHON") {
        let python = PathBuf::from(python);
        return if has_msal(&python) {
            Ok(python)
        } else {
            Err(format!(
                "MSAL_PYTHON={} cannot import msal {MSAL_VERSION}",
                python.display()
            ))
        };
    }
    let venv = target_dir.join("msal-venv");
    let python = venv.join("bin/python");
    if has_msal(&python) {
        return Ok(python);
    }
    // The tests of one binary run on threads of one process: one of them provisions, the others wait and
    // find it done. (Other processes build their own staging venv; the rename below settles that race.)
    static PROVISIONING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = PROVISIONING.lock().unwrap_or_else(|e| e.into_inner());
    if has_msal(&python) {
        return Ok(python);
    }
    let staging = target_dir.join(format!("msal-venv.staging-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(target_dir).map_err(|e| format!("{}: {e}", target_dir.display()))?;
    let pip_install = format!("msal=={MSAL_VERSION}");
    let built = run_checked(
        Command::new("python3").args(["-m", "venv"]).arg(&staging),
        "python3 -m venv",
    )
    .and_then(|()| {
        run_checked(
            Command::new(staging.join("bin/python")).args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                &pip_install,
            ]),
            "pip install msal",
        )
    });
    if let Err(e) = built {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(format!(
            "{e}\nFix: install python3 with venv and pip (Debian: apt-get install python3-venv) and allow access \
             to PyPI, or point MSAL_PYTHON at a python with msal=={MSAL_VERSION}"
        ));
    }
    if std::fs::rename(&staging, &venv).is_err() {
        // Another process won the race, or a broken venv is in the way.
        if has_msal(&python) {
            let _ = std::fs::remove_dir_all(&staging);
        } else {
            let _ = std::fs::remove_dir_all(&venv);
            std::fs::rename(&staging, &venv).map_err(|e| format!("cannot move the venv into place: {e}"))?;
        }
    }
    if has_msal(&python) {
        Ok(python)
    } else {
        Err(format!(
            "{} cannot import msal after installing it",
            python.display()
        ))
    }
}

fn run_checked(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{what}: cannot run: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
