//! Typed errors. Every field the service returns is kept, and the codes a sample user meets come with a fix.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// Everything that can go wrong while getting a token or calling Graph.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration given to the library is unusable; nothing was sent.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The Microsoft identity platform answered with an OAuth error (`AADSTS…`).
    #[error(transparent)]
    Service(#[from] Box<ServiceError>),
    /// Microsoft Graph answered with an error envelope.
    #[error(transparent)]
    Graph(#[from] Box<GraphError>),
    /// The request did not complete: network, TLS, timeout, or a response that is not what the protocol says.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The token cache store failed where its answer is the result (listing or removing accounts). Token
    /// acquisition never fails for this: it logs the failure and asks the identity provider instead.
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    /// A user sign-in could not go ahead for a reason found on this side (device code timed out, federated or
    /// unknown account for the username/password flow, ...).
    #[error(transparent)]
    SignIn(#[from] SignInError),
    /// A managed-identity token could not be obtained from the host's endpoint.
    #[error(transparent)]
    ManagedIdentity(#[from] crate::managed_identity::error::ManagedIdentityError),
}

impl Error {
    /// A one-line fix for the user, when one is known.
    pub fn fix(&self) -> Option<&'static str> {
        match self {
            Error::Config(e) => e.fix(),
            Error::Service(e) => e.fix(),
            Error::Graph(e) => e.fix(),
            Error::Http(e) => e.fix(),
            Error::SignIn(e) => Some(e.fix()),
            Error::ManagedIdentity(e) => Some(e.fix()),
            Error::Cache(_) => Some(
                "Check the token cache: its file must be readable and writable by this user, its Redis server reachable.",
            ),
        }
    }
}

/// Why a user sign-in stopped on this side, without (or before) an error from the service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignInError {
    /// The user did not complete the device-code sign-in before the code expired (this client's own clock).
    #[error("the device code expired after {} s before the sign-in was completed", .after.as_secs())]
    DeviceCodeExpired {
        /// The code's lifetime.
        after: Duration,
    },
    /// The authority's discovery document names no device authorization endpoint.
    #[error(
        "the authority offers no device-code flow (its discovery document has no device_authorization_endpoint)"
    )]
    NoDeviceCodeEndpoint,
    /// The username belongs to a federated domain: its password is checked by another identity provider.
    #[error(
        "the account's domain '{domain}' is federated: its password is checked by the organisation's own identity provider, which the username/password flow cannot use"
    )]
    FederatedAccount {
        /// The username's domain.
        domain: String,
    },
    /// The username's domain is not known to Microsoft Entra ID (or is a personal Microsoft account).
    #[error(
        "the account's domain '{domain}' is not a Microsoft Entra ID work or school domain (user realm: {account_type})"
    )]
    UnknownAccount {
        /// The username's domain.
        domain: String,
        /// What user realm discovery said.
        account_type: String,
    },
    /// The service's answer does not identify the user (no `client_info` and no usable ID token).
    #[error("the token response does not identify the signed-in user: {0}")]
    NoAccount(String),
    /// The authority's discovery document names no authorization endpoint (interactive flow).
    #[error(
        "the authority offers no interactive sign-in (its discovery document has no authorization_endpoint)"
    )]
    NoAuthorizationEndpoint,
    /// The local listener for the sign-in answer could not be started.
    #[error("cannot listen on 127.0.0.1 for the sign-in answer: {reason}")]
    Listener {
        /// What failed.
        reason: String,
    },
    /// The sign-in page could not be opened (no browser, no graphical session, or the caller's opener failed).
    #[error("cannot open the sign-in page in a browser: {reason}")]
    BrowserUnavailable {
        /// Why.
        reason: String,
    },
    /// The user did not finish signing in within the time allowed (or the page showed an error that never reaches
    /// the application, such as an unregistered redirect URI).
    #[error("no answer from the sign-in page within {} s", .after.as_secs())]
    InteractionTimedOut {
        /// The time allowed.
        after: Duration,
    },
    /// The ID token does not carry the `nonce` this sign-in sent: a replayed or substituted answer. Nothing was
    /// cached.
    #[error("the ID token does not carry this sign-in's nonce ({reason}); nothing was cached")]
    NonceMismatch {
        /// What was wrong.
        reason: String,
    },
}

