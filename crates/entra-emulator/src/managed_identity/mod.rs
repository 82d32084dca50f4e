//! The managed-identity endpoints of Azure hosts, played on loopback: IMDS (under the host override MSAL
//! Python reads, `AZURE_POD_IDENTITY_AUTHORITY_HOST`), App Service / Functions (`IDENTITY_ENDPOINT` +
//! `IDENTITY_HEADER`), Azure Machine Learning (`MSI_ENDPOINT` + `MSI_SECRET`), Azure Arc (its `Basic realm`
//! challenge with a key file in a token directory of its own) and Service Fabric (https with a self-signed
//! certificate whose SHA-1 thumbprint it publishes). Tokens are minted for the seeded tenant's two managed
//! identities (system-assigned and one user-assigned), signed like every other token, so Graph accepts them.
//!
//! Files: `mod.rs` (the host: listeners, switches, the environment of each source), `endpoints.rs` (the
//! handlers and each source's answers).

mod endpoints;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256, SanType};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha1::{Digest as _, Sha1};
use tokio_rustls::TlsAcceptor;

use crate::error::EmulatorError;
use crate::ids::random_b64url;
use crate::request_context::Scheme;
use crate::server::{self, ServerHandle};
use crate::state::AppState;

/// The seeded subscription the identities' resource ids live in.
const SUBSCRIPTION: &str = "/subscriptions/7d3c1f5e-2b8a-4c3e-9f4d-1a2b3c4d5e6f/resourceGroups/emulator";

/// One of the endpoints the host plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ManagedIdentityEndpoint {
    /// The Instance Metadata Service of VMs.
    Imds,
    /// App Service, Azure Functions.
    AppService,
    /// Azure Machine Learning compute.
    AzureMl,
    /// An Azure Arc-enabled server's agent.
    AzureArc,
    /// Service Fabric's token service.
    ServiceFabric,
}

const ALL: [ManagedIdentityEndpoint; 5] = [
    ManagedIdentityEndpoint::Imds,
    ManagedIdentityEndpoint::AppService,
    ManagedIdentityEndpoint::AzureMl,
    ManagedIdentityEndpoint::AzureArc,
    ManagedIdentityEndpoint::ServiceFabric,
];

/// A managed identity of the seeded tenant: its service principal's ids and its Azure resource id.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManagedIdentityInfo {
    /// Client (application) id.
    pub client_id: String,
    /// Object (principal) id: the `oid` of its tokens.
    pub object_id: String,
    /// Azure resource id (for a system-assigned identity, the resource it belongs to).
    pub resource_id: String,
    /// Display name.
    pub display_name: String,
    /// Graph application permissions granted to it.
    pub app_roles: Vec<String>,
}

fn seeded_identities() -> (ManagedIdentityInfo, ManagedIdentityInfo) {
    (
        ManagedIdentityInfo {
            client_id: "6f2c1a9e-4b7d-4e1f-a3c5-2d8e9f0a1b2c".into(),
            object_id: "1e5d7c3b-9a2f-4d6e-8b1c-3f4a5e6d7c8b".into(),
            resource_id: format!("{SUBSCRIPTION}/providers/Microsoft.Compute/virtualMachines/emulator-vm"),
            display_name: "emulator-vm".into(),
            app_roles: vec!["User.Read.All".into()],
        },
        ManagedIdentityInfo {
            client_id: "b4e8d2f6-1c3a-4f5e-9d7b-8a6c4e2f0d1b".into(),
            object_id: "9c7e5a3f-2d1b-4e8c-a6f4-0b2d4f6a8c9e".into(),
            resource_id: format!(
                "{SUBSCRIPTION}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/emulator-uami"
            ),
            display_name: "emulator-uami".into(),
            app_roles: vec!["User.Read.All".into()],
        },
    )
}

/// What the handlers share: the emulator's state (signing key, tenant), the identities, the secrets and the
/// test switches.
#[derive(Debug)]
pub(crate) struct HostState {
    app: Arc<AppState>,
    tenant_id: String,
    system_assigned: ManagedIdentityInfo,
    user_assigned: ManagedIdentityInfo,
    app_service_header: String,
    azure_ml_secret: String,
    service_fabric_header: String,
    arc_token_dir: PathBuf,
    /// The key of the challenge last issued by Arc.
    arc_key: Mutex<Option<String>>,
    /// A challenge file named instead of a fresh one (to test the client's checks).
    arc_realm_override: Mutex<Option<PathBuf>>,
    /// Whether Arc echoes the user-assigned identity it used (older agents do not, and answer for the
    /// system-assigned one).
    arc_echoes_identity: AtomicBool,
    /// Whether the host has a system-assigned identity (turned off: "Identity not found" answers).
    system_assigned_enabled: AtomicBool,
    failures: Mutex<HashMap<ManagedIdentityEndpoint, (u16, u32)>>,
    counts: [AtomicU64; 5],
}

