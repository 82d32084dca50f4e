//! From settings to a validated configuration: the user's tenant, or the embedded emulator when nothing is set.

use std::sync::Arc;

use identity_core::{Authority, ConfigError, HttpClient, HttpConfig, TokenCache};

use crate::args::{CommonArgs, RunArgs, has_userinfo, init_logging};
use crate::error::{LookAlike, Missing, SetupError};

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

/// Every variable the samples read.
const SETTINGS: [&str; 21] = [
    "AUTHORITY",
    "AZURE_AUTHORITY_HOST",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_CLIENT_CERTIFICATE_KEY_PATH",
    "AZURE_CLIENT_CERTIFICATE_THUMBPRINT",
    "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN",
    "AZURE_CLIENT_ASSERTION_RS256",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
    "SCOPE",
    "GRAPH_ENDPOINT",
    "IDENTITY_EXTRA_CA_CERTS",
    "IDENTITY_CACHE",
    "IDENTITY_CACHE_PATH",
    "DEVICE_CODE_NO_QR",
    "RUST_LOG",
];

/// Settings also recognised without their `AZURE_` prefix: the Python quickstart's `CLIENT_ID`, `CLIENT_SECRET`...
/// (not `USERNAME` or `PASSWORD`, which shells and other programs set).
const UNPREFIXED: [&str; 4] = [
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_AUTHORITY_HOST",
];

/// A name's letters and digits, upper case: `azure_clientid` and `AZURE_CLIENT_ID` give the same.
fn squashed(name: &str) -> impl Iterator<Item = char> + '_ {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
}

/// Set variables whose names differ from a setting's only by case, underscores, or a missing `AZURE_` prefix.
/// Compared lazily, without building strings: this runs on every start, and a Kubernetes pod or a CI job can set
/// hundreds of variables (building them once cost a fifth of a whole daemon run's instructions).
pub(crate) fn look_alikes(names: impl Iterator<Item = String>) -> Vec<LookAlike> {
    let unprefixed = UNPREFIXED
        .iter()
        .filter_map(|s| Some((*s, s.strip_prefix("AZURE_")?)));
    let candidates = SETTINGS.iter().map(|s| (*s, *s)).chain(unprefixed);
    let mut found: Vec<LookAlike> = names
        .filter(|name| !SETTINGS.contains(&name.as_str()))
        .filter_map(|name| {
            let (meant, _) = candidates
                .clone()
                .find(|(_, spelling)| squashed(&name).eq(squashed(spelling)))?;
            Some(LookAlike { found: name, meant })
        })
        .collect();
    found.sort_by(|a, b| a.found.cmp(&b.found));
    found
}

/// Whether a value is one of the quickstarts' placeholders (`Enter_the_Application_Id_Here`, `<client id>`).
fn is_placeholder(value: &str) -> bool {
    let lower = value.trim().to_ascii_lowercase();
    lower.starts_with("enter_the") || lower.ends_with("_here") || lower.starts_with('<')
}

/// A path setting with a leading `~` expanded to the home directory: a shell would do it on the command line,
/// but not in `.env` or a systemd unit, and a literal `~` directory is never what was meant.
pub(crate) fn expand_home(
    setting: &'static str,
    path: &std::path::Path,
) -> Result<std::path::PathBuf, SetupError> {
    let Some(text) = path.to_str() else {
        return Ok(path.to_path_buf());
    };
    let rest = match text.strip_prefix('~') {
        None => return Ok(path.to_path_buf()),
        Some("") => "",
        Some(rest) if rest.starts_with('/') => &rest[1..],
        Some(_) => {
            return Err(SetupError::HomePath {
                setting,
                reason: "~name/ (another user's home) is not supported",
            });
        }
    };
    let home = dirs::home_dir().ok_or(SetupError::HomePath {
        setting,
        reason: "HOME is not set, so ~ cannot be expanded",
    })?;
    Ok(home.join(rest))
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
    /// A flag given that only applies to the embedded emulator (refused with a tenant configured).
    fn emulator_only_flag(&self) -> Option<&'static str> {
        None
    }
    /// The emulator's demo app for this scenario, and its credential.
    #[cfg(feature = "embedded-emulator")]
    fn from_emulator(
        emulator: &entra_emulator::Emulator,
    ) -> Result<(entra_emulator::AppRegistration, Self::Credential), SetupError>;
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
    /// How to sign in at the emulator, printed only when a sign-in starts (not when a cached token is used).
    #[cfg(feature = "embedded-emulator")]
    fn sign_in_notice(&self) -> String {
        String::new()
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
    /// The embedded emulator, kept running for as long as the configuration lives. Available with the
    /// `embedded-emulator` feature.
    #[cfg(feature = "embedded-emulator")]
    #[cfg_attr(docsrs, doc(cfg(feature = "embedded-emulator")))]
    pub emulator: Option<entra_emulator::Emulator>,
}

