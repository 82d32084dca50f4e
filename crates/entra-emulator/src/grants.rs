//! What user sign-ins leave behind: refresh tokens (opaque, remembered by their SHA-256) and the scopes
//! users consented to on the sign-in page.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use crate::ids::random_b64url;

/// Default refresh-token inactivity lifetime (Entra: 90 days).
pub(crate) const DEFAULT_REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(90 * 86_400);
/// Refresh tokens kept at most; the least recently used are forgotten first.
const MAX_REFRESH_TOKENS: usize = 50_000;

/// What a refresh token stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RefreshGrant {
    pub client_id: String,
    pub user_id: String,
    pub tenant_id: String,
    /// Graph scopes granted, canonical spelling.
    pub graph_scopes: Vec<String>,
    pub mfa: bool,
    pub issued_at: OffsetDateTime,
    pub last_used: OffsetDateTime,
    /// Set by `revoke_refresh_tokens` (AADSTS50173).
    pub revoked: bool,
    /// Set by `expire_refresh_tokens` (AADSTS700082 on next use).
    pub expired: bool,
}

/// Why a refresh token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RefreshRefusal {
    Unknown,
    Revoked {
        issued_at: OffsetDateTime,
    },
    Expired {
        issued_at: OffsetDateTime,
        inactive_secs: u64,
    },
}

#[derive(Default)]
pub(crate) struct Grants {
    refresh: HashMap<[u8; 32], RefreshGrant>,
    /// `(user id, app id in lower case)` → scopes the user consented to (compared case-insensitively).
    consents: HashMap<(String, String), BTreeSet<String>>,
}

impl fmt::Debug for Grants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grants")
            .field("refresh_tokens", &self.refresh.len())
            .field("consents", &self.consents.len())
            .finish()
    }
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Grants {
    /// Issues a new opaque refresh token (`0.A…`, as work-account tokens look) for `grant`.
    pub fn issue_refresh_token(&mut self, grant: RefreshGrant) -> String {
        if self.refresh.len() >= MAX_REFRESH_TOKENS
            && let Some(oldest) = self
                .refresh
                .iter()
                .min_by_key(|(_, g)| g.last_used)
                .map(|(k, _)| *k)
        {
            self.refresh.remove(&oldest);
        }
        let token = format!("0.A{}", random_b64url(240));
        self.refresh.insert(hash(&token), grant);
        token
    }

    /// Checks a presented refresh token and marks it used. Old tokens stay valid after rotation, as Entra's do.
    pub fn use_refresh_token(
        &mut self,
        token: &str,
        client_id: &str,
        lifetime: Duration,
        now: OffsetDateTime,
    ) -> Result<RefreshGrant, RefreshRefusal> {
        let grant = self
            .refresh
            .get_mut(&hash(token))
            .filter(|g| crate::ids::guid_eq(&g.client_id, client_id))
            .ok_or(RefreshRefusal::Unknown)?;
        if grant.revoked {
            return Err(RefreshRefusal::Revoked {
                issued_at: grant.issued_at,
            });
        }
        let inactive = now - grant.last_used;
        let inactive_secs = u64::try_from(inactive.whole_seconds()).unwrap_or(0);
        if grant.expired || inactive_secs > lifetime.as_secs() {
            return Err(RefreshRefusal::Expired {
                issued_at: grant.issued_at,
                inactive_secs,
            });
        }
        grant.last_used = now;
        Ok(grant.clone())
    }

    /// Revokes every refresh token of a user. Returns how many.
    pub fn revoke_user(&mut self, user_id: &str) -> usize {
        let mut n = 0;
        for g in self.refresh.values_mut().filter(|g| g.user_id == user_id) {
            g.revoked = true;
            n += 1;
        }
        n
    }

    /// Makes every refresh token count as expired through inactivity.
    pub fn expire_all(&mut self) {
        for g in self.refresh.values_mut() {
            g.expired = true;
        }
    }

    /// Records that a user consented to `scopes` for an app.
    pub fn consent(&mut self, user_id: &str, app_id: &str, scopes: &[String]) {
        let set = self
            .consents
            .entry((user_id.to_owned(), app_id.to_ascii_lowercase()))
            .or_default();
        for scope in scopes {
            if !set.iter().any(|s| s.eq_ignore_ascii_case(scope)) {
                set.insert(scope.clone());
            }
        }
    }

    /// The scopes a user consented to for an app, as spelled when consented.
    pub fn user_consents(&self, user_id: &str, app_id: &str) -> Vec<String> {
        self.consents
            .get(&(user_id.to_owned(), app_id.to_ascii_lowercase()))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(now: OffsetDateTime) -> RefreshGrant {
        RefreshGrant {
            client_id: "3f2c8a91-5b7e-4d06-9c1a-8e4b2d7f6a53".into(),
            user_id: "u".into(),
            tenant_id: "t".into(),
            graph_scopes: vec!["User.Read".into()],
            mfa: false,
            issued_at: now,
            last_used: now,
            revoked: false,
            expired: false,
        }
    }

    #[test]
    fn refresh_tokens_are_checked_revoked_and_expired() {
        let now = OffsetDateTime::now_utc();
        let mut g = Grants::default();
        let client = "3F2C8A91-5B7E-4D06-9C1A-8E4B2D7F6A53";
        let rt = g.issue_refresh_token(grant(now));
        assert!(rt.starts_with("0.A"));
        let life = DEFAULT_REFRESH_TOKEN_LIFETIME;
        assert!(g.use_refresh_token(&rt, client, life, now).is_ok());
        assert_eq!(
            g.use_refresh_token(&rt, "other", life, now),
            Err(RefreshRefusal::Unknown)
        );
        assert_eq!(
            g.use_refresh_token("junk", client, life, now),
            Err(RefreshRefusal::Unknown)
        );
        let later = now + time::Duration::seconds(10);
        assert!(matches!(
            g.use_refresh_token(&rt, client, Duration::from_secs(5), later),
            Err(RefreshRefusal::Expired {
                inactive_secs: 10,
                ..
            })
        ));
        g.expire_all();
        assert!(matches!(
            g.use_refresh_token(&rt, client, life, now),
            Err(RefreshRefusal::Expired { .. })
        ));
        let rt2 = g.issue_refresh_token(grant(now));
        assert_eq!(g.revoke_user("u"), 2);
        assert!(matches!(
            g.use_refresh_token(&rt2, client, life, now),
            Err(RefreshRefusal::Revoked { .. })
        ));
    }

    #[test]
    fn consents_accumulate_case_insensitively() {
        let mut g = Grants::default();
        g.consent("u", "APP", &["User.Read".into()]);
        g.consent("u", "app", &["Mail.Read".into()]);
        g.consent("u", "app", &["user.read".into()]);
        let c = g.user_consents("u", "App");
        assert_eq!(c, ["Mail.Read", "User.Read"]);
        assert!(g.user_consents("v", "app").is_empty());
    }
}
