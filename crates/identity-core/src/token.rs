//! Token responses as Entra sends them, and the result handed to callers.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize};

use crate::account::Account;
use crate::cache::CachedAccessToken;
use crate::error::{ConfigError, HttpError};
use crate::secret::SecretToken;

/// Where a token came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// Served from the token cache, without a request.
    Cache,
    /// Freshly issued by the identity provider.
    IdentityProvider,
}

/// A token ready to use.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TokenResult {
    /// The access token (redacted in `Debug`).
    pub access_token: SecretToken,
    /// `Bearer`.
    pub token_type: Cow<'static, str>,
    /// Scopes the token was granted for.
    pub scopes: Arc<[String]>,
    /// When it expires.
    pub expires_on: SystemTime,
    /// When the service asked for it to be refreshed early, if it did.
    pub refresh_on: Option<SystemTime>,
    /// Cache or identity provider.
    pub source: TokenSource,
    /// The `client-request-id` of the request that fetched it (`None` when served from the cache).
    pub correlation_id: Option<String>,
    /// The signed-in account (user flows); `None` for app-only tokens.
    pub account: Option<Account>,
}

impl TokenResult {
    /// The result for a cache entry. Times that do not fit the clock (a hostile or corrupt store can hold any
    /// number) read as the Unix epoch: already expired, due for refresh.
    pub(crate) fn from_cached(
        entry: CachedAccessToken,
        source: TokenSource,
        correlation_id: Option<String>,
    ) -> Self {
        let at = |secs: u64| {
            UNIX_EPOCH
                .checked_add(Duration::from_secs(secs))
                .unwrap_or(UNIX_EPOCH)
        };
        TokenResult {
            expires_on: at(entry.expires_on),
            refresh_on: entry.refresh_on.map(at),
            access_token: entry.access_token,
            token_type: entry.token_type,
            scopes: entry.scopes,
            source,
            correlation_id,
            account: None,
        }
    }

    pub(crate) fn with_account(mut self, account: Account) -> Self {
        self.account = Some(account);
        self
    }

    /// Time left before the token expires (zero if it already has).
    pub fn expires_in(&self) -> Duration {
        self.expires_on
            .duration_since(SystemTime::now())
            .unwrap_or_default()
    }
}

/// The token type as sent (`Bearer`, compared case-insensitively).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct EntraTokenType(pub String);

impl oauth2::TokenType for EntraTokenType {}

/// A token endpoint success answer (RFC 6749 §5.1 plus Entra's fields). Lifetimes may be numbers or numeric
/// strings (the v1 endpoint sent strings); a number too large for `u64` reads as `u64::MAX`, and
/// [`CachedAccessToken::new`] clamps every lifetime to [`crate::cache::MAX_TOKEN_LIFETIME`]. A negative, fractional
/// text, or non-numeric lifetime is refused, naming the member.
#[derive(Debug, Deserialize, Serialize)]
pub(crate) struct EntraTokenResponse {
    pub access_token: oauth2::AccessToken,
    pub token_type: EntraTokenType,
    #[serde(default, deserialize_with = "seconds")]
    pub expires_in: Option<u64>,
    #[serde(default, deserialize_with = "seconds")]
    pub ext_expires_in: Option<u64>,
    #[serde(default, deserialize_with = "seconds")]
    pub refresh_in: Option<u64>,
    #[serde(default)]
    pub refresh_token: Option<oauth2::RefreshToken>,
    #[serde(default, deserialize_with = "space_separated")]
    pub scope: Option<Vec<oauth2::Scope>>,
    /// User flows with `openid`: who signed in.
    #[serde(default)]
    pub id_token: Option<SecretToken>,
    /// User flows with `client_info=1`: base64url `{"uid","utid"}`.
    #[serde(default)]
    pub client_info: Option<String>,
}

impl oauth2::TokenResponse for EntraTokenResponse {
    type TokenType = EntraTokenType;

