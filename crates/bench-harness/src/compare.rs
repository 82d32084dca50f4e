//! `--compare`: daemon-secret side by side with its azure_identity twin (`bench/azure-identity-twin`, built here
//! on demand, outside the workspace) and MSAL Python, alternating on one emulator, on loopback and at a simulated
//! round-trip time; then the cache-size scaling, the N-process cold batch, the in-memory cache hit and the
//! embedded emulator's share. `compare_report` turns the results into `compare.md`.
//!
//! What depends on identity-core's cache layout: [`populate_other_records`] (writes the other apps' and tenants'
//! records through `FileCache` into the files the default layout gives them, one per app and tenant) and
//! [`fresh`]/[`copy_tree`] (a run's whole cache is its directory: `xdg/`, the user cache directory).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use entra_emulator::{Emulator, Endpoint};
use identity_core::{
    AccessTokenKey, CacheEntry, CacheKey, CachedAccessToken, FileCache, SecretToken, TokenCache as _,
};

use crate::compare_report::{
    self, Batch, Binaries, CacheHit, Client, Measured, Report, Scaling, Series, SideBySide,
};
use crate::process::{self, base_command, msal_python_command, rust_command};
use crate::scenario::{self, Env};
use crate::stats::Sample;

/// What `--compare` is told on the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Measured runs per row (and batches per N).
    pub runs: usize,
    /// Unmeasured runs per client first.
    pub warmup: usize,
    /// The second pass's simulated RTT (0: no second pass).
    pub rtt_ms: u64,
    /// A run that takes longer is killed.
    pub timeout: Duration,
}

/// What every measurement needs.
struct Ctx<'a> {
    emu: &'a Emulator,
    runtime: &'a tokio::runtime::Runtime,
    python: PathBuf,
    python_script: PathBuf,
    scratch: PathBuf,
    settings: &'a Settings,
    rust_env: Env,
    python_env: Env,
}

/// Other apps' and tenants' records in the cache file, for the scaling rows.
pub const CACHE_SIZES: [usize; 4] = [0, 1, 100, 10_000];
/// Processes started at once on a cold cache.
pub const BATCH_SIZES: [usize; 3] = [1, 8, 32];
/// `get_token` calls the twin times for its cache hit.
const TWIN_CACHE_HIT_CALLS: u32 = 200_000;

