//! What every client does around a token request: the tenant's endpoints (memory, then cache, then discovery),
//! and cache-first acquisition with single flight, in this process (an async gate per key) and across
//! processes sharing a store (the store's lock).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;

use crate::authority::{Authority, Metadata};
use crate::cache::{
    CacheEntry, CacheError, CacheKey, CacheLock, CacheRecords, CachedAccessToken, CachedMetadata,
    MemoryCache, TokenCache, now_secs,
};
use crate::error::{ConfigError, Error, Result};
use crate::http::{HttpClient, HttpConfig, RequestContext};
use crate::token::{TokenResult, TokenSource};

/// How long discovery metadata and instance discovery answers are kept (the service says
/// `Cache-Control: max-age=86400`).
const METADATA_LIFETIME: u64 = 24 * 3600;

/// After this long waiting for another process's lock, say what we wait for (the wait itself may last up to the
/// store's lock timeout).
const LOCK_WAIT_NOTICE: Duration = Duration::from_secs(1);

/// How a token request treats the cache, for a token the resource rejected.
///
/// `AcquireOptions::default()` is the ordinary cache-first acquisition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AcquireOptions {
    /// Ask the identity provider even if the cache holds a valid token (for example one the resource refused
    /// with a 401). The new token replaces the cached one.
    pub force_refresh: bool,
    /// A claims challenge (JSON) from the resource's `WWW-Authenticate` header, sent as the `claims` parameter
    /// of the token request; implies bypassing the cache. See [`crate::GraphError::claims_challenge`].
    pub claims: Option<String>,
}

impl AcquireOptions {
    /// Cache first, no claims: the same as `acquire_token_for_client`.
    pub fn new() -> AcquireOptions {
        AcquireOptions::default()
    }

    /// Bypasses the cache (see [`AcquireOptions::force_refresh`]).
    pub fn with_force_refresh(mut self, force_refresh: bool) -> AcquireOptions {
        self.force_refresh = force_refresh;
        self
    }

    /// Sends a claims challenge with the token request, bypassing the cache.
    pub fn with_claims(mut self, claims: impl Into<String>) -> AcquireOptions {
        self.claims = Some(claims.into());
        self
    }

    /// Whether the cache must not answer.
    pub(crate) fn bypasses_cache(&self) -> bool {
        self.force_refresh || self.claims.is_some()
    }
}

#[derive(Debug)]
pub(crate) struct ClientCore {
    pub client_id: String,
    pub authority: Authority,
    /// The authority's host (and port), computed once: part of every cache key.
    pub environment: String,
    pub http: HttpClient,
    pub cache: Arc<dyn TokenCache>,
    metadata: OnceCell<Arc<Metadata>>,
    /// The endpoints discovery announced after a derived endpoint answered 404; used from then on.
    discovered: OnceCell<Arc<Metadata>>,
    /// Freshly discovered metadata (and instance discovery answer), written together with the token that
    /// follows (one cache write, not two).
    pending_metadata: Mutex<CacheRecords>,
    in_flight: Arc<Mutex<Gates>>,
    /// A store that is down would otherwise warn on every call; once per client is enough.
    store_warned: Arc<AtomicBool>,
    /// Cache writes running alongside the caller's next step (stores that write behind), awaited by
    /// [`ClientCore::flush`].
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

impl ClientCore {
    /// What every client builder does: checks the client id, and defaults to an HTTP client configured from the
    /// environment and an in-memory cache.
    pub fn build(
        client_id: &str,
        authority: Authority,
        http: Option<HttpClient>,
        cache: Option<Arc<dyn TokenCache>>,
    ) -> Result<Self, ConfigError> {
        let client_id = client_id.trim().to_string();
        if client_id.is_empty() {
            return Err(ConfigError::Empty { setting: "client id" });
        }
        let http = match http {
            Some(http) => http,
            None => HttpClient::new(HttpConfig::from_env()?)?,
        };
        let cache = cache.unwrap_or_else(|| Arc::new(MemoryCache::new()));
        Ok(ClientCore::new(client_id, authority, http, cache))
    }

    fn new(client_id: String, authority: Authority, http: HttpClient, cache: Arc<dyn TokenCache>) -> Self {
        ClientCore {
            client_id,
            environment: authority.environment(),
            authority,
            http,
            cache,
            metadata: OnceCell::new(),
            discovered: OnceCell::new(),
            pending_metadata: Mutex::new(Vec::new()),
            in_flight: Arc::default(),
            store_warned: Arc::default(),
            writes: Mutex::new(Vec::new()),
            write_error: Arc::default(),
        }
    }

    /// The tenant's endpoints: kept in memory; for an authority with Entra's layout derived without a request
    /// ([`Authority::has_entra_layout`]); otherwise from the cache store (so a later run skips discovery), and
    /// only then fetched. Validation of an unknown host comes first either way.
    pub async fn metadata(&self) -> Result<Arc<Metadata>> {
        if let Some(discovered) = self.discovered.get() {
            return Ok(discovered.clone());
        }
        self.metadata
            .get_or_try_init(|| self.load_metadata())
            .await
            .cloned()
    }

