//! Which managed-identity source this host offers, detected from the environment in MSAL Python 1.39's order,
//! and the endpoint (and secret) each one uses.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use super::error::ManagedIdentityError;
use super::identity::ManagedIdentitySource;
use crate::secret::ClientSecret;

/// IMDS's documented address (Azure VMs, scale sets, AKS nodes).
pub const IMDS_DEFAULT_HOST: &str = "http://169.254.169.254";
/// Overrides the IMDS host, as MSAL Python does (its name comes from AAD Pod Identity); for tests and
/// tunnels.
pub const IMDS_HOST_OVERRIDE_VAR: &str = "AZURE_POD_IDENTITY_AUTHORITY_HOST";
/// The Azure Arc agent's endpoint when only its binary says it is installed.
pub const ARC_DEFAULT_ENDPOINT: &str = "http://localhost:40342/metadata/identity/oauth2/token";
/// Where the Azure Arc agent writes its challenge key files (Linux).
pub const ARC_TOKEN_DIRECTORY: &str = "/var/opt/azcmagent/tokens";
/// The Azure Arc agent's binary, whose presence means "Arc" even without its variables (Linux).
const ARC_HIMDS_BINARY: &str = "/opt/azcmagent/bin/himds";

/// The variables managed identity reads.
const VARIABLES: [&str; 9] = [
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "DEFAULT_IDENTITY_CLIENT_ID",
    "AZUREPS_HOST_ENVIRONMENT",
    IMDS_HOST_OVERRIDE_VAR,
];
/// Of those, the ones holding secrets (never shown).
const SECRET_VARIABLES: [&str; 2] = ["IDENTITY_HEADER", "MSI_SECRET"];

/// The environment managed identity is detected from: the process's variables
/// ([`ManagedIdentityEnvironment::from_process`]) or an explicit map (tests, or a host that passes them on).
/// `Debug` never shows the secret variables.
#[derive(Clone, Default)]
pub struct ManagedIdentityEnvironment {
    vars: BTreeMap<&'static str, String>,
    arc_agent_installed: bool,
}

impl fmt::Debug for ManagedIdentityEnvironment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (name, value) in &self.vars {
            if SECRET_VARIABLES.contains(name) {
                map.entry(name, &"[redacted]");
            } else {
                map.entry(name, value);
            }
        }
        map.entry(&"arc_agent_installed", &self.arc_agent_installed);
        map.finish()
    }
}

impl ManagedIdentityEnvironment {
    /// The variables of this process, and whether the Azure Arc agent is installed (its `himds` binary).
    pub fn from_process() -> Self {
        let mut env = Self::from_vars(
            VARIABLES
                .iter()
                .filter_map(|name| std::env::var(name).ok().map(|value| (name.to_string(), value))),
        );
        env.arc_agent_installed = cfg!(target_os = "linux") && Path::new(ARC_HIMDS_BINARY).exists();
        env
    }

    /// An explicit set of variables (others than the ones managed identity reads are ignored). The Arc agent
    /// counts as not installed (see [`Self::with_arc_agent_installed`]).
    pub fn from_vars<K: AsRef<str>, V: Into<String>>(vars: impl IntoIterator<Item = (K, V)>) -> Self {
        let mut map = BTreeMap::new();
        for (name, value) in vars {
            if let Some(known) = VARIABLES.iter().find(|v| **v == name.as_ref()) {
                map.insert(*known, value.into());
            }
        }
        ManagedIdentityEnvironment {
            vars: map,
            arc_agent_installed: false,
        }
    }

    /// Whether the Azure Arc agent counts as installed (selects Arc at its default endpoint).
    pub fn with_arc_agent_installed(mut self, installed: bool) -> Self {
        self.arc_agent_installed = installed;
        self
    }

    /// A variable, if set (MSAL tests presence; an empty value counts as set, and is refused later).
    fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The source, in MSAL Python 1.39's order: Service Fabric, App Service, Azure ML, Azure Arc, Cloud Shell,
    /// then IMDS.
    pub fn source(&self) -> ManagedIdentitySource {
        let identity = self.has("IDENTITY_ENDPOINT") && self.has("IDENTITY_HEADER");
        if identity && self.has("IDENTITY_SERVER_THUMBPRINT") {
            ManagedIdentitySource::ServiceFabric
        } else if identity {
            ManagedIdentitySource::AppService
        } else if self.has("MSI_ENDPOINT") && self.has("MSI_SECRET") {
            ManagedIdentitySource::AzureMl
        } else if (self.has("IDENTITY_ENDPOINT") && self.has("IMDS_ENDPOINT")) || self.arc_agent_installed {
            ManagedIdentitySource::AzureArc
        } else if self
            .get("AZUREPS_HOST_ENVIRONMENT")
            .is_some_and(|v| v.starts_with("cloud-shell"))
        {
            ManagedIdentitySource::CloudShell
        } else {
            ManagedIdentitySource::Imds
        }
    }

