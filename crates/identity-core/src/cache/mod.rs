//! The token cache: one trait, several stores.
//!
//! - [`MemoryCache`]: in-process, fastest, gone when the process exits;
//! - [`FileCache`]: one JSON file per app and tenant in the platform's cache directory, owner-only, replaced
//!   atomically under a lock so several processes can share it, written in the background;
//! - `RedisCache` (cargo feature `redis`): one cache for a fleet of daemons on many machines.
//!
//! Entries are typed ([`CacheKey`] → [`CacheEntry`]): access tokens, refresh tokens, accounts, ID tokens, and
//! the OIDC discovery metadata (for authorities without Entra's layout), so a warm run needs neither a token
//! request nor a discovery request.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::secret::SecretToken;

mod file;
mod memory;
#[cfg(feature = "redis")]
mod redis;

pub use file::FileCache;
pub use memory::MemoryCache;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::RedisCache;

/// A token with less than this left counts as expired, so a caller never gets one that dies in flight.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(300);

/// The longest lifetime kept for a token: Entra's access tokens live 60 to 90 minutes, at most a day under a
/// token lifetime policy. A longer `expires_in`, `ext_expires_in` or `refresh_in` from a server is clamped to it
/// (a bogus lifetime must not keep a token for centuries, nor overflow the clock), and a stored entry that claims
/// more than this is left is treated as expired (a corrupt or hostile store).
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// What identifies a cached access token: where it came from, for which app, tenant, scopes and account.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
    /// App-only tokens: a one-way fingerprint of the client credential that obtained the token, so a client
    /// configured with another credential (a wrong secret, another certificate) is never served it. Never the
    /// secret itself. `None` for user tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
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
            credential: None,
        }
    }

    /// The key of a token obtained with the credential whose fingerprint this is
    /// ([`crate::ClientCredential::fingerprint`]).
    pub fn with_credential(mut self, fingerprint: &str) -> AccessTokenKey {
        self.credential = Some(fingerprint.to_ascii_lowercase());
        self
    }
}

/// Identifies an account's records (refresh token, ID token, account) for one app.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccountKey {
    /// `uid.utid` from `client_info`.
    pub home_account_id: String,
    /// Authority host (and port), lower case.
    pub environment: String,
    /// Application (client) id, lower case.
    pub client_id: String,
}

impl AccountKey {
    /// A normalised key.
    pub fn new(home_account_id: &str, environment: &str, client_id: &str) -> AccountKey {
        AccountKey {
            home_account_id: home_account_id.to_ascii_lowercase(),
            environment: environment.to_ascii_lowercase(),
            client_id: client_id.to_ascii_lowercase(),
        }
    }
}

/// The key of a cache record.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CacheKey {
    /// An access token.
    AccessToken(AccessTokenKey),
    /// An account's refresh token.
    RefreshToken(AccountKey),
    /// An account's ID token.
    IdToken(AccountKey),
    /// An account (who signed in).
    Account(AccountKey),
    /// OIDC discovery metadata, by discovery document URL.
    Metadata {
        /// The discovery document's URL.
        url: String,
    },
}

impl CacheKey {
    /// The key as a string, for stores that key by text (file, Redis). Stable across versions of this crate.
    pub fn storage_key(&self) -> String {
        match self {
            CacheKey::AccessToken(k) => {
                let mut key = format!(
                    "{}-{}-accesstoken-{}-{}-{}",
                    k.home_account_id.as_deref().unwrap_or(""),
                    k.environment,
                    k.client_id,
                    k.realm,
                    k.target
                );
                // Appended like MSAL's extended keys, so keys without a credential keep their form.
                if let Some(credential) = &k.credential {
                    key.push('-');
                    key.push_str(credential);
                }
                key
            }
            CacheKey::RefreshToken(k) => format!(
                "{}-{}-refreshtoken-{}",
                k.home_account_id, k.environment, k.client_id
            ),
            CacheKey::IdToken(k) => {
                format!("{}-{}-idtoken-{}", k.home_account_id, k.environment, k.client_id)
            }
            CacheKey::Account(k) => {
                format!("{}-{}-account-{}", k.home_account_id, k.environment, k.client_id)
            }
            CacheKey::Metadata { url } => format!("metadata-{url}"),
        }
    }

    /// The client id the record belongs to (metadata belongs to none).
    pub fn client_id(&self) -> Option<&str> {
        match self {
            CacheKey::AccessToken(k) => Some(&k.client_id),
            CacheKey::RefreshToken(k) | CacheKey::IdToken(k) | CacheKey::Account(k) => Some(&k.client_id),
            CacheKey::Metadata { .. } => None,
        }
    }
}

