//! A local emulator of the Microsoft identity platform (Entra ID v2.0) and of the Microsoft Graph
//! endpoints the samples call.
//!
//! It is a real HTTPS server on loopback (rustls, with a CA generated at first start and written as PEM
//! so any client can trust it) with a seeded directory (a tenant, confidential and public-client apps, users).
//! It serves what the four quickstarts and MSAL call: OpenID Connect discovery, signing keys, instance and
//! user realm discovery; the v2.0 token endpoint with its grants: client credentials (a client secret or a
//! certificate: signed JWT client assertions), device code, username/password and refresh token; the
//! device-code sign-in page and the admin-consent page; the authorization endpoint (auth code flow with
//! PKCE, its sign-in pages and the `authorization_code` grant); and Graph `/v1.0/users`, `/v1.0/users/{id}`,
//! `/v1.0/me`, `/v1.0/applications/…`. Answers carry the real service's error shapes and AADSTS codes.
//!
//! Emulators sharing a state directory ([`EmulatorBuilder::state_dir`]) may start at the same moment: the
//! state is created and loaded under an exclusive lock, so they all get the same CA, signing key and directory.
//!
//! ```no_run
//! # async fn demo() -> Result<(), entra_emulator::EmulatorError> {
//! let emulator = entra_emulator::Emulator::builder().start().await?;
//! let daemon = emulator.app("daemon").expect("seeded app");
//! println!("authority {} client {}", emulator.authority(), daemon.app_id);
//! emulator.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! See `docs/emulator.md` for the endpoints, the seeded directory and the self-description format.
//!
//! # Layout
//!
//! Top down; each layer imports only the layers below it.
//!
//! - **Boot and public face**: `main.rs` (the `entra-emulator` binary), `lib.rs` ([`Emulator`],
//!   [`EmulatorBuilder`] and the re-exports), `boot.rs` (start-up: load or create the state, bind the
//!   listeners, serve), `describe.rs` (the self-description, [`Description`]) and `workload.rs` (service-account
//!   tokens of the emulator's issuer for tests, the rotated projected token file: [`WorkloadToken`],
//!   [`ProjectedToken`]).
//! - **HTTP**: `server.rs` (the router, the listeners, request counting) with `server/faults.rs` (injected
//!   faults) and `server/network.rs` (the simulated round-trip time, connection and request counters), and
//!   `routes/`: `discovery`; `token`, the token endpoint, which serves client credentials itself
//!   and hands the user grants to `device`, `password`, `refresh` and `auth_code` (sharing `user_flow`);
//!   `client_auth` and `request` below them; the authorization endpoint `authorize` with its sign-in pages
//!   `login`; the HTML pages `signin` and `admin_consent`; `graph`; `workload_issuer` (the emulator's own token
//!   issuer: its discovery document and keys); and `admin` (`/_emulator/*`). Beside them, `managed_identity/`
//!   ([`ManagedIdentityHost`]: `mod.rs`, its listeners and switches; `endpoints.rs`, the token endpoints of IMDS,
//!   App Service, Azure ML, Azure Arc and Service Fabric), started on demand by
//!   [`Emulator::start_managed_identity_host`].
//! - **State**: `state.rs` (`AppState`: the directory, the signing key, the stores, counters and faults behind
//!   their locks).
//! - **Protocol**: `assertion.rs` (client assertions), `workload_issuer.rs` (the emulator's token issuer and
//!   the validation of federated assertions against federated identity credentials), `jwt.rs`, `keys.rs` (the token-signing key),
//!   `error_responses.rs` (the AADSTS catalogue and Graph errors) and `request_context.rs` (`Ctx`: the base
//!   URL as the client addressed it, the request and correlation ids, the clock).
//! - **Model**: `seed.rs` (the seeded demo tenant), `directory.rs` (tenants, apps, users), `tenancy.rs`
//!   (tenant path segments and what they resolve to), `device_codes.rs`, `grants.rs` (refresh tokens),
//!   `auth_codes.rs` (authorization requests, codes and single sign-on of the auth code flow) and
//!   `sessions.rs` (the sign-in pages' browser sessions).
//! - **Files and crypto**: `seeded_certificates.rs` (the seeded apps' certificates whose keys the emulator
//!   holds), [`certificates`] (development certificates, public), `tls.rs` (the CA and server certificate),
//!   `state_dir.rs` (the state directory: its lock, private files, atomic writes) and `x509.rs`.
//! - **Foundations**: `error.rs` ([`EmulatorError`]), `ids.rs` (GUIDs, random values, constant-time comparison
//!   of secrets) and `formats.rs` (base64, hex, percent-decoding, the services' date formats, ordered JSON).

