//! The in-process store.

use std::collections::HashMap;
use std::fmt;
use std::sync::RwLock;

use async_trait::async_trait;

use super::{CacheEntry, CacheError, CacheKey, TokenCache};

/// An in-process cache: fast, lost when the process exits.
#[derive(Default)]
pub struct MemoryCache {
    // Hashing the key was half of a hit's cost: foldhash (randomly seeded) instead of SipHash. A key comes from
    // the application's settings and its own sign-ins, one per token, so SipHash's flooding resistance buys nothing.
    records: RwLock<HashMap<CacheKey, CacheEntry, foldhash::fast::RandomState>>,
}

impl MemoryCache {
    /// An empty cache.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use identity_core::{Authority, ClientSecret, ConfidentialClient, MemoryCache};
    /// # use identity_core::{HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let daemon = emulator.app("daemon").ok_or("no daemon app")?;
    /// # let (authority, client_id, secret) = (emulator.authority(), daemon.app_id.clone(), daemon.secrets[0].value.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// // Clones of `cache` are one store: give it to every client that should share tokens.
    /// let cache = Arc::new(MemoryCache::new());
    /// let app = ConfidentialClient::builder(client_id, Authority::parse(&authority)?)
    ///     .client_secret(ClientSecret::new(secret))
    ///     .cache(cache)
    /// #   .http_client(http)
    ///     .build()?;
    /// app.acquire_token_for_client(&["https://graph.microsoft.com/.default"]).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn new() -> Self {
        Self::default()
    }
}

impl fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = self.records.read().map(|m| m.len()).unwrap_or(0);
        f.debug_struct("MemoryCache").field("entries", &entries).finish()
    }
}

// A poisoned lock only means another thread panicked mid-update of a plain map; its data is still whole.
#[async_trait]
impl TokenCache for MemoryCache {
    async fn get(&self, key: &CacheKey) -> Result<Option<CacheEntry>, CacheError> {
        Ok(self
            .records
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned())
    }

    fn get_now(&self, key: &CacheKey) -> Option<Result<Option<CacheEntry>, CacheError>> {
        Some(Ok(self
            .records
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()))
    }

    async fn put(&self, key: &CacheKey, entry: &CacheEntry) -> Result<(), CacheError> {
        self.records
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone(), entry.clone());
        Ok(())
    }

    async fn remove(&self, key: &CacheKey) -> Result<(), CacheError> {
        self.records
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        Ok(())
    }

    async fn entries(&self) -> Result<Vec<(CacheKey, CacheEntry)>, CacheError> {
        let map = self.records.read().unwrap_or_else(|e| e.into_inner());
        Ok(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    async fn clear(&self) -> Result<(), CacheError> {
        self.records.write().unwrap_or_else(|e| e.into_inner()).clear();
        Ok(())
    }
}
