//! The authorization code flow's model: authorization requests in progress on the sign-in page, the
//! authorization codes issued for them, and the browsers' single sign-on (who signed in with which session
//! cookie). Requests, codes and sign-ins are keyed by the SHA-256 of their random handle, never the handle.
//! Codes live [`CODE_LIFETIME`] and are redeemed once; everything is bounded ([`MAX_ENTRIES`] per map, the
//! oldest dropped first).

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use crate::ids::random_b64url;
use crate::tenancy::ResolvedTenant;

/// How long an authorization code can be redeemed. Learn: codes "are short lived. Typically, they expire after
/// about 10 minutes".
pub(crate) const CODE_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// How long a browser may take on the sign-in page for one authorization request.
pub(crate) const REQUEST_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// How long a browser's sign-in lasts for single sign-on.
pub(crate) const SSO_LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Bounds the memory a flood of requests can take.
pub(crate) const MAX_ENTRIES: usize = 10_000;

/// How the authorization response reaches the redirect URI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}

/// The PKCE challenge of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub value: String,
    /// `S256`, else `plain` (what an absent `code_challenge_method` means).
    pub s256: bool,
}

/// The `prompt` parameter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Prompt {
    #[default]
    Unset,
    Login,
    None,
    Consent,
    SelectAccount,
}

/// A checked authorization request: everything the redirect and the code redemption need.
#[derive(Clone, Debug)]
pub(crate) struct AuthRequest {
    pub client_id: String,
    pub app_name: String,
    /// The tenant segment the request was made on.
    pub issued_on: ResolvedTenant,
    /// The redirect URI exactly as sent (the token request must repeat it).
    pub redirect_uri: String,
    /// Whether it matched a "Mobile and desktop" URI (the code is then redeemed without a credential).
    pub public_client: bool,
    pub response_mode: ResponseMode,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub scope: String,
    pub challenge: Option<Challenge>,
    pub login_hint: Option<String>,
    pub prompt: Prompt,
    /// `client_info=1` was asked for on the authorize request.
    pub client_info: bool,
}

/// Where a browser is on the sign-in page for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    SignIn,
    /// Signed in with the password; the emulated second factor comes next.
    Verify {
        tenant_id: String,
        user_id: String,
    },
    /// Signed in; the consent page is shown.
    Consent {
        tenant_id: String,
        user_id: String,
        mfa: bool,
    },
}

struct Pending {
    /// SHA-256 of the page session (cookie) the request belongs to.
    session: [u8; 32],
    request: AuthRequest,
    step: Step,
    created: Instant,
}

/// What redeeming a code yields.
#[derive(Clone, Debug)]
pub(crate) struct IssuedCode {
    pub request: AuthRequest,
    pub tenant_id: String,
    pub user_id: String,
    pub mfa: bool,
    issued: Instant,
    redeemed: bool,
    expired: bool,
}

/// Why a code cannot be redeemed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CodeRefusal {
    Unknown,
    Redeemed,
    Expired,
}

#[derive(Clone, Debug)]
struct SignIn {
    tenant_id: String,
    user_id: String,
    mfa: bool,
    at: Instant,
}

/// The store (in `AppState`).
#[derive(Default)]
pub(crate) struct AuthCodes {
    pending: HashMap<[u8; 32], Pending>,
    codes: HashMap<[u8; 32], IssuedCode>,
    sso: HashMap<[u8; 32], SignIn>,
}

impl fmt::Debug for AuthCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthCodes")
            .field("pending", &self.pending.len())
            .field("codes", &self.codes.len())
            .field("sso", &self.sso.len())
            .finish()
    }
}

pub(crate) fn hash(handle: &str) -> [u8; 32] {
    Sha256::digest(handle.as_bytes()).into()
}

/// Drops entries older than `ttl`, then the oldest while the map is full.
fn prune<V>(map: &mut HashMap<[u8; 32], V>, ttl: Duration, at: impl Fn(&V) -> Instant) {
    let now = Instant::now();
    map.retain(|_, v| now.duration_since(at(v)) < ttl);
    while map.len() >= MAX_ENTRIES {
        let Some(oldest) = map.iter().min_by_key(|(_, v)| at(v)).map(|(k, _)| *k) else {
            break;
        };
        map.remove(&oldest);
    }
}

impl AuthCodes {
    /// Records a request shown to the browser session `session`; returns its handle (a hidden form field).
    pub fn start(&mut self, session: &str, request: AuthRequest) -> String {
        prune(&mut self.pending, REQUEST_LIFETIME, |p| p.created);
        let handle = random_b64url(24);
        self.pending.insert(
            hash(&handle),
            Pending {
                session: hash(session),
                request,
                step: Step::SignIn,
                created: Instant::now(),
            },
        );
        handle
    }

    /// The request and step of `handle`, if it is live and belongs to `session`.
    pub fn pending(&mut self, handle: &str, session: &str) -> Option<(AuthRequest, Step)> {
        self.pending_mut(handle, session)
            .map(|p| (p.request.clone(), p.step.clone()))
    }

