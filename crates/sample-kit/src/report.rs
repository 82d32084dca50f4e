//! How a sample ends: the result on stdout, or the error on stderr with the service's details, the fix, and an
//! exit code that tells configuration errors from service errors.

use std::future::Future;

use std::sync::OnceLock;

use identity_core::{
    Authority, ConfigError, Error, ManagedIdentityError, ManagedIdentitySource, SignInError, TokenResult,
    TokenSource,
};

use crate::error::SetupError;

/// Exit codes of the samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    /// Success.
    Success = 0,
    /// Anything not covered below.
    Failure = 1,
    /// The configuration is missing or invalid (also used by clap for bad flags).
    Config = 2,
    /// The Microsoft identity platform refused the request (an `AADSTS` error).
    Service = 3,
    /// Microsoft Graph refused the call.
    Graph = 4,
    /// The network: unreachable host, TLS, timeout, or an answer that is not what the protocol says.
    Network = 5,
    /// The user pressed Ctrl-C (128 + SIGINT, as shells report it).
    Cancelled = 130,
}

/// Runs a sample; on error prints it to stderr and returns the matching exit code.
pub async fn main(run: impl Future<Output = anyhow::Result<()>>) -> std::process::ExitCode {
    exit_quietly_on_broken_pipe();
    match run.await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprint!("{}", describe(&error));
            std::process::ExitCode::from(exit_code(&error) as u8)
        }
    }
}

/// `println!` panics when stdout is a pipe whose reader has gone (`daemon-secret | head -1`). End quietly
/// instead, with the status a shell reports for SIGPIPE, as a C program would.
fn exit_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(128 + 13);
        }
        default(info);
    }));
}

/// Prints where the token came from, as the quickstarts do.
pub fn say_token_source(token: &TokenResult) {
    match token.source {
        TokenSource::Cache => {
            println!("Found a cached token, so no request was sent to the identity provider.")
        }
        TokenSource::IdentityProvider => println!("Could not find a cached token, so fetching a new one."),
    }
}

/// Prints the Graph result as the quickstarts do, once the token cache write (`flushed`, awaited by the caller
/// whatever Graph answered) is done. A Graph error is reported before a failed cache write: it is why the run
/// failed, and the cache must not hide it.
pub fn print_graph_result(
    result: identity_core::Result<serde_json::Value>,
    flushed: identity_core::Result<()>,
) -> anyhow::Result<()> {
    let result = result?;
    flushed?;
    println!("Graph API call result: ");
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}

/// The admin-consent page of the configured app, for the report of a Graph 403: the quickstart's "Admin
/// consent" step, which a non-admin can hand to an administrator.
static ADMIN_CONSENT_URL: OnceLock<String> = OnceLock::new();

/// Remembers the configured app, so that error reports can point at its admin-consent page.
pub(crate) fn set_app(authority: &Authority, client_id: &str) {
    let client_id: String = url::form_urlencoded::byte_serialize(client_id.as_bytes()).collect();
    let _ = ADMIN_CONSENT_URL.set(format!(
        "{}/{}/adminconsent?client_id={client_id}",
        authority.host_url(),
        authority.tenant()
    ));
}

