//! Command-line flags, each backed by its environment variable (Azure SDK names), and `.env` loading.

use std::path::PathBuf;

use clap::{Args, Parser};
use tracing_subscriber::EnvFilter;

use crate::error::SetupError;

/// Settings of the samples that sign in to an authority (all but managed identity): the identity platform's,
/// then [`RunArgs`]. Flags override variables; variables come from the environment or `.env`.
// The field docs are `--help` text, written for a terminal rather than for rustdoc's Markdown.
#[allow(
    rustdoc::bare_urls,
    rustdoc::invalid_html_tags,
    rustdoc::broken_intra_doc_links
)]
#[derive(Args, Clone, Default)]
#[command(next_help_heading = "Identity platform")]
pub struct CommonArgs {
    /// Full authority URL, quickstart style: https://login.microsoftonline.com/<tenant>. Overrides
    /// AZURE_AUTHORITY_HOST and AZURE_TENANT_ID.
    #[arg(long, env = "AUTHORITY", value_name = "URL")]
    pub authority: Option<String>,

    /// Authority host, for national clouds [default: https://login.microsoftonline.com].
    #[arg(long, env = "AZURE_AUTHORITY_HOST", value_name = "URL")]
    pub authority_host: Option<String>,

    /// Directory (tenant) ID or a verified domain (app registration > Overview).
    #[arg(long, env = "AZURE_TENANT_ID", value_name = "TENANT")]
    pub tenant_id: Option<String>,

    /// Application (client) ID (app registration > Overview).
    #[arg(long, env = "AZURE_CLIENT_ID", value_name = "GUID")]
    pub client_id: Option<String>,

    /// Check an authority host that is not a known Microsoft cloud with Microsoft's instance discovery before
    /// any credential is sent to it: `on` (default) or `off`, for a private deployment that instance discovery
    /// does not know. Loopback hosts (the emulator) are never checked.
    #[arg(
        long,
        env = identity_core::AUTHORITY_VALIDATION_VAR,
        value_name = "on|off",
        default_value = "on",
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new(),
        help_heading = "Network"
    )]
    pub authority_validation: bool,

    /// The request, the network, the token cache, the output.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Settings every sample shares, whatever its identity: what to ask for and call, extra CAs, the token cache,
/// logging.
// The field docs are `--help` text, written for a terminal rather than for rustdoc's Markdown.
#[allow(
    rustdoc::bare_urls,
    rustdoc::invalid_html_tags,
    rustdoc::broken_intra_doc_links
)]
#[derive(Args, Clone, Default)]
pub struct RunArgs {
    /// Space-separated scopes [default: the sample's, shown by --help].
    #[arg(long, env = "SCOPE", value_name = "SCOPES", help_heading = "Request")]
    pub scope: Option<String>,

    /// The Microsoft Graph URL to call [default: the sample's, shown by --help].
    #[arg(long, env = "GRAPH_ENDPOINT", value_name = "URL", help_heading = "Request")]
    pub graph_endpoint: Option<String>,

    /// PEM file of extra CA certificates to trust (TLS-inspecting proxy, emulator).
    #[arg(long, env = identity_core::EXTRA_CA_CERTS_VAR, value_name = "FILE", help_heading = "Network")]
    pub extra_ca_certs: Option<PathBuf>,

    /// Token cache: `file` (default; survives runs), `encrypted-file` (the same, encrypted with a key in the
    /// kernel keyring; Linux), `memory`, or a Redis URL (redis://[:password@]host:port/db) shared by many daemons.
    #[arg(
        long,
        env = "IDENTITY_CACHE",
        value_name = "STORE",
        default_value = "file",
        hide_env_values = true,
        help_heading = "Token cache"
    )]
    pub cache: String,

    /// File of the file cache [default: one file per app and tenant,
    /// <user cache dir>/identity-core/token-cache/<client id>_<tenant>.json; for a managed identity
    /// <identity>_managed_identity.json]. A leading `~/` is the home directory.
    #[arg(
        long,
        env = "IDENTITY_CACHE_PATH",
        value_name = "FILE",
        help_heading = "Token cache"
    )]
    pub cache_path: Option<PathBuf>,

    /// More logging on stderr (-v: debug, -vv: trace). RUST_LOG, when set, takes precedence.
    #[arg(short, long, action = clap::ArgAction::Count, global = true, help_heading = "Output")]
    pub verbose: u8,
}

