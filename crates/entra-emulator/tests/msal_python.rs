//! Fidelity with the reference client: MSAL Python 1.39.0 runs our MSAL Python versions of the samples
//! (`crates/entra-emulator/msal-python`) — confidential client
//! (client secret; certificate from a PFX, from a PEM key with a SHA-1 thumbprint, with `x5c`), device code
//! (approved programmatically while it polls) and username/password (on port 443: MSAL drops the authority's
//! port for user realm discovery) — against the emulator, pointed at it only through the authority URL,
//! the CA bundle and `INSTANCE_DISCOVERY=false`.
//!
//! Python comes from `$MSAL_PYTHON` if set, else `<workspace>/target/msal-venv/bin/python`, which is
//! created on first use (`python3 -m venv` + `pip install msal==1.39.0`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use common::{creds, start};
use entra_emulator::{
    DEFAULT_TENANT_DOMAIN, DEMO_PASSWORD, DEMO_USERNAME, DeviceCodeStatus, Emulator, Endpoint,
};
use serde_json::Value;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PYTHON.get_or_init(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target"));
        test_support::msal_python::provision(&target)
    }) {
        Ok(p) => p.clone(),
        Err(e) => panic!("MSAL Python is needed for the fidelity tests and could not be provisioned:\n{e}"),
    }
}

/// Runs an MSAL Python sample against the emulator (off the async runtime, which keeps
/// serving), with `AUTHORITY`, `ENDPOINT` (Graph `/users`), `INSTANCE_DISCOVERY=false`, the CA bundle and
/// `vars`.
async fn run_script(emu: &Emulator, script: &str, authority: &str, vars: &[(&str, String)]) -> Output {
    let dir = test_support::msal_python::samples_dir();
    let script = dir.join(script);
    assert!(script.exists(), "{} not found", script.display());
    let mut cmd = Command::new(python());
    cmd.arg(&script)
        .current_dir(&dir)
        .env("AUTHORITY", authority)
        .env("ENDPOINT", format!("{}/users", emu.graph_base()))
        .env("INSTANCE_DISCOVERY", "false")
        .env("REQUESTS_CA_BUNDLE", emu.ca_path())
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("SCOPE");
    for name in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "CLIENT_SECRET",
        "CERT_PFX_PATH",
        "CERT_PASSPHRASE",
        "CERT_SEND_X5C",
        "CERT_PRIVATE_KEY_PATH",
        "CERT_THUMBPRINT",
        "CERT_PUBLIC_PATH",
        "USERNAME",
        "PASSWORD",
    ] {
        cmd.env_remove(name);
    }
    for (name, value) in vars {
        cmd.env(name, value);
    }
    let run = tokio::task::spawn_blocking(move || cmd.output());
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("MSAL Python finishes")
        .expect("join")
        .expect("python starts")
}

/// Runs the client-secret sample.
async fn run_sample(emu: &Emulator, authority: &str, client_id: &str, secret: &str) -> Output {
    run_script(
        emu,
        "confidential_client_secret_sample.py",
        authority,
        &[
            ("CLIENT_ID", client_id.to_owned()),
            ("CLIENT_SECRET", secret.to_owned()),
        ],
    )
    .await
}

