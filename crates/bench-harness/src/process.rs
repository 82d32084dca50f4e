//! Child processes: the cleared environment every measured program gets, the commands for a Rust program and
//! for an MSAL Python script, and the first line of a system command's output (for the report's header).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::scenario::Env;

/// A command's first line of output, or "?".
pub fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() { o.stderr } else { o.stdout };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("?")
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|| "?".into())
}

/// CPU model and count, kernel.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores, {}", command_line("uname", &["-sr"]))
}

/// A Rust program (sample or twin) with its token cache in `dir`: the file cache in its default layout (one file
/// per app and tenant) under `XDG_CACHE_HOME=dir/xdg`, as a user who sets nothing gets it.
pub fn rust_command(program: &Path, env: &Env, dir: &Path) -> Command {
    let mut cmd = base_command(program, dir, env);
    cmd.env("IDENTITY_CACHE", "file")
        .env("XDG_CACHE_HOME", dir.join("xdg"));
    cmd
}

/// The directory of the per-app cache files of a run in `dir` ([`rust_command`]).
pub fn cache_files_dir(dir: &Path) -> PathBuf {
    dir.join("xdg").join("identity-core").join("token-cache")
}

/// A child's environment: nothing inherited but `PATH`, so the developer's settings, `.env`, proxies and
/// token cache never reach it.
pub fn base_command(program: &Path, cwd: &Path, env: &Env) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear().current_dir(cwd);
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}
/// An MSAL Python script, as the fidelity tests run it: no instance discovery, the emulator's CA, no proxy.
pub fn msal_python_command(python: &Path, script: &Path, ca: &Path, env: &Env, dir: &Path) -> Command {
    let mut cmd = base_command(python, dir, env);
    cmd.arg(script)
        .env("INSTANCE_DISCOVERY", "false")
        .env("REQUESTS_CA_BUNDLE", ca)
        .env("NO_PROXY", "127.0.0.1,localhost");
    cmd
}
