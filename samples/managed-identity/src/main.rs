//! Daemon without a secret: a token for the managed identity Azure assigns to the host it runs on (VM, App
//! Service, Functions, Azure Arc, Service Fabric, Azure Machine Learning), then a Microsoft Graph call.
//!
//! The host's endpoint is detected from the variables the platform sets; see `--help` and
//! docs/managed-identity.md. With nothing configured it runs against the embedded emulator playing IMDS.

use clap::Parser;
use identity_core::{GraphClient, ManagedIdentityClient};
use sample_kit::{Defaults, ManagedIdentityArgs};

const DEFAULTS: Defaults = Defaults {
    scope: "https://graph.microsoft.com/.default",
    graph_endpoint: "https://graph.microsoft.com/v1.0/users",
    docs: "docs/managed-identity.md",
};

/// Gets a token for this Azure host's managed identity and calls Microsoft Graph.
///
/// Defaults: SCOPE=https://graph.microsoft.com/.default, GRAPH_ENDPOINT=https://graph.microsoft.com/v1.0/users.
/// The endpoint comes from the platform's variables (App Service, Functions, Arc, Service Fabric, Azure ML) or
/// is IMDS (VMs: set MANAGED_IDENTITY=host). With nothing set, the sample starts a local emulator playing IMDS.
///
/// Exit codes: 0 success, 2 configuration, 3 identity endpoint error, 4 Graph error, 5 network, 1 other.
// This doc comment is the `--help` text, written for a terminal rather than for rustdoc's Markdown.
#[allow(rustdoc::bare_urls)]
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    #[command(flatten)]
    identity: ManagedIdentityArgs,
}

// One thing at a time: a single-threaded runtime starts faster and uses less memory.
#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    sample_kit::main(run()).await
}

async fn run() -> anyhow::Result<()> {
    let args: Args = sample_kit::parse()?;
    let config = args.identity.configure(&DEFAULTS).await?;

    // No secret: the source (IMDS, App Service, Arc, ...) is detected from the host's environment.
    let app = ManagedIdentityClient::builder(config.identity)
        .environment(config.environment)
        .cache(config.cache)
        .build()?;
    println!("Managed identity source: {}.", app.source());

    // Looks in the cache first, then asks the host's managed identity endpoint.
    let token = app.acquire_token(&config.scope).await?;
    sample_kit::say_token_source(&token);

    // Call Microsoft Graph with the token. If Graph refuses a cached token (revoked), one new token is fetched
    // and the call is tried once more.
    let graph = GraphClient::new(config.http);
    let result = graph
        .get_with_token_recovery(&config.graph_endpoint, &token, |options| {
            app.acquire_token_with(&config.scope, options)
        })
        .await;
    // The token cache is written while Graph answers: wait for it before exiting, whatever Graph said.
    let flushed = app.flush().await;
    sample_kit::print_graph_result(result, flushed)
}
