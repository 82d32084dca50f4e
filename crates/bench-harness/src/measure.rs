//! One measured run of a child process: wall time from spawn to exit, its peak resident set size from the
//! kernel's accounting (`wait4`), its output, and, for interactive flows, when it showed a code and how long it
//! took to finish after the harness approved it.

use std::io::{BufRead as _, BufReader, Read as _};
use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// What to do when the child shows a code on stdout (device code flow).
pub struct Interaction<'a> {
    /// Finds the user code in a line of stdout.
    pub find_code: fn(&str) -> Option<String>,
    /// How long the "user" takes to approve once the code is shown (the same for every client).
    pub delay: Duration,
    /// Approves the code (at the emulator).
    pub approve: &'a (dyn Fn(&str) -> anyhow::Result<()> + Sync),
    /// Token requests the emulator has seen so far: after approval, the next one is the poll that gets the
    /// tokens, which tells the wait for the client's next poll apart from the work after it.
    pub token_requests: &'a (dyn Fn() -> u64 + Sync),
}

impl std::fmt::Debug for Interaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interaction")
            .field("delay", &self.delay)
            .finish_non_exhaustive()
    }
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct Run {
    /// Spawn to exit.
    pub wall: Duration,
    /// Peak resident set size, KiB (`ru_maxrss` on Linux).
    pub max_rss_kib: u64,
    /// How it ended.
    pub status: ExitStatus,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
    /// Spawn to the line with the user code (interactive flows that showed one).
    pub code_shown: Option<Duration>,
    /// Approval to exit (interactive flows that were approved).
    pub approval_to_exit: Option<Duration>,
    /// The successful poll's arrival at the emulator to exit (within about a millisecond).
    pub poll_to_exit: Option<Duration>,
}

/// Spawns `cmd` (stdout piped and watched line by line, stderr into a temporary file), waits for it with a
/// `timeout`, and returns the measurements. The command must not have been spawned yet.
pub fn run(
    mut cmd: Command,
    scratch: &Path,
    timeout: Duration,
    interaction: Option<&Interaction<'_>>,
) -> anyhow::Result<Run> {
    let stderr_path = scratch.join("stderr.txt");
    let stderr_file = std::fs::File::create(&stderr_path)
        .with_context(|| format!("cannot create {}", stderr_path.display()))?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr_file));

    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    let pid = child.id() as libc::pid_t;
    let Some(stdout) = child.stdout.take() else {
        bail!("the child's stdout was not piped");
    };
    // Set once the child is reaped, under the lock, so the watchdog never signals a recycled pid.
    let reaped = Arc::new(Mutex::new(false));
    let approved_at: Mutex<Option<(Instant, u64)>> = Mutex::new(None);
    let polled_at: Mutex<Option<Instant>> = Mutex::new(None);

    let outcome = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| watch_stdout(stdout, start, interaction, &approved_at));
        if let Some(i) = interaction {
            // Watches the emulator's token counter from approval on; gives up with the child.
            let (approved_at, polled_at, reaped) = (&approved_at, &polled_at, &reaped);
            scope.spawn(move || watch_poll(i, approved_at, polled_at, reaped));
        }
        let watchdog_reaped = Arc::clone(&reaped);
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        scope.spawn(move || {
            if stop_rx.recv_timeout(timeout).is_err() {
                let done = watchdog_reaped.lock().unwrap_or_else(|e| e.into_inner());
                if !*done {
                    kill(pid);
                }
            }
        });
        let waited = wait_for_exit(pid);
        let end = Instant::now();
        let reaped_result = {
            let mut done = reaped.lock().unwrap_or_else(|e| e.into_inner());
            let r = waited.and_then(|()| reap(pid));
            *done = true;
            r
        };
        let _ = stop_tx.send(());
        let watched = watcher.join();
        (end, reaped_result, watched)
    });
    let (end, reaped_result, watched) = outcome;
    let (status, max_rss_kib) = reaped_result?;
    let (stdout, code_shown) = match watched {
        Ok(w) => w?,
        Err(_) => bail!("the stdout watcher panicked"),
    };
    let wall = end.duration_since(start);
    if wall >= timeout {
        bail!("timed out after {timeout:?} (killed)");
    }
    let mut stderr = String::new();
    std::fs::File::open(&stderr_path)
        .and_then(|mut f| f.read_to_string(&mut stderr))
        .with_context(|| format!("cannot read {}", stderr_path.display()))?;
    let since = |t: Option<Instant>| t.map(|t| end.saturating_duration_since(t));
    let approval_to_exit = since(
        approved_at
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .map(|(t, _)| t),
    );
    let poll_to_exit = since(polled_at.into_inner().unwrap_or_else(|e| e.into_inner()));
    Ok(Run {
        wall,
        max_rss_kib,
        status,
        stdout,
        stderr,
        code_shown,
        approval_to_exit,
        poll_to_exit,
    })
}

