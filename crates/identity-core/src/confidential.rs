//! Confidential clients (daemons, services): app-only tokens with the client credentials grant.

use std::sync::Arc;

use crate::authority::{Authority, Metadata};
use crate::cache::{AccessTokenKey, CacheKey, CachedAccessToken, TokenCache, now_secs};
use crate::core::{AcquireOptions, ClientCore};
use crate::credential::ClientCredential;
use crate::error::{ConfigError, Error, HttpError, Result};
use crate::http::{HttpClient, RequestContext};
use crate::secret::ClientSecret;
use crate::token::{EntraTokenResponse, TokenResult, normalise_scopes, validate_token_response};
use oauth2::basic::{BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse};
use oauth2::{AuthType, RequestTokenError, StandardRevocableToken, TokenUrl};

/// `client_assertion_type` of a JWT client assertion (RFC 7523).
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

type OAuthClient<HasTokenUrl> = oauth2::Client<
    BasicErrorResponse,
    EntraTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    HasTokenUrl,
>;

/// A confidential client application: a daemon or service that holds a credential.
///
/// Cheap to clone; clones share the cache, the discovered metadata and the HTTP client.
#[derive(Clone, Debug)]
pub struct ConfidentialClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    core: ClientCore,
    credential: ClientCredential,
    /// [`ClientCredential::fingerprint`], computed once: part of every token's cache key.
    credential_fingerprint: String,
    /// The cache key of the scopes last asked for, so that asking again (the usual case: one scope set per
    /// app) builds nothing and a cache hit allocates nothing.
    last_key: std::sync::RwLock<Option<Arc<ScopeKey>>>,
}

/// Scopes as a caller gave them, normalised, and the cache key of the token for them.
#[derive(Debug)]
struct ScopeKey {
    given: Vec<String>,
    scopes: Vec<String>,
    key: CacheKey,
}

impl ScopeKey {
    fn matches(&self, given: &[impl AsRef<str>]) -> bool {
        self.given.len() == given.len() && self.given.iter().zip(given).all(|(a, b)| a == b.as_ref())
    }
}

/// Builds a [`ConfidentialClient`].
#[derive(Debug)]
pub struct ConfidentialClientBuilder {
    client_id: String,
    authority: Authority,
    credential: Option<ClientCredential>,
    http: Option<HttpClient>,
    cache: Option<Arc<dyn TokenCache>>,
}

impl ConfidentialClientBuilder {
    /// Turns authority validation off (`false`) or on, the same as [`Authority::validated`]: off, any https
    /// host is trusted with the credential. Only for a private deployment.
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{Authority, ClientSecret, ConfidentialClient};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // A private deployment that Microsoft's instance discovery does not know.
    /// let authority = Authority::parse("https://login.contoso.example/contoso.onmicrosoft.com")?;
    /// assert!(authority.needs_validation());
    /// let app = ConfidentialClient::builder("00000000-0000-0000-0000-000000000001", authority)
    ///     .validate_authority(false)
    ///     .client_secret(ClientSecret::new("app secret"))
    ///     .build()?;
    /// assert!(!app.authority().needs_validation());
    /// # Ok(())
    /// # }
    /// ```
    pub fn validate_authority(mut self, validate: bool) -> Self {
        self.authority = self.authority.validated(validate);
        self
    }

