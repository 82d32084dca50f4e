//! Settings of the managed-identity sample: which identity, and whether to use this host's endpoint or the
//! embedded emulator playing IMDS. The source itself is detected by `identity-core` from the platform's variables.

use std::sync::Arc;

use clap::Args;
use identity_core::{HttpClient, ManagedIdentityEnvironment, ManagedIdentityId, TokenCache};

use crate::args::{RunArgs, init_logging};
use crate::config::Defaults;
use crate::error::SetupError;

/// Variables a platform sets for its managed-identity endpoint (their presence means "on a host with one").
const PLATFORM_VARIABLES: [&str; 6] = [
    "IDENTITY_ENDPOINT",
    "MSI_ENDPOINT",
    "IMDS_ENDPOINT",
    "IDENTITY_SERVER_THUMBPRINT",
    "AZUREPS_HOST_ENVIRONMENT",
    identity_core::IMDS_HOST_OVERRIDE_VAR,
];

/// The managed-identity sample's settings.
// The field docs are `--help` text, written for a terminal rather than for rustdoc's Markdown.
#[allow(rustdoc::bare_urls, rustdoc::invalid_html_tags)]
#[derive(Args, Clone, Debug, Default)]
pub struct ManagedIdentityArgs {
    /// Where the token comes from: `host` (this Azure host's managed-identity endpoint, detected from the
    /// platform's variables; IMDS on a VM) or `emulator` (the embedded emulator playing IMDS). Default: host when a
    /// platform variable or an identity id is set, else emulator.
    #[arg(long = "managed-identity", env = "MANAGED_IDENTITY", value_name = "host|emulator",
          value_parser = ["host", "emulator"], help_heading = "Identity")]
    pub mode: Option<String>,

    /// Client id of a user-assigned identity (its Overview page) [default: the system-assigned identity].
    #[arg(long = "identity-client-id", env = "MANAGED_IDENTITY_CLIENT_ID", value_name = "GUID",
          conflicts_with_all = ["object_id", "resource_id"], help_heading = "Identity")]
    pub client_id: Option<String>,

    /// Object (principal) id of a user-assigned identity.
    #[arg(
        long = "identity-object-id",
        env = "MANAGED_IDENTITY_OBJECT_ID",
        value_name = "GUID",
        conflicts_with = "resource_id",
        help_heading = "Identity"
    )]
    pub object_id: Option<String>,

    /// Azure resource id of a user-assigned identity (/subscriptions/…/userAssignedIdentities/<name>).
    #[arg(
        long = "identity-resource-id",
        env = "MANAGED_IDENTITY_RESOURCE_ID",
        value_name = "ID",
        help_heading = "Identity"
    )]
    pub resource_id: Option<String>,

    /// The request, the network, the token cache, the output.
    #[command(flatten)]
    pub run: RunArgs,
}

/// What the managed-identity sample runs with.
#[derive(Debug)]
#[non_exhaustive]
pub struct ManagedIdentityConfig {
    /// Which identity.
    pub identity: ManagedIdentityId,
    /// The environment the source is detected from (the process's, or the emulator's IMDS).
    pub environment: ManagedIdentityEnvironment,
    /// The scope (or resource) to ask for.
    pub scope: String,
    /// The Graph URL to call.
    pub graph_endpoint: String,
    /// The HTTP client for Graph.
    pub http: HttpClient,
    /// The token cache.
    pub cache: Arc<dyn TokenCache>,
    /// The embedded emulator and the managed-identity host it plays, kept running while the config lives.
    #[cfg(feature = "embedded-emulator")]
    pub emulator: Option<(entra_emulator::Emulator, entra_emulator::ManagedIdentityHost)>,
}

