//! Runs a sample's built binary through injected faults at each endpoint it uses and checks how it ends.
//! Included with `#[path]` next to `mod.rs` (as `common`), whose process helpers it uses.
//!
//! The contract: transient faults end in success; a service that keeps failing ends with its own exit code (3
//! identity platform, 4 Graph), answers that are not what the protocol says end quickly with exit 5, both with a
//! `  fix:` line and no access token in the cache; nothing panics,
//! and no token or secret reaches the output. Each case gets its own emulator (faults and counts never leak
//! between cases) and its own cache file.
#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::process::Output;

use entra_emulator::{Emulator, EmulatorBuilder, Endpoint, Fault, FaultKind};
use serde_json::json;

use crate::common::{self, text};

/// Cases run at the same time within one test (each is one emulator and one or two sample processes).
const PARALLEL_CASES: usize = 4;

/// How a sample is configured against an emulator.
pub struct Sample {
    /// `env!("CARGO_BIN_EXE_…")`.
    pub bin: &'static str,
    /// Temp directory prefix.
    pub name: &'static str,
    /// The endpoints its flow calls, in order.
    pub endpoints: &'static [Endpoint],
    /// Emulator settings the flow needs (device codes approved at once, for instance).
    pub builder: fn(EmulatorBuilder) -> EmulatorBuilder,
    /// Its settings for `emu`.
    pub env: fn(&Emulator) -> Settings,
}

/// A sample's environment for one emulator, and the secrets in it that must never be printed.
pub struct Settings {
    /// Variables.
    pub env: Vec<(&'static str, String)>,
    /// Values that must not appear in the output.
    pub secrets: Vec<String>,
}

/// How a run must end.
#[derive(Clone, Debug)]
pub enum Expect {
    /// Exit 0.
    Success,
    /// Exit 5 with a fix line; no access token cached when the fault was before Graph.
    Network,
    /// Exit 3 with this text (an `AADSTS` code) on stderr.
    Service(&'static str),
    /// The service keeps failing in its own dialect (an `AADSTS` error, a Graph error envelope): its exit code
    /// (3 identity platform, 4 Graph) with a fix line; no access token cached when the fault was before Graph.
    Refused(i32),
    /// Exit 0 twice in a row with the same cache (a strange answer must not poison it).
    SuccessTwice,
}

/// One fault scenario.
#[derive(Clone, Debug)]
pub struct Case {
    /// What is injected, for the failure report.
    pub name: String,
    /// The faults.
    pub faults: Vec<Fault>,
    /// The expected end.
    pub expect: Expect,
}

impl Case {
    /// `fault` at `endpoint`, `times` times.
    pub fn new(endpoint: Endpoint, kind: FaultKind, times: u32, expect: Expect) -> Case {
        Case {
            name: format!("{} at {} x{times}", kind_name(&kind), endpoint.as_str()),
            faults: vec![Fault::new(endpoint, kind).times(times)],
            expect,
        }
    }
}

fn kind_name(kind: &FaultKind) -> String {
    match kind {
        FaultKind::Body { status, body, .. } => {
            let shown: String = body.chars().take(40).collect();
            format!("body {status} {shown:?}")
        }
        FaultKind::Huge { bytes, .. } => format!("huge {bytes} B"),
        other => format!("{other:?}"),
    }
}

fn status(status: u16, retry_after: Option<u64>) -> FaultKind {
    FaultKind::Status { status, retry_after }
}

fn body(status: u16, content_type: &str, body: &str) -> FaultKind {
    FaultKind::Body {
        status,
        content_type: Some(content_type.to_owned()),
        body: body.to_owned(),
    }
}

/// Faults the client must ride out: throttling and outages that end, one dropped connection, a slow answer.
pub fn transient(endpoints: &[Endpoint]) -> Vec<Case> {
    let mut cases = Vec::new();
    for &e in endpoints {
        for kind in [
            status(429, Some(1)),
            status(503, Some(2)),
            status(500, None),
            status(502, None),
            status(504, None),
            FaultKind::ResetBeforeAnswer,
            FaultKind::ResetMidBody,
            FaultKind::SlowDrip { duration_ms: 1000 },
        ] {
            cases.push(Case::new(e, kind, 1, Expect::Success));
        }
    }
    cases
}

/// Faults that do not go away, and answers that are not what the protocol says.
pub fn persistent(endpoints: &[Endpoint]) -> Vec<Case> {
    let html = "<!DOCTYPE html><html><head><title>Sign in to the Wi-Fi</title></head><body><form></form></body></html>";
    let mut cases = Vec::new();
    for &e in endpoints {
        // The emulator's status faults answer in the endpoint's own error format, so they end as that
        // service's error (exit 3 or 4), not as a network one.
        let refused = Expect::Refused(if e == Endpoint::Graph { 4 } else { 3 });
        for kind in [status(503, None), status(429, Some(1)), status(500, None)] {
            cases.push(Case::new(e, kind, 10, refused.clone()));
        }
        let mut kinds = vec![
            (body(200, "text/html; charset=utf-8", html), 1),
            (body(502, "text/html", html), 10),
            (body(200, "application/json", ""), 1),
            (body(200, "application/json", truncated(e)), 1),
            (body(200, "application/json", "{\"a\":1,,]"), 1),
            (
                FaultKind::Huge {
                    bytes: 50 * 1024 * 1024,
                    declare_length: false,
                },
                1,
            ),
            (
                FaultKind::Huge {
                    bytes: 50 * 1024 * 1024,
                    declare_length: true,
                },
                1,
            ),
            (
                FaultKind::Redirect {
                    status: 302,
                    location: "https://login.evil.example/common/oauth2/v2.0/token".into(),
                },
                1,
            ),
        ];
        // Graph answers any JSON; only the identity endpoints have a shape to get wrong.
        if let Some(wrong) = wrong_shape(e) {
            kinds.push((body(200, "application/json", wrong), 1));
        }
        for (kind, times) in kinds {
            cases.push(Case::new(e, kind, times, Expect::Network));
        }
    }
    cases
}

/// The start of a real answer of `endpoint`, cut off.
fn truncated(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Token => r#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_tok"#,
        Endpoint::DeviceCode => r#"{"user_code":"ABCD1234","device_code":"DAQABAAEAAAD"#,
        Endpoint::UserRealm => r#"{"ver":"1.0","account_type":"Managed","domain_na"#,
        Endpoint::Graph => {
            r#"{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#users","value":[{"#
        }
        _ => r#"{"token_endpoint":"https://login.microsoftonline.com/common/oauth2/v2.0/tok"#,
    }
}

/// Valid JSON with the wrong types or members for `endpoint`.
fn wrong_shape(endpoint: Endpoint) -> Option<&'static str> {
    Some(match endpoint {
        Endpoint::Token => r#"{"token_type":"Bearer","expires_in":"soon","access_token":{"value":42}}"#,
        Endpoint::DeviceCode => r#"{"device_code":42,"user_code":["A"],"expires_in":"soon","interval":-1}"#,
        Endpoint::UserRealm => r#"{"ver":1.0,"account_type":["Managed"],"domain_name":42}"#,
        Endpoint::Graph => return None,
        _ => r#"{"token_endpoint":42,"issuer":["x"],"authorization_endpoint":null}"#,
    })
}