    /// Authenticates with a client secret.
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{Authority, ClientSecret, ConfidentialClient};
    /// # use identity_core::{HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let daemon = emulator.app("daemon").ok_or("no daemon app")?;
    /// # let (authority, client_id, secret) = (emulator.authority(), daemon.app_id.clone(), daemon.secrets[0].value.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// let app = ConfidentialClient::builder(client_id, Authority::parse(&authority)?)
    ///     .client_secret(ClientSecret::new(secret))
    /// #   .http_client(http)
    ///     .build()?;
    /// let token = app.acquire_token_for_client(&["https://graph.microsoft.com/.default"]).await?;
    /// assert!(!token.access_token.secret().is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn client_secret(mut self, secret: ClientSecret) -> Self {
        self.credential = Some(ClientCredential::Secret(secret));
        self
    }

    /// Authenticates with any supported credential.
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::CertificateCredential;
    /// use identity_core::{Authority, ConfidentialClient};
    /// # use identity_core::{HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let files = emulator.certificate_files("daemon-certificate").ok_or("no certificate")?;
    /// # let (pfx_path, pfx_password) = (files.pfx_path, files.pfx_password);
    /// # let client_id = emulator.app("daemon-certificate").ok_or("no daemon-certificate app")?.app_id;
    /// # let authority = emulator.authority();
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// // The certificate whose public part is uploaded to the app registration, with its private key.
    /// let certificate = CertificateCredential::from_file(&pfx_path, Some(&pfx_password))?;
    /// let app = ConfidentialClient::builder(client_id, Authority::parse(&authority)?)
    ///     .credential(certificate)
    /// #   .http_client(http)
    ///     .build()?;
    /// app.acquire_token_for_client(&["https://graph.microsoft.com/.default"]).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn credential(mut self, credential: impl Into<ClientCredential>) -> Self {
        self.credential = Some(credential.into());
        self
    }

    /// Uses this HTTP client (default: one built from [`crate::HttpConfig::from_env`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{Authority, ClientSecret, ConfidentialClient, HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let daemon = emulator.app("daemon").ok_or("no daemon app")?;
    /// # let (authority, client_id, secret) = (emulator.authority(), daemon.app_id.clone(), daemon.secrets[0].value.clone());
    /// // Also trust the CA of a TLS-inspecting proxy (here, the emulator's), on top of the system's roots.
    /// let http = HttpClient::new(HttpConfig::from_env()?.with_extra_ca_pem(emulator.ca_pem()))?;
    /// let app = ConfidentialClient::builder(client_id, Authority::parse(&authority)?)
    ///     .client_secret(ClientSecret::new(secret))
    ///     .http_client(http)
    ///     .build()?;
    /// app.acquire_token_for_client(&["https://graph.microsoft.com/.default"]).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn http_client(mut self, http: HttpClient) -> Self {
        self.http = Some(http);
        self
    }

    /// Uses this token cache (default: a fresh [`crate::MemoryCache`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use identity_core::{Authority, ClientSecret, ConfidentialClient, MemoryCache, TokenCache, TokenSource};
    /// # use identity_core::{HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let daemon = emulator.app("daemon").ok_or("no daemon app")?;
    /// # let (authority, client_id, secret) = (emulator.authority(), daemon.app_id.clone(), daemon.secrets[0].value.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// let cache: Arc<dyn TokenCache> = Arc::new(MemoryCache::new());
    /// let build = || -> Result<ConfidentialClient, Box<dyn std::error::Error>> {
    ///     Ok(ConfidentialClient::builder(client_id.clone(), Authority::parse(&authority)?)
    ///         .client_secret(ClientSecret::new(secret.clone()))
    ///         .cache(cache.clone())
    /// #       .http_client(http.clone())
    ///         .build()?)
    /// };
    /// let (first, second) = (build()?, build()?);
    /// first.acquire_token_for_client(&["https://graph.microsoft.com/.default"]).await?;
    /// // The second client finds the first one's token in the shared cache.
    /// let token = second.acquire_token_for_client(&["https://graph.microsoft.com/.default"]).await?;
    /// assert_eq!(token.source, TokenSource::Cache);
    /// # Ok(())
    /// # }
    /// ```
    pub fn cache(mut self, cache: Arc<dyn TokenCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Validates the settings and builds the client. No request is sent until a token is asked for.
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{Authority, ClientSecret, ConfidentialClient, ConfigError};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let authority = Authority::parse("https://login.microsoftonline.com/contoso.onmicrosoft.com")?;
    /// let client_id = "00000000-0000-0000-0000-000000000001";
    /// let without_credential = ConfidentialClient::builder(client_id, authority.clone()).build();
    /// assert!(matches!(without_credential, Err(ConfigError::Empty { .. })));
    ///
    /// let app = ConfidentialClient::builder(client_id, authority)
    ///     .client_secret(ClientSecret::new("app secret"))
    ///     .build()?;
    /// assert_eq!(app.client_id(), client_id);
    /// # Ok(())
    /// # }
    /// ```
    pub fn build(self) -> Result<ConfidentialClient, ConfigError> {
        let credential = self.credential.ok_or(ConfigError::Empty {
            setting: "client credential",
        })?;
        if let ClientCredential::Secret(s) = &credential
            && s.secret().is_empty()
        {
            return Err(ConfigError::Empty {
                setting: "client secret",
            });
        }
        if !self.authority.tenant_kind().is_specific() {
            tracing::warn!(
                authority = %self.authority,
                "app-only tokens need a tenant-specific authority; the service will likely refuse common/organizations/consumers"
            );
        }
        let core = ClientCore::build(&self.client_id, self.authority, self.http, self.cache)?;
        Ok(ConfidentialClient {
            inner: Arc::new(Inner {
                core,
                credential_fingerprint: credential.fingerprint(),
                credential,
                last_key: std::sync::RwLock::new(None),
            }),
        })
    }
}

