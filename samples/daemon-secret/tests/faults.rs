//! The daemon-secret binary through injected faults at discovery, token and Graph (see tests-common/faults.rs),
//! and the library's own timeouts against answers that hang or trickle.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

#[path = "../../tests-common/mod.rs"]
mod common;
#[path = "../../tests-common/faults.rs"]
mod faults;

use std::time::Duration;

use entra_emulator::{Emulator, Endpoint, Fault, FaultKind};
use faults::{Sample, Settings, ca};
use identity_core::{
    Authority, ClientSecret, ConfidentialClient, Error, GraphClient, HttpClient, HttpConfig, HttpError,
};

const SAMPLE: Sample = Sample {
    bin: env!("CARGO_BIN_EXE_daemon-secret"),
    name: "daemon-secret",
    endpoints: &[Endpoint::OpenIdConfiguration, Endpoint::Token, Endpoint::Graph],
    builder: |b| b,
    env: |emu| {
        let app = emu.app("daemon").unwrap();
        let secret = app.secrets[0].value.clone();
        Settings {
            env: vec![
                ("AUTHORITY", emu.authority()),
                ("AZURE_CLIENT_ID", app.app_id.clone()),
                ("AZURE_CLIENT_SECRET", secret.clone()),
                ("IDENTITY_EXTRA_CA_CERTS", ca(emu)),
                ("GRAPH_ENDPOINT", format!("{}/users", emu.graph_base())),
            ],
            secrets: vec![secret],
        }
    },
};

#[tokio::test(flavor = "multi_thread")]
async fn transient_faults_at_each_endpoint_end_in_success() {
    SAMPLE.check_all(faults::transient(SAMPLE.endpoints)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn persistent_faults_and_bad_answers_end_with_exit_5_and_a_fix() {
    SAMPLE.check_all(faults::persistent(SAMPLE.endpoints)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn absurd_token_lifetimes_do_not_poison_the_cache() {
    SAMPLE.check_all(faults::absurd_lifetimes()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spoofed_discovery_document_is_never_followed() {
    SAMPLE.check_spoofed_discovery().await;
}

/// A client whose requests give up after a short time (the samples have no such setting: 30 s).
fn impatient_client(emu: &Emulator) -> ConfidentialClient {
    let mut config = HttpConfig::default().with_extra_ca_pem(emu.ca_pem());
    config.request_timeout = Duration::from_millis(500);
    let app = emu.app("daemon").unwrap();
    ConfidentialClient::builder(app.app_id.clone(), Authority::parse(&emu.authority()).unwrap())
        .client_secret(ClientSecret::new(app.secrets[0].value.clone()))
        .http_client(HttpClient::new(config).unwrap())
        .build()
        .unwrap()
}

/// Token, then Graph, as the sample does; bounded so that a client without a timeout fails instead of hanging.
async fn token_then_graph(app: &ConfidentialClient, emu: &Emulator) -> Result<(), Error> {
    let flow = async {
        let token = app
            .acquire_token_for_client(&["https://graph.microsoft.com/.default"])
            .await?;
        GraphClient::new(app.http_client().clone())
            .get(&format!("{}/users", emu.graph_base()), &token.access_token)
            .await
            .map(drop)
    };
    tokio::time::timeout(Duration::from_secs(60), flow)
        .await
        .expect("the client's request timeout must end the wait")
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_that_hang_or_trickle_end_with_the_request_timeout() {
    for endpoint in [Endpoint::OpenIdConfiguration, Endpoint::Token, Endpoint::Graph] {
        for kind in [FaultKind::Hang, FaultKind::SlowDrip { duration_ms: 20_000 }] {
            let emu = Emulator::builder().start().await.unwrap();
            emu.inject_fault(Fault::new(endpoint, kind.clone()).times(10));
            let app = impatient_client(&emu);
            let err = token_then_graph(&app, &emu).await.unwrap_err();
            assert!(
                matches!(err, Error::Http(HttpError::Timeout { .. })),
                "{kind:?} at {endpoint:?}: {err:?}"
            );
            assert!(err.fix().is_some(), "{err}");
            emu.shutdown().await;
        }
    }
}
