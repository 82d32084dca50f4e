//! Certificate credentials: load an RSA key and its certificate (PEM, PKCS#12), and sign client assertions the
//! way MSAL does (PS256 + `x5t#S256` by default, RS256 + `x5t` on request), reusing each one until shortly before
//! it expires. Pure Rust: `ring` signs, `x509-parser` reads certificates, `p12-keystore` reads PFX files.

use std::fmt;
use std::path::Path;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{self, RsaKeyPair};

use crate::cache::now_secs;

/// How long a client assertion is valid (MSAL: 10 minutes).
const ASSERTION_LIFETIME: u64 = 600;
/// A cached assertion is replaced this long before it expires (MSAL: one minute).
const ASSERTION_RENEW_BEFORE: u64 = 60;
/// Warn when the certificate expires within this many seconds (30 days).
const EXPIRY_WARNING: u64 = 30 * 24 * 3600;

const RSA_ENCRYPTION_OID: &str = "1.2.840.113549.1.1.1";

/// Why a certificate credential cannot be used. Nothing was sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// The file does not exist.
    #[error("certificate file '{path}' not found")]
    NotFound {
        /// The path.
        path: String,
    },
    /// The file exists but cannot be read.
    #[error("cannot read '{path}': {reason}")]
    Unreadable {
        /// The path.
        path: String,
        /// The OS error.
        reason: String,
    },
    /// The password does not open the PFX or the encrypted key.
    #[error("wrong password for '{path}'")]
    WrongPassword {
        /// The file.
        path: String,
    },
    /// The key is encrypted and no password was given.
    #[error("the private key in '{path}' is encrypted, and no password was given")]
    PasswordRequired {
        /// The file.
        path: String,
    },
    /// No private key in the file.
    #[error("'{path}' holds no private key")]
    NoKey {
        /// The file.
        path: String,
    },
    /// No certificate in the file.
    #[error("'{path}' holds no certificate")]
    NoCertificate {
        /// The file.
        path: String,
    },
    /// The key is not the certificate's.
    #[error("the private key does not match the certificate ({subject})")]
    KeyMismatch {
        /// The certificate's subject.
        subject: String,
    },
    /// A key type other than RSA.
    #[error("the private key in '{path}' is {found}, but Microsoft Entra client assertions need an RSA key")]
    NotRsa {
        /// The file.
        path: String,
        /// What was found.
        found: String,
    },
    /// The RSA key is unusable (too small, malformed).
    #[error("the RSA key in '{path}' was rejected: {reason}")]
    KeyRejected {
        /// The file.
        path: String,
        /// ring's reason.
        reason: String,
    },
    /// The certificate has expired.
    #[error("the certificate ({subject}) expired on {not_after}")]
    Expired {
        /// The certificate's subject.
        subject: String,
        /// Its end date (RFC 3339).
        not_after: String,
    },
    /// The certificate is not valid yet.
    #[error("the certificate ({subject}) is not valid before {not_before}")]
    NotYetValid {
        /// The certificate's subject.
        subject: String,
        /// Its start date (RFC 3339).
        not_before: String,
    },
    /// A thumbprint that is not 40 hexadecimal digits.
    #[error("thumbprint '{value}' is not a SHA-1 thumbprint (40 hexadecimal digits)")]
    BadThumbprint {
        /// What was given.
        value: String,
    },
    /// The file is not in a format we read, or is damaged.
    #[error("cannot parse '{path}': {reason}")]
    Malformed {
        /// The file.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// Signing failed (should not happen with a valid key).
    #[error("could not sign the client assertion")]
    Signing,
}