impl ConfidentialClient {
    /// Starts building a client for an application (client) id and an authority.
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{Authority, ClientSecret, ConfidentialClient};
    /// # use identity_core::{HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let daemon = emulator.app("daemon").ok_or("no daemon app")?;
    /// # let (authority, client_id, secret) = (emulator.authority(), daemon.app_id.clone(), daemon.secrets[0].value.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// let app = ConfidentialClient::builder(client_id, Authority::parse(&authority)?)
    ///     .client_secret(ClientSecret::new(secret))
    /// #   .http_client(http)
    ///     .build()?;
    /// let token = app.acquire_token_for_client(&["https://graph.microsoft.com/.default"]).await?;
    /// println!("token for {:?}, valid until {:?}", token.scopes, token.expires_on);
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder(client_id: impl Into<String>, authority: Authority) -> ConfidentialClientBuilder {
        ConfidentialClientBuilder {
            client_id: client_id.into(),
            authority,
            credential: None,
            http: None,
            cache: None,
        }
    }

    /// The application (client) id.
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{Authority, ClientSecret, ConfidentialClient};
    /// # use identity_core::{HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let daemon = emulator.app("daemon").ok_or("no daemon app")?;
    /// # let (authority, client_id, secret) = (emulator.authority(), daemon.app_id.clone(), daemon.secrets[0].value.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// let app = ConfidentialClient::builder(client_id, Authority::parse(&authority)?)
    ///     .client_secret(ClientSecret::new(secret))
    /// #   .http_client(http)
    ///     .build()?;
    /// assert_eq!(app.client_id(), daemon.app_id);
    /// # Ok(())
    /// # }
    /// ```
    pub fn client_id(&self) -> &str {
        &self.inner.core.client_id
    }

    /// The authority.
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{Authority, ClientSecret, ConfidentialClient};
    /// # use identity_core::{HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let daemon = emulator.app("daemon").ok_or("no daemon app")?;
    /// # let (authority, client_id, secret) = (emulator.authority(), daemon.app_id.clone(), daemon.secrets[0].value.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// let app = ConfidentialClient::builder(client_id, Authority::parse(&authority)?)
    ///     .client_secret(ClientSecret::new(secret))
    /// #   .http_client(http)
    ///     .build()?;
    /// assert_eq!(app.authority().to_string(), authority);
    /// assert!(app.authority().tenant_kind().is_specific());
    /// # Ok(())
    /// # }
    /// ```
    pub fn authority(&self) -> &Authority {
        &self.inner.core.authority
    }

