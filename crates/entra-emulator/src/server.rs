//! The HTTP(S) server: router, request counting and fault injection, and the accept loops (TLS handshakes
//! run per connection, so a failing or slow client never blocks or stops the listener).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::request_context::{DefaultBase, Scheme};
use crate::routes::{
    admin, admin_consent, authorize, device, discovery, graph, login, signin, token, workload_issuer,
};
use crate::state::{AppState, Endpoint};

mod faults;
mod network;

use faults::ConnectionFault;
pub(crate) use network::Network;
pub use network::NetworkStats;

const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(60);
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The application router (without listener-specific extensions).
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(
            "/{t}/v2.0/.well-known/openid-configuration",
            get(discovery::openid_configuration_v2),
        )
        .route(
            "/{t}/.well-known/openid-configuration",
            get(discovery::openid_configuration_v1),
        )
        .route("/{t}/discovery/v2.0/keys", get(discovery::keys_v2))
        .route("/{t}/discovery/keys", get(discovery::keys_v1))
        .route("/{t}/discovery/instance", get(discovery::instance_discovery))
        .route("/{t}/userrealm/{username}", get(discovery::user_realm))
        .route(
            "/{t}/oauth2/v2.0/token",
            post(token::token).fallback(token::token_wrong_method),
        )
        .route(
            "/{t}/oauth2/v2.0/devicecode",
            post(device::devicecode).fallback(token::token_wrong_method),
        )
        .route(
            "/{t}/adminconsent",
            get(admin_consent::get_v1).post(admin_consent::post_v1),
        )
        .route(
            "/{t}/v2.0/adminconsent",
            get(admin_consent::get_v2).post(admin_consent::post_v2),
        )
        .route("/{t}/oauth2/v2.0/authorize", get(authorize::authorize))
        .route("/{t}/login", post(login::post_login))
        .route("/{t}/login/verify", post(login::post_verify))
        .route("/{t}/login/consent", post(login::post_consent))
        .route(
            "/workload-issuer/.well-known/openid-configuration",
            get(workload_issuer::openid_configuration),
        )
        .route("/workload-issuer/openid/v1/jwks", get(workload_issuer::jwks))
        .route("/devicelogin", get(signin::get).post(signin::post_code))
        .route("/devicelogin/signin", post(signin::post_sign_in))
        .route("/devicelogin/verify", post(signin::post_verify))
        .route("/devicelogin/consent", post(signin::post_consent))
        .route("/v1.0", axum::routing::any(graph::graph))
        .route("/v1.0/", axum::routing::any(graph::graph))
        .route("/v1.0/{*rest}", axum::routing::any(graph::graph))
        .route("/_emulator/health", get(admin::health))
        .route("/_emulator/requests", get(admin::requests))
        .route("/_emulator/requests/reset", post(admin::reset_requests))
        .route(
            "/_emulator/faults",
            post(admin::inject_fault).delete(admin::clear_faults),
        )
        .route("/_emulator/device-codes", get(admin::device_codes))
        .route(
            "/_emulator/device-codes/{user_code}/approve",
            post(admin::approve_device_code),
        )
        .route(
            "/_emulator/device-codes/{user_code}/decline",
            post(admin::decline_device_code),
        )
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), count_and_fault))
        .with_state(state)
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "Not Found").into_response()
}

/// Counts every request by endpoint kind and answers it with an injected fault if one is pending.
async fn count_and_fault(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if path.starts_with("/_emulator/") {
        return next.run(req).await;
    }
    let endpoint = Endpoint::classify(&path);
    state.counters.hit(endpoint);
    let method = req.method().clone();
    let response = match endpoint.and_then(|e| state.take_fault(e).map(|f| (e, f))) {
        Some((endpoint, fault)) => {
            tracing::info!(?endpoint, kind = ?fault.kind, "answering with an injected fault");
            faults::answer(endpoint, fault.kind, req, next).await
        }
        None => next.run(req).await,
    };
    tracing::debug!(%method, %path, status = response.status().as_u16(), ?endpoint, "request");
    response
}

/// Running listeners; dropping the handle (or [`ServerHandle::shutdown`]) stops them.
#[derive(Debug)]
pub(crate) struct ServerHandle {
    shutdown: Option<watch::Sender<bool>>,
    tasks: Vec<JoinHandle<()>>,
    network: Arc<Network>,
}

impl ServerHandle {
    pub fn new(network: Arc<Network>) -> (Self, watch::Receiver<bool>) {
        let (tx, rx) = watch::channel(false);
        (
            Self {
                shutdown: Some(tx),
                tasks: Vec::new(),
                network,
            },
            rx,
        )
    }

    /// The listeners' simulated network and its counters.
    pub fn network(&self) -> &Network {
        &self.network
    }

    pub fn add(&mut self, task: JoinHandle<()>) {
        self.tasks.push(task);
    }

    /// Stops accepting, lets in-flight requests finish (bounded) and waits for the listeners.
    pub async fn shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
    }
}

/// Serves `router` on `listener`, with TLS when `tls` is given.
pub(crate) fn spawn_listener(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    scheme: Scheme,
    default_base: String,
    network: Arc<Network>,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let router = router
        .layer(Extension(scheme))
        .layer(Extension(DefaultBase(default_base)));
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break;
                    }
                }
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        let router = router.clone();
                        let tls = tls.clone();
                        let shutdown = shutdown.clone();
                        let network = network.clone();
                        connections.spawn(async move {
                            // In the connection's own task, so a simulated handshake never delays the others.
                            network.connection_opened().await;
                            match tls {
                                Some(acceptor) => {
                                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                        Ok(Ok(stream)) => serve_connection(stream, router, network, shutdown).await,
                                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                                    }
                                }
                                None => serve_connection(stream, router, network, shutdown).await,
                            }
                        });
                    }
                    Err(e) => {
                        // E.g. too many open files: back off briefly instead of spinning.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                // Reap finished connection tasks so the set does not grow without bound.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(listener);
        let drain = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
            connections.abort_all();
        }
    })
}

async fn serve_connection<I>(
    io: I,
    router: Router,
    network: Arc<Network>,
    mut shutdown: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let stop = shutdown.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let router = router.clone();
        let network = network.clone();
        let mut stop = stop.clone();
        async move {
            let control = req.uri().path().starts_with("/_emulator/");
            let Ok(resp) = router.oneshot(req).await;
            network.answering(control).await;
            // An error from the service makes hyper drop the connection without answering.
            match resp.extensions().get::<ConnectionFault>() {
                None => Ok(resp),
                Some(ConnectionFault::ResetBeforeAnswer) => Err(std::io::Error::other(
                    "injected fault: connection reset before the answer",
                )),
                Some(ConnectionFault::Hang) => {
                    stop_requested(&mut stop).await;
                    Err(std::io::Error::other("injected fault: hung until shutdown"))
                }
            }
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!("connection error: {e}");
            }
        }
        _ = stop_requested(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Resolves when shutdown is requested (or the emulator handle is gone).
async fn stop_requested(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Binds a TCP listener.
pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
