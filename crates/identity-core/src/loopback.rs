//! The loopback listener of the interactive flow (RFC 8252 §7.3): where the browser delivers the authorization
//! response.
//!
//! It binds 127.0.0.1 on a port the OS picks; the redirect URI names `localhost` because Entra accepts `http`
//! only for `localhost` registrations (and ignores their port). The answer comes as a form POST
//! (`response_mode=form_post`, as MSAL 1.39 asks for): a code in a GET's query is refused, because anything on
//! this machine (a page's image tag included) can make the browser GET a loopback URL, while the form POST comes
//! from the sign-in page. Until an answer carrying the expected `state` arrives, every other request gets an error
//! page and the listener keeps waiting, so a forged answer cannot end the sign-in. Requests are bounded (header
//! and body size, time per connection) and served concurrently, so a connection that stays silent does not
//! block the real answer. Dropping the future returned by [`Loopback::wait`] closes the socket and every
//! connection.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::error::ServiceError;
use crate::secret::SecretToken;

/// The largest request head (request line and headers) read; browsers send about 1 KiB.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// The largest form body read. Entra's authorization codes are under 2 KiB; an error's description well under.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// How long one connection may take to send its request. Browsers open spare connections that never send
/// anything; they are closed after this.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// The most input read and discarded after refusing a request, so the refusal is not lost to a reset.
const MAX_DRAIN_BYTES: usize = 1 << 20;

/// Connections served at once; more are closed as they arrive (only a local program could open that many).
const MAX_CONNECTIONS: usize = 64;

/// The outcome of a sign-in, as delivered to the redirect URI with the expected `state`.
#[derive(Debug)]
pub(crate) enum Answer {
    /// The authorization code, to redeem with the PKCE verifier.
    Code(SecretToken),
    /// The error the service sent (`error`, `error_description`, `error_uri`), e.g. `access_denied`.
    Error(Box<ServiceError>),
}

/// A bound listener, not yet serving.
#[derive(Debug)]
pub(crate) struct Loopback {
    listener: TcpListener,
    port: u16,
}

impl Loopback {
    /// Binds 127.0.0.1 on an ephemeral port.
    pub(crate) async fn bind() -> std::io::Result<Loopback> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let port = listener.local_addr()?.port();
        Ok(Loopback { listener, port })
    }

    /// `http://localhost:<port>`, the redirect URI to send.
    pub(crate) fn redirect_uri(&self) -> String {
        format!("http://localhost:{}", self.port)
    }

    /// Serves until an answer with `state` arrives, and returns it (after its page has been sent). Never ends
    /// otherwise: the caller bounds the wait.
    pub(crate) async fn wait(self, state: &str) -> Answer {
        let mut connections: JoinSet<Option<Answer>> = JoinSet::new();
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) if connections.len() < MAX_CONNECTIONS => {
                        let (state, port) = (state.to_string(), self.port);
                        connections.spawn(async move {
                            tokio::time::timeout(CONNECTION_TIMEOUT, serve(stream, port, &state))
                                .await
                                .ok()
                                .flatten()
                        });
                    }
                    Ok(_) => tracing::debug!("too many connections to the sign-in listener; closing a new one"),
                    Err(e) => {
                        // Out of file descriptors, most likely: let a connection finish before accepting again.
                        tracing::warn!(error = %e, "the sign-in listener could not accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(done) = connections.join_next() => {
                    if let Ok(Some(answer)) = done {
                        return answer;
                    }
                }
            }
        }
    }
}

