//! What every client does around a token request: the tenant's endpoints (memory, then cache, then discovery),
//! and cache-first acquisition with single flight, in this process (an async gate per key) and across
//! processes sharing a store (the store's lock).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use crate::authority::{Authority, Metadata};
use crate::cache::{
    CacheEntry, CacheKey, CacheRecords, CachedAccessToken, CachedMetadata, MemoryCache, TokenCache, now_secs,
};
use crate::error::{ConfigError, Result};
use crate::http::{HttpClient, HttpConfig, RequestContext};
use crate::token::{TokenResult, TokenSource};

/// How long discovery metadata is kept (the service says `Cache-Control: max-age=86400`).
const METADATA_LIFETIME: u64 = 24 * 3600;

#[derive(Debug)]
pub(crate) struct ClientCore {
    pub client_id: String,
    pub authority: Authority,
    /// The authority's host (and port), computed once: part of every cache key.
    pub environment: String,
    pub http: HttpClient,
    pub cache: Arc<dyn TokenCache>,
    metadata: OnceCell<Arc<Metadata>>,
    /// Freshly discovered metadata, written together with the token that follows (one cache write, not two).
    pending_metadata: Mutex<Option<(CacheKey, CacheEntry)>>,
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
            pending_metadata: Mutex::new(None),
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
        let url = self.authority.discovery_url();
        let key = CacheKey::Metadata { url: url.clone() };
        if let Some(CacheEntry::Metadata(cached)) = self.get(&key).await
            && cached.expires_on > now_secs()
        {
            match serde_json::to_vec(&cached.document).map(|body| Metadata::from_json(&url, &body)) {
                Ok(Ok(metadata)) => return Ok(Arc::new(metadata)),
                _ => tracing::warn!(url, "cached discovery metadata is unusable; fetching it again"),
            }
        }
        let (metadata, document) = Metadata::discover(&self.authority, &self.http).await?;
        let entry = CacheEntry::Metadata(CachedMetadata {
            document,
            expires_on: now_secs() + METADATA_LIFETIME,
        });
        // Discovery is only ever done to send a token request; the metadata is stored with its answer.
        *self.pending_metadata.lock().unwrap_or_else(|e| e.into_inner()) = Some((key, entry));
        Ok(Arc::new(metadata))
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
    pub async fn put_all(&self, mut records: CacheRecords) {
        if let Some(metadata) = self
            .pending_metadata
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            records.insert(0, metadata);
        }
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
    pub async fn acquire<F, Fut>(&self, key: &CacheKey, fetch: F) -> Result<TokenResult>
    where
        F: FnOnce(RequestContext) -> Fut,
        Fut: Future<Output = Result<(CachedAccessToken, CacheRecords)>>,
    {
        if let Some(hit) = self
            .cached_access_token(key)
            .await
            .filter(|t| t.is_fresh(now_secs()))
        {
            return Ok(TokenResult::from_cached(hit, TokenSource::Cache, None));
        }
        let gate = self.gate(key);
        let result = {
            let _turn = gate.lock().await;
            let _shared = match self.cache.lock(key).await {
                Ok(lock) => lock,
                Err(e) => {
                    self.store_failed(&e, "no cross-process lock on the token cache; asking anyway");
                    None
                }
            };
            // Whoever held the gate or the lock before us may have just stored a fresh token.
            let cached = self.cached_access_token(key).await;
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
