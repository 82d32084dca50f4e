//! `cargo run -p entra-emulator -- [--port N] [--http-port N] [--host H] [--state DIR] [--describe [FILE]]
//! [--device-code-interval S] [--slow-down-polls N] [--auto-approve USER [--auto-approve-delay S]]
//! [--workload-token-file FILE [--workload-token-lifetime S]] [--rtt-ms N]`
//!
//! Starts the emulator, optionally writes its self-description, prints a summary (authority, Graph base,
//! CA file, client and object ids, secrets and certificate files, how to point our Rust samples, MSAL Python
//! and curl at it) and runs until Ctrl-C (or SIGTERM).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use entra_emulator::{Emulator, EmulatorBuilder};

/// A local emulator of the Microsoft identity platform (Entra ID v2.0) and Microsoft Graph.
#[derive(Debug, Parser)]
#[command(name = "entra-emulator", version, about)]
struct Args {
    /// HTTPS port (0 = a random free port).
    #[arg(long, env = "ENTRA_EMULATOR_PORT", default_value_t = 8443)]
    port: u16,
    /// Also serve plain HTTP on this port (0 = random). MSAL refuses http authorities.
    #[arg(long, env = "ENTRA_EMULATOR_HTTP_PORT")]
    http_port: Option<u16>,
    /// Address or host name to listen on.
    #[arg(long, env = "ENTRA_EMULATOR_HOST", default_value = "127.0.0.1")]
    host: String,
    /// Keep the CA, the token-signing key, the directory (with its secrets) and the seeded certificates here
    /// across restarts.
    #[arg(long, env = "ENTRA_EMULATOR_STATE")]
    state: Option<PathBuf>,
    /// Write the machine-readable self-description (JSON with the secrets, mode 0600) to FILE; without FILE, to
    /// emulator.json in the state directory (or in the temporary directory removed at exit).
    #[arg(long, env = "ENTRA_EMULATOR_DESCRIBE", value_name = "FILE", num_args = 0..=1)]
    describe: Option<Option<PathBuf>>,
    /// Refuse a client assertion used a second time (its `jti`). Off by default, like the real service, which
    /// accepts the reuse MSAL practises for several minutes.
    #[arg(long, env = "ENTRA_EMULATOR_REJECT_ASSERTION_REPLAY")]
    reject_assertion_replay: bool,
    /// `interval` of device codes, in seconds (how long clients wait between polls).
    #[arg(long, env = "ENTRA_EMULATOR_DEVICE_CODE_INTERVAL", default_value_t = 5)]
    device_code_interval: u64,
    /// Answer the first N polls of each pending device code with `slow_down` (Entra is not known to).
    #[arg(long, env = "ENTRA_EMULATOR_SLOW_DOWN_POLLS", default_value_t = 0)]
    slow_down_polls: u32,
    /// Approve every device code as this user (user principal name), as if they had signed in on the page.
    #[arg(long, env = "ENTRA_EMULATOR_AUTO_APPROVE", value_name = "USERNAME")]
    auto_approve: Option<String>,
    /// Seconds after issue at which `--auto-approve` approves a code.
    #[arg(
        long,
        env = "ENTRA_EMULATOR_AUTO_APPROVE_DELAY",
        default_value_t = 0,
        requires = "auto_approve"
    )]
    auto_approve_delay: u64,
    /// Write a service-account token of the emulator's own issuer (the seeded `workload` app's federated
    /// credential trusts it) to FILE, and rotate it at 80 % of its lifetime, as the kubelet does a projected
    /// token: point AZURE_FEDERATED_TOKEN_FILE at it.
    #[arg(long, env = "ENTRA_EMULATOR_WORKLOAD_TOKEN_FILE", value_name = "FILE")]
    workload_token_file: Option<PathBuf>,
    /// Lifetime of the tokens written to `--workload-token-file`, in seconds (Kubernetes' default: 3600).
    #[arg(
        long,
        env = "ENTRA_EMULATOR_WORKLOAD_TOKEN_LIFETIME",
        default_value_t = 3600,
        requires = "workload_token_file"
    )]
    workload_token_lifetime: u64,
    /// Simulate a network with this round-trip time, in milliseconds: each new connection waits 2 × RTT (TCP and
    /// TLS handshakes), each answer 1 × RTT.
    #[arg(long, env = "ENTRA_EMULATOR_RTT_MS", default_value_t = 0, value_name = "MS")]
    rtt_ms: u64,
}

async fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    let mut addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    addrs
        .next()
        .ok_or_else(|| format!("{host} resolves to no address"))
}

/// Quotes a value for a POSIX shell command line when it needs it.
fn q(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(&b));
    if plain {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// ` NAME=value` for each pair, quoted for the shell.
fn assignments(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| format!(" {name}={}", q(value)))
        .collect()
}

