//! Confidential clients (daemons, services): app-only tokens with the client credentials grant.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use oauth2::basic::{BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse};
use oauth2::{AuthType, RequestTokenError, StandardRevocableToken, TokenUrl};
use tokio::sync::OnceCell;

use crate::authority::{Authority, Metadata};
use crate::cache::{AccessTokenKey, CachedAccessToken, MemoryCache, TokenCache, now_secs};
use crate::credential::ClientCredential;
use crate::error::{ConfigError, Error, HttpError, Result};
use crate::http::{HttpClient, HttpConfig, RequestContext};
use crate::secret::{AccessToken, ClientSecret};
use crate::token::{EntraTokenResponse, TokenResult, TokenSource};

/// `client_assertion_type` of a JWT client assertion (RFC 7523).
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Lifetime assumed when the service omits `expires_in` (as MSAL does).
const DEFAULT_EXPIRES_IN: u64 = 600;

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
    client_id: String,
    authority: Authority,
    credential: ClientCredential,
    http: HttpClient,
    cache: Arc<dyn TokenCache>,
    metadata: OnceCell<Arc<Metadata>>,
    /// One gate per cache key, so concurrent callers on a cold cache cause a single request.
    in_flight: Mutex<HashMap<AccessTokenKey, Arc<tokio::sync::Mutex<()>>>>,
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
    /// Authenticates with a client secret.
    pub fn client_secret(mut self, secret: ClientSecret) -> Self {
        self.credential = Some(ClientCredential::Secret(secret));
        self
    }

    /// Authenticates with any supported credential.
    pub fn credential(mut self, credential: impl Into<ClientCredential>) -> Self {
        self.credential = Some(credential.into());
        self
    }

    /// Uses this HTTP client (default: one built from [`HttpConfig::from_env`]).
    pub fn http_client(mut self, http: HttpClient) -> Self {
        self.http = Some(http);
        self
    }

    /// Uses this token cache (default: a fresh [`MemoryCache`]).
    pub fn cache(mut self, cache: Arc<dyn TokenCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Validates the settings and builds the client. No request is sent until a token is asked for.
    pub fn build(self) -> Result<ConfidentialClient, ConfigError> {
        let client_id = self.client_id.trim().to_string();
        if client_id.is_empty() {
            return Err(ConfigError::Empty { setting: "client id" });
        }
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
        let http = match self.http {
            Some(http) => http,
            None => HttpClient::new(HttpConfig::from_env()?)?,
        };
        if !self.authority.tenant_kind().is_specific() {
            tracing::warn!(
                authority = %self.authority,
                "app-only tokens need a tenant-specific authority; the service will likely refuse common/organizations/consumers"
            );
        }
        Ok(ConfidentialClient {
            inner: Arc::new(Inner {
                client_id,
                authority: self.authority,
                credential,
                http,
                cache: self.cache.unwrap_or_else(|| Arc::new(MemoryCache::new())),
                metadata: OnceCell::new(),
                in_flight: Mutex::new(HashMap::new()),
            }),
        })
    }
}

impl ConfidentialClient {
    /// Starts building a client for an application (client) id and an authority.
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
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// The authority.
    pub fn authority(&self) -> &Authority {
        &self.inner.authority
    }

    /// The HTTP client, to share with a [`crate::GraphClient`].
    pub fn http_client(&self) -> &HttpClient {
        &self.inner.http
    }

    /// The tenant's endpoints, discovered once (OIDC discovery) and then kept for the client's lifetime.
    pub async fn metadata(&self) -> Result<Arc<Metadata>> {
        let inner = &self.inner;
        inner
            .metadata
            .get_or_try_init(|| async {
                Metadata::discover(&inner.authority, &inner.http)
                    .await
                    .map(Arc::new)
            })
            .await
            .cloned()
    }

    /// An app-only token for `scopes` (for Graph: `https://graph.microsoft.com/.default`).
    ///
    /// Answers from the cache when it holds a token with more than five minutes left (and whose `refresh_in`
    /// has not passed); otherwise asks the identity provider, once, however many callers ask at the same time.
    /// If an early refresh fails while the cached token is still valid, the cached token is returned.
    pub async fn acquire_token_for_client(&self, scopes: &[impl AsRef<str>]) -> Result<TokenResult> {
        let scopes = normalise_scopes(scopes)?;
        let key = AccessTokenKey::new(
            None,
            &self.inner.authority.environment(),
            &self.inner.client_id,
            self.inner.authority.tenant(),
            &scopes,
        );
        if let Some(hit) = self.cached(&key).await.filter(|t| t.is_fresh(now_secs())) {
            return Ok(TokenResult::from_cached(hit, TokenSource::Cache, None));
        }

        let gate = self.gate(&key);
        let result = {
            let _turn = gate.lock().await;
            // Whoever held the gate before us may have just stored a fresh token.
            let cached = self.cached(&key).await;
            match cached.clone().filter(|t| t.is_fresh(now_secs())) {
                Some(hit) => Ok(TokenResult::from_cached(hit, TokenSource::Cache, None)),
                None => self.fetch_and_store(&key, &scopes, cached).await,
            }
        };
        self.release_gate(&key, gate);
        result
    }