impl ManagedIdentityArgs {
    /// Validates the settings; with nothing configured, starts the embedded emulator playing IMDS and says so.
    pub async fn configure(mut self, defaults: &Defaults) -> Result<ManagedIdentityConfig, SetupError> {
        init_logging(self.run.verbose);
        crate::args::log_loaded_dotenv();
        self.run.check_and_expand()?;
        let identity = self.identity();
        let on_platform = PLATFORM_VARIABLES.iter().any(|v| std::env::var_os(v).is_some());
        let use_host = match self.mode.as_deref() {
            Some("host") => true,
            Some(_) => false,
            None => on_platform || identity != ManagedIdentityId::SystemAssigned,
        };
        let scope = self.run.scopes(defaults)?.join(" ");
        if use_host {
            let http = HttpClient::new(self.run.http_config()?).map_err(|source| SetupError::Invalid {
                setting: "HTTP client",
                source,
            })?;
            let cache =
                crate::cache::open_cache(&self.run, &cache_client_id(&identity), "managed_identity").await?;
            return Ok(ManagedIdentityConfig {
                identity,
                environment: ManagedIdentityEnvironment::from_process(),
                scope,
                graph_endpoint: self.run.graph_endpoint(defaults, None)?,
                http,
                cache,
                #[cfg(feature = "embedded-emulator")]
                emulator: None,
            });
        }
        configure_emulator(identity, self.run, scope, defaults).await
    }

    fn identity(&self) -> ManagedIdentityId {
        let set = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        if let Some(id) = set(&self.client_id) {
            ManagedIdentityId::ClientId(id)
        } else if let Some(id) = set(&self.object_id) {
            ManagedIdentityId::ObjectId(id)
        } else if let Some(id) = set(&self.resource_id) {
            ManagedIdentityId::ResourceId(id)
        } else {
            ManagedIdentityId::SystemAssigned
        }
    }
}

/// With nothing configured: the embedded emulator, playing IMDS.
#[cfg(feature = "embedded-emulator")]
async fn configure_emulator(
    identity: ManagedIdentityId,
    mut run: RunArgs,
    scope: String,
    defaults: &Defaults,
) -> Result<ManagedIdentityConfig, SetupError> {
    let emulator = crate::config::start_embedded_emulator(|b| b).await?;
    let host = emulator
        .start_managed_identity_host()
        .await
        .map_err(|e| SetupError::Emulator(e.to_string()))?;
    run.use_emulator_cache_file(&emulator);
    println!(
        "No managed identity endpoint configured, so running against the embedded Entra emulator playing IMDS at {} \
         (see docs/managed-identity.md); on an Azure host set MANAGED_IDENTITY=host (App Service, Functions, Arc, \
         Service Fabric and Azure ML set their own variables, which select the host's endpoint).",
        host.imds_host()
    );
    println!(
        "Its system-assigned identity: client id {}, object id {}.",
        host.system_assigned().client_id,
        host.system_assigned().object_id
    );
    let environment =
        ManagedIdentityEnvironment::from_vars(host.env(entra_emulator::ManagedIdentityEndpoint::Imds));
    let mut http_config = run.http_config()?.with_extra_ca_pem(emulator.ca_pem());
    // The emulator is on loopback: a proxy from the environment could not reach it.
    http_config.proxy_from_env = false;
    let http = HttpClient::new(http_config).map_err(|source| SetupError::Invalid {
        setting: "HTTP client",
        source,
    })?;
    let cache = crate::cache::open_cache(&run, &cache_client_id(&identity), "managed_identity").await?;
    Ok(ManagedIdentityConfig {
        identity,
        environment,
        scope,
        graph_endpoint: run.graph_endpoint(defaults, Some(&emulator.https_url()))?,
        http,
        cache,
        emulator: Some((emulator, host)),
    })
}

#[cfg(not(feature = "embedded-emulator"))]
async fn configure_emulator(
    _identity: ManagedIdentityId,
    _run: RunArgs,
    _scope: String,
    _defaults: &Defaults,
) -> Result<ManagedIdentityConfig, SetupError> {
    Err(SetupError::Emulator(
        "this build has no embedded emulator: set MANAGED_IDENTITY=host on an Azure host".into(),
    ))
}

/// The Redis key prefix's client id.
fn cache_client_id(identity: &ManagedIdentityId) -> String {
    match identity {
        ManagedIdentityId::ClientId(id)
        | ManagedIdentityId::ObjectId(id)
        | ManagedIdentityId::ResourceId(id) => id.clone(),
        _ => "system-assigned-managed-identity".into(),
    }
}
