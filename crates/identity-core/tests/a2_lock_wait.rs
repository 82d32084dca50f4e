//! A client waiting on another process's fetch lock (a shared file cache) says, after a second, what it waits
//! for, instead of waiting in silence for up to the lock's timeout.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::loopback_http;
use entra_emulator::{Emulator, Endpoint};
use identity_core::{
    Authority, CacheKey, ClientSecret, ConfidentialClient, FileCache, TokenCache, TokenSource,
};

const NOTICE: &str = "waiting for another process that is fetching the same token";

/// Log lines, shared with the test.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// One thread: the log subscriber set for this test sees everything the client logs.
#[tokio::test(flavor = "current_thread")]
async fn waiting_on_another_process_lock_is_announced_then_the_token_is_fetched() {
    let emu = Emulator::builder().start().await.unwrap();
    let dir = std::env::temp_dir().join(format!("a2-lock-wait-{}", uuid_like()));
    let path = dir.join("cache.json");
    // "Another process": a second handle on the same file holds the fetch lock.
    let other_process = FileCache::new(&path);
    let held = other_process
        .lock(&CacheKey::Metadata { url: "any".into() })
        .await
        .unwrap()
        .expect("a file cache has a cross-process lock");

    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);

    let registration = emu.app("daemon").unwrap();
    let app = ConfidentialClient::builder(
        registration.app_id.clone(),
        Authority::parse(&emu.authority()).unwrap(),
    )
    .client_secret(ClientSecret::new(registration.secrets[0].value.clone()))
    .http_client(loopback_http(Some(emu.ca_pem())))
    .cache(Arc::new(FileCache::new(&path)))
    .build()
    .unwrap();

    let release_when_announced = async {
        tokio::time::timeout(Duration::from_secs(30), async {
            while !logs.text().contains(NOTICE) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the wait is announced");
        drop(held);
    };
    let (token, ()) = tokio::join!(
        app.acquire_token_for_client(&["https://graph.microsoft.com/.default"]),
        release_when_announced
    );
    assert_eq!(token.unwrap().source, TokenSource::IdentityProvider);
    assert_eq!(emu.request_counts().get(Endpoint::Token), 1);
    let text = logs.text();
    assert_eq!(text.matches(NOTICE).count(), 1, "said once: {text}");
    assert!(text.contains("cache.json"), "names the store: {text}");
    std::fs::remove_dir_all(dir).unwrap();
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}
