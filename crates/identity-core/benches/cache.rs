//! Silent acquisition (a cache hit through `acquire_token_for_client`) from memory and from the file store,
//! and the raw store reads. No request is sent: the cache is consulted before discovery.
//! Run with `cargo bench -p identity-core --bench cache`.

#![allow(clippy::expect_used, reason = "a benchmark stops at the first failure")]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use identity_core::cache::now_secs;
use identity_core::{
    AccessToken, AccessTokenKey, Authority, CacheEntry, CacheKey, CachedAccessToken, ClientSecret,
    ConfidentialClient, FileCache, MemoryCache, TokenCache,
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
        AccessToken::new("x".repeat(1500)),
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
    let stores: [(&str, Arc<dyn TokenCache>); 2] = [
        ("memory", Arc::new(MemoryCache::new())),
        ("file", Arc::new(FileCache::new(&path))),
    ];
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
}

criterion_group!(benches, silent);
criterion_main!(benches);
