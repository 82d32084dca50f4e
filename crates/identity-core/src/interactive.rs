//! The interactive flow: the authorization code grant with PKCE, the user signing in in the system browser and the
//! answer coming back to a loopback listener (RFC 8252), as MSAL Python 1.39's `acquire_token_interactive` does.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use url::Url;

use crate::error::{Error, HttpError, Result, SignInError};
use crate::http::RequestContext;
use crate::loopback::{Answer, Loopback, constant_time_eq};
use crate::public::{PublicClient, user_scopes, with_oidc_scopes};
use crate::token::{TokenResult, TokenSource};

/// The longest wait for the user by default: long enough for multi-factor authentication, short enough that a
/// forgotten sign-in does not hold a port for ever.
pub const DEFAULT_INTERACTIVE_TIMEOUT: Duration = Duration::from_secs(300);

/// What opens the sign-in page: given the URL, it shows it to the user (a browser, a printed link...) or says
/// why it cannot.
pub type UrlOpener = Arc<dyn Fn(&str) -> std::result::Result<(), String> + Send + Sync>;

/// The `prompt` of the authorization request: what the sign-in page must ask of the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Prompt {
    /// `select_account`: show the account picker, even with a single signed-in account.
    SelectAccount,
    /// `login`: ask for the credentials again, even with a session.
    Login,
    /// `consent`: show the consent page, even when consent was given.
    Consent,
    /// `none`: no interaction at all; the service answers `login_required`, `interaction_required` or
    /// `consent_required` when one is needed.
    None,
    /// `create`: offer to create an account (External ID tenants).
    Create,
}

impl Prompt {
    fn as_str(self) -> &'static str {
        match self {
            Prompt::SelectAccount => "select_account",
            Prompt::Login => "login",
            Prompt::Consent => "consent",
            Prompt::None => "none",
            Prompt::Create => "create",
        }
    }
}

/// Options of [`PublicClient::acquire_token_interactive`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use identity_core::{InteractiveOptions, Prompt};
///
/// let options = InteractiveOptions::new()
///     .with_login_hint("adele@contoso.onmicrosoft.com")
///     .with_domain_hint("contoso.com")
///     .with_prompt(Prompt::SelectAccount)
///     .with_timeout(Duration::from_secs(120))
///     // Instead of the system browser: show the address (an embedded browser, a test driver...).
///     .with_url_opener(|url| {
///         println!("Sign in at {url}");
///         Ok(())
///     });
/// assert_eq!(options.timeout, Duration::from_secs(120));
/// assert_eq!(options.prompt, Some(Prompt::SelectAccount));
/// assert_eq!(InteractiveOptions::new().timeout, identity_core::DEFAULT_INTERACTIVE_TIMEOUT);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct InteractiveOptions {
    /// Pre-fills the sign-in name (`login_hint`).
    pub login_hint: Option<String>,
    /// Skips the home realm discovery page for federated users (`domain_hint`, e.g. `contoso.com`).
    pub domain_hint: Option<String>,
    /// What the page must ask (`prompt`); by default the service decides.
    pub prompt: Option<Prompt>,
    /// How long to wait for the user, from the moment the page is opened.
    pub timeout: Duration,
    open_url: Option<UrlOpener>,
}

impl Default for InteractiveOptions {
    fn default() -> Self {
        InteractiveOptions {
            login_hint: None,
            domain_hint: None,
            prompt: None,
            timeout: DEFAULT_INTERACTIVE_TIMEOUT,
            open_url: None,
        }
    }
}

impl std::fmt::Debug for InteractiveOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InteractiveOptions")
            .field("login_hint", &self.login_hint)
            .field("domain_hint", &self.domain_hint)
            .field("prompt", &self.prompt)
            .field("timeout", &self.timeout)
            .field("open_url", &self.open_url.as_ref().map(|_| "custom"))
            .finish()
    }
}

impl InteractiveOptions {
    /// The defaults: the system browser ([`crate::open_browser`]), no hints, a [`DEFAULT_INTERACTIVE_TIMEOUT`].
    pub fn new() -> InteractiveOptions {
        InteractiveOptions::default()
    }

    /// Pre-fills the sign-in name.
    pub fn with_login_hint(mut self, login_hint: impl Into<String>) -> InteractiveOptions {
        self.login_hint = Some(login_hint.into());
        self
    }

    /// Names the user's domain, so a federated user goes straight to their organisation's page.
    pub fn with_domain_hint(mut self, domain_hint: impl Into<String>) -> InteractiveOptions {
        self.domain_hint = Some(domain_hint.into());
        self
    }

