//! From settings to a validated configuration: the user's tenant, or the embedded emulator when nothing is set.

use std::fmt;

use std::sync::Arc;

use identity_core::{Authority, ClientSecret, ConfigError, HttpClient, HttpConfig, TokenCache};

use crate::args::{CertificateArgs, CommonArgs, SecretArgs, init_logging};
use identity_core::certificate::CertificateCredential;

/// A sample's defaults, from the quickstart it mirrors.
#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    /// Default `SCOPE`.
    pub scope: &'static str,
    /// Default `GRAPH_ENDPOINT`.
    pub graph_endpoint: &'static str,
    /// The sample's guide, quoted in error messages.
    pub docs: &'static str,
}

/// A required setting that is not set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// The environment variable(s).
    pub variable: &'static str,
    /// Where to find the value in the app registration.
    pub where_to_find: &'static str,
}

/// Why a sample cannot start. Exit code 2.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// `.env` exists but does not parse.
    #[error("cannot read .env: {0}")]
    Dotenv(String),
    /// Some settings are given but not all that are needed.
    #[error("{}", missing_message(.missing, .docs))]
    Missing {
        /// What is missing.
        missing: Vec<Missing>,
        /// The guide to read.
        docs: &'static str,
    },
    /// A setting has a value the library cannot use.
    #[error("{setting}: {source}")]
    Invalid {
        /// The variable.
        setting: &'static str,
        /// Why.
        #[source]
        source: ConfigError,
    },
    /// `IDENTITY_CACHE` names no usable store (the value is never quoted when it holds a password).
    #[error("IDENTITY_CACHE: {0}")]
    Cache(String),
    /// A value could not be read from the terminal.
    #[error("{0}")]
    Prompt(String),
    /// The embedded emulator did not start.
    #[error("could not start the embedded emulator: {0}")]
    Emulator(String),
}

impl SetupError {
    /// A one-line fix, when one is known.
    pub fn fix(&self) -> Option<&'static str> {
        match self {
            SetupError::Dotenv(_) => {
                Some("Each line of .env must be NAME=value; quote values containing spaces or #.")
            }
            SetupError::Missing { .. } => Some(
                "Set the variables above in the environment or in a .env file (see .env.example), or unset them all to use the embedded emulator.",
            ),
            SetupError::Invalid { source, .. } => source.fix(),
            SetupError::Cache(_) => Some(
                "Set IDENTITY_CACHE to file (the default), encrypted-file, memory, or redis://[:password@]host:port/db.",
            ),
            SetupError::Prompt(_) => Some("Set AZURE_PASSWORD in the environment or in .env instead."),
            SetupError::Emulator(_) => None,
        }
    }
}

fn missing_message(missing: &[Missing], docs: &str) -> String {
    let mut text = String::from("the configuration is incomplete; missing:");
    for m in missing {
        text.push_str(&format!("\n  - {}: {}", m.variable, m.where_to_find));
    }
    text.push_str(&format!("\n  (see {docs})"));
    text
}

