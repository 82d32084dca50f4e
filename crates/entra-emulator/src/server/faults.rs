//! Answers of injected faults. Most are ordinary responses; the connection-level ones (reset before the
//! answer, hang) are marked with a [`ConnectionFault`] extension that the connection's service acts on, and
//! the ones that break or slow the body stream it through a [`ChannelBody`] whose error aborts the connection.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts as _, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::Frame;
use tokio::sync::mpsc;

use crate::error_responses::{AadError, GraphError};
use crate::request_context::Ctx;
use crate::state::{Endpoint, FaultKind};

/// Largest normal answer a body-altering fault reads back (the emulator's answers are a few KiB).
const MAX_ANSWER: usize = 4 * 1024 * 1024;
/// Pieces a slow drip sends the body in.
const DRIP_PIECES: usize = 100;
const HUGE_CHUNK: usize = 64 * 1024;
const HUGE_PREFIX: &str = r#"{"token_type":"Bearer","expires_in":3599,"access_token":""#;
const HUGE_SUFFIX: &str = r#""}"#;

/// What the connection does instead of writing the response it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConnectionFault {
    /// Close without writing anything.
    ResetBeforeAnswer,
    /// Write nothing until the emulator stops.
    Hang,
}

/// The answer to a request that drew the fault `kind`.
pub(crate) async fn answer(endpoint: Endpoint, kind: FaultKind, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let ctx = match Ctx::from_request_parts(&mut parts, &()).await {
        Ok(ctx) => ctx,
        Err(never) => match never {},
    };
    let req = Request::from_parts(parts, body);
    match kind {
        FaultKind::Status { status, retry_after } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut resp = if endpoint == Endpoint::Graph {
                GraphError::injected(status).into_response_with(&ctx)
            } else {
                AadError::injected(status).into_response_with(&ctx)
            };
            if let Some(secs) = retry_after {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            resp
        }
        FaultKind::Unauthorized { www_authenticate } => {
            let mut resp = if endpoint == Endpoint::Graph {
                GraphError::injected(StatusCode::UNAUTHORIZED).into_response_with(&ctx)
            } else {
                AadError::injected_unauthorized().into_response_with(&ctx)
            };
            if let Some(v) = www_authenticate.and_then(|w| HeaderValue::from_str(&w).ok()) {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            resp
        }
        FaultKind::ResetBeforeAnswer => connection_fault(ConnectionFault::ResetBeforeAnswer),
        FaultKind::Hang => connection_fault(ConnectionFault::Hang),
        FaultKind::Body {
            status,
            content_type,
            body,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let content_type = content_type
                .and_then(|c| HeaderValue::from_str(&c).ok())
                .unwrap_or(HeaderValue::from_static("application/json; charset=utf-8"));
            (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
        }
        FaultKind::Redirect { status, location } => {
            let status = StatusCode::from_u16(status)
                .ok()
                .filter(StatusCode::is_redirection)
                .unwrap_or(StatusCode::FOUND);
            let mut resp = status.into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            resp
        }
        FaultKind::Huge {
            bytes,
            declare_length,
        } => huge(bytes, declare_length),
        FaultKind::ResetMidBody => {
            let (mut parts, body) = handled(req, next).await;
            let len = body.len();
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            let half = body.slice(..len / 2);
            Response::from_parts(parts, streamed(vec![half], Duration::ZERO, true))
        }
        FaultKind::SlowDrip { duration_ms } => {
            let (mut parts, body) = handled(req, next).await;
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
            let piece = body.len().div_ceil(DRIP_PIECES).max(1);
            let pieces: Vec<Bytes> = (0..body.len())
                .step_by(piece)
                .map(|start| body.slice(start..(start + piece).min(body.len())))
                .collect();
            let pause = Duration::from_millis(duration_ms) / pieces.len().max(1) as u32;
            Response::from_parts(parts, streamed(pieces, pause, false))
        }
        FaultKind::Patch { set } => {
            let (mut parts, body) = handled(req, next).await;
            let body = match serde_json::from_slice::<serde_json::Value>(&body) {
                Ok(serde_json::Value::Object(mut object)) => {
                    object.extend(set);
                    Bytes::from(serde_json::Value::Object(object).to_string())
                }
                _ => body,
            };
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(body))
        }
        FaultKind::SpoofedDiscovery { origin } => {
            let (mut parts, body) = handled(req, next).await;
            // Every URL of the answer starts with the origin the client addressed, in a JSON string.
            let text =
                String::from_utf8_lossy(&body).replace(&format!("\"{}", ctx.base), &format!("\"{origin}"));
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(text))
        }
    }
}

fn connection_fault(fault: ConnectionFault) -> Response {
    let mut resp = StatusCode::INTERNAL_SERVER_ERROR.into_response();
    resp.extensions_mut().insert(fault);
    resp
}

/// The normal answer, read in full.
async fn handled(req: Request, next: Next) -> (axum::http::response::Parts, Bytes) {
    let (parts, body) = next.run(req).await.into_parts();
    match axum::body::to_bytes(body, MAX_ANSWER).await {
        Ok(bytes) => (parts, bytes),
        Err(e) => {
            tracing::warn!("cannot read the answer to alter it: {e}");
            let (parts, _) = StatusCode::INTERNAL_SERVER_ERROR.into_response().into_parts();
            (parts, Bytes::new())
        }
    }
}

/// A body sending `pieces` with `pause` before each, then ending, or failing (which aborts the connection)
/// when `then_fail`.
fn streamed(pieces: Vec<Bytes>, pause: Duration, then_fail: bool) -> Body {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        for piece in pieces {
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            if tx.send(Ok(piece)).await.is_err() {
                return;
            }
        }
        if then_fail {
            let _ = tx
                .send(Err(std::io::Error::other(
                    "injected fault: connection reset mid-body",
                )))
                .await;
        }
    });
    Body::new(ChannelBody(rx))
}

/// `bytes` bytes of a token answer, produced as the client reads them.
fn huge(bytes: u64, declare_length: bool) -> Response {
    static FILLER: [u8; HUGE_CHUNK] = [b'A'; HUGE_CHUNK];
    let (tx, rx) = mpsc::channel(2);
    tokio::spawn(async move {
        let framing = (HUGE_PREFIX.len() + HUGE_SUFFIX.len()) as u64;
        let mut filler = bytes.saturating_sub(framing);
        if tx
            .send(Ok(Bytes::from_static(HUGE_PREFIX.as_bytes())))
            .await
            .is_err()
        {
            return;
        }
        while filler > 0 {
            let n = filler.min(HUGE_CHUNK as u64);
            let chunk = Bytes::from_static(&FILLER).slice(..n as usize);
            if tx.send(Ok(chunk)).await.is_err() {
                return;
            }
            filler -= n;
        }
        let _ = tx.send(Ok(Bytes::from_static(HUGE_SUFFIX.as_bytes()))).await;
    });
    let mut resp = Response::new(Body::new(ChannelBody(rx)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if declare_length {
        let framing = (HUGE_PREFIX.len() + HUGE_SUFFIX.len()) as u64;
        resp.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.max(framing)));
    }
    resp
}

/// A response body fed by a channel; an `Err` item fails the body.
struct ChannelBody(mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.0.poll_recv(cx).map(|item| item.map(|r| r.map(Frame::data)))
    }
}
