//! The daemon-secret binary, run as a user would: configured by environment, `.env` or flags, or not at all.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

use entra_emulator::Emulator;

#[path = "../../tests-common/mod.rs"]
mod common;

use common::{closed_port, graph_result, temp_dir as temp, text};

const BIN: &str = env!("CARGO_BIN_EXE_daemon-secret");

async fn run(dir: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    common::run(BIN, dir, env, args).await
}

fn temp_dir() -> std::path::PathBuf {
    temp("daemon-secret-test")
}

struct External {
    emu: Emulator,
    client_id: String,
    secret: String,
    ca: String,
}

async fn external(app: &str) -> External {
    let emu = Emulator::builder().start().await.unwrap();
    let registration = emu.app(app).unwrap();
    External {
        client_id: registration.app_id.clone(),
        secret: registration.secrets[0].value.clone(),
        ca: emu.ca_path().display().to_string(),
        emu,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_nothing_configured_it_runs_against_the_embedded_emulator() {
    let dir = temp_dir();
    let out = run(&dir, &[], &[]).await;
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        text(&out.stderr)
    );
    let first_line = stdout.lines().next().unwrap();
    assert!(
        first_line.contains("embedded Entra emulator at https://127.0.0.1:"),
        "{first_line}"
    );
    assert!(stdout.contains("Could not find a cached token, so fetching a new one."));
    let users = graph_result(&stdout);
    assert!(!users["value"].as_array().unwrap().is_empty());
    assert!(
        users["value"][0]["userPrincipalName"]
            .as_str()
            .unwrap()
            .contains('@')
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn configured_by_environment_it_uses_the_tenant_and_trusts_the_extra_ca() {
    let ext = external("daemon").await;
    let dir = temp_dir();
    let out = run(
        &dir,
        &[
            ("AZURE_AUTHORITY_HOST", &ext.emu.https_url()),
            ("AZURE_TENANT_ID", &ext.emu.tenant_domain()),
            ("AZURE_CLIENT_ID", &ext.client_id),
            ("AZURE_CLIENT_SECRET", &ext.secret),
            ("GRAPH_ENDPOINT", &format!("{}/users", ext.emu.graph_base())),
            ("IDENTITY_EXTRA_CA_CERTS", &ext.ca),
        ],
        &[],
    )
    .await;
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        text(&out.stderr)
    );
    assert!(
        !stdout.contains("emulator"),
        "configured runs do not start the embedded emulator"
    );
    assert!(stdout.starts_with("Could not find a cached token"));
    let users = graph_result(&stdout);
    assert_eq!(
        users["value"].as_array().unwrap().len(),
        ext.emu.directory().tenants[0].users.len().min(100)
    );
    assert_eq!(ext.emu.request_counts().get(entra_emulator::Endpoint::Token), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dotenv_file_configures_it_and_the_real_environment_wins() {
    let ext = external("daemon").await;
    let app = ext.emu.app("daemon").unwrap();
    let dir = temp_dir();
    std::fs::write(
        dir.join(".env"),
        format!(
            "# quickstart style\nAUTHORITY={}\nAZURE_CLIENT_ID={}\nAZURE_CLIENT_SECRET=\"{}\"\nGRAPH_ENDPOINT={}/users\nIDENTITY_EXTRA_CA_CERTS={}\n",
            ext.emu.authority(),
            ext.client_id,
            ext.secret,
            ext.emu.graph_base(),
            ext.ca
        ),
    )
    .unwrap();
    let application = format!("{}/applications/{}", ext.emu.graph_base(), app.object_id);
    let out = run(&dir, &[("GRAPH_ENDPOINT", &application)], &[]).await;
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        text(&out.stderr)
    );
    assert_eq!(
        graph_result(&stdout)["appId"],
        app.app_id.as_str(),
        "GRAPH_ENDPOINT from the environment won"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn flags_override_the_environment() {
    let ext = external("daemon").await;
    let dir = temp_dir();
    let out = run(
        &dir,
        &[
            (
                "AUTHORITY",
                "https://login.microsoftonline.com/contoso.onmicrosoft.com",
            ),
            ("AZURE_CLIENT_ID", &ext.client_id),
            ("AZURE_CLIENT_SECRET", "wrong"),
        ],
        &[
            "--authority",
            &ext.emu.authority(),
            "--client-secret",
            &ext.secret,
            "--extra-ca-certs",
            &ext.ca,
            "--graph-endpoint",
            &format!("{}/users", ext.emu.graph_base()),
        ],
    )
    .await;
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partial_configuration_is_refused_naming_each_missing_variable() {
    let dir = temp_dir();
    let out = run(
        &dir,
        &[("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000001")],
        &[],
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr
            .contains("AZURE_TENANT_ID (or AUTHORITY): app registration > Overview > Directory (tenant) ID"),
        "{stderr}"
    );
    assert!(
        stderr.contains("AZURE_CLIENT_SECRET: app registration > Certificates & secrets"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("AZURE_CLIENT_ID:"),
        "the client id is set: {stderr}"
    );
    assert!(stderr.contains("docs/daemon-secret.md"));
    assert!(text(&out.stdout).is_empty(), "no emulator, no output");

    let out = run(&dir, &[("AZURE_CLIENT_SECRET", "s")], &[]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("AZURE_CLIENT_ID: app registration > Overview > Application (client) ID"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_settings_are_refused_with_the_setting_named() {
    let dir = temp_dir();
    let base = [
        ("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000001"),
        ("AZURE_CLIENT_SECRET", "s"),
    ];
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("AUTHORITY", "http://login.microsoftonline.com/contoso.com")],
            "AUTHORITY: invalid authority 'http://login.microsoftonline.com/contoso.com': plain http is only allowed for loopback hosts (127.0.0.1, ::1, localhost); use https\n",
        ),
        (
            &[("AUTHORITY", "login.microsoftonline.com/contoso.com")],
            "AUTHORITY: invalid authority",
        ),
        (
            &[(
                "AUTHORITY",
                "https://login.microsoftonline.com/contoso.com/oauth2/v2.0/token",
            )],
            "exactly one path segment",
        ),
        (
            &[("AZURE_TENANT_ID", "not a tenant!")],
            "AZURE_TENANT_ID: invalid tenant 'not a tenant!'",
        ),
        (
            &[
                ("AZURE_TENANT_ID", "contoso.com"),
                ("AZURE_AUTHORITY_HOST", "not a url"),
            ],
            "AZURE_AUTHORITY_HOST: invalid authority",
        ),
        (
            &[
                ("AZURE_TENANT_ID", "contoso.com"),
                ("GRAPH_ENDPOINT", "not a url"),
            ],
            "GRAPH_ENDPOINT: invalid URL",
        ),
        (
            &[
                ("AZURE_TENANT_ID", "contoso.com"),
                ("GRAPH_ENDPOINT", "http://graph.microsoft.com/v1.0/users"),
            ],
            "GRAPH_ENDPOINT: refusing plain http",
        ),
        (
            &[("AZURE_TENANT_ID", "contoso.com"), ("SCOPE", "  ")],
            "SCOPE: no scope given",
        ),
        (
            &[
                ("AZURE_TENANT_ID", "contoso.com"),
                ("IDENTITY_EXTRA_CA_CERTS", "/nonexistent/ca.pem"),
            ],
            "IDENTITY_EXTRA_CA_CERTS: cannot use the CA certificates in '/nonexistent/ca.pem'",
        ),
    ];
    for (extra, expected) in cases {
        let env: Vec<(&str, &str)> = base.iter().chain(extra.iter()).copied().collect();
        let out = run(&dir, &env, &[]).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{extra:?}: expected '{expected}' in:\n{stderr}"
        );
        assert_eq!(
            stderr.matches(expected.trim_end()).count(),
            1,
            "said once: {stderr}"
        );
        assert!(
            stderr.contains("fix:") || expected.contains("GRAPH_ENDPOINT: invalid URL"),
            "{extra:?} has a fix: {stderr}"
        );
    }

    std::fs::write(dir.join(".env"), "THIS LINE IS NOT VALID\n").unwrap();
    let out = run(&dir, &base, &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(&format!(
            "cannot read {}: line 1: not of the form NAME=value",
            dir.join(".env").display()
        )),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_secret_exits_3_with_code_correlation_id_and_fix() {
    let ext = external("daemon").await;
    let dir = temp_dir();
    let out = run(
        &dir,
        &[
            ("AUTHORITY", &ext.emu.authority()),
            ("AZURE_CLIENT_ID", &ext.client_id),
            ("AZURE_CLIENT_SECRET", "wrong-value"),
            ("IDENTITY_EXTRA_CA_CERTS", &ext.ca),
        ],
        &[],
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("invalid_client (HTTP 401): AADSTS7000215: Invalid client secret provided."),
        "{stderr}"
    );
    assert!(stderr.contains("code:           AADSTS7000215"), "{stderr}");
    assert!(stderr.contains("correlation id: "), "{stderr}");
    assert!(
        stderr.contains("fix:            Use the client secret's Value, not its Secret ID"),
        "{stderr}"
    );
    assert!(
        stderr.contains("setting:        AZURE_CLIENT_SECRET (--client-secret)"),
        "the sample names its variable: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_graph_permission_exits_4_with_the_admin_consent_fix() {
    let ext = external("no-permissions").await;
    let dir = temp_dir();
    let out = run(
        &dir,
        &[
            ("AUTHORITY", &ext.emu.authority()),
            ("AZURE_CLIENT_ID", &ext.client_id),
            ("AZURE_CLIENT_SECRET", &ext.secret),
            ("IDENTITY_EXTRA_CA_CERTS", &ext.ca),
            ("GRAPH_ENDPOINT", &format!("{}/users", ext.emu.graph_base())),
        ],
        &[],
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("Authorization_RequestDenied"), "{stderr}");
    assert!(stderr.contains("request id:"), "{stderr}");
    assert!(stderr.contains("Grant admin consent"), "{stderr}");
    // The quickstart's "Admin consent" step, for a non-admin to hand to an administrator.
    let consent = format!(
        "admin consent:  {}/{}/adminconsent?client_id={}\n",
        ext.emu.https_url(),
        ext.emu.tenant_id(),
        ext.client_id
    );
    assert!(stderr.contains(&consent), "expected {consent} in:\n{stderr}");
    // Long labels keep a space before their value.
    assert!(
        !stderr.contains("client request id:") || stderr.contains("client request id: "),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_authority_exits_5() {
    let port = closed_port();
    let dir = temp_dir();
    let out = run(
        &dir,
        &[
            ("AUTHORITY", &format!("https://127.0.0.1:{port}/contoso.com")),
            ("AZURE_CLIENT_ID", "id"),
            ("AZURE_CLIENT_SECRET", "s"),
        ],
        &[],
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("could not reach"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_and_tokens_never_appear_even_at_trace_level() {
    let ext = external("daemon").await;
    let dir = temp_dir();
    let graph = format!("{}/users", ext.emu.graph_base());
    let mut outputs = Vec::new();
    for secret in [ext.secret.as_str(), "Wrong~Secret.Value_0123456789abcdefghij"] {
        for verbosity in [("RUST_LOG", "trace"), ("RUST_LOG", "")] {
            let out = run(
                &dir,
                &[
                    ("AUTHORITY", &ext.emu.authority()),
                    ("AZURE_CLIENT_ID", &ext.client_id),
                    ("AZURE_CLIENT_SECRET", secret),
                    ("IDENTITY_EXTRA_CA_CERTS", &ext.ca),
                    ("GRAPH_ENDPOINT", &graph),
                    verbosity,
                ],
                &["-vv"],
            )
            .await;
            outputs.push((secret, text(&out.stdout) + &text(&out.stderr)));
        }
    }
    assert!(outputs[0].1.contains("TRACE"), "trace logging is on");
    assert!(outputs[0].1.contains("Graph API call result"));
    for (secret, output) in &outputs {
        assert!(!output.contains(secret), "the secret leaked:\n{output}");
        assert!(
            !output.contains("eyJ0eXAi") && !output.contains("eyJhbGci"),
            "a token leaked:\n{output}"
        );
        assert!(
            !output.contains("client_secret="),
            "the request body leaked:\n{output}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn help_documents_every_setting_and_hides_the_secret_value() {
    let dir = temp_dir();
    let out = run(
        &dir,
        &[("AZURE_CLIENT_SECRET", "super-secret-value")],
        &["--help"],
    )
    .await;
    let help = text(&out.stdout);
    assert!(out.status.success());
    for variable in [
        "AUTHORITY",
        "AZURE_AUTHORITY_HOST",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "SCOPE",
        "GRAPH_ENDPOINT",
        "IDENTITY_EXTRA_CA_CERTS",
        "Exit codes",
    ] {
        assert!(help.contains(variable), "--help mentions {variable}:\n{help}");
    }
    assert!(!help.contains("super-secret-value"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_stdout_ends_the_run_quietly() {
    let ext = external("daemon").await;
    let dir = temp_dir();
    let env = [
        ("AUTHORITY", ext.emu.authority()),
        ("AZURE_CLIENT_ID", ext.client_id.clone()),
        ("AZURE_CLIENT_SECRET", ext.secret.clone()),
        ("GRAPH_ENDPOINT", format!("{}/users", ext.emu.graph_base())),
        ("IDENTITY_EXTRA_CA_CERTS", ext.ca.clone()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // As in `daemon-secret | head -0`: the reader is gone before the sample writes.
    let mut child = common::command(BIN, &dir, &env, &[])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(141), "stderr: {}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("panicked"), "{}", text(&out.stderr));
}

/// The environment of a run configured for `ext`'s daemon app.
fn configured(ext: &External) -> Vec<(&'static str, String)> {
    vec![
        ("AUTHORITY", ext.emu.authority()),
        ("AZURE_CLIENT_ID", ext.client_id.clone()),
        ("AZURE_CLIENT_SECRET", ext.secret.clone()),
        ("GRAPH_ENDPOINT", format!("{}/users", ext.emu.graph_base())),
        ("IDENTITY_EXTRA_CA_CERTS", ext.ca.clone()),
    ]
}

fn borrowed<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dotenv_error_names_the_file_line_and_variable_never_the_value() {
    let dir = temp_dir();
    let secret = "Qx8~unclosed.secret_value";
    std::fs::write(
        dir.join(".env"),
        format!("# my tenant\nAZURE_CLIENT_ID=00000000-0000-0000-0000-000000000001\nAZURE_CLIENT_SECRET=\"{secret}\n"),
    )
    .unwrap();
    let out = run(&dir, &[], &[]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let expected = format!(
        "error: cannot read {}: line 3 (AZURE_CLIENT_SECRET): the value does not parse",
        dir.join(".env").display()
    );
    assert!(stderr.starts_with(&expected), "expected {expected} in:\n{stderr}");
    assert!(stderr.contains("fix:"), "{stderr}");
    assert!(!stderr.contains("Qx8"), "the value leaked:\n{stderr}");
    assert!(text(&out.stdout).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_working_directorys_dotenv_is_read_and_named_at_v() {
    let ext = external("daemon").await;
    let parent = temp_dir();
    let child = parent.join("child");
    std::fs::create_dir(&child).unwrap();
    // A parent's .env that would break the run if it were read.
    std::fs::write(parent.join(".env"), "AZURE_CLIENT_SECRET=wrong\nNOT A SETTING\n").unwrap();
    let env = configured(&ext);
    let out = run(&child, &borrowed(&env), &["-v"]).await;
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("loaded settings from"), "{stderr}");

    let dotenv: String = env.iter().map(|(k, v)| format!("{k}='{v}'\n")).collect();
    std::fs::write(child.join(".env"), dotenv).unwrap();
    let out = run(&child, &[], &["-v"]).await;
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("loaded settings from {}", child.join(".env").display())),
        "{stderr}"
    );
    let quiet = run(&child, &[], &[]).await;
    assert!(!text(&quiet.stderr).contains("loaded settings"), "only at -v");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tilde_in_the_cache_path_is_the_home_directory() {
    let dir = temp_dir();
    let home = dir.join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::write(dir.join(".env"), "IDENTITY_CACHE_PATH=~/tokens.json\n").unwrap();
    let out = run(&dir, &[("HOME", &home.display().to_string())], &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        home.join("tokens.json").is_file(),
        "the cache is in the home directory"
    );
    assert!(!dir.join("~").exists(), "no directory named ~");

    std::fs::write(dir.join(".env"), "IDENTITY_CACHE_PATH=~bob/tokens.json\n").unwrap();
    let out = run(&dir, &[("HOME", &home.display().to_string())], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("IDENTITY_CACHE_PATH: ~name/"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn misspelt_variables_are_named_and_never_fall_back_to_the_emulator() {
    let dir = temp_dir();
    // The Python quickstart's names, and a missing underscore; nothing else is configured.
    let out = run(
        &dir,
        &[
            ("AZURE_CLIENTID", "00000000-0000-0000-0000-000000000001"),
            ("AZURE_TENANTID", "contoso.onmicrosoft.com"),
            ("CLIENT_SECRET", "Py~quickstart.secret"),
        ],
        &[],
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(text(&out.stdout).is_empty(), "no emulator: {}", text(&out.stdout));
    for (found, meant) in [
        ("AZURE_CLIENTID", "AZURE_CLIENT_ID"),
        ("AZURE_TENANTID", "AZURE_TENANT_ID"),
        ("CLIENT_SECRET", "AZURE_CLIENT_SECRET"),
    ] {
        assert!(
            stderr.contains(&format!("  - found {found}: did you mean {meant}?")),
            "{stderr}"
        );
    }
    assert!(
        stderr.contains("not falling back to the embedded emulator"),
        "{stderr}"
    );
    assert!(!stderr.contains("Py~quickstart"), "{stderr}");

    // With the right names set too, the look-alike is only a warning.
    let ext = external("daemon").await;
    let env = configured(&ext);
    let mut env = borrowed(&env);
    env.push(("CLIENT_SECRET", "leftover"));
    let out = run(&dir, &env, &[]).await;
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: found CLIENT_SECRET: did you mean AZURE_CLIENT_SECRET?"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_starting_with_a_dash_gets_a_hint_and_is_never_echoed() {
    let ext = external("daemon").await;
    let dir = temp_dir();
    let env = configured(&ext);
    let mut env = borrowed(&env);
    env.retain(|(k, _)| *k != "AZURE_CLIENT_SECRET");
    let out = run(&dir, &env, &["--client-secret", "-Xy8Q~dash.first"]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--client-secret got no value"), "{stderr}");
    assert!(
        stderr.contains("--client-secret=") && stderr.contains("AZURE_CLIENT_SECRET"),
        "{stderr}"
    );
    assert!(!stderr.contains("Xy8Q"), "the secret leaked:\n{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_placeholder_client_id_is_refused_before_anything_is_sent() {
    let ext = external("daemon").await;
    let dir = temp_dir();
    let env = configured(&ext);
    let mut env = borrowed(&env);
    env.retain(|(k, _)| *k != "AZURE_CLIENT_ID");
    env.push(("AZURE_CLIENT_ID", "Enter_the_Application_Id_Here"));
    let out = run(&dir, &env, &[]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("AZURE_CLIENT_ID still holds the quickstart's placeholder"),
        "{stderr}"
    );
    assert_eq!(ext.emu.request_counts().get(entra_emulator::Endpoint::Token), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn urls_with_credentials_are_refused_without_quoting_them() {
    let dir = temp_dir();
    let base = [
        ("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000001"),
        ("AZURE_CLIENT_SECRET", "s"),
    ];
    for (setting, value) in [
        (
            "AUTHORITY",
            "https://admin:Hunter2pw@login.microsoftonline.com/contoso.com",
        ),
        (
            "AZURE_AUTHORITY_HOST",
            "https://admin:Hunter2pw@login.microsoftonline.com",
        ),
        (
            "GRAPH_ENDPOINT",
            "https://admin:Hunter2pw@graph.microsoft.com/v1.0/users",
        ),
        // Does not even parse as a URL: still recognised, still not quoted.
        (
            "AUTHORITY",
            "https://ad min:Hunter2pw@login.microsoftonline.com/contoso.com",
        ),
    ] {
        let mut env = base.to_vec();
        if setting != "AUTHORITY" {
            env.push(("AZURE_TENANT_ID", "contoso.com"));
        }
        env.push((setting, value));
        let out = run(&dir, &env, &["-vv"]).await;
        let all = text(&out.stdout) + &text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{setting}: {all}");
        assert!(
            all.contains(&format!("{setting}: the URL holds a user name or password")),
            "{setting}: {all}"
        );
        assert!(!all.contains("Hunter2pw"), "the password leaked:\n{all}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_are_coloured_only_on_a_terminal_and_never_with_no_color() {
    let ext = external("daemon").await;
    let dir = temp_dir();
    let env = configured(&ext);
    let env = borrowed(&env);
    // A pipe (cron mail, journald, CI): no escape codes.
    let out = run(&dir, &env, &["-v"]).await;
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(" INFO identity_core::http: http request"),
        "request lines at -v: {stderr}"
    );
    assert!(!stderr.contains('\x1b'), "colour in a pipe: {stderr:?}");

    // A terminal (`script` gives the sample one): colour, unless NO_COLOR is set.
    let in_terminal = |extra: Option<(&'static str, &'static str)>| {
        let mut env = env.clone();
        env.extend(extra);
        common::command(
            "script",
            &dir,
            &env,
            &["-q", "-e", "-c", &format!("{BIN} -v"), "/dev/null"],
        )
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
    };
    let coloured = in_terminal(None);
    let screen = text(&coloured.stdout);
    assert!(coloured.status.success(), "{screen}");
    assert!(
        screen.contains("\x1b[2m") || screen.contains("\x1b[3"),
        "colour on a terminal: {screen:?}"
    );
    let plain = in_terminal(Some(("NO_COLOR", "1")));
    let screen = text(&plain.stdout);
    assert!(plain.status.success(), "{screen}");
    assert!(screen.contains(" INFO identity_core::http"), "{screen}");
    assert!(!screen.contains('\x1b'), "NO_COLOR is honoured: {screen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_emulator_notice_gives_the_object_id_for_the_applications_call() {
    let dir = temp_dir();
    let out = run(&dir, &[], &[]).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let line = stdout
        .lines()
        .find(|l| l.starts_with("Its app registration"))
        .unwrap_or_else(|| panic!("the app is described: {stdout}"));
    let (_, ids) = line.split_once(": client id ").unwrap();
    let (client_id, object_id) = ids.trim_end_matches('.').split_once(", object id ").unwrap();

    // The quickstart's call, with Graph's public URL, as the docs say.
    let endpoint = format!("https://graph.microsoft.com/v1.0/applications/{object_id}");
    let out = run(&dir, &[("GRAPH_ENDPOINT", &endpoint)], &[]).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let application = graph_result(&stdout);
    assert_eq!(application["appId"], client_id, "{application}");
    assert_eq!(application["id"], object_id, "{application}");
}

#[tokio::test(flavor = "multi_thread")]
async fn short_help_points_at_long_help_for_the_defaults() {
    let out = run(&temp_dir(), &[], &["-h"]).await;
    let help = text(&out.stdout);
    assert!(out.status.success());
    assert!(!help.contains("see above"), "{help}");
    assert!(help.contains("shown by --help"), "{help}");
}

/// A proxy that records the host of each `CONNECT` and then hangs up: it shows where the sample would have
/// connected first, without any network.
async fn recording_proxy() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let mut line = String::new();
            if BufReader::new(stream).read_line(&mut line).await.is_ok()
                && let Some(target) = line.strip_prefix("CONNECT ")
            {
                let host = target.split_whitespace().next().unwrap_or_default().to_string();
                record.lock().unwrap().push(host);
            }
        }
    });
    (port, seen)
}

/// What the proxy recorded, once it has recorded something: the sample may exit before the proxy's task has
/// read the last request line, so wait for the first rather than read at once.
async fn recorded(seen: &std::sync::Mutex<Vec<String>>) -> Vec<String> {
    for _ in 0..400 {
        let hosts = seen.lock().unwrap().clone();
        if !hosts.is_empty() {
            return hosts;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("no CONNECT reached the proxy within 10 s");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_authority_host_is_checked_with_instance_discovery_unless_validation_is_off() {
    let (port, seen) = recording_proxy().await;
    let proxy = format!("http://127.0.0.1:{port}");
    let settings = [
        ("AUTHORITY", "https://idp.example.test/contoso.onmicrosoft.com"),
        ("AZURE_CLIENT_ID", "00000000-0000-0000-0000-00000000000a"),
        ("AZURE_CLIENT_SECRET", "not-a-real-secret"),
        ("HTTPS_PROXY", proxy.as_str()),
        ("IDENTITY_CACHE", "memory"),
    ];
    let dir = temp_dir();

    // Validation on (the default): the first connection is to Microsoft's instance discovery, not the host.
    let out = run(&dir, &settings, &[]).await;
    assert_eq!(out.status.code(), Some(5), "stderr: {}", text(&out.stderr));
    let first = recorded(&seen).await.first().cloned();
    assert_eq!(first.as_deref(), Some("login.microsoftonline.com:443"));

    // Turned off by its variable: straight to the configured host.
    seen.lock().unwrap().clear();
    let mut off = settings.to_vec();
    off.push(("IDENTITY_AUTHORITY_VALIDATION", "off"));
    let out = run(&dir, &off, &[]).await;
    assert_eq!(out.status.code(), Some(5), "stderr: {}", text(&out.stderr));
    let hosts = recorded(&seen).await;
    assert!(
        hosts.iter().all(|h| h == "idp.example.test:443"),
        "every request to the configured host: {hosts:?}"
    );

    // A value that is neither on nor off is a configuration error naming the variable.
    let mut bad = settings.to_vec();
    bad.push(("IDENTITY_AUTHORITY_VALIDATION", "sometimes"));
    let out = run(&dir, &bad, &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("IDENTITY_AUTHORITY_VALIDATION")
            || text(&out.stderr).contains("--authority-validation"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_signed_by_another_emulator_key_is_never_served_from_the_cache() {
    let dir = temp_dir();
    // A port of its own, so runs in parallel tests do not move this test's emulator to another authority.
    let port = closed_port().to_string();
    let env = [("IDENTITY_EMULATOR_PORT", port.as_str())];
    let first = run(&dir, &env, &[]).await;
    assert!(first.status.success(), "{}", text(&first.stderr));
    let again = run(&dir, &env, &[]).await;
    assert!(
        text(&again.stdout).contains("Found a cached token"),
        "{}",
        text(&again.stdout)
    );

    // The emulator's state (and with it its signing key) is gone: the next emulator signs with a new key, so
    // the token the cache holds would be refused by its Graph.
    std::fs::remove_dir_all(dir.join(".cache/identity-core/emulator")).unwrap();
    let fresh = run(&dir, &env, &[]).await;
    let stdout = text(&fresh.stdout);
    assert!(fresh.status.success(), "{}", text(&fresh.stderr));
    assert!(stdout.contains("Could not find a cached token"), "{stdout}");
    assert!(!text(&fresh.stderr).contains("401"), "{}", text(&fresh.stderr));
    let caches: Vec<_> = std::fs::read_dir(dir.join(".cache/identity-core"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("emulator-") && name.ends_with(".json"))
        .collect();
    assert_eq!(caches.len(), 2, "one cache file per emulator key: {caches:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn five_embedded_runs_started_at_once_on_a_fresh_home_all_succeed_and_so_do_later_runs() {
    let dir = temp_dir();
    let port = closed_port().to_string();
    let env = [("IDENTITY_EMULATOR_PORT", port.as_str())];
    let commands = (0..5).map(|_| common::command(BIN, &dir, &env, &[])).collect();
    for out in common::run_all(commands).await {
        assert!(
            out.status.success(),
            "stdout: {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        );
        graph_result(&text(&out.stdout));
    }
    // The state they created together is whole: a later run is served from the cache and Graph accepts it.
    let later = run(&dir, &env, &[]).await;
    assert!(later.status.success(), "{}", text(&later.stderr));
    assert!(
        text(&later.stdout).contains("Found a cached token"),
        "{}",
        text(&later.stdout)
    );
    graph_result(&text(&later.stdout));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_emulator_port_is_refused_naming_the_variable() {
    let out = run(&temp_dir(), &[("IDENTITY_EMULATOR_PORT", "http")], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("IDENTITY_EMULATOR_PORT must be a port number"),
        "{}",
        text(&out.stderr)
    );
}
