//! Device-code polling: the service's interval is capped (at a minute, and at the code's lifetime), and a
//! throttled poll (429 with `Retry-After`) waits and polls again instead of ending the sign-in.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::loopback_http;
use entra_emulator::{DEMO_USERNAME, Emulator, EmulatorBuilder, Endpoint, Fault};
use identity_core::MAX_POLL_INTERVAL;
use identity_core::{Authority, MemoryCache, PublicClient, TokenSource};

async fn device_app(configure: impl FnOnce(EmulatorBuilder) -> EmulatorBuilder) -> (Emulator, PublicClient) {
    let emu = configure(Emulator::builder()).start().await.unwrap();
    let registration = emu.app("device-code").unwrap();
    let app = PublicClient::builder(registration.app_id, Authority::parse(&emu.authority()).unwrap())
        .http_client(loopback_http(Some(emu.ca_pem())))
        .cache(Arc::new(MemoryCache::new()))
        .build()
        .unwrap();
    (emu, app)
}

#[tokio::test]
async fn a_day_long_poll_interval_is_capped_at_a_minute_and_at_the_code_lifetime() {
    let (_emu, app) = device_app(|b| b.device_code_interval(86_400)).await;
    let flow = app.initiate_device_flow(&["User.Read"]).await.unwrap();
    assert_eq!(flow.interval, MAX_POLL_INTERVAL);
    assert_eq!(MAX_POLL_INTERVAL, Duration::from_secs(60));

    let (_emu, app) = device_app(|b| {
        b.device_code_interval(86_400)
            .device_code_lifetime(Duration::from_secs(30))
    })
    .await;
    let flow = app.initiate_device_flow(&["User.Read"]).await.unwrap();
    assert_eq!(flow.expires_in, Duration::from_secs(30));
    assert_eq!(
        flow.interval,
        Duration::from_secs(30),
        "never beyond the code's lifetime"
    );
}

#[tokio::test]
async fn a_throttled_poll_waits_for_retry_after_and_the_sign_in_goes_on() {
    let (emu, app) = device_app(|b| {
        b.device_code_interval(1)
            .auto_approve_device_codes(DEMO_USERNAME, Duration::ZERO)
    })
    .await;
    let flow = app.initiate_device_flow(&["User.Read"]).await.unwrap();
    // The client itself does not retry (max_retries 0): the polling loop has to.
    emu.inject_fault(Fault::status(Endpoint::Token, 429, Some(1)).times(2));
    let token = app.acquire_token_by_device_flow(&flow).await.unwrap();
    assert_eq!(token.source, TokenSource::IdentityProvider);
    assert_eq!(token.account.unwrap().username, DEMO_USERNAME);
    assert_eq!(
        emu.request_counts().get(Endpoint::Token),
        3,
        "two throttled polls, then the token"
    );
}
