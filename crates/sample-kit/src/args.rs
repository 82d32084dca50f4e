//! Command-line flags, each backed by its environment variable (Azure SDK names), and `.env` loading.

use std::path::PathBuf;

use clap::{Args, Parser};
use tracing_subscriber::EnvFilter;

use crate::config::SetupError;

/// Settings every sample shares. Flags override variables; variables come from the environment or `.env`.
#[derive(Args, Clone, Default)]
#[command(next_help_heading = "Identity platform")]
pub struct CommonArgs {
    /// Full authority URL, quickstart style: https://login.microsoftonline.com/<tenant>. Overrides
    /// AZURE_AUTHORITY_HOST and AZURE_TENANT_ID.
    #[arg(long, env = "AUTHORITY", value_name = "URL")]
    pub authority: Option<String>,

    /// Authority host, for national clouds [default: https://login.microsoftonline.com].
    #[arg(long, env = "AZURE_AUTHORITY_HOST", value_name = "URL")]
    pub authority_host: Option<String>,

    /// Directory (tenant) ID or a verified domain (app registration > Overview).
    #[arg(long, env = "AZURE_TENANT_ID", value_name = "TENANT")]
    pub tenant_id: Option<String>,

    /// Application (client) ID (app registration > Overview).
    #[arg(long, env = "AZURE_CLIENT_ID", value_name = "GUID")]
    pub client_id: Option<String>,

    /// Space-separated scopes [default: the sample's, see above].
    #[arg(long, env = "SCOPE", value_name = "SCOPES", help_heading = "Request")]
    pub scope: Option<String>,

    /// The Microsoft Graph URL to call [default: the sample's, see above].
    #[arg(long, env = "GRAPH_ENDPOINT", value_name = "URL", help_heading = "Request")]
    pub graph_endpoint: Option<String>,

    /// PEM file of extra CA certificates to trust (TLS-inspecting proxy, emulator).
    #[arg(long, env = identity_core::EXTRA_CA_CERTS_VAR, value_name = "FILE", help_heading = "Network")]
    pub extra_ca_certs: Option<PathBuf>,

    /// Token cache: `file` (default; survives runs), `encrypted-file` (the same, encrypted with a key in the
    /// kernel keyring; Linux), `memory`, or a Redis URL (redis://[:password@]host:port/db) shared by many daemons.
    #[arg(
        long,
        env = "IDENTITY_CACHE",
        value_name = "STORE",
        default_value = "file",
        hide_env_values = true,
        help_heading = "Token cache"
    )]
    pub cache: String,

    /// File of the file cache [default: <user cache dir>/identity-core/token-cache.json].
    #[arg(
        long,
        env = "IDENTITY_CACHE_PATH",
        value_name = "FILE",
        help_heading = "Token cache"
    )]
    pub cache_path: Option<PathBuf>,

    /// More logging on stderr (-v: debug, -vv: trace). RUST_LOG, when set, takes precedence.
    #[arg(short, long, action = clap::ArgAction::Count, global = true, help_heading = "Output")]
    pub verbose: u8,
}

/// The client secret of daemon-secret. `Debug` shows whether it is set, never the value.
#[derive(Args, Clone, Default)]
#[command(next_help_heading = "Credential")]
pub struct SecretArgs {
    /// Client secret *Value* (Certificates & secrets > Client secrets; shown once, right after you create it;
    /// not the Secret ID). Prefer the variable or .env: flags are visible to other users in the process list.
    #[arg(
        long,
        env = "AZURE_CLIENT_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub client_secret: Option<String>,
}