/// Runs the certificate sample for the seeded `daemon-certificate` app with `vars`.
async fn run_certificate_sample(emu: &Emulator, vars: &[(&str, String)]) -> Output {
    let app = emu.app("daemon-certificate").expect("seeded certificate app");
    let mut all = vec![("CLIENT_ID", app.app_id)];
    all.extend(vars.iter().cloned());
    run_script(
        emu,
        "confidential_client_certificate_sample.py",
        &emu.authority(),
        &all,
    )
    .await
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_graph_result(out: &Output, emu: &Emulator) {
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "exit {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        text(&out.stderr)
    );
    let (_, json) = stdout
        .split_once("Graph API call result: ")
        .expect("the sample's result line");
    let users: Value = serde_json::from_str(json.trim_start()).expect("the users JSON");
    let value = users["value"].as_array().expect("value");
    assert_eq!(value.len(), emu.directory().tenants[0].users.len());
    assert_eq!(value[0]["userPrincipalName"], "AdeleV@contoso.onmicrosoft.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msal_python_client_credentials_sample_runs_unchanged_with_the_guid_authority() {
    let emu = start().await;
    let (id, secret) = creds(&emu, "daemon");
    let out = run_sample(&emu, &emu.authority(), &id, &secret).await;
    assert_graph_result(&out, &emu);
    let counts = emu.request_counts();
    assert_eq!(counts.get(Endpoint::OpenIdConfiguration), 1);
    assert_eq!(counts.get(Endpoint::Token), 1);
    assert_eq!(counts.get(Endpoint::Graph), 1);
    assert_eq!(counts.get(Endpoint::InstanceDiscovery), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msal_python_accepts_the_domain_authority() {
    let emu = start().await;
    let (id, secret) = creds(&emu, "daemon");
    let authority = format!("{}/{DEFAULT_TENANT_DOMAIN}", emu.https_url());
    let out = run_sample(&emu, &authority, &id, &secret).await;
    assert_graph_result(&out, &emu);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msal_python_reports_a_wrong_secret_like_the_real_service() {
    let emu = start().await;
    let (id, _) = creds(&emu, "daemon");
    let out = run_sample(&emu, &emu.authority(), &id, "definitely-not-the-secret").await;
    let stdout = text(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.first().copied(), Some("invalid_client"), "{stdout}");
    assert!(
        stdout.contains("AADSTS7000215: Invalid client secret provided."),
        "{stdout}"
    );
    assert!(
        stdout.contains("Trace ID: ") && stdout.contains("Correlation ID: "),
        "{stdout}"
    );
    // The last line is the correlation id MSAL sent as client-request-id, echoed back.
    let correlation = lines.last().copied().unwrap_or_default();
    assert!(uuid::Uuid::parse_str(correlation).is_ok(), "{stdout}");
    assert!(stdout.contains(&format!("Correlation ID: {correlation}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msal_python_reports_an_expired_secret() {
    let emu = start().await;
    let (id, secret) = creds(&emu, "expired-secret");
    let out = run_sample(&emu, &emu.authority(), &id, &secret).await;
    let stdout = text(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.starts_with("invalid_client\nAADSTS7000222: "), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msal_python_certificate_sample_with_a_pfx_uses_ps256() {
    let emu = start().await;
    let files = emu.certificate_files("daemon-certificate").expect("files");
    let out = run_certificate_sample(
        &emu,
        &[
            ("CERT_PFX_PATH", files.pfx_path.display().to_string()),
            ("CERT_PASSPHRASE", files.pfx_password.clone()),
        ],
    )
    .await;
    assert_graph_result(&out, &emu);
    let counts = emu.request_counts();
    assert_eq!(counts.get(Endpoint::Token), 1);
    assert_eq!(counts.get(Endpoint::Graph), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msal_python_certificate_sample_with_a_pem_key_and_sha1_thumbprint_uses_rs256() {
    let emu = start().await;
    let files = emu.certificate_files("daemon-certificate").expect("files");
    let out = run_certificate_sample(
        &emu,
        &[
            ("CERT_PRIVATE_KEY_PATH", files.key_path.display().to_string()),
            ("CERT_THUMBPRINT", files.thumbprint_sha1.clone()),
        ],
    )
    .await;
    assert_graph_result(&out, &emu);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msal_python_certificate_sample_with_a_pfx_sends_x5c() {
    let emu = start().await;
    let files = emu.certificate_files("daemon-certificate").expect("files");
    let out = run_certificate_sample(
        &emu,
        &[
            ("CERT_PFX_PATH", files.pfx_path.display().to_string()),
            ("CERT_PASSPHRASE", files.pfx_password.clone()),
            ("CERT_SEND_X5C", "1".to_owned()),
        ],
    )
    .await;
    assert_graph_result(&out, &emu);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msal_python_certificate_sample_with_a_pem_key_and_public_certificate_uses_ps256_and_x5c() {
    let emu = start().await;
    let files = emu.certificate_files("daemon-certificate").expect("files");
    let out = run_certificate_sample(
        &emu,
        &[
            ("CERT_PRIVATE_KEY_PATH", files.key_path.display().to_string()),
            ("CERT_PUBLIC_PATH", files.cert_path.display().to_string()),
        ],
    )
    .await;
    assert_graph_result(&out, &emu);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msal_python_reports_an_unregistered_certificate_like_the_real_service() {
    let emu = start().await;
    let files = emu.certificate_files("daemon-certificate").expect("files");
    // The right key, but a thumbprint of no registered certificate.
    let out = run_certificate_sample(
        &emu,
        &[
            ("CERT_PRIVATE_KEY_PATH", files.key_path.display().to_string()),
            (
                "CERT_THUMBPRINT",
                "84E05C1D98BCE3A5421D225B140B36E86A3D5534".to_owned(),
            ),
        ],
    )
    .await;
    let stdout = text(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.starts_with(
            "invalid_client\nAADSTS700027: The certificate with identifier used to sign the client assertion is \
             not registered on application. [Reason - The key was not found., Thumbprint of key used by client: \
             '84E05C1D98BCE3A5421D225B140B36E86A3D5534', "
        ),
        "{stdout}\n{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msal_python_device_flow_sample_completes_when_the_code_is_approved() {
    let emu = Emulator::builder()
        .device_code_interval(1)
        .start()
        .await
        .expect("emulator starts");
    let app = emu.app("device-code").expect("seeded public client");
    let authority = emu.authority();
    let vars = [
        ("CLIENT_ID", app.app_id.clone()),
        ("ENDPOINT", format!("{}/me", emu.graph_base())),
    ];
    let sample = run_script(&emu, "device_flow_sample.py", &authority, &vars);
    let approve = async {
        let code = emu
            .wait_for_device_code(Duration::from_secs(60))
            .await
            .expect("the sample asks for a device code");
        // Let it poll at least once while pending.
        while emu.device_codes()[0].poll_count == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        emu.approve_device_code(&code.user_code, DEMO_USERNAME)
            .expect("approve");
        code
    };
    let (out, code) = tokio::join!(sample, approve);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "exit {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        text(&out.stderr)
    );
    assert!(
        stdout.starts_with(&format!(
            "To sign in, use a web browser to open the page {} and enter the code {} to authenticate.",
            emu.verification_uri(),
            code.user_code
        )),
        "{stdout}"
    );
    let (_, json) = stdout
        .split_once("Graph API call result: ")
        .expect("the sample's result line");
    let me: Value = serde_json::from_str(json).expect("the /me JSON");
    assert_eq!(me["userPrincipalName"], DEMO_USERNAME);
    let info = &emu.device_codes()[0];
    assert_eq!(info.status, DeviceCodeStatus::Redeemed);
    assert!(info.poll_count >= 2, "polled while pending, then redeemed");
    assert_eq!(info.scopes, ["User.Read", "offline_access", "openid", "profile"]);
    let counts = emu.request_counts();
    assert_eq!(counts.get(Endpoint::DeviceCode), 1);
    assert_eq!(counts.get(Endpoint::Graph), 1);
}

/// Runs the username/password sample for the seeded `username-password` app.
async fn run_ropc_sample(emu: &Emulator, username: String, password: String) -> Output {
    let app = emu.app("username-password").expect("seeded public client");
    let vars = [
        ("CLIENT_ID", app.app_id),
        ("USERNAME", username),
        ("PASSWORD", password),
        ("SCOPE", "User.ReadBasic.All".to_owned()),
    ];
    run_script(emu, "username_password_sample.py", &emu.authority(), &vars).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msal_python_username_password_sample_runs_against_port_443() {
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], 443).into();
    let emu = match Emulator::builder().bind(addr).start().await {
        Ok(emu) => emu,
        Err(e) => panic!(
            "MSAL Python drops the authority's port when it calls /common/userrealm, so this test needs the \
             emulator on 127.0.0.1:443 and could not bind it: {e}\nFix: run the tests as root (or grant \
             CAP_NET_BIND_SERVICE) and make sure nothing else listens on port 443."
        ),
    };
    let run =
        |username: &str, password: &str| run_ropc_sample(&emu, username.to_owned(), password.to_owned());
    let out = run(DEMO_USERNAME, DEMO_PASSWORD).await;
    assert_graph_result(&out, &emu);
    let counts = emu.request_counts();
    assert_eq!(
        counts.get(Endpoint::UserRealm),
        1,
        "MSAL asked for the user realm"
    );
    assert_eq!(counts.get(Endpoint::Token), 1);

    let out = run(DEMO_USERNAME, "wrong password").await;
    let stdout = text(&out.stdout);
    assert!(!out.status.success());
    assert!(
        stdout.starts_with(
            "invalid_grant\nAADSTS50126: Error validating credentials due to invalid username or password."
        ),
        "{stdout}"
    );

    let mfa = emu.directory().tenants[0]
        .user("mfa.user@contoso.onmicrosoft.com")
        .expect("seeded")
        .clone();
    let out = run(&mfa.user_principal_name, &mfa.password).await;
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("invalid_grant\nAADSTS50076: "), "{stdout}");

    let nc = emu.directory().tenants[0]
        .user("no.consent@contoso.onmicrosoft.com")
        .expect("seeded")
        .clone();
    let out = run(&nc.user_principal_name, &nc.password).await;
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("invalid_grant\nAADSTS65001: "), "{stdout}");
    assert!(
        stdout.contains("Visit this to consent:"),
        "the sample's consent hint: {stdout}"
    );
}

/// Runs the interactive sample with its browser replaced by `_page_browser.py`, which drives the emulator's
/// sign-in page over HTTP as `DEMO_USERNAME` and then accepts or cancels the consent page (`action`).
async fn run_interactive_sample(emu: &Emulator, action: &str) -> Output {
    let app = emu.app("interactive").expect("seeded interactive app");
    let vars = [
        ("CLIENT_ID", app.app_id.clone()),
        ("ENDPOINT", format!("{}/me", emu.graph_base())),
        ("SIGN_IN_USERNAME", DEMO_USERNAME.to_owned()),
        ("SIGN_IN_PASSWORD", DEMO_PASSWORD.to_owned()),
        ("SIGN_IN_ACTION", action.to_owned()),
        ("TIMEOUT", "60".to_owned()),
    ];
    run_script(emu, "_page_browser.py", &emu.authority(), &vars).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msal_python_acquire_token_interactive_completes_through_the_sign_in_page() {
    let emu = start().await;
    let out = run_interactive_sample(&emu, "accept").await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success(),
        "exit {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    // MSAL's request went through every page: sign-in, consent, and the form_post page to its listener.
    for page in [
        "page: Sign in to your account",
        "page: Permissions requested",
        "page: Working...",
    ] {
        assert!(stderr.contains(page), "{page} not seen:\n{stderr}");
    }
    let (_, json) = stdout
        .split_once("Graph API call result: ")
        .expect("the sample's result line");
    let me: Value = serde_json::from_str(json).expect("the /me JSON");
    assert_eq!(me["userPrincipalName"], DEMO_USERNAME);
    let counts = emu.request_counts();
    assert_eq!(counts.get(Endpoint::Token), 1, "one code redemption");
    assert_eq!(counts.get(Endpoint::Graph), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msal_python_acquire_token_interactive_reports_a_cancelled_consent() {
    let emu = start().await;
    let out = run_interactive_sample(&emu, "decline").await;
    let stdout = text(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.starts_with("access_denied\nAADSTS65004: User declined to consent to access the app."),
        "{stdout}\nstderr:\n{}",
        text(&out.stderr)
    );
    assert_eq!(emu.request_counts().get(Endpoint::Token), 0);
}
