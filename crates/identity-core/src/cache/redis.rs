//! A token cache in Redis, shared by a fleet of daemons on many machines (cargo feature `redis`).
//!
//! - Keys: `{prefix}:{storage key}`, where the caller chooses the prefix; the samples use
//!   `identity-core:{client id}:{tenant}` ([`RedisCache::app_prefix`]) so apps and tenants never see each
//!   other's records. Values: JSON `{"version":1,"key":{...},"entry":{...}}`.
//! - Expiry: records that expire (access tokens, discovery metadata) are written with `SET … PX`, so Redis drops
//!   them when they are worthless; the others have no TTL.
//! - Listing and clearing use `SCAN … MATCH {prefix}:*` (never `KEYS`), and touch only records of this prefix.
//! - Cross-process single flight: [`TokenCache::lock`] takes `SET {prefix}:lock:{storage key} <random> NX PX
//!   5000`, renews it every second while it is held, waits while another process holds it, and releases it on
//!   drop only if it still owns it. A holder that crashes stops renewing, so its lock is gone within 5 s.
//! - Forgiving with what it reads: a record that does not decode (or claims absurd times) is treated as absent
//!   and deleted, so it costs one lookup once; a record of a newer format version is left alone.
//! - Forgiving: an unreachable, slow or failing server makes every call return [`CacheError::Unavailable`]
//!   within about two seconds (the clients then ask the identity provider); after a timeout the server is not
//!   tried again for a few seconds, so one token acquisition waits for it once, not four times.
//! - Discreet: errors, logs and `Debug` never show the password in the URL nor any token.

use std::fmt;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ConnectionAddr, ErrorKind, RedisError};
use serde::{Deserialize, Serialize};

use super::{CacheEntry, CacheError, CacheKey, CacheLock, TokenCache, now_secs};

/// Version of the record format this crate writes.
const FORMAT_VERSION: u32 = 1;
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the server may take to answer a command.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// The most any one call to the server may take, connecting included.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// After a timeout, calls fail at once for this long instead of waiting for the server again.
const COOL_DOWN: Duration = Duration::from_secs(3);
/// How long the fetch lock lives unless renewed: how long a holder that died (or lost its connection) delays
/// the others. The holder renews it every [`LOCK_RENEW_EVERY`], so a long token request keeps it.
const LOCK_TTL: Duration = Duration::from_secs(5);
/// How often a holder renews its fetch lock: often enough that a renewal stuck for a whole
/// [`CALL_TIMEOUT`] still lands before the lock expires.
const LOCK_RENEW_EVERY: Duration = Duration::from_secs(1);
/// How often a waiting process tries the fetch lock again.
const LOCK_POLL: Duration = Duration::from_millis(20);
/// How long a process waits for another one's token request before asking itself.
const LOCK_WAIT: Duration = Duration::from_secs(45);
/// Keys asked for per `SCAN` step.
const SCAN_COUNT: u64 = 500;
/// Deletes a key only if it still holds the value given: the fetch lock only if it still holds our token (it
/// may have expired and been taken by another process), an unreadable record only if no writer replaced it
/// since it was read.
const DELETE_IF_SCRIPT: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";
/// Extends the lock only if it still holds our token.
const RENEW_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";

/// A token cache in Redis, for many processes on many machines. Available with the `redis` feature.
///
/// Constructing one does no I/O: a cron job whose Redis is down still starts, and every cache call then fails
/// fast with [`CacheError::Unavailable`], which the clients log before asking the identity provider. One
/// connection is opened on first use and re-established by itself after failures.
///
/// Needs a Tokio runtime (the clients of this crate run on one). Plain `redis://` only: this build has no TLS.
///
/// ```no_run
/// use std::sync::Arc;
/// use identity_core::RedisCache;
/// # async fn demo(app: identity_core::ConfidentialClientBuilder) -> Result<(), Box<dyn std::error::Error>> {
/// let cache = RedisCache::connect(
///     "redis://:secret@cache.internal:6379/0",
///     RedisCache::app_prefix("00000000-0000-0000-0000-000000000001", "contoso.onmicrosoft.com"),
/// )
/// .await?;
/// let app = app.cache(Arc::new(cache)).build()?;
/// # Ok(())
/// # }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub struct RedisCache {
    client: redis::Client,
    /// `host:port` (or the socket path), for messages; never the password.
    target: String,
    prefix: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Created on first use; dropped after a failure so the next call starts afresh.
    manager: Option<ConnectionManager>,
    /// Set after a timeout: until then, calls fail without waiting for the server.
    cool_until: Option<Instant>,
}

