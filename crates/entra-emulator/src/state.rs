//! Shared server state: the directory, the token-signing key, request counters and injected faults.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::device_codes::{DeviceConfig, DeviceStore};
use crate::directory::Directory;
use crate::grants::Grants;
use crate::keys::TokenSigningKey;
use crate::signin::Sessions;

/// The kinds of endpoints the emulator counts requests for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `/{t}/v2.0/.well-known/openid-configuration` and the v1 document.
    OpenIdConfiguration,
    /// `/{t}/discovery/v2.0/keys` and `/{t}/discovery/keys`.
    Keys,
    /// `/common/discovery/instance`.
    InstanceDiscovery,
    /// `/common/userrealm/{user}`.
    UserRealm,
    /// `/{t}/oauth2/v2.0/devicecode`.
    DeviceCode,
    /// `/{t}/oauth2/v2.0/token`.
    Token,
    /// Everything under `/v1.0/`.
    Graph,
}

impl Endpoint {
    /// All endpoint kinds, in declaration order.
    pub const ALL: [Endpoint; 7] = [
        Endpoint::OpenIdConfiguration,
        Endpoint::Keys,
        Endpoint::InstanceDiscovery,
        Endpoint::UserRealm,
        Endpoint::DeviceCode,
        Endpoint::Token,
        Endpoint::Graph,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// The snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::OpenIdConfiguration => "open_id_configuration",
            Endpoint::Keys => "keys",
            Endpoint::InstanceDiscovery => "instance_discovery",
            Endpoint::UserRealm => "user_realm",
            Endpoint::DeviceCode => "device_code",
            Endpoint::Token => "token",
            Endpoint::Graph => "graph",
        }
    }

    /// Classifies a request path. `None` for paths that are not one of the emulated endpoints.
    pub(crate) fn classify(path: &str) -> Option<Endpoint> {
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match segs.as_slice() {
            ["v1.0", ..] => Some(Endpoint::Graph),
            [_, "v2.0", ".well-known", "openid-configuration"]
            | [_, ".well-known", "openid-configuration"] => Some(Endpoint::OpenIdConfiguration),
            [_, "discovery", "v2.0", "keys"] | [_, "discovery", "keys"] => Some(Endpoint::Keys),
            [_, "discovery", "instance"] => Some(Endpoint::InstanceDiscovery),
            [_, "userrealm", _] => Some(Endpoint::UserRealm),
            [_, "oauth2", "v2.0", "devicecode"] => Some(Endpoint::DeviceCode),
            [_, "oauth2", "v2.0", "token"] => Some(Endpoint::Token),
            _ => None,
        }
    }
}

/// Request counts per endpoint kind since start or the last reset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    counts: [u64; 7],
    other: u64,
}

impl RequestCounts {
    /// Requests to `endpoint`.
    pub fn get(&self, endpoint: Endpoint) -> u64 {
        self.counts[endpoint.index()]
    }

    /// Requests to all emulated endpoints (requests to unknown paths are not included; see [`Self::other`]).
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Requests to paths that are not an emulated endpoint (404s).
    pub fn other(&self) -> u64 {
        self.other
    }
}

impl Serialize for RequestCounts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = serializer.serialize_map(Some(Endpoint::ALL.len() + 2))?;
        for e in Endpoint::ALL {
            map.serialize_entry(e.as_str(), &self.get(e))?;
        }
        map.serialize_entry("other", &self.other)?;
        map.serialize_entry("total", &self.total())?;
        map.end()
    }
}

/// Answer the next `times` requests to `endpoint` with HTTP `status` (and `Retry-After: retry_after` if
/// given) instead of handling them. The body has the dialect of the endpoint (AADSTS error or Graph
/// error envelope). Faults for the same endpoint are consumed in the order they were injected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// Which endpoint kind to fail.
    pub endpoint: Endpoint,
    /// HTTP status to answer with (e.g. 429, 503).
    pub status: u16,
    /// `Retry-After` seconds, if any.
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// How many requests to fail (default 1 in JSON).
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    counts: [AtomicU64; 7],
    other: AtomicU64,
}

impl Counters {
    pub fn hit(&self, endpoint: Option<Endpoint>) {
        match endpoint {
            Some(e) => self.counts[e.index()].fetch_add(1, Ordering::Relaxed),
            None => self.other.fetch_add(1, Ordering::Relaxed),
        };
    }

    pub fn snapshot(&self) -> RequestCounts {
        let mut counts = [0u64; 7];
        for (c, a) in counts.iter_mut().zip(&self.counts) {
            *c = a.load(Ordering::Relaxed);
        }
        RequestCounts {
            counts,
            other: self.other.load(Ordering::Relaxed),
        }
    }

    pub fn reset(&self) {
        for a in &self.counts {
            a.store(0, Ordering::Relaxed);
        }
        self.other.store(0, Ordering::Relaxed);
    }
}

