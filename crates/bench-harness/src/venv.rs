//! The MSAL Python the peer samples run with: `$MSAL_PYTHON`, else `<target>/msal-venv/bin/python` with
//! `msal==1.39.0`, created on first use exactly as the emulator's fidelity tests do (so both share it).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

/// The MSAL Python version the peers are written against.
pub const MSAL_VERSION: &str = "1.39.0";

fn has_msal(python: &Path) -> bool {
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

fn run_checked(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("{what}: cannot run"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Finds or creates the venv; the venv is built in a private directory and renamed into place, so a test run
/// at the same time never sees a half-built one.
pub fn provision(target: &Path) -> anyhow::Result<PathBuf> {
    if let Some(python) = std::env::var_os("MSAL_PYTHON") {
        let python = PathBuf::from(python);
        if has_msal(&python) {
            return Ok(python);
        }
        bail!(
            "MSAL_PYTHON={} cannot import msal {MSAL_VERSION}",
            python.display()
        );
    }
    let venv = target.join("msal-venv");
    let python = venv.join("bin/python");
    if has_msal(&python) {
        return Ok(python);
    }
    eprintln!("creating {} with msal=={MSAL_VERSION} (once)", venv.display());
    let staging = target.join(format!("msal-venv.staging-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(target).with_context(|| format!("cannot create {}", target.display()))?;
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
                &format!("msal=={MSAL_VERSION}"),
            ]),
            "pip install msal",
        )
    });
    if let Err(e) = built {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e.context(
            "Fix: install python3 with venv and pip (Debian: apt-get install python3-venv) and allow access to \
             PyPI, or point MSAL_PYTHON at a python with msal==1.39.0",
        ));
    }
    if std::fs::rename(&staging, &venv).is_err() {
        // Another process won the race, or a broken venv is in the way.
        if has_msal(&python) {
            let _ = std::fs::remove_dir_all(&staging);
        } else {
            let _ = std::fs::remove_dir_all(&venv);
            std::fs::rename(&staging, &venv).context("cannot move the venv into place")?;
        }
    }
    if !has_msal(&python) {
        bail!("{} cannot import msal after installing it", python.display());
    }
    Ok(python)
}