impl CertificateError {
    /// A one-line fix.
    pub fn fix(&self) -> Option<&'static str> {
        Some(match self {
            CertificateError::NotFound { .. } | CertificateError::Unreadable { .. } => {
                "Check the certificate path: it must name a readable PEM or .pfx/.p12 file."
            }
            CertificateError::WrongPassword { .. } | CertificateError::PasswordRequired { .. } => {
                "Give the password the certificate file was exported with."
            }
            CertificateError::NoKey { .. } => {
                "Use a file that includes the private key (a PFX exported with its key, or a PEM with a PRIVATE KEY block)."
            }
            CertificateError::NoCertificate { .. } => {
                "Add the certificate (-----BEGIN CERTIFICATE-----) to the PEM file, give it separately, or give its SHA-1 thumbprint."
            }
            CertificateError::KeyMismatch { .. } => {
                "Use the private key that was generated together with this certificate."
            }
            CertificateError::NotRsa { .. } | CertificateError::KeyRejected { .. } => {
                "Create an RSA certificate of 2048 bits or more (the certificate helper does)."
            }
            CertificateError::Expired { .. } | CertificateError::NotYetValid { .. } => {
                "Create a new certificate, upload it under Certificates & secrets, and point the sample at it."
            }
            CertificateError::BadThumbprint { .. } => {
                "Copy the Thumbprint column from Certificates & secrets: 40 hexadecimal digits."
            }
            CertificateError::Malformed { .. } => {
                "Give a PEM file (PKCS#8 or PKCS#1 key, and certificate) or a PKCS#12 .pfx/.p12 file."
            }
            CertificateError::Signing => return None,
        })
    }
}

/// The signing algorithm and header of client assertions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssertionAlgorithm {
    /// RSASSA-PSS with SHA-256, header `x5t#S256`: what current MSALs send and Microsoft recommends.
    Ps256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, header `x5t` (SHA-1 thumbprint): the classic form.
    Rs256,
}

/// An RSA private key with its certificate chain, ready to sign client assertions.
pub struct CertificateCredential {
    key: RsaKeyPair,
    /// DER certificates, leaf first (empty when only a thumbprint was given).
    chain: Vec<Vec<u8>>,
    sha1: Vec<u8>,
    sha256: Option<Vec<u8>>,
    not_after: Option<i64>,
    algorithm: AssertionAlgorithm,
    send_x5c: bool,
    rng: SystemRandom,
    assertion: Mutex<Option<CachedAssertion>>,
}

#[derive(Clone)]
struct CachedAssertion {
    client_id: String,
    audience: String,
    jwt: String,
    expires_at: u64,
}

