//! `token-cache list | clear` on a real cache file.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

use std::process::Command;

use identity_core::{
    AccessTokenKey, CacheEntry, CacheKey, CachedAccessToken, FileCache, SecretToken, TokenCache,
};

const BIN: &str = env!("CARGO_BIN_EXE_token-cache");

fn run(path: &std::path::Path, command: &str) -> (bool, String) {
    let out = Command::new(BIN)
        .env_clear()
        .env("IDENTITY_CACHE_PATH", path)
        .arg(command)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test]
async fn lists_records_without_values_and_clears_them() {
    let path = std::env::temp_dir()
        .join(format!("token-cache-tool-{}", std::process::id()))
        .join("cache.json");
    let cache = FileCache::new(&path);
    let now = identity_core::now_secs();
    let key = CacheKey::AccessToken(AccessTokenKey::new(
        None,
        "login.example",
        "app-1",
        "tenant-1",
        &["https://graph.microsoft.com/.default"],
    ));
    let token = CachedAccessToken::new(
        SecretToken::new("eyJ-the-token-value"),
        "Bearer".into(),
        vec![],
        now,
        3599,
        None,
        None,
    );
    cache
        .put(&key, &CacheEntry::AccessToken(token.clone()))
        .await
        .unwrap();

    let (ok, listing) = run(&path, "list");
    assert!(ok, "{listing}");
    assert!(listing.contains("1 record(s)"), "{listing}");
    assert!(listing.contains("access token   app app-1  tenant tenant-1  scopes [https://graph.microsoft.com/.default]  expires in 59 min"), "{listing}");
    assert!(!listing.contains("eyJ-the-token-value"), "{listing}");

    let (ok, cleared) = run(&path, "clear");
    assert!(ok && cleared.contains("Cleared 1 record(s)"), "{cleared}");
    assert!(cache.entries().await.unwrap().is_empty());
    let (_, listing) = run(&path, "list");
    assert!(listing.contains("0 record(s)"), "{listing}");

    // IDENTITY_CACHE_PATH=~/... (as in .env or a systemd unit) is the same file as for the samples.
    cache.put(&key, &CacheEntry::AccessToken(token)).await.unwrap();
    let home = path.parent().unwrap();
    let out = Command::new(BIN)
        .env_clear()
        .env("HOME", home)
        .env("IDENTITY_CACHE_PATH", "~/cache.json")
        .arg("list")
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{listing}");
    assert!(listing.contains("1 record(s)"), "{listing}");
}
