//! The public client (device code, username/password, silent refresh) over real HTTPS against the emulator.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use entra_emulator::{DEMO_PASSWORD, DEMO_USERNAME, Emulator, EmulatorBuilder, Endpoint};
use identity_core::{
    Authority, Error, HttpClient, HttpConfig, MemoryCache, Password, PublicClient, ServiceError, SignInError,
    TokenCache, TokenSource,
};

const USER_READ: &str = "User.Read";

fn http(emulator: &Emulator) -> HttpClient {
    HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem())).unwrap()
}

fn client(emulator: &Emulator, app: &str, authority: &str, cache: Arc<dyn TokenCache>) -> PublicClient {
    let app = emulator.app(app).expect("seeded app");
    PublicClient::builder(app.app_id, Authority::parse(authority).unwrap())
        .http_client(http(emulator))
        .cache(cache)
        .build()
        .unwrap()
}

/// An emulator whose device codes are polled every second.
async fn fast_emulator(configure: impl FnOnce(EmulatorBuilder) -> EmulatorBuilder) -> Arc<Emulator> {
    Arc::new(
        configure(Emulator::builder().device_code_interval(1))
            .start()
            .await
            .expect("emulator starts"),
    )
}

/// The device-code app with a fresh memory cache.
fn device_app(emu: &Emulator) -> PublicClient {
    client(emu, "device-code", &emu.authority(), Arc::new(MemoryCache::new()))
}

/// What the emulator knows of a device code.
fn device_code_info(emu: &Emulator, user_code: &str) -> entra_emulator::DeviceCodeInfo {
    emu.device_codes()
        .into_iter()
        .find(|c| c.user_code == user_code)
        .expect("the device code was issued")
}

