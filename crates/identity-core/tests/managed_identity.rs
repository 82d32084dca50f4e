//! Managed identity end to end over loopback: the emulator plays each source (IMDS, App Service, Azure ML,
//! Azure Arc, Service Fabric) and mints tokens Graph accepts. The environment is given to each client as an
//! explicit map, never by changing this process's variables.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use entra_emulator::{Emulator, ManagedIdentityEndpoint, ManagedIdentityHost};
use identity_core::{
    Error, GraphClient, HttpClient, HttpConfig, ManagedIdentityClient, ManagedIdentityEnvironment,
    ManagedIdentityError, ManagedIdentityId, ManagedIdentitySource, TokenSource,
};

const GRAPH: &str = "https://graph.microsoft.com";

async fn start() -> (Emulator, ManagedIdentityHost) {
    let emulator = Emulator::builder().start().await.unwrap();
    let host = emulator.start_managed_identity_host().await.unwrap();
    (emulator, host)
}

fn env_of(host: &ManagedIdentityHost, endpoint: ManagedIdentityEndpoint) -> ManagedIdentityEnvironment {
    ManagedIdentityEnvironment::from_vars(host.env(endpoint))
}

fn client(
    host: &ManagedIdentityHost,
    endpoint: ManagedIdentityEndpoint,
    id: ManagedIdentityId,
) -> ManagedIdentityClient {
    ManagedIdentityClient::builder(id)
        .environment(env_of(host, endpoint))
        .arc_token_directory(host.arc_token_directory())
        .imds_retries(3, Duration::from_millis(20))
        .build()
        .unwrap()
}

/// The claims of a JWT (the emulator's tokens are JWTs; the client never reads them).
fn claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

async fn users_with(emulator: &Emulator, token: &identity_core::SecretToken) -> serde_json::Value {
    let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem())).unwrap();
    GraphClient::new(http)
        .get(&format!("{}/users", emulator.graph_base()), token)
        .await
        .unwrap()
}

fn mi_error(e: Error) -> ManagedIdentityError {
    match e {
        Error::ManagedIdentity(e) => e,
        other => panic!("expected a managed identity error, got {other:?}"),
    }
}

#[tokio::test]
async fn each_source_gets_a_token_graph_accepts_then_serves_it_from_the_cache() {
    let (emulator, host) = start().await;
    let sources = [
        (ManagedIdentityEndpoint::Imds, ManagedIdentitySource::Imds),
        (
            ManagedIdentityEndpoint::AppService,
            ManagedIdentitySource::AppService,
        ),
        (ManagedIdentityEndpoint::AzureMl, ManagedIdentitySource::AzureMl),
        (ManagedIdentityEndpoint::AzureArc, ManagedIdentitySource::AzureArc),
        (
            ManagedIdentityEndpoint::ServiceFabric,
            ManagedIdentitySource::ServiceFabric,
        ),
    ];
    for (endpoint, source) in sources {
        let app = client(&host, endpoint, ManagedIdentityId::SystemAssigned);
        assert_eq!(app.source(), source);
        let token = app.acquire_token(&format!("{GRAPH}/.default")).await.unwrap();
        assert_eq!(token.source, TokenSource::IdentityProvider, "{source}");
        let c = claims(token.access_token.secret());
        assert_eq!(c["oid"], host.system_assigned().object_id.as_str(), "{source}");
        assert_eq!(c["aud"], GRAPH);
        // A day-long token is refreshed at half its lifetime.
        let refresh_on = token.refresh_on.expect("refresh_on");
        let half = token.expires_on.duration_since(refresh_on).unwrap();
        assert!(
            half > Duration::from_secs(11 * 3600) && half < Duration::from_secs(13 * 3600),
            "{source}: {half:?}"
        );
        let users = users_with(&emulator, &token.access_token).await;
        assert!(!users["value"].as_array().unwrap().is_empty(), "{source}");

        let requests = host.requests(endpoint);
        let again = app.acquire_token(GRAPH).await.unwrap();
        assert_eq!(again.source, TokenSource::Cache, "{source}");
        assert_eq!(again.access_token, token.access_token);
        assert_eq!(host.requests(endpoint), requests, "{source}: the cache answered");
    }
}

