//! Settings and helpers of the user-flow samples (device code, username/password).

use std::io::IsTerminal;

use clap::Args;
use identity_core::{Error, Password, TokenResult};

use crate::config::CredentialArgs;
use crate::error::{Missing, SetupError};

/// Options of the device-code sample.
#[derive(Args, Clone, Debug, Default)]
#[command(next_help_heading = "Device code")]
pub struct DeviceCodeArgs {
    /// Do not draw a QR code of the sign-in page (it is only drawn when stdout is a terminal).
    #[arg(long, env = "DEVICE_CODE_NO_QR", value_name = "BOOL", num_args = 0..=1,
          default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_qr: Option<bool>,

    /// Embedded emulator only: let the emulator approve the sign-in as its demo user after SECONDS, instead of
    /// you signing in at its page in a browser.
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "3")]
    pub emulator_approve: Option<u64>,
}

impl CredentialArgs for DeviceCodeArgs {
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

    fn emulator_only_flag(&self) -> Option<&'static str> {
        self.emulator_approve.map(|_| "--emulator-approve")
    }

    #[cfg(feature = "embedded-emulator")]
    fn from_emulator(
        emulator: &entra_emulator::Emulator,
    ) -> Result<(entra_emulator::AppRegistration, ()), SetupError> {
        Ok((emulator_app(emulator, "device-code")?, ()))
    }

    #[cfg(feature = "embedded-emulator")]
    fn emulator_builder(&self, builder: entra_emulator::EmulatorBuilder) -> entra_emulator::EmulatorBuilder {
        match self.emulator_approve {
            Some(seconds) => builder.auto_approve_device_codes(
                entra_emulator::DEMO_USERNAME,
                std::time::Duration::from_secs(seconds),
            ),
            None => builder,
        }
    }

    #[cfg(feature = "embedded-emulator")]
    fn sign_in_notice(&self) -> String {
        match self.emulator_approve {
            Some(seconds) => format!(
                "The emulator will approve the sign-in as its demo user {} after {seconds} s (--emulator-approve).",
                entra_emulator::DEMO_USERNAME
            ),
            None => format!(
                "Sign in at the emulator's page as its demo user {} with the password {} \
                 (or run with --emulator-approve to have the emulator approve for you).",
                entra_emulator::DEMO_USERNAME,
                entra_emulator::DEMO_PASSWORD
            ),
        }
    }
}

/// The user of the username/password sample. `Debug` never shows the password.
#[derive(Args, Clone, Default)]
#[command(next_help_heading = "User")]
pub struct UserPasswordArgs {
    /// The user's sign-in name (UPN), e.g. adele@contoso.onmicrosoft.com.
    #[arg(long, env = "AZURE_USERNAME", value_name = "UPN")]
    pub username: Option<String>,

    /// The user's password. Prefer the variable or .env (flags are visible in the process list), or leave it unset
    /// to be asked for it, without echo, when the sample runs in a terminal.
    #[arg(long, env = "AZURE_PASSWORD", value_name = "PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
}

impl std::fmt::Debug for UserPasswordArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserPasswordArgs")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// Who signs in with the username/password flow.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UserCredential {
    /// The sign-in name.
    pub username: String,
    /// The password, when configured; otherwise [`UserCredential::password`] asks for it.
    configured: Option<Password>,
}

impl UserCredential {
    /// The configured password, or one typed at a no-echo prompt on the terminal.
    pub fn password(&self) -> Result<Password, SetupError> {
        if let Some(password) = &self.configured {
            return Ok(password.clone());
        }
        if !std::io::stdin().is_terminal() {
            return Err(SetupError::Missing {
                missing: vec![password_missing()],
                docs: "docs/username-password.md",
            });
        }
        let typed = rpassword::prompt_password(format!("Password for {}: ", self.username))
            .map_err(|e| SetupError::Prompt(format!("cannot read the password from the terminal: {e}")))?;
        Ok(Password::new(typed))
    }
}

fn password_missing() -> Missing {
    Missing {
        variable: "AZURE_PASSWORD",
        where_to_find: "the user's password (or run the sample in a terminal to be asked for it)",
    }
}

impl CredentialArgs for UserPasswordArgs {
    type Credential = UserCredential;

    fn any_set(&self) -> bool {
        self.username.is_some() || self.password.is_some()
    }

    fn missing(&self) -> Vec<Missing> {
        let mut missing = vec![];
        if self.username.as_deref().is_none_or(|u| u.trim().is_empty()) {
            missing.push(Missing {
                variable: "AZURE_USERNAME",
                where_to_find: "the user's sign-in name (UPN), e.g. adele@contoso.onmicrosoft.com",
            });
        }
        if self.password.as_deref().is_none_or(str::is_empty) && !std::io::stdin().is_terminal() {
            missing.push(password_missing());
        }
        missing
    }

    fn into_credential(self) -> Result<UserCredential, SetupError> {
        Ok(UserCredential {
            username: self.username.unwrap_or_default().trim().to_string(),
            configured: self.password.filter(|p| !p.is_empty()).map(Password::new),
        })
    }

    #[cfg(feature = "embedded-emulator")]
    fn from_emulator(
        emulator: &entra_emulator::Emulator,
    ) -> Result<(entra_emulator::AppRegistration, UserCredential), SetupError> {
        let user = UserCredential {
            username: entra_emulator::DEMO_USERNAME.to_string(),
            configured: Some(Password::new(entra_emulator::DEMO_PASSWORD)),
        };
        Ok((emulator_app(emulator, "username-password")?, user))
    }

    #[cfg(feature = "embedded-emulator")]
    fn emulator_notice(&self) -> String {
        format!(
            "Signing in as the emulator's demo user {}.",
            entra_emulator::DEMO_USERNAME
        )
    }
}

#[cfg(feature = "embedded-emulator")]
fn emulator_app(
    emulator: &entra_emulator::Emulator,
    name: &str,
) -> Result<entra_emulator::AppRegistration, SetupError> {
    emulator
        .app(name)
        .ok_or_else(|| SetupError::Emulator(format!("it has no '{name}' app")))
}

/// The result of [`identity_core::PublicClient::acquire_token_silent`] for a sample: a token, or `None` when the
/// user has to sign in, saying why when a cached sign-in was refused (expired or revoked refresh token...).
pub fn silent(result: Result<Option<TokenResult>, Error>) -> Result<Option<TokenResult>, Error> {
    match result {
        Err(Error::Service(e)) if e.requires_sign_in() => {
            let code = e.code().map(|c| format!("AADSTS{c}: ")).unwrap_or_default();
            println!(
                "The cached sign-in is no longer accepted ({code}{}); signing in again.",
                e.summary()
            );
            Ok(None)
        }
        other => other,
    }
}