    async fn fetch_and_store(
        &self,
        key: &AccessTokenKey,
        scopes: &[String],
        cached: Option<CachedAccessToken>,
    ) -> Result<TokenResult> {
        let ctx = RequestContext::new();
        match self.request_token(scopes, &ctx).await {
            Ok(entry) => {
                if let Err(e) = self.inner.cache.put_access_token(key, &entry).await {
                    tracing::warn!(error = %e, "could not store the token in the cache");
                }
                Ok(TokenResult::from_cached(
                    entry,
                    TokenSource::IdentityProvider,
                    Some(ctx.correlation_id().to_string()),
                ))
            }
            Err(e) => match cached.filter(|t| t.is_usable(now_secs())) {
                Some(still_valid) => {
                    tracing::warn!(error = %e, "early refresh failed; using the cached token, which is still valid");
                    Ok(TokenResult::from_cached(still_valid, TokenSource::Cache, None))
                }
                None => Err(e),
            },
        }
    }

    async fn cached(&self, key: &AccessTokenKey) -> Option<CachedAccessToken> {
        match self.inner.cache.get_access_token(key).await {
            Ok(entry) => entry,
            Err(e) => {
                tracing::warn!(error = %e, "token cache unavailable; asking the identity provider");
                None
            }
        }
    }

    fn gate(&self, key: &AccessTokenKey) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.inner.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key.clone()).or_default().clone()
    }

    fn release_gate(&self, key: &AccessTokenKey, gate: Arc<tokio::sync::Mutex<()>>) {
        let mut map = self.inner.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        // Two references: the map's and ours. More means another caller is still waiting on this gate.
        if Arc::strong_count(&gate) == 2 {
            map.remove(key);
        }
    }

    async fn request_token(&self, scopes: &[String], ctx: &RequestContext) -> Result<CachedAccessToken> {
        let metadata = self.metadata().await?;
        let token_url = TokenUrl::from_url(metadata.token_endpoint.clone());
        let client: OAuthClient<oauth2::EndpointSet> =
            oauth2::Client::new(oauth2::ClientId::new(self.inner.client_id.clone()))
                .set_auth_type(AuthType::RequestBody)
                .set_token_uri(token_url);
        let mut assertion = None;
        let client = match &self.inner.credential {
            ClientCredential::Secret(secret) => {
                client.set_client_secret(oauth2::ClientSecret::new(secret.secret().to_string()))
            }
            ClientCredential::Certificate(certificate) => {
                // The audience is the token endpoint exactly as discovery announced it.
                let audience = metadata.token_endpoint.as_str();
                assertion = Some(
                    certificate
                        .assertion(&self.inner.client_id, audience)
                        .map_err(ConfigError::from)?,
                );
                client
            }
        };
        let transport = self.inner.http.oauth2_transport(ctx);
        let mut request = client
            .exchange_client_credentials()
            .add_scopes(scopes.iter().map(|s| oauth2::Scope::new(s.clone())));
        if let Some(assertion) = &assertion {
            request = request
                .add_extra_param("client_assertion_type", CLIENT_ASSERTION_TYPE)
                .add_extra_param("client_assertion", assertion.as_str());
        }
        let response = request
            .request_async(&transport)
            .await
            .map_err(|e| token_request_error(e, metadata.token_endpoint.as_str()))?;
        validate_token_response(&response, metadata.token_endpoint.as_str())?;
        let granted = response
            .scope
            .map(|s| s.into_iter().map(|s| s.to_string()).collect())
            .unwrap_or_else(|| scopes.to_vec());
        Ok(CachedAccessToken::new(
            AccessToken::new(response.access_token.into_secret()),
            response.token_type.0,
            granted,
            now_secs(),
            response.expires_in.unwrap_or(DEFAULT_EXPIRES_IN),
            response.ext_expires_in,
            response.refresh_in,
        ))
    }
}

/// Trims scopes, drops empties and duplicates, and sorts them (as MSAL does) so equal requests look equal.
fn normalise_scopes(scopes: &[impl AsRef<str>]) -> Result<Vec<String>, ConfigError> {
    let mut out: Vec<String> = scopes
        .iter()
        .flat_map(|s| {
            s.as_ref()
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort();
    out.dedup();
    if out.is_empty() {
        Err(ConfigError::NoScopes)
    } else {
        Ok(out)
    }
}

fn validate_token_response(response: &EntraTokenResponse, url: &str) -> Result<(), HttpError> {
    let invalid = |reason: &str| HttpError::InvalidResponse {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    if response.access_token.secret().is_empty() {
        return Err(invalid("the access_token is empty"));
    }
    if !response.token_type.0.eq_ignore_ascii_case("bearer") {
        return Err(invalid(&format!(
            "token_type is '{}', expected Bearer",
            response.token_type.0
        )));
    }
    Ok(())
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
    fn scopes_are_normalised() {
        assert_eq!(normalise_scopes(&["b a", " a", "c"]).unwrap(), ["a", "b", "c"]);
        assert!(matches!(normalise_scopes(&[" "]), Err(ConfigError::NoScopes)));
        assert!(matches!(
            normalise_scopes(&[] as &[&str]),
            Err(ConfigError::NoScopes)
        ));
    }

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
