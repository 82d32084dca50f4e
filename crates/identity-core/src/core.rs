//! What every client of an authority does around a token request: the tenant's endpoints (memory, then cache,
//! then discovery), with its [`TokenStore`] for cache-first acquisition.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::authority::{Authority, Metadata};
use crate::cache::{CacheEntry, CacheKey, CachedMetadata, MemoryCache, TokenCache, now_secs};
use crate::error::{ConfigError, Error, Result};
use crate::http::{HttpClient, HttpConfig, RequestContext};
use crate::store::TokenStore;

/// How long discovery metadata and instance discovery answers are kept (the service says
/// `Cache-Control: max-age=86400`).
const METADATA_LIFETIME: u64 = 24 * 3600;

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
    /// The token cache, and acquisition through it.
    pub store: TokenStore,
    metadata: OnceCell<Arc<Metadata>>,
    /// The endpoints discovery announced after a derived endpoint answered 404; used from then on.
    discovered: OnceCell<Arc<Metadata>>,
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
            store: TokenStore::new(cache),
            metadata: OnceCell::new(),
            discovered: OnceCell::new(),
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
        if let Some(CacheEntry::Metadata(cached)) = self.store.get(&key).await
            && cached.expires_on > now_secs()
        {
            match serde_json::to_vec(&cached.document).map(|body| Metadata::from_json(&self.authority, &body))
            {
                Ok(Ok(metadata)) => return Ok(Arc::new(metadata)),
                Ok(Err(e)) => {
                    // A document refused now (for example one sending the credential to another origin) must
                    // not stay in the store, whatever the discovery below says.
                    tracing::warn!(url, error = %e, "cached discovery metadata refused; dropping it and fetching it again");
                    self.store.remove(&key).await;
                }
                Err(_) => tracing::warn!(url, "cached discovery metadata is unusable; fetching it again"),
            }
        }
        let (metadata, document) = Metadata::discover(&self.authority, &self.http).await?;
        // Discovery is only ever done to send a token request; the metadata is stored with its answer.
        self.keep_metadata(key, document);
        Ok(Arc::new(metadata))
    }

    /// Instance discovery of a host that is neither a known cloud nor loopback (the answer cached in the
    /// store): an unknown host is refused before any credential is sent.
    async fn validate_authority(&self) -> Result<()> {
        let url = self.authority.instance_discovery_url()?;
        let key = CacheKey::Metadata { url: url.to_string() };
        if let Some(CacheEntry::Metadata(cached)) = self.store.get(&key).await
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
        self.keep_metadata(key, document);
        Ok(())
    }

    /// Metadata and instance discovery answers are written with the token of the request they preceded.
    fn keep_metadata(&self, key: CacheKey, document: serde_json::Value) {
        let entry = CacheEntry::Metadata(CachedMetadata {
            document,
            expires_on: now_secs().saturating_add(METADATA_LIFETIME),
        });
        self.store.keep_for_next_write(key, entry);
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