impl fmt::Debug for CertificateCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateCredential")
            .field("thumbprint_sha1", &self.thumbprint_sha1())
            .field("algorithm", &self.algorithm)
            .field("send_x5c", &self.send_x5c)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl CertificateCredential {
    /// Loads a PEM file holding the key and certificate(s), or a PKCS#12 file (`.pfx`/`.p12`, or any file that
    /// is not PEM). `password` opens a PFX or an encrypted PKCS#8 key.
    pub fn from_file(path: impl AsRef<Path>, password: Option<&str>) -> Result<Self, CertificateError> {
        let path = path.as_ref();
        let data = read(path)?;
        if is_pem(&data) {
            let blocks = parse_pem(path, &data)?;
            let key = key_from_pem(path, &blocks, password)?;
            let chain = certificates_from_pem(&blocks);
            if chain.is_empty() {
                return Err(CertificateError::NoCertificate { path: display(path) });
            }
            Self::with_chain(key, chain)
        } else {
            let (pkcs8, chain) = read_pkcs12(path, &data, password)?;
            let key = rsa_from_pkcs8(path, &pkcs8)?;
            Self::with_chain(key, chain)
        }
    }

    /// Loads a PEM key file and a separate PEM certificate file.
    pub fn from_key_and_certificate_files(
        key_path: impl AsRef<Path>,
        certificate_path: impl AsRef<Path>,
        password: Option<&str>,
    ) -> Result<Self, CertificateError> {
        let key_path = key_path.as_ref();
        let key_blocks = parse_pem(key_path, &read(key_path)?)?;
        let key = key_from_pem(key_path, &key_blocks, password)?;
        let cert_path = certificate_path.as_ref();
        let cert_data = read(cert_path)?;
        let chain = if is_pem(&cert_data) {
            certificates_from_pem(&parse_pem(cert_path, &cert_data)?)
        } else {
            vec![cert_data]
        };
        if chain.is_empty() {
            return Err(CertificateError::NoCertificate {
                path: display(cert_path),
            });
        }
        Self::with_chain(key, chain)
    }

    /// Loads a PEM key and uses the certificate's SHA-1 thumbprint (hex, as the portal shows it), the original
    /// quickstart's form. Assertions are then RS256 with `x5t`, since no SHA-256 thumbprint is known.
    pub fn from_key_file_and_thumbprint(
        key_path: impl AsRef<Path>,
        sha1_thumbprint: &str,
        password: Option<&str>,
    ) -> Result<Self, CertificateError> {
        let sha1 = parse_thumbprint(sha1_thumbprint)?;
        let key_path = key_path.as_ref();
        let blocks = parse_pem(key_path, &read(key_path)?)?;
        let key = key_from_pem(key_path, &blocks, password)?;
        Ok(CertificateCredential {
            key,
            chain: Vec::new(),
            sha1,
            sha256: None,
            not_after: None,
            algorithm: AssertionAlgorithm::Rs256,
            send_x5c: false,
            rng: SystemRandom::new(),
            assertion: Mutex::new(None),
        })
    }

    fn with_chain(key: RsaKeyPair, chain: Vec<Vec<u8>>) -> Result<Self, CertificateError> {
        let leaf = &chain[0];
        let info = inspect_certificate(leaf)?;
        if info.public_key != key.public().as_ref() {
            return Err(CertificateError::KeyMismatch {
                subject: info.subject,
            });
        }
        let now = now_secs() as i64;
        if now > info.not_after {
            return Err(CertificateError::Expired {
                subject: info.subject,
                not_after: rfc3339(info.not_after),
            });
        }
        if now < info.not_before {
            return Err(CertificateError::NotYetValid {
                subject: info.subject,
                not_before: rfc3339(info.not_before),
            });
        }
        if (info.not_after - now) < EXPIRY_WARNING as i64 {
            tracing::warn!(subject = %info.subject, not_after = %rfc3339(info.not_after), "the certificate expires within 30 days; upload a new one");
        }
        Ok(CertificateCredential {
            sha1: ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, leaf)
                .as_ref()
                .to_vec(),
            sha256: Some(
                ring::digest::digest(&ring::digest::SHA256, leaf)
                    .as_ref()
                    .to_vec(),
            ),
            not_after: Some(info.not_after),
            key,
            chain,
            algorithm: AssertionAlgorithm::Ps256,
            send_x5c: false,
            rng: SystemRandom::new(),
            assertion: Mutex::new(None),
        })
    }

    /// Signs with RS256 and sends the SHA-1 `x5t` instead of PS256 with `x5t#S256`.
    pub fn with_rs256(mut self) -> Self {
        self.algorithm = AssertionAlgorithm::Rs256;
        self
    }

    /// Sends the certificate chain in `x5c`, for subject-name/issuer authentication. Needs the certificate.
    pub fn with_x5c(mut self) -> Self {
        self.send_x5c = !self.chain.is_empty();
        self
    }

    /// The algorithm assertions are signed with.
    pub fn algorithm(&self) -> AssertionAlgorithm {
        self.algorithm
    }

    /// SHA-1 thumbprint, upper-case hex, as the portal's Certificates & secrets page shows it.
    pub fn thumbprint_sha1(&self) -> String {
        hex_upper(&self.sha1)
    }

    /// SHA-256 thumbprint, upper-case hex (when the certificate is known).
    pub fn thumbprint_sha256(&self) -> Option<String> {
        self.sha256.as_deref().map(hex_upper)
    }

    /// When the certificate expires (seconds since the Unix epoch), when the certificate is known.
    pub fn not_after(&self) -> Option<i64> {
        self.not_after
    }

    /// A signed client assertion for `client_id` and `audience` (the token endpoint). The same assertion is
    /// returned until a minute before it expires, so keys are not used on every request.
    pub fn assertion(&self, client_id: &str, audience: &str) -> Result<String, CertificateError> {
        self.assertion_at(client_id, audience, now_secs())
    }

    fn assertion_at(&self, client_id: &str, audience: &str, now: u64) -> Result<String, CertificateError> {
        let mut cached = self.assertion.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = cached.as_ref()
            && a.client_id == client_id
            && a.audience == audience
            && now + ASSERTION_RENEW_BEFORE < a.expires_at
        {
            return Ok(a.jwt.clone());
        }
        let expires_at = now + ASSERTION_LIFETIME;
        let jwt = self.sign_assertion(client_id, audience, now, expires_at)?;
        *cached = Some(CachedAssertion {
            client_id: client_id.to_string(),
            audience: audience.to_string(),
            jwt: jwt.clone(),
            expires_at,
        });
        Ok(jwt)
    }

    fn sign_assertion(
        &self,
        client_id: &str,
        audience: &str,
        now: u64,
        exp: u64,
    ) -> Result<String, CertificateError> {
        let mut header = serde_json::Map::new();
        header.insert("typ".into(), "JWT".into());
        match (self.algorithm, &self.sha256) {
            (AssertionAlgorithm::Ps256, Some(sha256)) => {
                header.insert("alg".into(), "PS256".into());
                header.insert("x5t#S256".into(), URL_SAFE_NO_PAD.encode(sha256).into());
            }
            _ => {
                header.insert("alg".into(), "RS256".into());
                header.insert("x5t".into(), URL_SAFE_NO_PAD.encode(&self.sha1).into());
            }
        }
        if self.send_x5c {
            let chain: Vec<serde_json::Value> =
                self.chain.iter().map(|c| STANDARD.encode(c).into()).collect();
            header.insert("x5c".into(), chain.into());
        }
        let claims = serde_json::json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "iat": now,
            "nbf": now,
            "exp": exp,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::Value::Object(header).to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let padding: &dyn signature::RsaEncoding = match header_alg(self.algorithm, self.sha256.is_some()) {
            AssertionAlgorithm::Ps256 => &signature::RSA_PSS_SHA256,
            AssertionAlgorithm::Rs256 => &signature::RSA_PKCS1_SHA256,
        };
        let mut sig = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(padding, &self.rng, signing_input.as_bytes(), &mut sig)
            .map_err(|_| CertificateError::Signing)?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

fn header_alg(requested: AssertionAlgorithm, have_sha256: bool) -> AssertionAlgorithm {
    if have_sha256 {
        requested
    } else {
        AssertionAlgorithm::Rs256
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// The most a certificate, key or PFX file may hold: real ones are a few KiB; this stops `/dev/zero` or a huge
/// file from being read into memory.
const MAX_FILE_SIZE: u64 = 1024 * 1024;

fn read(path: &Path) -> Result<Vec<u8>, CertificateError> {
    crate::fs::read_bounded(path, MAX_FILE_SIZE).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => CertificateError::NotFound { path: display(path) },
        _ => CertificateError::Unreadable {
            path: display(path),
            reason: e.to_string(),
        },
    })
}

fn is_pem(data: &[u8]) -> bool {
    data.windows(11).any(|w| w == b"-----BEGIN ")
}

fn parse_pem(path: &Path, data: &[u8]) -> Result<Vec<pem::Pem>, CertificateError> {
    pem::parse_many(data).map_err(|e| CertificateError::Malformed {
        path: display(path),
        reason: e.to_string(),
    })
}

fn certificates_from_pem(blocks: &[pem::Pem]) -> Vec<Vec<u8>> {
    blocks
        .iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| b.contents().to_vec())
        .collect()
}