/// Loads `./.env` (the working directory's only; the real environment wins), then parses the flags.
///
/// Exits with usage help on bad flags, like any clap program; a secret flag whose value starts with `-` gets a
/// hint instead of clap's message, which would quote the value.
pub fn parse<T: Parser>() -> Result<T, SetupError> {
    load_dotenv()?;
    match T::try_parse() {
        Ok(args) => Ok(args),
        Err(error) => match secret_flag_before_dash(std::env::args_os().skip(1)) {
            Some((flag, variable)) => Err(SetupError::DashValue { flag, variable }),
            None => error.exit(),
        },
    }
}

/// The secret flags, and the variable that can hold the value instead.
const SECRET_FLAGS: [(&str, &str); 3] = [
    ("--client-secret", "AZURE_CLIENT_SECRET"),
    ("--password", "AZURE_PASSWORD"),
    ("--certificate-password", "AZURE_CLIENT_CERTIFICATE_PASSWORD"),
];

/// A secret flag followed by a separate argument starting with `-`, which clap reads as another flag.
fn secret_flag_before_dash(
    args: impl Iterator<Item = std::ffi::OsString>,
) -> Option<(&'static str, &'static str)> {
    let args: Vec<_> = args.collect();
    args.windows(2).find_map(|pair| {
        let flag = SECRET_FLAGS.iter().find(|(f, _)| pair[0] == **f)?;
        pair[1]
            .to_str()
            .is_some_and(|v| v.starts_with('-'))
            .then_some(*flag)
    })
}

/// Upper bound of `.env`'s size: a settings file, not a data file.
const MAX_DOTENV_BYTES: u64 = 1 << 20;

/// The `.env` that was loaded, said in the log once logging is set up (`-v`).
static LOADED_DOTENV: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Reads `.env` from the working directory only (never a parent's: a daemon started elsewhere must not pick
/// up another project's settings).
fn load_dotenv() -> Result<(), SetupError> {
    let path = std::env::current_dir()
        .map(|dir| dir.join(".env"))
        .unwrap_or_else(|_| PathBuf::from(".env"));
    let unreadable = |reason: String| SetupError::Dotenv {
        path: path.clone(),
        reason,
    };
    match std::fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(unreadable(e.to_string())),
        Ok(meta) if !meta.is_file() => return Err(unreadable("it is not a regular file".into())),
        Ok(meta) if meta.len() > MAX_DOTENV_BYTES => {
            return Err(unreadable(format!(
                "it is larger than {} KiB",
                MAX_DOTENV_BYTES / 1024
            )));
        }
        Ok(_) => {}
    }
    match dotenvy::from_path(&path) {
        Ok(()) => {
            let _ = LOADED_DOTENV.set(path);
            Ok(())
        }
        Err(dotenvy::Error::LineParse(line, _)) => Err(unreadable(describe_bad_line(&path, &line))),
        // I/O errors say nothing of the contents; dotenvy's line errors quote the line, value included.
        Err(dotenvy::Error::Io(e)) => Err(unreadable(e.to_string())),
        Err(_) => Err(unreadable("it does not parse".into())),
    }
}

/// "line N (NAME): why", never the value: `.env` holds secrets and this goes to CI logs and journald.
fn describe_bad_line(path: &std::path::Path, bad: &str) -> String {
    let first = bad.lines().next().unwrap_or_default();
    let number = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.lines().position(|l| l == first))
        .map(|i| format!("line {}", i + 1))
        .unwrap_or_else(|| "a line".into());
    let statement = first.trim_start();
    let statement = statement.strip_prefix("export ").unwrap_or(statement);
    match statement.split_once('=') {
        Some((name, _)) if is_variable_name(name.trim_end()) => format!(
            "{number} ({}): the value does not parse (an unclosed quote, or a space, # or quote that needs quoting)",
            name.trim_end()
        ),
        _ => format!("{number}: not of the form NAME=value"),
    }
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// Says which `.env` was read (at `-v`); call once logging is set up.
pub(crate) fn log_loaded_dotenv() {
    if let Some(path) = LOADED_DOTENV.get() {
        tracing::debug!("loaded settings from {}", path.display());
    }
}