/// A parsed request head.
struct Head {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Serves one request; `Some` when it carried the answer.
async fn serve(mut stream: TcpStream, port: u16, state: &str) -> Option<Answer> {
    let (response, answer, unread) = match read_request(&mut stream).await {
        Ok((head, body)) => {
            let (response, answer) = respond(&head, &body, port, state);
            (response, answer, false)
        }
        Err(Refusal::Closed) => return None,
        Err(Refusal::Status(status, reason)) => (page(status, "Bad request", reason, None), None, true),
    };
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.flush().await;
    let _ = stream.shutdown().await;
    if unread {
        // Closing with unread input makes the kernel reset the connection, and the peer may lose the page:
        // read (a bounded amount of) what is left first.
        let mut sink = [0u8; 8192];
        let mut drained = 0usize;
        while drained < MAX_DRAIN_BYTES {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    }
    answer
}

enum Refusal {
    /// The peer closed the connection or sent nothing usable; nothing to answer.
    Closed,
    /// Answer with this status and text.
    Status(u16, &'static str),
}

/// Reads the head (bounded) and, when it announces one, the body (bounded).
async fn read_request(stream: &mut TcpStream) -> Result<(Head, Vec<u8>), Refusal> {
    let mut buf = Vec::with_capacity(2048);
    let head_end = loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            break end;
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err(Refusal::Status(431, "The request headers are too large."));
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.map_err(|_| Refusal::Closed)?;
        if n == 0 {
            return Err(Refusal::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    if head_end > MAX_HEAD_BYTES {
        return Err(Refusal::Status(431, "The request headers are too large."));
    }
    let head = parse_head(&buf[..head_end]).ok_or(Refusal::Status(400, "The request does not parse."))?;
    if head.header("transfer-encoding").is_some() {
        return Err(Refusal::Status(411, "Send the form with a Content-Length."));
    }
    let length = match head.header("content-length") {
        None => 0,
        Some(v) => v
            .trim()
            .parse::<usize>()
            .map_err(|_| Refusal::Status(400, "The Content-Length does not parse."))?,
    };
    if length > MAX_BODY_BYTES {
        return Err(Refusal::Status(413, "The request body is too large."));
    }
    let mut body = buf.split_off(head_end + 4);
    if body.len() > length {
        body.truncate(length);
    }
    while body.len() < length {
        let mut chunk = vec![0u8; (length - body.len()).min(8192)];
        let n = stream.read(&mut chunk).await.map_err(|_| Refusal::Closed)?;
        if n == 0 {
            return Err(Refusal::Closed);
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok((head, body))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_head(bytes: &[u8]) -> Option<Head> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut lines = text.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let (method, target, version) = (request_line.next()?, request_line.next()?, request_line.next()?);
    if request_line.next().is_some() || !version.starts_with("HTTP/1.") {
        return None;
    }
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    Some(Head {
        method: method.to_string(),
        target: target.to_string(),
        headers,
    })
}

/// The response to a complete request, and the answer when it is the one awaited.
fn respond(head: &Head, body: &[u8], port: u16, state: &str) -> (String, Option<Answer>) {
    // A page on another site can make the browser reach this port under a host name it controls (DNS
    // rebinding); the browser then sends that name.
    let host_ok = head.header("host").is_some_and(|host| {
        let host = host.to_ascii_lowercase();
        host == format!("localhost:{port}") || host == format!("127.0.0.1:{port}")
    });
    if !host_ok {
        return (page(400, "Bad request", "Unexpected Host header.", None), None);
    }
    let (path, query) = head.target.split_once('?').unwrap_or((&head.target, ""));
    if path != "/" {
        return (page(404, "Not found", "Nothing here.", None), None);
    }
    match head.method.as_str() {
        "POST" => {}
        "GET" if !query.is_empty() => {
            let has_answer = url::form_urlencoded::parse(query.as_bytes())
                .any(|(k, _)| matches!(k.as_ref(), "code" | "error" | "state"));
            if has_answer {
                tracing::warn!(
                    "refused a sign-in answer delivered in a GET's query: this client asks for form_post and accepts only that"
                );
                return (
                    page(
                        400,
                        "Sign-in answer refused",
                        "This application accepts the sign-in answer only as a form POST from the sign-in page, \
                         not in the address. Return to the application.",
                        None,
                    ),
                    None,
                );
            }
            return (page(404, "Not found", "Nothing here.", None), None);
        }
        "GET" => {
            return (
                page(
                    404,
                    "Waiting for the sign-in",
                    "This is where the sign-in page answers. Finish signing in in the other tab.",
                    None,
                ),
                None,
            );
        }
        _ => {
            return (
                page(405, "Method not allowed", "Only POST is accepted.", None),
                None,
            );
        }
    }
    let form_type = head.header("content-type").is_some_and(|t| {
        t.split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
    });
    if !form_type {
        return (
            page(
                415,
                "Bad request",
                "Expected a form (application/x-www-form-urlencoded).",
                None,
            ),
            None,
        );
    }
    let mut fields: Vec<(String, String)> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if fields.iter().any(|(seen, _)| *seen == k) {
            return (page(400, "Bad request", "A field appears twice.", None), None);
        }
        fields.push((k.into_owned(), v.into_owned()));
    }
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let state_ok = field("state").is_some_and(|s| constant_time_eq(s.as_bytes(), state.as_bytes()));
    if !state_ok {
        tracing::warn!(
            "refused a sign-in answer whose state is not this sign-in's; still waiting for the real one"
        );
        return (
            page(
                400,
                "Sign-in answer refused",
                "State mismatch: this answer is not for the sign-in in progress. Waiting for the next answer.",
                None,
            ),
            None,
        );
    }
    if let Some(error) = field("error") {
        let description = field("error_description");
        let e = error_from_fields(error, description, field("error_uri"));
        let details = format!("{}: {}", e.error, e.error_description.as_deref().unwrap_or(""));
        let response = page(
            200,
            "Sign-in failed",
            "The sign-in did not complete. Return to the application for what to do next.",
            Some(&details),
        );
        return (response, Some(Answer::Error(Box::new(e))));
    }
    match field("code") {
        Some(code) => (
            page(
                200,
                "Signed in",
                "Authentication complete. You can close this window and return to the application.",
                None,
            ),
            Some(Answer::Code(SecretToken::new(code))),
        ),
        None => (
            page(
                400,
                "Bad request",
                "The answer has neither a code nor an error.",
                None,
            ),
            None,
        ),
    }
}

/// A [`ServiceError`] from the fields of an error delivered to the redirect URI; the trace and correlation ids
/// are read from the description's trailer lines, as the token endpoint's JSON would carry them.
fn error_from_fields(error: String, description: Option<String>, error_uri: Option<String>) -> ServiceError {
    let trailer = |label: &str| -> Option<String> {
        description.as_deref()?.lines().find_map(|line| {
            line.trim()
                .strip_prefix(label)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        })
    };
    ServiceError {
        trace_id: trailer("Trace ID:"),
        correlation_id: trailer("Correlation ID:"),
        timestamp: trailer("Timestamp:"),
        error,
        error_description: description,
        error_uri,
        ..ServiceError::default()
    }
}

/// Compares without an early exit, so the time taken does not say how much of a guessed `state` was right.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A complete HTTP response with a small HTML page; every text is escaped.
fn page(status: u16, title: &str, message: &str, details: Option<&str>) -> String {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    };
    let details = details
        .map(|d| format!("<pre id=\"details\">{}</pre>\n", escape(d)))
        .unwrap_or_default();
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em}}\
         pre{{white-space:pre-wrap}}</style></head>\n<body><main>\n<h1 id=\"title\">{title}</h1>\n\
         <p id=\"message\">{message}</p>\n{details}\
         <p><small>Do not share the contents of this page or its address with anyone.</small></p>\n\
         </main></body></html>\n",
        title = escape(title),
        message = escape(message),
    );
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nContent-Security-Policy: default-src 'none'; style-src 'unsafe-inline'\r\n\
         Referrer-Policy: no-referrer\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_what_they_quote() {
        let p = page(
            200,
            "Sign-in failed",
            "m",
            Some("access_denied: <script>alert('x')</script> & \""),
        );
        assert!(
            p.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;"),
            "{p}"
        );
        assert!(!p.contains("<script>"));
    }

    #[test]
    fn errors_keep_their_trailer_ids() {
        let e = error_from_fields(
            "access_denied".into(),
            Some("AADSTS65004: User declined to consent.\r\nTrace ID: t-1\r\nCorrelation ID: c-1\r\nTimestamp: 2026-01-01 00:00:00Z".into()),
            Some("https://login.microsoftonline.com/error?code=65004".into()),
        );
        assert_eq!(e.code(), Some(65004));
        assert_eq!(e.trace_id.as_deref(), Some("t-1"));
        assert_eq!(e.correlation_id.as_deref(), Some("c-1"));
        assert_eq!(e.timestamp.as_deref(), Some("2026-01-01 00:00:00Z"));
        assert_eq!(e.summary(), "AADSTS65004: User declined to consent.");
    }

    #[test]
    fn heads_parse_strictly() {
        let h = parse_head(b"POST /?x=1 HTTP/1.1\r\nHost: localhost:1\r\nContent-Length: 3").unwrap();
        assert_eq!((h.method.as_str(), h.target.as_str()), ("POST", "/?x=1"));
        assert_eq!(h.header("content-length"), Some("3"));
        assert!(parse_head(b"POST / HTTP/2\r\n").is_none());
        assert!(parse_head(b"POST / HTTP/1.1\r\nno colon").is_none());
    }
}