mod assertion;
mod auth_codes;
mod boot;
pub mod certificates;
mod describe;
mod device_codes;
mod directory;
mod error;
mod error_responses;
mod formats;
mod grants;
mod ids;
mod jwt;
mod keys;
mod managed_identity;
mod request_context;
mod routes;
mod seed;
mod seeded_certificates;
mod server;
mod sessions;
mod state;
mod state_dir;
mod tenancy;
mod tls;
mod workload;
mod workload_issuer;
mod x509;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use boot::DEFAULT_TOKEN_LIFETIME;
pub use describe::{
    AppDescription, CertificateDescription, CertificateFilesDescription, DESCRIPTION_VERSION,
    DemoUserDescription, Description, SecretDescription, TenantDescription, UserDescription,
};
pub use device_codes::{DeviceCodeInfo, DeviceCodeStatus};
pub use directory::{
    AppCertificate, AppRegistration, ClientSecret, DEFAULT_TENANT_DOMAIN, DEFAULT_TENANT_ID,
    DEFAULT_TENANT_NAME, Directory, FederatedIdentityCredential, GRAPH_APP_ID, GRAPH_RESOURCE, MSA_TENANT_ID,
    SignInAudience, TOKEN_EXCHANGE_AUDIENCE, Tenant, User,
};
pub use error::EmulatorError;
pub use managed_identity::{ManagedIdentityEndpoint, ManagedIdentityHost, ManagedIdentityInfo};
pub use seed::{DEMO_PASSWORD, DEMO_USERNAME, FEDERATED_DOMAIN, WORKLOAD_SUBJECT};
pub use seeded_certificates::CertificateFiles;
pub use server::NetworkStats;
pub use state::{Endpoint, Fault, FaultKind, RequestCounts};
pub use workload::{ProjectedToken, WorkloadToken};

use crate::boot::Settings;
use crate::seeded_certificates::HeldCertificate;
use crate::server::ServerHandle;
use crate::state::AppState;
use crate::state_dir::Store;

/// Configures and starts an [`Emulator`].
#[derive(Debug, Clone, Default)]
pub struct EmulatorBuilder {
    settings: Settings,
}

