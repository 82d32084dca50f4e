//! The encrypted file store (cargo feature `encrypted-file-cache`, Linux): real files and the real kernel keyring.
//! Each test uses its own key name and removes its key at the end.
#![cfg(all(feature = "encrypted-file-cache", target_os = "linux"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use identity_core::{CacheEntry, CacheError, CachedAccessToken, FileCache, SecretToken, TokenCache};
use linux_keyutils::{Key, KeyRing, KeyRingIdentifier};

#[path = "common/cache_support.rs"]
mod cache_support;

use cache_support::{all_logs, capture_logs, key};

// ---------- helpers ----------

/// Log lines at `level` that mention `path`.
fn log_lines(level: &str, path: &Path) -> Vec<String> {
    cache_support::log_lines(level, &path.display().to_string())
}

fn temp_file() -> PathBuf {
    std::env::temp_dir()
        .join(format!("idcore-enc-cache-{}", uuid::Uuid::new_v4()))
        .join("cache.json")
}

/// The keyring the store uses: the user's persistent keyring.
fn keyring() -> KeyRing {
    KeyRing::get_persistent(KeyRingIdentifier::Process).unwrap()
}

fn find_key(name: &str) -> Option<Key> {
    keyring().search(name).ok()
}

/// How many keys named `name` the keyring holds.
fn keys_named(name: &str) -> usize {
    keyring()
        .get_links(4096)
        .unwrap()
        .iter()
        .filter_map(|n| n.as_key())
        .filter(|k| k.metadata().is_ok_and(|m| m.get_description() == name))
        .count()
}

/// A unique key name, whose key is removed from the keyring when the test ends (even when it fails).
struct TestKey(String);

impl TestKey {
    fn new() -> TestKey {
        TestKey(format!("identity-core:test:{}", uuid::Uuid::new_v4().simple()))
    }
}

impl Drop for TestKey {
    fn drop(&mut self) {
        while let Some(key) = find_key(&self.0) {
            if key.invalidate().is_err() {
                break;
            }
        }
    }
}

/// A token whose text is easy to look for in the file and the logs.
fn token_text(secret: &str) -> String {
    format!("SECRET-TOKEN-{secret}-{}", "q".repeat(300))
}

