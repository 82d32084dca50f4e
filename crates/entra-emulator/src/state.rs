//! Shared server state: the directory, the token-signing key, request counters and injected faults.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::auth_codes::AuthCodes;
use crate::device_codes::{DeviceConfig, DeviceStore};
use crate::directory::Directory;
use crate::grants::Grants;
use crate::keys::TokenSigningKey;
use crate::sessions::Sessions;

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

/// Answer the next `times` requests to `endpoint` with `kind` instead of (or by altering) the normal answer.
/// Faults for the same endpoint are consumed in the order they were injected.
///
/// JSON: `{"endpoint":"token","kind":{"type":"reset_mid_body"},"times":2}`; the older flat form
/// `{"endpoint":"graph","status":429,"retry_after":2,"times":3}` still means a [`FaultKind::Status`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "FaultJson", into = "FaultJson")]
pub struct Fault {
    /// Which endpoint kind to fail.
    pub endpoint: Endpoint,
    /// What to answer.
    pub kind: FaultKind,
    /// How many requests to fail (default 1 in JSON).
    pub times: u32,
}

impl Fault {
    /// One request to `endpoint` answered with `kind`.
    pub fn new(endpoint: Endpoint, kind: FaultKind) -> Self {
        Self {
            endpoint,
            kind,
            times: 1,
        }
    }

    /// One request to `endpoint` answered with an error `status` in the endpoint's dialect (and
    /// `Retry-After: retry_after` seconds when given).
    pub fn status(endpoint: Endpoint, status: u16, retry_after: Option<u64>) -> Self {
        Self::new(endpoint, FaultKind::Status { status, retry_after })
    }

    /// The same fault for the next `times` requests.
    #[must_use]
    pub fn times(mut self, times: u32) -> Self {
        self.times = times;
        self
    }

    /// Why the fault cannot be served as asked (an invalid status, header value or origin), if it cannot.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let status = |s: u16, range: std::ops::RangeInclusive<u16>, what: &str| {
            if range.contains(&s) {
                Ok(())
            } else {
                Err(format!(
                    "{what} must be between {} and {}, not {s}",
                    range.start(),
                    range.end()
                ))
            }
        };
        let header = |value: &str, what: &str| {
            axum::http::HeaderValue::from_str(value)
                .map(drop)
                .map_err(|_| format!("{what} is not a valid header value"))
        };
        match &self.kind {
            FaultKind::Status { status: s, .. } => status(*s, 100..=999, "status"),
            FaultKind::Body {
                status: s,
                content_type,
                ..
            } => {
                status(*s, 100..=999, "status")?;
                content_type
                    .as_deref()
                    .map_or(Ok(()), |c| header(c, "content_type"))
            }
            FaultKind::Unauthorized { www_authenticate } => www_authenticate
                .as_deref()
                .map_or(Ok(()), |w| header(w, "www_authenticate")),
            FaultKind::Redirect { status: s, location } => {
                status(*s, 300..=399, "status")?;
                header(location, "location")
            }
            FaultKind::SpoofedDiscovery { origin } => match url::Url::parse(origin) {
                Ok(u)
                    if matches!(u.scheme(), "http" | "https")
                        && u.path() == "/"
                        && !origin.ends_with('/') =>
                {
                    Ok(())
                }
                _ => Err(format!(
                    "origin must be scheme://host[:port] without a path or trailing slash, not '{origin}'"
                )),
            },
            FaultKind::ResetBeforeAnswer
            | FaultKind::ResetMidBody
            | FaultKind::Hang
            | FaultKind::SlowDrip { .. }
            | FaultKind::Patch { .. }
            | FaultKind::Huge { .. } => Ok(()),
        }
    }
}