    pub fn set_step(&mut self, handle: &str, session: &str, step: Step) {
        if let Some(p) = self.pending_mut(handle, session) {
            p.step = step;
        }
    }

    /// Ends a request (answered: code, error or cancel).
    pub fn finish(&mut self, handle: &str) {
        self.pending.remove(&hash(handle));
    }

    fn pending_mut(&mut self, handle: &str, session: &str) -> Option<&mut Pending> {
        let session = hash(session);
        self.pending
            .get_mut(&hash(handle))
            .filter(|p| p.session == session && p.created.elapsed() < REQUEST_LIFETIME)
    }

    /// Issues a code for a signed-in user; returns the code.
    pub fn issue(&mut self, request: AuthRequest, tenant_id: &str, user_id: &str, mfa: bool) -> String {
        prune(&mut self.codes, CODE_LIFETIME * 2, |c| c.issued);
        // Shaped like the real ones (`1.A…`, long and opaque).
        let code = format!("1.A{}", random_b64url(96));
        self.codes.insert(
            hash(&code),
            IssuedCode {
                request,
                tenant_id: tenant_id.to_owned(),
                user_id: user_id.to_owned(),
                mfa,
                issued: Instant::now(),
                redeemed: false,
                expired: false,
            },
        );
        code
    }

    /// The code's grant, if it can be redeemed, without redeeming it (the caller checks the client, the
    /// redirect URI and the verifier first, then calls [`Self::redeem`]).
    pub fn peek(&mut self, code: &str) -> Result<IssuedCode, CodeRefusal> {
        let issued = self.codes.get(&hash(code)).ok_or(CodeRefusal::Unknown)?;
        if issued.redeemed {
            Err(CodeRefusal::Redeemed)
        } else if issued.expired || issued.issued.elapsed() >= CODE_LIFETIME {
            Err(CodeRefusal::Expired)
        } else {
            Ok(issued.clone())
        }
    }

    /// Marks the code redeemed (it is single-use); refused if it was redeemed (or expired) meanwhile.
    pub fn redeem(&mut self, code: &str) -> Result<(), CodeRefusal> {
        self.peek(code)?;
        if let Some(issued) = self.codes.get_mut(&hash(code)) {
            issued.redeemed = true;
        }
        Ok(())
    }

    /// Makes every code issued so far expired (`Emulator::expire_authorization_codes`).
    pub fn expire_all(&mut self) -> usize {
        self.codes.values_mut().for_each(|c| c.expired = true);
        self.codes.len()
    }

    /// Remembers that the browser session `session` signed in as this user (single sign-on).
    pub fn remember_sign_in(&mut self, session: &str, tenant_id: &str, user_id: &str, mfa: bool) {
        prune(&mut self.sso, SSO_LIFETIME, |s| s.at);
        self.sso.insert(
            hash(session),
            SignIn {
                tenant_id: tenant_id.to_owned(),
                user_id: user_id.to_owned(),
                mfa,
                at: Instant::now(),
            },
        );
    }

    /// `(tenant id, user id, mfa)` of the browser session's sign-in, if it has a live one.
    pub fn signed_in(&self, session: &str) -> Option<(String, String, bool)> {
        self.sso
            .get(&hash(session))
            .filter(|s| s.at.elapsed() < SSO_LIFETIME)
            .map(|s| (s.tenant_id.clone(), s.user_id.clone(), s.mfa))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> AuthRequest {
        AuthRequest {
            client_id: "c".into(),
            app_name: "A".into(),
            issued_on: ResolvedTenant::Common,
            redirect_uri: "http://localhost:1".into(),
            public_client: true,
            response_mode: ResponseMode::FormPost,
            state: None,
            nonce: None,
            scope: "openid".into(),
            challenge: None,
            login_hint: None,
            prompt: Prompt::Unset,
            client_info: false,
        }
    }

    #[test]
    fn codes_are_single_use_and_expire() {
        let mut s = AuthCodes::default();
        let code = s.issue(request(), "t", "u", false);
        assert!(code.starts_with("1.A"));
        assert!(s.peek(&code).is_ok());
        assert!(s.redeem(&code).is_ok());
        assert_eq!(s.peek(&code).err(), Some(CodeRefusal::Redeemed));
        assert_eq!(s.redeem(&code).err(), Some(CodeRefusal::Redeemed));
        let other = s.issue(request(), "t", "u", false);
        s.expire_all();
        assert_eq!(s.peek(&other).err(), Some(CodeRefusal::Expired));
        assert_eq!(s.peek("nope").err(), Some(CodeRefusal::Unknown));
    }

    #[test]
    fn pending_requests_belong_to_their_session() {
        let mut s = AuthCodes::default();
        let handle = s.start("session-a", request());
        assert!(s.pending(&handle, "session-a").is_some());
        assert!(s.pending(&handle, "session-b").is_none());
        s.finish(&handle);
        assert!(s.pending(&handle, "session-a").is_none());
    }
}
