//! The daemon-certificate binary through injected faults at discovery, token and Graph (see
//! tests-common/faults.rs).
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

use entra_emulator::Endpoint;
use faults::{Sample, Settings, ca, path};

const SAMPLE: Sample = Sample {
    bin: env!("CARGO_BIN_EXE_daemon-certificate"),
    name: "daemon-certificate",
    endpoints: &[Endpoint::Token, Endpoint::Graph],
    builder: |b| b,
    env: |emu| {
        let app = emu.app("daemon-certificate").unwrap();
        let files = emu.certificate_files("daemon-certificate").unwrap();
        Settings {
            env: vec![
                ("AUTHORITY", emu.authority()),
                ("AZURE_CLIENT_ID", app.app_id.clone()),
                ("AZURE_CLIENT_CERTIFICATE_PATH", path(&files.pem_path)),
                ("IDENTITY_EXTRA_CA_CERTS", ca(emu)),
                ("GRAPH_ENDPOINT", format!("{}/users", emu.graph_base())),
            ],
            secrets: vec!["PRIVATE KEY".to_owned()],
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