    /// The HTTP client, to share with a [`crate::GraphClient`].
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::GraphClient;
    /// use identity_core::{Authority, ClientSecret, ConfidentialClient};
    /// # use identity_core::{HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let daemon = emulator.app("daemon").ok_or("no daemon app")?;
    /// # let (authority, client_id, secret) = (emulator.authority(), daemon.app_id.clone(), daemon.secrets[0].value.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// # let users_url = format!("{}/users", emulator.graph_base());
    /// let app = ConfidentialClient::builder(client_id, Authority::parse(&authority)?)
    ///     .client_secret(ClientSecret::new(secret))
    /// #   .http_client(http)
    ///     .build()?;
    /// let token = app.acquire_token_for_client(&["https://graph.microsoft.com/.default"]).await?;
    /// let graph = GraphClient::new(app.http_client().clone());
    /// let users = graph.get(&users_url, &token.access_token).await?;
    /// assert!(users["value"].is_array());
    /// # Ok(())
    /// # }
    /// ```
    pub fn http_client(&self) -> &HttpClient {
        &self.inner.core.http
    }

    /// The tenant's endpoints: for an authority with Entra's layout ([`Authority::has_entra_layout`]) derived
    /// without a request; otherwise from memory, then from the token cache (so a later run skips discovery),
    /// and only then from OIDC discovery (kept for a day).
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{Authority, ClientSecret, ConfidentialClient};
    /// # use identity_core::{HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let daemon = emulator.app("daemon").ok_or("no daemon app")?;
    /// # let (authority, client_id, secret) = (emulator.authority(), daemon.app_id.clone(), daemon.secrets[0].value.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// let app = ConfidentialClient::builder(client_id, Authority::parse(&authority)?)
    ///     .client_secret(ClientSecret::new(secret))
    /// #   .http_client(http)
    ///     .build()?;
    /// let metadata = app.metadata().await?;
    /// println!("tokens come from {}", metadata.token_endpoint);
    /// assert_eq!(metadata.token_endpoint.origin(), app.authority().origin());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn metadata(&self) -> Result<Arc<Metadata>> {
        self.inner.core.metadata().await
    }

    /// Waits for the cache writes still running in the background and reports the first that failed. With a
    /// store that writes behind ([`crate::FileCache`]) a new token is stored alongside the caller's next step
    /// (its Graph call) rather than before the token is returned: call this before the program exits, or the
    /// last token may not be stored (the file is never left half-written either way). A failed write is also
    /// logged when it happens; token acquisition itself never fails for it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use identity_core::{Authority, ClientSecret, ConfidentialClient, FileCache};
    /// # use identity_core::{HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let daemon = emulator.app("daemon").ok_or("no daemon app")?;
    /// # let (authority, client_id, secret) = (emulator.authority(), daemon.app_id.clone(), daemon.secrets[0].value.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// # let dir = std::env::temp_dir().join(format!("identity-core-flush-{}", uuid::Uuid::new_v4()));
    /// let app = ConfidentialClient::builder(client_id, Authority::parse(&authority)?)
    ///     .client_secret(ClientSecret::new(secret))
    ///     .cache(Arc::new(FileCache::new(dir.join("token-cache.json"))))
    /// #   .http_client(http)
    ///     .build()?;
    /// let token = app.acquire_token_for_client(&["https://graph.microsoft.com/.default"]).await?;
    /// // ... call Graph with the token while the cache file is written ...
    /// app.flush().await?;
    /// assert!(dir.join("token-cache.json").exists());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn flush(&self) -> Result<()> {
        self.inner.core.store.flush().await
    }

    /// An app-only token for `scopes` (for Graph: `https://graph.microsoft.com/.default`).
    ///
    /// Answers from the cache when it holds a token with more than five minutes left (and whose `refresh_in`
    /// has not passed); otherwise asks the identity provider, once, however many callers ask at the same time
    /// (and, with a shared store such as [`crate::FileCache`], however many processes). If an early refresh
    /// fails while the cached token is still valid, the cached token is returned.
    ///
    /// Tokens are cached per credential: a client configured with another secret or certificate is not served
    /// them.
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::TokenSource;
    /// use identity_core::{Authority, ClientSecret, ConfidentialClient};
    /// # use identity_core::{HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let daemon = emulator.app("daemon").ok_or("no daemon app")?;
    /// # let (authority, client_id, secret) = (emulator.authority(), daemon.app_id.clone(), daemon.secrets[0].value.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// let app = ConfidentialClient::builder(client_id, Authority::parse(&authority)?)
    ///     .client_secret(ClientSecret::new(secret))
    /// #   .http_client(http)
    ///     .build()?;
    /// let token = app.acquire_token_for_client(&["https://graph.microsoft.com/.default"]).await?;
    /// assert_eq!(token.source, TokenSource::IdentityProvider);
    /// // Until it nears expiry, the same token comes from the cache.
    /// let again = app.acquire_token_for_client(&["https://graph.microsoft.com/.default"]).await?;
    /// assert_eq!(again.source, TokenSource::Cache);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn acquire_token_for_client(&self, scopes: &[impl AsRef<str>]) -> Result<TokenResult> {
        self.acquire_token_for_client_with(scopes, AcquireOptions::default())
            .await
    }

    /// [`ConfidentialClient::acquire_token_for_client`] with options: `force_refresh` to replace a cached token
    /// the resource refused (a 401), `claims` to answer a resource's claims challenge (both bypass the cache).
    /// [`crate::GraphClient::get_with_token_recovery`] does this for a Graph call.
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{AcquireOptions, TokenSource};
    /// use identity_core::{Authority, ClientSecret, ConfidentialClient};
    /// # use identity_core::{HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let daemon = emulator.app("daemon").ok_or("no daemon app")?;
    /// # let (authority, client_id, secret) = (emulator.authority(), daemon.app_id.clone(), daemon.secrets[0].value.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// let app = ConfidentialClient::builder(client_id, Authority::parse(&authority)?)
    ///     .client_secret(ClientSecret::new(secret))
    /// #   .http_client(http)
    ///     .build()?;
    /// let scopes = ["https://graph.microsoft.com/.default"];
    /// let cached = app.acquire_token_for_client(&scopes).await?;
    /// // The resource refused `cached` with a 401: get a new one, bypassing the cache.
    /// let fresh = app
    ///     .acquire_token_for_client_with(&scopes, AcquireOptions::new().with_force_refresh(true))
    ///     .await?;
    /// assert_eq!(fresh.source, TokenSource::IdentityProvider);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn acquire_token_for_client_with(
        &self,
        scopes: &[impl AsRef<str>],
        options: AcquireOptions,
    ) -> Result<TokenResult> {
        let memo = self.scope_key(scopes)?;
        let (core, key, scopes) = (&self.inner.core, &memo.key, &memo.scopes);
        let claims = options.claims.as_deref();
        core.store
            .acquire(key, options.bypasses_cache(), |ctx| async move {
                let token = core
                    .with_endpoints(|metadata| self.request_token(metadata, scopes, claims, &ctx))
                    .await?;
                Ok((token, Vec::new()))
            })
            .await
    }

    /// The cache key for `scopes`: the last one built if the caller gives the same scopes again.
    fn scope_key(&self, given: &[impl AsRef<str>]) -> Result<Arc<ScopeKey>> {
        let last = self.inner.last_key.read().unwrap_or_else(|e| e.into_inner());
        if let Some(memo) = last.as_ref().filter(|memo| memo.matches(given)) {
            return Ok(Arc::clone(memo));
        }
        drop(last);
        let scopes = normalise_scopes(given)?;
        let core = &self.inner.core;
        let key = CacheKey::AccessToken(
            AccessTokenKey::new(
                None,
                &core.environment,
                &core.client_id,
                core.authority.tenant(),
                &scopes,
            )
            .with_credential(&self.inner.credential_fingerprint),
        );
        let memo = Arc::new(ScopeKey {
            given: given.iter().map(|s| s.as_ref().to_string()).collect(),
            scopes,
            key,
        });
        *self.inner.last_key.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(&memo));
        Ok(memo)
    }

    async fn request_token(
        &self,
        metadata: Arc<Metadata>,
        scopes: &[String],
        claims: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<CachedAccessToken> {
        let token_url = TokenUrl::from_url(metadata.token_endpoint.clone());
        let core = &self.inner.core;
        let client: OAuthClient<oauth2::EndpointSet> =
            oauth2::Client::new(oauth2::ClientId::new(core.client_id.clone()))
                .set_auth_type(AuthType::RequestBody)
                .set_token_uri(token_url);
        let mut assertion = None;
        let client = match &self.inner.credential {
            ClientCredential::Secret(secret) => {
                client.set_client_secret(oauth2::ClientSecret::new(secret.secret().to_string()))
            }
            ClientCredential::Certificate(certificate) => {
                // The audience is the token endpoint the assertion is sent to.
                let audience = metadata.token_endpoint.as_str();
                assertion = Some(
                    certificate
                        .assertion(&self.inner.core.client_id, audience)
                        .map_err(ConfigError::from)?,
                );
                client
            }
            ClientCredential::Federated(federated) => {
                // Read (or asked for) now, so a rotated token is the one sent.
                let token = federated.assertion().await.map_err(ConfigError::from)?;
                assertion = Some(token.secret().to_string());
                client
            }
        };
        let transport = core.http.oauth2_transport(ctx);
        let mut request = client
            .exchange_client_credentials()
            .add_scopes(scopes.iter().map(|s| oauth2::Scope::new(s.clone())));
        if let Some(assertion) = &assertion {
            request = request
                .add_extra_param("client_assertion_type", CLIENT_ASSERTION_TYPE)
                .add_extra_param("client_assertion", assertion.as_str());
        }
        if let Some(claims) = claims {
            // Without client capabilities to merge, MSAL sends the challenge's claims as they are.
            request = request.add_extra_param("claims", claims);
        }
        let response = request
            .request_async(&transport)
            .await
            .map_err(|e| token_request_error(e, metadata.token_endpoint.as_str()))?;
        validate_token_response(&response, metadata.token_endpoint.as_str())?;
        Ok(response.into_cached_access_token(scopes, now_secs()))
    }
}