impl CommonArgs {
    /// Validates the settings. With nothing configured, starts the embedded emulator and says so on stdout;
    /// with a partial configuration, refuses and names each missing variable.
    pub async fn configure<A: CredentialArgs>(
        mut self,
        credential: A,
        defaults: &Defaults,
    ) -> Result<Config<A::Credential>, SetupError> {
        init_logging(self.run.verbose);
        crate::args::log_loaded_dotenv();
        for (setting, value) in [
            ("AUTHORITY", &self.authority),
            ("AZURE_AUTHORITY_HOST", &self.authority_host),
        ] {
            if value.as_deref().is_some_and(has_userinfo) {
                return Err(SetupError::UrlCredentials { setting });
            }
        }
        self.run.check_and_expand()?;
        let look_alikes = look_alikes(std::env::vars_os().filter_map(|(name, _)| name.into_string().ok()));

        let nothing_set = self.authority.is_none()
            && self.authority_host.is_none()
            && self.tenant_id.is_none()
            && self.client_id.is_none()
            && !credential.any_set();
        if nothing_set {
            // Never run against the emulator when the user meant their tenant but misspelt every setting.
            if !look_alikes.is_empty() {
                return Err(SetupError::LookAlike(look_alikes));
            }
            return self.configure_emulator(credential, defaults).await;
        }
        for l in &look_alikes {
            eprintln!("warning: found {}: did you mean {}?", l.found, l.meant);
        }
        if let Some(flag) = credential.emulator_only_flag() {
            return Err(SetupError::EmulatorOnly { flag });
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
        if self.client_id.as_deref().is_some_and(is_placeholder) {
            return Err(SetupError::Placeholder {
                setting: "AZURE_CLIENT_ID",
                what: "the Application (client) ID (a GUID)",
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
        }
        .validated(self.authority_validation);
        let http = HttpClient::new(self.run.http_config()?).map_err(|source| SetupError::Invalid {
            setting: "HTTP client",
            source,
        })?;
        let client_id = self.client_id.clone().unwrap_or_default().trim().to_string();
        let cache = crate::cache::open_cache(&self.run, &client_id, authority.tenant()).await?;
        crate::report::set_app(&authority, &client_id);
        Ok(Config {
            cache,
            authority,
            client_id,
            scopes: self.run.scopes(defaults)?,
            graph_endpoint: self.run.graph_endpoint(defaults, None)?,
            http,
            credential: credential.into_credential()?,
            #[cfg(feature = "embedded-emulator")]
            emulator: None,
        })
    }

    #[cfg(feature = "embedded-emulator")]
    async fn configure_emulator<A: CredentialArgs>(
        mut self,
        args: A,
        defaults: &Defaults,
    ) -> Result<Config<A::Credential>, SetupError> {
        let emulator = start_embedded_emulator(|b| args.emulator_builder(b)).await?;
        self.run.use_emulator_cache_file(&emulator);
        let (app, credential) = A::from_emulator(&emulator)?;
        println!(
            "No configuration found, so running against the embedded Entra emulator at {} (see docs/emulator.md); \
             set AZURE_CLIENT_ID and friends, or write a .env file, to use your own tenant.",
            emulator.https_url()
        );
        // The object id is what the quickstart's GRAPH_ENDPOINT=.../v1.0/applications/{object-id} call needs.
        println!(
            "Its app registration '{}': client id {}, object id {}.",
            app.display_name, app.app_id, app.object_id
        );
        let notice = args.emulator_notice();
        if !notice.is_empty() {
            println!("{notice}");
        }
        crate::prompt::set_sign_in_notice(args.sign_in_notice());
        let client_id = app.app_id;
        let authority = Authority::parse(&emulator.authority())
            .map_err(|source| SetupError::Emulator(format!("its authority is unusable: {source}")))?;
        let mut http_config = self.run.http_config()?.with_extra_ca_pem(emulator.ca_pem());
        // The emulator is on loopback: a proxy from the environment could not reach it.
        http_config.proxy_from_env = false;
        let http = HttpClient::new(http_config).map_err(|source| SetupError::Invalid {
            setting: "HTTP client",
            source,
        })?;
        let cache = crate::cache::open_cache(&self.run, &client_id, authority.tenant()).await?;
        crate::report::set_app(&authority, &client_id);
        Ok(Config {
            cache,
            authority,
            client_id,
            scopes: self.run.scopes(defaults)?,
            graph_endpoint: self.run.graph_endpoint(defaults, Some(&emulator.https_url()))?,
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
}

impl RunArgs {
    /// Refuses a Graph URL with credentials in it, and expands a leading `~` in the path settings.
    pub(crate) fn check_and_expand(&mut self) -> Result<(), SetupError> {
        if self.graph_endpoint.as_deref().is_some_and(has_userinfo) {
            return Err(SetupError::UrlCredentials {
                setting: "GRAPH_ENDPOINT",
            });
        }
        self.expand_paths()
    }

    /// A leading `~` in `IDENTITY_CACHE_PATH` and `IDENTITY_EXTRA_CA_CERTS` is the home directory.
    pub(crate) fn expand_paths(&mut self) -> Result<(), SetupError> {
        if let Some(path) = &self.cache_path {
            self.cache_path = Some(expand_home("IDENTITY_CACHE_PATH", path)?);
        }
        if let Some(path) = &self.extra_ca_certs {
            self.extra_ca_certs = Some(expand_home(identity_core::EXTRA_CA_CERTS_VAR, path)?);
        }
        Ok(())
    }

    /// Unless a cache file is set, the embedded emulator's own: tokens signed by another emulator key (its
    /// state was deleted, or another instance) must never be served, so each key gets its own file, away from
    /// the tenants' tokens.
    #[cfg(feature = "embedded-emulator")]
    pub(crate) fn use_emulator_cache_file(&mut self, emulator: &entra_emulator::Emulator) {
        if self.cache_path.as_ref().is_none_or(|p| p.as_os_str().is_empty()) {
            self.cache_path = identity_core::FileCache::default_path().map(|default| {
                default.with_file_name(format!("emulator-{}.json", emulator.signing_key_id()))
            });
        }
    }

    pub(crate) fn http_config(&self) -> Result<HttpConfig, SetupError> {
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

    pub(crate) fn scopes(&self, defaults: &Defaults) -> Result<Vec<String>, SetupError> {
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
    pub(crate) fn graph_endpoint(
        &self,
        defaults: &Defaults,
        emulator_url: Option<&str>,
    ) -> Result<String, SetupError> {
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
        identity_core::ensure_secure(&url).map_err(invalid)?;
        Ok(endpoint)
    }
}

/// Port the embedded emulator prefers, so a second run finds its cached token under the same authority.
#[cfg(feature = "embedded-emulator")]
const EMBEDDED_EMULATOR_PORT: u16 = 47443;

/// Overrides [`EMBEDDED_EMULATOR_PORT`] (a port taken by something else, or tests that run many samples at once).
#[cfg(feature = "embedded-emulator")]
const EMULATOR_PORT_VAR: &str = "IDENTITY_EMULATOR_PORT";

/// Starts the embedded emulator with its state (keys, secrets, certificates) kept in the user's cache directory,
/// so tokens cached by one run are still accepted by the next; on the preferred port if it is free.
#[cfg(feature = "embedded-emulator")]
pub(crate) async fn start_embedded_emulator(
    customize: impl FnOnce(entra_emulator::EmulatorBuilder) -> entra_emulator::EmulatorBuilder,
) -> Result<entra_emulator::Emulator, SetupError> {
    let mut builder = customize(entra_emulator::Emulator::builder());
    if let Some(dir) = dirs::cache_dir() {
        builder = builder.state_dir(dir.join("identity-core").join("emulator"));
    }
    let port = match std::env::var(EMULATOR_PORT_VAR) {
        Ok(value) if !value.trim().is_empty() => value.trim().parse::<u16>().map_err(|_| {
            SetupError::Emulator(format!(
                "{EMULATOR_PORT_VAR} must be a port number (1-65535); unset it for the default {EMBEDDED_EMULATOR_PORT}"
            ))
        })?,
        _ => EMBEDDED_EMULATOR_PORT,
    };
    let preferred = std::net::SocketAddr::from(([127, 0, 0, 1], port));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::redact_userinfo;

    #[test]
    fn look_alikes_name_the_setting_they_probably_mean() {
        let names = [
            "AZURE_CLIENTID",
            "CLIENT_SECRET",
            "azure_tenant_id",
            "AZURE_CLIENT_ID",
            "USERNAME",
            "PASSWORD",
            "PATH",
            "TENANTID",
        ];
        let found = look_alikes(names.iter().map(|n| n.to_string()));
        let pairs: Vec<(&str, &str)> = found.iter().map(|l| (l.found.as_str(), l.meant)).collect();
        assert_eq!(
            pairs,
            [
                ("AZURE_CLIENTID", "AZURE_CLIENT_ID"),
                ("CLIENT_SECRET", "AZURE_CLIENT_SECRET"),
                ("TENANTID", "AZURE_TENANT_ID"),
                ("azure_tenant_id", "AZURE_TENANT_ID"),
            ]
        );
    }

    #[test]
    fn userinfo_is_found_and_redacted_even_in_urls_that_do_not_parse() {
        for url in [
            "https://user:hunter2@login.microsoftonline.com/contoso.com",
            "https://hunter2@host",
            "https://us er:hun ter2@host/x",
        ] {
            assert!(has_userinfo(url), "{url}");
            assert!(!redact_userinfo(url).contains("hunter2"), "{url}");
        }
        assert_eq!(
            redact_userinfo("https://u:p@host/t?x=a@b"),
            "https://***@host/t?x=a@b"
        );
        for url in [
            "https://login.microsoftonline.com/contoso.com",
            "https://graph.microsoft.com/v1.0/users?$filter=mail eq 'a@b.com'",
        ] {
            assert!(!has_userinfo(url), "{url}");
        }
    }

    #[test]
    fn placeholders_are_recognised() {
        assert!(is_placeholder("Enter_the_Application_Id_Here"));
        assert!(is_placeholder("<client id>"));
        assert!(!is_placeholder("00000000-0000-0000-0000-000000000001"));
    }

    #[test]
    fn a_leading_tilde_is_the_home_directory() {
        let Some(home) = dirs::home_dir() else { return };
        let expand = |p: &str| expand_home("IDENTITY_CACHE_PATH", std::path::Path::new(p));
        assert_eq!(expand("~/tokens.json").unwrap(), home.join("tokens.json"));
        assert_eq!(expand("~").unwrap(), home);
        assert_eq!(expand("/a/~/b").unwrap(), std::path::Path::new("/a/~/b"));
        assert!(matches!(expand("~bob/x"), Err(SetupError::HomePath { .. })));
    }
}
