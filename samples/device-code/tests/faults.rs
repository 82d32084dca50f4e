//! The device-code binary through injected faults at discovery, the device code endpoint, token and Graph
//! (see tests-common/faults.rs); the emulator approves each code at once and asks for polls every second.
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

use entra_emulator::{DEMO_USERNAME, Emulator, Endpoint, Fault, FaultKind};
use faults::{Case, Expect, Sample, Settings, assert_times_out, ca, impatient_http, too_slow};
use identity_core::{Authority, MemoryCache, PublicClient};

const SAMPLE: Sample = Sample {
    bin: env!("CARGO_BIN_EXE_device-code"),
    name: "device-code",
    endpoints: &[Endpoint::DeviceCode, Endpoint::Token, Endpoint::Graph],
    builder: |b| {
        b.device_code_interval(1)
            .auto_approve_device_codes(DEMO_USERNAME, Duration::ZERO)
    },
    env: |emu| {
        let app = emu.app("device-code").unwrap();
        Settings {
            env: vec![
                ("AUTHORITY", emu.authority()),
                ("AZURE_CLIENT_ID", app.app_id.clone()),
                ("IDENTITY_EXTRA_CA_CERTS", ca(emu)),
                ("GRAPH_ENDPOINT", format!("{}/me", emu.graph_base())),
            ],
            secrets: vec![],
        }
    },
};

#[tokio::test(flavor = "multi_thread")]
async fn transient_faults_at_each_endpoint_end_in_success() {
    let cases = faults::transient(SAMPLE.endpoints)
        .into_iter()
        .map(|mut case| {
            // A poll whose answer is cut after the service redeemed the code cannot be repeated: the code is
            // spent (single use), as on the real service. The user is told to sign in again.
            let redeemed = case
                .faults
                .iter()
                .any(|f| f.endpoint == Endpoint::Token && matches!(f.kind, FaultKind::ResetMidBody));
            if redeemed {
                case.expect = Expect::Service("AADSTS70000");
            }
            case
        })
        .collect();
    SAMPLE.check_all(cases).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn persistent_faults_and_bad_answers_end_with_an_error_and_a_fix() {
    let cases = faults::persistent(SAMPLE.endpoints)
        .into_iter()
        .map(|mut case| {
            // Throttled polls wait for Retry-After while the code is valid, then the sign-in completes.
            let throttled_polls = case.faults.iter().any(|f| {
                f.endpoint == Endpoint::Token && matches!(f.kind, FaultKind::Status { status: 429, .. })
            });
            if throttled_polls {
                case.expect = Expect::Success;
            }
            case
        })
        .collect();
    SAMPLE.check_all(cases).await;
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
async fn an_error_sent_with_status_200_by_the_device_code_endpoint_is_a_service_error() {
    let error = r#"{"error":"invalid_client","error_description":"AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.\r\nTrace ID: 0b8f7a52-3c1e-4a43-9d1a-6a3e0a5b2c00\r\nCorrelation ID: 7f3a1c2e-8b4d-4e5f-9a6b-1c2d3e4f5a6b\r\nTimestamp: 2026-01-01 00:00:00Z","error_codes":[7000218],"timestamp":"2026-01-01 00:00:00Z","trace_id":"0b8f7a52-3c1e-4a43-9d1a-6a3e0a5b2c00","correlation_id":"7f3a1c2e-8b4d-4e5f-9a6b-1c2d3e4f5a6b"}"#;
    SAMPLE
        .check_all(vec![Case::new(
            Endpoint::DeviceCode,
            FaultKind::Body {
                status: 200,
                content_type: None,
                body: error.to_owned(),
            },
            1,
            Expect::Service("AADSTS7000218"),
        )])
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn device_code_and_token_answers_that_hang_or_trickle_end_with_the_request_timeout() {
    for endpoint in [Endpoint::DeviceCode, Endpoint::Token] {
        for kind in too_slow() {
            let emu = (SAMPLE.builder)(Emulator::builder().device_code_lifetime(Duration::from_secs(30)))
                .start()
                .await
                .unwrap();
            emu.inject_fault(Fault::new(endpoint, kind.clone()).times(10));
            let app = PublicClient::builder(
                emu.app("device-code").unwrap().app_id,
                Authority::parse(&emu.authority()).unwrap(),
            )
            .http_client(impatient_http(&emu))
            .cache(std::sync::Arc::new(MemoryCache::new()))
            .build()
            .unwrap();
            let flow = async {
                let flow = app.initiate_device_flow(&["User.Read"]).await?;
                app.acquire_token_by_device_flow(&flow).await
            };
            assert_times_out(&format!("{kind:?} at {endpoint:?}"), flow).await;
            emu.shutdown().await;
        }
    }
}
