//! Get tokens from the Microsoft identity platform (Microsoft Entra ID, v2.0 endpoints) and call Microsoft Graph.
//!
//! This crate does all token acquisition for the samples in this workspace, and is written to be copied from:
//!
//! - [`Authority`] parses and validates `https://<host>/<tenant>` and knows the Microsoft clouds;
//!   [`Metadata`] is a tenant's endpoints (Entra's layout needs no request; other authorities, OIDC discovery).
//! - [`ConfidentialClient`] gets app-only tokens with the client credentials grant, cache first, with a secret,
//!   a certificate or a [`FederatedCredential`] (workload identity federation).
//! - [`ManagedIdentityClient`] gets tokens for the managed identity of the Azure host it runs on (no secret).
//! - [`PublicClient`] signs users in (in the system browser; device code; username/password, legacy) and stays
//!   silent afterwards with the cached [`Account`]'s refresh token.
//! - [`TokenCache`] is the cache trait; [`MemoryCache`] the in-process store, [`FileCache`] a file the processes
//!   of one user share.
//! - [`HttpClient`] is the one HTTP client (rustls, timeouts, no redirects, size cap, retries where safe).
//! - [`GraphClient`] makes authenticated Graph GETs and follows paging.
//! - [`Error`] keeps every field the service returns and offers a fix ([`Error::fix`]).
//!
//! Secrets and tokens live in [`ClientSecret`] and [`SecretToken`], whose `Debug` output is redacted.
//!
//! # Example
//!
//! A daemon gets an app-only token and lists users. Here it runs against the local emulator (the workspace's
//! `entra-emulator` crate, a stand-in for Entra ID and Graph); each setting's comment says what to use against
//! your tenant.
//!
//! ```
//! use identity_core::{Authority, ClientSecret, ConfidentialClient, GraphClient, HttpClient, HttpConfig, TokenSource};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let emulator = entra_emulator::Emulator::builder().start().await?;
//! let registration = emulator.app("daemon").ok_or("the emulator has no daemon app")?;
//! // Against your tenant: Authority::parse("https://login.microsoftonline.com/<tenant id>")?
//! let authority = Authority::parse(&emulator.authority())?;
//! // Your app registration's Application (client) ID and a client secret of it.
//! let client_id = registration.app_id.clone();
//! let secret = registration.secrets.first().ok_or("the daemon app has no secret")?.value.clone();
//! // https://graph.microsoft.com/v1.0/users
//! let users_url = format!("{}/users", emulator.graph_base());
//! // Trust the emulator's CA; for the real service `HttpConfig::from_env()?` is all you need.
//! let http = HttpClient::new(HttpConfig::from_env()?.with_extra_ca_pem(emulator.ca_pem()))?;
//!
//! let app = ConfidentialClient::builder(client_id, authority)
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
//!
//! Every public method of [`ConfidentialClient`], [`PublicClient`], their builders and [`GraphClient`] has a
//! runnable example like this one in its documentation.
//!
//! # Features
//!
//! - `redis`: `RedisCache`, a token cache in Redis shared by daemons on many machines.
//! - `encrypted-file-cache`: `FileCache::open_encrypted`, the file cache encrypted at rest (AES-256-GCM) with
//!   its key in the OS key store (the Linux kernel keyring; elsewhere the file stays plain, with a warning).
//!
//! # Layout
//!
//! Every public item is exported at the crate root; the modules are private.
//!
//! - `account`: signed-in accounts, read from `client_info` and the ID token.
//! - `authority`: authorities (`https://host/tenant`), the Microsoft clouds, the endpoints (Entra's layout, or
//!   OIDC discovery).
//! - `browser`: [`open_browser`], the system's browser (honouring `$BROWSER`).
//! - `cache`: the [`TokenCache`] trait and its stores: `cache/memory.rs` ([`MemoryCache`]), `cache/file.rs`
//!   ([`FileCache`], one file per app and tenant, owner-only, locked, written in the background, optionally
//!   encrypted by `cache/file/encryption.rs`), `cache/redis.rs` (`RedisCache`, feature `redis`).
//! - `certificate`: certificate credentials: load a key and certificate (PEM, PKCS#12), sign client assertions.
//! - `challenge` (private): `WWW-Authenticate` challenges, the claims a continuous access evaluation challenge asks for.
//! - `confidential`: [`ConfidentialClient`], app-only tokens with the client credentials grant.
//! - `core` (private): what every client of an authority does around a token request: endpoints (derived, or
//!   from memory, cache or discovery; a 404 at a derived one falls back to discovery).
//! - `credential`: [`ClientCredential`], how a confidential client proves its identity.
//! - `error`: typed errors that keep every field the service returns and offer a fix.
//! - `federated`: [`FederatedCredential`], workload identity federation: a token from another identity provider
//!   (a projected Kubernetes token file, re-read as it rotates, or a callback) as the client assertion.
//! - `fs` (private): bounded reads of the files named in the configuration.
//! - `graph`: [`GraphClient`], authenticated Graph GETs with paging and 401 recovery.
//! - `http`: [`HttpClient`], the one HTTP client (rustls, timeouts, size cap, retries where safe).
//! - `interactive`: [`PublicClient::acquire_token_interactive`] and [`InteractiveOptions`]: the authorization
//!   code flow with PKCE in the system browser.
//! - `json` (private): parsing of JSON answers with errors that name the problem without quoting the answer.
//! - `loopback` (private): the listener on 127.0.0.1 that receives the sign-in page's answer (form POST, `state`
//!   checked, bounded requests).
//! - `managed_identity`: [`ManagedIdentityClient`], tokens for the host's managed identity (IMDS, App Service and
//!   Functions, Azure Arc, Service Fabric, Azure ML), one file per concern: `identity.rs` (ids, sources), `source.rs` (detection), `sources.rs`
//!   (IMDS, App Service, Azure ML), `arc.rs`, `service_fabric.rs` (certificate pinning), `transport.rs`,
//!   `response.rs`, `error.rs`.
//! - `public`: [`PublicClient`], user sign-in (device code; username/password, legacy) and silent refresh.
//! - `secret`: [`ClientSecret`], [`Password`], [`SecretToken`]: secrets whose `Debug` is redacted.
//! - `store` (private): the token cache as every client uses it (the managed identity client included):
//!   cache-first acquisition with single flight within and across processes, and cache writes behind the caller
//!   (`flush()`).
//! - `token`: token responses as Entra sends them, and the [`TokenResult`] handed to callers.
//! - `proptests` (tests only): property tests over every server answer this crate parses.

