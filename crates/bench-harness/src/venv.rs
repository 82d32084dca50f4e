//! The MSAL Python the MSAL Python samples run with: `$MSAL_PYTHON`, else `<target>/msal-venv/bin/python` with
//! `msal==1.39.0`, created on first use exactly as the emulator's fidelity tests do (so both share it).

use std::path::{Path, PathBuf};

/// The MSAL Python version the samples are written against.
pub use test_support::msal_python::MSAL_VERSION;

/// Finds or creates the venv (shared with the emulator's fidelity tests).
pub fn provision(target: &Path) -> anyhow::Result<PathBuf> {
    if !target.join("msal-venv/bin/python").exists() && std::env::var_os("MSAL_PYTHON").is_none() {
        eprintln!(
            "creating {} with msal=={MSAL_VERSION} (once)",
            target.join("msal-venv").display()
        );
    }
    test_support::msal_python::provision(target).map_err(anyhow::Error::msg)
}