/// The sample's setting(s) an error is about, by error kind and AADSTS code (the library's texts are neutral).
fn settings_involved(error: &Error) -> Option<&'static str> {
    match error {
        Error::Config(e) => match e {
            ConfigError::InvalidAuthority { .. } => {
                Some("AUTHORITY (--authority), or AZURE_TENANT_ID (--tenant-id) and AZURE_AUTHORITY_HOST")
            }
            ConfigError::InvalidTenant { .. } => Some("AZURE_TENANT_ID (--tenant-id)"),
            ConfigError::InvalidUsername => Some("AZURE_USERNAME (--username)"),
            ConfigError::NoScopes => Some("SCOPE (--scope)"),
            ConfigError::CaCertificates { .. } => Some("IDENTITY_EXTRA_CA_CERTS (--extra-ca-certs)"),
            ConfigError::Certificate(c) if crate::error::is_password_error(c) => {
                Some("AZURE_CLIENT_CERTIFICATE_PASSWORD (--certificate-password)")
            }
            ConfigError::Certificate(_) => Some("AZURE_CLIENT_CERTIFICATE_PATH (--certificate)"),
            ConfigError::Federated(_) => Some("AZURE_FEDERATED_TOKEN_FILE (--federated-token-file)"),
            _ => None,
        },
        Error::Service(s) => match s.code()? {
            700016 => Some("AZURE_CLIENT_ID (--client-id), and AZURE_TENANT_ID"),
            90002 | 900023 | 50059 => Some("AZURE_TENANT_ID (--tenant-id) or AUTHORITY"),
            7000215 | 7000222 | 7000224 => Some("AZURE_CLIENT_SECRET (--client-secret)"),
            7000216 => {
                Some("AZURE_CLIENT_SECRET (--client-secret) or AZURE_CLIENT_CERTIFICATE_PATH (--certificate)")
            }
            50049 => Some("AUTHORITY (--authority) or AZURE_AUTHORITY_HOST"),
            700027 | 700024 | 50027 | 5002726 => Some("AZURE_CLIENT_CERTIFICATE_PATH (--certificate)"),
            70011 | 500011 | 65005 => Some("SCOPE (--scope)"),
            70021 | 700211 | 700212 | 700213 | 7002138 | 70023 | 50166 | 7000272 | 50013 => Some(
                "AZURE_FEDERATED_TOKEN_FILE (--federated-token-file), and AZURE_CLIENT_ID's federated credentials",
            ),
            50126 => Some("AZURE_USERNAME (--username) and AZURE_PASSWORD"),
            50034 => Some("AZURE_USERNAME (--username)"),
            _ => None,
        },
        Error::Graph(g) if matches!(g.status, 400 | 404) => Some("GRAPH_ENDPOINT (--graph-endpoint)"),
        Error::Graph(g) if g.status == 403 => Some("SCOPE (--scope) and the app's API permissions"),
        Error::SignIn(SignInError::NoDeviceCodeEndpoint | SignInError::NoAuthorizationEndpoint) => {
            Some("AUTHORITY (--authority)")
        }
        Error::SignIn(SignInError::InteractionTimedOut { .. }) => Some("--timeout"),
        Error::Cache(_) => Some("IDENTITY_CACHE (--cache) or IDENTITY_CACHE_PATH (--cache-path)"),
        Error::ManagedIdentity(e) => managed_identity_settings(e),
        _ => None,
    }
}

fn exit_code(error: &anyhow::Error) -> ExitCode {
    if error.downcast_ref::<SetupError>().is_some() {
        return ExitCode::Config;
    }
    if error.downcast_ref::<crate::prompt::Cancelled>().is_some() {
        return ExitCode::Cancelled;
    }
    if let Some(e) = error.downcast_ref::<identity_core::ManagedIdentityError>() {
        return managed_identity_exit_code(e);
    }
    match error.downcast_ref::<Error>() {
        Some(Error::ManagedIdentity(e)) => managed_identity_exit_code(e),
        Some(Error::Config(_)) => ExitCode::Config,
        Some(Error::Service(_) | Error::SignIn(_)) => ExitCode::Service,
        Some(Error::Graph(_)) => ExitCode::Graph,
        Some(Error::Http(_)) => ExitCode::Network,
        _ => ExitCode::Failure,
    }
}

