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

use entra_emulator::{Emulator, Endpoint, Fault};
use faults::{Sample, Settings, assert_times_out, ca, impatient_http, too_slow};
use identity_core::{Authority, ClientSecret, ConfidentialClient, GraphClient};

const SAMPLE: Sample = Sample {
    bin: env!("CARGO_BIN_EXE_daemon-secret"),
    name: "daemon-secret",
    endpoints: &[Endpoint::Token, Endpoint::Graph],
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
async fn persistent_faults_and_bad_answers_end_with_an_error_and_a_fix() {
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

/// The daemon app on `emu`, with requests that give up after half a second.
fn impatient_daemon(emu: &Emulator) -> ConfidentialClient {
    let app = emu.app("daemon").unwrap();
    ConfidentialClient::builder(app.app_id.clone(), Authority::parse(&emu.authority()).unwrap())
        .client_secret(ClientSecret::new(app.secrets[0].value.clone()))
        .http_client(impatient_http(emu))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_that_hang_or_trickle_end_with_the_request_timeout() {
    for endpoint in [Endpoint::Token, Endpoint::Graph] {
        for kind in too_slow() {
            let emu = Emulator::builder().start().await.unwrap();
            emu.inject_fault(Fault::new(endpoint, kind.clone()).times(10));
            let app = impatient_daemon(&emu);
            let flow = async {
                let token = app
                    .acquire_token_for_client(&["https://graph.microsoft.com/.default"])
                    .await?;
                GraphClient::new(app.http_client().clone())
                    .get(&format!("{}/users", emu.graph_base()), &token.access_token)
                    .await
            };
            assert_times_out(&format!("{kind:?} at {endpoint:?}"), flow).await;
            emu.shutdown().await;
        }
    }
}
