//! Daemon with a certificate: the Rust version of the Microsoft identity platform's Python daemon quickstart,
//! certificate flavour, which Microsoft recommends over secrets for production.
//!
//! An app (no user) gets a token with the client credentials grant, proving its identity with a JWT signed by its
//! certificate's private key, then calls Microsoft Graph. Configure it with environment variables or a `.env`
//! file (see `--help` and docs/daemon-certificate.md); with nothing configured it runs against the embedded
//! emulator. `cargo run -p daemon-certificate --bin create-certificate` makes a development certificate.

use clap::Parser;
use identity_core::{ConfidentialClient, GraphClient};
use sample_kit::{CertificateArgs, CommonArgs, Defaults};

const DEFAULTS: Defaults = Defaults {
    scope: "https://graph.microsoft.com/.default",
    graph_endpoint: "https://graph.microsoft.com/v1.0/users",
    docs: "docs/daemon-certificate.md",
};

/// Gets an app-only token with a certificate and calls Microsoft Graph.
///
/// Defaults: SCOPE=https://graph.microsoft.com/.default, GRAPH_ENDPOINT=https://graph.microsoft.com/v1.0/users.
/// Settings come from flags, the environment, or a .env file in the working directory. With none of them set,
/// the sample starts a local emulator of the identity platform and Graph, and runs against it.
///
/// Exit codes: 0 success, 2 configuration, 3 identity platform error, 4 Graph error, 5 network, 1 other.
// This doc comment is the `--help` text, written for a terminal rather than for rustdoc's Markdown.
#[allow(rustdoc::bare_urls)]
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    certificate: CertificateArgs,
}

// One thing at a time: a single-threaded runtime starts faster and uses less memory.
#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    sample_kit::main(run()).await
}

async fn run() -> anyhow::Result<()> {
    let args: Args = sample_kit::parse()?;
    let config = args.common.configure(args.certificate, &DEFAULTS).await?;

    // The certificate signs a short-lived client assertion; the same assertion is reused for ten minutes.
    let app = ConfidentialClient::builder(config.client_id, config.authority)
        .credential(config.credential)
        .http_client(config.http)
        .cache(config.cache)
        .build()?;

    // Looks in the cache first, then asks the identity provider.
    let token = app.acquire_token_for_client(&config.scopes).await?;
    sample_kit::say_token_source(&token);

    // Call Microsoft Graph with the token. If Graph refuses a cached token (revoked, or a claims challenge), one
    // new token is fetched and the call is tried once more.
    let graph = GraphClient::new(app.http_client().clone());
    let result = graph
        .get_with_token_recovery(&config.graph_endpoint, &token, |options| {
            app.acquire_token_for_client_with(&config.scopes, options)
        })
        .await;
    // The token cache is written while Graph answers: wait for it before exiting, whatever Graph said (a Graph
    // error is reported first; a failed cache write after a successful call).
    let flushed = app.flush().await;
    sample_kit::print_graph_result(result, flushed)
}
