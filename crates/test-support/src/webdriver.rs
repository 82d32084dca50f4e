//! Headless Chromium driven over the W3C WebDriver protocol (`chromedriver`, plain reqwest + JSON), for tests
//! that go through sign-in pages like a person: type, click, read, take screenshots.
//!
//! Trust: the emulator serves its pages over HTTPS, as the real service does. Chromium has no per-profile CA
//! setting (on Linux it reads the user's NSS database, which needs `certutil` to edit), so
//! [`BrowserOptions::trust_spki`] pins the server's key with `--ignore-certificate-errors-spki-list=<SHA-256 of
//! its SubjectPublicKeyInfo>` ([`spki_pin`]); honoured only together with `--user-data-dir`, and unlike
//! `--ignore-certificate-errors` it accepts that one key only.
//!
//! Chromium and chromedriver come from `$CHROMIUM` / `$CHROMEDRIVER` or the PATH; when missing and running as
//! root, they are installed (`apt-get install -y chromium chromium-driver`), else the test fails saying what to
//! install.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test plumbing stops at the first failure"
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::Digest as _;

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long element lookups and page changes are waited for before the test fails.
const WAIT: Duration = Duration::from_secs(15);

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| PathBuf::from(dir).join(name))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn find_tools() -> Option<(PathBuf, PathBuf)> {
    let browser = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| which("chromium"))?;
    let driver = std::env::var_os("CHROMEDRIVER")
        .map(PathBuf::from)
        .or_else(|| which("chromedriver"))?;
    Some((browser, driver))
}

/// Chromium and chromedriver, installed with apt-get when missing and running as root.
pub fn chromium_tools() -> (PathBuf, PathBuf) {
    static TOOLS: OnceLock<Result<(PathBuf, PathBuf), String>> = OnceLock::new();
    let found = TOOLS.get_or_init(|| {
        if let Some(t) = find_tools() {
            return Ok(t);
        }
        if !is_root() {
            return Err("not running as root, so the test cannot install them".to_owned());
        }
        let apt = |args: &[&str]| {
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let install = ["install", "-y", "-qq", "chromium", "chromium-driver"];
        let installed = apt(&install) || (apt(&["update", "-qq"]) && apt(&install));
        if !installed {
            return Err("apt-get install -y chromium chromium-driver failed".to_owned());
        }
        find_tools()
            .ok_or_else(|| "installed, but chromium/chromedriver are still not on the PATH".to_owned())
    });
    match found {
        Ok(t) => t.clone(),
        Err(e) => panic!(
            "The browser test needs Chromium and its WebDriver ({e}).\nFix: apt-get install -y chromium \
             chromium-driver (Debian), or set CHROMIUM and CHROMEDRIVER to their paths."
        ),
    }
}

/// base64 SHA-256 of the SubjectPublicKeyInfo of the certificate served at `https_url`, which `ca_pem` signed.
pub async fn spki_pin(https_url: &str, ca_pem: &str) -> String {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap();
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .tls_info(true)
        .no_proxy()
        .build()
        .unwrap();
    let resp = http.get(https_url).send().await.unwrap();
    let info = resp
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .expect("TLS info");
    let der = info.peer_certificate().expect("the server certificate").to_vec();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let spki = cert.tbs_certificate.subject_pki.raw;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(spki))
}

/// How to start the browser.
#[derive(Debug, Default, Clone)]
pub struct BrowserOptions {
    /// A server key to trust ([`spki_pin`]).
    pub trust_spki: Option<String>,
}

