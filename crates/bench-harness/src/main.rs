//! `bench`: every Rust sample against its MSAL Python twin, on one in-process emulator over HTTPS.
//!
//! For each scenario it alternates runs of the release-built Rust sample (cold cache, warm cache, expired
//! token) and of its MSAL Python version (`crates/entra-emulator/msal-python`), and reports wall time (median, p90), the Python / Rust ratio,
//! HTTP requests per run by endpoint (the emulator's counters, reset before each run) and each process's peak
//! RSS (`wait4`), with a PASS/MISS per target, as `report.md` and `wall-time.svg`. See docs/benchmarks.md.
//!
//! `cargo run --release -p bench-harness -- [--runs N] [--scenario NAME]… [--out DIR]`
//!
//! `--compare [--rtt-ms MS]`: daemon-secret side by side with its azure_identity twin (`bench/azure-identity-twin`)
//! and MSAL Python on one emulator, on loopback and at a simulated round-trip time, with the cache-size scaling, the
//! N-process cold batch, the in-memory cache hit and the embedded emulator's share (`compare.rs`).
//!
//! # Layout
//!
//! - `main.rs`: the command line, the builds, the emulator, the per-scenario runner and the child environment.
//! - `scenario.rs` (the daemon scenarios, workload identity among them) and `user_flows.rs` (device code,
//!   username/password): how to run each Rust sample and its MSAL Python twin.
//! - `compare.rs` (`--compare`: the azure_identity twin, RTT passes, cache scaling, cold batches, cache hit) and
//!   `compare_report.rs` (its `compare.md`).
//! - `measure.rs` (one child: wall time, `wait4` peak RSS, output, device code phases), `stats.rs` (rows,
//!   medians), `report.rs` (`report.md` and the SVG chart) and `venv.rs` (MSAL Python).

mod compare;
mod compare_report;
mod measure;
mod process;
mod report;
mod scenario;
mod stats;
mod user_flows;
mod venv;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use entra_emulator::Emulator;
use identity_core::{CacheEntry, FileCache, TokenCache as _};

use crate::measure::Interaction;
use crate::report::{Outcome, ScenarioReport};
use crate::scenario::{Env, Scenario};
use crate::stats::{Row, RowKind, Sample};

/// File (under `<target>/criterion/`) where identity-core's throughput bench leaves its token counts.
pub const THROUGHPUT_SUMMARY: &str = "identity-core-throughput.json";

/// Benchmarks every Rust sample against its MSAL Python twin on one emulator.
// The field docs are the `--help` text, written for a terminal rather than for rustdoc's Markdown.
#[allow(rustdoc::invalid_html_tags)]
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Measured runs per row (Rust cold, Rust warm, Rust token expired, MSAL Python).
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Only this scenario (repeatable): daemon-secret, daemon-certificate, workload-identity, device-code,
    /// username-password.
    #[arg(long = "scenario", value_name = "NAME")]
    scenarios: Vec<String>,
    /// Where report.md and wall-time.svg go [default: the target directory's bench-report].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Unmeasured runs per client first (page cache, Python bytecode).
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Device code: time between the code appearing on stdout and its approval, the same for both clients.
    #[arg(long, default_value_t = 500, value_name = "MS")]
    approval_delay_ms: u64,
    /// Kill a run that takes longer than this.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    timeout: u64,
    /// Instead of every scenario against MSAL Python: daemon-secret against its azure_identity twin and MSAL
    /// Python, on loopback and at --rtt-ms, plus cache-size scaling, N-process cold batches, the in-memory cache
    /// hit and the embedded emulator's share (report in compare.md).
    #[arg(long)]
    compare: bool,
    /// --compare: the simulated round-trip time of the second pass (0 skips it).
    #[arg(long, default_value_t = 20, value_name = "MS")]
    rtt_ms: u64,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// Everything a scenario run needs.
struct Bench<'a> {
    emu: &'a Emulator,
    runtime: &'a tokio::runtime::Runtime,
    python: PathBuf,
    msal_samples: PathBuf,
    release: PathBuf,
    scratch: PathBuf,
    cli: &'a Cli,
}