    /// Runs `request` against the tenant's endpoints. When an endpoint derived from Entra's layout answers 404
    /// (a host with another layout), the endpoints are read from OIDC discovery instead, once, and `request`
    /// is tried again with them if they differ.
    pub async fn with_endpoints<T, F, Fut>(&self, request: F) -> Result<T>
    where
        F: Fn(Arc<Metadata>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let derived = self.discovered.get().is_none() && self.authority.has_entra_layout();
        let metadata = self.metadata().await?;
        match request(metadata.clone()).await {
            Err(e) if derived && is_not_found(&e) => {
                tracing::info!(
                    endpoint = %metadata.token_endpoint,
                    "the authority has no endpoint at Entra's usual path (404); reading its endpoints from OIDC discovery"
                );
                let discovered = self.discovered.get_or_try_init(|| self.discover()).await?.clone();
                if discovered.token_endpoint == metadata.token_endpoint
                    && discovered.device_authorization_endpoint == metadata.device_authorization_endpoint
                {
                    return Err(e);
                }
                request(discovered).await
            }
            other => other,
        }
    }

    async fn load_metadata(&self) -> Result<Arc<Metadata>> {
        if self.authority.needs_validation() {
            self.validate_authority().await?;
        }
        if self.authority.has_entra_layout() {
            return Ok(Arc::new(Metadata::from_entra_layout(&self.authority)?));
        }
        self.discover().await
    }

    /// The OIDC discovery document: from the cache store if fresh and still acceptable, else fetched.
    async fn discover(&self) -> Result<Arc<Metadata>> {
        let url = self.authority.discovery_url();
        let key = CacheKey::Metadata { url: url.clone() };
        if let Some(CacheEntry::Metadata(cached)) = self.get(&key).await
            && cached.expires_on > now_secs()
        {
            match serde_json::to_vec(&cached.document).map(|body| Metadata::from_json(&self.authority, &body))
            {
                Ok(Ok(metadata)) => return Ok(Arc::new(metadata)),
                Ok(Err(e)) => {
                    // A document refused now (for example one sending the credential to another origin) must
                    // not stay in the store, whatever the discovery below says.
                    tracing::warn!(url, error = %e, "cached discovery metadata refused; dropping it and fetching it again");
                    self.remove(&key).await;
                }
                Err(_) => tracing::warn!(url, "cached discovery metadata is unusable; fetching it again"),
            }
        }
        let (metadata, document) = Metadata::discover(&self.authority, &self.http).await?;
        // Discovery is only ever done to send a token request; the metadata is stored with its answer.
        self.keep_for_next_write(key, document);
        Ok(Arc::new(metadata))
    }

    /// Instance discovery of a host that is neither a known cloud nor loopback (the answer cached in the
    /// store): an unknown host is refused before any credential is sent.
    async fn validate_authority(&self) -> Result<()> {
        let url = self.authority.instance_discovery_url()?;
        let key = CacheKey::Metadata { url: url.to_string() };
        if let Some(CacheEntry::Metadata(cached)) = self.get(&key).await
            && cached.expires_on > now_secs()
            && let Ok(body) = serde_json::to_vec(&cached.document)
            && self
                .authority
                .check_instance_discovery(url.as_str(), &body)
                .is_ok()
        {
            return Ok(());
        }
        let body = match self
            .http
            .get_identity_json(url.as_str(), &RequestContext::new())
            .await
        {
            Ok(body) => body,
            Err(Error::Service(e)) if e.error == "invalid_instance" => {
                return Err(self.authority.unknown_host().into());
            }
            Err(e) => return Err(e),
        };
        self.authority.check_instance_discovery(url.as_str(), &body)?;
        let document = crate::json::parse_json(&body, url.as_str(), "instance discovery answer")?;
        self.keep_for_next_write(key, document);
        Ok(())
    }

    fn keep_for_next_write(&self, key: CacheKey, document: serde_json::Value) {
        let entry = CacheEntry::Metadata(CachedMetadata {
            document,
            expires_on: now_secs().saturating_add(METADATA_LIFETIME),
        });
        self.pending_metadata
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((key, entry));
    }

    /// A cache removal; a failing store is logged.
    async fn remove(&self, key: &CacheKey) {
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

    /// Cache writes, in one step where the store can, with any metadata discovered since the last write. A
    /// store that writes behind (the file store) writes in a task of its own, alongside the caller's next
    /// step (the Graph call); [`ClientCore::flush`] waits for it. A failing store is logged, the token is still
    /// returned.
    pub async fn put_all(&self, records: CacheRecords) {
        self.write(records, None).await;
    }

    /// [`ClientCore::put_all`], releasing `turn` once the records are stored.
    async fn write(&self, records: CacheRecords, turn: Option<Turn>) {
        let mut pending =
            std::mem::take(&mut *self.pending_metadata.lock().unwrap_or_else(|e| e.into_inner()));
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

/// A 404 answer (Entra's JSON error or a plain page).
pub(crate) fn is_not_found(error: &Error) -> bool {
    match error {
        Error::Service(e) => e.status == 404,
        Error::Http(crate::error::HttpError::UnexpectedStatus { status, .. }) => *status == 404,
        _ => false,
    }
}