/// The error report: the message, the service's identifiers, and the fix.
fn describe(error: &anyhow::Error) -> String {
    // Causes are added unless the message already says them (most of our errors quote their source).
    let mut message = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !message.contains(&cause) {
            message = format!("{message}: {cause}");
        }
    }
    let mut lines = vec![format!("error: {message}")];
    let mut field = |name: &str, value: Option<String>| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            // Names longer than the column still get a space before the value.
            lines.push(format!("  {name:<15} {v}"));
        }
    };
    let fix = if let Some(setup) = error.downcast_ref::<SetupError>() {
        setup.fix()
    } else if let Some(e) = error.downcast_ref::<identity_core::ManagedIdentityError>() {
        field("setting:", managed_identity_settings(e).map(str::to_string));
        Some(e.fix())
    } else if let Some(e) = error.downcast_ref::<Error>() {
        match e {
            Error::Service(s) => {
                field(
                    "code:",
                    s.code()
                        .map(|c| format!("AADSTS{c}"))
                        .or_else(|| Some(s.error.clone())),
                );
                field("suberror:", s.suberror.clone());
                field("correlation id:", s.correlation_id.clone());
                field("trace id:", s.trace_id.clone());
                field("timestamp:", s.timestamp.clone());
                field(
                    "retry after:",
                    s.retry_after.map(|d| format!("{} s", d.as_secs())),
                );
            }
            Error::Graph(g) => {
                field("code:", Some(g.code.clone()));
                field("request id:", g.request_id.clone());
                field("client request id:", g.client_request_id.clone());
                field("date:", g.date.clone());
                field(
                    "retry after:",
                    g.retry_after.map(|d| format!("{} s", d.as_secs())),
                );
                if g.status == 403 {
                    field("admin consent:", ADMIN_CONSENT_URL.get().cloned());
                }
            }
            _ => {}
        }
        field("setting:", settings_involved(e).map(str::to_string));
        e.fix()
    } else {
        None
    };
    field("fix:", fix.map(str::to_string));
    lines.join("\n") + "\n"
}

/// The managed-identity sample's setting an error is about (the library's texts are neutral).
fn managed_identity_settings(error: &ManagedIdentityError) -> Option<&'static str> {
    match error {
        ManagedIdentityError::IdentityNotFound { .. }
        | ManagedIdentityError::ArcIdentityNotConfirmed { .. } => Some(
            "MANAGED_IDENTITY_CLIENT_ID, MANAGED_IDENTITY_OBJECT_ID or MANAGED_IDENTITY_RESOURCE_ID (unset: the system-assigned identity)",
        ),
        ManagedIdentityError::InvalidResource { .. } => Some("SCOPE (--scope)"),
        ManagedIdentityError::Unreachable {
            platform: ManagedIdentitySource::Imds,
            ..
        } => Some("MANAGED_IDENTITY (unset it, or set emulator, to run against the embedded emulator)"),
        _ => None,
    }
}

/// The exit code of a managed-identity error.
fn managed_identity_exit_code(error: &ManagedIdentityError) -> ExitCode {
    match error {
        ManagedIdentityError::InvalidEnvironment { .. }
        | ManagedIdentityError::Unsupported { .. }
        | ManagedIdentityError::InvalidResource { .. } => ExitCode::Config,
        ManagedIdentityError::Unreachable { .. }
        | ManagedIdentityError::InvalidResponse { .. }
        | ManagedIdentityError::ThumbprintMismatch { .. } => ExitCode::Network,
        _ => ExitCode::Service,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(code: i64) -> Error {
        let body = serde_json::json!({ "error": "invalid_request", "error_codes": [code] });
        Error::Service(serde_json::from_value(body).unwrap())
    }

    #[test]
    fn the_library_s_neutral_fixes_get_the_sample_s_setting_named() {
        assert_eq!(
            settings_involved(&service(7000216)),
            Some("AZURE_CLIENT_SECRET (--client-secret) or AZURE_CLIENT_CERTIFICATE_PATH (--certificate)")
        );
        assert_eq!(
            settings_involved(&service(50049)),
            Some("AUTHORITY (--authority) or AZURE_AUTHORITY_HOST")
        );
        assert_eq!(settings_involved(&service(70011)), Some("SCOPE (--scope)"));
        assert_eq!(
            settings_involved(&Error::SignIn(SignInError::NoDeviceCodeEndpoint)),
            Some("AUTHORITY (--authority)")
        );
        assert_eq!(
            settings_involved(&Error::Cache(identity_core::CacheError::Unavailable("x".into()))),
            Some("IDENTITY_CACHE (--cache) or IDENTITY_CACHE_PATH (--cache-path)")
        );
        let password = identity_core::CertificateError::WrongPassword { path: "c.pfx".into() };
        assert_eq!(
            settings_involved(&Error::Config(ConfigError::Certificate(password))),
            Some("AZURE_CLIENT_CERTIFICATE_PASSWORD (--certificate-password)")
        );
    }
}
