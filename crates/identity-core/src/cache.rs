//! The token cache: one trait, several stores. Memory is built in; other stores implement [`TokenCache`].

use std::collections::HashMap;
use std::fmt;
use std::sync::RwLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use crate::secret::AccessToken;

/// A token with less than this left counts as expired, so a caller never gets one that dies in flight.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(300);

/// What identifies a cached access token: where it came from, for which app, tenant, scopes and account.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub struct AccessTokenKey {
    /// `uid.utid` of the signed-in account; `None` for app-only tokens.
    pub home_account_id: Option<String>,
    /// Authority host (and port), lower case.
    pub environment: String,
    /// Application (client) id, lower case.
    pub client_id: String,
    /// Tenant, lower case.
    pub realm: String,
    /// Scopes, lower case, sorted, de-duplicated, space-separated.
    pub target: String,
}

impl AccessTokenKey {
    /// Builds a normalised key; scope order and case do not matter.
    pub fn new(
        home_account_id: Option<&str>,
        environment: &str,
        client_id: &str,
        realm: &str,
        scopes: &[impl AsRef<str>],
    ) -> AccessTokenKey {
        let mut target: Vec<String> = scopes
            .iter()
            .map(|s| s.as_ref().trim().to_ascii_lowercase())
            .collect();
        target.sort();
        target.dedup();
        AccessTokenKey {
            home_account_id: home_account_id.map(str::to_ascii_lowercase),
            environment: environment.to_ascii_lowercase(),
            client_id: client_id.to_ascii_lowercase(),
            realm: realm.to_ascii_lowercase(),
            target: target.join(" "),
        }
    }
}

/// A cached access token and its lifetimes (seconds since the Unix epoch).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CachedAccessToken {
    /// The token.
    pub access_token: AccessToken,
    /// Usually `Bearer`.
    pub token_type: String,
    /// Scopes it was granted for.
    pub scopes: Vec<String>,
    /// When it was stored.
    pub cached_at: u64,
    /// When it expires.
    pub expires_on: u64,
    /// When the service would still accept it during an outage (`ext_expires_in`).
    pub extended_expires_on: Option<u64>,
    /// When the service asked us to refresh it early (`refresh_in`).
    pub refresh_on: Option<u64>,
}

impl CachedAccessToken {
    /// Builds an entry from the service's relative lifetimes.
    pub fn new(
        access_token: AccessToken,
        token_type: String,
        scopes: Vec<String>,
        now: u64,
        expires_in: u64,
        ext_expires_in: Option<u64>,
        refresh_in: Option<u64>,
    ) -> CachedAccessToken {
        CachedAccessToken {
            access_token,
            token_type,
            scopes,
            cached_at: now,
            expires_on: now.saturating_add(expires_in),
            extended_expires_on: ext_expires_in.map(|s| now.saturating_add(s)),
            refresh_on: refresh_in.map(|s| now.saturating_add(s)),
        }
    }

    /// Still usable: more than [`EXPIRY_MARGIN`] left.
    pub fn is_usable(&self, now: u64) -> bool {
        self.expires_on.saturating_sub(now) >= EXPIRY_MARGIN.as_secs()
    }

    /// Usable and not yet due for the early refresh the service asked for.
    pub fn is_fresh(&self, now: u64) -> bool {
        self.is_usable(now) && self.refresh_on.is_none_or(|r| now < r)
    }
}

/// A failure of a cache store. The clients log it and carry on with the identity provider.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The store could not be read or written.
    #[error("token cache unavailable: {0}")]
    Unavailable(String),
}

/// A store for access tokens. Implementations must be safe to share between tasks.
#[async_trait]
pub trait TokenCache: Send + Sync + fmt::Debug {
    /// The entry for `key`, if any (expired entries may be returned; the client decides).
    async fn get_access_token(&self, key: &AccessTokenKey) -> Result<Option<CachedAccessToken>, CacheError>;
    /// Stores or replaces the entry for `key`.
    async fn put_access_token(
        &self,
        key: &AccessTokenKey,
        token: &CachedAccessToken,
    ) -> Result<(), CacheError>;
    /// Removes the entry for `key`.
    async fn remove_access_token(&self, key: &AccessTokenKey) -> Result<(), CacheError>;
}

/// An in-process cache: fast, lost when the process exits.
#[derive(Default)]
pub struct MemoryCache {
    access_tokens: RwLock<HashMap<AccessTokenKey, CachedAccessToken>>,
}

impl MemoryCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }
}

impl fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = self.access_tokens.read().map(|m| m.len()).unwrap_or(0);
        f.debug_struct("MemoryCache")
            .field("access_tokens", &entries)
            .finish()
    }
}

// A poisoned lock only means another thread panicked mid-update of a plain map; its data is still whole.
#[async_trait]
impl TokenCache for MemoryCache {
    async fn get_access_token(&self, key: &AccessTokenKey) -> Result<Option<CachedAccessToken>, CacheError> {
        let map = self.access_tokens.read().unwrap_or_else(|e| e.into_inner());
        Ok(map.get(key).cloned())
    }

    async fn put_access_token(
        &self,
        key: &AccessTokenKey,
        token: &CachedAccessToken,
    ) -> Result<(), CacheError> {
        let mut map = self.access_tokens.write().unwrap_or_else(|e| e.into_inner());
        map.insert(key.clone(), token.clone());
        Ok(())
    }

    async fn remove_access_token(&self, key: &AccessTokenKey) -> Result<(), CacheError> {
        let mut map = self.access_tokens.write().unwrap_or_else(|e| e.into_inner());
        map.remove(key);
        Ok(())
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_ignore_scope_order_and_case() {
        let a = AccessTokenKey::new(None, "Login.X", "ID", "T", &["b", "A", "a"]);
        let b = AccessTokenKey::new(None, "login.x", "id", "t", &["a", "B"]);
        assert_eq!(a, b);
        assert_eq!(a.target, "a b");
    }

    #[test]
    fn expiry_margin_and_refresh_on() {
        let t = CachedAccessToken::new(
            AccessToken::new("x"),
            "Bearer".into(),
            vec![],
            1000,
            3600,
            None,
            Some(1800),
        );
        assert!(t.is_fresh(1000));
        assert!(!t.is_fresh(2800), "refresh_in has passed");
        assert!(t.is_usable(2800));
        assert!(t.is_usable(1000 + 3600 - 300));
        assert!(
            !t.is_usable(1000 + 3600 - 299),
            "less than 5 minutes left counts as expired"
        );
    }
}
