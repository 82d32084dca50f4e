//! A minimal authenticated GET for Microsoft Graph that understands Graph's error envelope, paging, and the
//! 401s that a new token cures.

use std::future::Future;

use serde_json::Value;
use url::Url;

use crate::authority::ensure_secure;
use crate::core::AcquireOptions;
use crate::error::{ConfigError, Error, HttpError, Result};
use crate::http::{HttpClient, RequestContext};
use crate::secret::SecretToken;
use crate::token::{TokenResult, TokenSource};

/// Base URL of Microsoft Graph v1.0 in the public cloud.
pub const GRAPH_V1: &str = "https://graph.microsoft.com/v1.0";

/// Calls Microsoft Graph with a bearer token.
#[derive(Clone, Debug)]
pub struct GraphClient {
    http: HttpClient,
}

impl GraphClient {
    /// Uses the given HTTP client (share the identity client's: [`crate::ConfidentialClient::http_client`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::GraphClient;
    /// # use identity_core::{Authority, ClientSecret, ConfidentialClient, HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let daemon = emulator.app("daemon").ok_or("no daemon app")?;
    /// # let (authority, client_id, secret) = (emulator.authority(), daemon.app_id.clone(), daemon.secrets[0].value.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// # let users_url = format!("{}/users", emulator.graph_base());
    /// # let app = ConfidentialClient::builder(client_id, Authority::parse(&authority)?)
    /// #     .client_secret(ClientSecret::new(secret))
    /// #     .http_client(http)
    /// #     .build()?;
    /// // `app` is a ConfidentialClient or a PublicClient: the Graph client shares its HTTP client.
    /// let graph = GraphClient::new(app.http_client().clone());
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(http: HttpClient) -> Self {
        GraphClient { http }
    }

