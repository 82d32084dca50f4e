//! The file store at hostile paths: devices, FIFOs, directories and symbolic links at the cache path or beside
//! it are refused without being opened for reading, chmod'ed or replaced; oversized files and unreadable records
//! cost nothing but themselves; a directory others can write to is reported once.
#![cfg(unix)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use identity_core::{CacheEntry, CacheError, CachedAccessToken, SecretToken, TokenCache};
use identity_core::{FileCache, now_secs};

#[path = "common/cache_support.rs"]
mod cache_support;

use cache_support::{all_logs, capture_logs, key, log_lines};

// ---------- helpers ----------

/// A fresh owner-only directory.
fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("idcore-b-paths-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

fn entry(secret: &str) -> CacheEntry {
    CacheEntry::AccessToken(CachedAccessToken::new(
        SecretToken::new(secret),
        "Bearer".into(),
        vec![],
        now_secs(),
        3600,
        None,
        None,
    ))
}

fn secret_of(e: Option<CacheEntry>) -> Option<String> {
    match e {
        Some(CacheEntry::AccessToken(t)) => Some(t.access_token.secret().to_string()),
        _ => None,
    }
}

fn mkfifo(path: &Path) {
    assert!(
        std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap()
            .success()
    );
}

/// Mode, owner and kind, as `lstat` sees them.
fn stat(path: &Path) -> (u32, u32, std::fs::FileType) {
    let meta = std::fs::symlink_metadata(path).unwrap();
    (meta.mode(), meta.uid(), meta.file_type())
}

fn assert_refused(result: Result<impl std::fmt::Debug, CacheError>, path: &Path, what: &str) {
    match result {
        Err(CacheError::Refused(message)) => {
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(message.contains(what), "{message}");
        }
        other => panic!(
            "{}: expected a refusal naming '{what}', got {other:?}",
            path.display()
        ),
    }
}

/// Every operation of the store on `path`, each bounded so that a blocking open fails the test instead of
/// hanging it.
async fn assert_every_operation_refused(path: &Path, what: &str) {
    let cache = FileCache::new(path);
    assert_refused(cache.check(), path, what);
    let bounded = Duration::from_secs(20);
    let get = tokio::time::timeout(bounded, cache.get(&key(1))).await;
    assert_refused(get.expect("get must not block"), path, what);
    let put = tokio::time::timeout(bounded, cache.put(&key(1), &entry("one"))).await;
    assert_refused(put.expect("put must not block"), path, what);
    let entries = tokio::time::timeout(bounded, cache.entries()).await;
    assert_refused(entries.expect("entries must not block"), path, what);
    let clear = tokio::time::timeout(bounded, cache.clear()).await;
    assert_refused(clear.expect("clear must not block"), path, what);
    let lock = tokio::time::timeout(bounded, cache.lock(&key(1))).await;
    assert_refused(lock.expect("lock must not block"), path, what);
}

// ---------- tests ----------

#[tokio::test]
async fn a_device_a_fifo_or_a_directory_is_refused_and_left_as_it_was() {
    let dir = temp_dir();
    let fifo = dir.join("fifo.json");
    mkfifo(&fifo);
    let directory = dir.join("dir.json");
    std::fs::create_dir(&directory).unwrap();
    std::fs::set_permissions(&directory, std::fs::Permissions::from_mode(0o755)).unwrap();
    for (path, what) in [
        (Path::new("/dev/null"), "a device"),
        (fifo.as_path(), "a FIFO"),
        (directory.as_path(), "a directory"),
    ] {
        let before = stat(path);
        assert_every_operation_refused(path, what).await;
        let after = stat(path);
        assert_eq!(before.0, after.0, "{}: mode unchanged", path.display());
        assert_eq!(
            before.2,
            after.2,
            "{}: still the same kind of file",
            path.display()
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_symlink_at_the_cache_path_is_refused_and_its_target_untouched() {
    let dir = temp_dir();
    let target = dir.join("precious.txt");
    std::fs::write(&target, b"keep me").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
    let link = dir.join("cache.json");
    std::os::unix::fs::symlink(&target, &link).unwrap();

    assert_every_operation_refused(&link, "a symbolic link").await;
    assert_eq!(stat(&target).0 & 0o777, 0o644, "the target was not chmod'ed");
    assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
    assert!(stat(&link).2.is_symlink(), "the link was not replaced");

    // A link to a directory or a device is no better.
    let to_null = dir.join("null.json");
    std::os::unix::fs::symlink("/dev/null", &to_null).unwrap();
    let null_mode = stat(Path::new("/dev/null")).0;
    assert_every_operation_refused(&to_null, "a symbolic link").await;
    assert_eq!(stat(Path::new("/dev/null")).0, null_mode);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn links_and_fifos_at_the_lock_files_are_refused_and_never_followed() {
    let dir = temp_dir();
    let target = dir.join("precious.txt");
    std::fs::write(&target, b"keep me").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
    for lock_suffix in [".lock", ".fetch.lock"] {
        let path = dir.join(format!("cache{}.json", lock_suffix.len()));
        let lock = PathBuf::from(format!("{}{lock_suffix}", path.display()));
        std::os::unix::fs::symlink(&target, &lock).unwrap();
        let cache = FileCache::new(&path);
        let outcome = if lock_suffix == ".lock" {
            cache.put(&key(1), &entry("one")).await.map(|_| ())
        } else {
            cache.lock(&key(1)).await.map(|_| ())
        };
        assert_refused(outcome, &lock, "a symbolic link");
        assert_eq!(stat(&target).0 & 0o777, 0o644, "the target was not chmod'ed");
        assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
        assert!(!path.exists(), "nothing written without the lock");

        std::fs::remove_file(&lock).unwrap();
        mkfifo(&lock);
        let outcome = if lock_suffix == ".lock" {
            tokio::time::timeout(Duration::from_secs(20), cache.put(&key(1), &entry("one")))
                .await
                .expect("no blocking open")
                .map(|_| ())
        } else {
            tokio::time::timeout(Duration::from_secs(20), cache.lock(&key(1)))
                .await
                .expect("no blocking open")
                .map(|_| ())
        };
        assert_refused(outcome, &lock, "a FIFO");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn an_oversized_file_is_never_loaded_reported_once_and_replaced() {
    capture_logs();
    let dir = temp_dir();
    let path = dir.join("cache.json");
    let cache = FileCache::new(&path);
    cache.put(&key(1), &entry("one")).await.unwrap();
    // Still a valid cache file, only padded past the cap: the cap alone decides.
    let mut padded = std::fs::read(&path).unwrap();
    padded.truncate(padded.len() - 1);
    let pad = usize::try_from(FileCache::MAX_FILE_SIZE).unwrap();
    padded.extend(std::iter::repeat_n(b' ', pad));
    padded.push(b'}');
    std::fs::write(&path, &padded).unwrap();

    assert!(
        cache.get(&key(1)).await.unwrap().is_none(),
        "an oversized file counts as empty"
    );
    cache.put(&key(2), &entry("two")).await.unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size < 4096, "replaced by a small file: {size} bytes");
    assert_eq!(
        secret_of(cache.get(&key(2)).await.unwrap()).as_deref(),
        Some("two")
    );
    let warnings = log_lines("WARN", &path.display().to_string());
    assert_eq!(
        warnings.len(),
        1,
        "one warning for the get and the put: {warnings:#?}"
    );
    assert!(warnings[0].contains("oversized"), "{}", warnings[0]);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn unreadable_or_absurd_records_are_dropped_one_by_one() {
    capture_logs();
    let dir = temp_dir();
    let path = dir.join("cache.json");
    let cache = FileCache::new(&path);
    cache.put(&key(1), &entry("good")).await.unwrap();
    cache.put(&key(2), &entry("absurd")).await.unwrap();
    cache.put(&key(3), &entry("misfiled")).await.unwrap();
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let records = json["records"].as_object_mut().unwrap();
    // An expiry thousands of years ahead would otherwise be served for ever.
    records[&key(2).storage_key()]["entry"]["expires_on"] = serde_json::json!(u64::MAX / 2);
    // Filed under another key than its own.
    let misfiled = records.remove(&key(3).storage_key()).unwrap();
    records.insert(key(4).storage_key(), misfiled);
    // Not a record at all, with a token-like value that must not reach the logs.
    records.insert(
        key(5).storage_key(),
        serde_json::json!({"key": {"kind": "access_token"}, "entry": "SECRET-IN-A-BROKEN-RECORD"}),
    );
    std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();

    assert_eq!(
        secret_of(cache.get(&key(1)).await.unwrap()).as_deref(),
        Some("good")
    );
    for n in 2..=5 {
        assert!(cache.get(&key(n)).await.unwrap().is_none(), "record {n} dropped");
    }
    assert_eq!(cache.entries().await.unwrap().len(), 1);
    assert!(
        !log_lines("DEBUG", "dropping").is_empty(),
        "each drop is logged at debug level"
    );
    assert!(!all_logs().contains("SECRET-IN-A-BROKEN-RECORD"));

    // The next write keeps the good record and leaves the bad ones behind.
    cache.put(&key(6), &entry("six")).await.unwrap();
    let text = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
    assert!(text.contains("good") && text.contains("six"), "{text}");
    assert!(
        !text.contains("absurd") && !text.contains("misfiled") && !text.contains("SECRET-IN"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_directory_others_can_write_to_is_reported_once() {
    capture_logs();
    let dir = temp_dir();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let path = dir.join("cache.json");
    let cache = FileCache::new(&path);
    cache.check().unwrap();
    cache.put(&key(1), &entry("one")).await.unwrap();
    assert!(cache.get(&key(1)).await.unwrap().is_some(), "it still works");
    let dir_text = format!("directory={}", dir.display());
    let warnings = log_lines("WARN", &dir_text);
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains("writable by other users"), "{}", warnings[0]);

    // An owner-only directory is not reported.
    let quiet = temp_dir();
    let cache = FileCache::new(quiet.join("cache.json"));
    cache.check().unwrap();
    cache.put(&key(1), &entry("one")).await.unwrap();
    assert!(log_lines("WARN", &format!("directory={}", quiet.display())).is_empty());
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(quiet);
}

#[tokio::test]
async fn a_regular_file_of_ours_and_a_missing_one_pass_the_check() {
    let dir = temp_dir();
    let path = dir.join("sub").join("cache.json");
    let cache = FileCache::new(&path);
    cache.check().unwrap();
    cache.put(&key(1), &entry("one")).await.unwrap();
    cache.check().unwrap();
    assert!(!cache.holds_encrypted_file().unwrap());
    let (mode, uid, kind) = stat(&path);
    assert!(kind.is_file());
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(uid, std::fs::metadata("/proc/self").unwrap().uid());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_record_that_could_not_be_read_back_is_never_stored() {
    let dir = temp_dir();
    let path = dir.join("cache.json");
    let cache = FileCache::new(&path);
    cache.put(&key(1), &entry("older")).await.unwrap();
    // The constructor clamps lifetimes to a day; a store can still be handed a record built otherwise.
    let mut forever = CachedAccessToken::new(
        SecretToken::new("forever"),
        "Bearer".into(),
        vec![],
        now_secs(),
        3600,
        None,
        None,
    );
    forever.expires_on = u64::MAX / 2;
    let absurd = CacheEntry::AccessToken(forever);
    cache.put(&key(1), &absurd).await.unwrap();
    assert!(
        cache.get(&key(1)).await.unwrap().is_none(),
        "neither the absurd record nor the one it replaced"
    );
    let text = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
    assert!(!text.contains("forever") && !text.contains("older"), "{text}");
    let _ = std::fs::remove_dir_all(dir);
}