/// Token answers whose lifetimes are absurd, as numbers and as numeric strings.
pub fn absurd_lifetimes() -> Vec<Case> {
    let max = u64::MAX;
    [
        json!({"expires_in": 1e30, "ext_expires_in": 1e30, "refresh_in": 1e30}),
        json!({"expires_in": max, "ext_expires_in": max, "refresh_in": max}),
        json!({"expires_in": "1e30", "ext_expires_in": "1e30", "refresh_in": "1e30"}),
        json!({"expires_in": max.to_string(), "ext_expires_in": max.to_string(), "refresh_in": max.to_string()}),
    ]
    .into_iter()
    .map(|set| Case {
        name: format!("token answer with {set}"),
        faults: vec![Fault::new(
            Endpoint::Token,
            FaultKind::Patch {
                set: set.as_object().cloned().unwrap_or_default(),
            },
        )],
        expect: Expect::SuccessTwice,
    })
    .collect()
}

impl Sample {
    /// A fresh emulator for one case; `state` keeps its keys between cases so starting is quick.
    async fn emulator(&self, state: &Path) -> Emulator {
        (self.builder)(Emulator::builder().state_dir(state))
            .start()
            .await
            .expect("the emulator starts")
    }

    async fn run(&self, emu: &Emulator, dir: &Path, cache: &Path) -> (Output, Vec<String>) {
        let Settings { mut env, secrets } = (self.env)(emu);
        env.push(("IDENTITY_CACHE_PATH", cache.display().to_string()));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        (common::run(self.bin, dir, &env, &[]).await, secrets)
    }

    /// Runs every case (a few at a time) and panics with the list of those that did not end as expected.
    pub async fn check_all(&self, cases: Vec<Case>) {
        let state = common::temp_dir(&format!("{}-faults-state", self.name));
        // The first start creates the keys the others reuse.
        drop(self.emulator(&state).await);
        let failures = in_batches(cases, |case| self.check(&state, case)).await;
        let failures: Vec<String> = failures.into_iter().flatten().collect();
        assert!(
            failures.is_empty(),
            "{} case(s) did not end as expected:\n\n{}",
            failures.len(),
            failures.join("\n\n")
        );
    }

