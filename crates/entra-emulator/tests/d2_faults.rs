//! Every fault kind is produced as specified, seen by a raw TCP client (connection-level faults) or by an
//! HTTPS client (answers), and faults are injected and cleared over the admin API in both JSON shapes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::{GRAPH_DEFAULT, client, creds, token, token_url};
use entra_emulator::{Emulator, Endpoint, Fault, FaultKind};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// An emulator that also listens for plain HTTP, so raw TCP clients can watch the connection.
async fn start() -> Emulator {
    Emulator::builder()
        .http_bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))
        .start()
        .await
        .expect("emulator starts")
}

fn discovery_path(emu: &Emulator) -> String {
    format!("/{}/v2.0/.well-known/openid-configuration", emu.tenant_id())
}

fn discovery_url(emu: &Emulator) -> String {
    format!("{}/v2.0/.well-known/openid-configuration", emu.authority())
}

/// Opens a plain-HTTP connection and sends `GET path`.
async fn raw_get(emu: &Emulator, path: &str) -> tokio::net::TcpStream {
    let http = emu.http_url().expect("http listener");
    let host = http.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&host).await.expect("connects");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("sends");
    stream
}

/// Everything the server sends until it closes the connection (a reset ends the read too).
async fn read_until_closed(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return received,
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    }
}

/// `(head, body)` of a raw HTTP/1.1 answer.
fn split_answer(raw: &[u8]) -> (String, Vec<u8>) {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    (
        String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase(),
        raw[end + 4..].to_vec(),
    )
}

fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .expect("content-length")
        .trim()
        .parse()
        .expect("a number")
}

