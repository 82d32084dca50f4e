//! The error of starting and driving an emulator.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmulatorError {
    /// A listener could not be bound (port in use, no permission, …).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The state directory (or the temporary directory) could not be used.
    #[error("state directory {path}: {source}")]
    StateDir {
        /// The directory or file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file in the state directory exists but cannot be used.
    #[error("invalid state in {path}: {message}")]
    CorruptState {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// Certificates or the TLS configuration could not be created.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// The token-signing key could not be created.
    #[error("token signing key: {0}")]
    SigningKey(String),
    /// The directory given to the builder is unusable.
    #[error("invalid directory: {0}")]
    InvalidDirectory(String),
    /// A development certificate could not be generated.
    #[error("certificate generation failed: {0}")]
    Certificate(String),
    /// A device code could not be approved or declined.
    #[error("device code {user_code}: {message}")]
    DeviceCode {
        /// The user code.
        user_code: String,
        /// Why (no such code, not pending any more, or the user cannot sign in).
        message: String,
    },
}