/// A running chromedriver with one headless Chromium session; both end on drop.
#[derive(Debug)]
pub struct Browser {
    child: Child,
    http: reqwest::Client,
    session: String,
    profile: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the WebDriver session closes the browser; killing chromedriver alone would orphan Chromium.
        if let Some((host, path)) = self
            .session
            .strip_prefix("http://")
            .and_then(|rest| rest.split_once('/'))
            && let Ok(mut conn) = std::net::TcpStream::connect(host)
        {
            use std::io::{Read, Write};
            let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                conn,
                "DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
            );
            let _ = conn.read_to_end(&mut Vec::new());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session (a fresh profile, no proxy, 1000×800).
    pub async fn start(options: BrowserOptions) -> Browser {
        let (browser, driver) = chromium_tools();
        let port = free_port();
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let profile = std::env::temp_dir().join(format!("test-chromium-{}", uuid::Uuid::new_v4()));
        let mut b = Browser {
            child,
            http,
            session: String::new(),
            profile,
        };
        let base = format!("http://127.0.0.1:{port}");
        let mut ready = false;
        for _ in 0..150 {
            if let Ok(resp) = b.http.get(format!("{base}/status")).send().await
                && resp
                    .json::<Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == true)
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ready, "chromedriver did not come up on port {port}");
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--no-proxy-server".to_owned(),
            "--window-size=1000,800".to_owned(),
            format!("--user-data-dir={}", b.profile.display()),
        ];
        if let Some(pin) = &options.trust_spki {
            args.push(format!("--ignore-certificate-errors-spki-list={pin}"));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": browser.display().to_string(), "args": args},
        }}});
        let resp: Value = b
            .http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        b.session = format!(
            "{base}/session/{}",
            resp["value"]["sessionId"]
                .as_str()
                .unwrap_or_else(|| panic!("no WebDriver session: {resp}"))
        );
        // Element lookups wait for the next page to load.
        b.call("POST", "/timeouts", json!({"implicit": WAIT.as_millis() as u64}))
            .await;
        b
    }

    async fn try_call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.session);
        let req = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url).json(&body),
        };
        req.send().await.unwrap().json().await.unwrap()
    }

    /// A WebDriver command on the session; fails the test on a WebDriver error.
    pub async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let resp = self.try_call(method, path, body).await;
        assert!(
            resp["value"].get("error").is_none(),
            "WebDriver {method} {path}: {resp}"
        );
        resp["value"].clone()
    }

    /// Navigates to `url` (returns once it has loaded).
    pub async fn open(&self, url: &str) {
        self.call("POST", "/url", json!({"url": url})).await;
    }

    /// The element matching `css`, waiting for it to appear.
    pub async fn find(&self, css: &str) -> String {
        let v = self
            .call("POST", "/element", json!({"using": "css selector", "value": css}))
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("find {css}: {v}"))
            .to_owned()
    }

    /// Types `text` into the field matching `css`.
    pub async fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        self.call("POST", &format!("/element/{el}/value"), json!({"text": text}))
            .await;
    }

    /// Clicks a button that submits its form, and waits until the next page has replaced this one: lookups
    /// made too early would find this page's elements and go stale.
    pub async fn click(&self, css: &str) {
        let page = self.find("html").await;
        let el = self.find(css).await;
        self.call("POST", &format!("/element/{el}/click"), json!({}))
            .await;
        let polls = WAIT.as_millis() / 25;
        for _ in 0..polls {
            let resp = self
                .try_call("GET", &format!("/element/{page}/name"), Value::Null)
                .await;
            let message = resp["value"]["message"].as_str().unwrap_or_default();
            match resp["value"].get("error").and_then(Value::as_str) {
                Some("stale element reference") => return,
                // Chromium's answer when the old document is being torn down mid-navigation: it is replaced.
                Some("unknown error") if message.contains("does not belong to the document") => return,
                // The lookup was cut short by the navigation the click started: ask again once it settles.
                Some("aborted by navigation") => tokio::time::sleep(Duration::from_millis(25)).await,
                Some(other) => panic!("WebDriver while waiting for the next page: {other}: {resp}"),
                None => tokio::time::sleep(Duration::from_millis(25)).await,
            }
        }
        panic!("clicking {css} did not load another page within {WAIT:?}");
    }

    /// The visible text of the element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        let el = self.find(css).await;
        self.call("GET", &format!("/element/{el}/text"), Value::Null)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The current page's URL.
    pub async fn url(&self) -> String {
        let v = self.call("GET", "/url", Value::Null).await;
        v.as_str().unwrap_or_else(|| panic!("url: {v}")).to_owned()
    }

    /// Waits until the current URL satisfies `done` (an auto-submitting form, a redirect), and returns it.
    pub async fn wait_for_url(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let polls = WAIT.as_millis() / 25;
        let mut url = String::new();
        for _ in 0..polls {
            let resp = self.try_call("GET", "/url", Value::Null).await;
            match (&resp["value"], resp["value"].get("error").and_then(Value::as_str)) {
                (Value::String(now), _) => url.clone_from(now),
                // An auto-submitting form or a redirect is under way: ask again once it settles.
                (_, Some("aborted by navigation")) => {}
                _ => panic!("WebDriver GET /url while waiting for {what}: {resp}"),
            }
            if done(&url) {
                return url;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the browser did not reach {what} within {WAIT:?}; it is at {url}");
    }

    /// Saves a PNG screenshot of the page.
    pub async fn screenshot(&self, path: &Path) {
        let v = self.call("GET", "/screenshot", Value::Null).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64 PNG"))
            .unwrap();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }
}
