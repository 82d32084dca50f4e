//! Public clients (apps that hold no secret, run by a user): the device-code flow, the username/password flow
//! (legacy), and silent acquisition from the cache with the account's refresh token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use url::Url;

use crate::account::Account;
use crate::authority::{Authority, Metadata, ensure_secure};
use crate::cache::{
    AccessTokenKey, AccountKey, CacheEntry, CacheKey, CacheRecords, CachedAccessToken, CachedIdToken,
    CachedRefreshToken, TokenCache, now_secs,
};
use crate::core::{AcquireOptions, ClientCore, is_not_found};
use crate::error::{ConfigError, Error, HttpError, Result, SignInError};
use crate::http::{HttpClient, RequestContext};
use crate::secret::{Password, SecretToken};
use crate::token::{EntraTokenResponse, TokenResult, TokenSource, normalise_scopes, parse_token_response};

/// Scopes every user sign-in asks for besides the caller's: an ID token (`openid`, `profile`) and a refresh
/// token (`offline_access`), so later runs are silent.
const OIDC_SCOPES: [&str; 3] = ["openid", "profile", "offline_access"];

const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// RFC 8628 §3.5: on `slow_down`, poll 5 seconds less often from then on.
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// The longest wait between two polls, whatever the service says: a user who has finished signing in should not
/// wait longer than this for the program to notice (an `interval` of a day would never poll before the code
/// expires).
pub const MAX_POLL_INTERVAL: Duration = Duration::from_secs(60);

/// The longest device-code lifetime believed (seconds); Entra's codes live 15 minutes. A larger `expires_in`
/// is a broken or hostile answer, and must not overflow the monotonic clock.
const MAX_DEVICE_CODE_LIFETIME: u64 = 24 * 3600;

/// A public client application: a tool or app run by a user, which holds no secret.
///
/// Cheap to clone; clones share the cache, the discovered metadata and the HTTP client.
#[derive(Clone, Debug)]
pub struct PublicClient {
    core: Arc<ClientCore>,
}

/// Builds a [`PublicClient`].
#[derive(Debug)]
pub struct PublicClientBuilder {
    client_id: String,
    authority: Authority,
    http: Option<HttpClient>,
    cache: Option<Arc<dyn TokenCache>>,
}

impl PublicClientBuilder {
    /// Turns authority validation off (`false`) or on, the same as [`Authority::validated`].
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{Authority, PublicClient};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // A private deployment that Microsoft's instance discovery does not know.
    /// let authority = Authority::parse("https://login.contoso.example/organizations")?;
    /// assert!(authority.needs_validation());
    /// let app = PublicClient::builder("00000000-0000-0000-0000-000000000002", authority)
    ///     .validate_authority(false)
    ///     .build()?;
    /// assert!(!app.authority().needs_validation());
    /// # Ok(())
    /// # }
    /// ```
    pub fn validate_authority(mut self, validate: bool) -> Self {
        self.authority = self.authority.validated(validate);
        self
    }

    /// Uses this HTTP client (default: one built from [`crate::HttpConfig::from_env`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{Authority, HttpClient, HttpConfig, PublicClient};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let app_registration = emulator.app("username-password").ok_or("no username-password app")?;
    /// # let (authority, client_id) = (emulator.authority(), app_registration.app_id.clone());
    /// // Also trust the CA of a TLS-inspecting proxy (here, the emulator's), on top of the system's roots.
    /// let http = HttpClient::new(HttpConfig::from_env()?.with_extra_ca_pem(emulator.ca_pem()))?;
    /// let app = PublicClient::builder(client_id, Authority::parse(&authority)?)
    ///     .http_client(http)
    ///     .build()?;
    /// app.metadata().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn http_client(mut self, http: HttpClient) -> Self {
        self.http = Some(http);
        self
    }

    /// Uses this token cache (default: a fresh [`crate::MemoryCache`], so nothing outlives the process).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use identity_core::{Authority, MemoryCache, Password, PublicClient, TokenCache};
    /// # use identity_core::{HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let app_registration = emulator.app("username-password").ok_or("no username-password app")?;
    /// # let (authority, client_id) = (emulator.authority(), app_registration.app_id.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// # let (username, password) = (entra_emulator::DEMO_USERNAME, Password::new(entra_emulator::DEMO_PASSWORD));
    /// let cache: Arc<dyn TokenCache> = Arc::new(MemoryCache::new());
    /// let build = || -> Result<PublicClient, Box<dyn std::error::Error>> {
    ///     Ok(PublicClient::builder(client_id.clone(), Authority::parse(&authority)?)
    ///         .cache(cache.clone())
    /// #       .http_client(http.clone())
    ///         .build()?)
    /// };
    /// let (first, second) = (build()?, build()?);
    /// first.acquire_token_by_username_password(username, &password, &["User.Read"]).await?;
    /// // The second client finds the account the first one signed in.
    /// assert!(second.account(username).await?.is_some());
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
    /// use identity_core::{Authority, ConfigError, PublicClient};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let authority = Authority::parse("https://login.microsoftonline.com/organizations")?;
    /// let without_client_id = PublicClient::builder("", authority.clone()).build();
    /// assert!(matches!(without_client_id, Err(ConfigError::Empty { .. })));
    ///
    /// let app = PublicClient::builder("00000000-0000-0000-0000-000000000002", authority).build()?;
    /// assert_eq!(app.authority().tenant(), "organizations");
    /// # Ok(())
    /// # }
    /// ```
    pub fn build(self) -> Result<PublicClient, ConfigError> {
        let core = ClientCore::build(&self.client_id, self.authority, self.http, self.cache)?;
        Ok(PublicClient { core: Arc::new(core) })
    }
}

