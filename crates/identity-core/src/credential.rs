//! How a confidential client proves its identity.

use crate::secret::ClientSecret;

/// A confidential client's credential.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ClientCredential {
    /// A client secret, sent in the request body (`client_secret_post`), as Entra and MSAL do.
    Secret(ClientSecret),
}

impl From<ClientSecret> for ClientCredential {
    fn from(secret: ClientSecret) -> Self {
        ClientCredential::Secret(secret)
    }
}
