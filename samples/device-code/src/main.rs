//! Device code flow: the Rust version of the Microsoft identity platform's Python device-flow quickstart.
//!
//! A user signs in on another device (a phone, a laptop with a browser) while this program waits; then it calls
//! Microsoft Graph as that user. The account, its refresh token and access token are cached, so later runs are
//! silent until the refresh token stops working. Configure it with environment variables or a `.env` file (see
//! `--help` and docs/device-code.md); with nothing configured it runs against the embedded emulator.

use anyhow::Context;
use clap::Parser;
use identity_core::{GraphClient, PublicClient};
use sample_kit::{CommonArgs, Defaults, DeviceCodeArgs};

const DEFAULTS: Defaults = Defaults {
    scope: "User.Read",
    graph_endpoint: "https://graph.microsoft.com/v1.0/me",
    docs: "docs/device-code.md",
};

/// Signs a user in with a code entered on another device, then calls Microsoft Graph as that user.
///
/// Defaults: SCOPE=User.Read, GRAPH_ENDPOINT=https://graph.microsoft.com/v1.0/me. Settings come from flags, the
/// environment, or a .env file in the working directory. With none of them set, the sample starts a local
/// emulator of the identity platform and Graph, and runs against it.
///
/// Exit codes: 0 success, 2 configuration, 3 identity platform error or sign-in not completed, 4 Graph error,
/// 5 network, 130 Ctrl-C, 1 other.
// This doc comment is the `--help` text, written for a terminal rather than for rustdoc's Markdown.
#[allow(rustdoc::bare_urls)]
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    device_code: DeviceCodeArgs,
}

// One thing at a time: a single-threaded runtime starts faster and uses less memory.
#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    sample_kit::main(run()).await
}

async fn run() -> anyhow::Result<()> {
    let args: Args = sample_kit::parse()?;
    let no_qr = args.device_code.no_qr.unwrap_or(false);
    let config = args.common.configure(args.device_code, &DEFAULTS).await?;

    // A public client: it holds no secret. The cache (a file by default) keeps the signed-in account.
    let app = PublicClient::builder(config.client_id, config.authority)
        .http_client(config.http)
        .cache(config.cache)
        .build()?;

    // Signed in before? Then no prompt: the cached token, or a new one bought with the account's refresh token.
    let mut token = None;
    if let Some(account) = app.accounts().await?.first() {
        token = sample_kit::silent(app.acquire_token_silent(account, &config.scopes).await)?;
    }
    let token = match token {
        Some(token) => token,
        None => {
            // Ask for a code, show it, and wait while the user signs in elsewhere.
            let flow = app.initiate_device_flow(&config.scopes).await?;
            let sign_in = app.acquire_token_by_device_flow(&flow);
            sample_kit::wait_for_sign_in(&flow, no_qr, sign_in).await?
        }
    };
    sample_kit::say_token_source(&token);
    let account = token.account.clone().context("the sign-in named no account")?;
    println!("Signed in as {}.", account.username);

    // Call Microsoft Graph as the user. If Graph refuses a cached token (revoked, or a claims challenge), one new
    // token is bought with the refresh token and the call is tried once more.
    let graph = GraphClient::new(app.http_client().clone());
    let result = graph
        .get_with_token_recovery(&config.graph_endpoint, &token, |options| {
            app.acquire_token_silent_with(&account, &config.scopes, options)
        })
        .await;
    // The token cache is written while Graph answers: wait for it before exiting, whatever Graph said (a Graph
    // error is reported first; a failed cache write after a successful call).
    let flushed = app.flush().await;
    sample_kit::print_graph_result(result, flushed)
}
