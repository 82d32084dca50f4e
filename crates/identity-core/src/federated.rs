//! Workload identity federation: a client credential that is a token from another identity provider (a
//! Kubernetes service-account token projected into a file, a CI system's OIDC token), sent as the client
//! assertion (`client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`). Entra trusts it
//! through a federated identity credential on the app registration (issuer, subject, audience
//! [`FEDERATED_TOKEN_AUDIENCE`]).
//!
//! The token is a bearer credential: it never appears in `Debug`, errors or logs.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::cache::now_secs;
use crate::secret::SecretToken;

/// The audience Entra expects in a federated token (the federated credential's audience).
pub const FEDERATED_TOKEN_AUDIENCE: &str = "api://AzureADTokenExchange";

/// The largest token file read: service-account and CI tokens are 1–2 KiB.
pub const MAX_FEDERATED_TOKEN_BYTES: u64 = 16 * 1024;

/// A copy of the file is re-read after this long even when the file looks unchanged (the kubelet rotates the
/// projected token at 80 % of its lifetime, an hour by default; azure_identity re-reads after 10 minutes).
const REREAD_AFTER_SECS: u64 = 300;

/// A copy this close to its `exp` is re-read: the kubelet will have written a new one.
const RENEW_BEFORE_EXPIRY_SECS: u64 = 60;

/// Domain separation for credential fingerprints.
const FINGERPRINT_DOMAIN: &[u8] = b"identity-core federated credential fingerprint v1\0";

type CallbackError = Box<dyn std::error::Error + Send + Sync>;
type CallbackFuture = Pin<Box<dyn Future<Output = Result<String, CallbackError>> + Send>>;
type Callback = dyn Fn() -> CallbackFuture + Send + Sync;

/// Why a federated token could not be used. Nothing was sent to the identity platform.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FederatedError {
    /// The token file does not exist.
    #[error("federated token file '{path}' not found")]
    NotFound {
        /// The path.
        path: String,
    },
    /// The token file exists but cannot be read (permissions, not a regular file, too large).
    #[error("cannot read the federated token file '{path}': {reason}")]
    Unreadable {
        /// The path.
        path: String,
        /// The reason (never the content).
        reason: String,
    },
    /// The file or the callback gave an empty token.
    #[error("the federated token from {origin} is empty")]
    Empty {
        /// `file '<path>'` or `the callback`.
        origin: String,
    },
    /// The token is not a JWT (three base64url parts whose middle one is a JSON object).
    #[error("the federated token from {origin} is not a JWT: {reason}")]
    NotJwt {
        /// `file '<path>'` or `the callback`.
        origin: String,
        /// What is wrong (never the content).
        reason: &'static str,
    },
    /// The token's `exp` has passed; it was not sent.
    #[error(
        "the federated token from {origin} expired {ago_secs} s ago (its exp claim is {exp}); it was not sent"
    )]
    Expired {
        /// `file '<path>'` or `the callback`.
        origin: String,
        /// The `exp` claim (seconds since the Unix epoch).
        exp: u64,
        /// How long ago that was.
        ago_secs: u64,
    },
    /// The callback returned an error.
    #[error("the federated token callback failed: {source}")]
    Callback {
        /// The callback's error.
        #[source]
        source: CallbackError,
    },
}

impl FederatedError {
    /// A one-line fix.
    pub fn fix(&self) -> Option<&'static str> {
        Some(match self {
            FederatedError::NotFound { .. } => {
                "Check the federated token file's path. On Kubernetes the workload identity webhook projects the token into pods labelled azure.workload.identity/use=true whose service account is annotated with the client id."
            }
            FederatedError::Unreadable { .. } => {
                "Make the federated token file a regular file (or a link to one) of at most 16 KiB that this user can read."
            }
            FederatedError::Empty { .. } => {
                "Check that the cluster or CI system issues a token for this workload (audience api://AzureADTokenExchange)."
            }
            FederatedError::NotJwt { .. } => {
                "Give the token exactly as its issuer minted it: a JWT (three base64url parts separated by dots), not a file path or a JSON answer."
            }
            FederatedError::Expired { .. } => {
                "Give a fresh token: on Kubernetes check that the kubelet still rotates the projected token (pod running, token volume mounted); a callback must fetch a new token on every call."
            }
            FederatedError::Callback { .. } => {
                "Check the token callback (for a CI system, that the job may request an OIDC token and the request's audience is api://AzureADTokenExchange)."
            }
        })
    }
}

/// A federated client credential: a token minted by another identity provider, read from a file (Kubernetes
/// projects and rotates it: `AZURE_FEDERATED_TOKEN_FILE` in pods using workload identity) or asked of a
/// callback (a CI system's OIDC token).
///
/// The file is consulted on every token request that goes to the identity platform: the copy in memory is
/// reused only while the file is unchanged (size, modification time, inode), less than five minutes old, and
/// more than a minute from its own `exp`. The callback is called on every such request, as MSAL does. A token
/// whose `exp` has passed is never sent ([`FederatedError::Expired`]). Token requests served from the token
/// cache need no assertion.
///
/// `Debug` shows where the token comes from, never the token.
pub struct FederatedCredential {
    source: Source,
    copy: Mutex<Option<FileCopy>>,
    fingerprint: String,
}