    /// Sets the `prompt`.
    pub fn with_prompt(mut self, prompt: Prompt) -> InteractiveOptions {
        self.prompt = Some(prompt);
        self
    }

    /// Sets how long to wait for the user.
    pub fn with_timeout(mut self, timeout: Duration) -> InteractiveOptions {
        self.timeout = timeout;
        self
    }

    /// Opens the sign-in page with `open` instead of the system browser: print it, hand it to an embedded
    /// browser, or (tests) drive a browser. An `Err` ends the sign-in with [`SignInError::BrowserUnavailable`].
    pub fn with_url_opener(
        mut self,
        open: impl Fn(&str) -> std::result::Result<(), String> + Send + Sync + 'static,
    ) -> InteractiveOptions {
        self.open_url = Some(Arc::new(open));
        self
    }
}

/// The secrets of one attempt: a fresh PKCE verifier, `state` and `nonce` each time.
struct Attempt {
    verifier: String,
    state: String,
    nonce: String,
}

impl Attempt {
    fn new() -> Result<Attempt> {
        let random = |bytes: usize| -> Result<String> {
            let mut buf = vec![0u8; bytes];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut buf).map_err(|_| {
                SignInError::Listener {
                    reason: "the system's random number generator failed".into(),
                }
            })?;
            Ok(URL_SAFE_NO_PAD.encode(buf))
        };
        // 32 bytes: a 43-character verifier of [A-Za-z0-9-_], the RFC 7636 minimum length, as MSAL's.
        Ok(Attempt {
            verifier: random(32)?,
            state: random(16)?,
            nonce: random(16)?,
        })
    }

    /// `BASE64URL(SHA256(verifier))`, the S256 challenge.
    fn challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA256,
            self.verifier.as_bytes(),
        ))
    }
}

impl PublicClient {
    /// Signs a user in with the system browser: the authorization code flow with PKCE, the answer coming back to
    /// a listener on this machine (`http://localhost:<port>`), then the code redeemed for tokens, which are
    /// cached so that later runs are silent ([`PublicClient::acquire_token_silent`]).
    ///
    /// The app registration needs the redirect URI `http://localhost` under "Mobile and desktop applications"
    /// (Entra ignores the port for it). The request asks for `scopes` plus `openid profile offline_access`, with
    /// a fresh PKCE verifier (S256), `state` and `nonce` each call, `response_mode=form_post`; the ID token's
    /// `nonce` is checked before anything is cached. The wait ends after `options.timeout`; dropping the future
    /// (Ctrl-C) closes the listener.
    ///
    /// Errors: the service's answer at the redirect URI (`access_denied` when the user cancels, AADSTS65001,
    /// 50020...) as [`Error::Service`] with every field; [`SignInError::InteractionTimedOut`],
    /// [`SignInError::BrowserUnavailable`] (no browser could be opened: use the device-code flow on such
    /// machines) and [`SignInError::NonceMismatch`] as [`Error::SignIn`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use identity_core::{Authority, InteractiveOptions, PublicClient};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let authority = Authority::parse("https://login.microsoftonline.com/contoso.onmicrosoft.com")?;
    /// let app = PublicClient::builder("00000000-0000-0000-0000-000000000002", authority).build()?;
    /// let options = InteractiveOptions::new().with_url_opener(|url| {
    ///     println!("Sign in at {url}");
    ///     identity_core::open_browser(url)
    /// });
    /// let token = app.acquire_token_interactive(&["User.Read"], options).await?;
    /// println!("Signed in as {}", token.account.map(|a| a.username).unwrap_or_default());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn acquire_token_interactive(
        &self,
        scopes: &[impl AsRef<str>],
        options: InteractiveOptions,
    ) -> Result<TokenResult> {
        let scopes = user_scopes(scopes)?;
        let metadata = self.metadata().await?;
        let endpoint = metadata
            .authorization_endpoint
            .clone()
            .ok_or(SignInError::NoAuthorizationEndpoint)?;
        // The page the user types their password into must be the authority's own.
        if endpoint.origin() != self.authority().origin() {
            return Err(HttpError::InvalidResponse {
                url: self.authority().discovery_url(),
                reason: format!(
                    "authorization_endpoint '{}' is not on the authority's origin ({}); not sending the user there",
                    endpoint.origin().ascii_serialization(),
                    self.authority().host_url()
                ),
            }
            .into());
        }
        let listener = Loopback::bind().await.map_err(|e| SignInError::Listener {
            reason: e.to_string(),
        })?;
        let redirect_uri = listener.redirect_uri();
        let attempt = Attempt::new()?;
        let url = authorization_url(
            endpoint,
            self.client_id(),
            &redirect_uri,
            &scopes,
            &attempt,
            &options,
        );
        tracing::info!(redirect_uri, "opening the sign-in page; waiting for its answer");
        let opened = match &options.open_url {
            Some(open) => open(url.as_str()),
            None => crate::browser::open_browser(url.as_str()),
        };
        opened.map_err(|reason| SignInError::BrowserUnavailable { reason })?;

        let answer = tokio::time::timeout(options.timeout, listener.wait(&attempt.state))
            .await
            .map_err(|_| SignInError::InteractionTimedOut {
                after: options.timeout,
            })?;
        let code = match answer {
            Answer::Code(code) => code,
            Answer::Error(e) => return Err(Error::Service(e)),
        };
        let context = RequestContext::new();
        let grant = [
            ("grant_type", "authorization_code"),
            ("code", code.secret()),
            ("redirect_uri", redirect_uri.as_str()),
            ("code_verifier", attempt.verifier.as_str()),
        ];
        let response = self.redeem(&context, &grant, &scopes).await?;
        let id_token = response.id_token.as_ref().map(|t| t.secret().to_string());
        match id_token.as_deref().map(crate::account::id_token_nonce) {
            Some(Ok(Some(nonce))) if constant_time_eq(nonce.as_bytes(), attempt.nonce.as_bytes()) => {}
            Some(Ok(Some(_))) => {
                return Err(SignInError::NonceMismatch {
                    reason: "it differs".into(),
                }
                .into());
            }
            Some(Ok(None)) => {
                return Err(SignInError::NonceMismatch {
                    reason: "the ID token has no nonce".into(),
                }
                .into());
            }
            Some(Err(reason)) => return Err(SignInError::NonceMismatch { reason }.into()),
            None => {
                return Err(SignInError::NonceMismatch {
                    reason: "the answer has no ID token".into(),
                }
                .into());
            }
        }
        let (account, entry) = self.store(response, &scopes, None).await?;
        Ok(self.result(
            entry,
            TokenSource::IdentityProvider,
            Some(context.correlation_id().to_string()),
            account,
        ))
    }
}

