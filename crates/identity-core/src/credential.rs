//! How a confidential client proves its identity.

use std::sync::Arc;

use crate::certificate::CertificateCredential;
use crate::secret::ClientSecret;

/// A confidential client's credential.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ClientCredential {
    /// A client secret, sent in the request body (`client_secret_post`), as Entra and MSAL do.
    Secret(ClientSecret),
    /// A certificate: each request carries a signed JWT client assertion (`private_key_jwt`).
    Certificate(Arc<CertificateCredential>),
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
