//! The interactive binary, run as a user would, with real headless Chromium (WebDriver) as the user's browser:
//! the test reads the sign-in address the sample prints (its `$BROWSER` is `true`, which opens nothing), signs in
//! and consents on the emulator's pages, and the sample prints `/me`; the second run is silent. Also: no browser
//! (the address and the device-code advice), cancel on the page, Ctrl-C.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use entra_emulator::{DEMO_PASSWORD, DEMO_USERNAME, Emulator};
use test_support::webdriver::{Browser, BrowserOptions, spki_pin};

#[path = "../../tests-common/mod.rs"]
mod common;

use common::{graph_result, temp_dir, text};

const BIN: &str = env!("CARGO_BIN_EXE_interactive");

/// A running sample whose stdout is read line by line as it comes.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Running {
        let mut child = common::command(BIN, dir, env, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first stdout line matching `wanted`, waiting for it (the sample prints it before it waits).
    async fn line(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        loop {
            let next = tokio::task::block_in_place(|| self.lines.recv_timeout(Duration::from_secs(60)));
            match next {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "the sample never printed {what}; it printed:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Waits for the exit; stdout is everything printed.
    async fn finish(mut self) -> (Output, String) {
        let out = tokio::task::block_in_place(|| self.child.wait_with_output().unwrap());
        self.seen.extend(self.lines.try_iter());
        // The reader thread ends with the pipe.
        let stdout = self.seen.join("\n");
        (out, stdout)
    }
}

fn is_sign_in_url(line: &str) -> bool {
    line.starts_with("https://") && line.contains("/oauth2/v2.0/authorize?")
}

fn redirect_uri(url: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn screenshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("interactive-screenshots")
        .join(format!("{name}.png"))
}

async fn browser_for(https_url: &str, ca_pem: &str) -> Browser {
    let pin = spki_pin(&format!("{https_url}/_emulator/health"), ca_pem).await;
    Browser::start(BrowserOptions {
        trust_spki: Some(pin),
    })
    .await
}

async fn sign_in_on_the_page(browser: &Browser, accept: bool, shots: Option<&str>) {
    assert_eq!(browser.text("#app").await, "Contoso interactive sample");
    if let Some(prefix) = shots {
        browser
            .screenshot(&screenshot_path(&format!("{prefix}-1-sign-in")))
            .await;
    }
    browser.type_into("#username", DEMO_USERNAME).await;
    browser.type_into("#password", DEMO_PASSWORD).await;
    browser.click("#signin").await;
    if let Some(prefix) = shots {
        browser
            .screenshot(&screenshot_path(&format!("{prefix}-2-consent")))
            .await;
    }
    browser.click(if accept { "#accept" } else { "#decline" }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nothing_configured_chromium_signs_in_at_the_embedded_emulator_and_the_second_run_is_silent() {
    let dir = temp_dir("interactive-test");
    let port = free_port().to_string();
    let env = [("IDENTITY_EMULATOR_PORT", port.as_str()), ("BROWSER", "true")];
    let started = Instant::now();
    let mut run = Running::start(&dir, &env, &[]);
    let first = run
        .line("the emulator notice", |l| l.starts_with("No configuration found"))
        .await;
    let https_url = format!("https://127.0.0.1:{port}");
    assert!(first.contains(&https_url), "{first}");
    let opened = run
        .line("that it opened the browser", |l| {
            l.starts_with("Opened the sign-in page")
        })
        .await;
    assert!(opened.contains("open this address"), "{opened}");
    let url = run.line("the sign-in address", is_sign_in_url).await;
    let printed = started.elapsed();
    assert!(url.starts_with(&https_url), "{url}");
    let redirect = redirect_uri(&url);
    assert!(redirect.starts_with("http://localhost:"), "{redirect}");

    let ca = std::fs::read_to_string(dir.join(".cache/identity-core/emulator/ca.pem")).unwrap();
    let browser = browser_for(&https_url, &ca).await;
    let loading = Instant::now();
    browser.open(&url).await;
    let page = loading.elapsed();
    sign_in_on_the_page(&browser, true, Some("sample")).await;
    let accepted = Instant::now();
    browser
        .wait_for_url("the sample's listener", |u| u.starts_with(&redirect))
        .await;
    assert_eq!(browser.text("#title").await, "Signed in");
    let listener_page = accepted.elapsed();
    browser.screenshot(&screenshot_path("sample-3-signed-in")).await;

    let (out, stdout) = run.finish().await;
    let done = accepted.elapsed();
    eprintln!(
        "timings (sample): start -> address printed {printed:?}; URL -> sign-in page {page:?}; Accept -> \
         listener page {listener_page:?}; Accept -> /me printed and exit {done:?}"
    );
    assert!(out.status.success(), "{stdout}\nstderr: {}", text(&out.stderr));
    assert!(stdout.contains("Could not find a cached token"), "{stdout}");
    assert!(
        stdout.contains(&format!("Signed in as {DEMO_USERNAME}")),
        "{stdout}"
    );
    assert_eq!(graph_result(&stdout)["userPrincipalName"], DEMO_USERNAME);

    // The second run finds the account in the cache: no browser, no address.
    let out = common::run(BIN, &dir, &env, &[]).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\nstderr: {}", text(&out.stderr));
    assert!(stdout.contains("Found a cached token"), "{stdout}");
    assert!(!stdout.lines().any(is_sign_in_url), "{stdout}");
    assert_eq!(graph_result(&stdout)["userPrincipalName"], DEMO_USERNAME);
    std::fs::remove_dir_all(&dir).ok();
}

/// An external emulator and the environment that points the sample at it, as a tenant would be configured.
async fn external() -> (Emulator, Vec<(String, String)>) {
    let emu = Emulator::builder().start().await.unwrap();
    let app = emu.app("interactive").unwrap();
    let env = vec![
        ("AZURE_AUTHORITY_HOST".to_string(), emu.https_url()),
        ("AZURE_TENANT_ID".to_string(), emu.tenant_id()),
        ("AZURE_CLIENT_ID".to_string(), app.app_id.clone()),
        ("GRAPH_ENDPOINT".to_string(), format!("{}/me", emu.graph_base())),
        (
            "IDENTITY_EXTRA_CA_CERTS".to_string(),
            emu.ca_path().display().to_string(),
        ),
        ("IDENTITY_CACHE".to_string(), "memory".to_string()),
        // No browser can be started.
        ("BROWSER".to_string(), "/nonexistent/browser".to_string()),
    ];
    (emu, env)
}

fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_browser_the_address_is_printed_and_cancelling_on_the_page_exits_3_with_the_fix() {
    let (emu, env) = external().await;
    let dir = temp_dir("interactive-test");
    let mut run = Running::start(&dir, &pairs(&env), &[]);
    let advice = run
        .line("that no browser opened", |l| {
            l.starts_with("Could not open a browser")
        })
        .await;
    assert!(advice.contains("cargo run -p device-code"), "{advice}");
    let url = run.line("the sign-in address", is_sign_in_url).await;
    let redirect = redirect_uri(&url);

    let browser = browser_for(&emu.https_url(), emu.ca_pem()).await;
    browser.open(&url).await;
    sign_in_on_the_page(&browser, false, None).await;
    browser
        .wait_for_url("the sample's listener", |u| u.starts_with(&redirect))
        .await;
    assert_eq!(browser.text("#title").await, "Sign-in failed");

    let (out, stdout) = run.finish().await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stdout}\nstderr: {stderr}");
    assert!(stderr.contains("access_denied"), "{stderr}");
    assert!(stderr.contains("AADSTS65004"), "{stderr}");
    assert!(stderr.contains("correlation id:"), "{stderr}");
    assert!(stderr.contains("fix:") && stderr.contains("Accept"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_while_waiting_exits_130_and_closes_the_listener() {
    let (_emu, env) = external().await;
    let dir = temp_dir("interactive-test");
    let mut run = Running::start(&dir, &pairs(&env), &[]);
    let url = run.line("the sign-in address", is_sign_in_url).await;
    let redirect = redirect_uri(&url);
    let port: u16 = redirect.rsplit(':').next().unwrap().parse().unwrap();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        "listening while waiting"
    );
    run.line("the waiting notice", |l| l.starts_with("Waiting for the sign-in"))
        .await;
    let status = std::process::Command::new("kill")
        .args(["-INT", &run.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let (out, stdout) = run.finish().await;
    assert_eq!(
        out.status.code(),
        Some(130),
        "{stdout}\nstderr: {}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("cancelled"), "{}", text(&out.stderr));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens afterwards"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeout_flag_bounds_the_wait() {
    let (_emu, env) = external().await;
    let dir = temp_dir("interactive-test");
    let out = common::run(BIN, &dir, &pairs(&env), &["--timeout", "1"]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "stderr: {stderr}");
    assert!(
        stderr.contains("no answer from the sign-in page within 1 s"),
        "{stderr}"
    );
    assert!(
        stderr.contains("http://localhost"),
        "the fix names the redirect URI: {stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