enum Source {
    File(PathBuf),
    Callback(Arc<Callback>),
}

struct FileCopy {
    token: SecretToken,
    stamp: FileStamp,
    read_at: u64,
    exp: Option<u64>,
}

/// What tells a rewritten or replaced file apart (Kubernetes swaps a `..data` symlink: the target changes).
#[derive(Clone, Debug, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    inode: (u64, u64),
}

impl FileStamp {
    fn of(metadata: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt as _;
        FileStamp {
            len: metadata.len(),
            modified: metadata.modified().ok(),
            #[cfg(unix)]
            inode: (metadata.dev(), metadata.ino()),
        }
    }
}

impl fmt::Debug for FederatedCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::File(path) => f
                .debug_struct("FederatedCredential")
                .field("file", path)
                .finish_non_exhaustive(),
            Source::Callback(_) => f
                .debug_struct("FederatedCredential")
                .field("callback", &"[fn]")
                .finish_non_exhaustive(),
        }
    }
}

impl FederatedCredential {
    /// A token read from `path` (for Kubernetes: the `AZURE_FEDERATED_TOKEN_FILE` the workload identity webhook
    /// sets, `/var/run/secrets/azure/tokens/azure-identity-token`). Nothing is read until a token is needed.
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::{Authority, ConfidentialClient, FederatedCredential};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let authority = Authority::parse("https://login.microsoftonline.com/contoso.onmicrosoft.com")?;
    /// let credential = FederatedCredential::from_file("/var/run/secrets/azure/tokens/azure-identity-token");
    /// let app = ConfidentialClient::builder("00000000-0000-0000-0000-000000000001", authority)
    ///     .credential(credential)
    ///     .build()?;
    /// # let _ = app;
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_file(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let fingerprint = fingerprint(&[b"file\0", path.as_os_str().as_encoded_bytes()]);
        FederatedCredential {
            source: Source::File(path),
            copy: Mutex::new(None),
            fingerprint,
        }
    }

    /// A token asked of `callback` on every request to the identity platform (for example a CI system's OIDC
    /// token, requested with the audience [`FEDERATED_TOKEN_AUDIENCE`]).
    ///
    /// Tokens obtained with a callback credential are cached under this instance only: another process (or
    /// another `FederatedCredential`) sharing the token cache is not served them, as nothing tells that its
    /// callback speaks for the same identity.
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::FederatedCredential;
    ///
    /// let credential = FederatedCredential::from_callback(|| async {
    ///     // Ask the CI system for an OIDC token here.
    ///     std::env::var("CI_OIDC_TOKEN")
    /// });
    /// assert!(format!("{credential:?}").contains("callback"));
    /// ```
    pub fn from_callback<F, Fut, E>(callback: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, E>> + Send + 'static,
        E: Into<CallbackError> + 'static,
    {
        let callback: Arc<Callback> = Arc::new(move || {
            let future = callback();
            Box::pin(async move { future.await.map_err(Into::into) }) as CallbackFuture
        });
        let instance = uuid::Uuid::new_v4();
        FederatedCredential {
            source: Source::Callback(callback),
            copy: Mutex::new(None),
            fingerprint: fingerprint(&[b"callback\0", instance.as_bytes()]),
        }
    }

    /// The token file, for a file credential.
    pub fn path(&self) -> Option<&Path> {
        match &self.source {
            Source::File(path) => Some(path),
            Source::Callback(_) => None,
        }
    }

    /// Part of the cache key of the tokens this credential obtains (never derived from a token, which rotates).
    pub(crate) fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The token to send as the client assertion, checked (a JWT, not expired).
    pub(crate) async fn assertion(&self) -> Result<SecretToken, FederatedError> {
        match &self.source {
            Source::File(path) => self.file_token(path),
            Source::Callback(callback) => {
                let token = callback()
                    .await
                    .map_err(|source| FederatedError::Callback { source })?;
                let token = token.trim();
                check_token(token, "the callback", now_secs())?;
                Ok(SecretToken::new(token))
            }
        }
    }

    fn file_token(&self, path: &Path) -> Result<SecretToken, FederatedError> {
        let shown = path.display().to_string();
        let io_error = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::NotFound => FederatedError::NotFound { path: shown.clone() },
            _ => FederatedError::Unreadable {
                path: shown.clone(),
                reason: e.to_string(),
            },
        };
        let now = now_secs();
        let stamp = FileStamp::of(&std::fs::metadata(path).map_err(io_error)?);
        let mut copy = self.copy.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(c) = copy.as_ref()
            && c.stamp == stamp
            && now.saturating_sub(c.read_at) < REREAD_AFTER_SECS
            && c.exp
                .is_none_or(|exp| exp > now.saturating_add(RENEW_BEFORE_EXPIRY_SECS))
        {
            return Ok(c.token.clone());
        }
        *copy = None;
        let bytes = crate::fs::read_bounded(path, MAX_FEDERATED_TOKEN_BYTES).map_err(io_error)?;
        let origin = format!("file '{shown}'");
        let text = std::str::from_utf8(&bytes).map_err(|_| FederatedError::NotJwt {
            origin: origin.clone(),
            reason: "it is not UTF-8 text",
        })?;
        let token = text.trim();
        let exp = check_token(token, &origin, now)?;
        let token = SecretToken::new(token);
        // The stamp of what was read: a rotation between the stat and the read is caught on the next request.
        *copy = Some(FileCopy {
            token: token.clone(),
            stamp,
            read_at: now,
            exp,
        });
        tracing::debug!(file = %shown, "read the federated token file");
        Ok(token)
    }
}