/// The certificate of daemon-certificate.
#[derive(Args, Clone, Default)]
#[command(next_help_heading = "Credential")]
pub struct CertificateArgs {
    /// Certificate file: PEM with the private key and the certificate, or PKCS#12 (.pfx/.p12). With
    /// AZURE_CLIENT_CERTIFICATE_THUMBPRINT or AZURE_CLIENT_CERTIFICATE_KEY_PATH it may hold just the key, or just
    /// the certificate, respectively.
    #[arg(
        long = "certificate",
        env = "AZURE_CLIENT_CERTIFICATE_PATH",
        value_name = "FILE"
    )]
    pub certificate_path: Option<std::path::PathBuf>,

    /// Password of the PFX file or of the encrypted PKCS#8 key.
    #[arg(
        long = "certificate-password",
        env = "AZURE_CLIENT_CERTIFICATE_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub certificate_password: Option<String>,

    /// PEM private key, when AZURE_CLIENT_CERTIFICATE_PATH holds only the certificate.
    #[arg(
        long = "certificate-key",
        env = "AZURE_CLIENT_CERTIFICATE_KEY_PATH",
        value_name = "FILE"
    )]
    pub key_path: Option<std::path::PathBuf>,

    /// SHA-1 thumbprint (40 hex digits, Certificates & secrets > Thumbprint), when AZURE_CLIENT_CERTIFICATE_PATH
    /// holds only the PEM private key (the original quickstart's form; assertions are then RS256 with x5t).
    #[arg(
        long = "certificate-thumbprint",
        env = "AZURE_CLIENT_CERTIFICATE_THUMBPRINT",
        value_name = "HEX"
    )]
    pub thumbprint: Option<String>,

    /// Send the certificate chain (x5c) for subject-name/issuer authentication.
    #[arg(long = "send-certificate-chain", env = "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", value_name = "BOOL",
          num_args = 0..=1, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub send_chain: Option<bool>,

    /// Sign assertions with RS256 and the SHA-1 x5t instead of PS256 and x5t#S256.
    #[arg(long = "rs256", env = "AZURE_CLIENT_ASSERTION_RS256", value_name = "BOOL",
          num_args = 0..=1, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub rs256: Option<bool>,
}

impl std::fmt::Debug for CertificateArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateArgs")
            .field("certificate_path", &self.certificate_path)
            .field(
                "certificate_password",
                &self.certificate_password.as_ref().map(|_| "[redacted]"),
            )
            .field("key_path", &self.key_path)
            .field("thumbprint", &self.thumbprint)
            .field("send_chain", &self.send_chain)
            .field("rs256", &self.rs256)
            .finish()
    }
}

/// Loads `.env` from the working directory (the real environment wins), then parses the flags.
///
/// Exits with usage help on bad flags, like any clap program.
pub fn parse<T: Parser>() -> Result<T, SetupError> {
    load_dotenv()?;
    Ok(T::parse())
}

fn load_dotenv() -> Result<(), SetupError> {
    match dotenvy::dotenv() {
        Ok(_) => Ok(()),
        Err(e) if e.not_found() => Ok(()),
        Err(e) => Err(SetupError::Dotenv(e.to_string())),
    }
}

pub(crate) fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "warn,identity_core=debug,sample_kit=debug",
        _ => "trace",
    };
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    // Fails only if a subscriber is already installed, which is fine.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

impl std::fmt::Debug for CommonArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The cache setting may be a Redis URL with a password.
        let cache = if self.cache.contains('@') {
            "[redacted URL]"
        } else {
            self.cache.as_str()
        };
        f.debug_struct("CommonArgs")
            .field("authority", &self.authority)
            .field("authority_host", &self.authority_host)
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("scope", &self.scope)
            .field("graph_endpoint", &self.graph_endpoint)
            .field("extra_ca_certs", &self.extra_ca_certs)
            .field("cache", &cache)
            .field("cache_path", &self.cache_path)
            .field("verbose", &self.verbose)
            .finish()
    }
}

impl std::fmt::Debug for SecretArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = self.client_secret.as_ref().map(|_| "[redacted]");
        f.debug_struct("SecretArgs")
            .field("client_secret", &shown)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_secret() {
        let args = SecretArgs {
            client_secret: Some("hunter2-value".into()),
        };
        assert_eq!(
            format!("{args:?}"),
            r#"SecretArgs { client_secret: Some("[redacted]") }"#
        );
    }
}