    /// Runs one case; `Some(report)` when it did not end as expected.
    async fn check(&self, state: &Path, case: Case) -> Option<String> {
        let emu = self.emulator(state).await;
        let dir = common::temp_dir(&format!("{}-faults", self.name));
        let cache = dir.join("token-cache.json");
        let before_graph = case.faults.iter().all(|f| f.endpoint != Endpoint::Graph);
        for fault in &case.faults {
            emu.inject_fault(fault.clone());
        }
        let (out, secrets) = self.run(&emu, &dir, &cache).await;
        let mut problems = problems_of(&out, &case.expect, &secrets);
        if matches!(case.expect, Expect::Network | Expect::Refused(_)) && before_graph {
            let cached = cached_access_tokens(&cache);
            if cached > 0 {
                problems.push(format!("{cached} access token(s) cached"));
            }
        }
        if problems.is_empty() && matches!(case.expect, Expect::SuccessTwice) {
            let (again, _) = self.run(&emu, &dir, &cache).await;
            problems = problems_of(&again, &Expect::Success, &secrets);
            if !problems.is_empty() {
                return Some(report(&case.name, &again, &problems, "second run"));
            }
        }
        (!problems.is_empty()).then(|| report(&case.name, &out, &problems, "run"))
    }

    /// A discovery document pointing at another server (read after Entra's token or device-code endpoint
    /// answered 404): no request may reach it, in this run or the next clean one (the document must not have
    /// been cached).
    pub async fn check_spoofed_discovery(&self) {
        let state = common::temp_dir(&format!("{}-spoof-state", self.name));
        let emu = self.emulator(&state).await;
        let (origin, contacts) = counting_listener();
        // The sample reads no discovery document while the endpoints of Entra's layout answer: a 404 at the
        // first one it calls sends it to discovery, as a host with another layout would.
        let first = self
            .endpoints
            .iter()
            .copied()
            .find(|e| matches!(e, Endpoint::Token | Endpoint::DeviceCode))
            .unwrap();
        emu.inject_fault(
            Fault::new(
                first,
                FaultKind::Status {
                    status: 404,
                    retry_after: None,
                },
            )
            .times(1),
        );
        emu.inject_fault(Fault::new(
            Endpoint::OpenIdConfiguration,
            FaultKind::SpoofedDiscovery { origin },
        ));
        let dir = common::temp_dir(&format!("{}-spoof", self.name));
        let cache = dir.join("token-cache.json");
        let (out, secrets) = self.run(&emu, &dir, &cache).await;
        let code = out.status.code();
        assert!(
            matches!(code, Some(3 | 5)),
            "a spoofed discovery document must stop the run (exit 3 or 5):\n{}",
            show(&out)
        );
        assert!(!text(&out.stderr).contains("panicked"), "{}", show(&out));
        assert!(has_fix_line(&out), "{}", show(&out));
        common::assert_nothing_secret(&all_output(&out), &as_strs(&secrets));
        assert_eq!(
            contacts.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "the spoofed origin was contacted:\n{}",
            show(&out)
        );

        let (clean, _) = self.run(&emu, &dir, &cache).await;
        assert!(clean.status.success(), "the next clean run:\n{}", show(&clean));
        assert_eq!(
            contacts.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "the next clean run contacted the spoofed origin:\n{}",
            show(&clean)
        );
    }
}

/// Runs `check` over `cases`, [`PARALLEL_CASES`] at a time, keeping the results in order.
async fn in_batches<'a, F, Fut>(cases: Vec<Case>, check: F) -> Vec<Option<String>>
where
    F: Fn(Case) -> Fut,
    Fut: Future<Output = Option<String>> + 'a,
{
    let mut results = Vec::new();
    let mut cases = cases.into_iter().peekable();
    while cases.peek().is_some() {
        let batch: Vec<Fut> = cases.by_ref().take(PARALLEL_CASES).map(&check).collect();
        results.extend(join_all(batch).await);
    }
    results
}

/// Awaits all the futures concurrently (on this task).
async fn join_all<Fut: Future>(futures: Vec<Fut>) -> Vec<Fut::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<Fut::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (fut, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *out = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// A listener standing in for the spoofed origin: `(https://127.0.0.1:PORT, connections accepted)`.
fn counting_listener() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let port = listener.local_addr().expect("has an address").port();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = count.clone();
    // Detached: it lives as long as the test process, which is fine for a test.
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(stream);
        }
    });
    (format!("https://127.0.0.1:{port}"), count)
}