/// The authorization request, in MSAL's parameters.
fn authorization_url(
    mut endpoint: Url,
    client_id: &str,
    redirect_uri: &str,
    scopes: &[String],
    attempt: &Attempt,
    options: &InteractiveOptions,
) -> Url {
    {
        let mut query = endpoint.query_pairs_mut();
        query
            .append_pair("client_id", client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &with_oidc_scopes(scopes))
            .append_pair("state", &attempt.state)
            .append_pair("code_challenge", &attempt.challenge())
            .append_pair("code_challenge_method", "S256")
            .append_pair("nonce", &attempt.nonce)
            .append_pair("response_mode", "form_post")
            .append_pair("client_info", "1");
        if let Some(prompt) = options.prompt {
            query.append_pair("prompt", prompt.as_str());
        }
        if let Some(hint) = options.login_hint.as_deref().filter(|h| !h.trim().is_empty()) {
            query.append_pair("login_hint", hint.trim());
        }
        if let Some(hint) = options.domain_hint.as_deref().filter(|h| !h.trim().is_empty()) {
            query.append_pair("domain_hint", hint.trim());
        }
    }
    endpoint
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_carries_pkce_state_nonce_and_form_post() {
        let attempt = Attempt::new().unwrap();
        assert_eq!(attempt.verifier.len(), 43);
        assert!(
            attempt
                .verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        let options = InteractiveOptions::new()
            .with_prompt(Prompt::SelectAccount)
            .with_login_hint("adele@contoso.com")
            .with_domain_hint("contoso.com");
        let endpoint = Url::parse("https://login.microsoftonline.com/t/oauth2/v2.0/authorize").unwrap();
        let url = authorization_url(
            endpoint,
            "cid",
            "http://localhost:1234",
            &["User.Read".to_string()],
            &attempt,
            &options,
        );
        let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["redirect_uri"], "http://localhost:1234");
        assert_eq!(q["scope"], "User.Read openid profile offline_access");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["response_mode"], "form_post");
        assert_eq!(q["client_info"], "1");
        assert_eq!(q["prompt"], "select_account");
        assert_eq!(q["login_hint"], "adele@contoso.com");
        assert_eq!(q["domain_hint"], "contoso.com");
        assert_eq!(q["state"], attempt.state);
        assert_eq!(q["nonce"], attempt.nonce);
        // RFC 7636 appendix B's example.
        let rfc = Attempt {
            verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
            state: String::new(),
            nonce: String::new(),
        };
        assert_eq!(rfc.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert_ne!(Attempt::new().unwrap().verifier, attempt.verifier);
    }
}