    /// The endpoint of the detected source, checked.
    pub(crate) fn endpoint(&self) -> Result<Endpoint, ManagedIdentityError> {
        let source = self.source();
        let url = |variable: &'static str, value: &str, https_only: bool| {
            parse_url(source, variable, value, https_only)
        };
        let secret = |variable: &'static str| -> Result<ClientSecret, ManagedIdentityError> {
            let value = self.get(variable).unwrap_or_default();
            if value.trim().is_empty() {
                return Err(ManagedIdentityError::InvalidEnvironment {
                    platform: source,
                    variable,
                    reason: "it is empty".into(),
                });
            }
            Ok(ClientSecret::new(value.trim()))
        };
        let endpoint_var = |variable: &'static str| self.get(variable).unwrap_or_default();
        Ok(match source {
            ManagedIdentitySource::ServiceFabric => Endpoint::ServiceFabric {
                url: url("IDENTITY_ENDPOINT", endpoint_var("IDENTITY_ENDPOINT"), true)?,
                secret: secret("IDENTITY_HEADER")?,
                thumbprint: parse_thumbprint(endpoint_var("IDENTITY_SERVER_THUMBPRINT"))?,
            },
            ManagedIdentitySource::AppService => Endpoint::AppService {
                url: url("IDENTITY_ENDPOINT", endpoint_var("IDENTITY_ENDPOINT"), false)?,
                secret: secret("IDENTITY_HEADER")?,
            },
            ManagedIdentitySource::AzureMl => Endpoint::AzureMl {
                url: url("MSI_ENDPOINT", endpoint_var("MSI_ENDPOINT"), false)?,
                secret: secret("MSI_SECRET")?,
                default_client_id: self
                    .get("DEFAULT_IDENTITY_CLIENT_ID")
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(str::to_string),
            },
            ManagedIdentitySource::AzureArc => {
                let endpoint = match (self.get("IDENTITY_ENDPOINT"), self.has("IMDS_ENDPOINT")) {
                    (Some(e), true) => e,
                    _ => ARC_DEFAULT_ENDPOINT,
                };
                Endpoint::AzureArc {
                    url: url("IDENTITY_ENDPOINT", endpoint, false)?,
                }
            }
            ManagedIdentitySource::CloudShell => {
                return Err(ManagedIdentityError::Unsupported {
                    platform: source,
                    reason: "Cloud Shell issues tokens for the signed-in user (delegated permissions), not for a managed identity of an application; MSAL too only offers it as a user sign-in".into(),
                });
            }
            ManagedIdentitySource::Imds => {
                let (variable, host) = match self.get(IMDS_HOST_OVERRIDE_VAR).filter(|h| !h.trim().is_empty())
                {
                    Some(host) => (IMDS_HOST_OVERRIDE_VAR, host),
                    None => (IMDS_HOST_OVERRIDE_VAR, IMDS_DEFAULT_HOST),
                };
                let full = format!(
                    "{}/metadata/identity/oauth2/token",
                    host.trim().trim_end_matches('/')
                );
                Endpoint::Imds {
                    url: url(variable, &full, false)?,
                }
            }
        })
    }
}

/// A source's endpoint and what authenticates the request to it.
#[derive(Debug)]
pub(crate) enum Endpoint {
    ServiceFabric {
        url: url::Url,
        secret: ClientSecret,
        thumbprint: [u8; 20],
    },
    AppService {
        url: url::Url,
        secret: ClientSecret,
    },
    AzureMl {
        url: url::Url,
        secret: ClientSecret,
        default_client_id: Option<String>,
    },
    AzureArc {
        url: url::Url,
    },
    Imds {
        url: url::Url,
    },
}

impl Endpoint {
    pub(crate) fn source(&self) -> ManagedIdentitySource {
        match self {
            Endpoint::ServiceFabric { .. } => ManagedIdentitySource::ServiceFabric,
            Endpoint::AppService { .. } => ManagedIdentitySource::AppService,
            Endpoint::AzureMl { .. } => ManagedIdentitySource::AzureMl,
            Endpoint::AzureArc { .. } => ManagedIdentitySource::AzureArc,
            Endpoint::Imds { .. } => ManagedIdentitySource::Imds,
        }
    }

    pub(crate) fn url(&self) -> &url::Url {
        match self {
            Endpoint::ServiceFabric { url, .. }
            | Endpoint::AppService { url, .. }
            | Endpoint::AzureMl { url, .. }
            | Endpoint::AzureArc { url }
            | Endpoint::Imds { url } => url,
        }
    }
}

