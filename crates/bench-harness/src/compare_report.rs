//! The `--compare` results and their report (`compare.md`): the side-by-side table at each round-trip time, the cache-size
//! scaling, the N-process cold batch, the cache hit, the embedded emulator's share, and the targets with
//! PASS/MISS.

use std::fmt::Write as _;

use std::path::PathBuf;

use entra_emulator::{Endpoint, NetworkStats};

use crate::stats::{Sample, count_range, median, p90};

/// Everything `--compare` measured.
#[derive(Debug)]
pub struct Report {
    /// When, UTC.
    pub date: String,
    /// CPU, cores, kernel.
    pub machine: String,
    /// Python and MSAL versions.
    pub python: String,
    /// Measured runs per row.
    pub runs: usize,
    /// Unmeasured runs per client first.
    pub warmup: usize,
    /// Every client at every RTT.
    pub side: Vec<SideBySide>,
    /// Our runs with other records in the cache.
    pub scaling: Vec<Scaling>,
    /// N processes at once on a cold cache.
    pub batches: Vec<Batch>,
    /// The in-memory cache hit.
    pub hit: CacheHit,
    /// Binary sizes.
    pub binaries: Binaries,
    /// What could not be measured, and why.
    pub skipped: Vec<String>,
}

/// A client in the side-by-side rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// Our daemon-secret sample (release, default features).
    Ours,
    /// The same, built without the `embedded-emulator` feature.
    OursNoEmulator,
    /// The azure_identity twin.
    AzureIdentity,
    /// MSAL Python's daemon sample.
    MsalPython,
}

impl Client {
    /// Report label.
    pub fn label(self) -> &'static str {
        match self {
            Client::Ours => "ours (identity-core)",
            Client::OursNoEmulator => "ours, without the embedded emulator",
            Client::AzureIdentity => "azure_identity 1.0",
            Client::MsalPython => "MSAL Python",
        }
    }

    /// Directory name.
    pub fn slug(self) -> &'static str {
        match self {
            Client::Ours => "ours",
            Client::OursNoEmulator => "ours-no-emulator",
            Client::AzureIdentity => "azure-identity",
            Client::MsalPython => "msal-python",
        }
    }
}

/// One measured run and the emulator's connection count for it.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Wall time, peak RSS, requests by endpoint.
    pub sample: Sample,
    /// Connections and requests.
    pub net: NetworkStats,
}

/// The runs of one row.
#[derive(Debug, Default)]
pub struct Series {
    /// Successful runs.
    pub runs: Vec<Measured>,
    /// Failed runs, described.
    pub failures: Vec<String>,
}

impl Series {
    /// Keeps a run's result (a failure is printed and counted).
    pub fn record(&mut self, result: Result<Measured, String>, what: &str) {
        match result {
            Ok(m) => self.runs.push(m),
            Err(e) => {
                eprintln!("{what}: run failed: {e}");
                self.failures.push(e);
            }
        }
    }

    /// Wall times, ms.
    pub fn wall_ms(&self) -> Vec<f64> {
        self.runs
            .iter()
            .map(|m| m.sample.wall.as_secs_f64() * 1000.0)
            .collect()
    }

    /// Peak RSS, MiB.
    pub fn rss_mib(&self) -> Vec<f64> {
        self.runs
            .iter()
            .map(|m| m.sample.rss_kib as f64 / 1024.0)
            .collect()
    }

    /// HTTP requests per run (the listeners' count, every endpoint).
    pub fn requests(&self) -> Vec<u64> {
        self.runs.iter().map(|m| m.net.requests).collect()
    }

    /// Requests to one endpoint per run.
    pub fn endpoint(&self, e: Endpoint) -> Vec<u64> {
        self.runs.iter().map(|m| m.sample.counts.get(e)).collect()
    }

    /// New connections per run.
    pub fn connections(&self) -> Vec<u64> {
        self.runs.iter().map(|m| m.net.connections).collect()
    }

    /// Round trips per run: 2 per new connection (TCP and TLS handshakes) plus 1 per request, what the
    /// simulated network charges.
    pub fn round_trips(&self) -> Vec<u64> {
        self.runs
            .iter()
            .map(|m| 2 * m.net.connections + m.net.requests)
            .collect()
    }
}

