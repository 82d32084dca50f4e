//! A real headless browser on the device-code sign-in page: Debian's `chromium` driven by `chromedriver`
//! over the W3C WebDriver HTTP protocol (plain reqwest + JSON). It types the code, the user name and the
//! password and clicks like a person; the polling client then gets tokens (or `authorization_declined`).
//!
//! Trust: the page is served over HTTPS by the emulator, as the real verification page is. Chromium has no
//! per-profile CA setting (on Linux it reads the user's NSS database, which needs `certutil` to edit), so
//! the test pins the emulator's server key with `--ignore-certificate-errors-spki-list=<SHA-256 of its
//! SubjectPublicKeyInfo>` — honoured only together with `--user-data-dir`, and unlike
//! `--ignore-certificate-errors` it accepts that one key only: any other certificate still fails.
//!
//! Chromium and chromedriver come from `$CHROMIUM` / `$CHROMEDRIVER` or the PATH; when missing and running
//! as root, the test installs them (`apt-get install -y chromium chromium-driver`), else it fails saying
//! what to install.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use common::*;
use entra_emulator::{DEMO_PASSWORD, DEMO_USERNAME, DeviceCodeStatus, Emulator};
use serde_json::{Value, json};

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

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
fn tools() -> (PathBuf, PathBuf) {
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

/// base64 SHA-256 of the SubjectPublicKeyInfo of the certificate the emulator serves.
async fn server_spki_pin(emu: &Emulator) -> String {
    let ca = reqwest::Certificate::from_pem(emu.ca_pem().as_bytes()).unwrap();
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .tls_info(true)
        .no_proxy()
        .build()
        .unwrap();
    let resp = http
        .get(format!("{}/_emulator/health", emu.https_url()))
        .send()
        .await
        .unwrap();
    let info = resp
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .expect("TLS info");
    let der = info.peer_certificate().expect("the server certificate").to_vec();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let spki = cert.tbs_certificate.subject_pki.raw;
    base64::engine::general_purpose::STANDARD.encode(sha256(spki))
}

/// A running chromedriver with one browser session; both end on drop.
struct Driver {
    child: Child,
    http: reqwest::Client,
    session: String,
    profile: PathBuf,
}

impl Drop for Driver {
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

impl Driver {
    async fn start(emu: &Emulator) -> Driver {
        let (browser, driver) = tools();
        let pin = server_spki_pin(emu).await;
        let port = free_port();
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let profile = std::env::temp_dir().join(format!("emulator-chromium-{}", uuid::Uuid::new_v4()));
        let mut d = Driver {
            child,
            http,
            session: String::new(),
            profile,
        };
        let base = format!("http://127.0.0.1:{port}");
        let mut ready = false;
        for _ in 0..100 {
            if let Ok(resp) = d.http.get(format!("{base}/status")).send().await
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
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--no-proxy-server".to_owned(),
            format!("--user-data-dir={}", d.profile.display()),
            format!("--ignore-certificate-errors-spki-list={pin}"),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": browser.display().to_string(), "args": args},
        }}});
        let resp: Value = d
            .http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        d.session = format!(
            "{base}/session/{}",
            resp["value"]["sessionId"]
                .as_str()
                .unwrap_or_else(|| panic!("no WebDriver session: {resp}"))
        );
        // Element lookups wait for the next page to load.
        d.call("POST", "/timeouts", json!({"implicit": 10_000})).await;
        d
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.session);
        let req = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url).json(&body),
        };
        let resp: Value = req.send().await.unwrap().json().await.unwrap();
        assert!(
            resp["value"].get("error").is_none(),
            "WebDriver {method} {path}: {resp}"
        );
        resp["value"].clone()
    }

    async fn open(&self, url: &str) {
        self.call("POST", "/url", json!({"url": url})).await;
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .call("POST", "/element", json!({"using": "css selector", "value": css}))
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("find {css}: {v}"))
            .to_owned()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        self.call("POST", &format!("/element/{el}/value"), json!({"text": text}))
            .await;
    }

    /// Clicks a button that submits its form, and waits until the next page has replaced this one: lookups
    /// made too early would find this page's elements (`main` is on every page) and go stale.
    async fn click(&self, css: &str) {
        let page = self.find("html").await;
        let el = self.find(css).await;
        self.call("POST", &format!("/element/{el}/click"), json!({}))
            .await;
        for _ in 0..400 {
            let url = format!("{}/element/{page}/name", self.session);
            let resp: Value = self.http.get(url).send().await.unwrap().json().await.unwrap();
            match resp["value"].get("error").and_then(Value::as_str) {
                Some("stale element reference") => return,
                Some(other) => panic!("WebDriver while waiting for the next page: {other}: {resp}"),
                None => tokio::time::sleep(std::time::Duration::from_millis(25)).await,
            }
        }
        panic!("clicking {css} did not load another page within 10 s");
    }

    async fn text(&self, css: &str) -> String {
        let el = self.find(css).await;
        self.call("GET", &format!("/element/{el}/text"), Value::Null)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn url(&self) -> String {
        let v = self.call("GET", "/url", Value::Null).await;
        v.as_str().unwrap_or_else(|| panic!("url: {v}")).to_owned()
    }
}