    fn access_token(&self) -> &oauth2::AccessToken {
        &self.access_token
    }
    fn token_type(&self) -> &EntraTokenType {
        &self.token_type
    }
    fn expires_in(&self) -> Option<Duration> {
        self.expires_in.map(Duration::from_secs)
    }
    fn refresh_token(&self) -> Option<&oauth2::RefreshToken> {
        self.refresh_token.as_ref()
    }
    fn scopes(&self) -> Option<&Vec<oauth2::Scope>> {
        self.scope.as_ref()
    }
}

impl EntraTokenResponse {
    /// The access token of the answer as a cache entry at `now`: the scopes granted, or the ones `requested` when
    /// the answer names none (RFC 6749 §5.1: then they are as requested).
    pub(crate) fn into_cached_access_token(self, requested: &[String], now: u64) -> CachedAccessToken {
        let granted = self
            .scope
            .map(|s| s.into_iter().map(|s| s.to_string()).collect::<Vec<String>>())
            .unwrap_or_else(|| requested.to_vec());
        // Only Bearer is accepted (see validate_token_response); its usual spelling is kept without allocating.
        let token_type = if self.token_type.0 == "Bearer" {
            Cow::Borrowed("Bearer")
        } else {
            Cow::Owned(self.token_type.0)
        };
        CachedAccessToken::new(
            SecretToken::new(self.access_token.into_secret()),
            token_type,
            granted,
            now,
            self.expires_in.unwrap_or(DEFAULT_EXPIRES_IN),
            self.ext_expires_in,
            self.refresh_in,
        )
    }
}

/// Lifetime assumed when the service omits `expires_in` (as MSAL does).
const DEFAULT_EXPIRES_IN: u64 = 600;

/// Trims scopes, drops empties and duplicates, and sorts them (as MSAL does) so equal requests look equal.
pub(crate) fn normalise_scopes(scopes: &[impl AsRef<str>]) -> Result<Vec<String>, ConfigError> {
    let mut out: Vec<String> = scopes
        .iter()
        .flat_map(|s| s.as_ref().split_whitespace().map(str::to_string))
        .collect();
    out.sort();
    out.dedup();
    if out.is_empty() {
        Err(ConfigError::NoScopes)
    } else {
        Ok(out)
    }
}

/// Parses a token endpoint's success answer. What is wrong is named (the member, or "not JSON: an HTML page"),
/// never quoted: the answer holds tokens.
pub(crate) fn parse_token_response(body: &[u8], url: &str) -> Result<EntraTokenResponse, HttpError> {
    let response: EntraTokenResponse = crate::json::parse_json(body, url, "token response")?;
    validate_token_response(&response, url)?;
    Ok(response)
}

pub(crate) fn validate_token_response(response: &EntraTokenResponse, url: &str) -> Result<(), HttpError> {
    let invalid = |reason: String| HttpError::InvalidResponse {
        url: url.to_string(),
        reason,
    };
    if response.access_token.secret().is_empty() {
        return Err(invalid(
            "member 'access_token' of the token response is empty".into(),
        ));
    }
    if !response.token_type.0.eq_ignore_ascii_case("bearer") {
        // Not quoted: a broken server could put anything there, a token included.
        return Err(invalid(
            "member 'token_type' of the token response is not Bearer".into(),
        ));
    }
    Ok(())
}

/// A lifetime in seconds: a non-negative JSON number (integer or not) or the same written as a string. Values beyond
/// `u64` saturate (they are clamped later); error messages never quote the value and start with "expected", which
/// `parse_json` shows.
fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    use serde::de::Error as _;
    const EXPECTED: &str = "expected a non-negative number of seconds";
    let value = Option::<serde_json::Value>::deserialize(d)?;
    let Some(value) = value else { return Ok(None) };
    match value {
        serde_json::Value::Number(n) => {
            if let Some(n) = n.as_u64() {
                Ok(Some(n))
            } else {
                match n.as_f64() {
                    // `as` saturates: 1e30 becomes u64::MAX.
                    Some(f) if f.is_finite() && f >= 0.0 => Ok(Some(f as u64)),
                    _ => Err(D::Error::custom(EXPECTED)),
                }
            }
        }
        serde_json::Value::String(s) => {
            let text = s.trim();
            if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
                return Ok(Some(text.parse().unwrap_or(u64::MAX)));
            }
            // A number written as text in another notation ("3599.0", "1e30"), as a number would be read.
            match text.parse::<f64>() {
                Ok(f) if f.is_finite() && f >= 0.0 => Ok(Some(f as u64)),
                _ => Err(D::Error::custom(EXPECTED)),
            }
        }
        _ => Err(D::Error::custom(EXPECTED)),
    }
}

