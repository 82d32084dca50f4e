//! Managed identity: tokens for the identity Azure assigns to the host the program runs on (VM, App Service,
//! Functions, Azure Arc, Service Fabric, Azure Machine Learning), without any secret in the configuration.
//!
//! Files, each importing only those listed before it: `identity.rs` (which identity, which source, a request),
//! `error.rs`, `response.rs` (token and error answers), `transport.rs` (the HTTP side), `source.rs` (detection
//! from the environment, endpoints), `sources.rs` (IMDS with its retries, App Service, Azure ML), `arc.rs` (the
//! Azure Arc challenge), `service_fabric.rs` (certificate pinning).

mod arc;
pub(crate) mod error;
mod identity;
mod response;
mod service_fabric;
mod source;
mod sources;
mod transport;

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use error::ManagedIdentityError;
pub(crate) use identity::TokenRequest;
pub use identity::{ManagedIdentityId, ManagedIdentitySource};
pub use source::{
    ARC_DEFAULT_ENDPOINT, ARC_TOKEN_DIRECTORY, IMDS_DEFAULT_HOST, IMDS_HOST_OVERRIDE_VAR,
    ManagedIdentityEnvironment,
};

use crate::cache::{AccessTokenKey, CacheKey, CachedAccessToken, MemoryCache, TokenCache, now_secs};
use crate::core::AcquireOptions;
use crate::secret::SecretToken;
use crate::store::TokenStore;
use crate::token::TokenResult;
use source::Endpoint;
use sources::ImdsRetry;

/// Tokens that live at least this long are refreshed at half their lifetime (MSAL Python's rule).
const LONG_LIVED: u64 = 2 * 3600;

/// Gets tokens for a managed identity from the source the environment names, cache first.
///
/// Cheap to clone; clones share the cache. Concurrent requests for one resource send one request, and so do
/// processes sharing a cache store that locks (the [`FileCache`](crate::FileCache)); with a store that writes
/// in the background, call [`ManagedIdentityClient::flush`] before the program exits.
///
/// # Examples
///
/// On an Azure host, `ManagedIdentityClient::builder(ManagedIdentityId::SystemAssigned).build()?` is all it takes;
/// here the emulator plays a VM's IMDS, named through MSAL's host override.
///
/// ```
/// use identity_core::{ManagedIdentityClient, ManagedIdentityEnvironment, ManagedIdentityId, ManagedIdentitySource, TokenSource};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let emulator = entra_emulator::Emulator::builder().start().await?;
/// let host = emulator.start_managed_identity_host().await?;
/// // AZURE_POD_IDENTITY_AUTHORITY_HOST=http://127.0.0.1:PORT, as the process's environment would say.
/// let environment = ManagedIdentityEnvironment::from_vars(host.env(entra_emulator::ManagedIdentityEndpoint::Imds));
///
/// let app = ManagedIdentityClient::builder(ManagedIdentityId::SystemAssigned)
///     .environment(environment)
///     .build()?;
/// assert_eq!(app.source(), ManagedIdentitySource::Imds);
/// let token = app.acquire_token("https://graph.microsoft.com/.default").await?;
/// assert_eq!(token.source, TokenSource::IdentityProvider);
/// let again = app.acquire_token("https://graph.microsoft.com").await?;
/// assert_eq!(again.source, TokenSource::Cache);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ManagedIdentityClient {
    inner: Arc<Inner>,
}

struct Inner {
    id: ManagedIdentityId,
    endpoint: Endpoint,
    http: reqwest::Client,
    pinned: Option<Arc<service_fabric::PinnedVerifier>>,
    store: TokenStore,
    imds_retry: ImdsRetry,
    arc_token_dir: PathBuf,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The endpoint's secrets are redacted by their own Debug; the URL is shown without its query.
        f.debug_struct("ManagedIdentityClient")
            .field("id", &self.id)
            .field("source", &self.endpoint.source())
            .field("endpoint", &transport::shown_url(self.endpoint.url()))
            .field("cache", &self.store.cache)
            .finish_non_exhaustive()
    }
}

/// Builds a [`ManagedIdentityClient`].
#[derive(Debug)]
pub struct ManagedIdentityClientBuilder {
    id: ManagedIdentityId,
    environment: Option<ManagedIdentityEnvironment>,
    cache: Option<Arc<dyn TokenCache>>,
    imds_retry: ImdsRetry,
    arc_token_dir: PathBuf,
}

impl ManagedIdentityClientBuilder {
    /// Reads the source from this environment instead of the process's
    /// ([`ManagedIdentityEnvironment::from_process`]).
    pub fn environment(mut self, environment: ManagedIdentityEnvironment) -> Self {
        self.environment = Some(environment);
        self
    }