/// What an injected fault answers. In JSON an object tagged with `type` (`{"type":"slow_drip","duration_ms":2000}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum FaultKind {
    /// An error `status` before any handling, with the endpoint's error body (AADSTS error or Graph error
    /// envelope) and `Retry-After: retry_after` seconds when given.
    Status {
        /// HTTP status (e.g. 429, 503).
        status: u16,
        /// `Retry-After` seconds, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
    /// 401 in the endpoint's dialect (Graph: `InvalidAuthenticationToken`; identity: `invalid_client`), with
    /// `WWW-Authenticate: www_authenticate` when given.
    Unauthorized {
        /// The `WWW-Authenticate` header value (a claims challenge, for instance).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        www_authenticate: Option<String>,
    },
    /// Close the connection without answering.
    ResetBeforeAnswer,
    /// Handle the request, send the headers (with the full `Content-Length`) and half of the body, then close
    /// the connection.
    ResetMidBody,
    /// Never answer (until the emulator stops); the client's timeout must end the wait.
    Hang,
    /// Handle the request, then send the body in 100 pieces spread over `duration_ms`.
    SlowDrip {
        /// How long the whole body takes.
        duration_ms: u64,
    },
    /// Answer with this status, `Content-Type` and body instead of handling the request (HTML pages, empty,
    /// truncated or malformed JSON, wrong shapes, errors sent with status 200…).
    Body {
        /// HTTP status (default 200).
        #[serde(default = "ok_status")]
        status: u16,
        /// `Content-Type` (default `application/json; charset=utf-8`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content_type: Option<String>,
        /// The body, sent as is.
        #[serde(default)]
        body: String,
    },
    /// Handle the request, then set these members of the JSON object it answers (absurd `expires_in` values,
    /// wrong types…), keeping the status and headers. Non-object answers pass unchanged.
    Patch {
        /// Members to set (added or replaced).
        set: serde_json::Map<String, serde_json::Value>,
    },
    /// A 200 JSON answer of `bytes` bytes (default 50 MiB), streamed; with `declare_length` its
    /// `Content-Length` is sent, else it is chunked. Read to the end it is a valid token answer.
    Huge {
        /// Total size.
        #[serde(default = "huge_default")]
        bytes: u64,
        /// Send `Content-Length`.
        #[serde(default)]
        declare_length: bool,
    },
    /// A redirect (`status`, default 302) to `location`, instead of handling the request.
    Redirect {
        /// 3xx status.
        #[serde(default = "found_status")]
        status: u16,
        /// The `Location` header.
        location: String,
    },
    /// Handle the request, then replace the emulator's origin in every URL of the JSON answer with `origin`
    /// (`https://host:port`): on discovery, a document whose `token_endpoint`, `device_authorization_endpoint`,
    /// `issuer`… point to another server; on Graph, a `@odata.nextLink` to another server.
    SpoofedDiscovery {
        /// The other server's origin.
        origin: String,
    },
}

/// Default size of [`FaultKind::Huge`]: 50 MiB.
const HUGE_DEFAULT_BYTES: u64 = 50 * 1024 * 1024;

fn ok_status() -> u16 {
    200
}

fn found_status() -> u16 {
    302
}

fn huge_default() -> u64 {
    HUGE_DEFAULT_BYTES
}

/// The JSON of a [`Fault`]: `kind`, or the older flat `status` and `retry_after`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultJson {
    endpoint: Endpoint,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<FaultKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
    #[serde(default = "one")]
    times: u32,
}

impl TryFrom<FaultJson> for Fault {
    type Error = String;

    fn try_from(json: FaultJson) -> Result<Self, String> {
        let kind = match (json.kind, json.status) {
            (Some(kind), None) if json.retry_after.is_none() => kind,
            (None, Some(status)) => FaultKind::Status {
                status,
                retry_after: json.retry_after,
            },
            (Some(_), _) => {
                return Err(
                    "give either kind or the older status and retry_after, not both (retry_after goes inside a \
                     kind of type status)"
                        .into(),
                );
            }
            (None, None) => {
                return Err(
                    "a fault needs a kind ({\"type\":\"status\",\"status\":503}, …) or a status".into(),
                );
            }
        };
        Ok(Fault {
            endpoint: json.endpoint,
            kind,
            times: json.times,
        })
    }
}

impl From<Fault> for FaultJson {
    fn from(fault: Fault) -> Self {
        FaultJson {
            endpoint: fault.endpoint,
            kind: Some(fault.kind),
            status: None,
            retry_after: None,
            times: fault.times,
        }
    }
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
    /// Authorization requests in progress on the sign-in page, issued authorization codes and the browsers'
    /// single sign-on (`routes::authorize`). Lock order: after `directory`; never held with another store.
    pub auth_codes: Mutex<AuthCodes>,
    /// `https://127.0.0.1:PORT` of the HTTPS listener.
    pub https_url: String,
    pub counters: Counters,
    /// Pending injected faults, in injection order.
    pub faults: Mutex<VecDeque<Fault>>,
    /// Whether a client assertion's `jti` may be used only once.
    pub reject_replayed_assertions: bool,
    /// `(client id, jti)` of accepted client assertions → until when to remember them (unix seconds).
    pub seen_assertions: Mutex<HashMap<(String, String), i64>>,
    /// The emulator's own token issuer (workload identity federation).
    pub workload_issuer: crate::workload_issuer::WorkloadIssuer,
}

impl AppState {
    pub fn directory(&self) -> std::sync::RwLockReadGuard<'_, Directory> {
        self.directory
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `…/devicelogin` on the HTTPS listener as the client addressed it (the HTTPS URL for plain-HTTP requests:
    /// the sign-in page needs its Secure cookie).
    pub fn verification_uri(&self, base: &str) -> String {
        if base.starts_with("https://") {
            format!("{base}/devicelogin")
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

    pub fn auth_codes(&self) -> std::sync::MutexGuard<'_, AuthCodes> {
        self.auth_codes
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
        // The admin API refuses such faults; from Rust they are served as well as they can be.
        if let Err(e) = fault.validate() {
            tracing::warn!(
                endpoint = fault.endpoint.as_str(),
                "injected fault partly unusable: {e}"
            );
        }
        self.faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push_back(fault);
    }

    /// Drops every pending fault; returns how many there were.
    pub fn clear_faults(&self) -> usize {
        let mut faults = self
            .faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = faults.len();
        faults.clear();
        n
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