pub(crate) fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "warn,identity_core=debug,sample_kit=debug",
        _ => "trace",
    };
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    // Fails only if a subscriber is already installed, which is fine.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour_on(&std::io::stderr()))
        .try_init();
}

/// Colour only on a terminal (never in cron mail, journald or CI logs), and never when `NO_COLOR` is set to
/// anything but the empty string (<https://no-color.org>).
pub(crate) fn colour_on(stream: &impl std::io::IsTerminal) -> bool {
    stream.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

impl std::fmt::Debug for CommonArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = |value: &Option<String>| value.as_deref().map(redact_userinfo);
        f.debug_struct("CommonArgs")
            .field("authority", &url(&self.authority))
            .field("authority_host", &url(&self.authority_host))
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("authority_validation", &self.authority_validation)
            .field("run", &self.run)
            .finish()
    }
}

impl std::fmt::Debug for RunArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The cache setting may be a Redis URL with a password.
        let cache = if self.cache.contains('@') {
            "[redacted URL]"
        } else {
            self.cache.as_str()
        };
        f.debug_struct("RunArgs")
            .field("scope", &self.scope)
            .field(
                "graph_endpoint",
                &self.graph_endpoint.as_deref().map(redact_userinfo),
            )
            .field("extra_ca_certs", &self.extra_ca_certs)
            .field("cache", &cache)
            .field("cache_path", &self.cache_path)
            .field("verbose", &self.verbose)
            .finish()
    }
}

/// Whether a URL has a user-info part (`user:password@`), found by text so that URLs that do not parse count too.
pub(crate) fn has_userinfo(url: &str) -> bool {
    userinfo_span(url).is_some()
}

/// The byte range of `user:password@` in a URL, if any.
fn userinfo_span(url: &str) -> Option<std::ops::Range<usize>> {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..end].rfind('@')?;
    Some(start..start + at + 1)
}

/// The URL with any `user:password@` replaced by `***@`, for display.
pub(crate) fn redact_userinfo(url: &str) -> String {
    match userinfo_span(url) {
        Some(span) => format!("{}***@{}", &url[..span.start], &url[span.end..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod dotenv_tests {
    use super::*;

    #[test]
    fn debug_hides_passwords_in_urls() {
        let args = CommonArgs {
            authority: Some("https://admin:Hunter2pw@login.example/contoso".into()),
            run: RunArgs {
                cache: "redis://:R3dispw@cache.example:6379/0".into(),
                graph_endpoint: Some("https://u:Gr4phpw@graph.example/v1.0/users".into()),
                ..RunArgs::default()
            },
            ..CommonArgs::default()
        };
        let shown = format!("{args:?}");
        for secret in ["Hunter2pw", "R3dispw", "Gr4phpw"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(
            shown.contains("[redacted URL]") && shown.contains("***@"),
            "{shown}"
        );
    }

    #[test]
    fn a_bad_line_is_named_by_number_and_variable_never_by_value() {
        let dir = std::env::temp_dir().join(format!("sample-kit-dotenv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(".env");
        let text = "# settings\nAZURE_CLIENT_ID=x\nexport AZURE_CLIENT_SECRET=\"s3cr3t value\nNOT A LINE\n";
        std::fs::write(&path, text).unwrap();
        let said = describe_bad_line(&path, "export AZURE_CLIENT_SECRET=\"s3cr3t value");
        assert!(said.starts_with("line 3 (AZURE_CLIENT_SECRET): "), "{said}");
        assert!(!said.contains("s3cr3t"));
        assert_eq!(
            describe_bad_line(&path, "NOT A LINE"),
            "line 4: not of the form NAME=value"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_secret_flag_before_a_dash_value_is_found() {
        let args = |a: &[&str]| {
            a.iter()
                .map(std::ffi::OsString::from)
                .collect::<Vec<_>>()
                .into_iter()
        };
        assert_eq!(
            secret_flag_before_dash(args(&["--client-secret", "-Xy~abc"])),
            Some(("--client-secret", "AZURE_CLIENT_SECRET"))
        );
        assert_eq!(secret_flag_before_dash(args(&["--client-secret=-Xy"])), None);
        assert_eq!(secret_flag_before_dash(args(&["--client-id", "-x"])), None);
    }
}
