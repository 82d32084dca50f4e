//! The interactive flow end to end in real headless Chromium (WebDriver): the library opens the sign-in URL
//! through its hook into the browser, the test signs in and consents on the emulator's pages like a person,
//! the page's form POST reaches the library's loopback listener, and the code is redeemed with the PKCE verifier.
//! Screenshots of each step go to `target/tmp/interactive-screenshots/`; the timings are printed (run with
//! `--nocapture`), not asserted.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use entra_emulator::{DEMO_PASSWORD, DEMO_USERNAME, Emulator};
use identity_core::{
    Authority, Error, HttpClient, HttpConfig, InteractiveOptions, MemoryCache, PublicClient, Result,
    SignInError, TokenCache, TokenResult, TokenSource,
};
use test_support::webdriver::{Browser, BrowserOptions, spki_pin};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

fn app(emu: &Emulator, name: &str, cache: Arc<dyn TokenCache>) -> PublicClient {
    let registration = emu.app(name).expect("seeded app");
    PublicClient::builder(registration.app_id, Authority::parse(&emu.authority()).unwrap())
        .http_client(HttpClient::new(HttpConfig::default().with_extra_ca_pem(emu.ca_pem())).unwrap())
        .cache(cache)
        .build()
        .unwrap()
}

async fn browser(emu: &Emulator) -> Browser {
    let pin = spki_pin(&format!("{}/_emulator/health", emu.https_url()), emu.ca_pem()).await;
    Browser::start(BrowserOptions {
        trust_spki: Some(pin),
    })
    .await
}

fn screenshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("interactive-screenshots")
        .join(format!("{name}.png"))
}

/// Starts the sign-in; the hook hands the URL over, as a browser launcher would receive it.
async fn sign_in(
    app: &PublicClient,
    options: InteractiveOptions,
) -> (JoinHandle<Result<TokenResult>>, String) {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let options = options.with_url_opener(move |url| tx.send(url.to_string()).map_err(|e| e.to_string()));
    let app = app.clone();
    let task = tokio::spawn(async move { app.acquire_token_interactive(&["User.Read"], options).await });
    let url = rx.recv().await.expect("the library opened the sign-in page");
    (task, url)
}

fn redirect_uri(url: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned())
        .expect("a redirect_uri")
}