impl EmulatorBuilder {
    /// Address of the HTTPS listener; default `127.0.0.1:0` (a random free port).
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.settings.bind = addr;
        self
    }

    /// Also listen for plain HTTP on `addr` (MSAL refuses http authorities; useful for other clients).
    pub fn http_bind(mut self, addr: SocketAddr) -> Self {
        self.settings.http_bind = Some(addr);
        self
    }

    /// Keep the CA (certificate and key), the token-signing key, the directory (with its generated
    /// secrets and passwords) and the seeded apps' certificates (key, certificate, PFX and its password) in
    /// `dir`, and reload them on the next start. Without a state directory a fresh temporary directory holds
    /// the CA certificate and the certificate files and is removed when the emulator stops.
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.settings.state_dir = Some(dir.into());
        self
    }

    /// Serve this directory instead of the seeded (or persisted) one. With a state directory it is saved
    /// there, replacing the previous one.
    pub fn directory(mut self, dir: Directory) -> Self {
        self.settings.directory = Some(dir);
        self
    }

    /// `expires_in` of issued access tokens. Default: 3599 s for app-only tokens, a random 3600–5400 s for
    /// user tokens (as Entra randomises them); once set, both use `d`.
    pub fn token_lifetime(mut self, d: Duration) -> Self {
        self.settings.token_lifetime = Some(d);
        self
    }

    /// `interval` of device codes: how many seconds clients wait between polls (default 5).
    pub fn device_code_interval(mut self, secs: u64) -> Self {
        self.settings.device.interval = secs;
        self
    }

    /// `expires_in` of device codes (default 900 s); afterwards polls get `expired_token`.
    pub fn device_code_lifetime(mut self, d: Duration) -> Self {
        self.settings.device.lifetime = d;
        self
    }

    /// Answer the first `n` polls of each still-pending device code with `slow_down` (default 0: Entra is not
    /// known to send it, and MSAL.NET gives up on it).
    pub fn slow_down_polls(mut self, n: u32) -> Self {
        self.settings.device.slow_down_polls = n;
        self
    }

    /// Approve every device code as `username` (a user principal name) `delay` after it was issued, as if
    /// that user had signed in and consented on the sign-in page. Start fails if there is no such user.
    pub fn auto_approve_device_codes(mut self, username: impl Into<String>, delay: Duration) -> Self {
        self.settings.device.auto_approve = Some((username.into(), delay));
        self
    }

    /// Inactivity after which a refresh token is refused with AADSTS700082 (default 90 days).
    pub fn refresh_token_lifetime(mut self, d: Duration) -> Self {
        self.settings.refresh_token_lifetime = d;
        self
    }

    /// Whether a client assertion may be used only once (its `jti` is remembered until it expires); default
    /// `false`, like the real service, which accepts the reuse MSAL (and identity-core) practise for several
    /// minutes. Turn it on to test that a client signs a fresh assertion per request.
    pub fn reject_replayed_assertions(mut self, reject: bool) -> Self {
        self.settings.reject_replayed_assertions = reject;
        self
    }

    /// Simulate a network with this round-trip time (default zero: loopback as it is): each new connection
    /// waits 2 × `rtt` (the TCP and TLS handshakes) and each answer 1 × `rtt`, so a client's round trips cost
    /// what they cost over the internet. [`Emulator::network_stats`] counts connections and requests.
    pub fn simulated_rtt(mut self, rtt: Duration) -> Self {
        self.settings.rtt = rtt;
        self
    }

    /// Starts the listeners. Must be called within a Tokio runtime; the server runs on that runtime.
    pub async fn start(self) -> Result<Emulator, EmulatorError> {
        let store = match &self.settings.state_dir {
            Some(dir) => Store::persistent(dir.clone()),
            None => Store::temporary(),
        }
        .map_err(|source| EmulatorError::StateDir {
            path: self.settings.state_dir.clone().unwrap_or_else(std::env::temp_dir),
            source,
        })?;
        // Held until the state is loaded or created and saved: emulators sharing a state directory (samples
        // started at once) then all end up with the same CA, signing key and directory.
        let lock = store.lock().await.map_err(|source| EmulatorError::StateDir {
            path: store.path(state_dir::LOCK),
            source,
        })?;
        let started = boot::start_with_store(self.settings, &store).await;
        drop(lock);
        match started {
            Ok(r) => Ok(Emulator {
                state: r.state,
                server: r.server,
                https_url: r.https_url,
                http_url: r.http_url,
                ca_pem: r.ca_pem,
                ca_path: r.ca_path,
                held: r.held,
                store,
            }),
            Err(e) => {
                store.cleanup();
                Err(e)
            }
        }
    }
}

/// A running emulator. Dropping it (or [`Emulator::shutdown`]) stops the server; without a state
/// directory its temporary directory (holding the CA file) is removed then.
pub struct Emulator {
    state: Arc<AppState>,
    server: ServerHandle,
    https_url: String,
    http_url: Option<String>,
    ca_pem: String,
    ca_path: PathBuf,
    held: Vec<HeldCertificate>,
    store: Store,
}