fn problems_of(out: &Output, expect: &Expect, secrets: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    let stderr = text(&out.stderr);
    if stderr.contains("panicked") {
        problems.push("it panicked".to_owned());
    }
    let code = out.status.code();
    match expect {
        Expect::Success | Expect::SuccessTwice => {
            if code != Some(0) {
                problems.push(format!("exit {code:?}, expected 0"));
            }
        }
        Expect::Network => {
            if code != Some(5) {
                problems.push(format!("exit {code:?}, expected 5"));
            }
            if !has_fix_line(out) {
                problems.push("no line starting with '  fix:' on stderr".to_owned());
            }
        }
        Expect::Refused(exit) => {
            if code != Some(*exit) {
                problems.push(format!("exit {code:?}, expected {exit}"));
            }
            if !has_fix_line(out) {
                problems.push("no line starting with '  fix:' on stderr".to_owned());
            }
        }
        Expect::Service(needle) => {
            if code != Some(3) {
                problems.push(format!("exit {code:?}, expected 3"));
            }
            if !stderr.contains(needle) {
                problems.push(format!("{needle} is not on stderr"));
            }
            if !has_fix_line(out) {
                problems.push("no line starting with '  fix:' on stderr".to_owned());
            }
        }
    }
    if let Some(leak) = leak(&all_output(out), secrets) {
        problems.push(leak);
    }
    problems
}

/// A JWT or secret in the output, if any.
fn leak(output: &str, secrets: &[String]) -> Option<String> {
    if secrets
        .iter()
        .any(|s| !s.is_empty() && output.contains(s.as_str()))
    {
        return Some("a secret is in the output".to_owned());
    }
    (output.contains("eyJ0eXAi") || output.contains("eyJhbGci")).then(|| "a JWT is in the output".to_owned())
}

fn has_fix_line(out: &Output) -> bool {
    text(&out.stderr).lines().any(|l| l.starts_with("  fix:"))
}

fn all_output(out: &Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Access tokens in the file cache (`{"records": {key: {"entry": {"kind": "access_token", …}}}}`); 0 when there
/// is no file.
pub fn cached_access_tokens(path: &Path) -> usize {
    let Ok(raw) = std::fs::read(path) else {
        return 0;
    };
    let json: serde_json::Value = serde_json::from_slice(&raw).expect("the cache file is JSON");
    json["records"]
        .as_object()
        .map(|records| {
            records
                .values()
                .filter(|r| r["entry"]["kind"] == "access_token")
                .count()
        })
        .unwrap_or(0)
}

fn report(name: &str, out: &Output, problems: &[String], which: &str) -> String {
    format!("* {name} ({which}): {}\n{}", problems.join("; "), show(out))
}

/// Status and output, indented, for failure messages.
pub fn show(out: &Output) -> String {
    let indent = |s: String| {
        s.lines()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    format!(
        "  status {:?}\n  stdout:\n{}\n  stderr:\n{}",
        out.status.code(),
        indent(text(&out.stdout)),
        indent(text(&out.stderr))
    )
}

/// The faults that only a client's own timeout ends: a hang, and a drip far longer than the timeout.
pub fn too_slow() -> [FaultKind; 2] {
    [FaultKind::Hang, FaultKind::SlowDrip { duration_ms: 20_000 }]
}

/// An HTTP configuration trusting `emu` whose requests give up after half a second (the samples have no such
/// setting: their limit is 30 s).
pub fn impatient_http(emu: &Emulator) -> identity_core::HttpClient {
    let mut config = identity_core::HttpConfig::default().with_extra_ca_pem(emu.ca_pem());
    config.request_timeout = std::time::Duration::from_millis(500);
    identity_core::HttpClient::new(config).expect("an HTTP client")
}

/// Runs `flow`, bounded so that a client without a timeout fails the test instead of hanging it, and checks that
/// it ended with the request timeout error, which has a fix.
pub async fn assert_times_out<T: std::fmt::Debug>(
    what: &str,
    flow: impl Future<Output = Result<T, identity_core::Error>>,
) {
    let result = tokio::time::timeout(std::time::Duration::from_secs(60), flow)
        .await
        .unwrap_or_else(|_| panic!("{what}: the client's request timeout did not end the wait"));
    match result {
        Err(e @ identity_core::Error::Http(identity_core::HttpError::Timeout { .. })) => {
            assert!(e.fix().is_some(), "{what}: no fix for {e}");
        }
        other => panic!("{what}: expected the request timeout error, got {other:?}"),
    }
}

/// A path as a string for the environment.
pub fn path(p: &Path) -> String {
    p.display().to_string()
}

/// The emulator's CA file, for `IDENTITY_EXTRA_CA_CERTS`.
pub fn ca(emu: &Emulator) -> String {
    path(emu.ca_path())
}