/// Account and password on the emulator's page, up to the consent page.
async fn sign_in_until_consent(browser: &Browser, shots: Option<&str>) {
    assert_eq!(browser.text("#app").await, "Contoso interactive sample");
    if let Some(prefix) = shots {
        browser
            .screenshot(&screenshot_path(&format!("{prefix}-1-sign-in")))
            .await;
    }
    browser.type_into("#username", DEMO_USERNAME).await;
    browser.type_into("#password", DEMO_PASSWORD).await;
    browser.click("#signin").await;
    assert!(
        browser
            .text("#scopes")
            .await
            .contains("Sign you in and read your profile")
    );
    if let Some(prefix) = shots {
        browser
            .screenshot(&screenshot_path(&format!("{prefix}-2-consent")))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_in_and_consents_and_the_next_call_is_silent() {
    let emu = Emulator::builder().start().await.unwrap();
    let browser = browser(&emu).await;
    let cache: Arc<dyn TokenCache> = Arc::new(MemoryCache::new());
    let app = app(&emu, "interactive", cache.clone());

    let (task, url) = sign_in(&app, InteractiveOptions::new()).await;
    let redirect = redirect_uri(&url);
    let opened = Instant::now();
    browser.open(&url).await;
    let page_loaded = opened.elapsed();
    sign_in_until_consent(&browser, Some("library")).await;

    let accepted = Instant::now();
    browser.click("#accept").await;
    // The answer page submits itself to the listener.
    browser
        .wait_for_url("the loopback listener", |u| u.starts_with(&redirect))
        .await;
    assert_eq!(browser.text("#title").await, "Signed in");
    let listener_page = accepted.elapsed();
    assert!(browser.text("#message").await.contains("Authentication complete"));
    browser.screenshot(&screenshot_path("library-3-signed-in")).await;

    let token = task.await.unwrap().unwrap();
    let got_token = accepted.elapsed();
    eprintln!(
        "timings: URL -> sign-in page loaded {page_loaded:?}; Accept -> listener page {listener_page:?}; \
         Accept -> token {got_token:?}"
    );
    assert_eq!(token.source, TokenSource::IdentityProvider);
    let account = token.account.clone().expect("the account");
    assert!(account.username.eq_ignore_ascii_case(DEMO_USERNAME));
    assert!(
        token.scopes.iter().any(|s| s.eq_ignore_ascii_case("User.Read")),
        "{:?}",
        token.scopes
    );
    // The listener is closed.
    let port: u16 = redirect.rsplit(':').next().unwrap().parse().unwrap();
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err());

    // A later run (another client on the same cache) finds the account and is silent.
    let later = app_for_cache(&emu, cache);
    let account = later
        .accounts()
        .await
        .unwrap()
        .into_iter()
        .next()
        .expect("cached account");
    let silent = later
        .acquire_token_silent(&account, &["User.Read"])
        .await
        .unwrap()
        .expect("a cached token");
    assert_eq!(silent.source, TokenSource::Cache);
    assert_eq!(silent.access_token.secret(), token.access_token.secret());
}

fn app_for_cache(emu: &Emulator, cache: Arc<dyn TokenCache>) -> PublicClient {
    app(emu, "interactive", cache)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_on_the_consent_page_gives_access_denied() {
    let emu = Emulator::builder().start().await.unwrap();
    let browser = browser(&emu).await;
    let cache: Arc<dyn TokenCache> = Arc::new(MemoryCache::new());
    let app = app(&emu, "interactive", cache.clone());
    let (task, url) = sign_in(&app, InteractiveOptions::new()).await;
    let redirect = redirect_uri(&url);
    browser.open(&url).await;
    sign_in_until_consent(&browser, None).await;
    browser.click("#decline").await;
    browser
        .wait_for_url("the loopback listener", |u| u.starts_with(&redirect))
        .await;
    assert_eq!(browser.text("#title").await, "Sign-in failed");
    assert!(browser.text("#details").await.contains("access_denied"));
    browser.screenshot(&screenshot_path("library-cancelled")).await;

    let error = task.await.unwrap().unwrap_err();
    let Error::Service(e) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(e.error, "access_denied");
    assert_eq!(e.code(), Some(65004));
    assert!(
        e.correlation_id.is_some(),
        "the description's ids are kept: {e:?}"
    );
    assert!(error.fix().unwrap().contains("Accept"), "{:?}", error.fix());
    assert!(cache.entries().await.unwrap().is_empty(), "nothing cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregistered_redirect_uri_shows_aadsts50011_and_the_wait_ends_with_the_fix() {
    let emu = Emulator::builder().start().await.unwrap();
    let browser = browser(&emu).await;
    // The device-code app registers no redirect URI.
    let app = app(&emu, "device-code", Arc::new(MemoryCache::new()));
    let options = InteractiveOptions::new().with_timeout(Duration::from_secs(5));
    let (task, url) = sign_in(&app, options).await;
    let redirect = redirect_uri(&url);
    browser.open(&url).await;
    let shown = browser.text("#error").await;
    assert!(shown.contains("AADSTS50011"), "{shown}");
    assert!(
        shown.contains(&format!("'{redirect}'")),
        "the page quotes the URI sent: {shown}"
    );
    browser.screenshot(&screenshot_path("library-50011")).await;
    // The service never redirects to an unregistered URI: the library only sees the time run out.
    let error = task.await.unwrap().unwrap_err();
    assert!(
        matches!(error, Error::SignIn(SignInError::InteractionTimedOut { .. })),
        "{error:?}"
    );
    let fix = error.fix().unwrap();
    assert!(
        fix.contains("AADSTS50011") && fix.contains("http://localhost"),
        "{fix}"
    );
    assert!(fix.contains("Mobile and desktop applications"), "{fix}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_uri_under_web_fails_redemption_with_aadsts7000218_and_its_fix() {
    let emu = Emulator::builder().start().await.unwrap();
    let browser = browser(&emu).await;
    let cache: Arc<dyn TokenCache> = Arc::new(MemoryCache::new());
    let app = app(&emu, "public-flows-disabled", cache.clone());
    let (task, url) = sign_in(&app, InteractiveOptions::new()).await;
    let redirect = redirect_uri(&url);
    browser.open(&url).await;
    browser.type_into("#username", DEMO_USERNAME).await;
    browser.type_into("#password", DEMO_PASSWORD).await;
    // The seeded app's permissions are consented for the tenant: no consent page.
    browser.click("#signin").await;
    browser
        .wait_for_url("the loopback listener", |u| u.starts_with(&redirect))
        .await;
    let error = task.await.unwrap().unwrap_err();
    let Error::Service(e) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(e.code(), Some(7000218), "{e:?}");
    assert!(
        error.fix().unwrap().contains("Mobile and desktop applications"),
        "{:?}",
        error.fix()
    );
    assert!(cache.entries().await.unwrap().is_empty(), "nothing cached");
}