/// A device-code sign-in in progress: show [`DeviceFlow::message`] (or the code and URI) to the user, then
/// pass it to [`PublicClient::acquire_token_by_device_flow`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DeviceFlow {
    /// The code the user types on the verification page.
    pub user_code: String,
    /// The page where the user signs in (`https://microsoft.com/devicelogin` for the real service).
    pub verification_uri: String,
    /// The service's own instructions, localized, ready to print.
    pub message: String,
    /// How long the code is valid for, from when it was issued.
    pub expires_in: Duration,
    /// How often to ask whether the user is done.
    pub interval: Duration,
    device_code: SecretToken,
    scopes: Vec<String>,
    issued_at: Instant,
    context: RequestContext,
}

impl DeviceFlow {
    /// When the code stops working, on this machine's monotonic clock.
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{Authority, PublicClient};
    /// # use identity_core::{HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder()
    /// #     .device_code_interval(1)
    /// #     .auto_approve_device_codes(entra_emulator::DEMO_USERNAME, std::time::Duration::ZERO)
    /// #     .start()
    /// #     .await?;
    /// # let app_registration = emulator.app("device-code").ok_or("no device-code app")?;
    /// # let (authority, client_id) = (emulator.authority(), app_registration.app_id.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// let app = PublicClient::builder(client_id, Authority::parse(&authority)?)
    /// #   .http_client(http)
    ///     .build()?;
    /// let flow = app.initiate_device_flow(&["User.Read"]).await?;
    /// let left = flow.expires_at().saturating_duration_since(std::time::Instant::now());
    /// println!("{} (the code works for {} more minutes)", flow.message, left.as_secs() / 60);
    /// assert!(left <= flow.expires_in);
    /// # Ok(())
    /// # }
    /// ```
    pub fn expires_at(&self) -> Instant {
        // The lifetime is capped when the answer is read; the check keeps a hand-built flow from panicking.
        self.issued_at
            .checked_add(self.expires_in)
            .unwrap_or(self.issued_at)
    }

    /// The `client-request-id` sent with the device code request and every poll.
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{Authority, PublicClient};
    /// # use identity_core::{HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder()
    /// #     .device_code_interval(1)
    /// #     .auto_approve_device_codes(entra_emulator::DEMO_USERNAME, std::time::Duration::ZERO)
    /// #     .start()
    /// #     .await?;
    /// # let app_registration = emulator.app("device-code").ok_or("no device-code app")?;
    /// # let (authority, client_id) = (emulator.authority(), app_registration.app_id.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// let app = PublicClient::builder(client_id, Authority::parse(&authority)?)
    /// #   .http_client(http)
    ///     .build()?;
    /// let flow = app.initiate_device_flow(&["User.Read"]).await?;
    /// // Quote it when asking Microsoft support about this sign-in.
    /// println!("client-request-id: {}", flow.correlation_id());
    /// assert!(!flow.correlation_id().is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn correlation_id(&self) -> &str {
        self.context.correlation_id()
    }
}

/// The device authorization response (RFC 8628 §3.2). The v1 endpoint spelt `verification_url`.
#[derive(Deserialize)]
struct DeviceCodeResponse {
    user_code: String,
    device_code: SecretToken,
    #[serde(alias = "verification_url")]
    verification_uri: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    interval: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<String>,
}

/// What user realm discovery says about a username's domain.
#[derive(Deserialize)]
struct UserRealm {
    #[serde(default)]
    account_type: String,
}

