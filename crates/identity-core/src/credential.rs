//! How a confidential client proves its identity.

use std::sync::Arc;

use crate::certificate::CertificateCredential;
use crate::federated::FederatedCredential;
use crate::secret::ClientSecret;

/// A confidential client's credential.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ClientCredential {
    /// A client secret, sent in the request body (`client_secret_post`), as Entra and MSAL do.
    Secret(ClientSecret),
    /// A certificate: each request carries a signed JWT client assertion (`private_key_jwt`).
    Certificate(Arc<CertificateCredential>),
    /// A token from another identity provider (workload identity federation), sent as the client assertion.
    Federated(Arc<FederatedCredential>),
}

/// Domain separation for secret fingerprints: the digest of a secret here matches no other use of its hash.
const SECRET_FINGERPRINT_DOMAIN: &[u8] = b"identity-core client secret fingerprint v1\0";

/// Hexadecimal digits kept of a fingerprint: enough to tell credentials apart, too few to test guesses of a
/// strong secret against offline with any confidence.
const FINGERPRINT_LEN: usize = 16;

impl ClientCredential {
    /// A one-way fingerprint of the credential, part of the cache key of the tokens it obtains (so a client
    /// with another credential is never served them): 16 hex digits of the SHA-256 of the domain-separated
    /// secret, or of the certificate's SHA-256 thumbprint (its SHA-1 thumbprint when only that is known). The
    /// secret itself never appears.
    pub fn fingerprint(&self) -> String {
        match self {
            ClientCredential::Secret(secret) => {
                let mut context = ring::digest::Context::new(&ring::digest::SHA256);
                context.update(SECRET_FINGERPRINT_DOMAIN);
                context.update(secret.secret().as_bytes());
                let digest = context.finish();
                let mut hex = String::with_capacity(FINGERPRINT_LEN);
                for byte in digest.as_ref() {
                    hex.push_str(&format!("{byte:02x}"));
                    if hex.len() >= FINGERPRINT_LEN {
                        break;
                    }
                }
                hex
            }
            ClientCredential::Certificate(certificate) => certificate
                .thumbprint_sha256()
                .unwrap_or_else(|| certificate.thumbprint_sha1())
                .chars()
                .take(FINGERPRINT_LEN)
                .collect::<String>()
                .to_ascii_lowercase(),
            ClientCredential::Federated(federated) => federated.fingerprint().to_string(),
        }
    }
}

impl From<ClientSecret> for ClientCredential {
    fn from(secret: ClientSecret) -> Self {
        ClientCredential::Secret(secret)
    }
}

impl From<CertificateCredential> for ClientCredential {
    fn from(certificate: CertificateCredential) -> Self {
        ClientCredential::Certificate(Arc::new(certificate))
    }
}

impl From<FederatedCredential> for ClientCredential {
    fn from(federated: FederatedCredential) -> Self {
        ClientCredential::Federated(Arc::new(federated))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_tells_secrets_apart_without_showing_them() {
        let a = ClientCredential::from(ClientSecret::new("right~secret"));
        let b = ClientCredential::from(ClientSecret::new("wrong~secret"));
        assert_eq!(a.fingerprint(), a.clone().fingerprint(), "stable");
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint().len(), FINGERPRINT_LEN);
        assert!(a.fingerprint().chars().all(|c| c.is_ascii_hexdigit()));
        assert!(!a.fingerprint().contains("secret"));
    }
}