impl HostState {
    fn index(endpoint: ManagedIdentityEndpoint) -> usize {
        ALL.iter().position(|e| *e == endpoint).unwrap_or(0)
    }

    /// Counts the request and returns an injected failure status if one is due.
    fn arrive(&self, endpoint: ManagedIdentityEndpoint) -> Option<u16> {
        self.counts[Self::index(endpoint)].fetch_add(1, Ordering::Relaxed);
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let (status, left) = failures.get_mut(&endpoint)?;
        let status = *status;
        *left -= 1;
        if *left == 0 {
            failures.remove(&endpoint);
        }
        Some(status)
    }
}

/// The managed-identity endpoints, running on loopback. Dropping it stops them and removes the Arc token
/// directory.
#[derive(Debug)]
pub struct ManagedIdentityHost {
    state: Arc<HostState>,
    server: ServerHandle,
    http_base: String,
    arc_base: String,
    service_fabric_base: String,
    service_fabric_thumbprint: String,
}

impl ManagedIdentityHost {
    pub(crate) async fn start(app: Arc<AppState>, tenant_id: String) -> Result<Self, EmulatorError> {
        let (system_assigned, user_assigned) = seeded_identities();
        let arc_token_dir = std::env::temp_dir().join(format!("entra-emulator-arc-{}", uuid::Uuid::new_v4()));
        create_private_dir(&arc_token_dir).map_err(|source| EmulatorError::StateDir {
            path: arc_token_dir.clone(),
            source,
        })?;
        let state = Arc::new(HostState {
            app,
            tenant_id,
            system_assigned,
            user_assigned,
            app_service_header: random_b64url(24),
            azure_ml_secret: random_b64url(24),
            service_fabric_header: random_b64url(24),
            arc_token_dir,
            arc_key: Mutex::new(None),
            arc_realm_override: Mutex::new(None),
            arc_echoes_identity: AtomicBool::new(true),
            system_assigned_enabled: AtomicBool::new(true),
            failures: Mutex::new(HashMap::new()),
            counts: Default::default(),
        });
        // The hosts' endpoints are on the machine itself (no simulated round trips): their own network counters.
        let network = Arc::new(server::Network::new(std::time::Duration::ZERO));
        let (mut server, shutdown) = ServerHandle::new(network.clone());
        let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
        let bind = |addr| async move {
            server::bind(addr)
                .await
                .map_err(|source| EmulatorError::Bind { addr, source })
        };

        let plain = bind(loopback).await?;
        let http_base = format!("http://{}", local_addr(&plain, loopback)?);
        let router = Router::new()
            .route("/metadata/identity/oauth2/token", get(endpoints::imds))
            .route("/msi/token", get(endpoints::app_service))
            .route("/msi/auth", get(endpoints::azure_ml))
            .with_state(state.clone());
        server.add(server::spawn_listener(
            plain,
            None,
            router,
            Scheme::Http,
            http_base.clone(),
            network.clone(),
            shutdown.clone(),
        ));

        let arc = bind(loopback).await?;
        let arc_base = format!("http://{}", local_addr(&arc, loopback)?);
        let router = Router::new()
            .route("/metadata/identity/oauth2/token", get(endpoints::arc))
            .with_state(state.clone());
        server.add(server::spawn_listener(
            arc,
            None,
            router,
            Scheme::Http,
            arc_base.clone(),
            network.clone(),
            shutdown.clone(),
        ));

        let (tls, service_fabric_thumbprint) = self_signed_tls().map_err(EmulatorError::Tls)?;
        let sf = bind(loopback).await?;
        let service_fabric_base = format!("https://{}", local_addr(&sf, loopback)?);
        let router = Router::new()
            .route("/metadata/identity/oauth2/token", get(endpoints::service_fabric))
            .with_state(state.clone());
        server.add(server::spawn_listener(
            sf,
            Some(TlsAcceptor::from(tls)),
            router,
            Scheme::Https,
            service_fabric_base.clone(),
            network,
            shutdown,
        ));
        tracing::info!(imds = %http_base, arc = %arc_base, service_fabric = %service_fabric_base, "managed identity endpoints listening");
        Ok(ManagedIdentityHost {
            state,
            server,
            http_base,
            arc_base,
            service_fabric_base,
            service_fabric_thumbprint,
        })
    }

    /// The host's system-assigned identity.
    pub fn system_assigned(&self) -> &ManagedIdentityInfo {
        &self.state.system_assigned
    }

    /// The user-assigned identity also assigned to the host.
    pub fn user_assigned(&self) -> &ManagedIdentityInfo {
        &self.state.user_assigned
    }

    /// The value for `AZURE_POD_IDENTITY_AUTHORITY_HOST`: IMDS's host (`http://127.0.0.1:PORT`).
    pub fn imds_host(&self) -> &str {
        &self.http_base
    }

    /// The full IMDS token URL.
    pub fn imds_endpoint(&self) -> String {
        format!("{}/metadata/identity/oauth2/token", self.http_base)
    }

