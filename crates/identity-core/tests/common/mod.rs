//! The identity-core tests' one stand-in server: plain HTTP on 127.0.0.1 (which the library accepts for loopback)
//! for answers the emulator does not give (spoofed discovery documents, malformed or cut answers, a Graph stand-in
//! answering 401), a relay that counts (or drops) connections in front of another server, a listener that only
//! counts connections, and the loopback HTTP client the tests share.
#![allow(dead_code, reason = "each test file uses part of the support")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support stops at the first failure"
)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The most of a request head (and, separately, of a body) the stand-in reads.
const HEAD_LIMIT: usize = 64 * 1024;
const BODY_LIMIT: usize = 1024 * 1024;

/// A request the stand-in received.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Request {
    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A form field of the body.
    pub fn form(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.body.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// How the stand-in answers one request.
pub enum Reply {
    /// A complete answer (`content-type: application/json` unless a header says otherwise).
    Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Close the connection without answering (the request is read first).
    Close,
    /// Headers announcing `declared` bytes, then only `partial`, then close.
    Cut { partial: String, declared: usize },
}

impl Reply {
    pub fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply::raw(status, body.to_string())
    }

    /// A body sent as it is, labelled JSON (so any text, valid JSON or not, can be served).
    pub fn raw(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply::Answer {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Answer { headers, .. } = &mut self {
            headers.push((name.into(), value.into()));
        }
        self
    }

    fn into_bytes(self) -> Vec<u8> {
        match self {
            Reply::Answer {
                status,
                headers,
                body,
            } => {
                let mut head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n",
                    body.len()
                );
                if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
                    head.push_str("content-type: application/json; charset=utf-8\r\n");
                }
                for (k, v) in &headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                let mut bytes = head.into_bytes();
                bytes.extend_from_slice(&body);
                bytes
            }
            Reply::Close => Vec::new(),
            Reply::Cut { partial, declared } => format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {declared}\r\nconnection: close\r\n\r\n{partial}"
            )
            .into_bytes(),
        }
    }
}

type Handler = dyn Fn(&Request, usize) -> Reply + Send + Sync;

/// A running stand-in; every request is recorded. Stops when dropped.
pub struct Stub {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<Request>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Stub {
    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// Requests whose target starts with `prefix`.
    pub fn requests_to(&self, prefix: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.target.starts_with(prefix))
            .collect()
    }

    /// Requests whose path ends with `suffix`.
    pub fn requests_ending(&self, suffix: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.path().ends_with(suffix))
            .collect()
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `handler(request, how many earlier requests went to the same path)` until dropped, one request per
/// connection.
pub async fn serve(handler: impl Fn(&Request, usize) -> Reply + Send + Sync + 'static) -> Stub {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let handler: Arc<Handler> = Arc::new(handler);
    let recorded = requests.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (handler, recorded) = (handler.clone(), recorded.clone());
            tokio::spawn(async move {
                let Some(request) = read_request(&mut stream).await else {
                    return;
                };
                let earlier = {
                    let mut all = recorded.lock().unwrap();
                    let earlier = all
                        .iter()
                        .filter(|r: &&Request| r.path() == request.path())
                        .count();
                    all.push(request.clone());
                    earlier
                };
                let _ = stream.write_all(&handler(&request, earlier).into_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Stub { addr, requests, task }
}

/// A stand-in identity service for `tenant`: it answers OIDC discovery itself, with endpoints on the origin the
/// client asked for (its `Host`, as a server behind a relay or proxy answers), and `handler` answers the rest.
pub async fn serve_identity(
    tenant: &'static str,
    handler: impl Fn(&Request, usize) -> Reply + Send + Sync + 'static,
) -> Stub {
    serve(move |request, earlier| {
        if request.path().ends_with("/.well-known/openid-configuration") {
            let base = format!("http://{}", request.header("host").unwrap_or_default());
            Reply::json(200, discovery_document(&base, tenant, &base))
        } else {
            handler(request, earlier)
        }
    })
    .await
}

/// Reads one HTTP/1.1 request: the head and a `content-length` body, both bounded.
async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > HEAD_LIMIT {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, target) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length.min(BODY_LIMIT) {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Request {
        method,
        target,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// A TCP relay in front of `target` (`host:port`) that counts connections: each connection is one attempt.
pub struct Relay {
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Relays to `target`, except that the first `drop_first` connections are closed after their request is read.
pub async fn relay(target: String, drop_first: usize) -> Relay {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            if counted.fetch_add(1, Ordering::SeqCst) < drop_first {
                let _ = inbound.read(&mut [0u8; 1024]).await;
                continue;
            }
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    Relay {
        addr,
        connections,
        task,
    }
}

/// A listener that accepts and counts connections (and answers nothing): where no secret may go.
pub struct Counter {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Counter {
    pub fn count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn counting_listener() -> Counter {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    Counter {
        addr,
        connections,
        task,
    }
}

/// An HTTP client for loopback stand-ins: no proxy from the environment, no retries (each answer counts), plus
/// the emulator's CA when there is one.
pub fn loopback_http(ca_pem: Option<&str>) -> identity_core::HttpClient {
    let mut config = identity_core::HttpConfig::default();
    config.max_retries = 0;
    loopback_http_with(ca_pem, config)
}

/// [`loopback_http`] with the retry settings of `config` kept (for the tests of retries).
pub fn loopback_http_with(
    ca_pem: Option<&str>,
    mut config: identity_core::HttpConfig,
) -> identity_core::HttpClient {
    config.proxy_from_env = false;
    if let Some(pem) = ca_pem {
        config = config.with_extra_ca_pem(pem);
    }
    identity_core::HttpClient::new(config).unwrap()
}

/// A discovery document for `base`/`tenant` whose token and device endpoints are at `endpoints_base`.
pub fn discovery_document(base: &str, tenant: &str, endpoints_base: &str) -> serde_json::Value {
    serde_json::json!({
        "token_endpoint": format!("{endpoints_base}/{tenant}/oauth2/v2.0/token"),
        "device_authorization_endpoint": format!("{endpoints_base}/{tenant}/oauth2/v2.0/devicecode"),
        "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
        "issuer": format!("{base}/{tenant}/v2.0"),
    })
}