fn space_separated<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<oauth2::Scope>>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(|s| {
        s.split_whitespace()
            .map(|scope| oauth2::Scope::new(scope.to_string()))
            .collect()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_normalised() {
        assert_eq!(normalise_scopes(&["b a", " a", "c"]).unwrap(), ["a", "b", "c"]);
        assert!(matches!(normalise_scopes(&[" "]), Err(ConfigError::NoScopes)));
        assert!(matches!(
            normalise_scopes(&[] as &[&str]),
            Err(ConfigError::NoScopes)
        ));
    }

    #[test]
    fn accepts_numbers_and_numeric_strings() {
        let r: EntraTokenResponse = serde_json::from_str(
            r#"{"token_type":"Bearer","expires_in":"3599","ext_expires_in":3599,"refresh_in":1799.0,"access_token":"a","scope":"User.Read openid"}"#,
        )
        .unwrap();
        assert_eq!(
            (r.expires_in, r.ext_expires_in, r.refresh_in),
            (Some(3599), Some(3599), Some(1799))
        );
        assert_eq!(r.scope.unwrap().len(), 2);
        let minimal: EntraTokenResponse =
            serde_json::from_str(r#"{"token_type":"bearer","access_token":"a"}"#).unwrap();
        assert_eq!(minimal.expires_in, None);
        assert!(serde_json::from_str::<EntraTokenResponse>(r#"{"token_type":"Bearer"}"#).is_err());
    }

    #[test]
    fn a_token_type_other_than_bearer_is_refused_without_quoting_it() {
        let body = r#"{"token_type":"eyJ0eXAiOiJKV1Qi.secret","access_token":"a"}"#;
        let err = parse_token_response(body.as_bytes(), "https://login.example/t").unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(shown.contains("member 'token_type'"), "{shown}");
        assert!(!shown.contains("eyJ0eX"), "{shown}");
    }

    #[test]
    fn huge_lifetimes_saturate_and_bad_ones_are_refused() {
        let parse = |lifetime: &str| {
            serde_json::from_str::<EntraTokenResponse>(&format!(
                r#"{{"token_type":"Bearer","access_token":"a","expires_in":{lifetime}}}"#
            ))
            .map(|r| r.expires_in)
        };
        for huge in [
            "1e30",
            "18446744073709551615",
            "\"99999999999999999999999\"",
            "1e300",
            "\"1e30\"",
        ] {
            assert_eq!(parse(huge).unwrap(), Some(u64::MAX), "{huge}");
        }
        assert_eq!(parse("\" 3599 \"").unwrap(), Some(3599));
        assert_eq!(parse("\"1e3\"").unwrap(), Some(1000));
        for bad in [
            "-1", "-0.5", "\"NaN\"", "\"inf\"", "\"-1e3\"", "\"\"", "true", "[]", "{}",
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(
                err.starts_with("expected a non-negative number of seconds"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn a_cached_entry_with_unrepresentable_times_reads_as_expired() {
        let mut entry =
            CachedAccessToken::new(SecretToken::new("t"), "Bearer".into(), vec![], 0, 60, None, None);
        entry.expires_on = u64::MAX;
        entry.refresh_on = Some(u64::MAX);
        let result = TokenResult::from_cached(entry, TokenSource::Cache, None);
        assert_eq!(result.expires_on, UNIX_EPOCH);
        assert_eq!(result.refresh_on, Some(UNIX_EPOCH));
        assert_eq!(result.expires_in(), Duration::ZERO);
    }
}
