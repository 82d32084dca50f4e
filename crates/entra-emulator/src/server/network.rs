//! The simulated network: a round-trip time added where a real network adds it, and counters of connections
//! and requests, so a benchmark on loopback shows what each client's round trips cost over the internet.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Connections and requests the listeners saw (since start or the last
/// [`Emulator::reset_request_counts`](crate::Emulator::reset_request_counts)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// TCP connections accepted (each one paid the simulated handshakes).
    pub connections: u64,
    /// HTTP requests answered, `/_emulator/*` control requests excepted.
    pub requests: u64,
}

/// Shared by the listeners of one emulator.
#[derive(Debug, Default)]
pub(crate) struct Network {
    /// Microseconds; changeable while serving ([`crate::Emulator::set_simulated_rtt`]).
    rtt_micros: AtomicU64,
    connections: AtomicU64,
    requests: AtomicU64,
}

impl Network {
    pub fn new(rtt: Duration) -> Self {
        let network = Self::default();
        network.set_rtt(rtt);
        network
    }

    pub fn set_rtt(&self, rtt: Duration) {
        let micros = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
        self.rtt_micros.store(micros, Ordering::Relaxed);
    }

    /// A new connection: counted, then held for 2 × RTT before its TLS handshake (the TCP handshake's round
    /// trip and the TLS 1.3 handshake's; TLS 1.2 takes one more, which this does not model).
    pub async fn connection_opened(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.delay(2).await;
    }

    /// An answer: counted (unless it is a control request), then held for 1 × RTT (the request's way there
    /// and the answer's way back).
    pub async fn answering(&self, control: bool) {
        if !control {
            self.requests.fetch_add(1, Ordering::Relaxed);
        }
        self.delay(1).await;
    }

    async fn delay(&self, round_trips: u32) {
        let rtt = Duration::from_micros(self.rtt_micros.load(Ordering::Relaxed));
        if !rtt.is_zero() {
            tokio::time::sleep(rtt.saturating_mul(round_trips)).await;
        }
    }

    pub fn stats(&self) -> NetworkStats {
        NetworkStats {
            connections: self.connections.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
        }
    }

    pub fn reset(&self) {
        self.connections.store(0, Ordering::Relaxed);
        self.requests.store(0, Ordering::Relaxed);
    }
}
