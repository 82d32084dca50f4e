//! Development certificates: an RSA 2048 key and a self-signed certificate, as one would upload to an app
//! registration for certificate credentials (client assertions). The pure-Rust replacement for the quickstart's
//! `openssl req` / `openssl pkcs12` commands: keys as PEM (PKCS#8, PKCS#1, encrypted PKCS#8), certificates as PEM
//! or DER, and both together as PKCS#12 with modern or legacy encryption. The emulator, the tests and the
//! samples' certificate helper use it.

use std::fmt;
use std::time::Duration;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_RSA_SHA256};
use rsa::RsaPrivateKey;
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::pkcs8::{EncodePrivateKey as _, LineEnding};
use rustls::pki_types::PrivatePkcs8KeyDer;
use sha1::Sha1;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use crate::error::EmulatorError;
use crate::formats::{b64std, b64url};

/// How a PKCS#12 file is encrypted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PfxEncryption {
    /// PBES2 with AES-256-CBC and an HMAC-SHA256 MAC (what current tools write).
    Modern,
    /// PBE with SHA-1 and 3-key triple DES, HMAC-SHA1 MAC (what older Windows and OpenSSL 1.x wrote).
    Legacy3Des,
}

/// An RSA 2048 key with a self-signed certificate (`CN={subject}`).
#[derive(Clone)]
pub struct DevCertificate {
    key: RsaPrivateKey,
    key_pkcs8_der: Vec<u8>,
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

fn err(e: impl fmt::Display) -> EmulatorError {
    EmulatorError::Certificate(e.to_string())
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
        let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).map_err(err)?;
        Self::from_key(key, subject, not_before, not_after)
    }

    /// A certificate for an existing key (a renewed certificate, or a test pairing keys and certificates).
    pub fn from_key(
        key: RsaPrivateKey,
        subject: &str,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<Self, EmulatorError> {
        let key_pkcs8_der = key.to_pkcs8_der().map_err(err)?.as_bytes().to_vec();
        let signer = KeyPair::from_pkcs8_der_and_sign_algo(
            &PrivatePkcs8KeyDer::from(key_pkcs8_der.clone()),
            &PKCS_RSA_SHA256,
        )
        .map_err(err)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, subject);
        params.not_before = not_before;
        params.not_after = not_after;
        let cert = params.self_signed(&signer).map_err(err)?;
        Ok(DevCertificate {
            key,
            key_pkcs8_der,
            cert_der: cert.der().to_vec(),
            not_before,
            not_after,
        })
    }

    /// The RSA key.
    pub fn key(&self) -> &RsaPrivateKey {
        &self.key
    }

    /// The key as unencrypted PKCS#8 PEM (`PRIVATE KEY`).
    pub fn key_pem(&self) -> String {
        pem_block("PRIVATE KEY", &self.key_pkcs8_der)
    }

    /// The key as PKCS#1 PEM (`RSA PRIVATE KEY`).
    pub fn key_pkcs1_pem(&self) -> Result<String, EmulatorError> {
        Ok(self.key.to_pkcs1_pem(LineEnding::LF).map_err(err)?.to_string())
    }

    /// The key as encrypted PKCS#8 PEM (`ENCRYPTED PRIVATE KEY`: PBES2, scrypt, AES-256-CBC).
    pub fn encrypted_key_pem(&self, password: &str) -> Result<String, EmulatorError> {
        Ok(self
            .key
            .to_pkcs8_encrypted_pem(&mut rand::rngs::OsRng, password, LineEnding::LF)
            .map_err(err)?
            .to_string())
    }

    /// The certificate, PEM (what one uploads under Certificates & secrets).
    pub fn cert_pem(&self) -> String {
        pem_block("CERTIFICATE", &self.cert_der)
    }

    /// The certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// Key and certificate in one PKCS#12 file.
    pub fn pfx(&self, password: &str, encryption: PfxEncryption) -> Result<Vec<u8>, EmulatorError> {
        use p12_keystore::{
            Certificate, EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, PrivateKey,
            PrivateKeyChain,
        };
        let key = PrivateKey::from_der(&self.key_pkcs8_der).map_err(err)?;
        let cert = Certificate::from_der(&self.cert_der).map_err(err)?;
        let mut store = KeyStore::new();
        let chain = PrivateKeyChain::new(Sha1::digest(&self.cert_der).to_vec(), key, [cert]);
        store.add_entry("identity", KeyStoreEntry::PrivateKeyChain(chain));
        let writer = match encryption {
            PfxEncryption::Modern => store
                .writer(password)
                .encryption_algorithm(EncryptionAlgorithm::PbeWithHmacSha256AndAes256)
                .mac_algorithm(MacAlgorithm::HmacSha256),
            PfxEncryption::Legacy3Des => store
                .writer(password)
                .encryption_algorithm(EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc)
                .mac_algorithm(MacAlgorithm::HmacSha1),
        };
        writer.write().map_err(err)
    }

    /// A PKCS#12 file holding only the certificate (no key): the mistake of exporting without the key.
    pub fn pfx_without_key(&self, password: &str) -> Result<Vec<u8>, EmulatorError> {
        use p12_keystore::{Certificate, KeyStore, KeyStoreEntry};
        let mut store = KeyStore::new();
        store.add_entry(
            "cert",
            KeyStoreEntry::Certificate(Certificate::from_der(&self.cert_der).map_err(err)?),
        );
        store.writer(password).write().map_err(err)
    }

    /// SHA-1 thumbprint, upper-case hex: the portal's Thumbprint column.
    pub fn thumbprint_sha1(&self) -> String {
        hex_upper(&Sha1::digest(&self.cert_der))
    }

    /// SHA-256 thumbprint, upper-case hex.
    pub fn thumbprint_sha256(&self) -> String {
        hex_upper(&Sha256::digest(&self.cert_der))
    }

    /// `x5t` header value: base64url (unpadded) SHA-1 of the DER certificate.
    pub fn x5t(&self) -> String {
        b64url(&Sha1::digest(&self.cert_der))
    }

    /// `x5t#S256` header value: base64url (unpadded) SHA-256 of the DER certificate.
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

fn pem_block(tag: &str, der: &[u8]) -> String {
    let body = b64std(der);
    let mut out = format!("-----BEGIN {tag}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {tag}-----\n"));
    out
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_a_certificate_in_every_format() {
        let cert = DevCertificate::generate("dev", Duration::from_secs(86400)).unwrap();
        assert!(cert.cert_pem().starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(cert.key_pem().contains("BEGIN PRIVATE KEY"));
        assert!(cert.key_pkcs1_pem().unwrap().contains("BEGIN RSA PRIVATE KEY"));
        assert!(
            cert.encrypted_key_pem("pw")
                .unwrap()
                .contains("BEGIN ENCRYPTED PRIVATE KEY")
        );
        for encryption in [PfxEncryption::Modern, PfxEncryption::Legacy3Des] {
            let pfx = cert.pfx("pw", encryption).unwrap();
            let store =
                p12_keystore::KeyStore::from_pkcs12(&pfx, "pw", p12_keystore::Pkcs12ImportPolicy::Strict)
                    .unwrap();
            assert!(store.private_key_chain().is_some(), "{encryption:?}");
        }
        assert_eq!(cert.thumbprint_sha1().len(), 40);
        assert_eq!(cert.thumbprint_sha256().len(), 64);
        assert!(!format!("{cert:?}").contains("MII"), "no key material in Debug");
    }
}
