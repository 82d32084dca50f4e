//! The token cache as a client uses it: reads and writes that log a failing store instead of failing the
//! request, writes behind the caller (awaited by `flush`), and cache-first acquisition with single flight, in
//! this process (an async gate per key) and across processes sharing a store (the store's lock).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cache::{
    CacheEntry, CacheError, CacheKey, CacheLock, CacheRecords, CachedAccessToken, TokenCache, now_secs,
};
use crate::error::Result;
use crate::http::RequestContext;
use crate::token::{TokenResult, TokenSource};

/// After this long waiting for another process's lock, say what we wait for (the wait itself may last up to the
/// store's lock timeout).
const LOCK_WAIT_NOTICE: Duration = Duration::from_secs(1);

/// A client's side of its token cache. Every client has one; clones of a client share it.
#[derive(Debug)]
pub(crate) struct TokenStore {
    pub cache: Arc<dyn TokenCache>,
    /// Records to write together with the next one (discovery metadata with the token that follows: one cache
    /// write, not two).
    pending: Mutex<CacheRecords>,
    in_flight: Arc<Mutex<Gates>>,
    /// A store that is down would otherwise warn on every call; once per client is enough.
    store_warned: Arc<AtomicBool>,
    /// Cache writes running alongside the caller's next step (stores that write behind), awaited by
    /// [`TokenStore::flush`].
    writes: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The first failure of a background write since the last flush.
    write_error: Arc<Mutex<Option<CacheError>>>,
}

/// The in-process single-flight gates, one per cache key being fetched.
type Gates = HashMap<CacheKey, Arc<tokio::sync::Mutex<()>>>;

/// A caller's turn to fetch a key: this process's gate and the store's cross-process lock. Released (and the
/// gate forgotten if nobody else waits on it) when dropped, which happens only once the fetched token is
/// stored, so whoever waits finds it in the store.
struct Turn {
    key: CacheKey,
    gate: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    shared: Option<Box<dyn CacheLock>>,
    gates: Arc<Mutex<Gates>>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.shared.take();
        self.guard.take();
        let mut map = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        // Two references: the map's and ours. More means another caller is still waiting on this gate.
        if Arc::strong_count(&self.gate) == 2 {
            map.remove(&self.key);
        }
    }
}

impl TokenStore {
    pub fn new(cache: Arc<dyn TokenCache>) -> Self {
        TokenStore {
            cache,
            pending: Mutex::new(Vec::new()),
            in_flight: Arc::default(),
            store_warned: Arc::default(),
            writes: Mutex::new(Vec::new()),
            write_error: Arc::default(),
        }
    }

