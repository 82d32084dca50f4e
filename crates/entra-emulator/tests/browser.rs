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

use std::time::Duration;

use base64::Engine as _;
use common::*;
use entra_emulator::{DEMO_PASSWORD, DEMO_USERNAME, DeviceCodeStatus, Emulator};
use serde_json::Value;
use test_support::webdriver::{Browser, BrowserOptions, spki_pin};

/// Headless Chromium trusting the emulator's server key (and only it).
async fn browser_for(emu: &Emulator) -> Browser {
    let pin = spki_pin(&format!("{}/_emulator/health", emu.https_url()), emu.ca_pem()).await;
    Browser::start(BrowserOptions {
        trust_spki: Some(pin),
    })
    .await
}

/// Goes through the page like a person up to the consent page.
async fn sign_in_until_consent(driver: &Browser, emu: &Emulator, user_code: &str) {
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
    let driver = browser_for(&emu).await;
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
    let driver = browser_for(&emu).await;
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
    let driver = browser_for(&emu).await;
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
