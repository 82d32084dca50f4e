//! The username-password binary through injected faults at discovery, user realm discovery, token and Graph
//! (see tests-common/faults.rs).
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

use entra_emulator::{DEMO_PASSWORD, DEMO_USERNAME, Emulator, Endpoint, Fault};
use faults::{Sample, Settings, assert_times_out, ca, impatient_http, too_slow};
use identity_core::{Authority, MemoryCache, Password, PublicClient};

const SAMPLE: Sample = Sample {
    bin: env!("CARGO_BIN_EXE_username-password"),
    name: "username-password",
    endpoints: &[Endpoint::UserRealm, Endpoint::Token, Endpoint::Graph],
    builder: |b| b,
    env: |emu| {
        let app = emu.app("username-password").unwrap();
        Settings {
            env: vec![
                ("AUTHORITY", emu.authority()),
                ("AZURE_CLIENT_ID", app.app_id.clone()),
                ("AZURE_USERNAME", DEMO_USERNAME.to_owned()),
                ("AZURE_PASSWORD", DEMO_PASSWORD.to_owned()),
                ("IDENTITY_EXTRA_CA_CERTS", ca(emu)),
                ("GRAPH_ENDPOINT", format!("{}/users", emu.graph_base())),
            ],
            secrets: vec![DEMO_PASSWORD.to_owned()],
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

#[tokio::test(flavor = "multi_thread")]
async fn user_realm_and_token_answers_that_hang_or_trickle_end_with_the_request_timeout() {
    for endpoint in [Endpoint::UserRealm, Endpoint::Token] {
        for kind in too_slow() {
            let emu = Emulator::builder().start().await.unwrap();
            emu.inject_fault(Fault::new(endpoint, kind.clone()).times(10));
            let app = PublicClient::builder(
                emu.app("username-password").unwrap().app_id,
                Authority::parse(&emu.authority()).unwrap(),
            )
            .http_client(impatient_http(&emu))
            .cache(std::sync::Arc::new(MemoryCache::new()))
            .build()
            .unwrap();
            let password = Password::new(DEMO_PASSWORD);
            let flow =
                app.acquire_token_by_username_password(DEMO_USERNAME, &password, &["User.ReadBasic.All"]);
            assert_times_out(&format!("{kind:?} at {endpoint:?}"), flow).await;
            emu.shutdown().await;
        }
    }
}