    /// Uses this token cache (default: a fresh [`MemoryCache`]).
    pub fn cache(mut self, cache: Arc<dyn TokenCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// IMDS retries of 404, 410, 429 and 5xx: how many, and the first wait (doubled each time). Default: 6
    /// retries from 1.34 s, at most 72 s of waiting in all.
    pub fn imds_retries(mut self, max_retries: u32, initial_backoff: Duration) -> Self {
        self.imds_retry.max_retries = max_retries;
        self.imds_retry.initial_backoff = initial_backoff;
        self
    }

    /// The directory the Azure Arc agent's challenge files must be in (default [`ARC_TOKEN_DIRECTORY`]).
    pub fn arc_token_directory(mut self, dir: impl Into<PathBuf>) -> Self {
        self.arc_token_dir = dir.into();
        self
    }

    /// Detects the source and checks its variables. Nothing is sent until a token is asked for.
    pub fn build(self) -> Result<ManagedIdentityClient, ManagedIdentityError> {
        let environment = self
            .environment
            .unwrap_or_else(ManagedIdentityEnvironment::from_process);
        let endpoint = environment.endpoint()?;
        let source = endpoint.source();
        let client_failed = |reason: String| ManagedIdentityError::Unreachable {
            platform: source,
            url: transport::shown_url(endpoint.url()),
            reason: format!("cannot build the HTTP client: {reason}"),
        };
        let (http, pinned) = match &endpoint {
            Endpoint::ServiceFabric { thumbprint, .. } => {
                let (client, verifier) = service_fabric::pinned_client(*thumbprint).map_err(client_failed)?;
                (client, Some(verifier))
            }
            _ => (transport::plain_client().map_err(client_failed)?, None),
        };
        tracing::debug!(source = %source, identity = %self.id, "managed identity source detected");
        Ok(ManagedIdentityClient {
            inner: Arc::new(Inner {
                id: self.id,
                endpoint,
                http,
                pinned,
                store: TokenStore::new(self.cache.unwrap_or_else(|| Arc::new(MemoryCache::new()))),
                imds_retry: self.imds_retry,
                arc_token_dir: self.arc_token_dir,
            }),
        })
    }
}

impl ManagedIdentityClient {
    /// Starts building a client for `id` (use [`ManagedIdentityId::SystemAssigned`] for the host's own).
    pub fn builder(id: ManagedIdentityId) -> ManagedIdentityClientBuilder {
        ManagedIdentityClientBuilder {
            id,
            environment: None,
            cache: None,
            imds_retry: ImdsRetry::default(),
            arc_token_dir: PathBuf::from(ARC_TOKEN_DIRECTORY),
        }
    }

    /// The source detected from the environment.
    pub fn source(&self) -> ManagedIdentitySource {
        self.inner.endpoint.source()
    }

    /// The identity asked for.
    pub fn identity(&self) -> &ManagedIdentityId {
        &self.inner.id
    }

    /// A token for `resource` (`https://graph.microsoft.com`, or the scope `https://graph.microsoft.com/.default`),
    /// from the cache while it is fresh.
    pub async fn acquire_token(&self, resource: &str) -> Result<TokenResult, crate::Error> {
        self.acquire_token_with(resource, AcquireOptions::default()).await
    }

    /// As [`Self::acquire_token`], with `force_refresh` (a token the resource refused) honoured. Claims
    /// challenges are not supported by these endpoints (except Service Fabric's), so `claims` only bypasses the
    /// cache.
    pub async fn acquire_token_with(
        &self,
        resource: &str,
        options: AcquireOptions,
    ) -> Result<TokenResult, crate::Error> {
        let resource = to_resource(resource)?;
        let scope = format!("{resource}/.default");
        let inner = &self.inner;
        let key = CacheKey::AccessToken(
            AccessTokenKey::new(
                None,
                "localhost",
                &inner.id.cache_client_id(),
                "managed_identity",
                &[scope.as_str()],
            )
            .with_credential(&endpoint_fingerprint(&inner.endpoint)),
        );
        let fetched = inner
            .store
            .acquire(&key, options.bypasses_cache(), |_| async {
                Ok((self.fetch(&resource, &scope).await?, Vec::new()))
            })
            .await;
        // These endpoints are sent no client-request-id: there is none to report.
        fetched.map(|token| TokenResult {
            correlation_id: None,
            ..token
        })
    }