impl SignInError {
    /// A one-line fix.
    pub fn fix(&self) -> &'static str {
        match self {
            SignInError::DeviceCodeExpired { .. } => {
                "Run again and finish signing in (open the page, enter the code, accept) before the code expires."
            }
            SignInError::NoDeviceCodeEndpoint => {
                "Check the authority: use https://login.microsoftonline.com/<tenant ID> (or organizations/common)."
            }
            SignInError::FederatedAccount { .. } => {
                "Use the device-code flow, which signs in through the organisation's own page."
            }
            SignInError::UnknownAccount { .. } => {
                "Check the username: it must be a work or school account (user@contoso.onmicrosoft.com); personal Microsoft accounts cannot use this flow."
            }
            SignInError::NoAccount(_) => {
                "Ask for the openid and profile scopes (this library adds them) and report the correlation id."
            }
            SignInError::NoAuthorizationEndpoint => {
                "Check the authority: use https://login.microsoftonline.com/<tenant ID> (or organizations/common)."
            }
            SignInError::Listener { .. } => {
                "Allow this program to listen on a local TCP port (127.0.0.1); a sandbox or security policy may forbid it. Otherwise use the device-code flow."
            }
            SignInError::BrowserUnavailable { .. } => {
                "Open the sign-in page in a browser on this machine (its answer comes back to http://localhost), or, where there is none (SSH, a container), use the device-code flow, which signs in on another device."
            }
            SignInError::InteractionTimedOut { .. } => {
                "Finish signing in in the browser in time. If the page showed AADSTS50011 (redirect URI mismatch), add the redirect URI http://localhost under Authentication > Mobile and desktop applications in the app registration; for any other error on the page, fix what it says and run again."
            }
            SignInError::NonceMismatch { .. } => {
                "Run again; if it persists, something between this program and the identity platform alters the answers: report the correlation id."
            }
        }
    }
}

impl From<ServiceError> for Error {
    fn from(e: ServiceError) -> Self {
        Error::Service(Box::new(e))
    }
}

impl From<GraphError> for Error {
    fn from(e: GraphError) -> Self {
        Error::Graph(Box::new(e))
    }
}

/// A configuration value the library cannot use. Raised before any request is sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The authority is not a URL of the form `https://host/tenant`.
    #[error("invalid authority '{value}': {reason}")]
    InvalidAuthority {
        /// What was given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A plain-http URL for a host that is not on this machine: tokens and secrets would cross the network unencrypted.
    #[error(
        "refusing plain http for '{url}': only https is allowed, except for loopback hosts (127.0.0.1, ::1, localhost)"
    )]
    InsecureUrl {
        /// The rejected URL.
        url: String,
    },
    /// The tenant is neither a GUID, a domain name, nor common/organizations/consumers.
    #[error(
        "invalid tenant '{tenant}': expected the Directory (tenant) ID (a GUID), a verified domain such as contoso.onmicrosoft.com, or common/organizations/consumers"
    )]
    InvalidTenant {
        /// What was given.
        tenant: String,
    },
    /// A URL setting does not parse.
    #[error("invalid URL '{value}' for {setting}: {reason}")]
    InvalidUrl {
        /// Which setting.
        setting: &'static str,
        /// What was given.
        value: String,
        /// Parser message.
        reason: String,
    },
    /// A required value is empty.
    #[error("{setting} is empty")]
    Empty {
        /// Which setting.
        setting: &'static str,
    },
    /// The username is not a user principal name.
    #[error(
        "the username must be a work or school account's sign-in name, such as user@contoso.onmicrosoft.com"
    )]
    InvalidUsername,
    /// No scope was asked for.
    #[error("no scope given: ask for at least one scope, for example https://graph.microsoft.com/.default")]
    NoScopes,
    /// An extra CA certificate file could not be read or holds no certificate.
    #[error("cannot use the CA certificates in '{path}': {reason}")]
    CaCertificates {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The certificate credential cannot be used.
    #[error(transparent)]
    Certificate(#[from] crate::certificate::CertificateError),
    /// The federated token (workload identity federation) cannot be used.
    #[error(transparent)]
    Federated(#[from] crate::federated::FederatedError),
    /// The HTTP client could not be built (for example a bad proxy URL in the environment).
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(String),
    /// Instance discovery does not know the authority's host (`invalid_instance`): it is not a Microsoft Entra
    /// host, so no credential is sent to it.
    #[error(
        "the authority host '{host}' is not a known Microsoft Entra host (instance discovery: invalid_instance); no credential was sent to it"
    )]
    UnknownAuthorityHost {
        /// The host (and port).
        host: String,
    },
}