fn run(cli: Cli) -> anyhow::Result<()> {
    anyhow::ensure!(cli.runs > 0, "--runs must be at least 1");
    let root = workspace_root();
    let target = target_dir(&root);
    let out = cli.out.clone().unwrap_or_else(|| target.join("bench-report"));
    if cli.compare {
        let settings = compare::Settings {
            runs: cli.runs,
            warmup: cli.warmup,
            rtt_ms: cli.rtt_ms,
            timeout: Duration::from_secs(cli.timeout),
        };
        return compare::run(&settings, &root, &target, &out);
    }
    let all = all_scenarios();
    for name in &cli.scenarios {
        if !all.iter().any(|s| s.name == name) {
            let names: Vec<&str> = all.iter().map(|s| s.name).collect();
            bail!(
                "--scenario {name}: no such scenario; choose from {}",
                names.join(", ")
            );
        }
    }
    let selected: Vec<Scenario> = all
        .into_iter()
        .filter(|s| cli.scenarios.is_empty() || cli.scenarios.iter().any(|n| n == s.name))
        .collect();

    // Which scenarios can run: the sample exists, the harness supports it, and it builds.
    let mut skipped: Vec<(&'static str, String)> = Vec::new();
    let mut runnable: Vec<&Scenario> = Vec::new();
    for s in &selected {
        let reason = (!root.join("samples").join(s.package).join("Cargo.toml").exists())
            .then(|| format!("skipped: sample not built yet (no package samples/{})", s.package));
        match reason {
            Some(r) => {
                eprintln!("{}: {r}", s.name);
                skipped.push((s.name, r));
            }
            None => runnable.push(s),
        }
    }
    let mut built: Vec<&Scenario> = Vec::new();
    for s in runnable {
        eprintln!("building {} (release)…", s.package);
        let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["build", "--release", "--quiet", "-p", s.package])
            .current_dir(&root)
            .status()
            .context("cannot run cargo")?;
        if status.success() {
            built.push(s);
        } else {
            let r = format!(
                "skipped: sample not built yet (cargo build --release -p {} failed)",
                s.package
            );
            eprintln!("{}: {r}", s.name);
            skipped.push((s.name, r));
        }
    }

    let python = venv::provision(&target)?;
    let msal_samples = test_support::msal_python::samples_dir();
    let scratch = std::env::temp_dir().join(format!("bench-harness-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).with_context(|| format!("cannot create {}", scratch.display()))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // One emulator for every scenario; on 127.0.0.1:443 when username-password runs (MSAL Python drops the
    // authority's port for user realm discovery), else on a free port.
    let builder = user_flows::configure(Emulator::builder());
    let mut emu = None;
    if built.iter().any(|s| s.needs_port_443) {
        match runtime.block_on(
            builder
                .clone()
                .bind(std::net::SocketAddr::from(([127, 0, 0, 1], 443)))
                .start(),
        ) {
            Ok(e) => emu = Some(e),
            Err(e) => {
                for s in built.iter().filter(|s| s.needs_port_443) {
                    let r = format!(
                        "skipped: the emulator cannot listen on 127.0.0.1:443 ({e}), which MSAL Python needs here"
                    );
                    eprintln!("{}: {r}", s.name);
                    skipped.push((s.name, r));
                }
            }
        }
    }
    let emu = match emu {
        Some(e) => e,
        None => runtime
            .block_on(builder.start())
            .context("the emulator did not start")?,
    };
    eprintln!("emulator at {}", emu.https_url());

    let bench = Bench {
        emu: &emu,
        runtime: &runtime,
        python: python.clone(),
        msal_samples,
        release: target.join("release"),
        scratch: scratch.clone(),
        cli: &cli,
    };
    let mut reports = Vec::new();
    for s in &selected {
        let outcome = if let Some((_, why)) = skipped.iter().find(|(n, _)| *n == s.name) {
            Outcome::Skipped(why.clone())
        } else {
            match bench.scenario(s) {
                Ok(rows) => Outcome::Measured(rows),
                Err(e) => {
                    eprintln!("{}: {e:#}", s.name);
                    Outcome::Skipped(format!("failed: {e:#}").replace('\n', " "))
                }
            }
        };
        reports.push(ScenarioReport {
            name: s.name,
            interactive: s.device_code.is_some(),
            outcome,
        });
    }
    runtime.block_on(emu.shutdown());
    let _ = std::fs::remove_dir_all(&scratch);

    let mut targets: Vec<report::Target> = reports.iter().flat_map(report::scenario_targets).collect();
    targets.extend(report::criterion_targets(&target));
    let ctx = report::Context {
        date: process::command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        machine: process::machine(),
        python: format!(
            "{}, msal {}",
            process::command_line(&python.display().to_string(), &["--version"]),
            venv::MSAL_VERSION
        ),
        runs: cli.runs,
        warmup: cli.warmup,
        approval_delay_ms: cli.approval_delay_ms,
    };
    let markdown = report::markdown(&ctx, &reports, &targets);
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    std::fs::write(out.join("report.md"), &markdown)
        .with_context(|| format!("cannot write {}", out.join("report.md").display()))?;
    std::fs::write(out.join("wall-time.svg"), report::svg(&reports))
        .with_context(|| format!("cannot write {}", out.join("wall-time.svg").display()))?;
    println!("{markdown}");
    eprintln!("wrote {} and wall-time.svg", out.join("report.md").display());
    Ok(())
}

impl Bench<'_> {
    /// The Rust sample with its cache in `dir` (the user cache dir is `dir/xdg`).
    fn rust(&self, s: &Scenario, env: &Env, dir: &Path) -> Command {
        process::rust_command(&self.release.join(s.bin), env, dir)
    }

    /// The MSAL Python version of the sample, as the fidelity tests run it.
    fn python(&self, s: &Scenario, env: &Env, dir: &Path) -> Command {
        process::msal_python_command(
            &self.python,
            &self.msal_samples.join(s.python_script),
            self.emu.ca_path(),
            env,
            dir,
        )
    }

    /// One run: counters reset, the child measured, the result checked.
    fn measure(&self, s: &Scenario, cmd: Command, dir: &Path) -> Result<Sample, String> {
        let approve = |code: &str| match &s.device_code {
            Some(dc) => (dc.approve)(self.emu, code),
            None => Ok(()),
        };
        let token_requests = || self.emu.request_counts().get(entra_emulator::Endpoint::Token);
        let interaction = s.device_code.map(|dc| Interaction {
            find_code: dc.find_code,
            delay: Duration::from_millis(self.cli.approval_delay_ms),
            approve: &approve,
            token_requests: &token_requests,
        });
        self.emu.reset_request_counts();
        let run = measure::run(
            cmd,
            dir,
            Duration::from_secs(self.cli.timeout),
            interaction.as_ref(),
        )
        .map_err(|e| format!("{e:#}"))?;
        let counts = self.emu.request_counts();
        if !run.status.success() || !run.stdout.contains("Graph API call result") {
            let tail = |t: &str| {
                let lines: Vec<&str> = t.lines().collect();
                lines[lines.len().saturating_sub(6)..].join(" ⏎ ")
            };
            return Err(format!(
                "{}; stdout: {}; stderr: {}",
                run.status,
                tail(&run.stdout),
                tail(&run.stderr)
            ));
        }
        Ok(Sample {
            wall: run.wall,
            rss_kib: run.max_rss_kib,
            counts,
            code_shown: run.code_shown,
            approval_to_exit: run.approval_to_exit,
            poll_to_exit: run.poll_to_exit,
        })
    }

    fn scenario(&self, s: &Scenario) -> anyhow::Result<Vec<Row>> {
        let rust_env = (s.rust_env)(self.emu)?;
        let python_env = (s.python_env)(self.emu)?;
        anyhow::ensure!(
            self.msal_samples.join(s.python_script).exists(),
            "{} not found (the MSAL Python samples live in crates/entra-emulator/msal-python)",
            self.msal_samples.join(s.python_script).display()
        );
        let dir = |name: &str| -> anyhow::Result<PathBuf> {
            let d = self.scratch.join(s.name).join(name);
            std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
            Ok(d)
        };
        let (cold, warm, expired, py) = (dir("cold")?, dir("warm")?, dir("expired")?, dir("python")?);
        let fresh = |d: &Path| {
            let _ = std::fs::remove_file(d.join("tokens.json"));
            let _ = std::fs::remove_dir_all(d.join("xdg"));
        };

        // Warm-up (page cache, Python bytecode), then the first runs that fill the warm and expired caches;
        // none is measured, and any failure here stops the scenario with the child's output.
        eprintln!("{}: warm-up", s.name);
        for _ in 0..self.cli.warmup {
            fresh(&cold);
            self.measure(s, self.rust(s, &rust_env, &cold), &cold)
                .map_err(|e| anyhow::anyhow!("Rust warm-up run failed: {e}"))?;
            self.measure(s, self.python(s, &python_env, &py), &py)
                .map_err(|e| anyhow::anyhow!("MSAL Python warm-up run failed: {e}"))?;
        }
        for d in [&warm, &expired] {
            fresh(d);
            self.measure(s, self.rust(s, &rust_env, d), d)
                .map_err(|e| anyhow::anyhow!("Rust first run failed: {e}"))?;
        }

        let mut rows: Vec<Row> = RowKind::ALL.iter().map(|&k| Row::new(k)).collect();
        for i in 0..self.cli.runs {
            eprintln!("{}: run {}/{}", s.name, i + 1, self.cli.runs);
            for (slot, kind) in RowKind::ALL.iter().enumerate() {
                let (cmd, d) = match kind {
                    RowKind::RustCold => {
                        fresh(&cold);
                        (self.rust(s, &rust_env, &cold), &cold)
                    }
                    RowKind::RustWarm => (self.rust(s, &rust_env, &warm), &warm),
                    RowKind::RustExpired => {
                        self.runtime.block_on(expire_access_tokens(&expired))?;
                        (self.rust(s, &rust_env, &expired), &expired)
                    }
                    RowKind::Python => (self.python(s, &python_env, &py), &py),
                };
                let result = self.measure(s, cmd, d);
                if let Some(row) = rows.get_mut(slot) {
                    match result {
                        Ok(sample) => row.samples.push(sample),
                        Err(e) => {
                            eprintln!("{}: {} run failed: {e}", s.name, kind.label());
                            row.failures.push(e);
                        }
                    }
                }
            }
        }
        Ok(rows)
    }
}

/// Makes every access token in a run's cache files expired (a second ago), keeping any refresh token: exactly
/// the state a later run finds once the token's lifetime has passed. Through identity-core's own `FileCache`, so
/// the files' format and locking are respected.
async fn expire_access_tokens(dir: &Path) -> anyhow::Result<()> {
    let files = process::cache_files_dir(dir);
    let mut expired = 0;
    for file in std::fs::read_dir(&files).with_context(|| format!("cannot list {}", files.display()))? {
        let path = file?.path();
        if path.extension().is_some_and(|e| e == "json") {
            expired += expire_in(&path).await?;
        }
    }
    anyhow::ensure!(
        expired > 0,
        "{} holds no access token to expire (did the previous run store one?)",
        files.display()
    );
    Ok(())
}

async fn expire_in(path: &Path) -> anyhow::Result<usize> {
    let cache = FileCache::new(path);
    let now = identity_core::now_secs();
    let mut expired = 0;
    for (key, entry) in cache
        .entries()
        .await
        .with_context(|| format!("cannot read {}", path.display()))?
    {
        if let CacheEntry::AccessToken(mut token) = entry {
            token.expires_on = now.saturating_sub(1);
            token.refresh_on = None;
            cache
                .put(&key, &CacheEntry::AccessToken(token))
                .await
                .with_context(|| format!("cannot write {}", path.display()))?;
            expired += 1;
        }
    }
    Ok(expired)
}

/// Every scenario, in report order (the user flows' scenarios live in `user_flows`, which builds on `scenario`).
fn all_scenarios() -> Vec<scenario::Scenario> {
    vec![
        scenario::daemon_secret(),
        scenario::daemon_certificate(),
        scenario::workload_identity(),
        user_flows::device_code(),
        user_flows::username_password(),
    ]
}