fn summary(emulator: &Emulator) -> String {
    let d = emulator.description();
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line("Entra emulator running (Ctrl-C to stop)".to_owned());
    line(format!("  authority        {}", d.authority));
    line(format!("  authority host   {}", d.authority_host));
    if let Some(http) = &d.http_url {
        line(format!("  plain HTTP       {http}"));
    }
    line(format!("  Graph base       {}", d.graph_base_url));
    line(format!("  CA certificate   {}", d.ca_file));
    line(format!("  device sign-in   {}", d.verification_uri));
    line(format!("  signing key id   {}", d.signing_key_id));
    if let Some(demo) = &d.demo_user {
        line(format!(
            "  demo user        {} (password {})",
            demo.username, demo.password
        ));
    }
    for t in &d.tenants {
        line(format!(
            "  tenant           {} ({}, {})",
            t.id,
            t.domains.join(", "),
            t.display_name
        ));
        for a in &t.apps {
            let credential = match (&a.client_secret, a.certificates.first()) {
                (Some(secret), _) => format!("secret {secret}"),
                (None, Some(cert)) => format!("certificate {}", cert.thumbprint_sha1),
                (None, None) => "(no valid secret)".to_owned(),
            };
            line(format!(
                "    app {:<18} client id {}  object id {}  {credential}",
                a.name, a.client_id, a.object_id
            ));
            for files in a.certificates.iter().filter_map(|c| c.files.as_ref()) {
                line(format!(
                    "      key + certificate {}  PFX {} (password {})",
                    files.pem, files.pfx, files.pfx_password
                ));
            }
            for uri in &a.public_client_redirect_uris {
                line(format!(
                    "      redirect URI {uri} (Mobile and desktop applications)"
                ));
            }
            for uri in &a.web_redirect_uris {
                line(format!("      redirect URI {uri} (Web)"));
            }
        }
        line(format!(
            "    {} users, e.g. {}",
            t.users.len(),
            t.users
                .first()
                .map(|u| u.user_principal_name.as_str())
                .unwrap_or("-")
        ));
    }
    let app = |name: &str| {
        d.tenants
            .first()
            .and_then(|t| t.apps.iter().find(|a| a.name == name))
    };
    let (ca, graph) = (q(&d.ca_file), &d.graph_base_url);
    // Rust samples: the authority, the CA and a Graph URL on the emulator (without GRAPH_ENDPOINT the token
    // would go to graph.microsoft.com).
    let rust = |client_id: &str, path: &str, credential: &[(&str, &str)], package: &str| {
        format!(
            "  AUTHORITY={} AZURE_CLIENT_ID={client_id}{} IDENTITY_EXTRA_CA_CERTS={ca} \
             GRAPH_ENDPOINT={graph}/{path} cargo run -p {package}",
            q(&d.authority),
            assignments(credential)
        )
    };
    let python = |client_id: &str, path: &str, credential: &[(&str, &str)], script: &str| {
        format!(
            "  REQUESTS_CA_BUNDLE={ca} INSTANCE_DISCOVERY=false AUTHORITY={} CLIENT_ID={client_id}{} \
             ENDPOINT={graph}/{path} python {script}",
            q(&d.authority),
            assignments(credential)
        )
    };
    let secret_app = app("daemon").filter(|a| a.client_secret.is_some());
    let held = app("daemon-certificate").and_then(|a| {
        a.certificates
            .iter()
            .find_map(|c| c.files.as_ref())
            .map(|files| (a, files))
    });
    let user_apps = match (app("device-code"), app("username-password"), &d.demo_user) {
        (Some(device), Some(ropc), Some(demo)) => Some((device, ropc, demo)),
        _ => None,
    };

    line(String::new());
    line("Our Rust samples (from the repository root):".to_owned());
    if let Some(a) = secret_app {
        let secret = a.client_secret.as_deref().unwrap_or_default();
        line(rust(
            &a.client_id,
            "users",
            &[("AZURE_CLIENT_SECRET", secret)],
            "daemon-secret",
        ));
    }
    if let Some((a, files)) = held {
        line(rust(
            &a.client_id,
            "users",
            &[
                ("AZURE_CLIENT_CERTIFICATE_PATH", &files.pfx),
                ("AZURE_CLIENT_CERTIFICATE_PASSWORD", &files.pfx_password),
            ],
            "daemon-certificate",
        ));
    }
    if let Some((device, ropc, demo)) = user_apps {
        line(rust(&device.client_id, "me", &[], "device-code"));
        line(rust(
            &ropc.client_id,
            "users",
            &[
                ("AZURE_USERNAME", &demo.username),
                ("AZURE_PASSWORD", &demo.password),
            ],
            "username-password",
        ));
    }

    let interactive = app("interactive");
    if let Some(a) = interactive {
        line(rust(&a.client_id, "me", &[], "interactive"));
    }
    line(String::new());
    line("MSAL Python (in crates/entra-emulator/msal-python, with msal==1.39.0):".to_owned());
    if let Some(a) = secret_app {
        let secret = a.client_secret.as_deref().unwrap_or_default();
        line(python(
            &a.client_id,
            "users",
            &[("CLIENT_SECRET", secret)],
            "confidential_client_secret_sample.py",
        ));
    }
    if let Some((a, files)) = held {
        line(python(
            &a.client_id,
            "users",
            &[
                ("CERT_PFX_PATH", &files.pfx),
                ("CERT_PASSPHRASE", &files.pfx_password),
            ],
            "confidential_client_certificate_sample.py",
        ));
    }
    if let Some((device, ropc, demo)) = user_apps {
        line(python(&device.client_id, "me", &[], "device_flow_sample.py"));
        line("  (username/password: MSAL drops the port for user realm discovery, so run the emulator with --port 443)".to_owned());
        line(python(
            &ropc.client_id,
            "users",
            &[
                ("USERNAME", &demo.username),
                ("PASSWORD", &demo.password),
                ("SCOPE", "User.ReadBasic.All"),
            ],
            "username_password_sample.py",
        ));
    }
    if let Some(a) = interactive {
        line(python(&a.client_id, "me", &[], "interactive_sample.py"));
    }
    if let Some(a) = secret_app {
        let secret = a.client_secret.as_deref().unwrap_or_default();
        line(String::new());
        line("curl:".to_owned());
        line(format!(
            "  TOKEN=$(curl -s --cacert {ca} {}/oauth2/v2.0/token -d grant_type=client_credentials -d client_id={} \
             --data-urlencode client_secret={} --data-urlencode scope=https://graph.microsoft.com/.default | \
             python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')",
            q(&d.authority),
            a.client_id,
            q(secret)
        ));
        line(format!(
            "  curl -s --cacert {ca} -H \"Authorization: Bearer $TOKEN\" {graph}/users"
        ));
        line(format!(
            "  curl -s --cacert {ca} -H \"Authorization: Bearer $TOKEN\" {graph}/applications/{}   (the app's object id)",
            a.object_id
        ));
    }
    out
}