impl ConfigError {
    /// A one-line fix, when one is known.
    pub fn fix(&self) -> Option<&'static str> {
        Some(match self {
            ConfigError::InvalidAuthority { .. } => {
                "Set the authority to https://login.microsoftonline.com/<Directory (tenant) ID>, or give the tenant ID (and the authority host for national clouds)."
            }
            ConfigError::InsecureUrl { .. } => "Use an https:// URL.",
            ConfigError::InvalidTenant { .. } => {
                "Copy the Directory (tenant) ID from the app registration's Overview page in the Entra admin center."
            }
            ConfigError::CaCertificates { .. } => {
                "Point the setting at a readable PEM file holding one or more -----BEGIN CERTIFICATE----- blocks."
            }
            ConfigError::InvalidUsername => {
                "Set the username to the user principal name (UPN), as shown on the user's profile in the Entra admin center."
            }
            ConfigError::NoScopes => {
                "Give at least one scope, for example https://graph.microsoft.com/.default."
            }
            ConfigError::Certificate(e) => return e.fix(),
            ConfigError::Federated(e) => return e.fix(),
            ConfigError::UnknownAuthorityHost { .. } => {
                "Check the authority's host (e.g. https://login.microsoftonline.com/<tenant>). Only for a private deployment you trust, turn validation off: IDENTITY_AUTHORITY_VALIDATION=off (Authority::validated(false))."
            }
            _ => return None,
        })
    }
}

/// An OAuth 2.0 error answer from the Microsoft identity platform, with every field it sent.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceError {
    /// HTTP status of the answer (filled in by the client, not part of the body).
    #[serde(skip)]
    pub status: u16,
    /// The OAuth error, e.g. `invalid_client`.
    #[serde(default)]
    pub error: String,
    /// Human readable text starting with `AADSTSnnnnn:`, with trace/correlation/timestamp trailer lines.
    #[serde(default)]
    pub error_description: Option<String>,
    /// The AADSTS codes as numbers.
    #[serde(default)]
    pub error_codes: Vec<i64>,
    /// When the service saw the error (`yyyy-MM-dd HH:mm:ssZ`).
    #[serde(default)]
    pub timestamp: Option<String>,
    /// The service's trace id.
    #[serde(default)]
    pub trace_id: Option<String>,
    /// The correlation id (the `client-request-id` we sent). Quote it when asking Microsoft for help.
    #[serde(default)]
    pub correlation_id: Option<String>,
    /// Link to the error lookup page.
    #[serde(default)]
    pub error_uri: Option<String>,
    /// A finer-grained reason, e.g. `consent_required`, `basic_action`.
    #[serde(default)]
    pub suberror: Option<String>,
    /// A claims challenge (JSON text) to send back on the next request, e.g. for Conditional Access.
    #[serde(default)]
    pub claims: Option<String>,
    /// `Retry-After` header, when the service sent one (throttling, outages).
    #[serde(skip)]
    pub retry_after: Option<Duration>,
}