impl fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let settings = self.client.get_connection_info().redis_settings();
        f.debug_struct("RedisCache")
            .field("server", &self.target)
            .field("db", &settings.db())
            .field("username", &settings.username())
            .field("password", &settings.password().map(|_| "[redacted]"))
            .field("prefix", &self.prefix)
            .finish()
    }
}

#[derive(Serialize)]
struct RecordOut<'a> {
    version: u32,
    key: &'a CacheKey,
    entry: &'a CacheEntry,
}

#[derive(Deserialize)]
struct RecordIn {
    version: u32,
    key: CacheKey,
    entry: CacheEntry,
}

/// Only the version of a stored value, to tell a newer format (left alone) from a broken record (deleted).
#[derive(Deserialize)]
struct VersionOnly {
    version: u32,
}

/// What a stored value is.
enum Decoded {
    Record(Box<RecordIn>),
    /// Written by a newer version of this crate: not ours to judge.
    NewerFormat,
    /// Not a readable record of this format, or one with absurd times.
    Unreadable,
}

impl RedisCache {
    /// A cache in the Redis server at `url`, with every key under `{prefix}:`.
    ///
    /// `url` is `redis://[[username]:password@]host[:port][/db]` (port 6379 and db 0 by default) or
    /// `redis+unix:///path/to/socket?db=0&pass=…`. Nothing is sent until the first cache call (async only so
    /// that a connection may be opened here in a later version), so a server that is down does not fail this:
    /// it fails only, with [`CacheError::Refused`], for a URL that does not parse, a `rediss://` URL (no TLS in
    /// this build) or an empty prefix. The error never contains the URL.
    pub async fn connect(url: &str, prefix: impl Into<String>) -> Result<RedisCache, CacheError> {
        let prefix = prefix.into();
        if prefix.is_empty() {
            return Err(CacheError::Refused(
                "the Redis key prefix is empty; use one per app and tenant, e.g. identity-core:<client id>:<tenant>"
                    .into(),
            ));
        }
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        if matches!(scheme.as_deref(), Some("rediss" | "valkeys")) {
            return Err(CacheError::Refused(
                "TLS to Redis (rediss://) is not supported in this build; use redis:// on a private network"
                    .into(),
            ));
        }
        let client = redis::Client::open(url).map_err(|e| {
            // The URL may hold a password: name only what is wrong, never the URL itself.
            CacheError::Refused(format!(
                "invalid Redis URL (expected redis://[:password@]host:port/db): {}",
                describe(&e)
            ))
        })?;
        let target = match client.get_connection_info().addr() {
            ConnectionAddr::Unix(path) => path.display().to_string(),
            addr => addr.to_string(),
        };
        Ok(RedisCache {
            client,
            target,
            prefix,
            state: Mutex::new(State::default()),
        })
    }

    /// The prefix the samples use: `identity-core:{client id}:{tenant}`, lower case, so that each app and
    /// tenant has its own records in a shared Redis.
    pub fn app_prefix(client_id: &str, tenant: &str) -> String {
        format!(
            "{}:{}:{}",
            Self::APP_PREFIX_ROOT,
            client_id.to_ascii_lowercase(),
            tenant.to_ascii_lowercase()
        )
    }

    /// The start of every [`app_prefix`](Self::app_prefix): a cache with this prefix lists every app's records
    /// with [`entries_under_prefix`](Self::entries_under_prefix).
    pub const APP_PREFIX_ROOT: &str = "identity-core";