    /// Keeps a record to be written with the next write (a token's), so that both take one cache write.
    pub fn keep_for_next_write(&self, key: CacheKey, entry: CacheEntry) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((key, entry));
    }

    /// A cache removal; a failing store is logged.
    pub async fn remove(&self, key: &CacheKey) {
        if let Err(e) = self.cache.remove(key).await {
            self.store_failed(&e, "could not remove a record from the token cache");
        }
    }

    /// A cache read; a failing store is logged and treated as a miss.
    pub async fn get(&self, key: &CacheKey) -> Option<CacheEntry> {
        let answer = match self.cache.get_now(key) {
            Some(answer) => answer,
            None => self.cache.get(key).await,
        };
        match answer {
            Ok(entry) => entry,
            Err(e) => {
                self.store_failed(&e, "token cache unavailable; asking the identity provider");
                None
            }
        }
    }

    /// Cache writes, in one step where the store can, with the records kept for it
    /// ([`TokenStore::keep_for_next_write`]). A store that writes behind (the file store) writes in a task of its
    /// own, alongside the caller's next step (the Graph call); [`TokenStore::flush`] waits for it. A failing
    /// store is logged, the token is still returned.
    pub async fn put_all(&self, records: CacheRecords) {
        self.write(records, None).await;
    }

    /// [`TokenStore::put_all`], releasing `turn` once the records are stored.
    async fn write(&self, records: CacheRecords, turn: Option<Turn>) {
        let mut pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        pending.extend(records);
        let records = pending;
        if records.is_empty() {
            return;
        }
        let runtime = tokio::runtime::Handle::try_current();
        if let (true, Ok(runtime)) = (self.cache.writes_behind(), runtime) {
            let cache = Arc::clone(&self.cache);
            let (warned, first_error) = (Arc::clone(&self.store_warned), Arc::clone(&self.write_error));
            let task = runtime.spawn(async move {
                let result = cache.put_all(&records).await;
                drop(turn);
                if let Err(e) = result {
                    warn_once(&warned, &e, "could not store in the token cache");
                    first_error
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_or_insert(e);
                }
            });
            let mut writes = self.writes.lock().unwrap_or_else(|e| e.into_inner());
            writes.retain(|w| !w.is_finished());
            writes.push(task);
            return;
        }
        if let Err(e) = self.cache.put_all(&records).await {
            self.store_failed(&e, "could not store in the token cache");
        }
        drop(turn);
    }

    /// Waits for the cache writes still running in the background; the first that failed since the last
    /// flush is the error.
    pub async fn flush(&self) -> Result<()> {
        loop {
            let writes = std::mem::take(&mut *self.writes.lock().unwrap_or_else(|e| e.into_inner()));
            if writes.is_empty() {
                break;
            }
            for write in writes {
                if let Err(e) = write.await {
                    self.write_error
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_or_insert(CacheError::Unavailable(format!("cache write task failed: {e}")));
                }
            }
        }
        match self.write_error.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    pub async fn cached_access_token(&self, key: &CacheKey) -> Option<CachedAccessToken> {
        match self.get(key).await {
            Some(CacheEntry::AccessToken(t)) => Some(t),
            _ => None,
        }
    }

    /// Cache first; otherwise `fetch` once for all concurrent callers of this process, and, with a shared
    /// store, once for all processes waiting on its lock. `fetch` returns the token and any other records to
    /// store with it (written first, in the same step). If an early refresh (`refresh_in`) fails while the
    /// cached token is still valid, the cached token is returned.
    ///
    /// With `bypass_cache` (a token the resource refused, or a claims challenge) the cache does not answer and
    /// a failed request is not replaced by the cached token; the new token replaces it.
    pub async fn acquire<F, Fut>(&self, key: &CacheKey, bypass_cache: bool, fetch: F) -> Result<TokenResult>
    where
        F: FnOnce(RequestContext) -> Fut,
        Fut: Future<Output = Result<(CachedAccessToken, CacheRecords)>>,
    {
        let usable_cached = |cached: Option<CachedAccessToken>| cached.filter(|_| !bypass_cache);
        if let Some(hit) =
            usable_cached(self.cached_access_token(key).await).filter(|t| t.is_fresh(now_secs()))
        {
            return Ok(TokenResult::from_cached(hit, TokenSource::Cache, None));
        }
        let gate = self.gate(key);
        let guard = Arc::clone(&gate).lock_owned().await;
        let mut turn = Turn {
            key: key.clone(),
            gate,
            guard: Some(guard),
            shared: None,
            gates: Arc::clone(&self.in_flight),
        };
        turn.shared = self.cross_process_lock(key).await;
        // Whoever held the gate or the lock before us may have just stored a fresh token.
        let cached = usable_cached(self.cached_access_token(key).await);
        if let Some(hit) = cached.clone().filter(|t| t.is_fresh(now_secs())) {
            return Ok(TokenResult::from_cached(hit, TokenSource::Cache, None));
        }
        let ctx = RequestContext::new();
        let correlation_id = ctx.correlation_id().to_string();
        match fetch(ctx).await {
            Ok((entry, mut records)) => {
                records.push((key.clone(), CacheEntry::AccessToken(entry.clone())));
                // The turn is released once the token is stored: callers waiting on it then find it.
                self.write(records, Some(turn)).await;
                Ok(TokenResult::from_cached(
                    entry,
                    TokenSource::IdentityProvider,
                    Some(correlation_id),
                ))
            }
            Err(e) => {
                if bypass_cache {
                    // The resource refused the cached token: it must not be served again.
                    self.remove(key).await;
                }
                // The discovery that preceded the failed request is still worth keeping.
                self.write(Vec::new(), Some(turn)).await;
                match cached.filter(|t| t.is_usable(now_secs())) {
                    Some(still_valid) => {
                        tracing::warn!(error = %e, "early refresh failed; using the cached token, which is still valid");
                        Ok(TokenResult::from_cached(still_valid, TokenSource::Cache, None))
                    }
                    None => Err(e),
                }
            }
        }
    }

    /// The store's cross-process lock for `key`, if it has one. Waiting on another process's fetch can take a
    /// while (up to the store's lock timeout), so after a second the wait is announced, once.
    async fn cross_process_lock(&self, key: &CacheKey) -> Option<Box<dyn crate::cache::CacheLock>> {
        let mut lock = std::pin::pin!(self.cache.lock(key));
        let outcome = match tokio::time::timeout(LOCK_WAIT_NOTICE, &mut lock).await {
            Ok(outcome) => outcome,
            Err(_) => {
                tracing::info!(
                    "waiting for another process that is fetching the same token (lock on {:?})",
                    self.cache
                );
                lock.await
            }
        };
        match outcome {
            Ok(lock) => lock,
            Err(e) => {
                self.store_failed(&e, "no cross-process lock on the token cache; asking anyway");
                None
            }
        }
    }

    /// Warns about a failing store the first time, then only at debug level.
    fn store_failed(&self, error: &CacheError, what: &str) {
        warn_once(&self.store_warned, error, what);
    }

    fn gate(&self, key: &CacheKey) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key.clone()).or_default().clone()
    }
}

/// Warns about a failing store the first time, then only at debug level.
fn warn_once(warned: &AtomicBool, error: &CacheError, what: &str) {
    if warned.swap(true, Ordering::Relaxed) {
        tracing::debug!(error = %error, "{what}");
    } else {
        tracing::warn!(error = %error, "{what}");
    }
}
