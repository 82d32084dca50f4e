//! The sign-in pages' browser sessions: a random token per browser (kept in a cookie by the pages), stored
//! only as its SHA-256, with where the browser is in the device-code flow. Sessions expire after
//! [`SESSION_TTL`]; at most [`MAX_SESSIONS`] are held, the oldest dropped first.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use crate::ids::random_b64url;

/// How long a sign-in session lives.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(30 * 60);
/// Bounds the memory a flood of page loads can take.
pub(crate) const MAX_SESSIONS: usize = 10_000;

/// Where a browser session is in the flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    EnterCode,
    SignIn { user_code: String },
    Verify { user_code: String, username: String },
    Consent { user_code: String, username: String },
}

struct Session {
    created: Instant,
    step: Step,
}

/// Sign-in sessions by the SHA-256 of their token.
#[derive(Default)]
pub(crate) struct Sessions {
    map: HashMap<[u8; 32], Session>,
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("count", &self.map.len())
            .finish()
    }
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Sessions {
    pub(crate) fn create(&mut self) -> String {
        let now = Instant::now();
        self.map
            .retain(|_, s| now.duration_since(s.created) < SESSION_TTL);
        if self.map.len() >= MAX_SESSIONS
            && let Some(oldest) = self.map.iter().min_by_key(|(_, s)| s.created).map(|(k, _)| *k)
        {
            self.map.remove(&oldest);
        }
        let token = random_b64url(32);
        self.map.insert(
            hash(&token),
            Session {
                created: now,
                step: Step::EnterCode,
            },
        );
        token
    }

    /// Whether `token` names a live session (other pages that reuse the session for their forms).
    pub(crate) fn is_live(&mut self, token: &str) -> bool {
        self.get_mut(token).is_some()
    }

    /// Where the session of `token` is in the flow, if it is live.
    pub(crate) fn step(&mut self, token: &str) -> Option<Step> {
        self.get_mut(token).map(|s| s.step.clone())
    }

    /// Moves the live session of `token` to `step`; false if there is no such session.
    pub(crate) fn set_step(&mut self, token: &str, step: Step) -> bool {
        match self.get_mut(token) {
            Some(session) => {
                session.step = step;
                true
            }
            None => false,
        }
    }

    fn get_mut(&mut self, token: &str) -> Option<&mut Session> {
        self.map
            .get_mut(&hash(token))
            .filter(|s| s.created.elapsed() < SESSION_TTL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_by_token() {
        let mut s = Sessions::default();
        let t = s.create();
        assert!(s.get_mut(&t).is_some());
        assert!(s.get_mut("other").is_none());
    }
}