    /// Waits for cache writes still running in the background (the [`FileCache`](crate::FileCache) writes
    /// while the caller goes on to use the token); the first that failed since the last flush is the error.
    /// Call it before the program exits, or a fetched token may not be stored for the next run.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use identity_core::{FileCache, ManagedIdentityClient, ManagedIdentityEnvironment, ManagedIdentityId};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let host = emulator.start_managed_identity_host().await?;
    /// # let environment = ManagedIdentityEnvironment::from_vars(host.env(entra_emulator::ManagedIdentityEndpoint::Imds));
    /// # let dir = std::env::temp_dir().join(format!("identity-core-mi-flush-{}", uuid::Uuid::new_v4()));
    /// let app = ManagedIdentityClient::builder(ManagedIdentityId::SystemAssigned)
    /// #   .environment(environment)
    ///     .cache(Arc::new(FileCache::new(dir.join("token-cache.json"))))
    ///     .build()?;
    /// let token = app.acquire_token("https://graph.microsoft.com").await?;
    /// // ... call Graph with the token while the cache file is written ...
    /// app.flush().await?;
    /// assert!(dir.join("token-cache.json").exists());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn flush(&self) -> Result<(), crate::Error> {
        self.inner.store.flush().await
    }

    async fn fetch(&self, resource: &str, scope: &str) -> Result<CachedAccessToken, ManagedIdentityError> {
        let inner = &self.inner;
        let now = now_secs();
        let request = TokenRequest {
            resource,
            id: &inner.id,
            now,
        };
        let answer = match &inner.endpoint {
            Endpoint::Imds { url } => sources::imds(&inner.http, url, &request, inner.imds_retry).await?,
            Endpoint::AppService { url, secret } => {
                sources::app_service(&inner.http, url, secret, &request).await?
            }
            Endpoint::AzureMl {
                url,
                secret,
                default_client_id,
            } => sources::azure_ml(&inner.http, url, secret, default_client_id.as_deref(), &request).await?,
            Endpoint::AzureArc { url } => arc::arc(&inner.http, url, &inner.arc_token_dir, &request).await?,
            Endpoint::ServiceFabric { url, secret, .. } => {
                let Some(verifier) = inner.pinned.as_deref() else {
                    return Err(ManagedIdentityError::Unreachable {
                        platform: ManagedIdentitySource::ServiceFabric,
                        url: transport::shown_url(url),
                        reason: "no pinned HTTP client".into(),
                    });
                };
                service_fabric::service_fabric(&inner.http, verifier, url, secret, &request).await?
            }
        };
        // MSAL Python: a long-lived token without refresh_in is refreshed at half its lifetime.
        let refresh_in = answer
            .refresh_in
            .or_else(|| (answer.expires_in >= LONG_LIVED).then_some(answer.expires_in / 2));
        // The usual spelling is kept without allocating, as for Entra's answers (see `token.rs`).
        let token_type = if answer.token_type == "Bearer" {
            Cow::Borrowed("Bearer")
        } else {
            Cow::Owned(answer.token_type)
        };
        Ok(CachedAccessToken::new(
            SecretToken::new(answer.access_token),
            token_type,
            vec![scope.to_string()],
            now,
            answer.expires_in,
            None,
            refresh_in,
        ))
    }
}

/// The resource of a resource URI or of its `/.default` scope.
fn to_resource(value: &str) -> Result<String, ManagedIdentityError> {
    let trimmed = value.trim();
    let resource = trimmed
        .strip_suffix("/.default")
        .unwrap_or(trimmed)
        .trim_end_matches('/');
    let valid = !resource.is_empty()
        && !resource.contains(char::is_whitespace)
        && (url::Url::parse(resource).is_ok_and(|u| u.has_host()) || uuid::Uuid::parse_str(resource).is_ok());
    if valid {
        Ok(resource.to_string())
    } else {
        Err(ManagedIdentityError::InvalidResource {
            resource: value.chars().take(200).collect(),
        })
    }
}

/// Part of the cache key: tokens of different sources never mix. (Not the endpoint's port: App Service's changes
/// with restarts, and the tokens are the same identity's.)
fn endpoint_fingerprint(endpoint: &Endpoint) -> String {
    let text = endpoint.source().to_string();
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    source::hex(&digest.as_ref()[..8]).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_and_scopes() {
        assert_eq!(
            to_resource("https://graph.microsoft.com/.default").unwrap(),
            "https://graph.microsoft.com"
        );
        assert_eq!(
            to_resource(" https://graph.microsoft.com/ ").unwrap(),
            "https://graph.microsoft.com"
        );
        assert_eq!(
            to_resource("00000003-0000-0000-c000-000000000000").unwrap(),
            "00000003-0000-0000-c000-000000000000"
        );
        for bad in ["", "/.default", "graph", "https://a b"] {
            assert!(to_resource(bad).is_err(), "{bad}");
        }
    }
}
