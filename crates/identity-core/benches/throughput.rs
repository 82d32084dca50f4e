//! In-process throughput of `acquire_token_for_client`: batches of 1, 10 and 1,000 concurrent callers against
//! an in-process emulator over HTTPS, on a cold cache (a new client and memory cache per batch, so each batch
//! runs discovery and the token request) and on a warm one (one client whose cache holds the token).
//! Run with `cargo bench -p identity-core --bench throughput`.
//!
//! Besides criterion's numbers it prints, per batch size, calls per second and the token requests one batch
//! made (counted by the emulator), checks that 1,000 concurrent cold callers make exactly one token request,
//! and leaves those counts in `<target>/criterion/identity-core-throughput.json` for the workspace's
//! benchmark report (`cargo run --release -p bench-harness`).

#![allow(clippy::expect_used, reason = "a benchmark stops at the first failure")]

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use entra_emulator::{Emulator, Endpoint};
use identity_core::{Authority, ClientSecret, ConfidentialClient, HttpClient, HttpConfig, MemoryCache};

const SCOPE: &str = "https://graph.microsoft.com/.default";
const CALLERS: [usize; 3] = [1, 10, 1000];

struct Setup {
    runtime: tokio::runtime::Runtime,
    emulator: Emulator,
    http: HttpClient,
    client_id: String,
    secret: String,
}

impl Setup {
    fn new() -> Setup {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let emulator = runtime.block_on(Emulator::builder().start()).expect("emulator");
        let app = emulator.app("daemon").expect("seeded daemon app");
        let mut config = HttpConfig::default().with_extra_ca_pem(emulator.ca_pem());
        config.proxy_from_env = false;
        // One HTTP client (and so one connection pool) for every batch: "cold" means the token cache, not TLS.
        let http = HttpClient::new(config).expect("http client");
        Setup {
            runtime,
            client_id: app.app_id.clone(),
            secret: app.secrets[0].value.clone(),
            emulator,
            http,
        }
    }

    /// A new client with its own empty memory cache.
    fn client(&self) -> ConfidentialClient {
        let authority = Authority::parse(&self.emulator.authority()).expect("authority");
        ConfidentialClient::builder(self.client_id.clone(), authority)
            .client_secret(ClientSecret::new(self.secret.clone()))
            .http_client(self.http.clone())
            .cache(Arc::new(MemoryCache::new()))
            .build()
            .expect("client")
    }

    /// `callers` concurrent `acquire_token_for_client` calls on `app`, all awaited.
    fn batch(&self, app: &ConfidentialClient, callers: usize) {
        self.runtime.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..callers {
                let app = app.clone();
                tasks.spawn(async move { app.acquire_token_for_client(&[SCOPE]).await });
            }
            while let Some(done) = tasks.join_next().await {
                black_box(done.expect("task").expect("token"));
            }
        });
    }

    /// Runs one batch (cold: on a new client) and returns its duration and the token requests it made.
    fn counted_batch(&self, warm: Option<&ConfidentialClient>, callers: usize) -> (Duration, u64) {
        let cold;
        let app = match warm {
            Some(app) => app,
            None => {
                cold = self.client();
                &cold
            }
        };
        self.emulator.reset_request_counts();
        let start = Instant::now();
        self.batch(app, callers);
        let elapsed = start.elapsed();
        (elapsed, self.emulator.request_counts().get(Endpoint::Token))
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

fn throughput(c: &mut Criterion) {
    let setup = Setup::new();
    let warm = setup.client();
    setup.batch(&warm, 1);

    // The counts first, outside criterion: one batch of each kind, token requests counted at the emulator.
    let mut summary = Vec::new();
    let mut cold_1000 = None;
    for callers in CALLERS {
        for (cache, app) in [("cold", None), ("warm", Some(&warm))] {
            let (elapsed, token_requests) = setup.counted_batch(app, callers);
            let per_second = callers as f64 / elapsed.as_secs_f64();
            println!(
                "{callers:>5} concurrent callers, {cache} cache: {per_second:>10.0} calls/s, {token_requests} token \
                 request(s) in the batch"
            );
            if cache == "cold" && callers == 1000 {
                cold_1000 = Some(token_requests);
            }
            summary.push(serde_json::json!({
                "callers": callers, "cache": cache, "calls_per_second": per_second,
                "token_requests_per_batch": token_requests,
            }));
        }
    }
    let cold_1000 = cold_1000.expect("the cold batch of 1000 ran");
    let dir = target_dir().join("criterion");
    let _ = std::fs::create_dir_all(&dir);
    let json = serde_json::json!({"cold_1000_token_requests": cold_1000, "batches": summary});
    if let Err(e) = std::fs::write(dir.join("identity-core-throughput.json"), json.to_string()) {
        eprintln!("could not write the throughput summary: {e}");
    }
    assert_eq!(
        cold_1000, 1,
        "1,000 concurrent cold callers must share one token request"
    );
    println!("1,000 concurrent cold callers: exactly {cold_1000} token request");

    let mut group = c.benchmark_group("acquire_token_for_client throughput");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for callers in CALLERS {
        group.throughput(Throughput::Elements(callers as u64));
        group.bench_function(format!("{callers} callers, cold cache"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // The client is built outside the timed part; discovery and the token request are inside.
                    let app = setup.client();
                    let start = Instant::now();
                    setup.batch(&app, callers);
                    total += start.elapsed();
                }
                total
            })
        });
        group.bench_function(format!("{callers} callers, warm cache"), |b| {
            b.iter(|| setup.batch(&warm, callers))
        });
    }
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
