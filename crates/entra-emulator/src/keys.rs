//! The token-signing key: RSA 2048, a self-signed certificate for it (its SHA-1 thumbprint is the `kid`
//! and `x5t`), JWKS rendering, signing and verification.

use std::fmt;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_RSA_SHA256};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding};
use rsa::signature::{SignatureEncoding as _, Signer as _, Verifier as _};
use rsa::traits::PublicKeyParts as _;
use rsa::{RsaPrivateKey, RsaPublicKey};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use sha1::{Digest as _, Sha1};
use sha2::Sha256;
use time::{Duration, OffsetDateTime};

use crate::util::{b64std, b64url};

/// The emulator's token-signing key.
pub(crate) struct TokenSigningKey {
    signer: SigningKey<Sha256>,
    verifier: VerifyingKey<Sha256>,
    public: RsaPublicKey,
    key_pem: String,
    cert_der: Vec<u8>,
    kid: String,
}

impl fmt::Debug for TokenSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl TokenSigningKey {
    /// Generates a new RSA 2048 key and its self-signed certificate (CPU-heavy: run off the async runtime).
    pub fn generate() -> Result<Self, String> {
        let mut rng = rand::rngs::OsRng;
        let private =
            RsaPrivateKey::new(&mut rng, 2048).map_err(|e| format!("RSA key generation failed: {e}"))?;
        let key_pem = private
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| format!("cannot encode the signing key: {e}"))?
            .to_string();
        let cert_der = self_signed_cert(&private)?;
        Self::assemble(private, key_pem, cert_der)
    }

    /// Loads a key and certificate written by [`Self::key_pem`] / [`Self::cert_pem`].
    pub fn from_pem(key_pem: &str, cert_pem: &str) -> Result<Self, String> {
        let private =
            RsaPrivateKey::from_pkcs8_pem(key_pem).map_err(|e| format!("invalid signing key: {e}"))?;
        let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| format!("invalid signing certificate: {e}"))?;
        Self::assemble(private, key_pem.to_owned(), cert.to_vec())
    }

    fn assemble(private: RsaPrivateKey, key_pem: String, cert_der: Vec<u8>) -> Result<Self, String> {
        let kid = b64url(&Sha1::digest(&cert_der));
        let public = private.to_public_key();
        Ok(Self {
            verifier: VerifyingKey::<Sha256>::new(public.clone()),
            signer: SigningKey::<Sha256>::new(private),
            public,
            key_pem,
            cert_der,
            kid,
        })
    }

    /// PKCS#8 PEM of the private key (for persistence only).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

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

    /// Key id = `x5t` = base64url(SHA-1(certificate DER)).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWK as published in the JWKS documents.
    pub fn jwk(&self, issuer: Option<&str>) -> serde_json::Value {
        let mut jwk = serde_json::json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": b64url(&self.public.n().to_bytes_be()),
            "e": b64url(&self.public.e().to_bytes_be()),
            "x5c": [b64std(&self.cert_der)],
        });
        if let (Some(issuer), Some(obj)) = (issuer, jwk.as_object_mut()) {
            obj.insert("issuer".to_owned(), serde_json::Value::String(issuer.to_owned()));
        }
        jwk
    }

    /// RS256 signature of `data`.
    pub fn sign(&self, data: &[u8]) -> Vec<u8> {
        self.signer.sign(data).to_vec()
    }

    /// Verifies an RS256 signature.
    pub fn verify(&self, data: &[u8], signature: &[u8]) -> bool {
        match Signature::try_from(signature) {
            Ok(sig) => self.verifier.verify(data, &sig).is_ok(),
            Err(_) => false,
        }
    }
}

/// A self-signed certificate for the signing key (what `x5c` carries and `x5t` hashes).
fn self_signed_cert(private: &RsaPrivateKey) -> Result<Vec<u8>, String> {
    let der = private
        .to_pkcs8_der()
        .map_err(|e| format!("cannot encode the signing key: {e}"))?;
    let key =
        KeyPair::from_pkcs8_der_and_sign_algo(&PrivatePkcs8KeyDer::from(der.as_bytes()), &PKCS_RSA_SHA256)
            .map_err(|e| format!("cannot load the signing key into rcgen: {e}"))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "entra-emulator token signing");
    params.distinguished_name = dn;
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(3650);
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("cannot create the signing certificate: {e}"))?;
    Ok(cert.der().to_vec())
}
