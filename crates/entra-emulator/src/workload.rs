//! Workload identity federation on the emulator's public face: service-account tokens from its own issuer
//! for tests, a projected token file rotated like the kubelet's (`--workload-token-file`), and federated
//! identity credentials added at run time.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::directory::{FederatedIdentityCredential, TOKEN_EXCHANGE_AUDIENCE};
use crate::error::EmulatorError;
use crate::seed::WORKLOAD_SUBJECT;
use crate::workload_issuer::Minted;
use std::sync::Arc;

use crate::state::AppState;
use crate::state_dir;

/// What a service-account token minted by the emulator's issuer says. [`WorkloadToken::new`] is the token a
/// pod of the seeded `workload` app would get: subject [`WORKLOAD_SUBJECT`], audience
/// `api://AzureADTokenExchange`, issued now, valid for an hour.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkloadToken {
    /// `sub`.
    pub subject: String,
    /// `aud` (an array, as Kubernetes writes it).
    pub audiences: Vec<String>,
    /// `iss`; `None` for the emulator's issuer. Another value makes a token the emulator cannot verify (an
    /// unknown issuer), still signed with its issuer's key.
    pub issuer: Option<String>,
    /// `iat` and `nbf`, seconds since the Unix epoch.
    pub issued_at: i64,
    /// `exp` − `iat`, seconds (negative values allowed for broken tokens).
    pub lifetime_secs: i64,
}

impl Default for WorkloadToken {
    fn default() -> Self {
        Self::new()
    }
}

impl WorkloadToken {
    /// The seeded workload's token, issued now, valid for an hour.
    pub fn new() -> Self {
        WorkloadToken {
            subject: WORKLOAD_SUBJECT.to_owned(),
            audiences: vec![TOKEN_EXCHANGE_AUDIENCE.to_owned()],
            issuer: None,
            issued_at: time::OffsetDateTime::now_utc().unix_timestamp(),
            lifetime_secs: 3600,
        }
    }

    /// With this `sub`.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = subject.into();
        self
    }

    /// With this single `aud`.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences = vec![audience.into()];
        self
    }

    /// With this `iss` instead of the emulator's issuer.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Issued this many seconds before now (then, with the default hour, expired after 3600).
    pub fn issued_secs_ago(mut self, secs: i64) -> Self {
        self.issued_at = time::OffsetDateTime::now_utc()
            .unix_timestamp()
            .saturating_sub(secs);
        self
    }

    /// Valid for this many seconds after `iat`.
    pub fn lifetime_secs(mut self, secs: i64) -> Self {
        self.lifetime_secs = secs;
        self
    }
}

/// A token file the emulator keeps rotating, as the kubelet does a projected service-account token: a new
/// token at 80 % of the lifetime. Rotation stops when this is dropped (the file stays).
#[derive(Debug)]
pub struct ProjectedToken {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl ProjectedToken {
    /// The token file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ProjectedToken {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The URL of the emulator's own token issuer.
pub(crate) fn issuer(state: &AppState) -> String {
    state.workload_issuer.issuer().to_owned()
}

/// A service-account token signed by the emulator's issuer.
pub(crate) fn mint(state: &AppState, token: &WorkloadToken) -> Result<String, EmulatorError> {
    state
        .workload_issuer
        .mint(&Minted {
            issuer: token.issuer.as_deref(),
            subject: &token.subject,
            audiences: &token.audiences,
            issued_at: token.issued_at,
            lifetime_secs: token.lifetime_secs,
        })
        .map_err(EmulatorError::SigningKey)
}

/// Writes a token to `path` (mode 0600) in one rename, as the kubelet does, so a reader never sees half a token.
pub(crate) fn write_file(state: &AppState, path: &Path, token: &WorkloadToken) -> Result<(), EmulatorError> {
    let jwt = mint(state, token)?;
    state_dir::write_atomic(path, jwt.as_bytes(), true).map_err(|source| EmulatorError::StateDir {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes the seeded workload's token now, then a new one at 80 % of each token's lifetime.
pub(crate) fn project(
    state: Arc<AppState>,
    path: PathBuf,
    lifetime: Duration,
) -> Result<ProjectedToken, EmulatorError> {
    let lifetime_secs = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX).max(10);
    write_file(&state, &path, &WorkloadToken::new().lifetime_secs(lifetime_secs))?;
    let file = path.clone();
    let every = lifetime.mul_f64(0.8).max(Duration::from_secs(8));
    let task = tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            match write_file(&state, &file, &WorkloadToken::new().lifetime_secs(lifetime_secs)) {
                Ok(()) => tracing::info!(file = %file.display(), "rotated the projected workload token"),
                Err(e) => {
                    tracing::warn!(file = %file.display(), "cannot rotate the projected workload token: {e}")
                }
            }
        }
    });
    Ok(ProjectedToken { path, task })
}

/// Adds a federated identity credential to an app; false if there is no such app. Returns the directory to save.
pub(crate) fn add_credential(
    state: &AppState,
    app: &str,
    credential: FederatedIdentityCredential,
) -> Option<crate::directory::Directory> {
    let mut directory = state
        .directory
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let registration = directory.app_mut(app)?;
    registration.federated_credentials.push(credential);
    Some(directory.clone())
}