    /// `GET url` with the token; returns the JSON answer. Graph errors come back as [`crate::GraphError`].
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::GraphClient;
    /// # use identity_core::{Authority, ClientSecret, ConfidentialClient, HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let daemon = emulator.app("daemon").ok_or("no daemon app")?;
    /// # let (authority, client_id, secret) = (emulator.authority(), daemon.app_id.clone(), daemon.secrets[0].value.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// # let users_url = format!("{}/users", emulator.graph_base());
    /// # let app = ConfidentialClient::builder(client_id, Authority::parse(&authority)?)
    /// #     .client_secret(ClientSecret::new(secret))
    /// #     .http_client(http)
    /// #     .build()?;
    /// let graph = GraphClient::new(app.http_client().clone());
    /// let token = app.acquire_token_for_client(&["https://graph.microsoft.com/.default"]).await?;
    /// // `users_url` is `https://graph.microsoft.com/v1.0/users` for the real service.
    /// let users = graph.get(&users_url, &token.access_token).await?;
    /// for user in users["value"].as_array().ok_or("no user list")? {
    ///     println!("{}", user["userPrincipalName"]);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn get(&self, url: &str, token: &SecretToken) -> Result<Value> {
        let parsed = parse_graph_url(url)?;
        self.http
            .get_graph_json(parsed.as_str(), token, &RequestContext::new())
            .await
    }

    /// `GET url` with `token`, recovering once from a 401 that a new token can cure: when the token came from
    /// the cache (revoked, or issued before a policy change), or when Graph sends a claims challenge (continuous
    /// access evaluation), `reacquire` is called once with the [`AcquireOptions`] to use (`force_refresh`, or
    /// the challenge's `claims`) and the request is sent again with the new token. A 401 on a token just issued
    /// without a challenge is returned as is: a new one would be refused too.
    ///
    /// `reacquire` is typically `|options| app.acquire_token_for_client_with(&scopes, options)` or
    /// `|options| app.acquire_token_silent_with(&account, &scopes, options)` (an `Ok(None)` from the latter
    /// returns the original error).
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::GraphClient;
    /// # use identity_core::{Authority, ClientSecret, ConfidentialClient, HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let daemon = emulator.app("daemon").ok_or("no daemon app")?;
    /// # let (authority, client_id, secret) = (emulator.authority(), daemon.app_id.clone(), daemon.secrets[0].value.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// # let users_url = format!("{}/users", emulator.graph_base());
    /// # let app = ConfidentialClient::builder(client_id, Authority::parse(&authority)?)
    /// #     .client_secret(ClientSecret::new(secret))
    /// #     .http_client(http)
    /// #     .build()?;
    /// let graph = GraphClient::new(app.http_client().clone());
    /// let scopes = ["https://graph.microsoft.com/.default"];
    /// let token = app.acquire_token_for_client(&scopes).await?;
    /// // Should Graph refuse a cached token (revoked) or challenge it (claims), get a new one and try once more.
    /// let users = graph
    ///     .get_with_token_recovery(&users_url, &token, |options| app.acquire_token_for_client_with(&scopes, options))
    ///     .await?;
    /// assert!(users["value"].is_array());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn get_with_token_recovery<F, Fut, T>(
        &self,
        url: &str,
        token: &TokenResult,
        reacquire: F,
    ) -> Result<Value>
    where
        F: FnOnce(AcquireOptions) -> Fut,
        Fut: Future<Output = Result<T>>,
        T: Into<Option<TokenResult>>,
    {
        let first = self.get(url, &token.access_token).await;
        let from_cache = token.source == TokenSource::Cache;
        let options = match &first {
            Err(Error::Graph(e)) if e.status == 401 => match &e.claims_challenge {
                Some(claims) => AcquireOptions::new().with_claims(claims.clone()),
                None if from_cache => AcquireOptions::new().with_force_refresh(true),
                None => return first,
            },
            Err(Error::Http(HttpError::UnexpectedStatus { status: 401, .. })) if from_cache => {
                AcquireOptions::new().with_force_refresh(true)
            }
            _ => return first,
        };
        tracing::info!(
            claims_challenge = options.claims.is_some(),
            "the resource refused the token (HTTP 401); getting a new token and trying once more"
        );
        match reacquire(options).await?.into() {
            Some(fresh) => self.get(url, &fresh.access_token).await,
            None => first,
        }
    }

    /// Follows `@odata.nextLink` from `url` and returns the items of every page's `value`, at most `max_pages`
    /// pages. Next links are followed verbatim, and only on the same origin, so the token goes nowhere else.
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::GraphClient;
    /// # use identity_core::{Authority, ClientSecret, ConfidentialClient, HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let daemon = emulator.app("daemon").ok_or("no daemon app")?;
    /// # let (authority, client_id, secret) = (emulator.authority(), daemon.app_id.clone(), daemon.secrets[0].value.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// # let users_url = format!("{}/users", emulator.graph_base());
    /// # let app = ConfidentialClient::builder(client_id, Authority::parse(&authority)?)
    /// #     .client_secret(ClientSecret::new(secret))
    /// #     .http_client(http)
    /// #     .build()?;
    /// let graph = GraphClient::new(app.http_client().clone());
    /// let token = app.acquire_token_for_client(&["https://graph.microsoft.com/.default"]).await?;
    /// // Two users per page, at most 50 pages.
    /// let users = graph.get_all_pages(&format!("{users_url}?$top=2"), &token.access_token, 50).await?;
    /// # let one_page = graph.get(&users_url, &token.access_token).await?;
    /// # assert_eq!(Some(users.len()), one_page["value"].as_array().map(Vec::len));
    /// # assert!(users.len() > 2);
    /// println!("{} users", users.len());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn get_all_pages(
        &self,
        url: &str,
        token: &SecretToken,
        max_pages: usize,
    ) -> Result<Vec<Value>> {
        let first = parse_graph_url(url)?;
        let ctx = RequestContext::new();
        let mut items = Vec::new();
        let mut next = Some(first.clone());
        let mut pages = 0;
        while let Some(page_url) = next.take() {
            if pages == max_pages {
                break;
            }
            let page = self.http.get_graph_json(page_url.as_str(), token, &ctx).await?;
            pages += 1;
            match page.get("value") {
                Some(Value::Array(values)) => items.extend(values.iter().cloned()),
                _ => {
                    return Err(HttpError::InvalidResponse {
                        url: page_url.to_string(),
                        reason: "a collection page has no 'value' array".into(),
                    }
                    .into());
                }
            }
            if let Some(link) = page.get("@odata.nextLink").and_then(Value::as_str) {
                let link_url = parse_graph_url(link)?;
                if link_url.origin() != first.origin() {
                    return Err(HttpError::InvalidResponse {
                        url: page_url.to_string(),
                        reason: format!(
                            "@odata.nextLink points to another host ({link}); not sending the token there"
                        ),
                    }
                    .into());
                }
                next = Some(link_url);
            }
        }
        Ok(items)
    }
}

fn parse_graph_url(url: &str) -> Result<Url, ConfigError> {
    let parsed = Url::parse(url).map_err(|e| ConfigError::InvalidUrl {
        setting: "the Graph endpoint",
        value: url.to_string(),
        reason: e.to_string(),
    })?;
    ensure_secure(&parsed)?;
    Ok(parsed)
}