#[tokio::test]
async fn user_assigned_identities_by_client_object_or_resource_id() {
    let (_emulator, host) = start().await;
    let user = host.user_assigned().clone();
    let ids = [
        ManagedIdentityId::ClientId(user.client_id.clone()),
        ManagedIdentityId::ObjectId(user.object_id.clone()),
        ManagedIdentityId::ResourceId(user.resource_id.clone()),
    ];
    for endpoint in [
        ManagedIdentityEndpoint::Imds,
        ManagedIdentityEndpoint::AppService,
        ManagedIdentityEndpoint::AzureArc,
    ] {
        for id in &ids {
            let token = client(&host, endpoint, id.clone())
                .acquire_token(GRAPH)
                .await
                .unwrap();
            assert_eq!(
                claims(token.access_token.secret())["oid"],
                user.object_id.as_str(),
                "{endpoint:?} {id}"
            );
        }
    }
    let ml = client(&host, ManagedIdentityEndpoint::AzureMl, ids[0].clone())
        .acquire_token(GRAPH)
        .await
        .unwrap();
    assert_eq!(claims(ml.access_token.secret())["oid"], user.object_id.as_str());
    // Azure ML takes a client id only; Service Fabric chooses the identity in the cluster.
    for (endpoint, id) in [
        (ManagedIdentityEndpoint::AzureMl, ids[1].clone()),
        (ManagedIdentityEndpoint::ServiceFabric, ids[0].clone()),
    ] {
        let before = host.requests(endpoint);
        let e = mi_error(
            client(&host, endpoint, id)
                .acquire_token(GRAPH)
                .await
                .unwrap_err(),
        );
        assert!(matches!(e, ManagedIdentityError::Unsupported { .. }), "{e}");
        assert_eq!(host.requests(endpoint), before, "refused before sending");
    }
}

#[tokio::test]
async fn an_identity_that_is_not_assigned_gets_a_typed_error_with_a_fix() {
    let (_emulator, host) = start().await;
    let unknown = ManagedIdentityId::ClientId("00000000-1111-2222-3333-444444444444".into());
    for endpoint in [
        ManagedIdentityEndpoint::Imds,
        ManagedIdentityEndpoint::AppService,
        ManagedIdentityEndpoint::AzureArc,
    ] {
        let before = host.requests(endpoint);
        let e = mi_error(
            client(&host, endpoint, unknown.clone())
                .acquire_token(GRAPH)
                .await
                .unwrap_err(),
        );
        assert!(
            matches!(e, ManagedIdentityError::IdentityNotFound { .. }),
            "{endpoint:?}: {e}"
        );
        assert!(e.fix().contains("Assign the identity"), "{}", e.fix());
        if endpoint == ManagedIdentityEndpoint::Imds {
            assert_eq!(host.requests(endpoint), before + 1, "a 400 is not retried");
        }
    }
    host.set_system_assigned(false);
    for endpoint in [
        ManagedIdentityEndpoint::Imds,
        ManagedIdentityEndpoint::ServiceFabric,
    ] {
        let e = mi_error(
            client(&host, endpoint, ManagedIdentityId::SystemAssigned)
                .acquire_token(GRAPH)
                .await
                .unwrap_err(),
        );
        assert!(
            matches!(e, ManagedIdentityError::IdentityNotFound { .. }),
            "{endpoint:?}: {e}"
        );
        assert!(e.to_string().contains("system-assigned"), "{e}");
    }
}

#[tokio::test]
async fn imds_retries_its_transient_statuses_then_succeeds() {
    let (_emulator, host) = start().await;
    for status in [404, 410, 429, 500, 503] {
        let app = client(
            &host,
            ManagedIdentityEndpoint::Imds,
            ManagedIdentityId::SystemAssigned,
        );
        let before = host.requests(ManagedIdentityEndpoint::Imds);
        host.fail_next(ManagedIdentityEndpoint::Imds, status, 2);
        let token = app.acquire_token(GRAPH).await.unwrap();
        assert_eq!(token.source, TokenSource::IdentityProvider);
        assert_eq!(
            host.requests(ManagedIdentityEndpoint::Imds),
            before + 3,
            "status {status}: two failures, one success"
        );
    }
}

