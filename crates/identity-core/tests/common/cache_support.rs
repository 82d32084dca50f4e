//! What the cache tests share: a capture of everything the library logs, and a numbered cache key. Included
//! with `#[path]` by the file, encrypted-file and hostile-path tests (not part of `common`, which is the HTTP
//! stand-in, so those tests do not compile a server they do not use).
#![allow(dead_code, reason = "each test file uses part of the support")]
#![allow(clippy::unwrap_used, reason = "test support stops at the first failure")]

use std::io::Write;
use std::sync::{Mutex, Once};

use identity_core::{AccessTokenKey, CacheKey};

/// Everything the library logs, from every thread (the store works on blocking threads).
static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends the library's logs (debug and up, no colour) to the capture; once per test binary.
pub fn capture_logs() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(|| Capture)
            .init();
    });
}

/// Everything captured so far.
pub fn all_logs() -> String {
    String::from_utf8_lossy(&LOG.lock().unwrap()).into_owned()
}

/// Captured lines at `level` that mention `text`.
pub fn log_lines(level: &str, text: &str) -> Vec<String> {
    all_logs()
        .lines()
        .filter(|l| l.contains(level) && l.contains(text))
        .map(str::to_string)
        .collect()
}

/// The access-token key of app `client-<n>`.
pub fn key(n: usize) -> CacheKey {
    CacheKey::AccessToken(AccessTokenKey::new(
        None,
        "login.example",
        &format!("client-{n}"),
        "tenant",
        &["s/.default"],
    ))
}