    /// The key prefix: every key of this cache is `{prefix}:…`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn data_key(&self, key: &CacheKey) -> String {
        format!("{}:{}", self.prefix, key.storage_key())
    }

    fn lock_key(&self, key: &CacheKey) -> String {
        format!("{}:lock:{}", self.prefix, key.storage_key())
    }

    fn unavailable(&self, what: impl fmt::Display) -> CacheError {
        let mut text = format!("redis at {}: {what}", self.target);
        if let Some(password) = self
            .client
            .get_connection_info()
            .redis_settings()
            .password()
            .filter(|p| !p.is_empty())
        {
            text = text.replace(password, "[redacted]");
        }
        CacheError::Unavailable(text)
    }

    /// The shared connection, created on first use.
    fn manager(&self) -> Result<ConnectionManager, CacheError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(until) = state.cool_until {
            if Instant::now() < until {
                return Err(self.unavailable(format!(
                    "not answering (timed out less than {} s ago); not tried again yet",
                    COOL_DOWN.as_secs()
                )));
            }
            state.cool_until = None;
        }
        if let Some(manager) = &state.manager {
            return Ok(manager.clone());
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(self.unavailable("the Redis cache must be used from within a Tokio runtime"));
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            // No retries inside one call: a call must fail fast; the next call connects again.
            .set_number_of_retries(0);
        let manager = ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            .map_err(|e| self.unavailable(describe(&e)))?;
        state.manager = Some(manager.clone());
        Ok(manager)
    }

    /// Forgets the connection after a failure (the next call opens a new one) and, after a timeout, stops
    /// trying for a while.
    fn failed(&self, timed_out: bool) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.manager = None;
        if timed_out {
            state.cool_until = Some(Instant::now() + COOL_DOWN);
        }
    }

    /// One round trip to the server, bounded by [`CALL_TIMEOUT`].
    async fn call<T, F, Fut>(&self, work: F) -> Result<T, CacheError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let manager = self.manager()?;
        match tokio::time::timeout(CALL_TIMEOUT, work(manager)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                self.failed(e.is_timeout());
                Err(self.unavailable(describe(&e)))
            }
            Err(_) => {
                self.failed(true);
                Err(self.unavailable(format!("no answer within {} s", CALL_TIMEOUT.as_secs())))
            }
        }
    }

    /// Deletes a record that cannot be read back, unless it was replaced since it was read.
    async fn delete_unreadable(&self, redis_key: &str, value: Vec<u8>) -> Result<(), CacheError> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(DELETE_IF_SCRIPT).arg(1).arg(redis_key).arg(value);
        self.call(|mut con| async move { cmd.query_async::<i64>(&mut con).await })
            .await?;
        Ok(())
    }

    /// Every record under `{prefix}:`, including those filed under longer prefixes (`{prefix}:{more}:…`),
    /// each with the prefix it was found under (the cache's own operations see only records filed directly
    /// under their prefix). For tools that show or clear what several apps have cached: a cache with the
    /// prefix [`APP_PREFIX_ROOT`](Self::APP_PREFIX_ROOT) finds every app and tenant of the samples.
    pub async fn entries_under_prefix(&self) -> Result<Vec<(String, CacheKey, CacheEntry)>, CacheError> {
        Ok(self
            .scan_records(true)
            .await?
            .into_iter()
            .map(|(redis_key, record)| {
                let storage_key = record.key.storage_key();
                let prefix = redis_key
                    .strip_suffix(storage_key.as_str())
                    .and_then(|p| p.strip_suffix(':'))
                    .unwrap_or(&self.prefix)
                    .to_string();
                (prefix, record.key, record.entry)
            })
            .collect())
    }

    async fn delete_keys(&self, keys: &[String]) -> Result<(), CacheError> {
        for batch in keys.chunks(SCAN_COUNT as usize) {
            let mut cmd = redis::cmd("DEL");
            cmd.arg(batch);
            self.call(|mut con| async move { cmd.query_async::<i64>(&mut con).await })
                .await?;
        }
        Ok(())
    }

    /// Every record of this prefix, with its Redis key. Keys that are not records of this prefix (locks, other
    /// data, and unless `nested`, records of a longer prefix that starts with this one) are skipped.
    async fn scan_records(&self, nested: bool) -> Result<Vec<(String, RecordIn)>, CacheError> {
        let pattern = format!("{}:*", glob_escape(&self.prefix));
        let lock_prefix = format!("{}:lock:", self.prefix);
        let mut seen = std::collections::HashSet::new();
        let mut records = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = self
                .call(|mut con| {
                    let mut cmd = redis::cmd("SCAN");
                    cmd.cursor_arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(SCAN_COUNT);
                    async move { cmd.query_async(&mut con).await }
                })
                .await?;
            // SCAN may return a key twice; a key seen before is skipped.
            let keys: Vec<String> = keys
                .into_iter()
                .filter(|k| !k.starts_with(&lock_prefix) && seen.insert(k.clone()))
                .collect();
            if !keys.is_empty() {
                let values: Vec<Option<Vec<u8>>> = self
                    .call(|mut con| {
                        let mut cmd = redis::cmd("MGET");
                        cmd.arg(&keys);
                        async move { cmd.query_async(&mut con).await }
                    })
                    .await?;
                for (redis_key, value) in keys.into_iter().zip(values) {
                    // Gone since the SCAN, or not a string.
                    let Some(value) = value else { continue };
                    let Decoded::Record(record) = classify(&value) else {
                        tracing::debug!(key = redis_key, "skipping a key that is not a token cache record");
                        continue;
                    };
                    let storage_key = record.key.storage_key();
                    let filed_here = if nested {
                        redis_key.ends_with(&format!(":{storage_key}"))
                    } else {
                        redis_key
                            .strip_prefix(&self.prefix)
                            .and_then(|s| s.strip_prefix(':'))
                            == Some(storage_key.as_str())
                    };
                    if filed_here {
                        records.push((redis_key, *record));
                    }
                }
            }
            if next == 0 {
                return Ok(records);
            }
            cursor = next;
        }
    }
}