/// A cached access token and its lifetimes (seconds since the Unix epoch).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CachedAccessToken {
    /// The token.
    pub access_token: SecretToken,
    /// `Bearer` (borrowed, so copying an entry allocates nothing).
    pub token_type: Cow<'static, str>,
    /// Scopes it was granted for (shared, so copying an entry allocates nothing).
    pub scopes: Arc<[String]>,
    /// When it was stored.
    pub cached_at: u64,
    /// When it expires.
    pub expires_on: u64,
    /// When the service would still accept it during an outage (`ext_expires_in`).
    #[serde(default)]
    pub extended_expires_on: Option<u64>,
    /// When the service asked us to refresh it early (`refresh_in`).
    #[serde(default)]
    pub refresh_on: Option<u64>,
}

impl CachedAccessToken {
    /// Builds an entry from the service's relative lifetimes, clamped to [`MAX_TOKEN_LIFETIME`] (and `refresh_in`
    /// to `expires_in`), so whatever the service says the entry reads back and converts to a time.
    pub fn new(
        access_token: SecretToken,
        token_type: Cow<'static, str>,
        scopes: impl Into<Arc<[String]>>,
        now: u64,
        expires_in: u64,
        ext_expires_in: Option<u64>,
        refresh_in: Option<u64>,
    ) -> CachedAccessToken {
        let max = MAX_TOKEN_LIFETIME.as_secs();
        let expires_in = expires_in.min(max);
        CachedAccessToken {
            access_token,
            token_type,
            scopes: scopes.into(),
            cached_at: now,
            expires_on: now.saturating_add(expires_in),
            extended_expires_on: ext_expires_in.map(|s| now.saturating_add(s.min(max))),
            refresh_on: refresh_in.map(|s| now.saturating_add(s.min(expires_in))),
        }
    }

    /// Still usable: more than [`EXPIRY_MARGIN`] left, and no more than [`MAX_TOKEN_LIFETIME`] (an entry claiming
    /// more was not written by this library: it counts as expired).
    pub fn is_usable(&self, now: u64) -> bool {
        let left = self.expires_on.saturating_sub(now);
        left >= EXPIRY_MARGIN.as_secs() && left <= MAX_TOKEN_LIFETIME.as_secs()
    }

    /// Usable and not yet due for the early refresh the service asked for.
    pub fn is_fresh(&self, now: u64) -> bool {
        self.is_usable(now) && self.refresh_on.is_none_or(|r| now < r)
    }
}

/// A refresh token (user flows). Opaque; kept until the service refuses it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CachedRefreshToken {
    /// The refresh token.
    pub refresh_token: SecretToken,
    /// When it was last issued or used.
    pub last_modified: u64,
}

/// An ID token (user flows), kept for display of who signed in.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CachedIdToken {
    /// The raw ID token.
    pub id_token: SecretToken,
}

/// Who signed in (user flows).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CachedAccount {
    /// `uid.utid`.
    pub home_account_id: String,
    /// The tenant the account signed in to.
    pub realm: String,
    /// `preferred_username` (or `upn`).
    pub username: String,
    /// Display name, when the ID token has one.
    pub name: Option<String>,
    /// The user's object id in that tenant.
    pub local_account_id: String,
}

/// Cached OIDC discovery metadata: the raw document and when to fetch it again.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CachedMetadata {
    /// The discovery document as served.
    pub document: serde_json::Value,
    /// When it should be fetched again.
    pub expires_on: u64,
}

/// A cache record.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CacheEntry {
    /// An access token.
    AccessToken(CachedAccessToken),
    /// A refresh token.
    RefreshToken(CachedRefreshToken),
    /// An ID token.
    IdToken(CachedIdToken),
    /// An account.
    Account(CachedAccount),
    /// Discovery metadata.
    Metadata(CachedMetadata),
}

impl CacheEntry {
    /// When the record is worthless (stores may drop it then); `None` for records without an expiry.
    pub fn expires_on(&self) -> Option<u64> {
        match self {
            CacheEntry::AccessToken(t) => Some(t.expires_on),
            CacheEntry::Metadata(m) => Some(m.expires_on),
            _ => None,
        }
    }
}

/// Records to store together ([`TokenCache::put_all`]).
pub type CacheRecords = Vec<(CacheKey, CacheEntry)>;

/// A failure of a cache store. The clients log it and carry on with the identity provider.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The store could not be read or written.
    #[error("token cache unavailable: {0}")]
    Unavailable(String),
    /// The store refuses to work (for example a cache file others can read).
    #[error("token cache refused: {0}")]
    Refused(String),
}