fn entry(secret: &str) -> CacheEntry {
    CacheEntry::AccessToken(CachedAccessToken::new(
        SecretToken::new(token_text(secret)),
        "Bearer".into(),
        vec![],
        identity_core::now_secs(),
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
                .nth(2)
                .unwrap_or("")
                .to_string(),
        ),
        _ => None,
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn on_disk(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ---------- tests ----------

#[tokio::test]
async fn round_trip_with_no_token_text_on_disk_and_an_owner_only_file() {
    capture_logs();
    let name = TestKey::new();
    let path = temp_file();
    let cache = FileCache::new(&path).key_name(&name.0);
    assert!(cache.is_encrypted());
    assert!(
        cache.get(&key(1)).await.unwrap().is_none(),
        "a missing file is an empty cache"
    );
    assert!(find_key(&name.0).is_none(), "reading creates no key");

    cache.put(&key(1), &entry("one")).await.unwrap();
    let first = on_disk(&path);
    cache.put(&key(2), &entry("two")).await.unwrap();
    assert_eq!(
        secret_of(cache.get(&key(1)).await.unwrap()).as_deref(),
        Some("one")
    );
    assert_eq!(
        secret_of(cache.get(&key(2)).await.unwrap()).as_deref(),
        Some("two")
    );
    assert_eq!(cache.entries().await.unwrap().len(), 2);

    // Another instance (as another process would) reads it with the key from the keyring.
    let other = FileCache::new(&path).key_name(&name.0);
    assert_eq!(
        secret_of(other.get(&key(2)).await.unwrap()).as_deref(),
        Some("two")
    );

    let bytes = std::fs::read(&path).unwrap();
    assert!(!contains(&bytes, b"SECRET-TOKEN"), "no token text on disk");
    assert!(!contains(&bytes, b"client-1"), "nor the keys of the records");
    let json = on_disk(&path);
    assert_eq!(json["version"], 1);
    assert_eq!(json["encryption"]["alg"], "A256GCM");
    assert_eq!(json["encryption"]["key_id"], name.0.as_str());
    assert!(json.get("records").is_none());
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(json["nonce"].as_str().unwrap())
            .unwrap()
            .len(),
        12
    );
    assert_ne!(first["nonce"], json["nonce"], "a new nonce for every write");
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);

    // The key: 32 bytes, in the keyring only; not in the file, the logs or Debug.
    let mut raw = [0u8; 64];
    let len = find_key(&name.0)
        .expect("the key is in the persistent keyring")
        .read(&mut raw)
        .unwrap();
    assert_eq!(len, 32);
    let raw = &raw[..32];
    let debug = format!("{cache:?}");
    assert!(debug.contains("encrypted: true"), "{debug}");
    for shown in [
        URL_SAFE_NO_PAD.encode(raw),
        base64::engine::general_purpose::STANDARD.encode(raw),
        raw.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        format!("{raw:?}"),
    ] {
        assert!(!debug.contains(&shown));
        assert!(!all_logs().contains(&shown));
        assert!(!contains(&bytes, shown.as_bytes()));
    }
    assert!(!contains(&bytes, raw));
    assert!(!all_logs().contains("SECRET-TOKEN"), "no token in the logs");

    cache.remove(&key(1)).await.unwrap();
    assert!(cache.get(&key(1)).await.unwrap().is_none());
    cache.clear().await.unwrap();
    assert!(cache.entries().await.unwrap().is_empty());
    assert_eq!(
        on_disk(&path)["encryption"]["alg"],
        "A256GCM",
        "an empty cache is written encrypted too"
    );
}

#[tokio::test]
async fn tampered_files_start_empty_with_a_warning_and_are_replaced() {
    capture_logs();
    let name = TestKey::new();
    let path = temp_file();
    let cache = FileCache::new(&path).key_name(&name.0);
    cache.put(&key(1), &entry("one")).await.unwrap();
    let good = on_disk(&path);

    let flip = |field: &str| {
        let mut json = good.clone();
        let mut bytes = URL_SAFE_NO_PAD.decode(json[field].as_str().unwrap()).unwrap();
        bytes[0] ^= 0x01;
        json[field] = URL_SAFE_NO_PAD.encode(bytes).into();
        json
    };
    let mut truncated = good.clone();
    let ct = good["ciphertext"].as_str().unwrap();
    truncated["ciphertext"] = ct[..ct.len() / 2].into();
    let mut other_key = good.clone();
    other_key["encryption"]["key_id"] = "identity-core:test:someone-else".into();
    let mut other_alg = good.clone();
    other_alg["encryption"]["alg"] = "A128GCM".into();

    for (what, broken) in [
        ("a flipped ciphertext bit", flip("ciphertext")),
        ("a flipped nonce bit", flip("nonce")),
        ("half the ciphertext", truncated),
        ("another key id", other_key),
        ("another algorithm", other_alg),
    ] {
        std::fs::write(&path, serde_json::to_vec(&broken).unwrap()).unwrap();
        let warnings_before = log_lines("WARN", &path).len();
        assert!(
            cache.get(&key(1)).await.unwrap().is_none(),
            "{what}: treated as empty, no error"
        );
        assert!(
            log_lines("WARN", &path).len() > warnings_before,
            "{what}: a warning says why"
        );
        cache.put(&key(2), &entry("two")).await.unwrap();
        assert_eq!(
            secret_of(cache.get(&key(2)).await.unwrap()).as_deref(),
            Some("two"),
            "{what}: usable again"
        );
    }
    // The raw envelope bytes cut in half: corrupt JSON, same recovery.
    let whole = std::fs::read(&path).unwrap();
    std::fs::write(&path, &whole[..whole.len() / 2]).unwrap();
    assert!(cache.get(&key(2)).await.unwrap().is_none());
    assert_eq!(keys_named(&name.0), 1, "recovery reuses the key");
}

#[tokio::test]
async fn a_key_gone_from_the_keyring_starts_empty_with_one_warning() {
    capture_logs();
    let name = TestKey::new();
    let path = temp_file();
    FileCache::new(&path)
        .key_name(&name.0)
        .put(&key(1), &entry("one"))
        .await
        .unwrap();
    // What a reboot does.
    find_key(&name.0).unwrap().invalidate().unwrap();
    assert!(find_key(&name.0).is_none());

    let cache = FileCache::new(&path).key_name(&name.0);
    assert!(cache.get(&key(1)).await.unwrap().is_none(), "empty, not an error");
    assert!(cache.get(&key(1)).await.unwrap().is_none());
    assert!(cache.entries().await.unwrap().is_empty());
    let warnings = log_lines("WARN", &path);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("no longer in the kernel keyring") && warnings[0].contains("reboot"),
        "{}",
        warnings[0]
    );

    // The next write makes a new key and the cache works again.
    cache.put(&key(2), &entry("two")).await.unwrap();
    assert!(find_key(&name.0).is_some());
    assert_eq!(
        secret_of(cache.get(&key(2)).await.unwrap()).as_deref(),
        Some("two")
    );
    assert!(
        cache.get(&key(1)).await.unwrap().is_none(),
        "the old records are gone with their key"
    );
    assert_eq!(log_lines("WARN", &path).len(), 1);
}