#[async_trait]
impl TokenCache for RedisCache {
    async fn get(&self, key: &CacheKey) -> Result<Option<CacheEntry>, CacheError> {
        let redis_key = self.data_key(key);
        let value: Option<Vec<u8>> = self
            .call(|mut con| {
                let mut cmd = redis::cmd("GET");
                cmd.arg(&redis_key);
                async move { cmd.query_async(&mut con).await }
            })
            .await?;
        let Some(value) = value else {
            return Ok(None);
        };
        match classify(&value) {
            Decoded::Record(record) if record.key == *key => Ok(Some(record.entry)),
            Decoded::NewerFormat => {
                tracing::warn!(
                    key = redis_key,
                    "Redis token cache record has an unknown format version; ignoring it"
                );
                Ok(None)
            }
            // Broken, absurd, or filed under another key: it could never be used, so it goes.
            Decoded::Record(_) | Decoded::Unreadable => {
                tracing::debug!(
                    key = redis_key,
                    "Redis token cache record is unreadable; deleting it"
                );
                self.delete_unreadable(&redis_key, value).await?;
                Ok(None)
            }
        }
    }

    async fn put(&self, key: &CacheKey, entry: &CacheEntry) -> Result<(), CacheError> {
        let redis_key = self.data_key(key);
        let json = serde_json::to_vec(&RecordOut {
            version: FORMAT_VERSION,
            key,
            entry,
        })
        .map_err(|e| self.unavailable(format!("cannot encode the record: {e}")))?;
        let now = now_secs();
        let mut cmd;
        match entry.expires_on() {
            _ if !super::file::is_plausible(key, entry, now) => {
                // It would be deleted when read back: never stored, and no older version lingers.
                tracing::debug!(
                    key = redis_key,
                    "not storing a token cache record with absurd times"
                );
                cmd = redis::cmd("DEL");
                cmd.arg(&redis_key);
            }
            Some(expires_on) => {
                let left = expires_on.saturating_sub(now);
                if left == 0 {
                    // Already worthless: make sure no older version lingers.
                    cmd = redis::cmd("DEL");
                    cmd.arg(&redis_key);
                } else {
                    cmd = redis::cmd("SET");
                    cmd.arg(&redis_key)
                        .arg(json)
                        .arg("PX")
                        .arg(left.saturating_mul(1000));
                }
            }
            None => {
                cmd = redis::cmd("SET");
                cmd.arg(&redis_key).arg(json);
            }
        }
        self.call(|mut con| async move { cmd.query_async::<redis::Value>(&mut con).await })
            .await?;
        Ok(())
    }