/// Held while this process asks the identity provider for a token, so other processes sharing the store wait
/// and then find the token in the cache instead of asking too. Released on drop.
pub trait CacheLock: Send + Sync + fmt::Debug {}

/// A store for cache records. Implementations must be safe to share between tasks.
#[async_trait]
pub trait TokenCache: Send + Sync + fmt::Debug {
    /// The record for `key`, if any (expired access tokens may be returned; the client decides).
    async fn get(&self, key: &CacheKey) -> Result<Option<CacheEntry>, CacheError>;
    /// Stores or replaces the record for `key`.
    async fn put(&self, key: &CacheKey, entry: &CacheEntry) -> Result<(), CacheError>;
    /// Stores several records at once. The default stores them one by one; a store that can write them in one
    /// atomic step (the file store) does, so a reader never sees half of them and a cold run pays one write.
    async fn put_all(&self, records: &[(CacheKey, CacheEntry)]) -> Result<(), CacheError> {
        for (key, entry) in records {
            self.put(key, entry).await?;
        }
        Ok(())
    }
    /// The record for `key` if the store can answer at once, without awaiting (an in-memory store); `None`
    /// means "ask [`TokenCache::get`]". Lets a cache hit go without the allocation of an async call. Default
    /// `None`.
    fn get_now(&self, _key: &CacheKey) -> Option<Result<Option<CacheEntry>, CacheError>> {
        None
    }
    /// Removes the record for `key`.
    async fn remove(&self, key: &CacheKey) -> Result<(), CacheError>;
    /// Every record, for listing.
    async fn entries(&self) -> Result<Vec<(CacheKey, CacheEntry)>, CacheError>;
    /// Removes every record.
    async fn clear(&self) -> Result<(), CacheError>;
    /// Whether the clients write to this store in the background, alongside their next step (a Graph call),
    /// rather than before returning the token: stores whose writes cost more than a memory update (the file
    /// store). The clients' `flush()` waits for those writes. Default `false`.
    fn writes_behind(&self) -> bool {
        false
    }
    /// A lock shared with other processes using the same store, held while a token is fetched. Stores that are
    /// private to one process return `None` (the client's in-process gate is enough).
    async fn lock(&self, _key: &CacheKey) -> Result<Option<Box<dyn CacheLock>>, CacheError> {
        Ok(None)
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
        assert_eq!(
            CacheKey::AccessToken(a.clone()).storage_key(),
            "-login.x-accesstoken-id-t-a b"
        );
        let with_credential = a.with_credential("0123456789ABCDEF");
        assert_ne!(with_credential, b, "another credential, another key");
        assert_eq!(
            CacheKey::AccessToken(with_credential).storage_key(),
            "-login.x-accesstoken-id-t-a b-0123456789abcdef"
        );
    }

    #[test]
    fn expiry_margin_and_refresh_on() {
        let t = CachedAccessToken::new(
            SecretToken::new("x"),
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

    #[test]
    fn lifetimes_are_clamped_to_a_day_and_refresh_to_expiry() {
        let day = MAX_TOKEN_LIFETIME.as_secs();
        let t = CachedAccessToken::new(
            SecretToken::new("x"),
            "Bearer".into(),
            vec![],
            1000,
            u64::MAX,
            Some(u64::MAX),
            Some(u64::MAX),
        );
        assert_eq!(t.expires_on, 1000 + day);
        assert_eq!(t.extended_expires_on, Some(1000 + day));
        assert_eq!(t.refresh_on, Some(1000 + day));
        assert!(t.is_usable(1000));
        let short = CachedAccessToken::new(
            SecretToken::new("x"),
            "Bearer".into(),
            vec![],
            0,
            600,
            None,
            Some(7200),
        );
        assert_eq!(short.refresh_on, Some(600));
        // An entry claiming more than a day left was not written by this library.
        let mut forged = t.clone();
        forged.expires_on = 1000 + day + 1;
        assert!(!forged.is_usable(1000));
    }

    #[test]
    fn entries_round_trip_through_json() {
        let entry = CacheEntry::AccessToken(CachedAccessToken::new(
            SecretToken::new("tok"),
            "Bearer".into(),
            vec!["s".into()],
            1,
            2,
            None,
            None,
        ));
        let json = serde_json::to_string(&entry).unwrap();
        assert!(json.contains(r#""kind":"access_token""#), "{json}");
        let back: CacheEntry = serde_json::from_str(&json).unwrap();
        assert!(matches!(back, CacheEntry::AccessToken(t) if t.access_token.secret() == "tok"));
    }
}
