//! Device codes (RFC 8628 as Entra profiles it): issued by `/devicecode`, approved or declined on the
//! sign-in page, by the admin API or automatically, and redeemed once at the token endpoint.
//!
//! Expiry and auto-approval are applied lazily whenever the store is looked at, so no timer task exists
//! and the state is the same however often it is observed.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::ids::random_string;
use crate::tenancy::ResolvedTenant;

/// Characters of user codes: upper-case letters and digits without the ambiguous `0 O 1 I L`.
const USER_CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
/// Length of user codes (observed: 9).
pub(crate) const USER_CODE_LEN: usize = 9;
/// Live device codes kept at most; the oldest finished ones are dropped first.
const MAX_CODES: usize = 10_000;

/// Where a device code stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceCodeStatus {
    /// Waiting for the user (polls get `authorization_pending`).
    Pending,
    /// The user signed in and consented; the next poll gets the tokens.
    Approved,
    /// The user declined (polls get `authorization_declined`).
    Declined,
    /// Tokens were issued; the code cannot be used again.
    Redeemed,
    /// `expires_in` passed before it was redeemed (polls get `expired_token`).
    Expired,
}

/// A device code as tests and scripts see it (never the secret `device_code` itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DeviceCodeInfo {
    /// The code the user types on the sign-in page (9 characters).
    pub user_code: String,
    /// Application (client) id that asked for it.
    pub client_id: String,
    /// Requested scopes, as sent.
    pub scopes: Vec<String>,
    /// Tenant segment it was issued on (`common`, `organizations`, `consumers` or the tenant GUID).
    pub tenant: String,
    /// Where it stands.
    pub status: DeviceCodeStatus,
    /// Token requests made with it so far.
    pub poll_count: u32,
    /// User principal name of the user who approved it, once approved.
    pub username: Option<String>,
}

/// Who approved a device code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Approval {
    pub user_id: String,
    pub username: String,
    pub tenant_id: String,
    /// Whether a second factor was performed (token `amr` gets `mfa`).
    pub mfa: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum State {
    Pending,
    Approved(Approval),
    Declined,
    Redeemed(Approval),
    Expired,
}

/// One issued device code.
#[derive(Clone)]
pub(crate) struct DeviceCode {
    pub user_code: String,
    pub client_id: String,
    pub app_display_name: String,
    pub issued_on: ResolvedTenant,
    pub scopes: Vec<String>,
    pub issued_at: Instant,
    pub expires_at: Instant,
    pub state: State,
    pub poll_count: u32,
    pub slow_downs_left: u32,
    device_code_hash: [u8; 32],
}

impl fmt::Debug for DeviceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCode")
            .field("user_code", &self.user_code)
            .field("client_id", &self.client_id)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl DeviceCode {
    pub fn info(&self) -> DeviceCodeInfo {
        let (status, username) = match &self.state {
            State::Pending => (DeviceCodeStatus::Pending, None),
            State::Approved(a) => (DeviceCodeStatus::Approved, Some(a.username.clone())),
            State::Declined => (DeviceCodeStatus::Declined, None),
            State::Redeemed(a) => (DeviceCodeStatus::Redeemed, Some(a.username.clone())),
            State::Expired => (DeviceCodeStatus::Expired, None),
        };
        DeviceCodeInfo {
            user_code: self.user_code.clone(),
            client_id: self.client_id.clone(),
            scopes: self.scopes.clone(),
            tenant: self.issued_on.segment().to_owned(),
            status,
            poll_count: self.poll_count,
            username,
        }
    }

    /// Pending or approved codes expire; finished ones keep their state.
    fn expire_if_due(&mut self, now: Instant) {
        if matches!(self.state, State::Pending | State::Approved(_)) && now >= self.expires_at {
            self.state = State::Expired;
        }
    }

    pub fn is_pending(&self) -> bool {
        self.state == State::Pending
    }
}

/// How device codes are issued (from the builder).
#[derive(Clone, Debug)]
pub(crate) struct DeviceConfig {
    pub interval: u64,
    pub lifetime: Duration,
    pub slow_down_polls: u32,
    /// Approve every code as this user this long after it was issued.
    pub auto_approve: Option<(String, Duration)>,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        Self {
            interval: 5,
            lifetime: Duration::from_secs(900),
            slow_down_polls: 0,
            auto_approve: None,
        }
    }
}

/// All device codes, by user code.
#[derive(Default)]
pub(crate) struct DeviceStore {
    codes: HashMap<String, DeviceCode>,
    /// Issue order, for listing and eviction.
    order: Vec<String>,
}

impl fmt::Debug for DeviceStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceStore")
            .field("codes", &self.codes.len())
            .finish_non_exhaustive()
    }
}

/// What `/devicecode` hands out.
pub(crate) struct Issued {
    pub device_code: String,
    pub user_code: String,
}

fn hash(device_code: &str) -> [u8; 32] {
    Sha256::digest(device_code.as_bytes()).into()
}