    async fn remove(&self, key: &CacheKey) -> Result<(), CacheError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.data_key(key));
        self.call(|mut con| async move { cmd.query_async::<i64>(&mut con).await })
            .await?;
        Ok(())
    }

    async fn entries(&self) -> Result<Vec<(CacheKey, CacheEntry)>, CacheError> {
        Ok(self
            .scan_records(false)
            .await?
            .into_iter()
            .map(|(_, r)| (r.key, r.entry))
            .collect())
    }

    async fn clear(&self) -> Result<(), CacheError> {
        let keys: Vec<String> = self
            .scan_records(false)
            .await?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        self.delete_keys(&keys).await
    }

    /// Takes `{prefix}:lock:{storage key}` (`SET … NX PX 5000` with a random value, renewed every second while
    /// held), polling every 20 ms while another process holds it, for up to 45 s. Stops waiting early, returning `Ok(None)`, when the holder has
    /// stored a fresh access token for `key` (or the record changed): the client then reads it from the cache,
    /// even if the holder has not released the lock yet (a process that exits right after storing may never
    /// run its release; the lock then expires by itself).
    async fn lock(&self, key: &CacheKey) -> Result<Option<Box<dyn CacheLock>>, CacheError> {
        let lock_key = self.lock_key(key);
        let data_key = self.data_key(key);
        let token = uuid::Uuid::new_v4().simple().to_string();
        let started = Instant::now();
        let mut first_seen: Option<Option<Vec<u8>>> = None;
        loop {
            let mut pipe = redis::pipe();
            pipe.cmd("SET")
                .arg(&lock_key)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(LOCK_TTL.as_millis() as u64)
                .cmd("GET")
                .arg(&data_key);
            let (taken, current, manager): (Option<String>, Option<Vec<u8>>, ConnectionManager) = self
                .call(|mut con| async move {
                    let (taken, current) = pipe.query_async(&mut con).await?;
                    Ok((taken, current, con))
                })
                .await?;
            if taken.is_some() {
                // The connection that took the lock renews and releases it.
                let renewal = tokio::spawn(renew(manager.clone(), lock_key.clone(), token.clone()));
                return Ok(Some(Box::new(RedisLock {
                    manager,
                    key: lock_key,
                    token,
                    renewal,
                })));
            }
            let fresh = current
                .as_deref()
                .and_then(|v| match classify(v) {
                    Decoded::Record(record) => Some(*record),
                    _ => None,
                })
                .is_some_and(|r| {
                    r.key == *key && matches!(&r.entry, CacheEntry::AccessToken(t) if t.is_fresh(now_secs()))
                });
            match &first_seen {
                _ if fresh => return Ok(None),
                Some(before) if *before != current => return Ok(None),
                Some(_) => {}
                None => first_seen = Some(current),
            }
            if started.elapsed() >= LOCK_WAIT {
                return Err(self.unavailable(format!(
                    "gave up after {} s waiting for {lock_key}: another process holds it",
                    LOCK_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(LOCK_POLL).await;
        }
    }
}

/// Keeps the fetch lock alive while its holder lives, until it is released or found taken by another.
async fn renew(mut manager: ConnectionManager, key: String, token: String) {
    let ttl_ms = u64::try_from(LOCK_TTL.as_millis()).unwrap_or(u64::MAX);
    let mut ticks = tokio::time::interval(LOCK_RENEW_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate: the lock was just taken.
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(RENEW_SCRIPT).arg(1).arg(&key).arg(&token).arg(ttl_ms);
        match tokio::time::timeout(CALL_TIMEOUT, cmd.query_async::<i64>(&mut manager)).await {
            Ok(Ok(1)) => {}
            Ok(Ok(_)) => {
                tracing::debug!(
                    key,
                    "the Redis fetch lock expired and was taken by another process"
                );
                return;
            }
            _ => tracing::debug!(key, "could not renew the Redis fetch lock; trying again"),
        }
    }
}

/// The fetch lock, renewed while held and released on drop if this process still owns it.
struct RedisLock {
    manager: ConnectionManager,
    key: String,
    token: String,
    renewal: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for RedisLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLock")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl CacheLock for RedisLock {}

impl Drop for RedisLock {
    fn drop(&mut self) {
        self.renewal.abort();
        // Drop cannot wait: release on the current runtime. Without one (or if the release fails) the lock
        // expires by itself after LOCK_TTL.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut manager = self.manager.clone();
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(DELETE_IF_SCRIPT)
            .arg(1)
            .arg(std::mem::take(&mut self.key))
            .arg(std::mem::take(&mut self.token));
        runtime.spawn(async move {
            let released = tokio::time::timeout(CALL_TIMEOUT, cmd.query_async::<i64>(&mut manager)).await;
            if !matches!(released, Ok(Ok(_))) {
                tracing::debug!("could not release the Redis fetch lock; it expires by itself");
            }
        });
    }
}

/// Decodes a stored value, and tells a newer format from a broken record.
fn classify(value: &[u8]) -> Decoded {
    match serde_json::from_slice::<RecordIn>(value) {
        Ok(record) if record.version == FORMAT_VERSION => {
            if super::file::is_plausible(&record.key, &record.entry, now_secs()) {
                Decoded::Record(Box::new(record))
            } else {
                Decoded::Unreadable
            }
        }
        Ok(_) => Decoded::NewerFormat,
        Err(_) => match serde_json::from_slice::<VersionOnly>(value) {
            Ok(v) if v.version > FORMAT_VERSION => Decoded::NewerFormat,
            _ => Decoded::Unreadable,
        },
    }
}

/// A Redis error as text that shows no value read from the server (a parse error quotes what it read, which
/// may be a token).
fn describe(e: &RedisError) -> String {
    match e.kind() {
        ErrorKind::Parse => "unexpected reply from the server".to_string(),
        _ => e.to_string(),
    }
}

/// Escapes the glob characters of `SCAN … MATCH`, so a prefix matches only itself.
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn debug_and_errors_never_show_the_password() {
        let cache = RedisCache::connect("redis://user:hunter2@127.0.0.1:1/3", "p")
            .await
            .unwrap();
        let shown = format!("{cache:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("127.0.0.1:1"), "{shown}");
        let e = cache.unavailable("auth failed for hunter2");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(
            e.to_string()
                .starts_with("token cache unavailable: redis at 127.0.0.1:1: "),
            "{e}"
        );
    }

    #[tokio::test]
    async fn bad_urls_are_refused_without_echoing_them() {
        for url in [
            "http://:pw123456@host",
            "rediss://:pw123456@host:6380",
            "not a url pw123456",
        ] {
            let e = RedisCache::connect(url, "p").await.unwrap_err();
            assert!(matches!(e, CacheError::Refused(_)), "{url}: {e}");
            assert!(!e.to_string().contains("pw123456"), "{e}");
        }
        assert!(RedisCache::connect("redis://127.0.0.1", "").await.is_err());
    }

    #[test]
    fn prefixes_are_escaped_for_scan() {
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
        assert_eq!(
            RedisCache::app_prefix("ABC", "Contoso"),
            "identity-core:abc:contoso"
        );
    }
}