#[tokio::test]
async fn imds_gives_up_after_its_retries() {
    let (_emulator, host) = start().await;
    host.fail_next(ManagedIdentityEndpoint::Imds, 503, 100);
    let app = ManagedIdentityClient::builder(ManagedIdentityId::SystemAssigned)
        .environment(env_of(&host, ManagedIdentityEndpoint::Imds))
        .imds_retries(2, Duration::from_millis(10))
        .build()
        .unwrap();
    let e = mi_error(app.acquire_token(GRAPH).await.unwrap_err());
    assert!(
        matches!(
            e,
            ManagedIdentityError::RetriesExhausted {
                status: 503,
                attempts: 3,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(host.requests(ManagedIdentityEndpoint::Imds), 3);
    // Other sources do not retry: App Service's 500 is its answer.
    host.fail_next(ManagedIdentityEndpoint::AppService, 500, 1);
    let e = mi_error(
        client(
            &host,
            ManagedIdentityEndpoint::AppService,
            ManagedIdentityId::SystemAssigned,
        )
        .acquire_token(GRAPH)
        .await
        .unwrap_err(),
    );
    assert!(
        matches!(e, ManagedIdentityError::Refused { status: 500, .. }),
        "{e}"
    );
}

#[tokio::test]
async fn concurrent_callers_share_one_request() {
    let (_emulator, host) = start().await;
    for endpoint in [ManagedIdentityEndpoint::Imds, ManagedIdentityEndpoint::AzureArc] {
        let app = client(&host, endpoint, ManagedIdentityId::SystemAssigned);
        let before = host.requests(endpoint);
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let app = app.clone();
                tokio::spawn(async move { app.acquire_token(GRAPH).await.unwrap() })
            })
            .collect();
        let mut tokens = Vec::new();
        for t in tasks {
            tokens.push(t.await.unwrap().access_token);
        }
        assert!(tokens.windows(2).all(|w| w[0] == w[1]));
        // Arc: the challenge and the answer.
        let per_token = if endpoint == ManagedIdentityEndpoint::AzureArc {
            2
        } else {
            1
        };
        assert_eq!(host.requests(endpoint), before + per_token, "{endpoint:?}");
    }
}

#[tokio::test]
async fn arc_refuses_challenge_files_it_must_not_read() {
    let (_emulator, host) = start().await;
    let dir = host.arc_token_directory().to_path_buf();
    let outside = std::env::temp_dir().join(format!("mi-outside-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir(&outside).unwrap();
    let outside_key = outside.join("stolen.key");
    std::fs::write(&outside_key, "outside-secret").unwrap();
    let wrong_extension = dir.join("agent.txt");
    std::fs::write(&wrong_extension, "txt-secret").unwrap();
    let too_big = dir.join("big.key");
    std::fs::write(&too_big, "x".repeat(4097)).unwrap();
    let link = dir.join("link.key");
    std::os::unix::fs::symlink(&outside_key, &link).unwrap();
    let fifo = dir.join("fifo.key");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let traversal = dir
        .join("..")
        .join(outside.file_name().unwrap())
        .join("stolen.key");

    let cases = [
        (outside_key.clone(), "not in the agent's token directory"),
        (traversal, "not in the agent's token directory"),
        (wrong_extension, "not a .key file"),
        (too_big, "larger than 4096 bytes"),
        (link, "not in the agent's token directory"),
        (fifo, "not a regular file"),
    ];
    let app = client(
        &host,
        ManagedIdentityEndpoint::AzureArc,
        ManagedIdentityId::SystemAssigned,
    );
    for (file, why) in cases {
        host.set_arc_challenge_file(Some(file.clone()));
        let before = host.requests(ManagedIdentityEndpoint::AzureArc);
        let e = mi_error(app.acquire_token(GRAPH).await.unwrap_err());
        assert!(
            matches!(e, ManagedIdentityError::ArcChallenge { .. }),
            "{}: {e}",
            file.display()
        );
        assert!(e.to_string().contains(why), "{}: {e}", file.display());
        assert!(
            !e.to_string().contains("-secret"),
            "no file content is quoted: {e}"
        );
        assert_eq!(
            host.requests(ManagedIdentityEndpoint::AzureArc),
            before + 1,
            "only the challenge was sent"
        );
    }
    host.set_arc_challenge_file(None);
    assert_eq!(
        app.acquire_token(GRAPH).await.unwrap().source,
        TokenSource::IdentityProvider
    );
    std::fs::remove_dir_all(outside).unwrap();
}

#[tokio::test]
async fn arc_refuses_an_answer_that_does_not_confirm_the_user_assigned_identity() {
    let (_emulator, host) = start().await;
    host.set_arc_echoes_identity(false);
    let id = ManagedIdentityId::ClientId(host.user_assigned().client_id.clone());
    let e = mi_error(
        client(&host, ManagedIdentityEndpoint::AzureArc, id)
            .acquire_token(GRAPH)
            .await
            .unwrap_err(),
    );
    assert!(
        matches!(e, ManagedIdentityError::ArcIdentityNotConfirmed { .. }),
        "{e}"
    );
    // The system-assigned identity needs no confirmation.
    client(
        &host,
        ManagedIdentityEndpoint::AzureArc,
        ManagedIdentityId::SystemAssigned,
    )
    .acquire_token(GRAPH)
    .await
    .unwrap();
}

#[tokio::test]
async fn service_fabric_refuses_a_certificate_other_than_the_pinned_one() {
    let (_emulator, host) = start().await;
    let vars: Vec<(&str, String)> = host
        .env(ManagedIdentityEndpoint::ServiceFabric)
        .into_iter()
        .map(|(k, v)| {
            if k == "IDENTITY_SERVER_THUMBPRINT" {
                (k, "AB".repeat(20))
            } else {
                (k, v)
            }
        })
        .collect();
    let app = ManagedIdentityClient::builder(ManagedIdentityId::SystemAssigned)
        .environment(ManagedIdentityEnvironment::from_vars(vars))
        .build()
        .unwrap();
    let e = mi_error(app.acquire_token(GRAPH).await.unwrap_err());
    match &e {
        ManagedIdentityError::ThumbprintMismatch { expected, presented } => {
            assert_eq!(expected, &"AB".repeat(20));
            assert_eq!(presented, host.service_fabric_thumbprint());
        }
        other => panic!("{other}"),
    }
    assert_eq!(
        host.requests(ManagedIdentityEndpoint::ServiceFabric),
        0,
        "no request crossed the handshake"
    );
}

#[tokio::test]
async fn secrets_stay_out_of_errors_and_debug_output() {
    let (_emulator, host) = start().await;
    for endpoint in [
        ManagedIdentityEndpoint::AppService,
        ManagedIdentityEndpoint::AzureMl,
        ManagedIdentityEndpoint::ServiceFabric,
    ] {
        let wrong = "wrong-secret-value-0123456789";
        let vars: Vec<(&str, String)> = host
            .env(endpoint)
            .into_iter()
            .map(|(k, v)| {
                if k == "IDENTITY_HEADER" || k == "MSI_SECRET" {
                    (k, wrong.to_string())
                } else {
                    (k, v)
                }
            })
            .collect();
        let real_secret = host
            .env(endpoint)
            .into_iter()
            .find(|(k, _)| k.ends_with("HEADER") || k.ends_with("SECRET"))
            .unwrap()
            .1;
        let env = ManagedIdentityEnvironment::from_vars(vars);
        let app = ManagedIdentityClient::builder(ManagedIdentityId::SystemAssigned)
            .environment(env.clone())
            .build()
            .unwrap();
        let e = mi_error(app.acquire_token(GRAPH).await.unwrap_err());
        assert!(
            matches!(e, ManagedIdentityError::Refused { status: 401, .. }),
            "{endpoint:?}: {e}"
        );
        let shown = format!("{e} {e:?} {app:?} {env:?} {}", e.fix());
        assert!(!shown.contains(wrong) && !shown.contains(&real_secret), "{shown}");
    }
}

#[tokio::test]
async fn detection_follows_msal_order_and_cloud_shell_is_refused() {
    let (_emulator, host) = start().await;
    let mut all: Vec<(&str, String)> = Vec::new();
    for endpoint in [
        ManagedIdentityEndpoint::AzureArc,
        ManagedIdentityEndpoint::AzureMl,
        ManagedIdentityEndpoint::AppService,
    ] {
        all.extend(host.env(endpoint));
    }
    // App Service's IDENTITY_ENDPOINT (pushed last) wins over Arc's; with a thumbprint it is Service Fabric.
    let env = ManagedIdentityEnvironment::from_vars(all.clone());
    assert_eq!(env.source(), ManagedIdentitySource::AppService);
    all.push((
        "IDENTITY_SERVER_THUMBPRINT",
        host.service_fabric_thumbprint().to_string(),
    ));
    assert_eq!(
        ManagedIdentityEnvironment::from_vars(all).source(),
        ManagedIdentitySource::ServiceFabric
    );

    let cloud_shell =
        ManagedIdentityEnvironment::from_vars([("AZUREPS_HOST_ENVIRONMENT", "cloud-shell/1.0")]);
    let e = ManagedIdentityClient::builder(ManagedIdentityId::SystemAssigned)
        .environment(cloud_shell)
        .build()
        .unwrap_err();
    assert!(
        matches!(
            e,
            ManagedIdentityError::Unsupported {
                platform: ManagedIdentitySource::CloudShell,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("signed-in user"), "{e}");

    // Nothing configured: IMDS at its documented address, and nothing sent until a token is asked for.
    let app = ManagedIdentityClient::builder(ManagedIdentityId::SystemAssigned)
        .environment(ManagedIdentityEnvironment::from_vars(
            Vec::<(String, String)>::new(),
        ))
        .build()
        .unwrap();
    assert_eq!(app.source(), ManagedIdentitySource::Imds);
    assert!(format!("{app:?}").contains("169.254.169.254"));
    let _ = Arc::new(app);
}
