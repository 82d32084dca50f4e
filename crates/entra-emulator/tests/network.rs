//! The simulated network: connections and requests counted over real HTTPS, and the round-trip time applied
//! per connection (2 × RTT) and per answer (1 × RTT). Only lower bounds on time are asserted: a loaded machine
//! can make anything slower, never faster than the delays the emulator adds.
#![allow(clippy::expect_used, reason = "tests")]

mod common;

use std::time::{Duration, Instant};

use entra_emulator::{Emulator, NetworkStats};

use common::{client, start};

fn discovery_url(emu: &Emulator) -> String {
    format!("{}/v2.0/.well-known/openid-configuration", emu.authority())
}

async fn get_ok(http: &reqwest::Client, url: &str) {
    let resp = http.get(url).send().await.expect("request");
    assert_eq!(resp.status(), 200, "{url}");
    resp.bytes().await.expect("body");
}

#[tokio::test]
async fn connections_and_requests_are_counted_per_client_and_reset() {
    let emu = start().await;
    assert_eq!(emu.network_stats(), NetworkStats::default());

    // One client: its requests share one kept-alive connection.
    let first = client(&emu);
    for _ in 0..3 {
        get_ok(&first, &discovery_url(&emu)).await;
    }
    assert_eq!(
        emu.network_stats(),
        NetworkStats {
            connections: 1,
            requests: 3
        }
    );

    // A second client opens a connection of its own; control requests are not counted as requests.
    let second = client(&emu);
    get_ok(&second, &discovery_url(&emu)).await;
    get_ok(&second, &format!("{}/_emulator/health", emu.https_url())).await;
    assert_eq!(
        emu.network_stats(),
        NetworkStats {
            connections: 2,
            requests: 4
        }
    );

    emu.reset_request_counts();
    assert_eq!(emu.network_stats(), NetworkStats::default());
    get_ok(&first, &discovery_url(&emu)).await;
    assert_eq!(
        emu.network_stats(),
        NetworkStats {
            connections: 0,
            requests: 1
        }
    );
}

#[tokio::test]
async fn the_round_trip_time_delays_each_new_connection_twice_and_each_answer_once() {
    const RTT: Duration = Duration::from_millis(40);
    let emu = Emulator::builder()
        .simulated_rtt(RTT)
        .start()
        .await
        .expect("emulator starts");
    let http = client(&emu);

    // A new connection: TCP + TLS handshakes (2 × RTT), then the answer (1 × RTT).
    let started = Instant::now();
    get_ok(&http, &discovery_url(&emu)).await;
    let first = started.elapsed();
    assert!(
        first >= RTT * 3,
        "first request on a new connection took {first:?}"
    );
    assert_eq!(emu.network_stats().connections, 1);

    // The same connection again: the answer's round trip only, but never less.
    let started = Instant::now();
    get_ok(&http, &discovery_url(&emu)).await;
    let again = started.elapsed();
    assert!(
        again >= RTT,
        "a request on a kept-alive connection took {again:?}"
    );

    // Another client pays the handshakes again.
    let other = client(&emu);
    let started = Instant::now();
    get_ok(&other, &discovery_url(&emu)).await;
    let fresh = started.elapsed();
    assert!(
        fresh >= RTT * 3,
        "first request of a second client took {fresh:?}"
    );

    let stats = emu.network_stats();
    assert_eq!(
        stats,
        NetworkStats {
            connections: 2,
            requests: 3
        }
    );
    // Every delay the counters account for was paid.
    let accounted = RTT * u32::try_from(2 * stats.connections + stats.requests).expect("small");
    assert!(first + again + fresh >= accounted);
}

#[tokio::test]
async fn concurrent_clients_each_pay_the_handshakes_and_are_all_counted() {
    const RTT: Duration = Duration::from_millis(30);
    let emu = Emulator::builder()
        .simulated_rtt(RTT)
        .start()
        .await
        .expect("emulator starts");
    let url = discovery_url(&emu);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (http, url) = (client(&emu), url.clone());
        tasks.spawn(async move {
            let started = Instant::now();
            get_ok(&http, &url).await;
            started.elapsed()
        });
    }
    while let Some(elapsed) = tasks.join_next().await {
        let elapsed = elapsed.expect("task");
        assert!(
            elapsed >= RTT * 3,
            "a new connection's first answer took {elapsed:?}"
        );
    }
    assert_eq!(
        emu.network_stats(),
        NetworkStats {
            connections: 4,
            requests: 4
        }
    );
}

#[tokio::test]
async fn the_round_trip_time_can_be_set_while_serving() {
    const RTT: Duration = Duration::from_millis(40);
    let emu = start().await;
    let http = client(&emu);
    get_ok(&http, &discovery_url(&emu)).await;

    emu.set_simulated_rtt(RTT);
    // The open connection: the answer's round trip.
    let started = Instant::now();
    get_ok(&http, &discovery_url(&emu)).await;
    let kept_alive = started.elapsed();
    assert!(kept_alive >= RTT, "took {kept_alive:?}");
    // A new connection: the handshakes too.
    let started = Instant::now();
    get_ok(&client(&emu), &discovery_url(&emu)).await;
    let fresh = started.elapsed();
    assert!(fresh >= RTT * 3, "took {fresh:?}");
    assert_eq!(
        emu.network_stats(),
        NetworkStats {
            connections: 2,
            requests: 3
        }
    );
}
