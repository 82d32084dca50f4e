//! Development certificates: an RSA 2048 key and a self-signed certificate, as one would upload to an app
//! registration for certificate credentials (client assertions). The emulator's certificate-credential
//! support builds on this; tests and samples use it to create credentials without OpenSSL.

use std::fmt;
use std::time::Duration;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_RSA_SHA256};
use rsa::RsaPrivateKey;
use rsa::pkcs8::{EncodePrivateKey as _, LineEnding};
use rustls::pki_types::PrivatePkcs8KeyDer;
use sha1::Sha1;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use crate::EmulatorError;
use crate::util::{b64std, b64url};

/// An RSA 2048 key with a self-signed certificate (`CN={subject}`).
#[derive(Clone)]
pub struct DevCertificate {
    key_pem: String,
    cert_der: Vec<u8>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

impl fmt::Debug for DevCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevCertificate")
            .field("thumbprint_sha1", &self.thumbprint_sha1())
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl DevCertificate {
    /// Generates a key and a certificate valid from now (back-dated one minute) for `validity`. CPU-heavy
    /// (RSA key generation): call it from a blocking context when on an async runtime.
    pub fn generate(subject: &str, validity: Duration) -> Result<Self, EmulatorError> {
        let now = OffsetDateTime::now_utc();
        let validity = time::Duration::try_from(validity).unwrap_or(time::Duration::days(3650));
        Self::generate_with_validity(subject, now - time::Duration::minutes(1), now + validity)
    }

    /// Generates a key and a certificate valid between the two instants (use a past `not_after` for an
    /// expired certificate).
    pub fn generate_with_validity(
        subject: &str,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<Self, EmulatorError> {
        let err = |e: String| EmulatorError::Certificate(e);
        let private = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).map_err(|e| err(e.to_string()))?;
        let der = private.to_pkcs8_der().map_err(|e| err(e.to_string()))?;
        let key_pem = private
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| err(e.to_string()))?
            .to_string();
        let key = KeyPair::from_pkcs8_der_and_sign_algo(
            &PrivatePkcs8KeyDer::from(der.as_bytes()),
            &PKCS_RSA_SHA256,
        )
        .map_err(|e| err(e.to_string()))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, subject);
        params.distinguished_name = dn;
        params.not_before = not_before;
        params.not_after = not_after;
        let cert = params.self_signed(&key).map_err(|e| err(e.to_string()))?;
        Ok(Self {
            key_pem,
            cert_der: cert.der().to_vec(),
            not_before,
            not_after,
        })
    }

    /// The private key, PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn key_pem(&self) -> String {
        self.key_pem.clone()
    }

    /// The certificate, PEM.
    pub fn cert_pem(&self) -> String {
        let b64 = b64std(&self.cert_der);
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(chunk));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        pem
    }

    /// The certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// SHA-1 thumbprint, upper-case hex (what the portal shows).
    pub fn thumbprint_sha1(&self) -> String {
        hex_upper(&Sha1::digest(&self.cert_der))
    }

    /// SHA-256 thumbprint, upper-case hex.
    pub fn thumbprint_sha256(&self) -> String {
        hex_upper(&Sha256::digest(&self.cert_der))
    }

    /// `x5t`: base64url (unpadded) SHA-1 of the DER.
    pub fn x5t(&self) -> String {
        b64url(&Sha1::digest(&self.cert_der))
    }

    /// `x5t#S256`: base64url (unpadded) SHA-256 of the DER.
    pub fn x5t_s256(&self) -> String {
        b64url(&Sha256::digest(&self.cert_der))
    }

    /// Start of validity.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// End of validity.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_a_pem_pair_with_thumbprints() {
        let dev = DevCertificate::generate("test", Duration::from_secs(3600)).expect("generate");
        assert!(dev.key_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(dev.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(dev.thumbprint_sha1().len(), 40);
        assert_eq!(dev.thumbprint_sha256().len(), 64);
        assert_eq!(dev.x5t().len(), 27);
        assert!(!format!("{dev:?}").contains("PRIVATE"));
        assert!(dev.not_after() > dev.not_before());
    }
}
