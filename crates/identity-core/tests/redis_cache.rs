//! The Redis store against a real `redis-server` (started per test on a free loopback port, killed on drop):
//! records of every kind, expiry, prefixes, the fetch lock, two processes sharing a token, and a Redis that
//! dies or freezes mid-run.
//!
//! `redis-server` comes from `$REDIS_SERVER` or the PATH; when missing and running as root (as CI does), the
//! tests install it once per test binary (`apt-get install -y redis-server`), else they fail saying what to
//! run.
#![cfg(feature = "redis")]
// A test file: helpers fail loudly too (the workspace lints only exempt `#[test]` functions themselves).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::path::Path;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use entra_emulator::{Emulator, Endpoint};
use identity_core::{
    AccessTokenKey, Authority, CacheEntry, CacheError, CacheKey, CachedAccessToken, ClientSecret,
    ConfidentialClient, HttpClient, HttpConfig, SecretToken, TokenCache, TokenSource,
};
use identity_core::{AccountKey, RedisCache, now_secs};

const GRAPH_DEFAULT: &str = "https://graph.microsoft.com/.default";

/// Set in a child process: which role it plays (see `child_process`).
const CHILD_VAR: &str = "IDCORE_REDIS_TEST_CHILD";

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn find_redis_server() -> Option<PathBuf> {
    std::env::var_os("REDIS_SERVER")
        .map(PathBuf::from)
        .or_else(|| which("redis-server"))
}