    /// The directory the Arc agent writes its challenge key files to.
    pub fn arc_token_directory(&self) -> &Path {
        &self.state.arc_token_dir
    }

    /// The Service Fabric certificate's SHA-1 thumbprint (40 upper-case hex digits).
    pub fn service_fabric_thumbprint(&self) -> &str {
        &self.service_fabric_thumbprint
    }

    /// The variables the platform would set for `endpoint` (they include its secret header, when it has one).
    pub fn env(&self, endpoint: ManagedIdentityEndpoint) -> Vec<(&'static str, String)> {
        match endpoint {
            ManagedIdentityEndpoint::Imds => {
                vec![("AZURE_POD_IDENTITY_AUTHORITY_HOST", self.http_base.clone())]
            }
            ManagedIdentityEndpoint::AppService => vec![
                ("IDENTITY_ENDPOINT", format!("{}/msi/token", self.http_base)),
                ("IDENTITY_HEADER", self.state.app_service_header.clone()),
            ],
            ManagedIdentityEndpoint::AzureMl => vec![
                ("MSI_ENDPOINT", format!("{}/msi/auth", self.http_base)),
                ("MSI_SECRET", self.state.azure_ml_secret.clone()),
                (
                    "DEFAULT_IDENTITY_CLIENT_ID",
                    self.state.system_assigned.client_id.clone(),
                ),
            ],
            ManagedIdentityEndpoint::AzureArc => vec![
                (
                    "IDENTITY_ENDPOINT",
                    format!("{}/metadata/identity/oauth2/token", self.arc_base),
                ),
                ("IMDS_ENDPOINT", self.arc_base.clone()),
            ],
            ManagedIdentityEndpoint::ServiceFabric => vec![
                (
                    "IDENTITY_ENDPOINT",
                    format!("{}/metadata/identity/oauth2/token", self.service_fabric_base),
                ),
                ("IDENTITY_HEADER", self.state.service_fabric_header.clone()),
                (
                    "IDENTITY_SERVER_THUMBPRINT",
                    self.service_fabric_thumbprint.clone(),
                ),
            ],
        }
    }

    /// Answers the next `times` token requests to `endpoint` with `status` (IMDS's transient 404, 410, 429,
    /// 5xx, or any other), in the endpoint's own error shape.
    pub fn fail_next(&self, endpoint: ManagedIdentityEndpoint, status: u16, times: u32) {
        let mut failures = self.state.failures.lock().unwrap_or_else(|e| e.into_inner());
        if times == 0 {
            failures.remove(&endpoint);
        } else {
            failures.insert(endpoint, (status, times));
        }
    }

    /// Whether the host has its system-assigned identity (off: requests for it get each endpoint's "identity
    /// not found" answer).
    pub fn set_system_assigned(&self, enabled: bool) {
        self.state
            .system_assigned_enabled
            .store(enabled, Ordering::Relaxed);
    }

    /// Plays an older Arc agent (`false`): a user-assigned identity asked for is ignored, the answer is the
    /// system-assigned identity's token without echoing any id.
    pub fn set_arc_echoes_identity(&self, echoes: bool) {
        self.state.arc_echoes_identity.store(echoes, Ordering::Relaxed);
    }

    /// Makes Arc's challenge name this file instead of a fresh key file in its token directory (`None`: back to
    /// normal). For testing what a client agrees to read.
    pub fn set_arc_challenge_file(&self, file: Option<PathBuf>) {
        *self
            .state
            .arc_realm_override
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = file;
    }

    /// Token requests (including challenges and refused ones) received by `endpoint` since start.
    pub fn requests(&self, endpoint: ManagedIdentityEndpoint) -> u64 {
        self.state.counts[HostState::index(endpoint)].load(Ordering::Relaxed)
    }

    /// Stops the listeners.
    pub async fn shutdown(mut self) {
        self.server.shutdown().await;
    }
}

impl Drop for ManagedIdentityHost {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.state.arc_token_dir);
    }
}

fn local_addr(listener: &tokio::net::TcpListener, addr: SocketAddr) -> Result<SocketAddr, EmulatorError> {
    listener
        .local_addr()
        .map_err(|source| EmulatorError::Bind { addr, source })
}

fn create_private_dir(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new().mode(0o700).create(path)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir(path)
    }
}

/// Service Fabric's certificate: self-signed (no CA vouches for it; clients pin its thumbprint).
fn self_signed_tls() -> Result<(Arc<ServerConfig>, String), String> {
    let key =
        KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| format!("Service Fabric key: {e}"))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        "emulator Service Fabric managed identity token service",
    );
    params.distinguished_name = dn;
    params.subject_alt_names = vec![SanType::IpAddress([127, 0, 0, 1].into())];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(30);
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("Service Fabric certificate: {e}"))?;
    let thumbprint: String = Sha1::digest(cert.der())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .map_err(|e| format!("TLS configuration: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), thumbprint))
}
