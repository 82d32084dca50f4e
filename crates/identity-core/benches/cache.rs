//! Silent acquisition (a cache hit through `acquire_token_for_client`) from memory and from the file store,
//! and the raw store reads. No request is sent: the cache is consulted before discovery.
//! Run with `cargo bench -p identity-core --bench cache`; add `--features encrypted-file-cache` to measure the
//! encrypted file store too (Linux: its key goes into the kernel keyring and is removed at the end).

#![allow(clippy::expect_used, reason = "a benchmark stops at the first failure")]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use identity_core::now_secs;
use identity_core::{
    AccessTokenKey, Authority, CacheEntry, CacheKey, CachedAccessToken, ClientSecret, ConfidentialClient,
    FileCache, MemoryCache, SecretToken, TokenCache,
};

const SCOPE: &str = "https://graph.microsoft.com/.default";

fn client(cache: Arc<dyn TokenCache>, runtime: &tokio::runtime::Runtime) -> ConfidentialClient {
    let authority =
        Authority::parse("https://login.microsoftonline.com/contoso.onmicrosoft.com").expect("authority");
    let key = CacheKey::AccessToken(AccessTokenKey::new(
        None,
        &authority.environment(),
        "client",
        authority.tenant(),
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
            b.iter(|| {
                black_box(
                    runtime
                        .block_on(app.acquire_token_for_client(&[SCOPE]))
                        .expect("hit"),
                )
            })
        });
    }
    let _ = std::fs::remove_file(&path);
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

criterion_group!(benches, silent);
criterion_main!(benches);