/// Ctrl-C, or (Unix) SIGTERM as sent by `kill` and service managers: both stop cleanly, so a temporary state
/// directory (with secrets in it) is removed.
async fn stop_requested() -> Result<(), String> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term =
            signal(SignalKind::terminate()).map_err(|e| format!("cannot wait for SIGTERM: {e}"))?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.map_err(|e| format!("cannot wait for Ctrl-C: {e}")),
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| format!("cannot wait for Ctrl-C: {e}"))
}

async fn run(args: Args) -> Result<(), String> {
    let mut builder: EmulatorBuilder = Emulator::builder().bind(resolve(&args.host, args.port).await?);
    if let Some(port) = args.http_port {
        builder = builder.http_bind(resolve(&args.host, port).await?);
    }
    if let Some(dir) = &args.state {
        builder = builder.state_dir(dir.clone());
    }
    builder = builder
        .reject_replayed_assertions(args.reject_assertion_replay)
        .device_code_interval(args.device_code_interval)
        .slow_down_polls(args.slow_down_polls);
    if let Some(username) = &args.auto_approve {
        builder = builder.auto_approve_device_codes(
            username.clone(),
            std::time::Duration::from_secs(args.auto_approve_delay),
        );
    }
    if args.rtt_ms > 0 {
        builder = builder.simulated_rtt(std::time::Duration::from_millis(args.rtt_ms));
    }
    let emulator = builder.start().await.map_err(|e| e.to_string())?;
    let description = args.describe.map(|path| {
        // A bare --describe keeps the secrets out of the working directory (often a repository).
        path.unwrap_or_else(|| emulator.default_description_path())
    });
    if let Some(path) = &description {
        emulator
            .write_description(path)
            .map_err(|e| format!("cannot write the description to {}: {e}", path.display()))?;
    }
    // Kept alive (rotating) until the emulator stops.
    let projected = match &args.workload_token_file {
        Some(path) => Some(
            emulator
                .project_workload_token(
                    path.clone(),
                    std::time::Duration::from_secs(args.workload_token_lifetime),
                )
                .map_err(|e| format!("cannot write the workload token file: {e}"))?,
        ),
        None => None,
    };
    // The deliberate startup summary is the only place secrets are printed.
    print!("{}", summary(&emulator));
    if let Some(projected) = &projected {
        println!(
            "\nWorkload token (issuer {}) written to {}, rotated every {} s; run the workload-identity sample with\n  \
             AUTHORITY={} AZURE_CLIENT_ID={} AZURE_FEDERATED_TOKEN_FILE={} IDENTITY_EXTRA_CA_CERTS={} \
             GRAPH_ENDPOINT={}/users cargo run -p workload-identity",
            emulator.workload_issuer(),
            projected.path().display(),
            args.workload_token_lifetime * 4 / 5,
            q(&emulator.authority()),
            emulator.app("workload").map(|a| a.app_id).unwrap_or_default(),
            q(&projected.path().display().to_string()),
            q(&emulator.ca_path().display().to_string()),
            emulator.graph_base(),
        );
    }
    if let Some(path) = &description {
        println!("\nSelf-description written to {}", path.display());
    }
    stop_requested().await?;
    println!("Stopping.");
    emulator.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("entra-emulator: {e}");
            ExitCode::FAILURE
        }
    }
}