fn key_from_pem(
    path: &Path,
    blocks: &[pem::Pem],
    password: Option<&str>,
) -> Result<RsaKeyPair, CertificateError> {
    let malformed = |reason: &str| CertificateError::Malformed {
        path: display(path),
        reason: reason.to_string(),
    };
    let block = blocks
        .iter()
        .find(|b| b.tag().ends_with("PRIVATE KEY"))
        .ok_or_else(|| CertificateError::NoKey { path: display(path) })?;
    match block.tag() {
        "PRIVATE KEY" => rsa_from_pkcs8(path, block.contents()),
        "RSA PRIVATE KEY" => {
            if block
                .headers()
                .get("Proc-Type")
                .is_some_and(|v| v.contains("ENCRYPTED"))
            {
                return Err(malformed(
                    "legacy encrypted PEM (Proc-Type: 4,ENCRYPTED) is not supported; convert it to encrypted PKCS#8 (openssl pkcs8 -topk8 -v2 aes-256-cbc)",
                ));
            }
            RsaKeyPair::from_der(block.contents()).map_err(|e| CertificateError::KeyRejected {
                path: display(path),
                reason: e.to_string(),
            })
        }
        "ENCRYPTED PRIVATE KEY" => {
            let password =
                password.ok_or_else(|| CertificateError::PasswordRequired { path: display(path) })?;
            let encrypted = pkcs8::EncryptedPrivateKeyInfoRef::try_from(block.contents())
                .map_err(|e| malformed(&format!("not an encrypted PKCS#8 key: {e}")))?;
            let document = encrypted
                .decrypt(password)
                .map_err(|_| CertificateError::WrongPassword { path: display(path) })?;
            rsa_from_pkcs8(path, document.as_bytes())
        }
        "EC PRIVATE KEY" => Err(CertificateError::NotRsa {
            path: display(path),
            found: "an EC key".into(),
        }),
        other => Err(malformed(&format!("unsupported PEM block '{other}'"))),
    }
}