#[tokio::test]
async fn a_plain_file_is_rewritten_encrypted_on_first_read() {
    capture_logs();
    let name = TestKey::new();
    let path = temp_file();
    let plain = FileCache::new(&path);
    assert!(!plain.is_encrypted());
    plain.put(&key(1), &entry("one")).await.unwrap();
    assert!(
        contains(&std::fs::read(&path).unwrap(), b"SECRET-TOKEN"),
        "plain to start with"
    );

    let cache = FileCache::open_encrypted(&path).key_name(&name.0);
    assert_eq!(
        secret_of(cache.get(&key(1)).await.unwrap()).as_deref(),
        Some("one"),
        "read once"
    );
    let bytes = std::fs::read(&path).unwrap();
    assert!(
        !contains(&bytes, b"SECRET-TOKEN"),
        "and rewritten encrypted, without waiting for a write"
    );
    assert_eq!(on_disk(&path)["encryption"]["key_id"], name.0.as_str());
    assert_eq!(mode(&path), 0o600);
    assert_eq!(
        secret_of(cache.get(&key(1)).await.unwrap()).as_deref(),
        Some("one")
    );
    assert_eq!(log_lines("INFO", &path).len(), 1, "migrated once, said once");
}

#[tokio::test]
async fn a_cache_without_encryption_refuses_an_encrypted_file() {
    capture_logs();
    let name = TestKey::new();
    let path = temp_file();
    FileCache::new(&path)
        .key_name(&name.0)
        .put(&key(1), &entry("one"))
        .await
        .unwrap();
    let before = std::fs::read(&path).unwrap();

    let plain = FileCache::open_encrypted(&path).encrypt(false);
    assert!(!plain.is_encrypted());
    let err = plain.get(&key(1)).await.unwrap_err();
    assert!(matches!(err, CacheError::Refused(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("is encrypted")
            && message.contains("open_encrypted")
            && message.contains("encrypted-file-cache"),
        "names the cause and the fix: {message}"
    );
    assert!(
        plain.put(&key(2), &entry("two")).await.is_err(),
        "never overwritten by a plain file"
    );
    assert!(plain.clear().await.is_err());
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn tasks_racing_to_create_the_key_end_with_one_key_and_every_entry() {
    capture_logs();
    const WRITERS: usize = 8;
    // Many rounds, each on a fresh file and key, so the moment of creating the key is contended many times.
    for round in 0..25 {
        let name = TestKey::new();
        let path = temp_file();
        let start = Arc::new(tokio::sync::Barrier::new(WRITERS));
        let writers: Vec<_> = (0..WRITERS)
            .map(|n| {
                // Separate instances, like separate processes.
                let cache = FileCache::new(&path).key_name(&name.0);
                let start = start.clone();
                tokio::spawn(async move {
                    start.wait().await;
                    cache.put(&key(n), &entry(&format!("v{n}"))).await
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap().unwrap();
        }
        assert_eq!(keys_named(&name.0), 1, "round {round}");
        let cache = FileCache::new(&path).key_name(&name.0);
        assert_eq!(
            cache.entries().await.unwrap().len(),
            WRITERS,
            "round {round}: no write was sealed with a key that was then replaced"
        );
        for n in 0..WRITERS {
            assert_eq!(
                secret_of(cache.get(&key(n)).await.unwrap()),
                Some(format!("v{n}"))
            );
        }
        assert!(
            log_lines("WARN", &path).is_empty(),
            "{:?}",
            log_lines("WARN", &path)
        );
    }
}

const CHILD_PATH: &str = "IDCORE_ENC_CACHE_CHILD_PATH";
const CHILD_KEY: &str = "IDCORE_ENC_CACHE_CHILD_KEY";
const CHILD_N: &str = "IDCORE_ENC_CACHE_CHILD_N";

/// Not a test on its own: a child process of the race test. Waits for the start signal, then writes one entry.
#[tokio::test]
#[ignore = "a child process of the key creation race test, run by it"]
async fn child_racer() {
    let (Some(path), Ok(name), Ok(n)) = (
        std::env::var_os(CHILD_PATH),
        std::env::var(CHILD_KEY),
        std::env::var(CHILD_N),
    ) else {
        return;
    };
    let path = PathBuf::from(path);
    let go = path.with_file_name("go");
    // Spin rather than sleep, so that all start within microseconds of each other.
    while !go.exists() {
        std::hint::spin_loop();
    }
    let n: usize = n.parse().unwrap();
    FileCache::new(&path)
        .key_name(name)
        .put(&key(n), &entry(&format!("p{n}")))
        .await
        .unwrap();
}

#[tokio::test]
async fn processes_racing_to_create_the_key_end_with_one_key_and_a_readable_file() {
    capture_logs();
    let name = TestKey::new();
    let path = temp_file();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let exe = std::env::current_exe().unwrap();
    const N: usize = 8;
    let children: Vec<_> = (0..N)
        .map(|n| {
            std::process::Command::new(&exe)
                .args(["--exact", "child_racer", "--ignored", "--test-threads=1"])
                .env(CHILD_PATH, &path)
                .env(CHILD_KEY, &name.0)
                .env(CHILD_N, n.to_string())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    // All are started and polling: let them go at once.
    std::fs::write(path.with_file_name("go"), b"").unwrap();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    assert_eq!(keys_named(&name.0), 1);
    let cache = FileCache::new(&path).key_name(&name.0);
    assert_eq!(
        cache.entries().await.unwrap().len(),
        N,
        "every process's entry is readable"
    );
    for n in 0..N {
        assert_eq!(
            secret_of(cache.get(&key(n)).await.unwrap()),
            Some(format!("p{n}"))
        );
    }
    assert_eq!(mode(&path), 0o600);
}

#[tokio::test]
async fn the_default_key_is_one_per_file_and_found_through_any_spelling_of_the_path() {
    capture_logs();
    let path = temp_file();
    let cache = FileCache::open_encrypted(&path);
    cache.put(&key(1), &entry("one")).await.unwrap();
    let name = TestKey(
        on_disk(&path)["encryption"]["key_id"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    assert!(name.0.starts_with("identity-core:token-cache:"), "{}", name.0);
    assert!(find_key(&name.0).is_some());

    // The same file through a symlinked directory: the same key.
    let link = std::env::temp_dir().join(format!("idcore-enc-link-{}", uuid::Uuid::new_v4()));
    std::os::unix::fs::symlink(path.parent().unwrap(), &link).unwrap();
    let via_link = FileCache::open_encrypted(link.join("cache.json"));
    assert_eq!(
        secret_of(via_link.get(&key(1)).await.unwrap()).as_deref(),
        Some("one")
    );
    via_link.put(&key(2), &entry("two")).await.unwrap();
    assert_eq!(on_disk(&path)["encryption"]["key_id"], name.0.as_str());
    assert_eq!(cache.entries().await.unwrap().len(), 2);
    std::fs::remove_file(&link).unwrap();

    // Another file: another key.
    let other_path = temp_file();
    FileCache::open_encrypted(&other_path)
        .put(&key(1), &entry("x"))
        .await
        .unwrap();
    let other = TestKey(
        on_disk(&other_path)["encryption"]["key_id"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    assert_ne!(other.0, name.0);
}
