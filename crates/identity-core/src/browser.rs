//! Opening a URL in the user's browser: `$BROWSER` when set, else the system's default handler.
//!
//! Small on purpose (no crate): one process started with the URL as a single argument (no shell), detached;
//! whether the browser then shows the page is not observable, so callers also show the URL.

use std::process::{Command, Stdio};

/// Opens `url` in the user's browser, without waiting for it.
///
/// `$BROWSER` is honoured first, as Python's `webbrowser` (MSAL's launcher) reads it: commands separated by
/// `:`, tried in turn, each with `%s` replaced by the URL or, without `%s`, the URL appended. Otherwise the
/// system's handler: `xdg-open` (Linux and BSD, only with a graphical session: `DISPLAY` or
/// `WAYLAND_DISPLAY`), `wslview` under WSL, `open` on macOS, the URL protocol handler on Windows.
///
/// The error says why nothing could be started (no display, no handler installed); the caller should then show
/// the URL to the user.
///
/// # Examples
///
/// ```no_run
/// if let Err(reason) = identity_core::open_browser("https://learn.microsoft.com/entra/identity-platform/") {
///     println!("Open this page in a browser: https://learn.microsoft.com/entra/identity-platform/ ({reason})");
/// }
/// ```
pub fn open_browser(url: &str) -> Result<(), String> {
    if let Some(browsers) = std::env::var("BROWSER").ok().filter(|b| !b.trim().is_empty()) {
        let mut tried = Vec::new();
        for command in browsers.split(':').filter(|c| !c.trim().is_empty()) {
            let mut words: Vec<String> = command.split_whitespace().map(str::to_string).collect();
            if words.iter().any(|w| w.contains("%s")) {
                for w in &mut words {
                    *w = w.replace("%s", url);
                }
            } else {
                words.push(url.to_string());
            }
            match spawn(&words) {
                Ok(()) => return Ok(()),
                Err(e) => tried.push(format!("{}: {e}", words[0])),
            }
        }
        return Err(format!(
            "no command of $BROWSER could be started ({})",
            tried.join("; ")
        ));
    }
    let words = system_opener(url)?;
    spawn(&words).map_err(|e| format!("cannot start {}: {e}", words[0]))
}

/// The system's opener for `url`.
fn system_opener(url: &str) -> Result<Vec<String>, String> {
    let url = url.to_string();
    if cfg!(target_os = "macos") {
        return Ok(vec!["open".into(), url]);
    }
    if cfg!(windows) {
        // Not `cmd /c start`: cmd would read the `&` of the query as a command separator.
        return Ok(vec!["rundll32".into(), "url.dll,FileProtocolHandler".into(), url]);
    }
    let wsl = std::env::var_os("WSL_DISTRO_NAME").is_some()
        || std::path::Path::new("/proc/sys/fs/binfmt_misc/WSLInterop").exists();
    if wsl {
        return Ok(vec!["wslview".into(), url]);
    }
    let graphical = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()));
    if !graphical {
        // xdg-open would fall back to a text browser in this terminal, or fail.
        return Err(
            "no graphical session (DISPLAY and WAYLAND_DISPLAY are unset) and $BROWSER is unset".into(),
        );
    }
    Ok(vec!["xdg-open".into(), url])
}

/// Starts the command detached from our terminal's input and output; a thread reaps it (no zombie) and logs a
/// failure exit.
fn spawn(words: &[String]) -> std::io::Result<()> {
    let (program, args) = words
        .split_first()
        .ok_or_else(|| std::io::Error::other("empty command"))?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let program = program.clone();
    std::thread::spawn(move || match child.wait() {
        Ok(status) if !status.success() => {
            tracing::warn!(%status, "the browser launcher {program} failed; open the URL by hand")
        }
        _ => {}
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_graphical_session_is_said() {
        if cfg!(target_os = "linux")
            && std::env::var_os("DISPLAY").is_none()
            && std::env::var_os("WAYLAND_DISPLAY").is_none()
            && std::env::var_os("WSL_DISTRO_NAME").is_none()
            && !std::path::Path::new("/proc/sys/fs/binfmt_misc/WSLInterop").exists()
        {
            let err = system_opener("https://example.com/").unwrap_err();
            assert!(err.contains("DISPLAY"), "{err}");
        }
    }
}
