//! A cache that stays fast as it grows: one file per app and tenant, so a run reads and writes only its own
//! records however many other apps and tenants the user has; the records of the single file all apps shared
//! before move to the app's own file once, and the others stay where they are.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

use std::path::Path;
use std::sync::Arc;

use entra_emulator::{Emulator, Endpoint};
use identity_core::{
    AccessTokenKey, Authority, CacheEntry, CacheKey, CachedAccessToken, ClientSecret, ConfidentialClient,
    FileCache, HttpClient, HttpConfig, SecretToken, TokenCache, TokenSource, now_secs,
};

const GRAPH_DEFAULT: &str = "https://graph.microsoft.com/.default";
const OTHERS: usize = 10_000;

fn token(value: &str) -> CacheEntry {
    CacheEntry::AccessToken(CachedAccessToken::new(
        SecretToken::new(value),
        "Bearer".into(),
        vec![GRAPH_DEFAULT.to_string()],
        now_secs(),
        3600,
        None,
        None,
    ))
}

fn app_only_key(environment: &str, client_id: &str, tenant: &str) -> CacheKey {
    CacheKey::AccessToken(AccessTokenKey::new(
        None,
        environment,
        client_id,
        tenant,
        &[GRAPH_DEFAULT],
    ))
}

/// `n` tokens of other apps in other tenants.
fn others(n: usize) -> Vec<(CacheKey, CacheEntry)> {
    (0..n)
        .map(|i| {
            let key = app_only_key(
                "login.microsoftonline.com",
                &format!("other-app-{i}"),
                &format!("tenant-{}", i % 7),
            );
            (key, token(&format!("other-token-{i}")))
        })
        .collect()
}

/// The file's bytes and modification time: equal before and after means untouched.
fn snapshot(path: &Path) -> (Vec<u8>, std::time::SystemTime) {
    (
        std::fs::read(path).unwrap(),
        std::fs::metadata(path).unwrap().modified().unwrap(),
    )
}

#[tokio::test]
async fn with_ten_thousand_other_records_a_run_touches_only_its_own_file() {
    let emu = Emulator::builder().start().await.unwrap();
    let registration = emu.app("daemon").unwrap();
    let authority = Authority::parse(&emu.authority()).unwrap();
    let (client_id, tenant) = (registration.app_id.clone(), authority.tenant().to_string());
    let dir = std::env::temp_dir().join(format!("idcore-growth-{}", uuid::Uuid::new_v4()));

    // The single file all apps shared: 10,000 records of others, and one of this app (from an older run).
    let legacy = dir.join("token-cache.json");
    let mut shared = others(OTHERS);
    let own_key = app_only_key(&authority.environment(), &client_id, &tenant);
    shared.push((own_key.clone(), token("this-app-old-token")));
    FileCache::new(&legacy).put_all(&shared).await.unwrap();
    // Another app's own file, as large.
    let other_file = dir.join("token-cache").join("other-app_other-tenant.json");
    FileCache::new(&other_file)
        .put_all(&others(OTHERS))
        .await
        .unwrap();

    // This app's own file: its record moves there once; the others stay in the shared file.
    let path = dir.join("token-cache").join(format!("{client_id}_{tenant}.json"));
    let cache = FileCache::new(&path);
    assert_eq!(
        cache
            .adopt_records_from(&legacy, &client_id, &tenant)
            .await
            .unwrap(),
        1
    );
    let left = FileCache::new(&legacy).entries().await.unwrap();
    assert_eq!(left.len(), OTHERS, "the other apps' records stay");
    assert!(
        left.iter()
            .all(|(k, _)| k.client_id() != Some(client_id.to_ascii_lowercase().as_str()))
    );
    assert_eq!(cache.entries().await.unwrap().len(), 1);
    let (legacy_before, other_before) = (snapshot(&legacy), snapshot(&other_file));
    assert_eq!(
        cache
            .adopt_records_from(&legacy, &client_id, &tenant)
            .await
            .unwrap(),
        0,
        "once this app's file exists, the shared file is not read again"
    );

    // A run: the moved token was issued for a credential the key does not name, so a new one is fetched and
    // written, then served from the app's file.
    let app = ConfidentialClient::builder(client_id.clone(), authority)
        .client_secret(ClientSecret::new(registration.secrets[0].value.clone()))
        .http_client(HttpClient::new(HttpConfig::default().with_extra_ca_pem(emu.ca_pem())).unwrap())
        .cache(Arc::new(FileCache::new(&path)))
        .build()
        .unwrap();
    let first = app.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap();
    assert_eq!(first.source, TokenSource::IdentityProvider);
    app.flush().await.unwrap();
    let again = app.acquire_token_for_client(&[GRAPH_DEFAULT]).await.unwrap();
    assert_eq!(again.source, TokenSource::Cache);
    assert_eq!(emu.request_counts().get(Endpoint::Token), 1);

    let own = FileCache::new(&path).entries().await.unwrap();
    assert_eq!(own.len(), 2, "the moved record and the new token");
    assert!(
        own.iter()
            .all(|(k, _)| k.client_id() == Some(client_id.to_ascii_lowercase().as_str())),
        "the file the run touched holds only this app's records"
    );
    assert!(
        std::fs::metadata(&path).unwrap().len() < 16 * 1024,
        "a few KiB, not the others' megabytes"
    );
    assert!(snapshot(&legacy) == legacy_before, "the shared file is untouched");
    assert!(
        snapshot(&other_file) == other_before,
        "the other app's file is untouched"
    );
    let _ = std::fs::remove_dir_all(dir);
}
