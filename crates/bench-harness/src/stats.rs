//! Measurements per row and their summaries.

use std::time::Duration;

use entra_emulator::{Endpoint, RequestCounts};

/// The rows measured per scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    /// Rust, cache file removed before each run.
    RustCold,
    /// Rust, second run onwards: a valid token in the cache file.
    RustWarm,
    /// Rust, the cached token expired before each run (discovery metadata still cached).
    RustExpired,
    /// MSAL Python (its in-memory cache is always cold).
    Python,
}

impl RowKind {
    /// Report label.
    pub fn label(self) -> &'static str {
        match self {
            RowKind::RustCold => "Rust, cold cache",
            RowKind::RustWarm => "Rust, warm cache",
            RowKind::RustExpired => "Rust, token expired",
            RowKind::Python => "MSAL Python",
        }
    }

    /// All rows, in report order.
    pub const ALL: [RowKind; 4] = [
        RowKind::RustCold,
        RowKind::RustWarm,
        RowKind::RustExpired,
        RowKind::Python,
    ];
}

/// One successful run.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Spawn to exit.
    pub wall: Duration,
    /// Peak RSS, KiB.
    pub rss_kib: u64,
    /// Requests the emulator saw during the run.
    pub counts: RequestCounts,
    /// Spawn to code shown (device code).
    pub code_shown: Option<Duration>,
    /// Approval to exit (device code).
    pub approval_to_exit: Option<Duration>,
    /// The successful poll's arrival to exit (device code): approval → exit without the wait for the poll.
    pub poll_to_exit: Option<Duration>,
}

/// The runs of one row.
#[derive(Debug, Clone)]
pub struct Row {
    /// Which row.
    pub kind: RowKind,
    /// Successful runs.
    pub samples: Vec<Sample>,
    /// Failed runs, described.
    pub failures: Vec<String>,
}

impl Row {
    /// An empty row.
    pub fn new(kind: RowKind) -> Row {
        Row {
            kind,
            samples: Vec::new(),
            failures: Vec::new(),
        }
    }

    fn durations(&self, f: impl Fn(&Sample) -> Option<Duration>) -> Vec<f64> {
        self.samples
            .iter()
            .filter_map(f)
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect()
    }

    /// Wall times, ms.
    pub fn wall_ms(&self) -> Vec<f64> {
        self.durations(|s| Some(s.wall))
    }

    /// Spawn → code shown, ms.
    pub fn code_shown_ms(&self) -> Vec<f64> {
        self.durations(|s| s.code_shown)
    }

    /// Approval → exit, ms.
    pub fn approval_to_exit_ms(&self) -> Vec<f64> {
        self.durations(|s| s.approval_to_exit)
    }

    /// Successful poll → exit, ms.
    pub fn poll_to_exit_ms(&self) -> Vec<f64> {
        self.durations(|s| s.poll_to_exit)
    }

    /// Peak RSS per run, MiB.
    pub fn rss_mib(&self) -> Vec<f64> {
        self.samples.iter().map(|s| s.rss_kib as f64 / 1024.0).collect()
    }

    /// Requests to `endpoint` per run.
    pub fn requests(&self, endpoint: Endpoint) -> Vec<u64> {
        self.samples.iter().map(|s| s.counts.get(endpoint)).collect()
    }

    /// All requests per run (including any to unknown paths).
    pub fn total_requests(&self) -> Vec<u64> {
        self.samples
            .iter()
            .map(|s| s.counts.total() + s.counts.other())
            .collect()
    }
}

/// Median (mean of the two middle values for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v = sorted(values);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => v.get(n / 2).copied(),
        _ => {
            let hi = v.swap_remove(n / 2);
            v.get(n / 2 - 1).map(|lo| (lo + hi) / 2.0)
        }
    }
}

/// 90th percentile, nearest rank; `None` when empty.
pub fn p90(values: &[f64]) -> Option<f64> {
    let v = sorted(values);
    if v.is_empty() {
        return None;
    }
    let rank = ((0.9 * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v.get(rank - 1).copied()
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// "3" when every run made the same number of requests, else "2–3".
pub fn count_range(values: &[u64]) -> String {
    match (values.iter().min(), values.iter().max()) {
        (Some(lo), Some(hi)) if lo == hi => lo.to_string(),
        (Some(lo), Some(hi)) => format!("{lo}–{hi}"),
        _ => "–".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p90() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(p90(&ten), Some(9.0));
        assert_eq!(p90(&[5.0]), Some(5.0));
        assert_eq!(count_range(&[1, 1]), "1");
        assert_eq!(count_range(&[2, 3, 2]), "2–3");
    }
}
