//! The token-signing key: RSA 2048, a self-signed certificate for it (its SHA-1 thumbprint is the `kid`
//! and `x5t`), JWKS rendering, signing and verification.
//!
//! `ring` signs and verifies (about 2.5× faster than the pure-Rust `rsa` crate for the same key: RS256 is
//! RSASSA-PKCS1-v1_5, deterministic, so the bytes are identical); `rsa` only generates the key, which `ring`
//! cannot do.

use std::fmt;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_RSA_SHA256};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair, UnparsedPublicKey};
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding};
use rsa::traits::PublicKeyParts as _;
use rsa::{RsaPrivateKey, RsaPublicKey};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use sha1::{Digest as _, Sha1};
use time::{Duration, OffsetDateTime};

use crate::formats::{b64std, b64url};

/// The emulator's token-signing key.
pub(crate) struct TokenSigningKey {
    signer: RsaKeyPair,
    /// `RSAPublicKey` DER, what `ring` verifies with.
    verifier: UnparsedPublicKey<Vec<u8>>,
    rng: SystemRandom,
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
        let der = private
            .to_pkcs8_der()
            .map_err(|e| format!("cannot encode the signing key: {e}"))?;
        let signer = RsaKeyPair::from_pkcs8(der.as_bytes())
            .map_err(|e| format!("the signing key is not usable for RS256: {e}"))?;
        let verifier = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, signer.public().as_ref().to_vec());
        Ok(Self {
            signer,
            verifier,
            rng: SystemRandom::new(),
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
    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>, String> {
        let mut signature = vec![0; self.signer.public().modulus_len()];
        // The random source only blinds the computation; PKCS#1 v1.5 signatures are deterministic.
        self.signer
            .sign(&RSA_PKCS1_SHA256, &self.rng, data, &mut signature)
            .map_err(|_| "RS256 signing failed".to_owned())?;
        Ok(signature)
    }

    /// Verifies an RS256 signature.
    pub fn verify(&self, data: &[u8], signature: &[u8]) -> bool {
        self.verifier.verify(data, signature).is_ok()
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use std::time::Instant;

    use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
    use rsa::signature::{SignatureEncoding as _, Signer as _, Verifier as _};
    use rsa::{BigUint, RsaPublicKey};
    use sha2::Sha256;

    use super::*;
    use crate::formats::b64url_decode;

    /// The key the emulator had before ring signed: the same PEM, loaded the old way.
    fn old_signer(key: &TokenSigningKey) -> SigningKey<Sha256> {
        SigningKey::<Sha256>::new(RsaPrivateKey::from_pkcs8_pem(key.key_pem()).unwrap())
    }

    #[test]
    fn ring_signs_the_same_bytes_as_the_rsa_crate_and_they_verify_with_the_published_jwk() {
        let key = TokenSigningKey::generate().unwrap();
        let old = old_signer(&key);
        let jwk = key.jwk(None);
        let n = BigUint::from_bytes_be(&b64url_decode(jwk["n"].as_str().unwrap()).unwrap());
        let e = BigUint::from_bytes_be(&b64url_decode(jwk["e"].as_str().unwrap()).unwrap());
        let published = VerifyingKey::<Sha256>::new(RsaPublicKey::new(n, e).unwrap());
        for input in [&b"eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJ4In0"[..], b"", &[0xff; 3000]] {
            let ring_signature = key.sign(input).unwrap();
            assert_eq!(ring_signature, old.sign(input).to_vec());
            let sig = Signature::try_from(ring_signature.as_slice()).unwrap();
            assert!(published.verify(input, &sig).is_ok());
            assert!(key.verify(input, &ring_signature));
            let mut tampered = ring_signature.clone();
            tampered[10] ^= 1;
            assert!(!key.verify(input, &tampered));
        }
    }

    #[test]
    fn a_key_reloaded_from_its_pem_signs_the_same_bytes() {
        let key = TokenSigningKey::generate().unwrap();
        let reloaded = TokenSigningKey::from_pem(key.key_pem(), &key.cert_pem()).unwrap();
        assert_eq!(reloaded.kid(), key.kid());
        assert_eq!(reloaded.sign(b"a.b").unwrap(), key.sign(b"a.b").unwrap());
        assert!(!key.verify(b"a.b", b"not a signature"));
    }

    /// Not a check: prints the per-token signing time of both paths, for docs/benchmarks.md
    /// (`cargo test --release -p entra-emulator --lib signing_time -- --ignored --nocapture`).
    #[test]
    #[ignore = "a measurement, not a test"]
    fn signing_time() {
        let key = TokenSigningKey::generate().unwrap();
        let old = old_signer(&key);
        // An access token's signing input is about 1.3 KB.
        let input = vec![b'a'; 1300];
        let rounds = 200u32;
        let time = |f: &dyn Fn()| {
            f();
            let start = Instant::now();
            for _ in 0..rounds {
                f();
            }
            start.elapsed() / rounds
        };
        let ring = time(&|| drop(std::hint::black_box(key.sign(&input).unwrap())));
        let rsa = time(&|| drop(std::hint::black_box(old.sign(&input).to_vec())));
        println!("per RS256 signature: ring {ring:?}, rsa crate {rsa:?}");
    }
}