/// Unwraps `oauth2`'s error: our adapter already produced typed errors for every non-success answer.
fn token_request_error(e: RequestTokenError<Error, BasicErrorResponse>, url: &str) -> Error {
    let invalid = |reason: String| {
        HttpError::InvalidResponse {
            url: url.to_string(),
            reason,
        }
        .into()
    };
    match e {
        RequestTokenError::Request(inner) => inner,
        // Only the path is quoted: a parse message could otherwise echo a field's value.
        RequestTokenError::Parse(err, _) => invalid(format!(
            "the token response does not parse (field '{}' is missing or malformed)",
            err.path()
        )),
        RequestTokenError::ServerResponse(err) => {
            invalid(format!("unexpected error answer: {}", err.error()))
        }
        RequestTokenError::Other(reason) => invalid(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_refuses_empty_values() {
        let authority =
            Authority::parse("https://login.microsoftonline.com/contoso.onmicrosoft.com").unwrap();
        let err = ConfidentialClient::builder(" ", authority.clone())
            .client_secret(ClientSecret::new("x"))
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("client id"));
        let err = ConfidentialClient::builder("id", authority.clone())
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("client credential"));
        let err = ConfidentialClient::builder("id", authority)
            .client_secret(ClientSecret::new(""))
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("client secret"));
    }
}