/// A scenario's credential settings: how to tell whether they are given, complete, and what the emulator offers.
pub trait CredentialArgs {
    /// The credential the sample hands to `identity-core`.
    type Credential;
    /// Whether any of the credential's settings is given (then the user means their own tenant).
    fn any_set(&self) -> bool;
    /// Required settings that are not given.
    fn missing(&self) -> Vec<Missing>;
    /// The credential from the user's settings (called only when nothing is missing).
    fn into_credential(self) -> Result<Self::Credential, SetupError>;
    /// The credential of the emulator's demo app for this scenario, and that app's client id.
    #[cfg(feature = "embedded-emulator")]
    fn from_emulator(emulator: &entra_emulator::Emulator) -> Result<(String, Self::Credential), SetupError>;
    /// Scenario-specific emulator settings (for example approving device codes on the user's behalf).
    #[cfg(feature = "embedded-emulator")]
    fn emulator_builder(&self, builder: entra_emulator::EmulatorBuilder) -> entra_emulator::EmulatorBuilder {
        builder
    }
    /// What the user should know about the emulator in this scenario (printed after the emulator notice).
    #[cfg(feature = "embedded-emulator")]
    fn emulator_notice(&self) -> String {
        String::new()
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
    fn from_emulator(emulator: &entra_emulator::Emulator) -> Result<(String, ClientSecret), SetupError> {
        let app = emulator
            .app("daemon")
            .ok_or_else(|| SetupError::Emulator("it has no 'daemon' app".into()))?;
        let secret = app
            .secrets
            .first()
            .ok_or_else(|| SetupError::Emulator("its 'daemon' app has no secret".into()))?;
        Ok((app.app_id.clone(), ClientSecret::new(secret.value.clone())))
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
        let invalid = |source: identity_core::certificate::CertificateError| SetupError::Invalid {
            setting: "AZURE_CLIENT_CERTIFICATE_PATH",
            source: source.into(),
        };
        let path = self.certificate_path.unwrap_or_default();
        let password = self.certificate_password.as_deref().filter(|p| !p.is_empty());
        let credential = match (&self.thumbprint, &self.key_path) {
            (Some(thumbprint), _) => CertificateCredential::from_key_file_and_thumbprint(
                &path, thumbprint, password,
            )
            .map_err(|e| match e {
                identity_core::certificate::CertificateError::BadThumbprint { .. } => SetupError::Invalid {
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
    ) -> Result<(String, CertificateCredential), SetupError> {
        let app = emulator
            .app("daemon-certificate")
            .ok_or_else(|| SetupError::Emulator("it has no 'daemon-certificate' app".into()))?;
        let files = emulator
            .certificate_files("daemon-certificate")
            .ok_or_else(|| SetupError::Emulator("it has no certificate for 'daemon-certificate'".into()))?;
        let credential = CertificateCredential::from_file(&files.pem_path, None)
            .map_err(|e| SetupError::Emulator(format!("its certificate is unusable: {e}")))?;
        Ok((app.app_id, credential))
    }
}

/// Everything a sample needs to run: where, as whom, for what, and the credential.
#[derive(Debug)]
#[non_exhaustive]
pub struct Config<C> {
    /// The authority.
    pub authority: Authority,
    /// Application (client) id.
    pub client_id: String,
    /// Scopes to ask for.
    pub scopes: Vec<String>,
    /// The Graph URL to call.
    pub graph_endpoint: String,
    /// The HTTP client (trusting extra CAs and, with the emulator, the emulator's CA).
    pub http: HttpClient,
    /// The scenario's credential.
    pub credential: C,
    /// The token cache (`IDENTITY_CACHE`: file by default, memory, or Redis).
    pub cache: Arc<dyn TokenCache>,
    /// The embedded emulator, kept running for as long as the configuration lives.
    #[cfg(feature = "embedded-emulator")]
    pub emulator: Option<entra_emulator::Emulator>,
}

impl CommonArgs {
    /// Validates the settings. With nothing configured, starts the embedded emulator and says so on stdout;
    /// with a partial configuration, refuses and names each missing variable.
    pub async fn configure<A: CredentialArgs>(
        self,
        credential: A,
        defaults: &Defaults,
    ) -> Result<Config<A::Credential>, SetupError> {
        init_logging(self.verbose);
        let nothing_set = self.authority.is_none()
            && self.authority_host.is_none()
            && self.tenant_id.is_none()
            && self.client_id.is_none()
            && !credential.any_set();
        if nothing_set {
            return self.configure_emulator(credential, defaults).await;
        }

        let mut missing = Vec::new();
        if blank(&self.client_id) {
            missing.push(Missing {
                variable: "AZURE_CLIENT_ID",
                where_to_find: "app registration > Overview > Application (client) ID",
            });
        }
        if blank(&self.authority) && blank(&self.tenant_id) {
            missing.push(Missing {
                variable: "AZURE_TENANT_ID (or AUTHORITY)",
                where_to_find: "app registration > Overview > Directory (tenant) ID",
            });
        }
        missing.extend(credential.missing());
        if !missing.is_empty() {
            return Err(SetupError::Missing {
                missing,
                docs: defaults.docs,
            });
        }

        let authority = match (&self.authority, &self.tenant_id) {
            (Some(url), _) if !url.trim().is_empty() => {
                Authority::parse(url).map_err(|source| SetupError::Invalid {
                    setting: "AUTHORITY",
                    source,
                })?
            }
            (_, tenant) => Authority::from_host_and_tenant(
                self.authority_host.as_deref(),
                tenant.as_deref().unwrap_or_default(),
            )
            .map_err(|source| SetupError::Invalid {
                setting: if matches!(source, ConfigError::InvalidTenant { .. }) {
                    "AZURE_TENANT_ID"
                } else {
                    "AZURE_AUTHORITY_HOST"
                },
                source,
            })?,
        };
        let http = HttpClient::new(self.http_config()?).map_err(|source| SetupError::Invalid {
            setting: "HTTP client",
            source,
        })?;
        let client_id = self.client_id.clone().unwrap_or_default().trim().to_string();
        let cache = crate::cache::open_cache(&self, &client_id, authority.tenant()).await?;
        Ok(Config {
            cache,
            authority,
            client_id,
            scopes: self.scopes(defaults)?,
            graph_endpoint: self.graph_endpoint(defaults, None)?,
            http,
            credential: credential.into_credential()?,
            #[cfg(feature = "embedded-emulator")]
            emulator: None,
        })
    }

    #[cfg(feature = "embedded-emulator")]
    async fn configure_emulator<A: CredentialArgs>(
        self,
        args: A,
        defaults: &Defaults,
    ) -> Result<Config<A::Credential>, SetupError> {
        let emulator = start_embedded_emulator(|b| args.emulator_builder(b)).await?;
        println!(
            "No configuration found, so running against the embedded Entra emulator at {} (see docs/emulator.md); \
             set AZURE_CLIENT_ID and friends, or write a .env file, to use your own tenant.",
            emulator.https_url()
        );
        let notice = args.emulator_notice();
        if !notice.is_empty() {
            println!("{notice}");
        }
        let (client_id, credential) = A::from_emulator(&emulator)?;
        let authority = Authority::parse(&emulator.authority())
            .map_err(|source| SetupError::Emulator(format!("its authority is unusable: {source}")))?;
        let mut http_config = self.http_config()?.with_extra_ca_pem(emulator.ca_pem());
        // The emulator is on loopback: a proxy from the environment could not reach it.
        http_config.proxy_from_env = false;
        let http = HttpClient::new(http_config).map_err(|source| SetupError::Invalid {
            setting: "HTTP client",
            source,
        })?;
        let cache = crate::cache::open_cache(&self, &client_id, authority.tenant()).await?;
        Ok(Config {
            cache,
            authority,
            client_id,
            scopes: self.scopes(defaults)?,
            graph_endpoint: self.graph_endpoint(defaults, Some(&emulator.https_url()))?,
            http,
            credential,
            emulator: Some(emulator),
        })
    }

    #[cfg(not(feature = "embedded-emulator"))]
    async fn configure_emulator<A: CredentialArgs>(
        self,
        credential: A,
        defaults: &Defaults,
    ) -> Result<Config<A::Credential>, SetupError> {
        let mut missing = vec![
            Missing {
                variable: "AZURE_CLIENT_ID",
                where_to_find: "app registration > Overview > Application (client) ID",
            },
            Missing {
                variable: "AZURE_TENANT_ID (or AUTHORITY)",
                where_to_find: "app registration > Overview > Directory (tenant) ID",
            },
        ];
        missing.extend(credential.missing());
        Err(SetupError::Missing {
            missing,
            docs: defaults.docs,
        })
    }

    fn http_config(&self) -> Result<HttpConfig, SetupError> {
        let config = HttpConfig::default();
        match &self.extra_ca_certs {
            Some(path) if !path.as_os_str().is_empty() => {
                config
                    .with_extra_ca_file(path)
                    .map_err(|source| SetupError::Invalid {
                        setting: identity_core::EXTRA_CA_CERTS_VAR,
                        source,
                    })
            }
            _ => Ok(config),
        }
    }

    fn scopes(&self, defaults: &Defaults) -> Result<Vec<String>, SetupError> {
        let scopes: Vec<String> = self
            .scope
            .as_deref()
            .unwrap_or(defaults.scope)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if scopes.is_empty() {
            return Err(SetupError::Invalid {
                setting: "SCOPE",
                source: ConfigError::NoScopes,
            });
        }
        Ok(scopes)
    }

    /// The Graph URL; with the emulator, Graph's public host is replaced by the emulator's.
    fn graph_endpoint(&self, defaults: &Defaults, emulator_url: Option<&str>) -> Result<String, SetupError> {
        let mut endpoint = self
            .graph_endpoint
            .as_deref()
            .unwrap_or(defaults.graph_endpoint)
            .trim()
            .to_string();
        if let Some(base) = emulator_url
            && let Some(path) = endpoint.strip_prefix("https://graph.microsoft.com/")
        {
            endpoint = format!("{base}/{path}");
        }
        let invalid = |source| SetupError::Invalid {
            setting: "GRAPH_ENDPOINT",
            source,
        };
        let url = url::Url::parse(&endpoint).map_err(|e| {
            invalid(ConfigError::InvalidUrl {
                setting: "GRAPH_ENDPOINT",
                value: endpoint.clone(),
                reason: e.to_string(),
            })
        })?;
        identity_core::authority::ensure_secure(&url).map_err(invalid)?;
        Ok(endpoint)
    }
}

/// Port the embedded emulator prefers, so a second run finds its cached token under the same authority.
#[cfg(feature = "embedded-emulator")]
const EMBEDDED_EMULATOR_PORT: u16 = 47443;

/// Starts the embedded emulator with its state (keys, secrets, certificates) kept in the user's cache directory,
/// so tokens cached by one run are still accepted by the next; on the preferred port if it is free.
#[cfg(feature = "embedded-emulator")]
async fn start_embedded_emulator(
    customize: impl FnOnce(entra_emulator::EmulatorBuilder) -> entra_emulator::EmulatorBuilder,
) -> Result<entra_emulator::Emulator, SetupError> {
    let mut builder = customize(entra_emulator::Emulator::builder());
    if let Some(dir) = dirs::cache_dir() {
        builder = builder.state_dir(dir.join("identity-core").join("emulator"));
    }
    let preferred = std::net::SocketAddr::from(([127, 0, 0, 1], EMBEDDED_EMULATOR_PORT));
    match builder.clone().bind(preferred).start().await {
        Ok(emulator) => Ok(emulator),
        Err(entra_emulator::EmulatorError::Bind { .. }) => builder
            .start()
            .await
            .map_err(|e| SetupError::Emulator(e.to_string())),
        Err(e) => Err(SetupError::Emulator(e.to_string())),
    }
}

fn blank(value: &Option<String>) -> bool {
    value.as_deref().is_none_or(|v| v.trim().is_empty())
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.where_to_find)
    }
}
