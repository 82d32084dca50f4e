//! The in-process store.

use std::collections::HashMap;
use std::fmt;
use std::sync::RwLock;

use async_trait::async_trait;

use super::{CacheEntry, CacheError, CacheKey, TokenCache};

/// An in-process cache: fast, lost when the process exits.
#[derive(Default)]
pub struct MemoryCache {
    records: RwLock<HashMap<CacheKey, CacheEntry>>,
}

impl MemoryCache {
    /// An empty cache.
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
