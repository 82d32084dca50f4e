//! `token-cache` at hostile cache paths, after an `encrypted-file` run, and with the authority host shown.
#![cfg(unix)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use identity_core::{
    AccessTokenKey, CacheEntry, CacheKey, CachedAccessToken, FileCache, SecretToken, TokenCache,
};

const BIN: &str = env!("CARGO_BIN_EXE_token-cache");

/// Runs the tool on `path`; a run that does not end within a minute (a blocking open) fails the test.
fn run(path: &Path, command: &str) -> (bool, String, String) {
    let mut child = Command::new(BIN)
        .env_clear()
        .env("IDENTITY_CACHE_PATH", path)
        .arg(command)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("token-cache {command} on {} hangs", path.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("b-token-cache-tool-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{nanos}", std::process::id())
}

fn lstat(path: &Path) -> (u32, std::fs::FileType) {
    let meta = std::fs::symlink_metadata(path).unwrap();
    (meta.mode(), meta.file_type())
}

#[test]
fn hostile_cache_paths_are_reported_once_and_left_alone() {
    let dir = temp_dir();
    let fifo = dir.join("fifo.json");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let directory = dir.join("dir.json");
    std::fs::create_dir(&directory).unwrap();
    std::fs::set_permissions(&directory, std::fs::Permissions::from_mode(0o755)).unwrap();
    let target = dir.join("precious.txt");
    std::fs::write(&target, b"keep me").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
    let link = dir.join("link.json");
    std::os::unix::fs::symlink(&target, &link).unwrap();

    for (path, what) in [
        (Path::new("/dev/null"), "a device"),
        (fifo.as_path(), "a FIFO"),
        (directory.as_path(), "a directory"),
        (link.as_path(), "a symbolic link"),
    ] {
        let before = lstat(path);
        for command in ["list", "clear"] {
            let (ok, stdout, stderr) = run(path, command);
            assert!(ok, "{command} {}: {stdout}{stderr}", path.display());
            assert!(stdout.contains("is not usable"), "{stdout}");
            let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("WARN")).collect();
            assert_eq!(warnings.len(), 1, "one warning: {stderr}");
            let warning = warnings[0];
            assert!(warning.contains(&path.display().to_string()), "{warning}");
            assert!(warning.contains(what), "{warning}");
            assert!(
                warning.contains("IDENTITY_CACHE_PATH"),
                "names the fix: {warning}"
            );
        }
        assert_eq!(lstat(path), before, "{} untouched", path.display());
    }
    assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
    assert_eq!(lstat(&target).0 & 0o777, 0o644);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_encrypted_file_read_as_a_plain_one_names_the_setting_to_change() {
    let dir = temp_dir();
    let path = dir.join("cache.json");
    // The encrypted form, as an `encrypted-file` run leaves it (no key needed to recognise it).
    let sealed =
        br#"{"version":1,"encryption":{"alg":"A256GCM","key_id":"k"},"nonce":"AAAA","ciphertext":"AAAA"}"#;
    std::fs::write(&path, sealed).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    for command in ["list", "clear"] {
        let (ok, stdout, stderr) = run(&path, command);
        assert!(!ok, "{stdout}");
        assert!(stderr.contains("IDENTITY_CACHE=encrypted-file"), "{stderr}");
        assert!(!stderr.contains("open_encrypted"), "no library advice: {stderr}");
        assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    }
    assert_eq!(std::fs::read(&path).unwrap(), sealed, "left alone");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn records_show_their_authority_host() {
    let dir = temp_dir();
    let path = dir.join("cache.json");
    let cache = FileCache::new(&path);
    let now = identity_core::now_secs();
    for host in ["login.microsoftonline.com", "127.0.0.1:8443"] {
        let key = CacheKey::AccessToken(AccessTokenKey::new(
            None,
            host,
            "app-1",
            "tenant-1",
            &["s/.default"],
        ));
        let token = CachedAccessToken::new(
            SecretToken::new("tok"),
            "Bearer".into(),
            vec![],
            now,
            3600,
            None,
            None,
        );
        cache.put(&key, &CacheEntry::AccessToken(token)).await.unwrap();
    }
    let (ok, stdout, stderr) = run(&path, "list");
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("2 record(s)"), "{stdout}");
    assert!(stdout.contains("host login.microsoftonline.com"), "{stdout}");
    assert!(stdout.contains("host 127.0.0.1:8443"), "{stdout}");
    let _ = std::fs::remove_dir_all(dir);
}
