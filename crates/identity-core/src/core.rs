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
    CacheEntry, CacheKey, CacheRecords, CachedAccessToken, CachedMetadata, MemoryCache, TokenCache, now_secs,
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
    /// Freshly discovered metadata (and instance discovery answer), written together with the token that
    /// follows (one cache write, not two).
    pending_metadata: Mutex<CacheRecords>,
    in_flight: Mutex<HashMap<CacheKey, Arc<tokio::sync::Mutex<()>>>>,
    /// A store that is down would otherwise warn on every call; once per client is enough.
    store_warned: AtomicBool,
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
            pending_metadata: Mutex::new(Vec::new()),
            in_flight: Mutex::new(HashMap::new()),
            store_warned: AtomicBool::new(false),
        }
    }

    /// The tenant's endpoints: kept in memory, then in the cache store (so a later run skips discovery), and
    /// only then fetched.
    pub async fn metadata(&self) -> Result<Arc<Metadata>> {
        self.metadata
            .get_or_try_init(|| self.load_metadata())
            .await
            .cloned()
    }

    async fn load_metadata(&self) -> Result<Arc<Metadata>> {
        if self.authority.needs_validation() {
            self.validate_authority().await?;
        }
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
        match self.cache.get(key).await {
            Ok(entry) => entry,
            Err(e) => {
                self.store_failed(&e, "token cache unavailable; asking the identity provider");
                None
            }
        }
    }

    /// Cache writes, in one step where the store can, with any metadata discovered since the last write; a
    /// failing store is logged, the token is still returned.
    pub async fn put_all(&self, records: CacheRecords) {
        let mut pending =
            std::mem::take(&mut *self.pending_metadata.lock().unwrap_or_else(|e| e.into_inner()));
        pending.extend(records);
        let records = pending;
        if records.is_empty() {
            return;
        }
        if let Err(e) = self.cache.put_all(&records).await {
            self.store_failed(&e, "could not store in the token cache");
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
        let result = {
            let _turn = gate.lock().await;
            let _shared = self.cross_process_lock(key).await;
            // Whoever held the gate or the lock before us may have just stored a fresh token.
            let cached = usable_cached(self.cached_access_token(key).await);
            match cached.clone().filter(|t| t.is_fresh(now_secs())) {
                Some(hit) => Ok(TokenResult::from_cached(hit, TokenSource::Cache, None)),
                None => {
                    let ctx = RequestContext::new();
                    let correlation_id = ctx.correlation_id().to_string();
                    match fetch(ctx).await {
                        Ok((entry, mut records)) => {
                            records.push((key.clone(), CacheEntry::AccessToken(entry.clone())));
                            self.put_all(records).await;
                            Ok(TokenResult::from_cached(
                                entry,
                                TokenSource::IdentityProvider,
                                Some(correlation_id),
                            ))
                        }
                        Err(e) => {
                            // The discovery that preceded the failed request is still worth keeping.
                            self.put_all(Vec::new()).await;
                            if bypass_cache {
                                // The resource refused the cached token: it must not be served again.
                                self.remove(key).await;
                            }
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
            }
        };
        self.release_gate(key, gate);
        result
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
    fn store_failed(&self, error: &crate::cache::CacheError, what: &str) {
        if self.store_warned.swap(true, Ordering::Relaxed) {
            tracing::debug!(error = %error, "{what}");
        } else {
            tracing::warn!(error = %error, "{what}");
        }
    }

    fn gate(&self, key: &CacheKey) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key.clone()).or_default().clone()
    }

    fn release_gate(&self, key: &CacheKey, gate: Arc<tokio::sync::Mutex<()>>) {
        let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        // Two references: the map's and ours. More means another caller is still waiting on this gate.
        if Arc::strong_count(&gate) == 2 {
            map.remove(key);
        }
    }
}