impl PublicClient {
    /// Starts building a client for an application (client) id and an authority. For user sign-ins the
    /// authority may be a tenant, `organizations`, `common` or `consumers`, as the app registration allows.
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{Authority, PublicClient};
    /// # use identity_core::{HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let app_registration = emulator.app("username-password").ok_or("no username-password app")?;
    /// # let (authority, client_id) = (emulator.authority(), app_registration.app_id.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// let app = PublicClient::builder(client_id, Authority::parse(&authority)?)
    /// #   .http_client(http)
    ///     .build()?;
    /// // Nobody has signed in yet.
    /// assert!(app.accounts().await?.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder(client_id: impl Into<String>, authority: Authority) -> PublicClientBuilder {
        PublicClientBuilder {
            client_id: client_id.into(),
            authority,
            http: None,
            cache: None,
        }
    }

    /// The application (client) id.
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{Authority, PublicClient};
    /// # use identity_core::{HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let app_registration = emulator.app("username-password").ok_or("no username-password app")?;
    /// # let (authority, client_id) = (emulator.authority(), app_registration.app_id.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// let app = PublicClient::builder(client_id, Authority::parse(&authority)?)
    /// #   .http_client(http)
    ///     .build()?;
    /// assert_eq!(app.client_id(), app_registration.app_id);
    /// # Ok(())
    /// # }
    /// ```
    pub fn client_id(&self) -> &str {
        &self.core.client_id
    }

    /// The authority.
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{Authority, PublicClient};
    /// # use identity_core::{HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let app_registration = emulator.app("username-password").ok_or("no username-password app")?;
    /// # let (authority, client_id) = (emulator.authority(), app_registration.app_id.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// let app = PublicClient::builder(client_id, Authority::parse(&authority)?)
    /// #   .http_client(http)
    ///     .build()?;
    /// assert_eq!(app.authority().to_string(), authority);
    /// # Ok(())
    /// # }
    /// ```
    pub fn authority(&self) -> &Authority {
        &self.core.authority
    }

    /// The HTTP client, to share with a [`crate::GraphClient`].
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{GraphClient, Password};
    /// use identity_core::{Authority, PublicClient};
    /// # use identity_core::{HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let app_registration = emulator.app("username-password").ok_or("no username-password app")?;
    /// # let (authority, client_id) = (emulator.authority(), app_registration.app_id.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// # let me_url = format!("{}/me", emulator.graph_base());
    /// let app = PublicClient::builder(client_id, Authority::parse(&authority)?)
    /// #   .http_client(http)
    ///     .build()?;
    /// # let (username, password) = (entra_emulator::DEMO_USERNAME, Password::new(entra_emulator::DEMO_PASSWORD));
    /// let token = app.acquire_token_by_username_password(username, &password, &["User.Read"]).await?;
    /// let graph = GraphClient::new(app.http_client().clone());
    /// let me = graph.get(&me_url, &token.access_token).await?;
    /// println!("signed in as {}", me["displayName"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn http_client(&self) -> &HttpClient {
        &self.core.http
    }

    /// The tenant's endpoints: derived from Entra's layout without a request where the authority has it
    /// ([`Authority::has_entra_layout`]), else from memory, the cache, then OIDC discovery.
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{Authority, PublicClient};
    /// # use identity_core::{HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let app_registration = emulator.app("username-password").ok_or("no username-password app")?;
    /// # let (authority, client_id) = (emulator.authority(), app_registration.app_id.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// let app = PublicClient::builder(client_id, Authority::parse(&authority)?)
    /// #   .http_client(http)
    ///     .build()?;
    /// let metadata = app.metadata().await?;
    /// assert!(metadata.device_authorization_endpoint.is_some());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn metadata(&self) -> Result<Arc<Metadata>> {
        self.core.metadata().await
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
    /// use identity_core::{Authority, FileCache, Password, PublicClient};
    /// # use identity_core::{HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let app_registration = emulator.app("username-password").ok_or("no username-password app")?;
    /// # let (authority, client_id) = (emulator.authority(), app_registration.app_id.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// # let dir = std::env::temp_dir().join(format!("identity-core-flush-{}", uuid::Uuid::new_v4()));
    /// # let (username, password) = (entra_emulator::DEMO_USERNAME, entra_emulator::DEMO_PASSWORD);
    /// let app = PublicClient::builder(client_id, Authority::parse(&authority)?)
    ///     .cache(Arc::new(FileCache::new(dir.join("token-cache.json"))))
    /// #   .http_client(http)
    ///     .build()?;
    /// app.acquire_token_by_username_password(username, &Password::new(password), &["User.Read"]).await?;
    /// app.flush().await?;
    /// assert!(dir.join("token-cache.json").exists());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn flush(&self) -> Result<()> {
        self.core.store.flush().await
    }

    /// The accounts signed in to this app at this authority's host, from the cache. A failing store is logged
    /// and reads as empty (the user is then asked to sign in), as token acquisition treats it.
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{Authority, PublicClient};
    /// # use identity_core::{HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let app_registration = emulator.app("username-password").ok_or("no username-password app")?;
    /// # let (authority, client_id) = (emulator.authority(), app_registration.app_id.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// let app = PublicClient::builder(client_id, Authority::parse(&authority)?)
    /// #   .http_client(http)
    ///     .build()?;
    /// # let (username, password) = (entra_emulator::DEMO_USERNAME, identity_core::Password::new(entra_emulator::DEMO_PASSWORD));
    /// # app.acquire_token_by_username_password(username, &password, &["User.Read"]).await?;
    /// for account in app.accounts().await? {
    ///     println!("{} is signed in", account.username);
    /// }
    /// # assert_eq!(app.accounts().await?.len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn accounts(&self) -> Result<Vec<Account>> {
        let entries = match self.core.store.cache.entries().await {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(error = %e, "token cache unavailable; no signed-in accounts known");
                Vec::new()
            }
        };
        let environment = &self.core.environment;
        let client_id = self.core.client_id.to_ascii_lowercase();
        let mut accounts: Vec<Account> = entries
            .into_iter()
            .filter_map(|(key, entry)| match (key, entry) {
                (CacheKey::Account(k), CacheEntry::Account(a))
                    if k.client_id == client_id && k.environment == *environment =>
                {
                    Some(Account::from_cached(environment, a))
                }
                _ => None,
            })
            .collect();
        accounts.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(accounts)
    }

    /// The cached account with this username (case-insensitive), if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{Authority, PublicClient};
    /// # use identity_core::{HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let app_registration = emulator.app("username-password").ok_or("no username-password app")?;
    /// # let (authority, client_id) = (emulator.authority(), app_registration.app_id.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// let app = PublicClient::builder(client_id, Authority::parse(&authority)?)
    /// #   .http_client(http)
    ///     .build()?;
    /// # let (username, password) = (entra_emulator::DEMO_USERNAME, identity_core::Password::new(entra_emulator::DEMO_PASSWORD));
    /// # app.acquire_token_by_username_password(username, &password, &["User.Read"]).await?;
    /// let account = app.account("debrab@contoso.onmicrosoft.com").await?;
    /// assert!(account.is_some(), "the user signed in before");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn account(&self, username: &str) -> Result<Option<Account>> {
        let username = username.trim();
        Ok(self
            .accounts()
            .await?
            .into_iter()
            .find(|a| a.username.eq_ignore_ascii_case(username)))
    }

    /// Forgets an account: its refresh token, ID token, account record and access tokens.
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{Authority, PublicClient};
    /// # use identity_core::{HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let app_registration = emulator.app("username-password").ok_or("no username-password app")?;
    /// # let (authority, client_id) = (emulator.authority(), app_registration.app_id.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// let app = PublicClient::builder(client_id, Authority::parse(&authority)?)
    /// #   .http_client(http)
    ///     .build()?;
    /// # let (username, password) = (entra_emulator::DEMO_USERNAME, identity_core::Password::new(entra_emulator::DEMO_PASSWORD));
    /// # app.acquire_token_by_username_password(username, &password, &["User.Read"]).await?;
    /// // Sign out.
    /// if let Some(account) = app.account(username).await? {
    ///     app.remove_account(&account).await?;
    /// }
    /// assert!(app.accounts().await?.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn remove_account(&self, account: &Account) -> Result<()> {
        let account_key = self.account_key(account);
        let cache = &self.core.store.cache;
        for (key, _) in cache.entries().await? {
            if let CacheKey::AccessToken(k) = &key
                && k.home_account_id.as_deref() == Some(account_key.home_account_id.as_str())
                && k.client_id == account_key.client_id
            {
                cache.remove(&key).await?;
            }
        }
        for key in [
            CacheKey::RefreshToken(account_key.clone()),
            CacheKey::IdToken(account_key.clone()),
            CacheKey::Account(account_key),
        ] {
            cache.remove(&key).await?;
        }
        Ok(())
    }

    /// A token for `account` without user interaction: the cached access token while it has more than five
    /// minutes left (and `refresh_in` has not passed), else a new one bought with the account's refresh token.
    ///
    /// `Ok(None)` means there is nothing to be silent with (no usable access token and no refresh token): sign
    /// the user in. An `Err` whose [`crate::ServiceError::requires_sign_in`] is true means the refresh token was
    /// refused (expired, revoked, password changed, new consent needed): sign the user in again.
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{Authority, PublicClient};
    /// # use identity_core::{HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let app_registration = emulator.app("username-password").ok_or("no username-password app")?;
    /// # let (authority, client_id) = (emulator.authority(), app_registration.app_id.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// let app = PublicClient::builder(client_id, Authority::parse(&authority)?)
    /// #   .http_client(http)
    ///     .build()?;
    /// # let (username, password) = (entra_emulator::DEMO_USERNAME, identity_core::Password::new(entra_emulator::DEMO_PASSWORD));
    /// # app.acquire_token_by_username_password(username, &password, &["User.Read"]).await?;
    /// let scopes = ["User.Read"];
    /// let token = match app.account(username).await? {
    ///     Some(account) => app.acquire_token_silent(&account, &scopes).await?,
    ///     None => None,
    /// };
    /// let token = match token {
    ///     Some(token) => token,
    ///     // Nothing to be silent with: sign the user in.
    ///     None => app.acquire_token_by_username_password(username, &password, &scopes).await?,
    /// };
    /// # assert_eq!(token.source, identity_core::TokenSource::Cache);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn acquire_token_silent(
        &self,
        account: &Account,
        scopes: &[impl AsRef<str>],
    ) -> Result<Option<TokenResult>> {
        self.acquire_token_silent_with(account, scopes, AcquireOptions::default())
            .await
    }

    /// [`PublicClient::acquire_token_silent`] with options: `force_refresh` to replace a cached token the
    /// resource refused (a 401), `claims` to answer a claims challenge; both skip the cached access token and
    /// use the refresh token. `Ok(None)` then means there is no refresh token: sign the user in.
    /// [`crate::GraphClient::get_with_token_recovery`] does this for a Graph call.
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{AcquireOptions, TokenSource};
    /// use identity_core::{Authority, PublicClient};
    /// # use identity_core::{HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let app_registration = emulator.app("username-password").ok_or("no username-password app")?;
    /// # let (authority, client_id) = (emulator.authority(), app_registration.app_id.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// let app = PublicClient::builder(client_id, Authority::parse(&authority)?)
    /// #   .http_client(http)
    ///     .build()?;
    /// # let (username, password) = (entra_emulator::DEMO_USERNAME, identity_core::Password::new(entra_emulator::DEMO_PASSWORD));
    /// # app.acquire_token_by_username_password(username, &password, &["User.Read"]).await?;
    /// let account = app.account(username).await?.ok_or("sign in first")?;
    /// // The resource refused the cached token with a 401: redeem the refresh token for a new one.
    /// let options = AcquireOptions::new().with_force_refresh(true);
    /// let fresh = app.acquire_token_silent_with(&account, &["User.Read"], options).await?;
    /// assert_eq!(fresh.map(|t| t.source), Some(TokenSource::IdentityProvider));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn acquire_token_silent_with(
        &self,
        account: &Account,
        scopes: &[impl AsRef<str>],
        options: AcquireOptions,
    ) -> Result<Option<TokenResult>> {
        let scopes = user_scopes(scopes)?;
        let key = self.access_token_key(account, &scopes);
        let now = now_secs();
        let bypass_cache = options.bypasses_cache();
        let cached = self
            .core
            .store
            .cached_access_token(&key)
            .await
            .filter(|_| !bypass_cache);
        if let Some(hit) = cached.clone().filter(|t| t.is_fresh(now)) {
            return Ok(Some(self.result(hit, TokenSource::Cache, None, account.clone())));
        }
        if self.refresh_token(account).await.is_none() {
            return Ok(cached
                .filter(|t| t.is_usable(now))
                .map(|t| self.result(t, TokenSource::Cache, None, account.clone())));
        }
        let claims = options.claims.as_deref();
        let result = self
            .core
            .store
            .acquire(&key, bypass_cache, |ctx| async move {
                // Read again: another task or process may have rotated it while we waited for the lock.
                let refresh_token = self.refresh_token(account).await.ok_or_else(|| {
                    SignInError::NoAccount("the refresh token disappeared from the cache".into())
                })?;
                let mut grant = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token.secret()),
                ];
                if let Some(claims) = claims {
                    grant.push(("claims", claims));
                }
                let response = self.redeem(&ctx, &grant, &scopes).await?;
                let (_, entry, records) = self.records(response, &scopes, Some(&account.username))?;
                Ok((entry, records))
            })
            .await?;
        Ok(Some(result.with_account(account.clone())))
    }

    /// Starts the device-code flow: asks the service for a code for `scopes` (plus `openid profile
    /// offline_access`). Show the returned [`DeviceFlow::message`] to the user, then call
    /// [`PublicClient::acquire_token_by_device_flow`].
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{Authority, PublicClient};
    /// # use identity_core::{HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder()
    /// #     .device_code_interval(1)
    /// #     .auto_approve_device_codes(entra_emulator::DEMO_USERNAME, std::time::Duration::ZERO)
    /// #     .start()
    /// #     .await?;
    /// # let app_registration = emulator.app("device-code").ok_or("no device-code app")?;
    /// # let (authority, client_id) = (emulator.authority(), app_registration.app_id.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// let app = PublicClient::builder(client_id, Authority::parse(&authority)?)
    /// #   .http_client(http)
    ///     .build()?;
    /// let flow = app.initiate_device_flow(&["User.Read"]).await?;
    /// // "To sign in, use a web browser to open the page ... and enter the code ... to authenticate."
    /// println!("{}", flow.message);
    /// # assert!(flow.message.contains(&flow.user_code));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn initiate_device_flow(&self, scopes: &[impl AsRef<str>]) -> Result<DeviceFlow> {
        let scopes = user_scopes(scopes)?;
        let context = RequestContext::new();
        let scope = with_oidc_scopes(&scopes);
        let (scope, context_ref) = (&scope, &context);
        let (endpoint, body) = self
            .core
            .with_endpoints(|metadata| async move {
                let endpoint = metadata
                    .device_authorization_endpoint
                    .clone()
                    .ok_or(SignInError::NoDeviceCodeEndpoint)?;
                let body = self
                    .core
                    .http
                    .post_identity_form(
                        endpoint.as_str(),
                        &[("client_id", &self.core.client_id), ("scope", scope)],
                        context_ref,
                    )
                    .await?;
                Ok((endpoint, body))
            })
            .await?;
        let issued_at = Instant::now();
        let invalid = |reason: String| HttpError::InvalidResponse {
            url: endpoint.to_string(),
            reason,
        };
        let response: DeviceCodeResponse =
            crate::json::parse_json(&body, endpoint.as_str(), "device authorization response")?;
        if response.user_code.trim().is_empty() || response.device_code.secret().is_empty() {
            return Err(invalid("the user_code or device_code is empty".into()).into());
        }
        let page = Url::parse(&response.verification_uri)
            .map_err(|e| invalid(format!("verification_uri is not a URL: {e}")))?;
        ensure_secure(&page).map_err(|e| invalid(format!("verification_uri: {e}")))?;
        // RFC 8628 defaults: 5 s between polls. The lifetime default is the service's documented 15 minutes.
        let expires_in = Duration::from_secs(
            seconds_field(response.expires_in.as_ref())
                .unwrap_or(900)
                .min(MAX_DEVICE_CODE_LIFETIME),
        );
        let interval = poll_interval(
            Duration::from_secs(seconds_field(response.interval.as_ref()).unwrap_or(5).max(1)),
            expires_in,
        );
        let message = response.message.filter(|m| !m.trim().is_empty()).unwrap_or_else(|| {
            format!(
                "To sign in, use a web browser to open the page {} and enter the code {} to authenticate.",
                response.verification_uri, response.user_code
            )
        });
        Ok(DeviceFlow {
            user_code: response.user_code,
            verification_uri: response.verification_uri,
            message,
            expires_in,
            interval,
            device_code: response.device_code,
            scopes,
            issued_at,
            context,
        })
    }

    /// Waits for the user to finish the device-code sign-in, polling every `interval` (5 s longer after each
    /// `slow_down`, never more than [`MAX_POLL_INTERVAL`]), and caches the account, refresh token and access
    /// token. A 429 (throttled) poll waits for its `Retry-After` and polls again while the code is valid.
    ///
    /// Stops with the service's error on `authorization_declined`, `bad_verification_code`, `expired_token` or
    /// anything but `authorization_pending`/`slow_down`, and with [`SignInError::DeviceCodeExpired`] once the
    /// code's lifetime has passed on this machine's clock. Dropping the future (Ctrl-C) stops polling; the cache
    /// is written only once a token has arrived, account and refresh token first, so it is never left
    /// half-written.
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{Authority, PublicClient};
    /// # use identity_core::{HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder()
    /// #     .device_code_interval(1)
    /// #     .auto_approve_device_codes(entra_emulator::DEMO_USERNAME, std::time::Duration::ZERO)
    /// #     .start()
    /// #     .await?;
    /// # let app_registration = emulator.app("device-code").ok_or("no device-code app")?;
    /// # let (authority, client_id) = (emulator.authority(), app_registration.app_id.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// let app = PublicClient::builder(client_id, Authority::parse(&authority)?)
    /// #   .http_client(http)
    ///     .build()?;
    /// let flow = app.initiate_device_flow(&["User.Read"]).await?;
    /// println!("{}", flow.message);
    /// // Returns once the user has signed in on another device (here the emulator approves at once).
    /// let token = app.acquire_token_by_device_flow(&flow).await?;
    /// let account = token.account.ok_or("no account")?;
    /// println!("signed in as {}", account.username);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn acquire_token_by_device_flow(&self, flow: &DeviceFlow) -> Result<TokenResult> {
        let deadline = flow.expires_at();
        let mut interval = capped_interval(flow.interval, flow.expires_in);
        let mut wait = interval;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(SignInError::DeviceCodeExpired {
                    after: flow.expires_in,
                }
                .into());
            }
            tokio::time::sleep(wait.min(deadline - now)).await;
            wait = interval;
            if Instant::now() >= deadline {
                continue;
            }
            let form = [
                ("grant_type", DEVICE_CODE_GRANT),
                ("client_id", self.core.client_id.as_str()),
                ("device_code", flow.device_code.secret()),
                ("client_info", "1"),
            ];
            let poll = self
                .core
                .with_endpoints(|metadata| {
                    let form = &form;
                    async move {
                        let body = self
                            .core
                            .http
                            .post_identity_form(metadata.token_endpoint.as_str(), form, &flow.context)
                            .await?;
                        Ok((metadata, body))
                    }
                })
                .await;
            match poll {
                Ok((metadata, body)) => {
                    let response = parse_token_response(&body, metadata.token_endpoint.as_str())?;
                    let (account, entry) = self.store(response, &flow.scopes, None).await?;
                    return Ok(self.result(
                        entry,
                        TokenSource::IdentityProvider,
                        Some(flow.correlation_id().to_string()),
                        account,
                    ));
                }
                Err(Error::Service(e)) if e.error == "authorization_pending" => {
                    tracing::debug!("device code: waiting for the user");
                }
                Err(Error::Service(e)) if e.error == "slow_down" => {
                    interval = capped_interval(interval + SLOW_DOWN_STEP, flow.expires_in);
                    wait = interval;
                    tracing::debug!(
                        interval_s = interval.as_secs(),
                        "device code: slow_down, polling less often"
                    );
                }
                Err(e) if throttled(&e).is_some() => {
                    // Throttling is not the end of the sign-in: the code is still valid, so wait as asked.
                    wait = throttled(&e).flatten().unwrap_or(interval).max(interval);
                    tracing::info!(
                        wait_s = wait.as_secs(),
                        "device code: the service is throttling polls; waiting before the next one"
                    );
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The username/password flow (ROPC). **Legacy**: it cannot do MFA, Conditional Access, federated or
    /// personal accounts, and it hands the password to this program. Prefer the device-code flow.
    ///
    /// Asks user realm discovery first: a `Managed` account goes ahead with the password grant, a `Federated`
    /// one stops with [`SignInError::FederatedAccount`], anything else with [`SignInError::UnknownAccount`]. The
    /// account, refresh token and access token are cached, so later runs are silent.
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::Password;
    /// use identity_core::{Authority, PublicClient};
    /// # use identity_core::{HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let app_registration = emulator.app("username-password").ok_or("no username-password app")?;
    /// # let (authority, client_id) = (emulator.authority(), app_registration.app_id.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// let app = PublicClient::builder(client_id, Authority::parse(&authority)?)
    /// #   .http_client(http)
    ///     .build()?;
    /// # let (username, password) = (entra_emulator::DEMO_USERNAME, entra_emulator::DEMO_PASSWORD);
    /// let password = Password::new(password);
    /// let token = app.acquire_token_by_username_password(username, &password, &["User.Read"]).await?;
    /// assert_eq!(token.account.map(|a| a.username.to_lowercase()), Some(username.to_lowercase()));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn acquire_token_by_username_password(
        &self,
        username: &str,
        password: &Password,
        scopes: &[impl AsRef<str>],
    ) -> Result<TokenResult> {
        let scopes = user_scopes(scopes)?;
        let username = username.trim();
        let Some((_, domain)) = username
            .rsplit_once('@')
            .filter(|(user, domain)| !user.is_empty() && !domain.is_empty())
        else {
            return Err(ConfigError::InvalidUsername.into());
        };
        if password.secret().is_empty() {
            return Err(ConfigError::Empty { setting: "password" }.into());
        }
        if password.secret().trim() != password.secret() {
            tracing::warn!(
                "the password starts or ends with spaces, which the username/password flow does not support"
            );
        }
        let context = RequestContext::new();
        // Discovery (and authority validation) first: the username goes only to a validated authority.
        self.metadata().await?;
        self.check_user_realm(username, domain, &context).await?;
        let response = self
            .redeem(
                &context,
                &[
                    ("grant_type", "password"),
                    ("username", username),
                    ("password", password.secret()),
                ],
                &scopes,
            )
            .await?;
        let (account, entry) = self.store(response, &scopes, Some(username)).await?;
        Ok(self.result(
            entry,
            TokenSource::IdentityProvider,
            Some(context.correlation_id().to_string()),
            account,
        ))
    }

    /// The URL an administrator opens to grant consent for this app in the tenant (for AADSTS65001).
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{Authority, PublicClient};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let authority = Authority::parse("https://login.microsoftonline.com/contoso.onmicrosoft.com")?;
    /// let client_id = "00000000-0000-0000-0000-000000000002";
    /// let app = PublicClient::builder(client_id, authority).build()?;
    /// assert_eq!(
    ///     app.admin_consent_url(),
    ///     format!("https://login.microsoftonline.com/contoso.onmicrosoft.com/adminconsent?client_id={client_id}")
    /// );
    /// # Ok(())
    /// # }
    /// ```
    pub fn admin_consent_url(&self) -> String {
        let authority = &self.core.authority;
        let mut url = format!("{}/{}/adminconsent", authority.host_url(), authority.tenant());
        url.push_str("?client_id=");
        url.push_str(
            &url::form_urlencoded::byte_serialize(self.core.client_id.as_bytes()).collect::<String>(),
        );
        url
    }

    /// `GET https://<host>/common/userrealm/<username>`: is the account managed by Entra ID, federated, or
    /// unknown? A host without the endpoint (404, whatever its body) is treated as managed, as MSAL does.
    async fn check_user_realm(&self, username: &str, domain: &str, context: &RequestContext) -> Result<()> {
        let url = format!(
            "{}/common/userrealm/{}?api-version=1.0",
            self.core.authority.host_url(),
            path_segment(username)
        );
        let body = match self.core.http.get_identity_json(&url, context).await {
            Ok(body) => body,
            Err(e) if is_not_found(&e) => {
                // Whatever the 404's body (Entra's JSON error or a plain page), as MSAL does.
                tracing::debug!("no user realm endpoint at this host; trying the password grant directly");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let realm: UserRealm = crate::json::parse_json(&body, &url, "user realm answer")?;
        match realm.account_type.as_str() {
            "Managed" => Ok(()),
            "Federated" => Err(SignInError::FederatedAccount {
                domain: domain.to_string(),
            }
            .into()),
            other => Err(SignInError::UnknownAccount {
                domain: domain.to_string(),
                account_type: if other.is_empty() {
                    "none".into()
                } else {
                    other.to_string()
                },
            }
            .into()),
        }
    }

    /// Posts a user-token grant (`grant` holds the grant type and its credential) to the token endpoint.
    pub(crate) async fn redeem(
        &self,
        context: &RequestContext,
        grant: &[(&str, &str)],
        scopes: &[String],
    ) -> Result<EntraTokenResponse> {
        let scope = with_oidc_scopes(scopes);
        let mut form: Vec<(&str, &str)> = grant.to_vec();
        form.extend([
            ("client_id", self.core.client_id.as_str()),
            ("scope", scope.as_str()),
            ("client_info", "1"),
        ]);
        let form = &form;
        self.core
            .with_endpoints(|metadata| async move {
                let token_url = metadata.token_endpoint.as_str();
                let body = self
                    .core
                    .http
                    .post_identity_form(token_url, form, context)
                    .await?;
                Ok(parse_token_response(&body, token_url)?)
            })
            .await
    }

    /// The records of a user-token response: the account, its ID token and refresh token (to be stored before
    /// the access token, which is returned apart). The file store writes them all in one step; a store that
    /// writes one by one stores the account records first, so an interrupted run leaves at worst an account
    /// without tokens, which the next run simply signs in again.
    fn records(
        &self,
        mut response: EntraTokenResponse,
        scopes: &[String],
        fallback_username: Option<&str>,
    ) -> Result<(Account, CachedAccessToken, CacheRecords)> {
        let environment = self.core.environment.clone();
        let account = Account::from_response(
            &environment,
            response.client_info.as_deref(),
            response.id_token.as_ref().map(SecretToken::secret),
            fallback_username,
        )
        .map_err(SignInError::NoAccount)?;
        let account_key = self.account_key(&account);
        let now = now_secs();
        let mut records = vec![(
            CacheKey::Account(account_key.clone()),
            CacheEntry::Account(account.to_cached()),
        )];
        if let Some(id_token) = response.id_token.take() {
            records.push((
                CacheKey::IdToken(account_key.clone()),
                CacheEntry::IdToken(CachedIdToken { id_token }),
            ));
        }
        if let Some(refresh_token) = response.refresh_token.take() {
            let entry = CachedRefreshToken {
                refresh_token: SecretToken::new(refresh_token.into_secret()),
                last_modified: now,
            };
            records.push((
                CacheKey::RefreshToken(account_key),
                CacheEntry::RefreshToken(entry),
            ));
        }
        let entry = response.into_cached_access_token(scopes, now);
        Ok((account, entry, records))
    }

    /// Caches a sign-in's records and access token (silent acquisition leaves the access token to the
    /// single-flight gate).
    pub(crate) async fn store(
        &self,
        response: EntraTokenResponse,
        scopes: &[String],
        fallback_username: Option<&str>,
    ) -> Result<(Account, CachedAccessToken)> {
        let (account, entry, mut records) = self.records(response, scopes, fallback_username)?;
        let key = self.access_token_key(&account, scopes);
        records.push((key, CacheEntry::AccessToken(entry.clone())));
        self.core.store.put_all(records).await;
        Ok((account, entry))
    }

    pub(crate) fn result(
        &self,
        entry: CachedAccessToken,
        source: TokenSource,
        correlation_id: Option<String>,
        account: Account,
    ) -> TokenResult {
        TokenResult::from_cached(entry, source, correlation_id).with_account(account)
    }

    async fn refresh_token(&self, account: &Account) -> Option<SecretToken> {
        match self
            .core
            .store
            .get(&CacheKey::RefreshToken(self.account_key(account)))
            .await
        {
            Some(CacheEntry::RefreshToken(rt)) => Some(rt.refresh_token),
            _ => None,
        }
    }

    fn account_key(&self, account: &Account) -> AccountKey {
        AccountKey::new(
            &account.home_account_id,
            &self.core.environment,
            &self.core.client_id,
        )
    }

    /// Access tokens of user flows are keyed by the scopes asked for (without the OIDC ones), in the account's
    /// tenant.
    fn access_token_key(&self, account: &Account, scopes: &[String]) -> CacheKey {
        CacheKey::AccessToken(AccessTokenKey::new(
            Some(&account.home_account_id),
            &self.core.environment,
            &self.core.client_id,
            &account.realm,
            scopes,
        ))
    }
}

/// The caller's scopes, normalised, without the OIDC scopes (always added on the wire).
pub(crate) fn user_scopes(scopes: &[impl AsRef<str>]) -> Result<Vec<String>, ConfigError> {
    let scopes: Vec<String> = normalise_scopes(scopes)?
        .into_iter()
        .filter(|s| !OIDC_SCOPES.iter().any(|o| o.eq_ignore_ascii_case(s)))
        .collect();
    if scopes.is_empty() {
        // Only OIDC scopes: ask for the user's basic profile, as the service does by default.
        return Ok(vec!["User.Read".to_string()]);
    }
    Ok(scopes)
}

pub(crate) fn with_oidc_scopes(scopes: &[String]) -> String {
    let mut all: Vec<&str> = scopes.iter().map(String::as_str).collect();
    all.extend(OIDC_SCOPES);
    all.join(" ")
}

/// A poll interval capped at [`MAX_POLL_INTERVAL`] and at the code's lifetime (at least a second).
fn capped_interval(asked: Duration, lifetime: Duration) -> Duration {
    asked
        .min(MAX_POLL_INTERVAL)
        .min(lifetime)
        .max(Duration::from_secs(1))
}

/// The service's poll interval, capped (and said, once per sign-in, when it is).
fn poll_interval(asked: Duration, lifetime: Duration) -> Duration {
    let capped = capped_interval(asked, lifetime);
    if capped < asked {
        tracing::warn!(
            asked_s = asked.as_secs(),
            polling_every_s = capped.as_secs(),
            "the device-code poll interval the service asked for is longer than {} s or the code's lifetime; polling every {} s",
            MAX_POLL_INTERVAL.as_secs(),
            capped.as_secs()
        );
    }
    capped
}

/// `Some(Retry-After)` for a throttled (429) answer.
fn throttled(error: &Error) -> Option<Option<Duration>> {
    match error {
        Error::Service(e) if e.status == 429 => Some(e.retry_after),
        Error::Http(HttpError::UnexpectedStatus {
            status: 429,
            retry_after,
            ..
        }) => Some(*retry_after),
        _ => None,
    }
}

/// A username as one URL path segment, as MSAL sends it (`@` as is), with what would end or split the segment
/// escaped: only RFC 3986 path characters are kept.
fn path_segment(value: &str) -> String {
    const KEPT: &[u8] = b"-._~!$&'()*+,;=:@";
    let mut out = String::with_capacity(value.len());
    for &byte in value.as_bytes() {
        if byte.is_ascii_alphanumeric() || KEPT.contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `expires_in`/`interval` as numbers or numeric strings (the v1 endpoint sent strings).
fn seconds_field(value: Option<&serde_json::Value>) -> Option<u64> {
    match value? {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oidc_scopes_are_added_on_the_wire_not_in_the_key() {
        let scopes = user_scopes(&["User.Read openid", "offline_access"]).unwrap();
        assert_eq!(scopes, ["User.Read"]);
        assert_eq!(
            with_oidc_scopes(&scopes),
            "User.Read openid profile offline_access"
        );
        assert_eq!(user_scopes(&["openid"]).unwrap(), ["User.Read"]);
        assert!(matches!(user_scopes(&[" "]), Err(ConfigError::NoScopes)));
    }

    #[test]
    fn usernames_keep_their_at_sign_in_the_path() {
        assert_eq!(path_segment("adele@contoso.com"), "adele@contoso.com");
        assert_eq!(path_segment("o'neil+x@contoso.com"), "o'neil+x@contoso.com");
        assert_eq!(path_segment("a b#c?d/e%f@x"), "a%20b%23c%3Fd%2Fe%25f@x");
        assert_eq!(path_segment("é@x"), "%C3%A9@x");
    }

    #[test]
    fn poll_intervals_are_capped() {
        let day = Duration::from_secs(86_400);
        assert_eq!(poll_interval(day, Duration::from_secs(900)), MAX_POLL_INTERVAL);
        assert_eq!(
            poll_interval(day, Duration::from_secs(20)),
            Duration::from_secs(20)
        );
        assert_eq!(
            poll_interval(Duration::from_secs(5), Duration::from_secs(900)),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn lifetimes_may_be_strings() {
        let v = serde_json::json!("900");
        assert_eq!(seconds_field(Some(&v)), Some(900));
        assert_eq!(seconds_field(Some(&serde_json::json!(5))), Some(5));
        assert_eq!(seconds_field(Some(&serde_json::json!(-1))), None);
        assert_eq!(seconds_field(None), None);
    }
}
