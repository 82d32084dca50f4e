//! Silent acquisition (a cache hit through `acquire_token_for_client`) from memory and from the file store,
//! and the raw store reads. No request is sent: the cache is consulted before discovery. The calls are awaited in
//! one task (criterion's async bencher), as an application awaits them, so a runtime's `block_on` is not counted.
//! Run with `cargo bench -p identity-core --bench cache`; add `--features encrypted-file-cache` to measure the
//! encrypted file store too (Linux: its key goes into the kernel keyring and is removed at the end).

#![allow(clippy::expect_used, reason = "a benchmark stops at the first failure")]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use identity_core::now_secs;
use identity_core::{
    AccessTokenKey, Authority, CacheEntry, CacheKey, CachedAccessToken, ClientCredential, ClientSecret,
    ConfidentialClient, FileCache, MemoryCache, SecretToken, TokenCache,
};

const SCOPE: &str = "https://graph.microsoft.com/.default";

fn client(cache: Arc<dyn TokenCache>, runtime: &tokio::runtime::Runtime) -> ConfidentialClient {
    let authority =
        Authority::parse("https://login.microsoftonline.com/contoso.onmicrosoft.com").expect("authority");
    // The client keys its tokens by a fingerprint of its credential.
    let fingerprint = ClientCredential::Secret(ClientSecret::new("s")).fingerprint();
    let key = CacheKey::AccessToken(
        AccessTokenKey::new(
            None,
            &authority.environment(),
            "client",
            authority.tenant(),
            &[SCOPE],
        )
        .with_credential(&fingerprint),
    );
    let token = CachedAccessToken::new(
        SecretToken::new("x".repeat(1500)),
        "Bearer".into(),
        vec![SCOPE.into()],
        now_secs(),
        3600,
        None,
        None,
    );
    runtime
        .block_on(cache.put(&key, &CacheEntry::AccessToken(token)))
        .expect("seed the cache");
    ConfidentialClient::builder("client", authority)
        .client_secret(ClientSecret::new("s"))
        .cache(cache)
        .build()
        .expect("client")
}

fn silent(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let path = std::env::temp_dir().join(format!("idcore-bench-cache-{}.json", std::process::id()));
    #[allow(unused_mut, reason = "one more store with the encryption feature")]
    let mut stores: Vec<(&str, Arc<dyn TokenCache>)> = vec![
        ("memory", Arc::new(MemoryCache::new())),
        ("file", Arc::new(FileCache::new(&path))),
    ];
    #[cfg(all(feature = "encrypted-file-cache", target_os = "linux"))]
    let (encrypted_path, key_name) = (
        path.with_extension("encrypted.json"),
        format!("identity-core:bench:{}", std::process::id()),
    );
    #[cfg(all(feature = "encrypted-file-cache", target_os = "linux"))]
    stores.push((
        "encrypted file",
        Arc::new(FileCache::new(&encrypted_path).key_name(&key_name)),
    ));
    for (name, store) in stores {
        let app = client(store, &runtime);
        c.bench_function(&format!("acquire_token_for_client, cache hit ({name})"), |b| {
            b.to_async(&runtime)
                .iter(|| async { black_box(app.acquire_token_for_client(&[SCOPE]).await.expect("hit")) })
        });
    }
    let _ = std::fs::remove_file(&path);
    growth(c, &runtime);
    #[cfg(all(feature = "encrypted-file-cache", target_os = "linux"))]
    {
        let _ = std::fs::remove_file(&encrypted_path);
        use linux_keyutils::{KeyRing, KeyRingIdentifier};
        if let Ok(key) = KeyRing::get_persistent(KeyRingIdentifier::Process).and_then(|r| r.search(&key_name))
        {
            let _ = key.invalidate();
        }
    }
}

/// A cache hit with 10,000 records of other apps and tenants: in the same file (one file for every app, as
/// `IDENTITY_CACHE_PATH` gives), and in their own files beside this app's (the default layout).
fn growth(c: &mut Criterion, runtime: &tokio::runtime::Runtime) {
    let dir = std::env::temp_dir().join(format!("idcore-bench-growth-{}", std::process::id()));
    let others: Vec<(CacheKey, CacheEntry)> = (0..10_000)
        .map(|i| {
            let key = CacheKey::AccessToken(AccessTokenKey::new(
                None,
                "login.microsoftonline.com",
                &format!("other-app-{i}"),
                &format!("tenant-{}", i % 7),
                &[SCOPE],
            ));
            let token = CachedAccessToken::new(
                SecretToken::new("x".repeat(1500)),
                "Bearer".into(),
                vec![SCOPE.into()],
                now_secs(),
                3600,
                None,
                None,
            );
            (key, CacheEntry::AccessToken(token))
        })
        .collect();
    let shared = dir.join("token-cache.json");
    let own = dir
        .join("token-cache")
        .join("client_contoso.onmicrosoft.com.json");
    runtime
        .block_on(FileCache::new(&shared).put_all(&others))
        .expect("seed the shared file");
    runtime
        .block_on(FileCache::new(dir.join("token-cache").join("others.json")).put_all(&others))
        .expect("seed the other apps' file");
    for (name, path) in [("one file for all apps", &shared), ("a file per app", &own)] {
        let app = client(Arc::new(FileCache::new(path)), runtime);
        c.bench_function(
            &format!("acquire_token_for_client, cache hit, 10,000 other records ({name})"),
            |b| {
                b.to_async(runtime)
                    .iter(|| async { black_box(app.acquire_token_for_client(&[SCOPE]).await.expect("hit")) })
            },
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, silent);
criterion_main!(benches);