/// An endpoint URL: http or https (the platforms use plain http on the host itself), no user info, no
/// fragment. Service Fabric's must be https (its certificate is pinned).
fn parse_url(
    source: ManagedIdentitySource,
    variable: &'static str,
    value: &str,
    https_only: bool,
) -> Result<url::Url, ManagedIdentityError> {
    let invalid = |reason: String| ManagedIdentityError::InvalidEnvironment {
        platform: source,
        variable,
        reason,
    };
    let url = url::Url::parse(value.trim()).map_err(|e| invalid(format!("not a URL ({e})")))?;
    match url.scheme() {
        "https" => {}
        "http" if !https_only => {}
        "http" => {
            return Err(invalid(
                "it must be an https URL (the server certificate is pinned)".into(),
            ));
        }
        _ => return Err(invalid("it must be an http or https URL".into())),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("it names no host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("it must not carry a user name or password".into()));
    }
    if url.fragment().is_some() {
        return Err(invalid("it must not have a #fragment".into()));
    }
    Ok(url)
}

/// A SHA-1 thumbprint: 40 hex digits, spaces and colons ignored (as MSAL normalises it).
fn parse_thumbprint(value: &str) -> Result<[u8; 20], ManagedIdentityError> {
    let hex: String = value
        .chars()
        .filter(|c| !matches!(c, ' ' | '\t' | '\r' | '\n' | ':'))
        .collect();
    let invalid = || ManagedIdentityError::InvalidEnvironment {
        platform: ManagedIdentitySource::ServiceFabric,
        variable: "IDENTITY_SERVER_THUMBPRINT",
        reason: "expected a SHA-1 thumbprint of 40 hexadecimal digits".into(),
    };
    if hex.len() != 40 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    let mut out = [0u8; 20];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte =
            u8::from_str_radix(hex.get(2 * i..2 * i + 2).ok_or_else(invalid)?, 16).map_err(|_| invalid())?;
    }
    Ok(out)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> ManagedIdentityEnvironment {
        ManagedIdentityEnvironment::from_vars(vars.iter().copied())
    }

    #[test]
    fn detection_follows_msal_order() {
        let sf = [
            (
                "IDENTITY_ENDPOINT",
                "https://10.0.0.4:2377/metadata/identity/oauth2/token",
            ),
            ("IDENTITY_HEADER", "h"),
            ("IDENTITY_SERVER_THUMBPRINT", "00"),
            ("MSI_ENDPOINT", "http://127.0.0.1:1/msi"),
            ("MSI_SECRET", "s"),
        ];
        assert_eq!(env(&sf).source(), ManagedIdentitySource::ServiceFabric);
        assert_eq!(env(&sf[..2]).source(), ManagedIdentitySource::AppService);
        assert_eq!(env(&sf[3..]).source(), ManagedIdentitySource::AzureMl);
        assert_eq!(
            env(&[
                ("IDENTITY_ENDPOINT", "http://localhost:40342/x"),
                ("IMDS_ENDPOINT", "http://localhost:40342")
            ])
            .source(),
            ManagedIdentitySource::AzureArc
        );
        assert_eq!(
            env(&[]).with_arc_agent_installed(true).source(),
            ManagedIdentitySource::AzureArc
        );
        assert_eq!(
            env(&[("AZUREPS_HOST_ENVIRONMENT", "cloud-shell/1.0")]).source(),
            ManagedIdentitySource::CloudShell
        );
        assert_eq!(
            env(&[("MSI_ENDPOINT", "http://x")]).source(),
            ManagedIdentitySource::Imds
        );
        assert_eq!(env(&[]).source(), ManagedIdentitySource::Imds);
    }

    #[test]
    fn imds_host_override_and_default() {
        let Ok(Endpoint::Imds { url }) = env(&[]).endpoint() else {
            panic!("imds")
        };
        assert_eq!(
            url.as_str(),
            "http://169.254.169.254/metadata/identity/oauth2/token"
        );
        let Ok(Endpoint::Imds { url }) =
            env(&[(IMDS_HOST_OVERRIDE_VAR, "http://127.0.0.1:8080/")]).endpoint()
        else {
            panic!("imds")
        };
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8080/metadata/identity/oauth2/token"
        );
    }

    #[test]
    fn thumbprints_and_secrets() {
        assert!(parse_thumbprint("AB:CD").is_err());
        let t = parse_thumbprint("0123456789abcdef0123 456789ABCDEF01234567").unwrap();
        assert_eq!(hex(&t), "0123456789ABCDEF0123456789ABCDEF01234567");
        let e = env(&[
            ("IDENTITY_ENDPOINT", "http://10.0.0.4/t"),
            ("IDENTITY_HEADER", "s3cret"),
            ("IDENTITY_SERVER_THUMBPRINT", "x"),
        ]);
        assert!(!format!("{e:?}").contains("s3cret"));
        let err = e.endpoint().unwrap_err().to_string();
        assert!(err.contains("https"), "{err}");
        let cloud = env(&[("AZUREPS_HOST_ENVIRONMENT", "cloud-shell")])
            .endpoint()
            .unwrap_err();
        assert!(matches!(cloud, ManagedIdentityError::Unsupported { .. }));
    }
}
