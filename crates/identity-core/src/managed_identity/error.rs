//! Typed errors of managed identity, each with a fix. A message a managed-identity endpoint sends is shown
//! shortened and cleaned, and never when it repeats the request's secret.

use super::identity::ManagedIdentitySource;

/// Why a managed-identity token could not be obtained.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManagedIdentityError {
    /// An environment variable that names the endpoint (or its secret) is unusable.
    #[error("invalid {variable} for the {platform} managed identity endpoint: {reason}")]
    InvalidEnvironment {
        /// The source the environment selected.
        platform: ManagedIdentitySource,
        /// The variable.
        variable: &'static str,
        /// What is wrong (never its value when it is a secret).
        reason: String,
    },
    /// The detected source cannot do what was asked (Cloud Shell at all, or a user-assigned identity where the
    /// source chooses the identity itself).
    #[error("{platform} cannot be used for this: {reason}")]
    Unsupported {
        /// The source.
        platform: ManagedIdentitySource,
        /// Why.
        reason: String,
    },
    /// The resource (or scope) asked for is empty or not a resource URI.
    #[error(
        "invalid resource '{resource}': expected a resource URI such as https://graph.microsoft.com (or its /.default scope)"
    )]
    InvalidResource {
        /// What was given.
        resource: String,
    },
    /// The endpoint could not be reached, or dropped the connection.
    #[error("the {platform} managed identity endpoint {url} could not be reached: {reason}")]
    Unreachable {
        /// The source.
        platform: ManagedIdentitySource,
        /// The endpoint, without its query.
        url: String,
        /// Connection refused, timeout, ...
        reason: String,
    },
    /// The endpoint says no identity (or not the requested one) is assigned to this resource.
    #[error(
        "no managed identity {identity} is assigned to this resource ({platform} answered {status}: {message})"
    )]
    IdentityNotFound {
        /// The source.
        platform: ManagedIdentitySource,
        /// Which identity was asked for ("system-assigned", "with client id ...").
        identity: String,
        /// The HTTP status.
        status: u16,
        /// The endpoint's message, cleaned.
        message: String,
    },
    /// The endpoint refused the request with its own error.
    #[error("{platform} refused the token request (HTTP {status}{}): {message}", code.as_deref().map(|c| format!(", {c}")).unwrap_or_default())]
    Refused {
        /// The source.
        platform: ManagedIdentitySource,
        /// The HTTP status.
        status: u16,
        /// The error code it sent (`invalid_request`, `SecretHeaderNotFound`, ...).
        code: Option<String>,
        /// Its message, cleaned.
        message: String,
    },
    /// IMDS kept answering a transient status (404, 410, 429, 5xx) until the retries ran out.
    #[error("{platform} still answered HTTP {status} after {attempts} attempts")]
    RetriesExhausted {
        /// The source.
        platform: ManagedIdentitySource,
        /// The last status.
        status: u16,
        /// Requests sent.
        attempts: u32,
    },
    /// A success answer that is not a usable token (missing member, expired, not JSON, too large).
    #[error("the {platform} answer is unusable: {reason}")]
    InvalidResponse {
        /// The source.
        platform: ManagedIdentitySource,
        /// What is wrong (never a value from the answer).
        reason: String,
    },
    /// The Azure Arc challenge names a key file this client will not read.
    #[error("refusing the Azure Arc challenge: {reason}")]
    ArcChallenge {
        /// Why (outside the agent's token directory, not a .key file, too large, not a regular file, ...).
        reason: String,
    },
    /// Azure Arc answered for another identity than the user-assigned one asked for.
    #[error(
        "Azure Arc did not confirm the requested user-assigned identity ({identity}) in its answer; the agent likely returned the machine's system-assigned identity"
    )]
    ArcIdentityNotConfirmed {
        /// The requested identity.
        identity: String,
    },
    /// The Service Fabric endpoint's certificate is not the one pinned by `IDENTITY_SERVER_THUMBPRINT`.
    #[error(
        "the Service Fabric endpoint's certificate (SHA-1 {presented}) is not the one pinned by IDENTITY_SERVER_THUMBPRINT ({expected}); nothing was sent"
    )]
    ThumbprintMismatch {
        /// The pinned thumbprint (hex).
        expected: String,
        /// The server's (hex).
        presented: String,
    },
}

impl ManagedIdentityError {
    /// A one-line fix.
    pub fn fix(&self) -> &'static str {
        match self {
            ManagedIdentityError::InvalidEnvironment { .. } => {
                "The platform sets these variables: do not override them, or unset them to fall back to the next source."
            }
            ManagedIdentityError::Unsupported { platform, .. } => match platform {
                ManagedIdentitySource::CloudShell => {
                    "Cloud Shell gives tokens of the signed-in user, not of an app: sign in as a user (the device-code sample) or run on a host with a managed identity."
                }
                _ => {
                    "Ask for the system-assigned identity: on this host the platform decides which identity the application gets."
                }
            },
            ManagedIdentityError::InvalidResource { .. } => {
                "Ask for a resource URI, for example https://graph.microsoft.com (or the scope https://graph.microsoft.com/.default)."
            }
            ManagedIdentityError::Unreachable { platform, .. } => match platform {
                ManagedIdentitySource::Imds => {
                    "IMDS answers only on Azure VMs, scale sets and AKS nodes: run there, or assign an identity to a host that has one."
                }
                _ => {
                    "The managed identity endpoint of this host did not answer: check that an identity is enabled for it, then try again."
                }
            },
            ManagedIdentityError::IdentityNotFound { .. } => {
                "Assign the identity to this resource (Azure portal: the resource's Identity page), or ask for one that is assigned (the client id of a user-assigned identity)."
            }
            ManagedIdentityError::Refused { .. } => {
                "Check the resource asked for and that the identity is enabled for this resource; the message says what the endpoint refused."
            }
            ManagedIdentityError::RetriesExhausted { .. } => {
                "The endpoint is updating or throttling: wait a minute and try again (a newly assigned identity can take a few minutes to be available)."
            }
            ManagedIdentityError::InvalidResponse { .. } => {
                "The endpoint did not answer as the protocol says: check that this host really is the platform the environment says it is."
            }
            ManagedIdentityError::ArcChallenge { .. } => {
                "Only the Azure Connected Machine agent's own key files are read: check the agent's installation, and run as a user of its himds group."
            }
            ManagedIdentityError::ArcIdentityNotConfirmed { .. } => {
                "Update the Azure Connected Machine agent (user-assigned identities need a recent one), or ask for the system-assigned identity."
            }
            ManagedIdentityError::ThumbprintMismatch { .. } => {
                "The endpoint is not the cluster's token service: check the environment the Service Fabric runtime set for this application."
            }
        }
    }
}