impl ServiceError {
    /// The primary AADSTS code: the first of `error_codes`, else the one at the start of the description.
    pub fn code(&self) -> Option<i64> {
        self.error_codes.first().copied().or_else(|| {
            let rest = self.error_description.as_deref()?.strip_prefix("AADSTS")?;
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
    }

    /// The first line of the description (without the trace/correlation/timestamp trailer).
    pub fn summary(&self) -> &str {
        self.error_description
            .as_deref()
            .and_then(|d| d.lines().next())
            .map(str::trim)
            .unwrap_or("")
    }

    /// A one-line fix for the codes a sample user meets (the AADSTS table of the protocol reference).
    pub fn fix(&self) -> Option<&'static str> {
        if let Some(fix) = self.code().and_then(aadsts_fix) {
            return Some(fix);
        }
        match self.error.as_str() {
            "temporarily_unavailable" => Some("The service is busy or down; try again in a few minutes."),
            "access_denied" => Some(
                "The sign-in was cancelled on the sign-in page (or consent declined): run again and complete it.",
            ),
            "authorization_declined" => {
                Some("The sign-in was declined on the consent page: run again and choose Accept.")
            }
            "bad_verification_code" => Some("The device code was not recognised: start the sign-in again."),
            "expired_token" => {
                Some("The device code expired: start the flow again and sign in within the time shown.")
            }
            _ => None,
        }
    }

    /// The cached sign-in is no longer accepted (`invalid_grant`, `interaction_required`): the user has to sign
    /// in again.
    pub fn requires_sign_in(&self) -> bool {
        matches!(self.error.as_str(), "invalid_grant" | "interaction_required")
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the Microsoft identity platform refused the request: {}",
            self.error
        )?;
        if self.status != 0 {
            write!(f, " (HTTP {})", self.status)?;
        }
        let summary = self.summary();
        if !summary.is_empty() {
            write!(f, ": {summary}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ServiceError {}

/// The fix we tell a sample user for an AADSTS code (the codes:
/// <https://learn.microsoft.com/entra/identity-platform/reference-error-codes>).
pub fn aadsts_fix(code: i64) -> Option<&'static str> {
    Some(match code {
        90002 => {
            "Check the tenant ID or domain (Overview page of the app registration) and the cloud: public vs national."
        }
        900023 => {
            "Use the Directory (tenant) ID (a GUID) or a verified domain, not a tenant name or subscription ID."
        }
        50059 => {
            "Use a tenant-specific authority (https://login.microsoftonline.com/<tenant ID>), not common or organizations."
        }
        9001023 => {
            "This grant is not supported on /common or /consumers: use /organizations or the tenant ID."
        }
        9002331 => {
            "The app is for personal Microsoft accounts only: use the /consumers authority, or change the supported account types."
        }
        9002332 => {
            "The app is for work or school accounts only: use the tenant ID or /organizations, not /consumers."
        }
        50194 => "The app is single-tenant: use the tenant-specific authority instead of /common.",
        700016 => {
            "Check the client id (the Application (client) ID, not the object ID) and that the tenant is the app's tenant."
        }
        7000215 => {
            "Use the client secret's Value, not its Secret ID; if unsure, create a new secret under Certificates & secrets."
        }
        7000222 => {
            "The client secret has expired: create a new one under Certificates & secrets (or switch to a certificate)."
        }
        7000216 => "Configure the client secret or a certificate for this app.",
        7000218 => {
            "Enable 'Allow public client flows' under Authentication in the app registration; for the interactive flow, register http://localhost under 'Mobile and desktop applications', not 'Web'."
        }
        700025 => {
            "A public client must not send a secret or certificate: remove the credential for this flow."
        }
        700027 => {
            "Upload the certificate matching the private key under Certificates & secrets; check the x5t / x5t#S256 thumbprint."
        }
        700024 => {
            "Check this machine's clock, and send fresh assertions: a signed client assertion at most 10 minutes old, a federated token before its exp (a projected token file is re-read as it rotates)."
        }
        70021 => {
            "No federated credential of the app matches the token: add one (Certificates & secrets > Federated credentials) whose issuer, subject and audience api://AzureADTokenExchange are exactly the token's (case-sensitive)."
        }
        700211 => {
            "No federated credential of the app has the token's issuer: copy the issuer URL exactly (e.g. the cluster's OIDC issuer, trailing slash included) into the app's federated credential."
        }
        700212 => {
            "No federated credential of the app has the token's audience: request the token for api://AzureADTokenExchange and keep that audience in the federated credential."
        }
        700213 | 7002138 => {
            "No federated credential of the app has the token's subject: set it exactly, case included (system:serviceaccount:<namespace>:<service account> on Kubernetes, repo:<owner>/<repo>:... on GitHub Actions)."
        }
        70023 => {
            "The federated token lives longer than the service accepts (at most 1 day and 1 hour): have its issuer mint shorter-lived tokens (a projected token's expirationSeconds, e.g. 3600)."
        }
        50166 | 90061 | 501661 => {
            "The service could not fetch the token issuer's OpenID configuration or keys: the issuer URL must be reachable from the internet over https ({issuer}/.well-known/openid-configuration and its jwks_uri)."
        }
        7000272 => {
            "The key that signed the federated token is not among its issuer's published keys (jwks_uri): publish the current signing key, or check the issuer."
        }
        50013 => {
            "The assertion's signature does not verify with the issuer's key: send the token exactly as issued, and check that the issuer publishes the key that signed it."
        }
        5002738 => "Sign client assertions with RS256 or PS256.",
        50012 => "Check the certificate and its trust configuration for subject-name/issuer authentication.",
        1002012 => {
            "App-only tokens need a '/.default' scope: use https://graph.microsoft.com/.default and grant the permissions in the app registration."
        }
        70011 => "A scope is malformed: check the scopes.",
        700022 => "Ask for one resource per request (a single <resource>/.default).",
        500011 => {
            "Check the resource in the scopes, and that the API is installed and consented in this tenant."
        }
        65001 => {
            "Grant consent: API permissions > Grant admin consent in the app registration (or sign in interactively and accept the consent page)."
        }
        65004 => "The user declined consent on the sign-in page: run again and choose Accept.",
        50011 => {
            "Add the redirect URI http://localhost under Authentication > Mobile and desktop applications in the app registration (Entra ignores its port)."
        }
        50020 => {
            "The account is not in this tenant: sign in with an account of the tenant (or invite it as a guest), or use the authority of the account's own tenant (organizations for a multi-tenant app)."
        }
        50126 => "Check the username and password.",
        50034 => "The user is not in this directory: check the username (UPN) and the tenant.",
        50076 | 50079 => {
            "The account needs multi-factor authentication, which this flow cannot do: use the device-code flow."
        }
        53003 => "Blocked by Conditional Access: ask your administrator to review the policy.",
        50053 => "The account is locked: wait, or ask an administrator to unlock it.",
        50055 => "The password has expired: reset it, then try again.",
        50057 => "The account is disabled: ask an administrator to enable it.",
        70016 => "The user has not finished signing in yet: keep polling.",
        70019 => "The device code expired: start the flow again and sign in within 15 minutes.",
        700082 | 50173 => "The refresh token is no longer valid: sign in again.",
        50049 => "Unknown authority host: check the authority.",
        _ => return None,
    })
}

/// An error envelope from Microsoft Graph.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GraphError {
    /// HTTP status.
    pub status: u16,
    /// Graph's code, e.g. `Authorization_RequestDenied`.
    pub code: String,
    /// Graph's message.
    pub message: String,
    /// `request-id` (from the envelope's innerError, else the response header).
    pub request_id: Option<String>,
    /// `client-request-id` echoed by Graph.
    pub client_request_id: Option<String>,
    /// `innerError.date`.
    pub date: Option<String>,
    /// `Retry-After` header, on throttling.
    pub retry_after: Option<Duration>,
    /// The claims a 401's `WWW-Authenticate: Bearer error="insufficient_claims", claims="…"` asks for (continuous
    /// access evaluation), base64-decoded: send them with the next token request.
    pub claims_challenge: Option<String>,
}

impl GraphError {
    /// A one-line fix for the codes a sample user meets.
    pub fn fix(&self) -> Option<&'static str> {
        Some(match self.code.as_str() {
            "Authorization_RequestDenied" => {
                "The app lacks the permission: add it under API permissions (Application permissions for daemons), then Grant admin consent."
            }
            _ if self.status == 401 && self.claims_challenge.is_some() => {
                "A tenant policy (Conditional Access, continuous access evaluation) requires more than this token proves: sign in again."
            }
            "InvalidAuthenticationToken" => {
                "A new token was refused: its audience is likely not the API called (the scopes are for another API than the URL: for Graph use https://graph.microsoft.com/.default or Graph permissions), or a tenant policy rejects it."
            }
            "BadRequest" if self.message.contains("/me request") => {
                "/me needs a signed-in user; an app-only token can call /users/{id} instead."
            }
            "TooManyRequests" => "Graph is throttling this app: wait for Retry-After, then try again.",
            _ if self.status == 429 => "Graph is throttling this app: wait for Retry-After, then try again.",
            _ if self.status >= 500 => {
                "Microsoft Graph failed on its side, and the retries did too: try again later; if it persists, give Microsoft support the request id and date."
            }
            "Request_ResourceNotFound" => {
                "Check the id in the Graph URL (for applications: the Object ID, not the Application ID)."
            }
            _ => return None,
        })
    }
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Microsoft Graph answered HTTP {}: {}: {}",
            self.status, self.code, self.message
        )
    }
}

