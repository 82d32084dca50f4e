//! The daemon-secret sample written on azure_identity 1.x (the official Azure SDK for Rust), for the benchmark's
//! comparison row: a client-secret credential gets an app-only token for Microsoft Graph, then `GET /v1.0/users`.
//!
//! Settings (the same variables the Rust sample reads): `AUTHORITY` (`https://host[:port]/<tenant>`),
//! `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`, `GRAPH_ENDPOINT`, `SCOPE` (default Graph's `.default`) and
//! `IDENTITY_EXTRA_CA_CERTS` (PEM file of CA certificates to trust, e.g. the emulator's; nothing else is trusted).
//!
//! `azure-identity-twin --cache-hit-loop N`: gets a token once, then times N more `get_token` calls (the
//! credential's in-memory cache) and prints `cache hit: <ns> ns per call`.

use std::sync::Arc;
use std::time::Instant;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::TokenCredential as _;
use azure_core::http::{ClientOptions, Transport};
use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn setting(name: &str) -> Result<String, Error> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}

/// A reqwest client (rustls with ring) trusting only the CA certificates in `IDENTITY_EXTRA_CA_CERTS`.
fn http_client() -> Result<reqwest::Client, Error> {
    let ca_file = setting("IDENTITY_EXTRA_CA_CERTS")?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&ca_file).map_err(|e| format!("{ca_file}: {e}"))? {
        roots.add(cert.map_err(|e| format!("{ca_file}: {e}"))?)?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(reqwest::Client::builder().tls_backend_preconfigured(tls).build()?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let authority = setting("AUTHORITY")?;
    let (host, tenant) = authority
        .trim_end_matches('/')
        .rsplit_once('/')
        .ok_or("AUTHORITY must look like https://host/<tenant>")?;
    let scope = std::env::var("SCOPE").unwrap_or_else(|_| "https://graph.microsoft.com/.default".into());
    let http = http_client()?;

    let mut cloud = CustomConfiguration::default();
    cloud.authority_host = host.to_owned();
    let options = ClientSecretCredentialOptions {
        client_options: ClientOptions {
            transport: Some(Transport::new(Arc::new(http.clone()))),
            cloud: Some(Arc::new(CloudConfiguration::from(cloud))),
            ..Default::default()
        },
    };
    let credential = ClientSecretCredential::new(
        tenant,
        setting("AZURE_CLIENT_ID")?,
        setting("AZURE_CLIENT_SECRET")?.into(),
        Some(options),
    )?;
    let token = credential.get_token(&[&scope], None).await?;

    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("--cache-hit-loop") {
        let n: u32 = args.next().ok_or("--cache-hit-loop N")?.parse()?;
        let start = Instant::now();
        for _ in 0..n {
            std::hint::black_box(credential.get_token(&[&scope], None).await?);
        }
        let per_call = start.elapsed().as_nanos() / u128::from(n.max(1));
        println!("cache hit: {per_call} ns per call");
        return Ok(());
    }

    let answer = http
        .get(setting("GRAPH_ENDPOINT")?)
        .bearer_auth(token.token.secret())
        .send()
        .await?;
    let status = answer.status();
    let body: serde_json::Value = serde_json::from_slice(&answer.bytes().await?)?;
    if !status.is_success() {
        return Err(format!("Graph answered {status}: {body}").into());
    }
    println!("Graph API call result: ");
    println!("{}", serde_json::to_string_pretty(&body)?);
    Ok(())
}