/// Approves `user_code` as the demo user once it has been polled `polls` times.
fn approve_after_polls(emu: &Arc<Emulator>, user_code: &str, polls: u32) -> tokio::task::JoinHandle<()> {
    let (emu, code) = (emu.clone(), user_code.to_string());
    tokio::spawn(async move {
        while device_code_info(&emu, &code).poll_count < polls {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        emu.approve_device_code(&code, DEMO_USERNAME).unwrap();
    })
}

/// The demo user signs in with the password flow.
async fn sign_in(app: &PublicClient) -> identity_core::TokenResult {
    app.acquire_token_by_username_password(DEMO_USERNAME, &Password::new(DEMO_PASSWORD), &[USER_READ])
        .await
        .unwrap()
}

/// The username-password app (memory cache), with the demo user signed in.
async fn signed_in(emu: &Emulator) -> (PublicClient, identity_core::TokenResult) {
    let app = client(
        emu,
        "username-password",
        &emu.authority(),
        Arc::new(MemoryCache::new()),
    );
    let token = sign_in(&app).await;
    (app, token)
}

fn service_error(err: Error) -> Box<ServiceError> {
    match err {
        Error::Service(e) => e,
        other => panic!("expected a service error, got {other:?}"),
    }
}

fn domain(emulator: &Emulator, alias: &str) -> String {
    format!("{alias}@{}", emulator.tenant_domain())
}

/// Approves the next device code as `username` once it is being polled.
fn approve_when_polled(emulator: &Arc<Emulator>, username: &str) -> tokio::task::JoinHandle<()> {
    let (emulator, username) = (emulator.clone(), username.to_string());
    tokio::spawn(async move {
        let code = emulator
            .wait_for_device_code(Duration::from_secs(10))
            .await
            .expect("a device code was issued");
        emulator.approve_device_code(&code.user_code, &username).unwrap();
    })
}

#[tokio::test]
async fn device_flow_signs_in_caches_the_account_and_later_calls_are_silent() {
    let emu = fast_emulator(|b| b).await;
    let cache: Arc<dyn TokenCache> = Arc::new(MemoryCache::new());
    let app = client(&emu, "device-code", &emu.authority(), cache.clone());

    let flow = app.initiate_device_flow(&[USER_READ]).await.unwrap();
    assert_eq!(flow.user_code.len(), 9);
    assert!(flow.message.contains(&flow.user_code), "{}", flow.message);
    assert!(flow.message.contains(&flow.verification_uri));
    assert_eq!(flow.interval, Duration::from_secs(1));
    assert_eq!(flow.expires_in, Duration::from_secs(900));
    assert!(
        !format!("{flow:?}").contains("device_code: \""),
        "the device code is redacted"
    );

    let approver = approve_when_polled(&emu, DEMO_USERNAME);
    let token = app.acquire_token_by_device_flow(&flow).await.unwrap();
    approver.await.unwrap();
    assert_eq!(token.source, TokenSource::IdentityProvider);
    assert_eq!(token.correlation_id.as_deref(), Some(flow.correlation_id()));
    let account = token.account.clone().expect("the signed-in account");
    assert!(
        account.username.eq_ignore_ascii_case(DEMO_USERNAME),
        "{account:?}"
    );
    assert_eq!(account.realm, emu.tenant_id());
    assert_eq!(
        account.home_account_id,
        format!("{}.{}", account.local_account_id, emu.tenant_id())
    );
    assert!(
        token.scopes.iter().any(|s| s == "User.Read"),
        "{:?}",
        token.scopes
    );

    // The account is in the cache; a silent call answers from it without a request.
    let accounts = app.accounts().await.unwrap();
    assert_eq!(accounts, vec![account.clone()]);
    emu.reset_request_counts();
    let again = app
        .acquire_token_silent(&account, &[USER_READ])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.source, TokenSource::Cache);
    assert_eq!(again.access_token, token.access_token);
    assert_eq!(emu.request_counts().total(), 0);

    // Another scope: bought with the refresh token, one token request, no prompt.
    let basic = app
        .acquire_token_silent(&account, &["User.ReadBasic.All"])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(basic.source, TokenSource::IdentityProvider);
    assert_eq!(emu.request_counts().get(Endpoint::Token), 1);
    assert_eq!(emu.request_counts().get(Endpoint::DeviceCode), 0);

    // Graph accepts the delegated token as the user.
    let me = identity_core::GraphClient::new(app.http_client().clone())
        .get(&format!("{}/me", emu.graph_base()), &token.access_token)
        .await
        .unwrap();
    assert!(
        me["userPrincipalName"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case(DEMO_USERNAME)
    );

    // A second process (a new client on the same store) finds the account and stays silent.
    let later = client(&emu, "device-code", &emu.authority(), cache);
    let found = later.accounts().await.unwrap();
    let silent = later
        .acquire_token_silent(&found[0], &[USER_READ])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(silent.source, TokenSource::Cache);

    // Forgetting the account leaves nothing to be silent with.
    later.remove_account(&found[0]).await.unwrap();
    assert!(later.accounts().await.unwrap().is_empty());
    assert!(
        later
            .acquire_token_silent(&found[0], &[USER_READ])
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn expired_access_token_is_refreshed_with_one_token_request_and_no_discovery() {
    // Tokens shorter than the five-minute margin count as expired at once.
    let emu = fast_emulator(|b| b.token_lifetime(Duration::from_secs(120))).await;
    let (app, first) = signed_in(&emu).await;
    let account = first.account.clone().unwrap();
    emu.reset_request_counts();
    let refreshed = app
        .acquire_token_silent(&account, &[USER_READ])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(refreshed.source, TokenSource::IdentityProvider);
    assert_ne!(refreshed.access_token, first.access_token);
    let counts = emu.request_counts();
    assert_eq!(counts.get(Endpoint::Token), 1);
    assert_eq!(counts.get(Endpoint::OpenIdConfiguration), 0);
    assert_eq!(counts.get(Endpoint::UserRealm), 0, "no password flow again");
}

#[tokio::test]
async fn concurrent_silent_calls_share_one_refresh() {
    let emu = fast_emulator(|b| b).await;
    let (app, first) = signed_in(&emu).await;
    let account = first.account.unwrap();
    // No token for this scope yet: every caller needs the refresh token, and they share one request.
    emu.reset_request_counts();
    let callers: Vec<_> = (0..50)
        .map(|_| {
            let (app, account) = (app.clone(), account.clone());
            tokio::spawn(async move { app.acquire_token_silent(&account, &["User.ReadBasic.All"]).await })
        })
        .collect();
    for caller in callers {
        assert!(caller.await.unwrap().unwrap().is_some());
    }
    assert_eq!(emu.request_counts().get(Endpoint::Token), 1);
}

#[tokio::test]
async fn slow_down_makes_the_client_poll_five_seconds_less_often() {
    let emu = fast_emulator(|b| b.slow_down_polls(1)).await;
    let app = device_app(&emu);
    let flow = app.initiate_device_flow(&[USER_READ]).await.unwrap();
    let code = flow.user_code.clone();
    // Approve once the first poll (answered slow_down, as configured) is in; the second poll succeeds.
    let approver = approve_after_polls(&emu, &code, 1);
    let started = Instant::now();
    app.acquire_token_by_device_flow(&flow).await.unwrap();
    let waited = started.elapsed();
    approver.await.unwrap();
    let info = device_code_info(&emu, &code);
    assert_eq!(info.poll_count, 2, "slow_down, then success");
    // First poll after 1 s, the second 1 + 5 s later: the interval grew by 5 s.
    assert!(
        waited >= Duration::from_secs(7),
        "polled too soon after slow_down: {waited:?}"
    );
}

#[tokio::test]
async fn pending_polls_continue_until_approval_then_stop() {
    let emu = fast_emulator(|b| b).await;
    let app = device_app(&emu);
    let flow = app.initiate_device_flow(&[USER_READ]).await.unwrap();
    // Let a few polls see authorization_pending first.
    let approver = approve_after_polls(&emu, &flow.user_code, 3);
    app.acquire_token_by_device_flow(&flow).await.unwrap();
    approver.await.unwrap();
    let info = device_code_info(&emu, &flow.user_code);
    assert!(
        info.poll_count >= 4,
        "pending polls, then the successful one: {}",
        info.poll_count
    );
}

#[tokio::test]
async fn declined_sign_in_stops_polling_with_a_fix() {
    let emu = fast_emulator(|b| b).await;
    let app = device_app(&emu);
    let flow = app.initiate_device_flow(&[USER_READ]).await.unwrap();
    emu.decline_device_code(&flow.user_code).unwrap();
    let err = service_error(app.acquire_token_by_device_flow(&flow).await.unwrap_err());
    assert_eq!(err.error, "authorization_declined");
    assert!(err.fix().unwrap().contains("Accept"), "{:?}", err.fix());
    assert!(app.accounts().await.unwrap().is_empty(), "nothing cached");
}

#[tokio::test]
async fn the_client_gives_up_when_the_code_expires_on_its_own_clock() {
    let emu = Emulator::builder()
        .device_code_interval(2)
        .device_code_lifetime(Duration::from_secs(3))
        .start()
        .await
        .unwrap();
    let app = device_app(&emu);
    let flow = app.initiate_device_flow(&[USER_READ]).await.unwrap();
    assert_eq!(flow.expires_in, Duration::from_secs(3));
    let err = app.acquire_token_by_device_flow(&flow).await.unwrap_err();
    assert!(
        matches!(err, Error::SignIn(SignInError::DeviceCodeExpired { after }) if after == Duration::from_secs(3)),
        "{err:?}"
    );
    assert!(err.fix().unwrap().contains("Run again"));
    let info = device_code_info(&emu, &flow.user_code);
    assert_eq!(
        info.poll_count, 1,
        "one poll at 2 s; none at or after the deadline"
    );
}

#[tokio::test]
async fn an_unknown_device_code_is_a_bad_verification_code() {
    // The code is issued by one emulator and redeemed at another on the same address, which never issued it.
    let state = std::env::temp_dir().join(format!("idcore-dc-{}", uuid_like()));
    let first = Emulator::builder()
        .state_dir(&state)
        .device_code_interval(1)
        .start()
        .await
        .unwrap();
    let addr: std::net::SocketAddr = first.https_url().trim_start_matches("https://").parse().unwrap();
    let app = client(
        &first,
        "device-code",
        &first.authority(),
        Arc::new(MemoryCache::new()),
    );
    let flow = app.initiate_device_flow(&[USER_READ]).await.unwrap();
    first.shutdown().await;
    let _second = Emulator::builder()
        .state_dir(&state)
        .bind(addr)
        .start()
        .await
        .unwrap();
    let err = service_error(app.acquire_token_by_device_flow(&flow).await.unwrap_err());
    assert_eq!(err.error, "bad_verification_code");
    assert!(err.fix().is_some());
}

#[tokio::test]
async fn cancelling_the_wait_leaves_nothing_in_the_cache() {
    let emu = fast_emulator(|b| b).await;
    let cache = Arc::new(MemoryCache::new());
    let app = client(&emu, "device-code", &emu.authority(), cache.clone());
    let flow = app.initiate_device_flow(&[USER_READ]).await.unwrap();
    let outcome = tokio::time::timeout(
        Duration::from_millis(2500),
        app.acquire_token_by_device_flow(&flow),
    )
    .await;
    assert!(outcome.is_err(), "still waiting when cancelled");
    // Only the discovery document was cached; no account, token or refresh token.
    let entries = cache.entries().await.unwrap();
    assert!(
        entries
            .iter()
            .all(|(k, _)| matches!(k, identity_core::CacheKey::Metadata { .. })),
        "{entries:?}"
    );
    let info = device_code_info(&emu, &flow.user_code);
    assert!(info.poll_count >= 1);
}

#[tokio::test]
async fn device_code_errors_from_the_app_registration_come_with_fixes() {
    let emu = fast_emulator(|b| b).await;
    let common = format!("{}/common", emu.https_url());
    for (app_name, authority, code) in [
        ("single-tenant", common.as_str(), 50194),
        ("personal-only", common.as_str(), 9002331),
    ] {
        let app = client(&emu, app_name, authority, Arc::new(MemoryCache::new()));
        let err = service_error(app.initiate_device_flow(&[USER_READ]).await.unwrap_err());
        assert_eq!(err.code(), Some(code), "{app_name}: {err:?}");
        assert!(err.fix().is_some(), "{app_name}");
    }
    // Public client flows off: the device code is issued, redeeming it is refused.
    let app = client(
        &emu,
        "public-flows-disabled",
        &emu.authority(),
        Arc::new(MemoryCache::new()),
    );
    let flow = app.initiate_device_flow(&[USER_READ]).await.unwrap();
    emu.approve_device_code(&flow.user_code, DEMO_USERNAME).unwrap();
    let err = service_error(app.acquire_token_by_device_flow(&flow).await.unwrap_err());
    assert_eq!(err.code(), Some(7000218));
    assert!(err.fix().unwrap().contains("Allow public client flows"));
}

#[tokio::test]
async fn username_password_signs_in_then_stays_silent() {
    let emu = fast_emulator(|b| b).await;
    let app = client(
        &emu,
        "username-password",
        &emu.authority(),
        Arc::new(MemoryCache::new()),
    );
    let token = app
        .acquire_token_by_username_password(
            DEMO_USERNAME,
            &Password::new(DEMO_PASSWORD),
            &["User.ReadBasic.All"],
        )
        .await
        .unwrap();
    assert_eq!(token.source, TokenSource::IdentityProvider);
    let counts = emu.request_counts();
    assert_eq!(counts.get(Endpoint::UserRealm), 1, "user realm discovery first");
    assert_eq!(counts.get(Endpoint::Token), 1);
    let account = app
        .account(&DEMO_USERNAME.to_uppercase())
        .await
        .unwrap()
        .expect("cached account");
    emu.reset_request_counts();
    let silent = app
        .acquire_token_silent(&account, &["User.ReadBasic.All"])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(silent.source, TokenSource::Cache);
    assert_eq!(emu.request_counts().total(), 0);
}

#[tokio::test]
async fn username_password_errors_reach_the_caller_with_their_fix() {
    let emu = fast_emulator(|b| b).await;
    let app = client(
        &emu,
        "username-password",
        &emu.authority(),
        Arc::new(MemoryCache::new()),
    );
    let password = Password::new(DEMO_PASSWORD);
    let attempt = |user: String, password: Password| {
        let app = app.clone();
        async move {
            app.acquire_token_by_username_password(&user, &password, &[USER_READ])
                .await
                .unwrap_err()
        }
    };
    let wrong = service_error(attempt(DEMO_USERNAME.into(), Password::new("not-the-password")).await);
    assert_eq!(wrong.code(), Some(50126));
    assert_eq!(wrong.error, "invalid_grant");
    let cases = [
        ("nobody", 50034),
        ("mfa.user", 50076),
        ("mfa.register", 50079),
        ("locked.user", 50053),
        ("expired.password", 50055),
        ("disabled.user", 50057),
        ("ca.blocked", 53003),
        ("no.consent", 65001),
    ];
    for (alias, code) in cases {
        let user = emu
            .directory()
            .default_tenant()
            .and_then(|t| t.user(&domain(&emu, alias)).map(|u| u.password.clone()));
        let password = user.unwrap_or_else(|| "Some-Password-1".into());
        let err = service_error(attempt(domain(&emu, alias), Password::new(password)).await);
        assert_eq!(err.code(), Some(code), "{alias}: {err:?}");
        assert!(err.fix().is_some(), "{alias} has a fix");
        assert!(err.requires_sign_in() || code == 53003, "{alias}: {}", err.error);
    }
    let mfa_password = emu
        .directory()
        .default_tenant()
        .and_then(|t| t.user(&domain(&emu, "mfa.user")).map(|u| u.password.clone()))
        .unwrap();
    let mfa = service_error(attempt(domain(&emu, "mfa.user"), Password::new(mfa_password)).await);
    assert!(mfa.fix().unwrap().contains("device-code"), "{:?}", mfa.fix());

    // /common cannot do this grant.
    let common = client(
        &emu,
        "username-password",
        &format!("{}/common", emu.https_url()),
        Arc::new(MemoryCache::new()),
    );
    let err = service_error(
        common
            .acquire_token_by_username_password(DEMO_USERNAME, &password, &[USER_READ])
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code(), Some(9001023));

    // Public client flows off.
    let disabled = client(
        &emu,
        "public-flows-disabled",
        &emu.authority(),
        Arc::new(MemoryCache::new()),
    );
    let err = service_error(
        disabled
            .acquire_token_by_username_password(DEMO_USERNAME, &password, &[USER_READ])
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code(), Some(7000218));
}

#[tokio::test]
async fn federated_and_unknown_accounts_stop_before_the_password_is_sent() {
    let emu = fast_emulator(|b| b).await;
    let app = client(
        &emu,
        "username-password",
        &emu.authority(),
        Arc::new(MemoryCache::new()),
    );
    let password = Password::new("whatever");
    let federated = app
        .acquire_token_by_username_password("someone@fabrikam.com", &password, &[USER_READ])
        .await
        .unwrap_err();
    assert!(
        matches!(&federated, Error::SignIn(SignInError::FederatedAccount { domain }) if domain == "fabrikam.com"),
        "{federated:?}"
    );
    assert!(federated.fix().unwrap().contains("device-code"));
    let unknown = app
        .acquire_token_by_username_password("someone@example.org", &password, &[USER_READ])
        .await
        .unwrap_err();
    assert!(
        matches!(unknown, Error::SignIn(SignInError::UnknownAccount { .. })),
        "{unknown:?}"
    );
    assert_eq!(
        emu.request_counts().get(Endpoint::Token),
        0,
        "no password was sent"
    );
    let not_upn = app
        .acquire_token_by_username_password("just-a-name", &password, &[USER_READ])
        .await
        .unwrap_err();
    assert!(matches!(not_upn, Error::Config(_)), "{not_upn:?}");
}

#[tokio::test]
async fn a_revoked_or_expired_refresh_token_asks_for_a_new_sign_in() {
    let emu = fast_emulator(|b| b.token_lifetime(Duration::from_secs(120))).await;
    let (app, first) = signed_in(&emu).await;
    let account = first.account.unwrap();
    emu.revoke_refresh_tokens(DEMO_USERNAME);
    let err = service_error(
        app.acquire_token_silent(&account, &[USER_READ])
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code(), Some(50173));
    assert!(err.requires_sign_in());

    let account = sign_in(&app).await.account.unwrap();
    emu.expire_refresh_tokens();
    let err = service_error(
        app.acquire_token_silent(&account, &[USER_READ])
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code(), Some(700082));
    assert!(err.fix().unwrap().contains("sign in again"));
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}
