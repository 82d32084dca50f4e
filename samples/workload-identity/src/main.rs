//! Workload identity federation: a daemon without a secret. On Kubernetes (AKS workload identity), GitHub
//! Actions or another system that issues OIDC tokens to workloads, that token is the app's credential: Entra
//! trusts it through a federated credential on the app registration (issuer, subject, audience
//! `api://AzureADTokenExchange`) and returns an app-only token for Microsoft Graph.
//!
//! Configure it with the variables the AKS webhook sets (AZURE_CLIENT_ID, AZURE_TENANT_ID,
//! AZURE_FEDERATED_TOKEN_FILE; see `--help` and docs/workload-identity.md); with nothing configured it runs
//! against the embedded emulator, which also plays the cluster's token issuer.

use clap::Parser;
use identity_core::{ConfidentialClient, GraphClient};
use sample_kit::{CommonArgs, Defaults, WorkloadArgs};

const DEFAULTS: Defaults = Defaults {
    scope: "https://graph.microsoft.com/.default",
    graph_endpoint: "https://graph.microsoft.com/v1.0/users",
    docs: "docs/workload-identity.md",
};

/// Gets an app-only token with a federated token (workload identity federation) and calls Microsoft Graph.
///
/// Defaults: SCOPE=https://graph.microsoft.com/.default, GRAPH_ENDPOINT=https://graph.microsoft.com/v1.0/users.
/// Settings come from flags, the environment, or a .env file in the working directory. With none of them set,
/// the sample starts a local emulator of the identity platform, Graph and a cluster's token issuer, and runs
/// against it.
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
    workload: WorkloadArgs,
}

// One thing at a time: a single-threaded runtime starts faster and uses less memory.
#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    sample_kit::main(run()).await
}

async fn run() -> anyhow::Result<()> {
    let args: Args = sample_kit::parse()?;
    let config = args.common.configure(args.workload, &DEFAULTS).await?;

    // The credential is the token file: it is read when a token is needed, and re-read as the kubelet rotates it.
    let app = ConfidentialClient::builder(config.client_id, config.authority)
        .credential(config.credential)
        .http_client(config.http)
        .cache(config.cache)
        .build()?;

    // Looks in the cache first, then asks the identity provider with the federated token.
    let token = app.acquire_token_for_client(&config.scopes).await?;
    sample_kit::say_token_source(&token);

    // Call Microsoft Graph with the token (one new token and one retry if Graph refuses a cached one).
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