impl std::error::Error for GraphError {}

/// A request that did not complete as the protocol says.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// Connection refused, DNS failure, connect timeout, or a TLS failure (an untrusted certificate among them:
    /// see [`HttpError::fix`]).
    #[error("could not reach {url}: {source}")]
    Connect {
        /// Where we tried to go.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// No answer within the configured time.
    #[error("no answer from {url} within {timeout:?}")]
    Timeout {
        /// Where we tried to go.
        url: String,
        /// The limit that ran out.
        timeout: Duration,
    },
    /// The connection was reset or closed before the answer was complete (after the retries), or another
    /// transport failure.
    #[error("the request to {url} failed (connection dropped or answer incomplete): {source}")]
    Request {
        /// Where we tried to go.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The answer was larger than the configured cap.
    #[error("the answer from {url} is larger than {limit} bytes")]
    TooLarge {
        /// Where it came from.
        url: String,
        /// The cap.
        limit: usize,
    },
    /// A redirect from an endpoint that must not redirect (identity endpoints never do).
    #[error(
        "{url} answered with a redirect (HTTP {status}) to {location}; identity endpoints do not redirect"
    )]
    Redirect {
        /// Where it came from.
        url: String,
        /// 3xx status.
        status: u16,
        /// The `Location` header, resolved, without query, fragment or user info.
        location: String,
    },
    /// An HTTP status with a body that is not the protocol's error shape (a proxy page, an outage page…).
    #[error("{url} answered HTTP {status} without a recognisable error body{}", excerpt_suffix(.excerpt))]
    UnexpectedStatus {
        /// Where it came from.
        url: String,
        /// HTTP status.
        status: u16,
        /// Start of the body, for diagnosis (never a token: only error answers are quoted).
        excerpt: String,
        /// `Retry-After`, when sent.
        retry_after: Option<Duration>,
    },
    /// A success answer that does not parse as the protocol says.
    #[error("invalid answer from {url}: {reason}")]
    InvalidResponse {
        /// Where it came from.
        url: String,
        /// What was wrong.
        reason: String,
    },
}

