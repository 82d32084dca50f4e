//! Start-up: the state directory's CA, signing key, directory and held certificates loaded or created,
//! the listeners bound and the server spawned.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio_rustls::TlsAcceptor;

use crate::device_codes::DeviceConfig;
use crate::directory::{AppCertificate, Directory};
use crate::error::EmulatorError;
use crate::keys::TokenSigningKey;
use crate::request_context::Scheme;
use crate::seed::{self, DEMO_USERNAME};
use crate::seeded_certificates::{self, HeldCertificate};
use crate::server::{self, ServerHandle};
use crate::state::{AppState, Counters};
use crate::state_dir::{self, Store};
use crate::{grants, tls};

/// Default `expires_in` of app-only access tokens (user tokens get a random 3600–5400 s unless
/// [`EmulatorBuilder::token_lifetime`](crate::EmulatorBuilder::token_lifetime) is set).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3599);

/// What an [`EmulatorBuilder`](crate::EmulatorBuilder) collects; its methods document each setting.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub bind: SocketAddr,
    pub http_bind: Option<SocketAddr>,
    pub state_dir: Option<PathBuf>,
    pub directory: Option<Directory>,
    pub token_lifetime: Option<Duration>,
    pub reject_replayed_assertions: bool,
    pub device: DeviceConfig,
    pub refresh_token_lifetime: Duration,
    /// Simulated round-trip time (zero: none).
    pub rtt: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            http_bind: None,
            state_dir: None,
            directory: None,
            token_lifetime: None,
            reject_replayed_assertions: false,
            device: DeviceConfig::default(),
            refresh_token_lifetime: grants::DEFAULT_REFRESH_TOKEN_LIFETIME,
            rtt: Duration::ZERO,
        }
    }
}

fn corrupt(store: &Store, name: &str, message: impl fmt::Display) -> EmulatorError {
    EmulatorError::CorruptState {
        path: store.path(name),
        message: message.to_string(),
    }
}

fn state_io(store: &Store, name: &str, source: std::io::Error) -> EmulatorError {
    EmulatorError::StateDir {
        path: store.path(name),
        source,
    }
}

/// Loads or creates the signing key (RSA generation runs on the blocking pool).
async fn signing_key(store: &Store) -> Result<TokenSigningKey, EmulatorError> {
    let key = store
        .read(state_dir::SIGNING_KEY)
        .map_err(|e| state_io(store, state_dir::SIGNING_KEY, e))?;
    let cert = store
        .read(state_dir::SIGNING_CERT)
        .map_err(|e| state_io(store, state_dir::SIGNING_CERT, e))?;
    match (key, cert) {
        (Some(key), Some(cert)) => {
            TokenSigningKey::from_pem(&key, &cert).map_err(|m| corrupt(store, state_dir::SIGNING_KEY, m))
        }
        (None, None) => {
            let key = tokio::task::spawn_blocking(TokenSigningKey::generate)
                .await
                .map_err(|e| EmulatorError::SigningKey(e.to_string()))?
                .map_err(EmulatorError::SigningKey)?;
            if store.is_persistent() {
                store
                    .write_private(state_dir::SIGNING_KEY, key.key_pem())
                    .map_err(|e| state_io(store, state_dir::SIGNING_KEY, e))?;
                store
                    .write_public(state_dir::SIGNING_CERT, &key.cert_pem())
                    .map_err(|e| state_io(store, state_dir::SIGNING_CERT, e))?;
            }
            Ok(key)
        }
        _ => Err(corrupt(
            store,
            state_dir::SIGNING_KEY,
            format!(
                "only one of {} and {} exists; remove the other or both",
                state_dir::SIGNING_KEY,
                state_dir::SIGNING_CERT
            ),
        )),
    }
}

/// The directory to serve (given, persisted or seeded) and whether it must be saved.
fn load_directory(store: &Store, given: Option<Directory>) -> Result<(Directory, bool), EmulatorError> {
    let (directory, save) = match given {
        Some(d) => (d, true),
        None => match store
            .read(state_dir::DIRECTORY)
            .map_err(|e| state_io(store, state_dir::DIRECTORY, e))?
        {
            Some(json) => {
                let mut directory: Directory =
                    serde_json::from_str(&json).map_err(|e| corrupt(store, state_dir::DIRECTORY, e))?;
                // A seeded directory saved by an earlier version lacks the entries added since.
                let added = directory.add_missing_seeded_entries();
                if !added.is_empty() {
                    tracing::info!(added = %added.join(", "), "added new seeded entries to the persisted directory");
                }
                (directory, !added.is_empty())
            }
            None => (Directory::seeded(), true),
        },
    };
    directory.validate().map_err(EmulatorError::InvalidDirectory)?;
    Ok((directory, save))
}

/// The auto-approve user must exist.
fn check_auto_approve(directory: &Directory, device: &DeviceConfig) -> Result<(), EmulatorError> {
    match &device.auto_approve {
        Some((username, _)) if !directory.tenants.iter().any(|t| t.user(username).is_some()) => {
            Err(EmulatorError::InvalidDirectory(format!(
                "auto_approve_device_codes (--auto-approve): there is no user '{username}' in the directory; \
                 give a user principal name such as {DEMO_USERNAME}"
            )))
        }
        _ => Ok(()),
    }
}

fn save_directory(store: &Store, directory: &Directory) -> Result<(), EmulatorError> {
    let json =
        serde_json::to_string_pretty(directory).map_err(|e| corrupt(store, state_dir::DIRECTORY, e))?;
    store
        .write_private(state_dir::DIRECTORY, &json)
        .map_err(|e| state_io(store, state_dir::DIRECTORY, e))
}