/// One client's rows at one round-trip time.
#[derive(Debug)]
pub struct SideBySide {
    /// Simulated RTT, ms (0: loopback as it is).
    pub rtt_ms: u64,
    /// Whose.
    pub client: Client,
    /// Empty cache (for clients without a persistent cache: every run).
    pub cold: Series,
    /// A valid token in the cache file (clients with one).
    pub warm: Option<Series>,
}

/// Our runs with other records in the cache.
#[derive(Debug)]
pub struct Scaling {
    /// Other apps' and tenants' records.
    pub records: usize,
    /// No token of our own in the cache.
    pub cold: Series,
    /// Our valid token in the cache too.
    pub warm: Series,
}

/// N processes started at once on a cold cache.
#[derive(Debug)]
pub struct Batch {
    /// How many.
    pub processes: usize,
    /// Spawn of the first to exit of the last, ms, per batch.
    pub walls_ms: Vec<f64>,
    /// Token requests the emulator saw per batch.
    pub token_requests: Vec<u64>,
    /// Failed batches, described.
    pub failures: Vec<String>,
}

/// The in-memory cache hit of both Rust libraries.
#[derive(Debug)]
pub struct CacheHit {
    /// Ours: criterion's median (ns) and where it was read, or why not.
    pub ours: Result<(f64, PathBuf), String>,
    /// The twin: its timing loop's ns per call (median of 3 processes), or why not.
    pub azure_identity: Result<f64, String>,
}

/// Sizes of the binaries compared.
#[derive(Debug)]
pub struct Binaries {
    /// daemon-secret, default features.
    pub ours: u64,
    /// daemon-secret without the embedded emulator, if it built.
    pub ours_no_emulator: Option<u64>,
    /// The twin, if it built.
    pub azure_identity: Option<u64>,
}

fn ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
        None => "–".into(),
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

/// "token 1 · graph 1 = 2": every endpoint some run called, and the total.
fn requests_text(s: &Series) -> String {
    if s.runs.is_empty() {
        return "–".into();
    }
    let names = [
        (Endpoint::OpenIdConfiguration, "discovery"),
        (Endpoint::Keys, "keys"),
        (Endpoint::InstanceDiscovery, "instance"),
        (Endpoint::UserRealm, "userrealm"),
        (Endpoint::DeviceCode, "devicecode"),
        (Endpoint::Token, "token"),
        (Endpoint::Graph, "graph"),
    ];
    let parts: Vec<String> = names
        .iter()
        .filter_map(|&(e, name)| {
            let v = s.endpoint(e);
            v.iter()
                .any(|&n| n > 0)
                .then(|| format!("{name} {}", count_range(&v)))
        })
        .collect();
    format!("{} = {}", parts.join(" · "), count_range(&s.requests()))
}

fn failures(s: &Series) -> String {
    if s.failures.is_empty() {
        String::new()
    } else {
        format!(" ({} failed)", s.failures.len())
    }
}

fn side_table(m: &mut String, side: &[SideBySide]) {
    m.push_str(
        "| RTT | client | runs | cold median ms | cold p90 | warm median ms | warm p90 | peak RSS MiB | requests, cold | \
         connections, cold | round trips, cold | requests, warm |\n\
         | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |\n",
    );
    for r in side {
        let cold = r.cold.wall_ms();
        let (warm_median, warm_p90, warm_requests) = match &r.warm {
            Some(w) => {
                let v = w.wall_ms();
                (ms(median(&v)), ms(p90(&v)), requests_text(w))
            }
            None => ("= cold".into(), String::new(), "no persistent cache".into()),
        };
        let _ = writeln!(
            m,
            "| {} ms | {} | {}{} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.rtt_ms,
            r.client.label(),
            r.cold.runs.len(),
            failures(&r.cold),
            ms(median(&cold)),
            ms(p90(&cold)),
            warm_median,
            warm_p90,
            median(&r.cold.rss_mib())
                .map(|v| format!("{v:.1}"))
                .unwrap_or_else(|| "–".into()),
            requests_text(&r.cold),
            count_range(&r.cold.connections()),
            count_range(&r.cold.round_trips()),
            warm_requests,
        );
    }
}