/// Canonical form of what a user typed: upper case, without spaces and dashes.
pub(crate) fn normalize_user_code(input: &str) -> String {
    input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

impl DeviceStore {
    /// Issues a new code. `scopes` are kept as requested.
    pub fn issue(
        &mut self,
        config: &DeviceConfig,
        client_id: &str,
        app_display_name: &str,
        issued_on: ResolvedTenant,
        scopes: Vec<String>,
    ) -> Issued {
        let now = Instant::now();
        self.evict(now);
        let user_code = loop {
            let candidate = random_string(USER_CODE_LEN, USER_CODE_ALPHABET);
            if !self.codes.contains_key(&candidate) {
                break candidate;
            }
        };
        // Shaped like the real ones: a fixed-looking prefix and a long opaque tail.
        let device_code = format!("BAQABAAEAAAA{}", crate::ids::random_b64url(160));
        self.codes.insert(
            user_code.clone(),
            DeviceCode {
                user_code: user_code.clone(),
                client_id: client_id.to_owned(),
                app_display_name: app_display_name.to_owned(),
                issued_on,
                scopes,
                issued_at: now,
                expires_at: now + config.lifetime,
                state: State::Pending,
                poll_count: 0,
                slow_downs_left: config.slow_down_polls,
                device_code_hash: hash(&device_code),
            },
        );
        self.order.push(user_code.clone());
        Issued {
            device_code,
            user_code,
        }
    }

    /// Drops expired codes beyond the cap, oldest first.
    fn evict(&mut self, now: Instant) {
        if self.codes.len() < MAX_CODES {
            return;
        }
        let mut dropped = 0;
        let excess = self.codes.len() + 1 - MAX_CODES;
        let codes = &mut self.codes;
        self.order.retain(|code| {
            if dropped >= excess {
                return true;
            }
            let finished = codes.get_mut(code).is_none_or(|c| {
                c.expire_if_due(now);
                !matches!(c.state, State::Pending | State::Approved(_))
            });
            if finished {
                codes.remove(code);
                dropped += 1;
            }
            !finished
        });
    }

    /// Applies expiry and auto-approval to every code. `approve_as` is asked, for each pending code whose
    /// auto-approval is due, who approves it (`None`: leave it pending).
    pub fn settle(
        &mut self,
        config: &DeviceConfig,
        mut approve_as: impl FnMut(&DeviceCode, &str) -> Option<Approval>,
    ) {
        let now = Instant::now();
        for code in self.codes.values_mut() {
            code.expire_if_due(now);
            if let Some((username, delay)) = &config.auto_approve
                && code.is_pending()
                && now >= code.issued_at + *delay
                && let Some(approval) = approve_as(code, username)
            {
                code.state = State::Approved(approval);
            }
        }
    }

    /// The code with this user code (normalised), if any.
    pub fn by_user_code(&mut self, user_code: &str) -> Option<&mut DeviceCode> {
        self.codes.get_mut(&normalize_user_code(user_code))
    }

    /// The code with this (secret) device code, if any.
    pub fn by_device_code(&mut self, device_code: &str) -> Option<&mut DeviceCode> {
        let wanted = hash(device_code);
        self.codes
            .values_mut()
            .find(|c| crate::ids::secret_eq_bytes(&c.device_code_hash, &wanted))
    }

    /// Every code, in issue order.
    pub fn list(&self) -> Vec<DeviceCodeInfo> {
        self.order
            .iter()
            .filter_map(|c| self.codes.get(c))
            .map(DeviceCode::info)
            .collect()
    }

    /// The most recently issued pending code.
    pub fn newest_pending(&self) -> Option<DeviceCodeInfo> {
        self.order
            .iter()
            .rev()
            .filter_map(|c| self.codes.get(c))
            .find(|c| c.is_pending())
            .map(DeviceCode::info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with_code(config: &DeviceConfig) -> (DeviceStore, Issued) {
        let mut store = DeviceStore::default();
        let issued = store.issue(
            config,
            "cid",
            "App",
            ResolvedTenant::Organizations,
            vec!["User.Read".into()],
        );
        (store, issued)
    }

    #[test]
    fn user_codes_are_nine_unambiguous_characters() {
        let (mut store, issued) = store_with_code(&DeviceConfig::default());
        assert_eq!(issued.user_code.len(), USER_CODE_LEN);
        assert!(issued.user_code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)));
        assert!(issued.device_code.len() > 150);
        assert!(store.by_device_code(&issued.device_code).is_some());
        assert!(store.by_device_code("nope").is_none());
        let typed = format!(
            " {}-{} ",
            &issued.user_code[..4],
            issued.user_code[4..].to_lowercase()
        );
        assert!(store.by_user_code(&typed).is_some());
    }

    #[test]
    fn codes_expire_and_auto_approve_lazily() {
        let config = DeviceConfig {
            lifetime: Duration::ZERO,
            ..DeviceConfig::default()
        };
        let (mut store, _) = store_with_code(&config);
        store.settle(&config, |_, _| None);
        assert_eq!(store.list()[0].status, DeviceCodeStatus::Expired);

        let config = DeviceConfig {
            auto_approve: Some(("someone".into(), Duration::ZERO)),
            ..DeviceConfig::default()
        };
        let (mut store, _) = store_with_code(&config);
        store.settle(&config, |_, name| {
            Some(Approval {
                user_id: "id".into(),
                username: name.into(),
                tenant_id: "t".into(),
                mfa: false,
            })
        });
        let info = &store.list()[0];
        assert_eq!(info.status, DeviceCodeStatus::Approved);
        assert_eq!(info.username.as_deref(), Some("someone"));
        assert!(store.newest_pending().is_none());
    }
}
