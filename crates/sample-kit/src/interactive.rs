//! Settings and helpers of the interactive sample: the sign-in page opened in the browser (or its address
//! printed), and Ctrl-C while waiting.

use std::future::Future;
use std::io::Write;
use std::time::Duration;

use clap::Args;
use identity_core::{Error, InteractiveOptions, TokenResult};

use crate::config::CredentialArgs;
use crate::error::{Missing, SetupError};

/// Options of the interactive sample.
#[derive(Args, Clone, Debug, Default)]
#[command(next_help_heading = "Sign-in")]
pub struct InteractiveArgs {
    /// How long to wait for you to finish signing in in the browser, in seconds [default: 300].
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,

    /// Pre-fill the sign-in page with this account (login_hint), e.g. adele@contoso.onmicrosoft.com.
    #[arg(long, value_name = "UPN")]
    pub login_hint: Option<String>,
}

impl InteractiveArgs {
    /// The sign-in's options: the browser from `$BROWSER` or the system's default, the address always printed
    /// too (and, where no browser can be opened, the advice to use the device-code sample).
    pub fn options(&self) -> InteractiveOptions {
        let mut options = InteractiveOptions::new().with_url_opener(show_sign_in_page);
        if let Some(seconds) = self.timeout {
            options = options.with_timeout(Duration::from_secs(seconds));
        }
        if let Some(hint) = self.login_hint.as_deref().filter(|h| !h.trim().is_empty()) {
            options = options.with_login_hint(hint);
        }
        options
    }
}

/// Opens the sign-in page and prints its address; never fails, so the program keeps waiting for a page opened
/// by hand.
fn show_sign_in_page(url: &str) -> Result<(), String> {
    if let Some(notice) = crate::prompt::sign_in_notice() {
        println!("{notice}");
    }
    match identity_core::open_browser(url) {
        Ok(()) => println!(
            "Opened the sign-in page in your browser. If it did not appear, open this address in a browser on \
             this machine:"
        ),
        Err(reason) => println!(
            "Could not open a browser ({reason}). Open this address in a browser on this machine (the sign-in \
             answers to http://localhost on it); on a machine without one (SSH, a container), run the device-code \
             sample instead: cargo run -p device-code"
        ),
    }
    println!("{url}");
    println!("Waiting for the sign-in to finish in the browser (Ctrl-C to stop)…");
    // Tests and scripts read the address as soon as it is written.
    let _ = std::io::stdout().flush();
    Ok(())
}

/// Waits for the sign-in; Ctrl-C drops it (which closes the listener) and returns [`crate::Cancelled`].
pub async fn until_ctrl_c(
    sign_in: impl Future<Output = Result<TokenResult, Error>>,
) -> anyhow::Result<TokenResult> {
    tokio::select! {
        result = sign_in => result.map_err(anyhow::Error::from),
        _ = tokio::signal::ctrl_c() => Err(crate::prompt::Cancelled.into()),
    }
}

impl CredentialArgs for InteractiveArgs {
    /// A public client holds no credential; the user signs in.
    type Credential = ();

    fn any_set(&self) -> bool {
        false
    }

    fn missing(&self) -> Vec<Missing> {
        vec![]
    }

    fn into_credential(self) -> Result<(), SetupError> {
        Ok(())
    }

    #[cfg(feature = "embedded-emulator")]
    fn from_emulator(
        emulator: &entra_emulator::Emulator,
    ) -> Result<(entra_emulator::AppRegistration, ()), SetupError> {
        let app = emulator
            .app("interactive")
            .ok_or_else(|| SetupError::Emulator("it has no 'interactive' app".into()))?;
        Ok((app, ()))
    }

    #[cfg(feature = "embedded-emulator")]
    fn sign_in_notice(&self) -> String {
        format!(
            "Sign in at the emulator's page as its demo user {} with the password {}.",
            entra_emulator::DEMO_USERNAME,
            entra_emulator::DEMO_PASSWORD
        )
    }
}