impl fmt::Debug for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulator")
            .field("https_url", &self.https_url)
            .field("http_url", &self.http_url)
            .field("ca_path", &self.ca_path)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// A builder with the defaults (random port on 127.0.0.1, seeded directory, temporary state).
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }

    /// `https://127.0.0.1:PORT` (no trailing slash).
    pub fn https_url(&self) -> String {
        self.https_url.clone()
    }

    /// `http://127.0.0.1:PORT` if the plain-HTTP listener is enabled.
    pub fn http_url(&self) -> Option<String> {
        self.http_url.clone()
    }

    /// `https://127.0.0.1:PORT/{default tenant GUID}`.
    pub fn authority(&self) -> String {
        format!("{}/{}", self.https_url, self.tenant_id())
    }

    /// The default tenant's id.
    pub fn tenant_id(&self) -> String {
        self.state
            .directory()
            .default_tenant()
            .map(|t| t.id.clone())
            .unwrap_or_default()
    }

    /// The default tenant's primary domain (`contoso.onmicrosoft.com` for the seeded directory).
    pub fn tenant_domain(&self) -> String {
        self.state
            .directory()
            .default_tenant()
            .map(|t| t.primary_domain().to_owned())
            .unwrap_or_default()
    }

    /// `https://127.0.0.1:PORT/v1.0`.
    pub fn graph_base(&self) -> String {
        format!("{}/v1.0", self.https_url)
    }

    /// PEM of the CA certificate clients must trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// File holding [`Self::ca_pem`].
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// A snapshot of the directory.
    pub fn directory(&self) -> Directory {
        self.state.directory().clone()
    }

    /// An app registration by short name (`daemon`, `expired-secret`, `no-permissions`,
    /// `daemon-certificate`, …), looked up in the default tenant first, then in the others.
    pub fn app(&self, name: &str) -> Option<AppRegistration> {
        let directory = self.state.directory();
        let mut app = directory.tenants.iter().find_map(|t| t.app(name)).cloned()?;
        // A credential that trusts this emulator's issuer shows that issuer's URL, as the service checks it.
        for credential in &mut app.federated_credentials {
            credential.issuer = self.state.workload_issuer.effective_issuer(credential).to_owned();
        }
        Some(app)
    }

    /// The files (private key, certificate, PFX and its password) of the certificate the emulator created
    /// for a seeded app (`daemon-certificate`); `None` for other apps.
    pub fn certificate_files(&self, app: &str) -> Option<CertificateFiles> {
        self.held.iter().find(|h| h.app == app).map(|h| h.files.clone())
    }

    /// Uploads a public certificate (DER) to an app registration at run time, as "Certificates & secrets →
    /// Upload certificate" does: client assertions signed with its key authenticate the app from the next
    /// request on (its validity comes from the certificate, so an expired one gets AADSTS700027). With a state
    /// directory the directory is saved. Returns false if there is no such app (or the DER is not a
    /// certificate).
    pub fn upload_certificate(&self, app: &str, cert_der: &[u8]) -> bool {
        let certificate = match AppCertificate::from_der(cert_der) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(app, "not uploading a certificate: {e}");
                return false;
            }
        };
        let snapshot = {
            let mut directory = self
                .state
                .directory
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let Some(registration) = directory.app_mut(app) else {
                return false;
            };
            tracing::info!(app, thumbprint = %certificate.thumbprint_sha1, "certificate uploaded");
            registration.certificates.push(certificate);
            directory.clone()
        };
        if let Err(e) = self.store.directory_file().save(&snapshot) {
            tracing::warn!("cannot save the directory after a certificate upload: {e}");
        }
        true
    }

    /// The URL of the emulator's own token issuer (`https://127.0.0.1:PORT/workload-issuer/`), a stand-in for a
    /// Kubernetes cluster's OIDC issuer: its discovery document is at `.well-known/openid-configuration` under
    /// it, its keys at `openid/v1/jwks`. The seeded `workload` app has a federated credential for it.
    pub fn workload_issuer(&self) -> String {
        workload::issuer(&self.state)
    }

    /// A Kubernetes-style service-account token signed by the emulator's issuer (RS256, `kid`, `aud` an array,
    /// the `kubernetes.io` claim), for tests. The issuer's key is created on first use.
    pub fn workload_token(&self, token: &WorkloadToken) -> Result<String, EmulatorError> {
        workload::mint(&self.state, token)
    }

    /// Writes [`Self::workload_token`] to `path` (mode 0600) in one rename, as the kubelet does.
    pub fn write_workload_token_file(&self, path: &Path, token: &WorkloadToken) -> Result<(), EmulatorError> {
        workload::write_file(&self.state, path, token)
    }

    /// Writes the seeded workload's token to `path` now, then a new one at 80 % of each token's `lifetime`, as
    /// the kubelet rotates a projected token, until the returned handle is dropped (the binary's
    /// `--workload-token-file`). Needs a Tokio runtime.
    pub fn project_workload_token(
        &self,
        path: impl Into<PathBuf>,
        lifetime: Duration,
    ) -> Result<ProjectedToken, EmulatorError> {
        workload::project(self.state.clone(), path.into(), lifetime)
    }

    /// Adds a federated identity credential to an app registration at run time ("Federated credentials > Add
    /// credential"), effective from the next request; with a state directory the directory is saved. Returns
    /// false if there is no such app.
    pub fn add_federated_credential(&self, app: &str, credential: FederatedIdentityCredential) -> bool {
        let Some(snapshot) = workload::add_credential(&self.state, app, credential) else {
            return false;
        };
        if let Err(e) = self.store.directory_file().save(&snapshot) {
            tracing::warn!("cannot save the directory after adding a federated credential: {e}");
        }
        true
    }

    /// A stable identifier of the key that signs this emulator's tokens: the `kid` of its JWK (base64url of the
    /// SHA-1 of its certificate). The same across restarts with the same state directory, different for any
    /// other emulator (a second instance, a restart without its state), so a client can keep the tokens of
    /// different emulators apart, e.g. by partitioning its token cache with it.
    pub fn signing_key_id(&self) -> &str {
        self.state.signing_key.kid()
    }

    /// Where [`Self::write_description`] puts the self-description by default (`emulator.json` in the state
    /// directory, or in the temporary directory that is removed when the emulator stops), so the secrets it
    /// holds never land in a working tree.
    pub fn default_description_path(&self) -> PathBuf {
        self.store.path(state_dir::DESCRIPTION)
    }

    /// The self-description (includes secrets, passwords and the PFX passwords of held certificates).
    pub fn description(&self) -> Description {
        describe::describe(
            &self.state.directory(),
            &self.held,
            &self.https_url,
            self.http_url.as_deref(),
            &self.ca_path,
            self.signing_key_id(),
        )
    }

    /// Writes [`Self::description`] as JSON to `path` (mode 0600, atomically replaced).
    pub fn write_description(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_string_pretty(&self.description()).map_err(std::io::Error::other)?;
        state_dir::write_atomic(path, format!("{json}\n").as_bytes(), true)
    }

    /// Requests per endpoint kind since start or the last reset.
    pub fn request_counts(&self) -> RequestCounts {
        self.state.counters.snapshot()
    }

    /// Zeroes the request counters and the [`Self::network_stats`].
    pub fn reset_request_counts(&self) {
        self.state.counters.reset();
        self.server.network().reset();
    }

    /// Changes the simulated round-trip time ([`EmulatorBuilder::simulated_rtt`]) from the next connection or
    /// answer on; zero turns the simulation off.
    pub fn set_simulated_rtt(&self, rtt: Duration) {
        self.server.network().set_rtt(rtt);
    }

    /// Connections accepted and requests answered since start or the last [`Self::reset_request_counts`].
    pub fn network_stats(&self) -> NetworkStats {
        self.server.network().stats()
    }

    /// Answer the next `fault.times` requests to `fault.endpoint` with `fault.kind` (see [`FaultKind`]).
    pub fn inject_fault(&self, fault: Fault) {
        self.state.inject_fault(fault);
    }

    /// `https://127.0.0.1:PORT/devicelogin`: the sign-in page device codes send users to.
    pub fn verification_uri(&self) -> String {
        format!("{}/devicelogin", self.https_url)
    }

    /// Every device code issued so far (expiry and auto-approval applied), in issue order.
    pub fn device_codes(&self) -> Vec<DeviceCodeInfo> {
        routes::device::list(&self.state)
    }

    /// Approves a pending device code as `username`, as if the user had signed in (MFA included) and
    /// accepted the consent page: the next poll gets tokens. Fails for an unknown or no longer pending code
    /// and for a user who cannot sign in (unknown in the code's tenant, federated, disabled, locked, expired
    /// password, blocked by Conditional Access).
    pub fn approve_device_code(&self, user_code: &str, username: &str) -> Result<(), EmulatorError> {
        routes::device::approve(&self.state, user_code, username)
            .map(drop)
            .map_err(|e| device_code_error(user_code, &e))
    }

    /// Declines a pending device code: the next poll gets `authorization_declined`.
    pub fn decline_device_code(&self, user_code: &str) -> Result<(), EmulatorError> {
        routes::device::decline(&self.state, user_code)
            .map(drop)
            .map_err(|e| device_code_error(user_code, &e))
    }

    /// Waits (without blocking the runtime) until a device code is pending and returns the newest one, or
    /// `None` after `timeout`. Handy for tests that start a client and then approve its code.
    pub async fn wait_for_device_code(&self, timeout: Duration) -> Option<DeviceCodeInfo> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.state.device_issued.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(info) = routes::device::newest_pending(&self.state) {
                return Some(info);
            }
            // Also wake up now and then: auto-approval and expiry change codes without a notification.
            let wake = (tokio::time::Instant::now() + Duration::from_millis(250)).min(deadline);
            if tokio::time::timeout_at(wake, notified).await.is_err() && wake >= deadline {
                return routes::device::newest_pending(&self.state);
            }
        }
    }

    /// Revokes every refresh token of the user (`username` or object id): their next use gets AADSTS50173.
    /// Returns how many were revoked.
    pub fn revoke_refresh_tokens(&self, username: &str) -> usize {
        let user_ids: Vec<String> = self
            .state
            .directory()
            .tenants
            .iter()
            .filter_map(|t| t.user(username).map(|u| u.id.clone()))
            .collect();
        let mut grants = self.state.grants();
        user_ids.iter().map(|id| grants.revoke_user(id)).sum()
    }

    /// Makes every refresh token issued so far count as expired through inactivity: its next use gets
    /// AADSTS700082.
    pub fn expire_refresh_tokens(&self) {
        self.state.grants().expire_all();
    }

    /// `https://127.0.0.1:PORT/{default tenant GUID}/oauth2/v2.0/authorize`: the authorization endpoint of the
    /// auth code flow, whose sign-in page the browser is sent to.
    pub fn authorize_url(&self) -> String {
        format!("{}/oauth2/v2.0/authorize", self.authority())
    }

    /// Makes every authorization code issued so far expired: redeeming it gets AADSTS70008 (codes otherwise
    /// live 10 minutes). Returns how many there were.
    pub fn expire_authorization_codes(&self) -> usize {
        self.state.auth_codes().expire_all()
    }

    /// Starts the managed-identity endpoints of Azure hosts on loopback (IMDS, App Service, Azure ML, Azure Arc,
    /// Service Fabric), minting tokens for the default tenant's managed identities with this emulator's key:
    /// Graph accepts them. [`ManagedIdentityHost::env`] gives each source's variables.
    pub async fn start_managed_identity_host(&self) -> Result<ManagedIdentityHost, EmulatorError> {
        ManagedIdentityHost::start(self.state.clone(), self.tenant_id()).await
    }

    /// Stops the listeners, letting in-flight requests finish (at most a few seconds).
    pub async fn shutdown(mut self) {
        self.server.shutdown().await;
    }
}

fn device_code_error(user_code: &str, e: &routes::device::ApproveError) -> EmulatorError {
    EmulatorError::DeviceCode {
        user_code: user_code.to_owned(),
        message: e.to_string(),
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // The server handle's own Drop signals the listeners; remove a temporary directory.
        self.store.cleanup();
    }
}