/// `redis-server`, installed with apt-get when missing and running as root: once per test binary, however
/// many tests ask at once (the others wait for the first).
fn redis_server_binary() -> PathBuf {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = FOUND.get_or_init(|| {
        if let Some(path) = find_redis_server() {
            return Ok(path);
        }
        if !is_root() {
            return Err("not running as root, so the tests cannot install it".to_owned());
        }
        eprintln!("redis-server is missing: installing it with apt-get install -y redis-server");
        let apt = |args: &[&str]| {
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let install = ["install", "-y", "-qq", "redis-server"];
        let installed = apt(&install) || (apt(&["update", "-qq"]) && apt(&install));
        if !installed {
            return Err("apt-get install -y redis-server failed".to_owned());
        }
        find_redis_server().ok_or_else(|| "installed, but redis-server is still not on the PATH".to_owned())
    });
    match found {
        Ok(path) => path.clone(),
        Err(e) => panic!(
            "These tests need a real Redis server ({e}).\nFix: apt-get install -y redis-server (Debian, as \
             root), or set REDIS_SERVER to the path of a redis-server binary."
        ),
    }
}

/// A `redis-server` of our own, killed when dropped.
struct RedisServer {
    child: Child,
    port: u16,
    password: Option<String>,
}

impl RedisServer {
    fn start() -> RedisServer {
        RedisServer::start_with(None)
    }

    fn start_with(password: Option<&str>) -> RedisServer {
        RedisServer::start_on(free_port(), password)
    }

    fn start_on(port: u16, password: Option<&str>) -> RedisServer {
        let mut command = Command::new(redis_server_binary());
        command
            .args(["--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(password) = password {
            command.args(["--requirepass", password]);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server: {e}"));
        let server = RedisServer {
            child,
            port,
            password: password.map(str::to_string),
        };
        let started = Instant::now();
        while server.raw().is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not come up on port {port}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        server
    }

    fn url(&self) -> String {
        match &self.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}/0", self.port),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    /// A plain synchronous connection, to look behind the cache's back.
    fn raw(&self) -> redis::RedisResult<redis::Connection> {
        let mut con = redis::Client::open(self.url())?.get_connection_with_timeout(Duration::from_secs(1))?;
        redis::cmd("PING").query::<String>(&mut con)?;
        Ok(con)
    }

    fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> T {
        cmd.query(&mut self.raw().unwrap()).unwrap()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn cache(server: &RedisServer, prefix: &str) -> RedisCache {
    RedisCache::connect(&server.url(), prefix).await.unwrap()
}

fn token_key(client: &str) -> CacheKey {
    CacheKey::AccessToken(AccessTokenKey::new(
        None,
        "login.example",
        client,
        "tenant",
        &["s/.default"],
    ))
}

fn token(secret: &str, expires_in: u64) -> CacheEntry {
    CacheEntry::AccessToken(CachedAccessToken::new(
        SecretToken::new(secret),
        "Bearer".into(),
        vec!["s/.default".into()],
        now_secs(),
        expires_in,
        None,
        None,
    ))
}

fn entry(json: serde_json::Value) -> CacheEntry {
    serde_json::from_value(json).unwrap()
}

fn json(entry: &CacheEntry) -> serde_json::Value {
    serde_json::to_value(entry).unwrap()
}

fn secret_of(entry: Option<CacheEntry>) -> Option<String> {
    match entry {
        Some(CacheEntry::AccessToken(t)) => Some(t.access_token.secret().to_string()),
        _ => None,
    }
}

/// One record of each kind.
fn every_kind() -> Vec<(CacheKey, CacheEntry)> {
    let account = AccountKey::new("uid.utid", "login.example", "client-1");
    vec![
        (token_key("client-1"), token("at-1", 3600)),
        (
            CacheKey::RefreshToken(account.clone()),
            entry(serde_json::json!({"kind": "refresh_token", "refresh_token": "rt-1", "last_modified": 5})),
        ),
        (
            CacheKey::IdToken(account.clone()),
            entry(serde_json::json!({"kind": "id_token", "id_token": "a.b.c"})),
        ),
        (
            CacheKey::Account(account),
            entry(serde_json::json!({
                "kind": "account", "home_account_id": "uid.utid", "realm": "tenant",
                "username": "ada@example.com", "name": "Ada", "local_account_id": "oid"
            })),
        ),
        (
            CacheKey::Metadata {
                url: "https://login.example/tenant/v2.0/.well-known/openid-configuration".into(),
            },
            entry(serde_json::json!({
                "kind": "metadata", "document": {"issuer": "https://login.example/tenant/v2.0"},
                "expires_on": now_secs() + 86400
            })),
        ),
    ]
}

#[tokio::test]
async fn every_kind_of_record_round_trips() {
    let server = RedisServer::start();
    let cache = cache(&server, "identity-core:client-1:tenant").await;
    let records = every_kind();
    for (key, _) in &records {
        assert!(cache.get(key).await.unwrap().is_none());
    }
    for (key, entry) in &records {
        cache.put(key, entry).await.unwrap();
    }
    for (key, entry) in &records {
        let back = cache.get(key).await.unwrap().expect("stored");
        assert_eq!(json(&back), json(entry), "{key:?}");
    }
    let stored: String = server.query(redis::cmd("GET").arg(format!(
        "identity-core:client-1:tenant:{}",
        records[0].0.storage_key()
    )));
    assert!(
        stored.starts_with(r#"{"version":1,"key":{"kind":"access_token""#),
        "{stored}"
    );

    let mut listed = cache.entries().await.unwrap();
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = records.clone();
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(listed.len(), expected.len());
    for ((k1, e1), (k2, e2)) in listed.iter().zip(&expected) {
        assert_eq!(k1, k2);
        assert_eq!(json(e1), json(e2));
    }

    // Replacing keeps one record; removing drops exactly one.
    cache.put(&records[0].0, &token("at-2", 3600)).await.unwrap();
    assert_eq!(
        secret_of(cache.get(&records[0].0).await.unwrap()).as_deref(),
        Some("at-2")
    );
    cache.remove(&records[1].0).await.unwrap();
    assert!(cache.get(&records[1].0).await.unwrap().is_none());
    assert_eq!(cache.entries().await.unwrap().len(), records.len() - 1);

    // Clear removes this prefix's records, nothing else (a held lock included).
    server.query::<()>(redis::cmd("SET").arg("unrelated").arg("keep me"));
    server.query::<()>(
        redis::cmd("SET")
            .arg("identity-core:client-1:tenant:lock:x")
            .arg("holder"),
    );
    cache.clear().await.unwrap();
    assert!(cache.entries().await.unwrap().is_empty());
    let left: Vec<String> = server.query(redis::cmd("KEYS").arg("*"));
    let mut left = left;
    left.sort();
    assert_eq!(left, ["identity-core:client-1:tenant:lock:x", "unrelated"]);
}

#[tokio::test]
async fn expiry_follows_the_records_own() {
    let server = RedisServer::start();
    let cache = cache(&server, "p").await;
    let pttl =
        |key: &CacheKey| -> i64 { server.query(redis::cmd("PTTL").arg(format!("p:{}", key.storage_key()))) };

    let key = token_key("c");
    cache.put(&key, &token("at", 3600)).await.unwrap();
    let left = pttl(&key);
    assert!(
        (3_595_000..=3_600_000).contains(&left),
        "the token's hour, in ms: {left}"
    );

    for (key, entry) in every_kind() {
        cache.put(&key, &entry).await.unwrap();
        let left = pttl(&key);
        match entry.expires_on() {
            Some(on) => {
                let expected = (on - now_secs()) as i64 * 1000;
                assert!(
                    left <= expected + 1000 && left > expected - 5000,
                    "{key:?}: {left} vs {expected}"
                );
            }
            None => assert_eq!(left, -1, "{key:?} has no expiry"),
        }
    }

    // A record already worthless is not stored, and replaces what was there.
    cache.put(&key, &token("old", 0)).await.unwrap();
    assert!(cache.get(&key).await.unwrap().is_none());
    assert_eq!(pttl(&key), -2, "no such key");

    // Redis really drops an expired record.
    let short = token_key("short");
    cache.put(&short, &token("brief", 1)).await.unwrap();
    assert!(cache.get(&short).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(cache.get(&short).await.unwrap().is_none());
}

#[tokio::test]
async fn prefixes_keep_apps_and_tenants_apart() {
    let server = RedisServer::start();
    let a = cache(&server, &RedisCache::app_prefix("App-A", "Tenant")).await;
    let b = cache(&server, &RedisCache::app_prefix("app-b", "tenant")).await;
    assert_eq!(a.prefix(), "identity-core:app-a:tenant");
    let key = token_key("same-key");
    a.put(&key, &token("for-a", 3600)).await.unwrap();
    assert!(b.get(&key).await.unwrap().is_none());
    b.put(&key, &token("for-b", 3600)).await.unwrap();
    assert_eq!(secret_of(a.get(&key).await.unwrap()).as_deref(), Some("for-a"));
    assert_eq!(secret_of(b.get(&key).await.unwrap()).as_deref(), Some("for-b"));
    assert_eq!(a.entries().await.unwrap().len(), 1);
    b.clear().await.unwrap();
    assert!(b.entries().await.unwrap().is_empty());
    assert_eq!(secret_of(a.get(&key).await.unwrap()).as_deref(), Some("for-a"));

    // A prefix that starts another one, and glob characters, match only themselves.
    let short = cache(&server, "x").await;
    let long = cache(&server, "x:y").await;
    let glob = cache(&server, "x*").await;
    long.put(&key, &token("long", 3600)).await.unwrap();
    assert!(short.entries().await.unwrap().is_empty());
    assert!(glob.entries().await.unwrap().is_empty());
    short.clear().await.unwrap();
    glob.clear().await.unwrap();
    assert_eq!(long.entries().await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_fetch_lock_is_exclusive_across_instances() {
    let server = RedisServer::start();
    let first = Arc::new(cache(&server, "p").await);
    let second = Arc::new(cache(&server, "p").await);
    let key = token_key("c");
    let lock_key = format!("p:lock:{}", key.storage_key());

    let held = first.lock(&key).await.unwrap().expect("a shared store locks");
    let ttl: i64 = server.query(redis::cmd("PTTL").arg(&lock_key));
    assert!(
        (1..=5_000).contains(&ttl),
        "expires by itself within seconds if the holder dies: {ttl}"
    );

    let waiter = {
        let (second, key) = (second.clone(), key.clone());
        tokio::spawn(async move { second.lock(&key).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "waits while the first one holds it");
    drop(held);
    // Well before the waiter's own 45 s limit: it took the lock because it was released.
    let lock = tokio::time::timeout(Duration::from_secs(20), waiter)
        .await
        .expect("takes it once released")
        .unwrap()
        .unwrap()
        .expect("then takes it");
    drop(lock);
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.query::<i64>(redis::cmd("EXISTS").arg(&lock_key)) != 0 {
        assert!(Instant::now() < deadline, "released");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_crashed_holders_lock_is_gone_within_seconds() {
    let server = RedisServer::start();
    let key = token_key("c");
    let lock_key = format!("p:lock:{}", key.storage_key());
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_process", "--include-ignored", "--nocapture"])
        .env(CHILD_VAR, "crash-holding-the-lock")
        .env("IDCORE_TEST_REDIS_URL", server.url())
        .env("IDCORE_TEST_REDIS_PREFIX", "p")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("locked"));
    // The holder is gone without releasing its lock: what is left of it is the unrenewed remainder of a short
    // life, not the half minute the next daemon used to wait.
    let ttl: i64 = server.query(redis::cmd("PTTL").arg(&lock_key));
    assert!((1..=5_000).contains(&ttl), "left behind for {ttl} ms");
    let cache = cache(&server, "p").await;
    let lock = cache.lock(&key).await.unwrap();
    assert!(lock.is_some(), "taken once the dead holder's lock expired");
}

#[tokio::test]
async fn a_held_lock_is_renewed_until_released() {
    let server = RedisServer::start();
    let cache = cache(&server, "p").await;
    let key = token_key("c");
    let lock_key = format!("p:lock:{}", key.storage_key());
    let lock = cache.lock(&key).await.unwrap().expect("locked");
    let pttl = || server.query::<i64>(redis::cmd("PTTL").arg(&lock_key));
    // Shortened behind the holder's back: only a renewal can give it its full life again; without one it
    // would expire (PTTL -2) under a long token request.
    server.query::<i64>(redis::cmd("PEXPIRE").arg(&lock_key).arg(3_000));
    loop {
        let left = pttl();
        assert!(left > 0, "expired: never renewed ({left})");
        if left > 3_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(lock);
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.query::<i64>(redis::cmd("EXISTS").arg(&lock_key)) != 0 {
        assert!(Instant::now() < deadline, "released on drop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A stored value with the record format's fields around `key` and `entry` as JSON.
fn record_json(version: u32, key: &CacheKey, entry: serde_json::Value) -> String {
    serde_json::json!({"version": version, "key": key, "entry": entry}).to_string()
}

#[tokio::test]
async fn unreadable_records_are_deleted_and_newer_ones_left_alone() {
    let server = RedisServer::start();
    let cache = cache(&server, "p").await;
    let redis_key = |key: &CacheKey| format!("p:{}", key.storage_key());
    let set =
        |key: &CacheKey, value: &str| server.query::<()>(redis::cmd("SET").arg(redis_key(key)).arg(value));
    let exists = |key: &CacheKey| server.query::<i64>(redis::cmd("EXISTS").arg(redis_key(key))) == 1;

    cache.put(&token_key("good"), &token("good", 3600)).await.unwrap();
    set(&token_key("garbage"), "not json at all");
    let mut absurd = json(&token("absurd", 3600));
    absurd["expires_on"] = serde_json::json!(u64::MAX / 2);
    set(
        &token_key("absurd"),
        &record_json(1, &token_key("absurd"), absurd),
    );
    // Filed under another key than its own.
    set(
        &token_key("misfiled"),
        &record_json(1, &token_key("other"), json(&token("misfiled", 3600))),
    );
    let newer = record_json(2, &token_key("newer"), serde_json::json!({"kind": "future"}));
    set(&token_key("newer"), &newer);

    assert_eq!(
        secret_of(cache.get(&token_key("good")).await.unwrap()).as_deref(),
        Some("good")
    );
    for name in ["garbage", "absurd", "misfiled", "newer"] {
        assert!(cache.get(&token_key(name)).await.unwrap().is_none(), "{name}");
    }
    for name in ["garbage", "absurd", "misfiled"] {
        assert!(!exists(&token_key(name)), "{name} deleted");
    }
    assert!(
        exists(&token_key("newer")),
        "a newer format is not ours to delete"
    );
    assert!(exists(&token_key("good")));
    assert_eq!(
        cache.entries().await.unwrap().len(),
        1,
        "only the good one is listed"
    );

    // Nor is a record that could not be read back ever stored; the one it replaces goes too.
    let mut forever = json(&token("forever", 3600));
    forever["expires_on"] = serde_json::json!(u64::MAX / 2);
    cache.put(&token_key("good"), &entry(forever)).await.unwrap();
    assert!(!exists(&token_key("good")));
}

#[tokio::test]
async fn the_root_prefix_lists_every_apps_records() {
    let server = RedisServer::start();
    let one = cache(&server, &RedisCache::app_prefix("client-1", "tenant-a")).await;
    let two = cache(&server, &RedisCache::app_prefix("client-2", "tenant-b")).await;
    one.put(&token_key("client-1"), &token("one", 3600))
        .await
        .unwrap();
    two.put(&token_key("client-2"), &token("two", 3600))
        .await
        .unwrap();
    let _held = one.lock(&token_key("client-1")).await.unwrap();
    server.query::<()>(redis::cmd("SET").arg("identity-core:junk").arg("x"));
    server.query::<()>(
        redis::cmd("SET")
            .arg(format!("elsewhere:{}", token_key("client-3").storage_key()))
            .arg(serde_json::to_string(&serde_json::json!({"version": 1, "key": token_key("client-3"), "entry": json(&token("three", 3600))})).unwrap()),
    );

    let root = cache(&server, RedisCache::APP_PREFIX_ROOT).await;
    assert!(
        root.entries().await.unwrap().is_empty(),
        "its own prefix holds nothing"
    );
    let mut all = root.entries_under_prefix().await.unwrap();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let prefixes: Vec<&str> = all.iter().map(|(p, _, _)| p.as_str()).collect();
    assert_eq!(
        prefixes,
        [
            "identity-core:client-1:tenant-a",
            "identity-core:client-2:tenant-b"
        ]
    );
    assert_eq!(all[0].1, token_key("client-1"));

    assert_eq!(all[1].1, token_key("client-2"));
}

#[tokio::test]
async fn a_dead_holders_lock_expires_and_a_late_release_spares_the_new_owner() {
    let server = RedisServer::start();
    let cache = cache(&server, "p").await;
    let key = token_key("c");
    let lock_key = format!("p:lock:{}", key.storage_key());

    // A holder that died: its lock (here with a short life) is never released, only expires.
    server.query::<()>(
        redis::cmd("SET")
            .arg(&lock_key)
            .arg("dead-holder")
            .arg("PX")
            .arg(400),
    );
    let started = Instant::now();
    let lock = cache.lock(&key).await.unwrap().expect("taken once expired");
    // It cannot have been taken before the dead holder's lock expired.
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(300), "{waited:?}");

    // Our lock expired and someone else took it: dropping ours must not delete theirs.
    server.query::<()>(redis::cmd("SET").arg(&lock_key).arg("new-owner"));
    drop(lock);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        server.query::<String>(redis::cmd("GET").arg(&lock_key)),
        "new-owner"
    );
}

#[tokio::test]
async fn a_waiter_stops_waiting_once_the_holder_stored_a_token() {
    let server = RedisServer::start();
    let holder = cache(&server, "p").await;
    let waiter = Arc::new(cache(&server, "p").await);
    let key = token_key("c");
    let _held = holder.lock(&key).await.unwrap().expect("locked");
    let waiting = {
        let (waiter, key) = (waiter.clone(), key.clone());
        tokio::spawn(async move { waiter.lock(&key).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished());
    // The holder stores the token but has not released the lock (say its process is about to exit).
    holder.put(&key, &token("fresh", 3600)).await.unwrap();
    // Well before the holder's lock (renewed) or the waiter's 45 s limit would end the wait.
    let outcome = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("stops waiting once the token is stored")
        .unwrap()
        .unwrap();
    assert!(outcome.is_none(), "no lock: the caller reads the cache");
}

#[tokio::test]
async fn password_in_the_url_authenticates_and_is_never_shown() {
    let server = RedisServer::start_with(Some("s3cret-Pass"));
    let good = cache(&server, "p").await;
    let key = token_key("c");
    good.put(&key, &token("at", 3600)).await.unwrap();
    assert!(good.get(&key).await.unwrap().is_some());
    assert!(!format!("{good:?}").contains("s3cret-Pass"), "{good:?}");

    let wrong_url = format!("redis://:wrong-Pass@127.0.0.1:{}/0", server.port);
    let wrong = RedisCache::connect(&wrong_url, "p").await.unwrap();
    let e = wrong.get(&key).await.unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, CacheError::Unavailable(_)), "{text}");
    assert!(
        text.contains(&format!("redis at 127.0.0.1:{}", server.port)),
        "{text}"
    );
    assert!(!text.contains("wrong-Pass"), "{text}");
    assert!(!format!("{wrong:?}").contains("wrong-Pass"));
}

#[tokio::test]
async fn a_least_privilege_acl_user_is_enough() {
    // The ACL that docs/token-cache-redis.md recommends.
    let server = RedisServer::start();
    server.query::<()>(
        redis::cmd("ACL")
            .arg("SETUSER")
            .arg("fleet")
            .arg("on")
            .arg(">fleet-Pass")
            .arg("resetkeys")
            .arg("~identity-core:*")
            .arg("resetchannels")
            .arg("-@all")
            .arg("+get")
            .arg("+set")
            .arg("+del")
            .arg("+mget")
            .arg("+scan")
            .arg("+eval"),
    );
    let url = format!("redis://fleet:fleet-Pass@127.0.0.1:{}/0", server.port);
    let cache = RedisCache::connect(&url, "identity-core:app:tenant")
        .await
        .unwrap();
    for (key, entry) in every_kind() {
        cache.put(&key, &entry).await.unwrap();
        assert!(cache.get(&key).await.unwrap().is_some());
    }
    assert_eq!(cache.entries().await.unwrap().len(), every_kind().len());
    let key = token_key("c");
    let lock = cache.lock(&key).await.unwrap().expect("locked");
    drop(lock);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let lock_key = format!("identity-core:app:tenant:lock:{}", key.storage_key());
    assert_eq!(
        server.query::<i64>(redis::cmd("EXISTS").arg(&lock_key)),
        0,
        "released by the script"
    );
    cache.clear().await.unwrap();
    assert!(cache.entries().await.unwrap().is_empty());

    // Outside its key pattern, the user is refused: an error, not a crash.
    let elsewhere = RedisCache::connect(&url, "other").await.unwrap();
    let e = elsewhere.put(&key, &token("at", 3600)).await.unwrap_err();
    assert!(e.to_string().contains("no permissions"), "{e}");
    assert!(!e.to_string().contains("fleet-Pass"), "{e}");
}

#[tokio::test]
async fn an_unreachable_server_fails_fast_and_never_at_construction() {
    let port = free_port();
    let cache = RedisCache::connect(&format!("redis://:pw-xyz@127.0.0.1:{port}"), "p")
        .await
        .expect("no I/O at construction");
    let key = token_key("c");
    let started = Instant::now();
    let results = [
        cache.get(&key).await.err(),
        cache.put(&key, &token("at", 3600)).await.err(),
        cache.remove(&key).await.err(),
        cache.entries().await.err(),
        cache.clear().await.err(),
        cache.lock(&key).await.err(),
    ];
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    for e in results {
        let e = e.expect("an error");
        let text = e.to_string();
        assert!(matches!(e, CacheError::Unavailable(_)), "{text}");
        assert!(
            text.starts_with(&format!("token cache unavailable: redis at 127.0.0.1:{port}: ")),
            "{text}"
        );
        assert!(!text.contains("pw-xyz"), "{text}");
    }
}

// ---- With the identity provider (the emulator) ----

fn client(
    authority: &str,
    ca: &Path,
    client_id: &str,
    secret: &str,
    cache: Arc<RedisCache>,
) -> ConfidentialClient {
    let http = HttpClient::new(HttpConfig::default().with_extra_ca_file(ca).unwrap()).unwrap();
    ConfidentialClient::builder(client_id, Authority::parse(authority).unwrap())
        .client_secret(ClientSecret::new(secret))
        .http_client(http)
        .cache(cache)
        .build()
        .unwrap()
}

fn emulator_client(emu: &Emulator, cache: Arc<RedisCache>) -> ConfidentialClient {
    let app = emu.app("daemon").unwrap();
    client(
        &emu.authority(),
        emu.ca_path(),
        &app.app_id,
        &app.secrets[0].value,
        cache,
    )
}

/// Runs this test binary again as a child that acquires a token through Redis (see `child_process`).
fn spawn_child(emu: &Emulator, redis_url: &str, prefix: &str, expect: &str, start_at: Option<&str>) -> Child {
    let app = emu.app("daemon").unwrap();
    let mut command = Command::new(std::env::current_exe().unwrap());
    if let Some(start_at) = start_at {
        command.env("IDCORE_TEST_START_AT", start_at);
    }
    command
        .args(["--exact", "child_process", "--include-ignored", "--nocapture"])
        .env(CHILD_VAR, expect)
        .env("IDCORE_TEST_REDIS_URL", redis_url)
        .env("IDCORE_TEST_REDIS_PREFIX", prefix)
        .env("IDCORE_TEST_AUTHORITY", emu.authority())
        .env("IDCORE_TEST_CA", emu.ca_path())
        .env("IDCORE_TEST_CLIENT_ID", &app.app_id)
        .env("IDCORE_TEST_SECRET", &app.secrets[0].value)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Waits for children without blocking the runtime the emulator serves on; returns what each printed.
async fn wait_all(children: Vec<Child>) -> Vec<String> {
    tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|child| {
                let out = child.wait_with_output().unwrap();
                let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
                assert!(out.status.success(), "child failed: {stdout}");
                stdout
            })
            .collect()
    })
    .await
    .unwrap()
}

/// The child's side: not a test of its own (it does nothing unless a parent test set `CHILD_VAR`).
#[tokio::test]
#[ignore = "run by two_processes_share_a_token_through_redis as a child process"]
async fn child_process() {
    let Ok(expect) = std::env::var(CHILD_VAR) else {
        return;
    };
    let var = |name: &str| std::env::var(name).unwrap();
    let cache = RedisCache::connect(&var("IDCORE_TEST_REDIS_URL"), var("IDCORE_TEST_REDIS_PREFIX"))
        .await
        .unwrap();
    if expect == "crash-holding-the-lock" {
        let lock = cache.lock(&token_key("c")).await.unwrap().expect("locked");
        println!("locked");
        // Like a crash: no destructor runs, so the lock is neither released nor renewed again.
        std::mem::forget(lock);
        std::process::exit(0);
    }
    let cache = Arc::new(cache);
    let app = client(
        &var("IDCORE_TEST_AUTHORITY"),
        Path::new(&var("IDCORE_TEST_CA")),
        &var("IDCORE_TEST_CLIENT_ID"),
        &var("IDCORE_TEST_SECRET"),
        cache,
    );
    if let Ok(start_at) = std::env::var("IDCORE_TEST_START_AT") {
        // Started together with others: discover first, then all ask for the token at the same instant.
        app.metadata().await.unwrap();
        let start_at = UNIX_EPOCH + Duration::from_millis(start_at.parse().unwrap());
        if let Ok(wait) = start_at.duration_since(SystemTime::now()) {
            tokio::time::sleep(wait).await;
        }
    }
    let token = app.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap();
    println!("CHILD-SOURCE={:?}", token.source);
    match expect.as_str() {
        "identity-provider" => assert_eq!(token.source, TokenSource::IdentityProvider),
        "cache" => assert_eq!(token.source, TokenSource::Cache),
        _ => {}
    }
}

#[tokio::test]
async fn two_processes_share_a_token_through_redis() {
    let server = RedisServer::start();
    let emu = Emulator::builder().start().await.unwrap();
    let prefix = RedisCache::app_prefix(&emu.app("daemon").unwrap().app_id, &emu.tenant_id());

    let first = wait_all(vec![spawn_child(
        &emu,
        &server.url(),
        &prefix,
        "identity-provider",
        None,
    )])
    .await;
    assert!(first[0].contains("CHILD-SOURCE=IdentityProvider"), "{first:?}");
    let after_first = emu.request_counts();
    assert_eq!(after_first.get(Endpoint::Token), 1);

    let second = wait_all(vec![spawn_child(&emu, &server.url(), &prefix, "cache", None)]).await;
    assert!(second[0].contains("CHILD-SOURCE=Cache"), "{second:?}");
    let after_second = emu.request_counts();
    assert_eq!(
        after_second.get(Endpoint::Token),
        1,
        "the second process asked the identity provider nothing"
    );
    assert_eq!(
        after_second.total(),
        after_first.total(),
        "not even discovery: the metadata is in Redis too"
    );
}

#[tokio::test]
async fn processes_started_together_ask_for_one_token() {
    let server = RedisServer::start();
    let emu = Emulator::builder().start().await.unwrap();
    let prefix = "identity-core:together";
    let start_at = SystemTime::now() + Duration::from_millis(1500);
    let start_at = start_at
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    let children = (0..3)
        .map(|_| spawn_child(&emu, &server.url(), prefix, "any", Some(&start_at)))
        .collect();
    let outputs = wait_all(children).await;
    let fetched = outputs
        .iter()
        .filter(|o| o.contains("CHILD-SOURCE=IdentityProvider"))
        .count();
    assert_eq!(fetched, 1, "{outputs:?}");
    assert_eq!(emu.request_counts().get(Endpoint::Token), 1);
}

#[tokio::test]
async fn redis_killed_mid_run_falls_back_to_the_identity_provider() {
    let mut server = RedisServer::start();
    let emu = Emulator::builder().start().await.unwrap();
    let app = emulator_client(&emu, Arc::new(cache(&server, "p").await));
    let first = app.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap();
    assert_eq!(first.source, TokenSource::IdentityProvider);
    let cached = app.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap();
    assert_eq!(cached.source, TokenSource::Cache);

    server.kill();
    let started = Instant::now();
    let after = app.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap();
    assert_eq!(after.source, TokenSource::IdentityProvider);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(emu.request_counts().get(Endpoint::Token), 2);

    // A fresh client whose Redis is down from the start works too.
    let fresh = emulator_client(&emu, Arc::new(cache(&server, "p").await));
    let started = Instant::now();
    let token = fresh.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap();
    assert_eq!(token.source, TokenSource::IdentityProvider);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // Redis comes back (empty: no persistence): the same clients use it again, without being rebuilt.
    let _server = RedisServer::start_on(server.port, None);
    let refilled = app.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap();
    assert_eq!(refilled.source, TokenSource::IdentityProvider, "cold again");
    let shared = fresh.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap();
    assert_eq!(shared.source, TokenSource::Cache, "stored by the other client");
    assert_eq!(shared.access_token, refilled.access_token);
}

#[tokio::test]
async fn a_frozen_redis_costs_one_timeout_not_one_per_call() {
    let server = RedisServer::start();
    let emu = Emulator::builder().start().await.unwrap();
    let app = emulator_client(&emu, Arc::new(cache(&server, "p").await));
    let first = app.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap();
    assert_eq!(first.source, TokenSource::IdentityProvider);

    // Stopped, not dead: connections are accepted but nothing answers.
    server.signal("-STOP");
    let started = Instant::now();
    let result = app.acquire_token_for_client(&[GRAPH_DEFAULT]).await;
    let took = started.elapsed();
    server.signal("-CONT");
    assert_eq!(result.unwrap().source, TokenSource::IdentityProvider);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "one response timeout (1 s), then the store is skipped: {took:?}"
    );

    // Answering again: after the cool-down (3 s) the store is used again, and still holds the first token.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let again = app.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap();
    assert_eq!(again.source, TokenSource::Cache);
    assert_eq!(again.access_token, first.access_token);
}