/// Goes through the page like a person up to the consent page.
async fn sign_in_until_consent(driver: &Driver, emu: &Emulator, user_code: &str) {
    driver.open(&emu.verification_uri()).await;
    assert_eq!(
        driver.url().await,
        emu.verification_uri(),
        "the HTTPS page loaded"
    );
    driver.type_into("#otc", user_code).await;
    driver.click("#next").await;
    assert_eq!(driver.text("#app").await, "Contoso device code sample");
    driver.type_into("#username", DEMO_USERNAME).await;
    driver.type_into("#password", "not the password").await;
    driver.click("#signin").await;
    assert!(
        driver
            .text("#error")
            .await
            .contains("Your account or password is incorrect")
    );
    // The user name is kept; the password field is empty again.
    driver.type_into("#password", DEMO_PASSWORD).await;
    driver.click("#signin").await;
    assert_eq!(driver.text("#user").await, DEMO_USERNAME);
    assert!(
        driver
            .text("#scopes")
            .await
            .contains("Sign you in and read your profile")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_in_on_the_device_page_and_the_poller_gets_tokens() {
    let emu = start().await;
    let driver = Driver::start(&emu).await;
    let (device_code, user_code) = new_device_code(&emu, &client(&emu)).await;
    sign_in_until_consent(&driver, &emu, &user_code).await;
    driver.click("#accept").await;
    assert!(
        driver
            .text("main")
            .await
            .contains("You may now close this window.")
    );
    assert_eq!(emu.device_codes()[0].status, DeviceCodeStatus::Approved);

    let cid = app_id(&emu, "device-code");
    let resp = poll(&emu, &client(&emu), &emu.tenant_id(), &cid, &device_code).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_user_tokens(&body, &emu, &cid, &user(&emu, DEMO_USERNAME));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_declines_and_the_poller_is_told() {
    let emu = start().await;
    let driver = Driver::start(&emu).await;
    let (device_code, user_code) = new_device_code(&emu, &client(&emu)).await;
    sign_in_until_consent(&driver, &emu, &user_code).await;
    driver.click("#decline").await;
    assert!(driver.text("#done").await.contains("declined"));
    let cid = app_id(&emu, "device-code");
    let resp = poll(&emu, &client(&emu), &emu.tenant_id(), &cid, &device_code).await;
    assert_aad_error(resp, 400, "authorization_declined", 65004).await;
}

/// A loopback "app" listening on 127.0.0.1: answers every request with a small page and hands over the body of
/// each POST (the form_post answer).
async fn loopback_app() -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Headers, then the body by Content-Length.
                let (head_end, length) = loop {
                    let n = conn.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (end + 4, length);
                    }
                };
                while buf.len() < head_end + length {
                    let n = conn.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                if buf.starts_with(b"POST ") {
                    let _ = tx.send(String::from_utf8_lossy(&buf[head_end..]).into_owned());
                }
                let page = "<html><body><h1 id=\"app-done\">Authentication complete.</h1></body></html>";
                let _ = conn
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: \
                             close\r\n\r\n{page}",
                            page.len()
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    (port, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_in_on_the_authorize_page_and_form_post_reaches_the_loopback_app() {
    use sha2::Digest as _;
    let emu = start().await;
    let driver = Driver::start(&emu).await;
    let (port, mut posts) = loopback_app().await;
    let redirect = format!("http://localhost:{port}");
    let verifier = "Chromium-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier));
    let cid = app_id(&emu, "interactive");
    let mut url = url::Url::parse(&emu.authorize_url()).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &cid)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", &redirect)
        .append_pair("scope", USER_SCOPES)
        .append_pair("response_mode", "form_post")
        .append_pair("state", "chromium-state")
        .append_pair("nonce", "chromium-nonce")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    // Timings are printed for the record (`--nocapture`), never asserted.
    let started = std::time::Instant::now();
    driver.open(url.as_str()).await;
    assert_eq!(driver.text("#app").await, "Contoso interactive sample");
    let page_shown = started.elapsed();
    driver.type_into("#username", DEMO_USERNAME).await;
    driver.type_into("#password", DEMO_PASSWORD).await;
    driver.click("#signin").await;
    assert!(
        driver
            .text("#scopes")
            .await
            .contains("Sign you in and read your profile")
    );
    let accepted = std::time::Instant::now();
    driver.click("#accept").await;
    // The form_post page submits itself to the app on localhost.
    let body = tokio::time::timeout(Duration::from_secs(30), posts.recv())
        .await
        .expect("the browser posts the answer to the loopback app")
        .expect("a body");
    let answer_posted = accepted.elapsed();
    let fields: std::collections::HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(fields["state"], "chromium-state");
    assert_eq!(driver.text("#app-done").await, "Authentication complete.");
    assert_eq!(driver.url().await, format!("{redirect}/"));

    let redeeming = std::time::Instant::now();
    let resp = client(&emu)
        .post(token_url(&emu))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", cid.as_str()),
            ("code", fields["code"].as_str()),
            ("redirect_uri", redirect.as_str()),
            ("code_verifier", verifier),
            ("scope", USER_SCOPES),
            ("client_info", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    eprintln!(
        "timings: authorize URL -> sign-in page {page_shown:?}; Accept -> answer at the loopback app \
         {answer_posted:?}; code redemption {:?}",
        redeeming.elapsed()
    );
    let (_, id) = assert_user_tokens(&body, &emu, &cid, &user(&emu, DEMO_USERNAME));
    assert_eq!(id["nonce"], "chromium-nonce");
}
