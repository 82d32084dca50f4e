//! Types that hold secrets. Their `Debug` never shows the value and they have no `Display`, so a secret cannot
//! reach a log line or an error message by accident; reading one takes an explicit `.secret()`.

use std::fmt;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

/// A client secret (the *Value* shown once in the app registration, not the Secret ID). Zeroed on drop.
#[derive(Clone)]
pub struct ClientSecret(SecretString);

impl ClientSecret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        ClientSecret(SecretString::from(value.into()))
    }

    /// The secret value, for the one place that sends it.
    pub fn secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([redacted])")
    }
}

/// A user's password (username/password flow only). Zeroed on drop; never shown by `Debug`.
#[derive(Clone)]
pub struct Password(SecretString);

impl Password {
    /// Wraps a password.
    pub fn new(value: impl Into<String>) -> Self {
        Password(SecretString::from(value.into()))
    }

    /// The password, for the one place that sends it.
    pub fn secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// A token the service issued: an access, refresh or ID token, or a device code (named for what it is, a secret,
/// not for one of its uses). Cheap to clone (shared), never shown by `Debug`. It serializes as the plain string,
/// for cache stores only.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SecretToken(Arc<str>);

impl SecretToken {
    /// Wraps a token string.
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        SecretToken(value.into())
    }

    /// The token, for the `Authorization: Bearer` header.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretToken([redacted {} bytes])", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = ClientSecret::new("s3cr3t~value");
        let token = SecretToken::new("eyJ0eXAiOiJKV1QifQ.payload.sig");
        let shown = format!("{secret:?} {token:?} {:#?}", (&secret, &token));
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(!shown.contains("eyJ0"), "{shown}");
        assert_eq!(secret.secret(), "s3cr3t~value");
    }
}