/// Everything the request handlers share.
#[derive(Debug)]
pub(crate) struct AppState {
    pub directory: RwLock<Directory>,
    pub signing_key: TokenSigningKey,
    /// `expires_in` of app-only tokens.
    pub token_lifetime: Duration,
    /// `expires_in` of user tokens when set on the builder (else randomised 60–90 min).
    pub user_token_lifetime: Option<Duration>,
    /// Inactivity after which a refresh token gets AADSTS700082.
    pub refresh_token_lifetime: Duration,
    pub device_config: DeviceConfig,
    /// Device codes. Lock order: `directory` first, then this, then `grants`.
    pub devices: Mutex<DeviceStore>,
    /// Woken whenever a device code is issued (`wait_for_device_code`).
    pub device_issued: tokio::sync::Notify,
    /// Refresh tokens and user consents.
    pub grants: Mutex<Grants>,
    /// Sign-in page sessions.
    pub sessions: Mutex<Sessions>,
    /// `https://127.0.0.1:PORT` of the HTTPS listener.
    pub https_url: String,
    pub counters: Counters,
    pub faults: Mutex<VecDeque<Fault>>,
    /// Whether a client assertion's `jti` may be used only once.
    pub reject_replayed_assertions: bool,
    /// `(client id, jti)` of accepted client assertions → until when to remember them (unix seconds).
    pub seen_assertions: Mutex<HashMap<(String, String), i64>>,
}

impl AppState {
    pub fn directory(&self) -> std::sync::RwLockReadGuard<'_, Directory> {
        self.directory
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `…/devicelogin` on the HTTPS listener as the client addressed it (the HTTPS URL for plain-HTTP requests:
    /// the sign-in page needs its Secure cookie).
    pub fn verification_uri(&self, ctx: &crate::routes::Ctx) -> String {
        if ctx.base.starts_with("https://") {
            format!("{}/devicelogin", ctx.base)
        } else {
            format!("{}/devicelogin", self.https_url)
        }
    }

    pub fn devices(&self) -> std::sync::MutexGuard<'_, DeviceStore> {
        self.devices
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn grants(&self) -> std::sync::MutexGuard<'_, Grants> {
        self.grants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn sessions(&self) -> std::sync::MutexGuard<'_, Sessions> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn inject_fault(&self, fault: Fault) {
        if fault.times == 0 {
            return;
        }
        self.faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push_back(fault);
    }

    /// Records the `jti` of an accepted client assertion of `client_id`, remembered until `until` (unix
    /// seconds). Returns false if it was already recorded (a replay). Forgets expired entries.
    pub fn record_assertion(&self, client_id: &str, jti: &str, now: i64, until: i64) -> bool {
        let mut seen = self
            .seen_assertions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.retain(|_, until| *until >= now);
        let key = (client_id.to_ascii_lowercase(), jti.to_owned());
        if seen.contains_key(&key) {
            return false;
        }
        seen.insert(key, until);
        true
    }

    /// Takes one use of the first pending fault for `endpoint`.
    pub fn take_fault(&self, endpoint: Endpoint) -> Option<Fault> {
        let mut faults = self
            .faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let idx = faults.iter().position(|f| f.endpoint == endpoint)?;
        let fault = faults.get_mut(idx)?;
        fault.times = fault.times.saturating_sub(1);
        let taken = fault.clone();
        if fault.times == 0 {
            faults.remove(idx);
        }
        Some(taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_paths() {
        assert_eq!(Endpoint::classify("/v1.0/users"), Some(Endpoint::Graph));
        assert_eq!(
            Endpoint::classify("/common/v2.0/.well-known/openid-configuration"),
            Some(Endpoint::OpenIdConfiguration)
        );
        assert_eq!(
            Endpoint::classify("/x/.well-known/openid-configuration"),
            Some(Endpoint::OpenIdConfiguration)
        );
        assert_eq!(Endpoint::classify("/x/discovery/v2.0/keys"), Some(Endpoint::Keys));
        assert_eq!(Endpoint::classify("/x/discovery/keys"), Some(Endpoint::Keys));
        assert_eq!(
            Endpoint::classify("/common/discovery/instance"),
            Some(Endpoint::InstanceDiscovery)
        );
        assert_eq!(
            Endpoint::classify("/common/userrealm/a@b.c"),
            Some(Endpoint::UserRealm)
        );
        assert_eq!(
            Endpoint::classify("/t/oauth2/v2.0/devicecode"),
            Some(Endpoint::DeviceCode)
        );
        assert_eq!(Endpoint::classify("/t/oauth2/v2.0/token"), Some(Endpoint::Token));
        assert_eq!(Endpoint::classify("/favicon.ico"), None);
        assert_eq!(Endpoint::classify("/_emulator/requests"), None);
    }

    #[test]
    fn counts_serialize() {
        let c = Counters::default();
        c.hit(Some(Endpoint::Token));
        c.hit(Some(Endpoint::Token));
        c.hit(None);
        let s = c.snapshot();
        assert_eq!(s.get(Endpoint::Token), 2);
        assert_eq!(s.total(), 2);
        let v = serde_json::to_value(&s).expect("json");
        assert_eq!(v["token"], 2);
        assert_eq!(v["other"], 1);
        assert_eq!(v["total"], 2);
        c.reset();
        assert_eq!(c.snapshot().total(), 0);
    }
}
