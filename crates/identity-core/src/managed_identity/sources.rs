//! The token request of each plain-HTTP source: IMDS (with its retries), App Service / Functions, Azure ML.
//! Azure Arc and Service Fabric, which add a challenge and certificate pinning, have their own modules.

use std::time::Duration;

use super::error::ManagedIdentityError;
use super::identity::ManagedIdentitySource;
use super::identity::{ManagedIdentityId, TokenRequest};
use super::response::{Lifetime, TokenAnswer, is_identity_not_found, parse_error, parse_token};
use super::transport::{Reply, get, header};
use crate::secret::ClientSecret;

/// IMDS's api-version, as MSAL Python sends it.
const IMDS_API_VERSION: &str = "2018-02-01";
const APP_SERVICE_API_VERSION: &str = "2019-08-01";
const AZURE_ML_API_VERSION: &str = "2017-09-01";

/// How IMDS is retried: its 404 (updating), 410 (restarting, "available within 70 seconds"), 429 and 5xx.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ImdsRetry {
    pub max_retries: u32,
    pub initial_backoff: Duration,
    /// The waits of one request add up to at most this.
    pub max_total_wait: Duration,
}

impl Default for ImdsRetry {
    fn default() -> Self {
        // As azure_identity: exponential from 1.34 s, at most 72 s of waiting in all (IMDS's 410 promises to be
        // back within 70 s).
        ImdsRetry {
            max_retries: 6,
            initial_backoff: Duration::from_millis(1340),
            max_total_wait: Duration::from_secs(72),
        }
    }
}

fn is_transient(status: u16) -> bool {
    matches!(status, 404 | 410 | 429) || (500..600).contains(&status)
}

/// `Retry-After` in seconds, capped (IMDS sends it with 429).
fn retry_after(reply: &Reply) -> Option<Duration> {
    let secs: f64 = reply
        .headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(60.0)))
}

pub(crate) async fn imds(
    client: &reqwest::Client,
    url: &url::Url,
    request: &TokenRequest<'_>,
    retry: ImdsRetry,
) -> Result<TokenAnswer, ManagedIdentityError> {
    let source = ManagedIdentitySource::Imds;
    let mut query = vec![("api-version", IMDS_API_VERSION), ("resource", request.resource)];
    query.extend(request.id.query_pair("client_id", "object_id", "msi_res_id"));
    let correlation_id = uuid::Uuid::new_v4().to_string();
    let mut waited = Duration::ZERO;
    let mut attempt: u32 = 0;
    loop {
        let headers = [
            header("metadata", "true", false),
            header("x-ms-client-request-id", &correlation_id, false),
            header("x-client-sku", "identity-core.Rust", false),
            header("x-client-ver", env!("CARGO_PKG_VERSION"), false),
        ]
        .into_iter()
        .flatten()
        .collect();
        let reply = get(client, source, url, &query, headers, &|_| None).await?;
        attempt += 1;
        if reply.status == 200 {
            return parse_token(source, &reply.body, request.now, Lifetime::ExpiresIn);
        }
        if !is_transient(reply.status) {
            return Err(error_answer(source, &reply, None, request.id));
        }
        let backoff = request_backoff(retry, attempt);
        let wait = retry_after(&reply).unwrap_or(backoff);
        if attempt > retry.max_retries || waited.saturating_add(wait) > retry.max_total_wait {
            return Err(ManagedIdentityError::RetriesExhausted {
                platform: source,
                status: reply.status,
                attempts: attempt,
            });
        }
        tracing::info!(
            status = reply.status,
            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            "IMDS is not ready; retrying"
        );
        tokio::time::sleep(wait).await;
        waited = waited.saturating_add(wait);
    }
}

/// Exponential: the initial back-off, doubled after each attempt.
fn request_backoff(retry: ImdsRetry, attempt: u32) -> Duration {
    retry
        .initial_backoff
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(16)))
}

pub(crate) async fn app_service(
    client: &reqwest::Client,
    url: &url::Url,
    secret: &ClientSecret,
    request: &TokenRequest<'_>,
) -> Result<TokenAnswer, ManagedIdentityError> {
    let source = ManagedIdentitySource::AppService;
    let mut query = vec![
        ("api-version", APP_SERVICE_API_VERSION),
        ("resource", request.resource),
    ];
    // App Service spells a resource id `mi_res_id` (MSAL Python).
    query.extend(request.id.query_pair("client_id", "object_id", "mi_res_id"));
    let headers = [
        header("x-identity-header", secret.secret(), true),
        // Not needed by App Service, needed by Azure Automation (MSAL sends it too).
        header("metadata", "true", false),
    ]
    .into_iter()
    .flatten()
    .collect();
    let reply = get(client, source, url, &query, headers, &|_| None).await?;
    if reply.status == 200 {
        return parse_token(source, &reply.body, request.now, Lifetime::ExpiresOn);
    }
    Err(error_answer(source, &reply, Some(secret.secret()), request.id))
}

pub(crate) async fn azure_ml(
    client: &reqwest::Client,
    url: &url::Url,
    secret: &ClientSecret,
    default_client_id: Option<&str>,
    request: &TokenRequest<'_>,
) -> Result<TokenAnswer, ManagedIdentityError> {
    let source = ManagedIdentitySource::AzureMl;
    // The 2017-09-01 API takes only a client id, and wants one even for the system-assigned identity
    // (azure-sdk-for-net #40348): the compute's default, DEFAULT_IDENTITY_CLIENT_ID.
    let client_id = match request.id {
        ManagedIdentityId::SystemAssigned => default_client_id,
        ManagedIdentityId::ClientId(id) => Some(id.as_str()),
        ManagedIdentityId::ObjectId(_) | ManagedIdentityId::ResourceId(_) => {
            return Err(ManagedIdentityError::Unsupported {
                platform: source,
                reason: "Azure Machine Learning selects a user-assigned identity by its client id only"
                    .into(),
            });
        }
    };
    let mut query = vec![
        ("api-version", AZURE_ML_API_VERSION),
        ("resource", request.resource),
    ];
    if let Some(id) = client_id {
        query.push(("clientid", id));
    }
    let headers = [header("secret", secret.secret(), true)]
        .into_iter()
        .flatten()
        .collect();
    let reply = get(client, source, url, &query, headers, &|_| None).await?;
    if reply.status == 200 {
        return parse_token(source, &reply.body, request.now, Lifetime::ExpiresOn);
    }
    Err(error_answer(source, &reply, Some(secret.secret()), request.id))
}

/// A source's error answer as a typed error.
pub(crate) fn error_answer(
    source: ManagedIdentitySource,
    reply: &Reply,
    secret: Option<&str>,
    id: &ManagedIdentityId,
) -> ManagedIdentityError {
    let answer = parse_error(&reply.body, secret);
    if is_identity_not_found(reply.status, &answer) {
        return ManagedIdentityError::IdentityNotFound {
            platform: source,
            identity: id.to_string(),
            status: reply.status,
            message: answer.message,
        };
    }
    ManagedIdentityError::Refused {
        platform: source,
        status: reply.status,
        code: answer.code,
        message: answer.message,
    }
}
