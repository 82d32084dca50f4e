//! Get tokens from the Microsoft identity platform (Microsoft Entra ID, v2.0 endpoints) and call Microsoft Graph.
//!
//! This crate does all token acquisition for the samples in this workspace, and is written to be copied from:
//!
//! - [`Authority`] parses and validates `https://<host>/<tenant>` and knows the Microsoft clouds;
//!   [`Metadata`] is what OIDC discovery says about a tenant's endpoints.
//! - [`ConfidentialClient`] gets app-only tokens with the client credentials grant, cache first.
//! - [`PublicClient`] signs users in (device code; username/password, legacy) and stays silent afterwards with
//!   the cached [`Account`]'s refresh token.
//! - [`TokenCache`] is the cache trait; [`MemoryCache`] the in-process store.
//! - [`HttpClient`] is the one HTTP client (rustls, timeouts, no redirects, size cap, retries where safe).
//! - [`GraphClient`] makes authenticated Graph GETs and follows paging.
//! - [`Error`] keeps every field the service returns and offers a fix ([`Error::fix`]).
//!
//! Secrets and tokens live in [`ClientSecret`] and [`AccessToken`], whose `Debug` output is redacted.
//!
//! # Example
//!
//! A daemon gets an app-only token and lists users. Here it runs against the local emulator; against your
//! tenant, use `Authority::parse("https://login.microsoftonline.com/<tenant id>")`, your app's client id and
//! secret, and `https://graph.microsoft.com/v1.0/users`.
//!
//! ```
//! use identity_core::{Authority, ClientSecret, ConfidentialClient, GraphClient, HttpClient, HttpConfig, TokenSource};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let emulator = entra_emulator::Emulator::builder().start().await?;
//! # let app = emulator.app("daemon").ok_or("no daemon app")?;
//! # let (authority, client_id, secret) = (emulator.authority(), app.app_id.clone(), app.secrets[0].value.clone());
//! # let users_url = format!("{}/users", emulator.graph_base());
//! // Trust the emulator's CA; for the real service `HttpConfig::from_env()` is all you need.
//! let http = HttpClient::new(HttpConfig::from_env()?.with_extra_ca_pem(emulator.ca_pem()))?;
//! let app = ConfidentialClient::builder(client_id, Authority::parse(&authority)?)
//!     .client_secret(ClientSecret::new(secret))
//!     .http_client(http)
//!     .build()?;
//!
//! let token = app.acquire_token_for_client(&["https://graph.microsoft.com/.default"]).await?;
//! assert_eq!(token.source, TokenSource::IdentityProvider);
//! let again = app.acquire_token_for_client(&["https://graph.microsoft.com/.default"]).await?;
//! assert_eq!(again.source, TokenSource::Cache);
//!
//! let users = GraphClient::new(app.http_client().clone()).get(&users_url, &token.access_token).await?;
//! println!("{}", serde_json::to_string_pretty(&users)?);
//! # Ok(())
//! # }
//! ```

// On docs.rs (`--cfg docsrs`, nightly), label each feature-gated item with its feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod account;
pub mod authority;
pub mod cache;
pub mod certificate;
pub mod confidential;
mod core;
pub mod credential;
pub mod error;
mod fs;
pub mod graph;
pub mod http;
mod json;
#[cfg(test)]
mod proptests;
pub mod public;
pub mod secret;
pub mod token;

pub use account::Account;
pub use authority::{AUTHORITY_VALIDATION_VAR, Authority, Cloud, Metadata, TenantKind};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use cache::RedisCache;
pub use cache::{
    AccessTokenKey, CacheEntry, CacheError, CacheKey, CachedAccessToken, FileCache, MemoryCache, TokenCache,
};
pub use confidential::{ConfidentialClient, ConfidentialClientBuilder};
pub use core::AcquireOptions;
pub use credential::ClientCredential;
pub use error::{ConfigError, Error, GraphError, HttpError, Result, ServiceError, SignInError, aadsts_fix};
pub use graph::{GRAPH_V1, GraphClient};
pub use http::{EXTRA_CA_CERTS_VAR, HttpClient, HttpConfig, RequestContext};
pub use public::{DeviceFlow, PublicClient, PublicClientBuilder};
pub use secret::{AccessToken, ClientSecret, Password};
pub use token::{TokenResult, TokenSource};