fn rsa_from_pkcs8(path: &Path, der: &[u8]) -> Result<RsaKeyPair, CertificateError> {
    let info = pkcs8::PrivateKeyInfoRef::try_from(der).map_err(|e| CertificateError::Malformed {
        path: display(path),
        reason: format!("not a PKCS#8 private key: {e}"),
    })?;
    let oid = info.algorithm.oid.to_string();
    if oid != RSA_ENCRYPTION_OID {
        let found = match oid.as_str() {
            "1.2.840.10045.2.1" => "an EC key".to_string(),
            "1.3.101.112" => "an Ed25519 key".to_string(),
            other => format!("a key of type {other}"),
        };
        return Err(CertificateError::NotRsa {
            path: display(path),
            found,
        });
    }
    RsaKeyPair::from_pkcs8(der).map_err(|e| CertificateError::KeyRejected {
        path: display(path),
        reason: e.to_string(),
    })
}

fn read_pkcs12(
    path: &Path,
    data: &[u8],
    password: Option<&str>,
) -> Result<(Vec<u8>, Vec<Vec<u8>>), CertificateError> {
    use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12ImportPolicy};
    let store = KeyStore::from_pkcs12(data, password.unwrap_or(""), Pkcs12ImportPolicy::Relaxed).map_err(
        |e| match e {
            p12_keystore::error::Error::MacError(_) if password.is_none() => {
                CertificateError::PasswordRequired { path: display(path) }
            }
            p12_keystore::error::Error::MacError(_) => {
                CertificateError::WrongPassword { path: display(path) }
            }
            other => CertificateError::Malformed {
                path: display(path),
                reason: format!("not a PKCS#12 file: {other}"),
            },
        },
    )?;
    if let Some((_, chain)) = store.private_key_chain() {
        let certs: Vec<Vec<u8>> = chain.certs().iter().map(|c| c.as_der().to_vec()).collect();
        if certs.is_empty() {
            return Err(CertificateError::NoCertificate { path: display(path) });
        }
        return Ok((chain.key().as_der().to_vec(), certs));
    }
    let has_certificate = store
        .entries()
        .any(|(_, e)| matches!(e, KeyStoreEntry::Certificate(_)));
    Err(if has_certificate {
        CertificateError::NoKey { path: display(path) }
    } else {
        CertificateError::Malformed {
            path: display(path),
            reason: "the PKCS#12 file is empty".into(),
        }
    })
}

