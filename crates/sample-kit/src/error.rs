//! Why a sample cannot start: the setup errors, with the sample's variable names and a fix for each.

use std::fmt;

use identity_core::CertificateError;
use identity_core::ConfigError;

/// A required setting that is not set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// The environment variable(s).
    pub variable: &'static str,
    /// Where to find the value in the app registration.
    pub where_to_find: &'static str,
}

/// Why a sample cannot start. Exit code 2.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// `.env` exists but cannot be read or does not parse (the value on the bad line is never quoted).
    #[error("cannot read {}: {reason}", .path.display())]
    Dotenv {
        /// The file.
        path: std::path::PathBuf,
        /// Which line and variable, and why.
        reason: String,
    },
    /// A secret flag's value starts with `-`, so the command line cannot be parsed (the value is never quoted).
    #[error(
        "{flag} got no value: a value starting with '-' is read as another flag; write {flag}=<value>, or set {variable}"
    )]
    DashValue {
        /// The flag.
        flag: &'static str,
        /// The variable that can hold the value instead.
        variable: &'static str,
    },
    /// Variables that look like this sample's settings but are not (`AZURE_CLIENTID`, `CLIENT_SECRET`...), and
    /// nothing else is configured: running against the emulator would silently ignore them.
    #[error("{}", look_alike_message(.0))]
    LookAlike(Vec<LookAlike>),
    /// A URL setting carries a user name or password (`https://user:password@host`); the value is not quoted.
    #[error("{setting}: the URL holds a user name or password (user:password@); it would be sent and logged")]
    UrlCredentials {
        /// The variable.
        setting: &'static str,
    },
    /// A setting still holds the quickstart's placeholder, such as `Enter_the_Application_Id_Here`.
    #[error("{setting} still holds the quickstart's placeholder; set it to {what}")]
    Placeholder {
        /// The variable.
        setting: &'static str,
        /// What the value should be.
        what: &'static str,
    },
    /// A path setting starts with a `~` that cannot be expanded.
    #[error("{setting}: {reason}")]
    HomePath {
        /// The variable.
        setting: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A flag that only applies to the embedded emulator, given with a tenant configured.
    #[error("{flag} only applies to the embedded emulator, and a tenant is configured")]
    EmulatorOnly {
        /// The flag.
        flag: &'static str,
    },
    /// Some settings are given but not all that are needed.
    #[error("{}", missing_message(.missing, .docs))]
    Missing {
        /// What is missing.
        missing: Vec<Missing>,
        /// The guide to read.
        docs: &'static str,
    },
    /// A setting has a value the library cannot use.
    #[error("{setting}: {source}")]
    Invalid {
        /// The variable.
        setting: &'static str,
        /// Why.
        #[source]
        source: ConfigError,
    },
    /// `IDENTITY_CACHE` names no usable store (the value is never quoted when it holds a password).
    #[error("IDENTITY_CACHE: {0}")]
    Cache(String),
    /// A value could not be read from the terminal.
    #[error("{0}")]
    Prompt(String),
    /// The embedded emulator did not start.
    #[error("could not start the embedded emulator: {0}")]
    Emulator(String),
}

impl SetupError {
    /// A one-line fix, when one is known.
    pub fn fix(&self) -> Option<&'static str> {
        match self {
            SetupError::Dotenv { .. } => Some(
                "Each line of .env must be NAME=value; quote values containing spaces, # or quotes, in single quotes to keep $ literal.",
            ),
            SetupError::DashValue { .. } => Some(
                "Prefer the variable, in the environment or .env: flags are visible to other users in the process list.",
            ),
            SetupError::LookAlike(_) => Some(
                "Rename each variable to the name suggested (see .env.example), or unset it to run against the embedded emulator.",
            ),
            SetupError::UrlCredentials { .. } => Some(
                "Remove the user:password@ part; the identity platform and Graph take no credentials in URLs.",
            ),
            SetupError::Placeholder { .. } => {
                Some("Copy the value from the app registration's Overview page.")
            }
            SetupError::HomePath { .. } => Some("Write the full path (/home/me/...) in the setting."),
            SetupError::EmulatorOnly { .. } => {
                Some("Leave out the flag, or unset the tenant settings to run against the embedded emulator.")
            }
            SetupError::Missing { .. } => Some(
                "Set the variables above in the environment or in a .env file (see .env.example), or unset them all to use the embedded emulator.",
            ),
            // The library's text is neutral; here the sample's variable can be named.
            SetupError::Invalid {
                source: ConfigError::Certificate(c),
                ..
            } if is_password_error(c) => {
                Some("Set AZURE_CLIENT_CERTIFICATE_PASSWORD to the password the file was exported with.")
            }
            SetupError::Invalid { source, .. } => source.fix(),
            SetupError::Cache(_) => Some(
                "Set IDENTITY_CACHE to file (the default), encrypted-file, memory, or redis://[:password@]host:port/db.",
            ),
            SetupError::Prompt(_) => Some("Set AZURE_PASSWORD in the environment or in .env instead."),
            SetupError::Emulator(_) => None,
        }
    }
}

fn look_alike_message(found: &[LookAlike]) -> String {
    let mut text = String::from("no configuration found, but variables with nearly the right names are set:");
    for l in found {
        text.push_str(&format!("\n  - found {}: did you mean {}?", l.found, l.meant));
    }
    text.push_str("\n  (not falling back to the embedded emulator while they are set)");
    text
}

/// A set variable whose name is close to one of the samples' settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookAlike {
    /// The variable that is set.
    pub found: String,
    /// The setting it probably means.
    pub meant: &'static str,
}

fn missing_message(missing: &[Missing], docs: &str) -> String {
    let mut text = String::from("the configuration is incomplete; missing:");
    for m in missing {
        text.push_str(&format!("\n  - {}: {}", m.variable, m.where_to_find));
    }
    text.push_str(&format!("\n  (see {docs})"));
    text
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.where_to_find)
    }
}

/// Whether a certificate error is about its password (named by the sample's password setting, not the path's).
pub(crate) fn is_password_error(error: &CertificateError) -> bool {
    matches!(
        error,
        CertificateError::WrongPassword { .. } | CertificateError::PasswordRequired { .. }
    )
}