fn excerpt_suffix(excerpt: &str) -> String {
    if excerpt.is_empty() {
        String::new()
    } else {
        format!(": {excerpt}")
    }
}

impl HttpError {
    /// A one-line fix. Every variant has one.
    pub fn fix(&self) -> Option<&'static str> {
        Some(match self {
            HttpError::Connect { source, .. } if is_certificate_error(source) => {
                "The server's TLS certificate is not trusted (not retried: it will not heal). Behind a TLS-inspecting proxy, add the proxy's CA certificate to IDENTITY_EXTRA_CA_CERTS (a PEM file; the system bundle, e.g. /etc/ssl/certs/ca-certificates.crt, if the CA is installed there); otherwise check the proxy settings (HTTPS_PROXY, NO_PROXY) and the host name."
            }
            HttpError::Connect { .. } => {
                "Check the network connection, the host name in the authority or URL, and the proxy settings (HTTPS_PROXY, NO_PROXY)."
            }
            HttpError::Timeout { .. } => {
                "The server did not answer in time: check the network and the proxy settings (HTTPS_PROXY), then try again."
            }
            HttpError::Request { .. } => {
                "The connection was dropped before the answer was complete, also on retry: check the network and the proxy settings (HTTPS_PROXY), then try again."
            }
            HttpError::TooLarge { .. } => {
                "The answer is far larger than the identity platform or Graph sends: something else answered. Check the URL and the proxy settings (HTTPS_PROXY)."
            }
            HttpError::Redirect { .. } => {
                "Identity endpoints never redirect: use the identity platform's host itself in the authority (e.g. https://login.microsoftonline.com/<tenant>), and check the proxy settings (HTTPS_PROXY)."
            }
            HttpError::UnexpectedStatus { status: 404, .. } => {
                "Check the authority (host and tenant): this host does not serve the Microsoft identity platform endpoints."
            }
            HttpError::UnexpectedStatus { status: 429, .. } => {
                "The service is throttling requests: wait (see Retry-After), then try again."
            }
            HttpError::UnexpectedStatus { status, .. } if *status >= 500 => {
                "The service is having trouble: try again later."
            }
            HttpError::UnexpectedStatus { .. } => {
                "Something other than the service answered (a proxy, a captive portal or a wrong host): check the authority or URL and the proxy settings (HTTPS_PROXY, NO_PROXY)."
            }
            HttpError::InvalidResponse { reason, .. } if reason.contains("HTML page") => {
                "A proxy or captive portal answered instead of the identity platform: sign in to the network or check the proxy settings (HTTPS_PROXY, NO_PROXY), then try again."
            }
            HttpError::InvalidResponse { .. } => {
                "The answer is not what the protocol specifies: a proxy or another server may have answered. Check the authority or URL and the proxy settings (HTTPS_PROXY, NO_PROXY); if it persists, report the correlation id."
            }
        })
    }
}

/// A TLS certificate verification failure somewhere in the error's sources (rustls says "invalid peer
/// certificate"): a missing CA, not a network glitch.
pub(crate) fn is_certificate_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        let text = s.to_string();
        if text.contains("invalid peer certificate") || text.contains("UnknownIssuer") {
            return true;
        }
        source = s.source();
    }
    false
}

/// Shorthand for this crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
