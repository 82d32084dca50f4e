//! Token responses as Entra sends them, and the result handed to callers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize};

use crate::cache::CachedAccessToken;
use crate::secret::AccessToken;

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
    pub access_token: AccessToken,
    /// Usually `Bearer`.
    pub token_type: String,
    /// Scopes the token was granted for.
    pub scopes: Vec<String>,
    /// When it expires.
    pub expires_on: SystemTime,
    /// When the service asked for it to be refreshed early, if it did.
    pub refresh_on: Option<SystemTime>,
    /// Cache or identity provider.
    pub source: TokenSource,
    /// The `client-request-id` of the request that fetched it (`None` when served from the cache).
    pub correlation_id: Option<String>,
}

impl TokenResult {
    pub(crate) fn from_cached(
        entry: CachedAccessToken,
        source: TokenSource,
        correlation_id: Option<String>,
    ) -> Self {
        let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(secs);
        TokenResult {
            expires_on: at(entry.expires_on),
            refresh_on: entry.refresh_on.map(at),
            access_token: entry.access_token,
            token_type: entry.token_type,
            scopes: entry.scopes,
            source,
            correlation_id,
        }
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
/// strings (the v1 endpoint sent strings).
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

fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumberOrString {
        Number(u64),
        Float(f64),
        Text(String),
    }
    Ok(match Option::<NumberOrString>::deserialize(d)? {
        None => None,
        Some(NumberOrString::Number(n)) => Some(n),
        Some(NumberOrString::Float(f)) if f.is_finite() && f >= 0.0 => Some(f as u64),
        Some(NumberOrString::Float(_)) => return Err(serde::de::Error::custom("a negative lifetime")),
        Some(NumberOrString::Text(s)) => Some(s.trim().parse().map_err(serde::de::Error::custom)?),
    })
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
}