fn scaling_table(m: &mut String, scaling: &[Scaling]) {
    m.push_str(
        "| other records in the cache | runs | cold median ms | Δ vs none | warm median ms | Δ vs none |\n\
         | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    let base = scaling.iter().find(|s| s.records == 0);
    let delta = |v: Option<f64>, b: Option<f64>| match (v, b) {
        (Some(v), Some(b)) => format!("{:+.2}", v - b),
        _ => "–".into(),
    };
    for s in scaling {
        let (cold, warm) = (median(&s.cold.wall_ms()), median(&s.warm.wall_ms()));
        let (base_cold, base_warm) = (
            base.and_then(|b| median(&b.cold.wall_ms())),
            base.and_then(|b| median(&b.warm.wall_ms())),
        );
        let _ = writeln!(
            m,
            "| {} | {}{} | {} | {} | {} | {} |",
            s.records,
            s.cold.runs.len(),
            failures(&s.cold),
            ms(cold),
            delta(cold, base_cold),
            ms(warm),
            delta(warm, base_warm),
        );
    }
}

fn batch_table(m: &mut String, batches: &[Batch]) {
    m.push_str(
        "| processes at once | batches | first spawn → last exit, median ms | p90 | token requests per batch |\n\
         | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for b in batches {
        let fails = if b.failures.is_empty() {
            String::new()
        } else {
            format!(" ({} failed)", b.failures.len())
        };
        let _ = writeln!(
            m,
            "| {} | {}{fails} | {} | {} | {} |",
            b.processes,
            b.walls_ms.len(),
            ms(median(&b.walls_ms)),
            ms(p90(&b.walls_ms)),
            count_range(&b.token_requests),
        );
    }
}

fn find(side: &[SideBySide], rtt: u64, client: Client) -> Option<&SideBySide> {
    side.iter()
        .find(|r| r.rtt_ms == rtt && r.client == client && !r.cold.runs.is_empty())
}

/// A target and whether it was met (`None`: not judged).
struct Target {
    what: String,
    pass: Option<bool>,
    detail: String,
}

fn targets(r: &Report) -> Vec<Target> {
    let mut out = Vec::new();
    let cold = |rtt, c| find(&r.side, rtt, c).and_then(|s| median(&s.cold.wall_ms()));
    let ours = cold(0, Client::Ours);
    let az = cold(0, Client::AzureIdentity);
    out.push(Target {
        what: "cold daemon-secret wall time ≤ azure_identity's (loopback)".into(),
        pass: ours.zip(az).map(|(o, a)| o <= a),
        detail: format!("ours {} ms, azure_identity {} ms (medians)", ms(ours), ms(az)),
    });
    let py = cold(0, Client::MsalPython);
    let ratio = ours.zip(py).map(|(o, p)| p / o);
    out.push(Target {
        what: "cold daemon-secret ≥ 25× faster than MSAL Python (loopback)".into(),
        pass: ratio.map(|x| x >= 25.0),
        detail: ratio
            .map(|x| format!("{x:.1}× ({} ms against {} ms)", ms(py), ms(ours)))
            .unwrap_or_else(|| "not measured".into()),
    });
    let mut rtts: Vec<u64> = r.side.iter().map(|s| s.rtt_ms).collect();
    rtts.dedup();
    for rtt in rtts {
        let Some(o) = find(&r.side, rtt, Client::Ours) else {
            continue;
        };
        let ours_max = o.cold.round_trips().into_iter().max().unwrap_or(0);
        let others: Vec<(Client, u64)> = [Client::AzureIdentity, Client::MsalPython]
            .into_iter()
            .filter_map(|c| {
                let s = find(&r.side, rtt, c)?;
                Some((c, s.cold.round_trips().into_iter().min()?))
            })
            .collect();
        let fewer: Vec<String> = others
            .iter()
            .filter(|(_, n)| *n < ours_max)
            .map(|(c, n)| format!("{} {n}", c.label()))
            .collect();
        let all: Vec<String> = others.iter().map(|(c, n)| format!("{} {n}", c.label())).collect();
        out.push(Target {
            what: format!("RTT {rtt} ms: no client makes fewer round trips than ours on a cold run"),
            pass: (!others.is_empty()).then_some(fewer.is_empty()),
            detail: format!(
                "ours at most {ours_max} (2 per connection + 1 per request); others at least: {}",
                all.join(", ")
            ),
        });
    }
    let hit = (&r.hit.ours, &r.hit.azure_identity);
    out.push(Target {
        what: "in-memory cache hit ≤ azure_identity's".into(),
        pass: match hit {
            (Ok((o, _)), Ok(a)) => Some(o <= a),
            _ => None,
        },
        detail: match hit {
            (Ok((o, _)), Ok(a)) => format!("ours {o:.0} ns, azure_identity {a:.0} ns"),
            (Err(e), _) | (_, Err(e)) => e.clone(),
        },
    });
    let base = r.scaling.iter().find(|s| s.records == 0);
    if let (Some(b), Some(big)) = (base, r.scaling.iter().max_by_key(|s| s.records))
        && big.records > 0
    {
        for (what, f) in [
            (
                "warm",
                (|s: &Scaling| median(&s.warm.wall_ms())) as fn(&Scaling) -> Option<f64>,
            ),
            ("cold", |s: &Scaling| median(&s.cold.wall_ms())),
        ] {
            let d = f(big).zip(f(b)).map(|(x, y)| x - y);
            out.push(Target {
                what: format!(
                    "{} other records in the cache: a {what} run costs < 1 ms more than with none",
                    big.records
                ),
                pass: d.map(|d| d < 1.0),
                detail: d
                    .map(|d| format!("{d:+.2} ms (medians)"))
                    .unwrap_or_else(|| "not measured".into()),
            });
        }
    }
    for b in &r.batches {
        let ok =
            !b.token_requests.is_empty() && b.failures.is_empty() && b.token_requests.iter().all(|&n| n == 1);
        out.push(Target {
            what: format!(
                "{} processes on a cold cache make exactly 1 token request",
                b.processes
            ),
            pass: Some(ok),
            detail: format!(
                "{} per batch over {} batches{}",
                count_range(&b.token_requests),
                b.token_requests.len(),
                b.failures
                    .first()
                    .map(|f| format!("; {} failed, first: {f}", b.failures.len()))
                    .unwrap_or_default()
            ),
        });
    }
    out
}

/// The whole Markdown report.
pub fn markdown(r: &Report) -> String {
    let mut m = String::new();
    let _ = writeln!(
        m,
        "# Benchmark: daemon-secret against azure_identity and MSAL Python\n"
    );
    let _ = writeln!(
        m,
        "{} · {} · {} · {} measured runs per row after {} warm-up run(s) per client, clients alternating · one \
         in-process emulator over HTTPS\n",
        r.date, r.machine, r.python, r.runs, r.warmup
    );
    for s in &r.skipped {
        let _ = writeln!(m, "- skipped: {s}");
    }
    m.push_str("\n## Side by side\n\n");
    side_table(&mut m, &r.side);
    m.push_str(
        "\nWall time from spawn to exit; peak RSS of the child alone (`wait4`); requests by endpoint and connections \
         from the emulator's counters, reset before each run. Round trips: what the simulated network charges, 2 \
         per new connection (TCP and TLS handshakes) and 1 per request. Only our sample keeps a cache across \
         processes, so only it has a warm row.\n\n## Cache size (ours, loopback)\n\n",
    );
    scaling_table(&mut m, &r.scaling);
    m.push_str("\n## N processes at once on a cold cache (ours, loopback)\n\n");
    batch_table(&mut m, &r.batches);
    m.push_str("\n## In-memory cache hit\n\n| library | ns per hit | how |\n| --- | ---: | --- |\n");
    match &r.hit.ours {
        Ok((ns, path)) => {
            let _ = writeln!(
                m,
                "| identity-core | {ns:.0} | criterion median, `{}` |",
                path.display()
            );
        }
        Err(e) => {
            let _ = writeln!(m, "| identity-core | – | {e} |");
        }
    }
    match &r.hit.azure_identity {
        Ok(ns) => {
            let _ = writeln!(
                m,
                "| azure_identity | {ns:.0} | `get_token` timing loop in the twin, median of 3 processes |"
            );
        }
        Err(e) => {
            let _ = writeln!(m, "| azure_identity | – | {e} |");
        }
    }
    m.push_str("\n## The embedded emulator's share\n\n| build | binary MiB | cold median ms | peak RSS MiB |\n| --- | ---: | ---: | ---: |\n");
    for (client, bytes) in [
        (Client::Ours, Some(r.binaries.ours)),
        (Client::OursNoEmulator, r.binaries.ours_no_emulator),
        (Client::AzureIdentity, r.binaries.azure_identity),
    ] {
        let row = find(&r.side, 0, client);
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} |",
            client.label(),
            bytes.map(mib).unwrap_or_else(|| "–".into()),
            ms(row.and_then(|s| median(&s.cold.wall_ms()))),
            row.and_then(|s| median(&s.cold.rss_mib()))
                .map(|v| format!("{v:.1}"))
                .unwrap_or_else(|| "–".into()),
        );
    }
    m.push_str("\n## Targets\n\n");
    for t in targets(r) {
        let verdict = match t.pass {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "n/a",
        };
        let _ = writeln!(m, "- **{verdict}** {}: {}", t.what, t.detail);
    }
    m
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn series(walls_ms: &[u64], connections: u64, requests: u64) -> Series {
        Series {
            runs: walls_ms
                .iter()
                .map(|&w| Measured {
                    sample: Sample {
                        wall: Duration::from_millis(w),
                        rss_kib: 8192,
                        counts: Default::default(),
                        code_shown: None,
                        approval_to_exit: None,
                        poll_to_exit: None,
                    },
                    net: NetworkStats {
                        connections,
                        requests,
                    },
                })
                .collect(),
            failures: Vec::new(),
        }
    }

    fn side(rtt_ms: u64, client: Client, cold: Series) -> SideBySide {
        SideBySide {
            rtt_ms,
            client,
            cold,
            warm: None,
        }
    }

    #[test]
    fn targets_compare_medians_and_round_trips() {
        let report = Report {
            date: String::new(),
            machine: String::new(),
            python: String::new(),
            runs: 3,
            warmup: 1,
            side: vec![
                side(0, Client::Ours, series(&[4, 5, 6], 1, 2)),
                side(0, Client::AzureIdentity, series(&[5, 6, 7], 1, 2)),
                side(0, Client::MsalPython, series(&[150, 160, 170], 1, 3)),
                side(20, Client::Ours, series(&[100], 1, 3)),
                side(20, Client::AzureIdentity, series(&[90], 1, 2)),
            ],
            scaling: vec![
                Scaling {
                    records: 0,
                    cold: series(&[5], 1, 2),
                    warm: series(&[3], 1, 1),
                },
                Scaling {
                    records: 10_000,
                    cold: series(&[7], 1, 2),
                    warm: series(&[3], 1, 1),
                },
            ],
            batches: vec![Batch {
                processes: 8,
                walls_ms: vec![10.0, 11.0],
                token_requests: vec![1, 2],
                failures: Vec::new(),
            }],
            hit: CacheHit {
                ours: Ok((200.0, "x".into())),
                azure_identity: Ok(233.0),
            },
            binaries: Binaries {
                ours: 6 << 20,
                ours_no_emulator: None,
                azure_identity: None,
            },
            skipped: Vec::new(),
        };
        let t = targets(&report);
        let verdict = |what: &str| t.iter().find(|t| t.what.contains(what)).map(|t| t.pass);
        assert_eq!(verdict("≤ azure_identity's (loopback)"), Some(Some(true)));
        assert_eq!(verdict("25×"), Some(Some(true)));
        assert_eq!(verdict("RTT 0 ms"), Some(Some(true)));
        // At RTT 20 the twin made 4 round trips against our 5.
        assert_eq!(verdict("RTT 20 ms"), Some(Some(false)));
        assert_eq!(verdict("cache hit"), Some(Some(true)));
        assert_eq!(verdict("a warm run costs"), Some(Some(true)));
        assert_eq!(verdict("a cold run costs"), Some(Some(false)));
        assert_eq!(verdict("8 processes"), Some(Some(false)));
        let md = markdown(&report);
        assert!(
            md.contains("| 0 ms | ours (identity-core) | 3 | 5.0 | 6.0 | = cold |"),
            "{md}"
        );
        assert!(md.contains("| 10000 | 1 | 7.0 | +2.00 | 3.0 | +0.00 |"), "{md}");
    }
}