/// Checks that `token` is a JWT that has not expired; returns its `exp`, when it has one.
fn check_token(token: &str, origin: &str, now: u64) -> Result<Option<u64>, FederatedError> {
    let not_jwt = |reason: &'static str| FederatedError::NotJwt {
        origin: origin.to_string(),
        reason,
    };
    if token.is_empty() {
        return Err(FederatedError::Empty {
            origin: origin.to_string(),
        });
    }
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(not_jwt("it is not three non-empty parts separated by dots"));
    }
    let payload = URL_SAFE_NO_PAD
        .decode(parts[1].trim_end_matches('='))
        .map_err(|_| not_jwt("its payload is not base64url"))?;
    let claims: serde_json::Value =
        serde_json::from_slice(&payload).map_err(|_| not_jwt("its payload is not JSON"))?;
    let claims = claims
        .as_object()
        .ok_or_else(|| not_jwt("its payload is not a JSON object"))?;
    let exp = match claims.get("exp") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && *f < 1e15)
                .map(|f| f as u64)
        }),
        Some(serde_json::Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
    };
    if claims.get("exp").is_some_and(|v| !v.is_null()) && exp.is_none() {
        return Err(not_jwt("its exp claim is not a number of seconds"));
    }
    if let Some(exp) = exp
        && exp <= now
    {
        return Err(FederatedError::Expired {
            origin: origin.to_string(),
            exp,
            ago_secs: now - exp,
        });
    }
    Ok(exp)
}

fn fingerprint(parts: &[&[u8]]) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(FINGERPRINT_DOMAIN);
    for part in parts {
        context.update(part);
    }
    context
        .finish()
        .as_ref()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        format!(
            "{}.{}.c2lnbmF0dXJl",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#),
            URL_SAFE_NO_PAD.encode(claims)
        )
    }

    #[test]
    fn tokens_are_checked_without_being_quoted() {
        let now = 1_800_000_000;
        assert_eq!(
            check_token(&jwt(r#"{"exp":1800000600}"#), "x", now).ok(),
            Some(Some(1_800_000_600))
        );
        assert_eq!(
            check_token(&jwt(r#"{"exp":"1800000600"}"#), "x", now).ok(),
            Some(Some(1_800_000_600))
        );
        assert_eq!(check_token(&jwt(r#"{"sub":"a"}"#), "x", now).ok(), Some(None));
        let expired = check_token(&jwt(r#"{"exp":1799999000}"#), "x", now).unwrap_err();
        assert!(
            matches!(expired, FederatedError::Expired { ago_secs: 1000, .. }),
            "{expired}"
        );
        for (bad, secret) in [
            ("secret-value-only", "secret-value-only"),
            ("a.b", "a.b"),
            ("aaa.secretpart.ccc", "secretpart"),
            (&jwt(r#"["secretish"]"#)[..], "secretish"),
            (&jwt(r#"{"exp":"soon-secret"}"#)[..], "soon-secret"),
        ] {
            let err = check_token(bad, "the callback", now).unwrap_err();
            assert!(matches!(err, FederatedError::NotJwt { .. }), "{err}");
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(matches!(
            check_token("", "x", now),
            Err(FederatedError::Empty { .. })
        ));
    }

    #[test]
    fn debug_and_fingerprint_never_show_the_token() {
        let credential = FederatedCredential::from_file("/var/run/secrets/azure/tokens/azure-identity-token");
        let shown = format!("{credential:?}");
        assert!(shown.contains("azure-identity-token"), "{shown}");
        assert_eq!(credential.fingerprint().len(), 16);
        let other = FederatedCredential::from_file("/elsewhere");
        assert_ne!(credential.fingerprint(), other.fingerprint());
        let a = FederatedCredential::from_callback(|| async { Ok::<_, std::io::Error>(String::new()) });
        let b = FederatedCredential::from_callback(|| async { Ok::<_, std::io::Error>(String::new()) });
        assert_ne!(a.fingerprint(), b.fingerprint());
    }
}