/// Once the code is approved, notes when the next token request reaches the emulator (polling its counter
/// every 200 µs), until the child is reaped.
fn watch_poll(
    interaction: &Interaction<'_>,
    approved_at: &Mutex<Option<(Instant, u64)>>,
    polled_at: &Mutex<Option<Instant>>,
    reaped: &Mutex<bool>,
) {
    let done = || *reaped.lock().unwrap_or_else(|e| e.into_inner());
    let tick = Duration::from_micros(200);
    let before = loop {
        if let Some((_, before)) = *approved_at.lock().unwrap_or_else(|e| e.into_inner()) {
            break before;
        }
        if done() {
            return;
        }
        std::thread::sleep(tick);
    };
    while !done() {
        if (interaction.token_requests)() > before {
            *polled_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
            return;
        }
        std::thread::sleep(tick);
    }
}

/// Reads stdout to the end; on the first line holding a user code, notes the time, waits the approval delay
/// and approves (while the child keeps polling).
fn watch_stdout(
    stdout: std::process::ChildStdout,
    start: Instant,
    interaction: Option<&Interaction<'_>>,
    approved_at: &Mutex<Option<(Instant, u64)>>,
) -> anyhow::Result<(String, Option<Duration>)> {
    let mut reader = BufReader::new(stdout);
    let mut all = String::new();
    let mut code_shown = None;
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .context("cannot read the child's stdout")?;
        if n == 0 {
            break;
        }
        all.push_str(&line);
        if code_shown.is_none()
            && let Some(i) = interaction
            && let Some(code) = (i.find_code)(&line)
        {
            code_shown = Some(start.elapsed());
            std::thread::sleep(i.delay);
            // Token requests so far: the next one after the approval is the poll that succeeds.
            let before = (i.token_requests)();
            (i.approve)(&code)?;
            *approved_at.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), before));
        }
    }
    Ok((all, code_shown))
}

/// Blocks until `pid` has exited, without reaping it (so its pid stays ours until [`reap`]).
#[allow(unsafe_code, reason = "waitid(2) has no safe wrapper in std")]
fn wait_for_exit(pid: libc::pid_t) -> anyhow::Result<()> {
    loop {
        // SAFETY: siginfo_t is plain data for which all-zero bytes are a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a live, writable siginfo_t; `pid` is our own child, not yet reaped.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("waitid");
        }
    }
}

/// Reaps the exited `pid`, returning its status and peak RSS (KiB). `std::process::Child` cannot report the
/// child's resource usage, hence `wait4`.
#[allow(unsafe_code, reason = "wait4(2) has no safe wrapper in std")]
fn reap(pid: libc::pid_t) -> anyhow::Result<(ExitStatus, u64)> {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: rusage is plain data for which all-zero bytes are a valid value.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are to live locals; `pid` is our own child, exited and not yet reaped.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            let rss = u64::try_from(usage.ru_maxrss).unwrap_or(0);
            return Ok((ExitStatus::from_raw(status), rss));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("wait4");
        }
    }
}

/// SIGKILL to a child that is still ours (alive or a zombie).
#[allow(unsafe_code, reason = "kill(2) has no safe wrapper in std for a bare pid")]
fn kill(pid: libc::pid_t) {
    // SAFETY: plain syscall; the caller guarantees `pid` is an un-reaped child of this process.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use std::path::PathBuf;

    use super::*;

    /// A directory of the test's own (each run writes its stderr file there).
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bench-measure-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    #[test]
    fn reports_the_exit_status_output_and_peak_rss_of_the_child() {
        let dir = std::env::temp_dir();
        let run = run(
            sh("echo out; echo err >&2; exit 3"),
            &dir,
            Duration::from_secs(30),
            None,
        )
        .unwrap();
        assert_eq!(run.status.code(), Some(3));
        assert_eq!(run.stdout, "out\n");
        assert_eq!(run.stderr, "err\n");
        assert!(run.max_rss_kib > 0, "{run:?}");
        assert_eq!((run.code_shown, run.approval_to_exit), (None, None));
    }

    #[test]
    fn approves_the_code_shown_and_notes_the_phases() {
        let dir = scratch("approve");
        let approved = Mutex::new(Vec::new());
        let approve = |code: &str| {
            approved.lock().unwrap().push(code.to_owned());
            Ok(())
        };
        let interaction = Interaction {
            find_code: |l| l.strip_prefix("code ").map(|c| c.trim().to_owned()),
            delay: Duration::from_millis(1),
            approve: &approve,
            token_requests: &|| 0,
        };
        let run = run(
            sh("echo waiting; echo code XY12; read -t 1 x; echo done"),
            &dir,
            Duration::from_secs(30),
            Some(&interaction),
        )
        .unwrap();
        assert!(run.status.success());
        assert_eq!(*approved.lock().unwrap(), ["XY12"]);
        assert!(
            run.code_shown.is_some() && run.approval_to_exit.is_some(),
            "{run:?}"
        );
        // No token request was seen after the approval.
        assert_eq!(run.poll_to_exit, None);
    }

    #[test]
    fn kills_a_child_that_outlives_the_timeout() {
        let dir = scratch("timeout");
        let err = run(sh("exec sleep 30"), &dir, Duration::from_millis(200), None).unwrap_err();
        assert!(err.to_string().contains("timed out"), "{err}");
    }
}
