//! Settings of the daemon samples (client secret, certificate), beside the user flows' in `user.rs`.

use clap::Args;
use identity_core::ClientSecret;
use identity_core::{CertificateCredential, CertificateError};

use crate::config::{CredentialArgs, expand_home};
use crate::error::{Missing, SetupError};

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

impl std::fmt::Debug for SecretArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = self.client_secret.as_ref().map(|_| "[redacted]");
        f.debug_struct("SecretArgs")
            .field("client_secret", &shown)
            .finish()
    }
}

impl CredentialArgs for SecretArgs {
    type Credential = ClientSecret;

    fn any_set(&self) -> bool {
        self.client_secret.is_some()
    }

    fn missing(&self) -> Vec<Missing> {
        match self.client_secret.as_deref().map(str::trim) {
            Some(s) if !s.is_empty() => vec![],
            _ => vec![Missing {
                variable: "AZURE_CLIENT_SECRET",
                where_to_find: "app registration > Certificates & secrets > Client secrets > the Value column (shown only right after you create the secret; not the Secret ID)",
            }],
        }
    }

    fn into_credential(self) -> Result<ClientSecret, SetupError> {
        Ok(ClientSecret::new(self.client_secret.unwrap_or_default().trim()))
    }

    #[cfg(feature = "embedded-emulator")]
    fn from_emulator(
        emulator: &entra_emulator::Emulator,
    ) -> Result<(entra_emulator::AppRegistration, ClientSecret), SetupError> {
        let app = emulator
            .app("daemon")
            .ok_or_else(|| SetupError::Emulator("it has no 'daemon' app".into()))?;
        let secret = app
            .secrets
            .first()
            .ok_or_else(|| SetupError::Emulator("its 'daemon' app has no secret".into()))?;
        let secret = ClientSecret::new(secret.value.clone());
        Ok((app, secret))
    }
}

impl CredentialArgs for CertificateArgs {
    type Credential = CertificateCredential;

    fn any_set(&self) -> bool {
        self.certificate_path.is_some() || self.key_path.is_some() || self.thumbprint.is_some()
    }

    fn missing(&self) -> Vec<Missing> {
        if self
            .certificate_path
            .as_ref()
            .is_some_and(|p| !p.as_os_str().is_empty())
        {
            return vec![];
        }
        vec![Missing {
            variable: "AZURE_CLIENT_CERTIFICATE_PATH",
            where_to_find: "the PEM (key + certificate) or .pfx file you created; its certificate must be uploaded under app registration > Certificates & secrets > Certificates",
        }]
    }

    fn into_credential(self) -> Result<CertificateCredential, SetupError> {
        let invalid = |source: CertificateError| SetupError::Invalid {
            setting: "AZURE_CLIENT_CERTIFICATE_PATH",
            source: source.into(),
        };
        let path = expand_home(
            "AZURE_CLIENT_CERTIFICATE_PATH",
            &self.certificate_path.unwrap_or_default(),
        )?;
        let key_path = match &self.key_path {
            Some(key) => Some(expand_home("AZURE_CLIENT_CERTIFICATE_KEY_PATH", key)?),
            None => None,
        };
        let password = self.certificate_password.as_deref().filter(|p| !p.is_empty());
        let credential = match (&self.thumbprint, &key_path) {
            (Some(thumbprint), _) => CertificateCredential::from_key_file_and_thumbprint(
                &path, thumbprint, password,
            )
            .map_err(|e| match e {
                CertificateError::BadThumbprint { .. } => SetupError::Invalid {
                    setting: "AZURE_CLIENT_CERTIFICATE_THUMBPRINT",
                    source: e.into(),
                },
                other => invalid(other),
            })?,
            (None, Some(key)) => CertificateCredential::from_key_and_certificate_files(key, &path, password)
                .map_err(invalid)?,
            (None, None) => CertificateCredential::from_file(&path, password).map_err(invalid)?,
        };
        let credential = if self.rs256.unwrap_or(false) {
            credential.with_rs256()
        } else {
            credential
        };
        Ok(if self.send_chain.unwrap_or(false) {
            credential.with_x5c()
        } else {
            credential
        })
    }

    #[cfg(feature = "embedded-emulator")]
    fn from_emulator(
        emulator: &entra_emulator::Emulator,
    ) -> Result<(entra_emulator::AppRegistration, CertificateCredential), SetupError> {
        let app = emulator
            .app("daemon-certificate")
            .ok_or_else(|| SetupError::Emulator("it has no 'daemon-certificate' app".into()))?;
        let files = emulator
            .certificate_files("daemon-certificate")
            .ok_or_else(|| SetupError::Emulator("it has no certificate for 'daemon-certificate'".into()))?;
        let credential = CertificateCredential::from_file(&files.pem_path, None)
            .map_err(|e| SetupError::Emulator(format!("its certificate is unusable: {e}")))?;
        Ok((app, credential))
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