/// Registers each held certificate with its app unless it already is. Returns whether anything changed.
fn attach_seeded_certificates(
    directory: &mut Directory,
    held: &[HeldCertificate],
) -> Result<bool, EmulatorError> {
    let mut changed = false;
    for h in held {
        if let Some(app) = directory.app_mut(&h.app)
            && !app.certificates.iter().any(|c| c.cert_der == h.cert_der)
        {
            app.certificates.push(AppCertificate::from_der(&h.cert_der)?);
            changed = true;
        }
    }
    Ok(changed)
}

/// `https://127.0.0.1:PORT` for a bound address (unspecified addresses advertise loopback).
fn base_url(scheme: &str, addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    match ip {
        IpAddr::V4(ip) => format!("{scheme}://{ip}:{}", addr.port()),
        IpAddr::V6(ip) => format!("{scheme}://[{ip}]:{}", addr.port()),
    }
}

/// A started server, before it is wrapped into an [`Emulator`] together with its store.
pub(crate) struct Running {
    pub state: Arc<AppState>,
    pub server: ServerHandle,
    pub https_url: String,
    pub http_url: Option<String>,
    pub ca_pem: String,
    pub ca_path: PathBuf,
    pub held: Vec<HeldCertificate>,
}

pub(crate) async fn start_with_store(builder: Settings, store: &Store) -> Result<Running, EmulatorError> {
    let (mut directory, mut save) = load_directory(store, builder.directory)?;
    check_auto_approve(&directory, &builder.device)?;

    let https_listener = server::bind(builder.bind)
        .await
        .map_err(|source| EmulatorError::Bind {
            addr: builder.bind,
            source,
        })?;
    let https_addr = https_listener
        .local_addr()
        .map_err(|source| EmulatorError::Bind {
            addr: builder.bind,
            source,
        })?;
    let http_listener = match builder.http_bind {
        Some(addr) => {
            let l = server::bind(addr)
                .await
                .map_err(|source| EmulatorError::Bind { addr, source })?;
            let a = l
                .local_addr()
                .map_err(|source| EmulatorError::Bind { addr, source })?;
            Some((l, a))
        }
        None => None,
    };

    let extra_ips: Vec<IpAddr> = [Some(https_addr.ip())]
        .into_iter()
        .flatten()
        .filter(|ip| !ip.is_unspecified() && !ip.is_loopback())
        .collect();
    let tls = tls::load_or_create(store, &extra_ips).map_err(EmulatorError::Tls)?;
    // The RSA keys missing from the state (token signing, seeded apps' certificates) are generated in
    // parallel on the blocking pool.
    let held_apps: Vec<String> = seed::HELD_CERTIFICATE_APPS
        .iter()
        .filter(|name| directory.tenants.iter().any(|t| t.app(name).is_some()))
        .map(|name| (*name).to_owned())
        .collect();
    let (signing_key, held) = tokio::try_join!(
        signing_key(store),
        seeded_certificates::load_or_create(store, &held_apps)
    )?;
    save |= attach_seeded_certificates(&mut directory, &held)?;
    if save && store.is_persistent() {
        save_directory(store, &directory)?;
    }

    let https_url = base_url("https", https_addr);
    let http_url = http_listener.as_ref().map(|(_, a)| base_url("http", *a));
    let workload_issuer = crate::workload_issuer::WorkloadIssuer::new(&https_url);
    let state = Arc::new(AppState {
        directory: RwLock::new(directory),
        signing_key,
        token_lifetime: builder.token_lifetime.unwrap_or(DEFAULT_TOKEN_LIFETIME),
        user_token_lifetime: builder.token_lifetime,
        refresh_token_lifetime: builder.refresh_token_lifetime,
        device_config: builder.device,
        devices: Mutex::new(Default::default()),
        device_issued: tokio::sync::Notify::new(),
        grants: Mutex::new(Default::default()),
        sessions: Mutex::new(Default::default()),
        auth_codes: Mutex::new(Default::default()),
        https_url: https_url.clone(),
        counters: Counters::default(),
        faults: Mutex::new(Default::default()),
        reject_replayed_assertions: builder.reject_replayed_assertions,
        seen_assertions: Mutex::new(Default::default()),
        workload_issuer,
    });

    // Pages that change the directory (admin consent) save it through this.
    let router = server::router(state.clone()).layer(axum::Extension(store.directory_file()));
    let network = Arc::new(server::Network::new(builder.rtt));
    let (mut handle, shutdown_rx) = ServerHandle::new(network.clone());
    handle.add(server::spawn_listener(
        https_listener,
        Some(TlsAcceptor::from(tls.server_config.clone())),
        router.clone(),
        Scheme::Https,
        https_url.clone(),
        network.clone(),
        shutdown_rx.clone(),
    ));
    if let (Some((listener, _)), Some(url)) = (http_listener, &http_url) {
        handle.add(server::spawn_listener(
            listener,
            None,
            router,
            Scheme::Http,
            url.clone(),
            network,
            shutdown_rx,
        ));
    }
    tracing::info!(%https_url, http_url = ?http_url, "entra emulator listening");
    Ok(Running {
        state,
        server: handle,
        https_url,
        http_url,
        ca_pem: tls.ca_pem,
        ca_path: store.path(state_dir::CA_CERT),
        held,
    })
}
