//! Username/password (ROPC): the Rust version of the Microsoft identity platform's Python username/password
//! quickstart. **Legacy**: it cannot do MFA or Conditional Access, fails for federated and personal accounts,
//! and hands the user's password to this program. Use the device-code sample instead where you can.
//!
//! The account, its refresh token and access token are cached, so later runs are silent. Configure it with
//! environment variables or a `.env` file (see `--help` and docs/username-password.md); with nothing configured it
//! runs against the embedded emulator with its demo user.

use anyhow::Context;
use clap::Parser;
use identity_core::{GraphClient, PublicClient};
use sample_kit::{CommonArgs, Defaults, UserPasswordArgs};

const DEFAULTS: Defaults = Defaults {
    scope: "User.ReadBasic.All",
    graph_endpoint: "https://graph.microsoft.com/v1.0/users",
    docs: "docs/username-password.md",
};

/// Gets a user token with the user's password (legacy flow), then calls Microsoft Graph as that user.
///
/// Defaults: SCOPE=User.ReadBasic.All, GRAPH_ENDPOINT=https://graph.microsoft.com/v1.0/users. Settings come from
/// flags, the environment, or a .env file in the working directory. With none of them set, the sample starts a
/// local emulator of the identity platform and Graph, and runs against it.
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
    user: UserPasswordArgs,
}

// One thing at a time: a single-threaded runtime starts faster and uses less memory.
#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    sample_kit::main(run()).await
}

async fn run() -> anyhow::Result<()> {
    eprintln!(
        "warning: the username/password flow is legacy (no MFA, no Conditional Access, the app sees the password); \
         use the device-code sample (cargo run -p device-code) instead. See docs/username-password.md."
    );
    let args: Args = sample_kit::parse()?;
    let config = args.common.configure(args.user, &DEFAULTS).await?;
    let user = config.credential;

    let app = PublicClient::builder(config.client_id, config.authority)
        .http_client(config.http)
        .cache(config.cache)
        .build()?;

    // Signed in before? Then no password is sent: the cached token, or one bought with the refresh token.
    let mut token = None;
    if let Some(account) = app.account(&user.username).await? {
        token = sample_kit::silent(app.acquire_token_silent(&account, &config.scopes).await)?;
    }
    let token = match token {
        Some(token) => token,
        None => {
            let password = user.password()?;
            let result = app
                .acquire_token_by_username_password(&user.username, &password, &config.scopes)
                .await;
            if let Err(identity_core::Error::Service(e)) = &result
                && e.code() == Some(65001)
            {
                // Nobody can consent in this flow: an administrator has to, once, for the whole tenant.
                println!(
                    "An administrator can grant consent at: {}",
                    app.admin_consent_url()
                );
            }
            result?
        }
    };
    sample_kit::say_token_source(&token);

    // Call Microsoft Graph as the user. If Graph refuses a cached token (revoked, or a claims challenge), one new
    // token is bought with the refresh token and the call is tried once more.
    let account = token.account.clone().context("the sign-in named no account")?;
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