async fn admin_faults(emu: &Emulator, http: &reqwest::Client, body: Value) -> reqwest::Response {
    http.post(format!("{}/_emulator/faults", emu.https_url()))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn both_json_shapes_inject_invalid_faults_are_refused_and_delete_clears() {
    let emu = start().await;
    let http = client(&emu);
    let legacy = admin_faults(
        &emu,
        &http,
        json!({"endpoint": "token", "status": 503, "retry_after": 2, "times": 3}),
    )
    .await;
    assert_eq!(legacy.status(), 204);
    let tagged = admin_faults(
        &emu,
        &http,
        json!({"endpoint": "graph", "kind": {"type": "reset_mid_body"}}),
    )
    .await;
    assert_eq!(tagged.status(), 204);

    for (bad, why) in [
        (
            json!({"endpoint": "token", "status": 503, "kind": {"type": "hang"}}),
            "both",
        ),
        (json!({"endpoint": "token"}), "a kind"),
        (json!({"endpoint": "token", "status": 1000}), "status"),
        (
            json!({"endpoint": "token", "kind": {"type": "redirect", "status": 200, "location": "/x"}}),
            "status",
        ),
        (
            json!({"endpoint": "open_id_configuration", "kind": {"type": "spoofed_discovery", "origin": "https://evil.example/path"}}),
            "origin",
        ),
        (
            json!({"endpoint": "token", "kind": {"type": "explode"}}),
            "explode",
        ),
        (
            json!({"endpoint": "token", "kind": {"type": "status", "status": 503, "retry-after": 2}}),
            "retry-after",
        ),
    ] {
        let resp = admin_faults(&emu, &http, bad.clone()).await;
        assert!(resp.status().is_client_error(), "{bad} was accepted");
        let text = resp.text().await.unwrap();
        assert!(text.contains(why), "{bad}: {text}");
    }

    let cleared: Value = http
        .delete(format!("{}/_emulator/faults", emu.https_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cleared, json!({"cleared": 2}));
    assert_eq!(http.get(discovery_url(&emu)).send().await.unwrap().status(), 200);
    token(&emu, &http, "daemon").await;

    // The Rust value serialises to the tagged shape and reads back the same.
    let fault = Fault::status(Endpoint::Token, 429, Some(1)).times(4);
    let value = serde_json::to_value(&fault).unwrap();
    assert_eq!(
        value,
        json!({"endpoint": "token", "kind": {"type": "status", "status": 429, "retry_after": 1}, "times": 4})
    );
    assert_eq!(serde_json::from_value::<Fault>(value).unwrap(), fault);
}

#[tokio::test]
async fn reset_before_answer_closes_the_connection_without_a_byte() {
    let emu = start().await;
    emu.inject_fault(Fault::new(
        Endpoint::OpenIdConfiguration,
        FaultKind::ResetBeforeAnswer,
    ));
    let mut stream = raw_get(&emu, &discovery_path(&emu)).await;
    let received = read_until_closed(&mut stream).await;
    assert!(received.is_empty(), "{}", String::from_utf8_lossy(&received));

    // Used once: the next request is answered normally, and both were counted.
    let mut stream = raw_get(&emu, &discovery_path(&emu)).await;
    let received = read_until_closed(&mut stream).await;
    assert!(received.starts_with(b"HTTP/1.1 200"));
    assert_eq!(emu.request_counts().get(Endpoint::OpenIdConfiguration), 2);
}

#[tokio::test]
async fn reset_mid_body_sends_the_head_and_half_the_body_then_closes() {
    let emu = start().await;
    emu.inject_fault(Fault::new(Endpoint::OpenIdConfiguration, FaultKind::ResetMidBody));
    let mut stream = raw_get(&emu, &discovery_path(&emu)).await;
    let received = read_until_closed(&mut stream).await;
    let (head, body) = split_answer(&received);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let declared = content_length(&head);
    assert!(declared > 100);
    assert_eq!(body.len(), declared / 2, "half of the real answer");
    assert!(body.starts_with(b"{\"token_endpoint\""));

    // Over HTTPS the client sees the body fail, on the token POST too.
    let http = client(&emu);
    emu.inject_fault(Fault::new(Endpoint::Token, FaultKind::ResetMidBody));
    let (id, secret) = creds(&emu, "daemon");
    let resp = http
        .post(token_url(&emu))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("scope", GRAPH_DEFAULT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.bytes().await.is_err(), "the body must fail");
}

#[tokio::test]
async fn hang_answers_nothing_until_the_emulator_stops() {
    let emu = start().await;
    emu.inject_fault(Fault::new(Endpoint::OpenIdConfiguration, FaultKind::Hang).times(2));

    // The client's own timeout is what ends its wait.
    let http = client(&emu);
    let err = http
        .get(discovery_url(&emu))
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");

    let mut stream = raw_get(&emu, &discovery_path(&emu)).await;
    let mut byte = [0u8; 1];
    assert!(
        tokio::time::timeout(Duration::from_millis(300), stream.read(&mut byte))
            .await
            .is_err(),
        "nothing is sent"
    );
    emu.shutdown().await;
    let received = read_until_closed(&mut stream).await;
    assert!(received.is_empty(), "closed without an answer at shutdown");
}

#[tokio::test]
async fn slow_drip_sends_the_real_answer_in_pieces() {
    let emu = start().await;
    emu.inject_fault(Fault::new(
        Endpoint::OpenIdConfiguration,
        FaultKind::SlowDrip { duration_ms: 500 },
    ));
    let mut stream = raw_get(&emu, &discovery_path(&emu)).await;
    let received = read_until_closed(&mut stream).await;
    let (head, body) = split_answer(&received);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(body.len(), content_length(&head));
    let doc: Value = serde_json::from_slice(&body).expect("the whole document");
    assert!(doc["token_endpoint"].is_string());

    // Longer than the client's timeout: the client gives up.
    emu.inject_fault(Fault::new(
        Endpoint::OpenIdConfiguration,
        FaultKind::SlowDrip { duration_ms: 5_000 },
    ));
    let err = client(&emu)
        .get(discovery_url(&emu))
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
}

#[tokio::test]
async fn body_answers_exactly_what_was_given() {
    let emu = start().await;
    let http = client(&emu);
    let cases = [
        (
            200,
            Some("text/html"),
            "<html><body>Sign in to the proxy</body></html>",
        ),
        (200, None, ""),
        (200, None, r#"{"token_endpoint":"https://lo"#),
        (502, Some("text/plain"), "Bad Gateway"),
    ];
    for (status, content_type, body) in cases {
        emu.inject_fault(Fault::new(
            Endpoint::OpenIdConfiguration,
            FaultKind::Body {
                status,
                content_type: content_type.map(str::to_owned),
                body: body.to_owned(),
            },
        ));
        let resp = http.get(discovery_url(&emu)).send().await.unwrap();
        assert_eq!(resp.status(), status);
        assert_eq!(
            resp.headers()["content-type"],
            content_type.unwrap_or("application/json; charset=utf-8")
        );
        assert_eq!(resp.text().await.unwrap(), body);
    }

    // An error sent with status 200 by the device code endpoint.
    let error = r#"{"error":"invalid_client","error_description":"AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.","error_codes":[7000218]}"#;
    emu.inject_fault(Fault::new(
        Endpoint::DeviceCode,
        FaultKind::Body {
            status: 200,
            content_type: None,
            body: error.to_owned(),
        },
    ));
    let resp = http
        .post(format!("{}/oauth2/v2.0/devicecode", emu.authority()))
        .form(&[("client_id", "x"), ("scope", "User.Read")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), error);
}

#[tokio::test]
async fn patch_sets_members_of_the_real_answer() {
    let emu = start().await;
    let http = client(&emu);
    let (id, secret) = creds(&emu, "daemon");
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", secret.as_str()),
        ("scope", GRAPH_DEFAULT),
    ];
    let absurd = [
        json!({"expires_in": 1e30, "refresh_in": 1e30}),
        json!({"expires_in": u64::MAX, "ext_expires_in": u64::MAX}),
        json!({"expires_in": "1e30", "refresh_in": "18446744073709551615"}),
    ];
    for set in absurd {
        emu.inject_fault(Fault::new(
            Endpoint::Token,
            FaultKind::Patch {
                set: set.as_object().unwrap().clone(),
            },
        ));
        let resp = http.post(token_url(&emu)).form(&form).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        for (k, v) in set.as_object().unwrap() {
            assert_eq!(&body[k], v, "{k}");
        }
        assert_eq!(body["token_type"], "Bearer");
        let token = body["access_token"].as_str().unwrap();
        // The token itself is the real one: Graph accepts it.
        let users = http
            .get(format!("{}/users", emu.graph_base()))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(users.status(), 200);
    }

    // Error answers are JSON objects too: patched, status kept.
    emu.inject_fault(Fault::new(
        Endpoint::Token,
        FaultKind::Patch {
            set: json!({"error_codes": "not a list"}).as_object().unwrap().clone(),
        },
    ));
    let resp = http
        .post(token_url(&emu))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error_codes"], "not a list");
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn huge_streams_fifty_mebibytes_of_a_valid_token_answer() {
    let emu = start().await;
    let http = client(&emu);
    // The default size, over the admin API.
    let injected = admin_faults(
        &emu,
        &http,
        json!({"endpoint": "token", "kind": {"type": "huge"}}),
    )
    .await;
    assert_eq!(injected.status(), 204);
    let mut resp = http.post(token_url(&emu)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.content_length().is_none(), "chunked");
    let (mut total, mut tail) = (0u64, Vec::new());
    while let Some(chunk) = resp.chunk().await.unwrap() {
        total += chunk.len() as u64;
        tail.extend_from_slice(&chunk);
        if tail.len() > 64 {
            tail.drain(..tail.len() - 64);
        }
    }
    assert_eq!(total, 50 * 1024 * 1024);
    assert!(tail.ends_with(b"AAAA\"}"));

    // With Content-Length: the size is declared up front; a small one parses as a token answer.
    emu.inject_fault(Fault::new(
        Endpoint::Token,
        FaultKind::Huge {
            bytes: 1000,
            declare_length: true,
        },
    ));
    let resp = http.post(token_url(&emu)).send().await.unwrap();
    assert_eq!(resp.content_length(), Some(1000));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    let filler = body["access_token"].as_str().unwrap();
    assert!(filler.len() > 900 && filler.bytes().all(|b| b == b'A'));
}

#[tokio::test]
async fn redirect_answers_with_the_location() {
    let emu = start().await;
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(emu.ca_pem().as_bytes()).unwrap())
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (status, location) in [
        (302, "https://login.evil.example/common/oauth2/v2.0/token"),
        (307, "/other"),
    ] {
        emu.inject_fault(Fault::new(
            Endpoint::Token,
            FaultKind::Redirect {
                status,
                location: location.to_owned(),
            },
        ));
        let resp = http.post(token_url(&emu)).send().await.unwrap();
        assert_eq!(resp.status(), status);
        assert_eq!(resp.headers()["location"], location);
    }
}

#[tokio::test]
async fn spoofed_discovery_points_every_endpoint_elsewhere() {
    let emu = start().await;
    let http = client(&emu);
    let origin = "https://127.0.0.1:9";
    emu.inject_fault(Fault::new(
        Endpoint::OpenIdConfiguration,
        FaultKind::SpoofedDiscovery {
            origin: origin.to_owned(),
        },
    ));
    let resp = http.get(discovery_url(&emu)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(!text.contains(&emu.https_url()), "{text}");
    let doc: Value = serde_json::from_str(&text).unwrap();
    for member in [
        "token_endpoint",
        "device_authorization_endpoint",
        "authorization_endpoint",
        "jwks_uri",
        "issuer",
    ] {
        let url = doc[member].as_str().unwrap();
        assert!(url.starts_with(&format!("{origin}/")), "{member}: {url}");
    }

    // The next document is the real one again.
    let doc: Value = http
        .get(discovery_url(&emu))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc["token_endpoint"]
            .as_str()
            .unwrap()
            .starts_with(&emu.https_url())
    );
}

#[tokio::test]
async fn unauthorized_answers_graph_401_with_an_optional_challenge() {
    let emu = start().await;
    let http = client(&emu);
    let tok = token(&emu, &http, "daemon").await;
    let challenge = r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnt9fQ==""#;
    for www_authenticate in [Some(challenge), None] {
        emu.inject_fault(Fault::new(
            Endpoint::Graph,
            FaultKind::Unauthorized {
                www_authenticate: www_authenticate.map(str::to_owned),
            },
        ));
        let resp = http
            .get(format!("{}/users", emu.graph_base()))
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
        assert_eq!(
            resp.headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap()),
            www_authenticate
        );
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    }
}