/// Built programs: our sample with and without the embedded emulator, the twin; a missing one says why.
struct Programs {
    ours: PathBuf,
    ours_no_emulator: Result<PathBuf, String>,
    twin: Result<PathBuf, String>,
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn cargo_build(root: &Path, args: &[&str]) -> Result<(), String> {
    eprintln!("cargo build --release {}", args.join(" "));
    let status = cargo()
        .args(["build", "--release", "--quiet"])
        .args(args)
        .current_dir(root)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo build --release {}` failed", args.join(" ")))
    }
}

/// Copies a freshly built binary aside, so the next build (other features) does not replace it.
fn keep(from: &Path, to: &Path) -> Result<PathBuf, String> {
    std::fs::copy(from, to)
        .map(|_| to.to_owned())
        .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))
}

/// Builds what is compared: daemon-secret without the embedded emulator, then with it (the default), then the
/// twin, in its own target directory under ours (its own Cargo project, outside the workspace).
fn build(root: &Path, target: &Path) -> anyhow::Result<Programs> {
    let dir = target.join("bench-compare");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let built = target.join("release").join("daemon-secret");
    let ours_no_emulator = cargo_build(
        root,
        &[
            "-p",
            "daemon-secret",
            "--no-default-features",
            "--features",
            "redis,encrypted-file-cache",
        ],
    )
    .and_then(|()| keep(&built, &dir.join("daemon-secret-no-emulator")));
    cargo_build(root, &["-p", "daemon-secret"]).map_err(anyhow::Error::msg)?;
    let ours = keep(&built, &dir.join("daemon-secret")).map_err(anyhow::Error::msg)?;
    let twin_target = target.join("azure-identity-twin");
    let manifest = root.join("bench/azure-identity-twin/Cargo.toml");
    let twin = cargo_build(
        root,
        &[
            "--manifest-path",
            &manifest.display().to_string(),
            "--target-dir",
            &twin_target.display().to_string(),
        ],
    )
    .map(|()| twin_target.join("release").join("azure-identity-twin"));
    Ok(Programs {
        ours,
        ours_no_emulator,
        twin,
    })
}

/// Runs the comparison and writes `compare.md` to `out`.
pub fn run(settings: &Settings, root: &Path, target: &Path, out: &Path) -> anyhow::Result<()> {
    let programs = build(root, target)?;
    for (what, r) in [
        ("without the embedded emulator", &programs.ours_no_emulator),
        ("azure_identity twin", &programs.twin),
    ] {
        if let Err(e) = r {
            eprintln!("{what}: skipped: {e}");
        }
    }
    let python = crate::venv::provision(target)?;
    let scratch = std::env::temp_dir().join(format!("bench-compare-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).with_context(|| format!("cannot create {}", scratch.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let emu = runtime
        .block_on(Emulator::builder().start())
        .context("the emulator did not start")?;
    eprintln!("emulator at {}", emu.https_url());
    let s = scenario::daemon_secret();
    let result = (s.rust_env)(&emu)
        .and_then(|rust_env| Ok((rust_env, (s.python_env)(&emu)?)))
        .and_then(|(rust_env, python_env)| {
            let ctx = Ctx {
                emu: &emu,
                runtime: &runtime,
                python: python.clone(),
                python_script: test_support::msal_python::samples_dir().join(s.python_script),
                scratch: scratch.clone(),
                settings,
                rust_env,
                python_env,
            };
            compare(&ctx, &programs, target)
        });
    runtime.block_on(emu.shutdown());
    let _ = std::fs::remove_dir_all(&scratch);
    let mut report = result?;
    report.date = crate::process::command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    report.machine = crate::process::machine();
    report.python = format!(
        "{}, msal {}",
        crate::process::command_line(&python.display().to_string(), &["--version"]),
        crate::venv::MSAL_VERSION
    );
    let markdown = compare_report::markdown(&report);
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let path = out.join("compare.md");
    std::fs::write(&path, &markdown).with_context(|| format!("cannot write {}", path.display()))?;
    println!("{markdown}");
    eprintln!("wrote {}", path.display());
    Ok(())
}

fn compare(ctx: &Ctx<'_>, programs: &Programs, target: &Path) -> anyhow::Result<Report> {
    let mut clients: Vec<(Client, Option<&Path>)> = vec![(Client::Ours, Some(programs.ours.as_path()))];
    if let Ok(p) = &programs.twin {
        clients.push((Client::AzureIdentity, Some(p.as_path())));
    }
    clients.push((Client::MsalPython, None));
    if let Ok(p) = &programs.ours_no_emulator {
        clients.push((Client::OursNoEmulator, Some(p.as_path())));
    }

    let mut rtts = vec![0];
    if ctx.settings.rtt_ms > 0 {
        rtts.push(ctx.settings.rtt_ms);
    }
    let mut side = Vec::new();
    for rtt in rtts {
        side.extend(side_by_side(ctx, &clients, rtt)?);
    }
    ctx.emu.set_simulated_rtt(Duration::ZERO);
    let scaling = scaling(ctx, &programs.ours)?;
    let batches = batches(ctx, &programs.ours);
    let hit = CacheHit {
        ours: crate::report::criterion_cache_hit(target)
            .ok_or_else(|| "not measured: run `cargo bench -p identity-core --bench cache` first".to_owned()),
        azure_identity: match &programs.twin {
            Ok(twin) => twin_cache_hit(ctx, twin),
            Err(e) => Err(e.clone()),
        },
    };
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).ok();
    let binaries = Binaries {
        ours: size(&programs.ours).unwrap_or(0),
        ours_no_emulator: programs.ours_no_emulator.as_deref().ok().and_then(size),
        azure_identity: programs.twin.as_deref().ok().and_then(size),
    };
    let mut skipped = Vec::new();
    if let Err(e) = &programs.twin {
        skipped.push(format!("azure_identity twin: {e}"));
    }
    if let Err(e) = &programs.ours_no_emulator {
        skipped.push(format!("daemon-secret without the embedded emulator: {e}"));
    }
    Ok(Report {
        date: String::new(),
        machine: String::new(),
        python: String::new(),
        runs: ctx.settings.runs,
        warmup: ctx.settings.warmup,
        side,
        scaling,
        batches,
        hit,
        binaries,
        skipped,
    })
}

/// An empty directory at `d` (whatever was there removed): a run's whole cache lives in it.
fn fresh(d: &Path) -> Result<(), String> {
    match std::fs::remove_dir_all(d) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot empty {}: {e}", d.display())),
    }
    std::fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))
}

/// Copies the regular files and directories under `from` into `to` (made empty first).
fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    fresh(to)?;
    let entries = std::fs::read_dir(from).map_err(|e| format!("cannot list {}: {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", from.display()))?;
        let kind = entry
            .file_type()
            .map_err(|e| format!("cannot stat {}: {e}", entry.path().display()))?;
        let dest = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &dest)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &dest)
                .map_err(|e| format!("cannot copy {}: {e}", entry.path().display()))?;
        }
    }
    Ok(())
}

impl Ctx<'_> {
    /// One run of `client` with its working directory (and cache) in `dir`: the emulator's counters reset, the
    /// child measured, its success checked.
    fn client_run(&self, client: Client, program: Option<&Path>, dir: &Path) -> Result<Measured, String> {
        let cmd = match (client, program) {
            (Client::MsalPython, _) => msal_python_command(
                &self.python,
                &self.python_script,
                self.emu.ca_path(),
                &self.python_env,
                dir,
            ),
            (Client::AzureIdentity, Some(p)) => base_command(p, dir, &self.rust_env),
            (_, Some(p)) => rust_command(p, &self.rust_env, dir),
            (_, None) => return Err(format!("{}: no program", client.label())),
        };
        self.emu.reset_request_counts();
        let run = crate::measure::run(cmd, dir, self.settings.timeout, None).map_err(|e| format!("{e:#}"))?;
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
        Ok(Measured {
            sample: Sample {
                wall: run.wall,
                rss_kib: run.max_rss_kib,
                counts: self.emu.request_counts(),
                code_shown: None,
                approval_to_exit: None,
                poll_to_exit: None,
            },
            net: self.emu.network_stats(),
        })
    }
}

/// Every client at one RTT: warm-up, then `runs` rounds of each client's cold run (and our warm run),
/// alternating so drift in the machine's load affects every client alike.
fn side_by_side(
    ctx: &Ctx<'_>,
    clients: &[(Client, Option<&Path>)],
    rtt_ms: u64,
) -> anyhow::Result<Vec<SideBySide>> {
    ctx.emu.set_simulated_rtt(Duration::from_millis(rtt_ms));
    let base = ctx.scratch.join(format!("rtt-{rtt_ms}"));
    let dir = |c: Client, what: &str| base.join(format!("{}-{what}", c.slug()));
    let mut rows: Vec<SideBySide> = clients
        .iter()
        .map(|&(client, _)| SideBySide {
            rtt_ms,
            client,
            cold: Series::default(),
            warm: (client == Client::Ours).then(Series::default),
        })
        .collect();
    eprintln!("compare, RTT {rtt_ms} ms: warm-up");
    for &(client, program) in clients {
        for _ in 0..ctx.settings.warmup {
            let d = dir(client, "cold");
            fresh(&d).map_err(anyhow::Error::msg)?;
            ctx.client_run(client, program, &d)
                .map_err(|e| anyhow::anyhow!("{} warm-up run failed: {e}", client.label()))?;
        }
        if client == Client::Ours {
            let d = dir(client, "warm");
            fresh(&d).map_err(anyhow::Error::msg)?;
            ctx.client_run(client, program, &d)
                .map_err(|e| anyhow::anyhow!("{} first run failed: {e}", client.label()))?;
        }
    }
    for i in 0..ctx.settings.runs {
        eprintln!("compare, RTT {rtt_ms} ms: run {}/{}", i + 1, ctx.settings.runs);
        for (row, &(client, program)) in rows.iter_mut().zip(clients) {
            let d = dir(client, "cold");
            let cold = fresh(&d).and_then(|()| ctx.client_run(client, program, &d));
            row.cold.record(cold, client.label());
            if let Some(warm) = row.warm.as_mut() {
                let d = dir(client, "warm");
                warm.record(ctx.client_run(client, program, &d), client.label());
            }
        }
    }
    Ok(rows)
}

/// Writes `n` access tokens of other apps (in our tenant) and of our app in other tenants into the token cache
/// at `path`, through identity-core's own `FileCache`, so they land wherever the library keeps such records.
pub fn populate_other_records(
    runtime: &tokio::runtime::Runtime,
    run_dir: &Path,
    n: usize,
    emu: &Emulator,
    our_client_id: &str,
) -> anyhow::Result<()> {
    if n == 0 {
        return Ok(());
    }
    let environment = emu.https_url().trim_start_matches("https://").to_owned();
    let tenant = emu.tenant_id();
    let now = identity_core::now_secs();
    // About the size of a real access token, so the file has the size a real cache with n records has.
    let token = SecretToken::new("e".repeat(1400));
    // Other apps in our tenant (even i) and our app in other tenants (odd i): 25 of each, so 50 files from 100
    // records on, each with tokens for many resources.
    let mut files: std::collections::BTreeMap<PathBuf, Vec<(CacheKey, CacheEntry)>> = Default::default();
    for i in 0..n {
        let other = format!("{:08x}-0000-4000-8000-{:012x}", i % 50, i % 50);
        let (client, realm) = if i % 2 == 0 {
            (other.as_str(), tenant.as_str())
        } else {
            (our_client_id, other.as_str())
        };
        let scope = format!("api://{i:08x}/.default");
        let key = AccessTokenKey::new(None, &environment, client, realm, &[scope.as_str()])
            .with_credential(&format!("{i:064x}"));
        let entry = CachedAccessToken::new(
            token.clone(),
            "Bearer".into(),
            vec![scope.clone()],
            now,
            3599,
            Some(3599),
            None,
        );
        // The file the library's default layout gives this app and tenant, under the run's cache directory.
        let name = FileCache::default_path_for(client, realm)
            .and_then(|p| p.file_name().map(ToOwned::to_owned))
            .context("no user cache directory (HOME is not set)")?;
        files
            .entry(process::cache_files_dir(run_dir).join(name))
            .or_default()
            .push((CacheKey::AccessToken(key), CacheEntry::AccessToken(entry)));
    }
    for (path, records) in &files {
        runtime
            .block_on(FileCache::new(path).put_all(records))
            .with_context(|| format!("cannot write {} records to {}", records.len(), path.display()))?;
    }
    Ok(())
}

fn client_id(env: &Env) -> anyhow::Result<String> {
    env.iter()
        .find(|(k, _)| k == "AZURE_CLIENT_ID")
        .map(|(_, v)| v.clone())
        .ok_or_else(|| anyhow::anyhow!("the scenario sets no AZURE_CLIENT_ID"))
}

/// Our cold and warm runs with 0, 1, 100 and 10,000 other records in the cache.
fn scaling(ctx: &Ctx<'_>, ours: &Path) -> anyhow::Result<Vec<Scaling>> {
    let our_id = client_id(&ctx.rust_env)?;
    let base = ctx.scratch.join("scaling");
    let mut rows = Vec::new();
    for n in CACHE_SIZES {
        eprintln!("cache scaling: writing {n} other records");
        let template = base.join(format!("{n}-template"));
        fresh(&template).map_err(anyhow::Error::msg)?;
        populate_other_records(ctx.runtime, &template, n, ctx.emu, &our_id)?;
        let warm = base.join(format!("{n}-warm"));
        copy_tree(&template, &warm).map_err(anyhow::Error::msg)?;
        ctx.client_run(Client::Ours, Some(ours), &warm)
            .map_err(|e| anyhow::anyhow!("first run with {n} other records failed: {e}"))?;
        rows.push(Scaling {
            records: n,
            cold: Series::default(),
            warm: Series::default(),
        });
    }
    for i in 0..ctx.settings.runs {
        eprintln!("cache scaling: run {}/{}", i + 1, ctx.settings.runs);
        for row in &mut rows {
            let n = row.records;
            let cold = base.join(format!("{n}-cold"));
            let result = copy_tree(&base.join(format!("{n}-template")), &cold)
                .and_then(|()| ctx.client_run(Client::Ours, Some(ours), &cold));
            row.cold.record(result, "cache scaling, cold");
            let warm = base.join(format!("{n}-warm"));
            row.warm.record(
                ctx.client_run(Client::Ours, Some(ours), &warm),
                "cache scaling, warm",
            );
        }
    }
    Ok(rows)
}

/// N of our processes started together on one empty cache, `runs` times for each N.
fn batches(ctx: &Ctx<'_>, ours: &Path) -> Vec<Batch> {
    let dir = ctx.scratch.join("batch");
    let mut out = Vec::new();
    for n in BATCH_SIZES {
        let mut batch = Batch {
            processes: n,
            walls_ms: Vec::new(),
            token_requests: Vec::new(),
            failures: Vec::new(),
        };
        for i in 0..ctx.settings.runs {
            eprintln!("cold batch of {n}: run {}/{}", i + 1, ctx.settings.runs);
            match one_batch(ctx, ours, &dir, n) {
                Ok((wall, tokens)) => {
                    batch.walls_ms.push(wall.as_secs_f64() * 1000.0);
                    batch.token_requests.push(tokens);
                }
                Err(e) => {
                    eprintln!("cold batch of {n}: {e}");
                    batch.failures.push(e);
                }
            }
        }
        out.push(batch);
    }
    out
}

/// Spawns `n` processes sharing one empty cache; returns first spawn → last exit and the token requests seen.
fn one_batch(ctx: &Ctx<'_>, ours: &Path, dir: &Path, n: usize) -> Result<(Duration, u64), String> {
    fresh(dir)?;
    ctx.emu.reset_request_counts();
    let start = Instant::now();
    let mut children = Vec::with_capacity(n);
    for _ in 0..n {
        let mut cmd = rust_command(ours, &ctx.rust_env, dir);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        children.push(
            cmd.spawn()
                .map_err(|e| format!("cannot start {}: {e}", ours.display()))?,
        );
    }
    let mut failed = Vec::new();
    for child in children {
        let output = child
            .wait_with_output()
            .map_err(|e| format!("cannot wait for a child: {e}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() || !stdout.contains("Graph API call result") {
            let stderr = String::from_utf8_lossy(&output.stderr);
            failed.push(format!(
                "{}: {}",
                output.status,
                stderr.trim().replace('\n', " ⏎ ")
            ));
        }
    }
    let wall = start.elapsed();
    if let Some(first) = failed.first() {
        return Err(format!(
            "{} of {n} processes failed; first: {first}",
            failed.len()
        ));
    }
    Ok((wall, ctx.emu.request_counts().get(Endpoint::Token)))
}

/// The twin's in-memory cache hit: ns per `get_token` call over a long loop, median of three processes.
fn twin_cache_hit(ctx: &Ctx<'_>, twin: &Path) -> Result<f64, String> {
    let dir = ctx.scratch.join("twin-hit");
    fresh(&dir)?;
    let mut values = Vec::new();
    for _ in 0..3 {
        let output = base_command(twin, &dir, &ctx.rust_env)
            .args(["--cache-hit-loop", &TWIN_CACHE_HIT_CALLS.to_string()])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot start {}: {e}", twin.display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let ns = stdout
            .lines()
            .find_map(|l| l.strip_prefix("cache hit: "))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| {
                format!(
                    "the twin's timing loop printed no result ({}): {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                )
            })?;
        values.push(ns);
    }
    crate::stats::median(&values).ok_or_else(|| "no measurement".to_owned())
}