// On docs.rs (`--cfg docsrs`, nightly), label each feature-gated item with its feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod account;
mod authority;
mod browser;
mod cache;
mod certificate;
mod challenge;
mod confidential;
mod core;
mod credential;
mod error;
mod federated;
mod fs;
mod graph;
mod http;
mod interactive;
mod json;
mod loopback;
mod managed_identity;
#[cfg(test)]
mod proptests;
mod public;
mod secret;
mod store;
mod token;

pub use account::Account;
pub use authority::{
    AUTHORITY_VALIDATION_VAR, Authority, Cloud, INSTANCE_DISCOVERY_ENDPOINT, Metadata, PUBLIC_CLOUD_HOST,
    TenantKind, ensure_secure,
};
pub use browser::open_browser;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use cache::RedisCache;
pub use cache::{
    AccessTokenKey, AccountKey, CacheEntry, CacheError, CacheKey, CacheLock, CacheRecords, CachedAccessToken,
    CachedAccount, CachedIdToken, CachedMetadata, CachedRefreshToken, EXPIRY_MARGIN, FileCache,
    MAX_TOKEN_LIFETIME, MemoryCache, TokenCache, now_secs,
};
pub use certificate::{AssertionAlgorithm, CertificateCredential, CertificateError};
pub use confidential::{ConfidentialClient, ConfidentialClientBuilder};
pub use core::AcquireOptions;
pub use credential::ClientCredential;
pub use error::{ConfigError, Error, GraphError, HttpError, Result, ServiceError, SignInError, aadsts_fix};
pub use federated::{
    FEDERATED_TOKEN_AUDIENCE, FederatedCredential, FederatedError, MAX_FEDERATED_TOKEN_BYTES,
};
pub use graph::{GRAPH_V1, GraphClient};
pub use http::{EXTRA_CA_CERTS_VAR, HttpClient, HttpConfig, MAX_CA_FILE_BYTES};
pub use interactive::{DEFAULT_INTERACTIVE_TIMEOUT, InteractiveOptions, Prompt, UrlOpener};
pub use managed_identity::{
    ARC_DEFAULT_ENDPOINT, ARC_TOKEN_DIRECTORY, IMDS_DEFAULT_HOST, IMDS_HOST_OVERRIDE_VAR,
    ManagedIdentityClient, ManagedIdentityClientBuilder, ManagedIdentityEnvironment, ManagedIdentityError,
    ManagedIdentityId, ManagedIdentitySource,
};
pub use public::{DeviceFlow, MAX_POLL_INTERVAL, PublicClient, PublicClientBuilder};
pub use secret::{ClientSecret, Password, SecretToken};
pub use token::{TokenResult, TokenSource};