struct CertificateInfo {
    subject: String,
    public_key: Vec<u8>,
    not_before: i64,
    not_after: i64,
}

fn inspect_certificate(der: &[u8]) -> Result<CertificateInfo, CertificateError> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| CertificateError::Malformed {
        path: "(certificate)".into(),
        reason: format!("not an X.509 certificate: {e}"),
    })?;
    Ok(CertificateInfo {
        subject: cert.subject().to_string(),
        public_key: cert.public_key().subject_public_key.data.to_vec(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

fn parse_thumbprint(value: &str) -> Result<Vec<u8>, CertificateError> {
    let hex: String = value.chars().filter(|c| !matches!(c, ':' | ' ' | '-')).collect();
    let bad = || CertificateError::BadThumbprint {
        value: value.to_string(),
    };
    if hex.len() != 40 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad());
    }
    (0..40)
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad()))
        .collect()
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn rfc3339(unix: i64) -> String {
    x509_parser::time::ASN1Time::from_timestamp(unix)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| unix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprints_must_be_40_hex_digits() {
        assert_eq!(
            parse_thumbprint("84E05C1D98BCE3A5421D225B140B36E86A3D5534")
                .unwrap()
                .len(),
            20
        );
        assert_eq!(
            parse_thumbprint("84:e0:5c:1d:98:bc:e3:a5:42:1d:22:5b:14:0b:36:e8:6a:3d:55:34")
                .unwrap()
                .len(),
            20
        );
        assert!(parse_thumbprint("84E05C1D").is_err());
        assert!(parse_thumbprint("ZZE05C1D98BCE3A5421D225B140B36E86A3D5534").is_err());
        // The protocol reference's worked example.
        let sha1 = parse_thumbprint("84E05C1D98BCE3A5421D225B140B36E86A3D5534").unwrap();
        assert_eq!(URL_SAFE_NO_PAD.encode(sha1), "hOBcHZi846VCHSJbFAs26Go9VTQ");
    }

    fn jti(jwt: &str) -> String {
        let claims = URL_SAFE_NO_PAD.decode(jwt.split('.').nth(1).unwrap()).unwrap();
        serde_json::from_slice::<serde_json::Value>(&claims).unwrap()["jti"]
            .as_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn an_assertion_is_reused_until_a_minute_before_it_expires() {
        let dev = entra_emulator::certificates::DevCertificate::generate(
            "reuse",
            std::time::Duration::from_secs(86400),
        )
        .unwrap();
        let dir = std::env::temp_dir().join(format!("idcore-reuse-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cert.pem");
        std::fs::write(&path, dev.key_pem() + &dev.cert_pem()).unwrap();
        let credential = CertificateCredential::from_file(&path, None).unwrap();
        let t0 = now_secs();
        let first = credential.assertion_at("app", "https://aud", t0).unwrap();
        assert_eq!(
            jti(&credential.assertion_at("app", "https://aud", t0 + 30).unwrap()),
            jti(&first)
        );
        assert_eq!(
            jti(&credential.assertion_at("app", "https://aud", t0 + 539).unwrap()),
            jti(&first)
        );
        let renewed = credential.assertion_at("app", "https://aud", t0 + 540).unwrap();
        assert_ne!(jti(&renewed), jti(&first), "renewed a minute before expiry");
        assert_ne!(
            jti(&credential.assertion_at("app", "https://other", t0 + 541).unwrap()),
            jti(&renewed),
            "another audience"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
