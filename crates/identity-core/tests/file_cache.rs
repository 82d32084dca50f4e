//! The file store on its own: permissions, corruption, concurrent writers, and a writer killed mid-write.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use identity_core::{CacheEntry, CachedAccessToken, FileCache, SecretToken, TokenCache};

#[path = "common/cache_support.rs"]
mod cache_support;

use cache_support::key;

fn temp_file() -> PathBuf {
    std::env::temp_dir()
        .join(format!("idcore-file-cache-{}", uuid::Uuid::new_v4()))
        .join("cache.json")
}

fn entry(secret: &str) -> CacheEntry {
    let now = identity_core::now_secs();
    // A long token, so that a write takes long enough for a kill to land in the middle of it.
    let token = format!("{secret}-{}", "x".repeat(4000));
    CacheEntry::AccessToken(CachedAccessToken::new(
        SecretToken::new(token),
        "Bearer".into(),
        vec![],
        now,
        3600,
        None,
        None,
    ))
}

fn secret_of(e: Option<CacheEntry>) -> Option<String> {
    match e {
        Some(CacheEntry::AccessToken(t)) => Some(
            t.access_token
                .secret()
                .split('-')
                .next()
                .unwrap_or("")
                .to_string(),
        ),
        _ => None,
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn round_trip_with_owner_only_file_and_directory() {
    let path = temp_file();
    let cache = FileCache::new(&path);
    assert!(
        cache.get(&key(1)).await.unwrap().is_none(),
        "a missing file is an empty cache"
    );
    cache.put(&key(1), &entry("one")).await.unwrap();
    cache.put(&key(2), &entry("two")).await.unwrap();
    assert_eq!(
        secret_of(cache.get(&key(1)).await.unwrap()).as_deref(),
        Some("one")
    );
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    assert_eq!(cache.entries().await.unwrap().len(), 2);
    cache.remove(&key(1)).await.unwrap();
    assert!(cache.get(&key(1)).await.unwrap().is_none());
    cache.clear().await.unwrap();
    assert!(cache.entries().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_file_readable_by_others_is_restricted_to_its_owner() {
    let path = temp_file();
    let cache = FileCache::new(&path);
    cache.put(&key(1), &entry("one")).await.unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(
        secret_of(cache.get(&key(1)).await.unwrap()).as_deref(),
        Some("one")
    );
    assert_eq!(mode(&path), 0o600, "fixed on read");
}

#[tokio::test]
async fn corrupt_truncated_or_newer_files_start_empty_and_are_replaced() {
    let path = temp_file();
    let cache = FileCache::new(&path);
    cache.put(&key(1), &entry("one")).await.unwrap();
    let whole = std::fs::read(&path).unwrap();
    for broken in [
        whole[..whole.len() / 2].to_vec(),
        b"\x00\x01garbage".to_vec(),
        br#"{"version":99,"records":{}}"#.to_vec(),
    ] {
        std::fs::write(&path, &broken).unwrap();
        assert!(
            cache.get(&key(1)).await.unwrap().is_none(),
            "treated as empty, no error"
        );
        cache.put(&key(2), &entry("two")).await.unwrap();
        assert_eq!(
            secret_of(cache.get(&key(2)).await.unwrap()).as_deref(),
            Some("two"),
            "usable again"
        );
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(json["version"], 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_lose_nothing() {
    let path = temp_file();
    let writers: Vec<_> = (0..32)
        .map(|n| {
            // Separate instances, like separate processes.
            let cache = Arc::new(FileCache::new(&path));
            tokio::spawn(async move { cache.put(&key(n), &entry(&format!("v{n}"))).await })
        })
        .collect();
    for w in writers {
        w.await.unwrap().unwrap();
    }
    let cache = FileCache::new(&path);
    assert_eq!(cache.entries().await.unwrap().len(), 32);
    for n in 0..32 {
        assert_eq!(
            secret_of(cache.get(&key(n)).await.unwrap()),
            Some(format!("v{n}"))
        );
    }
}

#[tokio::test]
async fn expired_access_tokens_are_pruned_on_write() {
    let path = temp_file();
    let cache = FileCache::new(&path);
    let old = CacheEntry::AccessToken(CachedAccessToken::new(
        SecretToken::new("old"),
        "Bearer".into(),
        vec![],
        1000,
        10,
        None,
        None,
    ));
    cache.put(&key(1), &old).await.unwrap();
    cache.put(&key(2), &entry("two")).await.unwrap();
    assert!(cache.get(&key(1)).await.unwrap().is_none());
    assert_eq!(cache.entries().await.unwrap().len(), 1);
}

const CHILD_ENV: &str = "IDCORE_FILE_CACHE_CHILD";

/// Not a test on its own: the child process of the kill test. It writes until it is killed.
#[tokio::test]
#[ignore = "the child process of the SIGKILL test, run by it"]
async fn child_writer() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let cache = FileCache::new(PathBuf::from(path));
    for n in 0.. {
        cache.put(&key(n % 50), &entry(&format!("n{n}"))).await.unwrap();
    }
}

#[tokio::test]
async fn a_writer_killed_with_sigkill_mid_write_leaves_a_readable_cache() {
    let path = temp_file();
    let exe = std::env::current_exe().unwrap();
    for round in 0..8u64 {
        let mut child = std::process::Command::new(&exe)
            .args([
                "--exact",
                "child_writer",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Let it write for a while; vary the moment so the kill lands in different phases of a write.
        tokio::time::sleep(std::time::Duration::from_millis(150 + round * 37)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let text = std::fs::read(&path).expect("the cache file exists");
        let json: serde_json::Value =
            serde_json::from_slice(&text).expect("whole JSON after SIGKILL, never half a file");
        assert_eq!(json["version"], 1);
        let cache = FileCache::new(&path);
        let entries = cache.entries().await.unwrap();
        assert!(!entries.is_empty(), "round {round}: the earlier writes are there");
    }
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    // A killed writer may leave its temporary file behind (it never replaces the cache); the next write
    // sweeps those that are stale, so they do not pile up.
    assert!(leftovers.len() <= 8, "{leftovers:?}");
}
