//! Certificates whose private keys the emulator holds for seeded apps (`daemon-certificate`), so that callers
//! can sign client assertions: generated once (RSA 2048, on the blocking pool), written next to the CA as
//! PEM, PKCS#8, certificate and PKCS#12 files, and reused across restarts with a state directory.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

use crate::certificates::{DevCertificate, PfxEncryption};
use crate::error::EmulatorError;
use crate::formats::hex_upper;
use crate::ids::random_string;
use crate::state_dir::{self, Store};

/// Validity of generated certificates.
const VALIDITY: Duration = Duration::from_secs(730 * 24 * 3600);

/// Where the private material of a seeded app's certificate is, for clients that sign client assertions.
#[derive(Clone, PartialEq, Eq)]
pub struct CertificateFiles {
    /// PKCS#8 private key followed by the certificate, PEM (`{app}.pem`, mode 0600).
    pub pem_path: PathBuf,
    /// The PKCS#8 private key alone, PEM (`{app}.key.pem`, mode 0600).
    pub key_path: PathBuf,
    /// The certificate alone, PEM (`{app}.cer`, what one uploads to the app registration).
    pub cert_path: PathBuf,
    /// Key and certificate as PKCS#12 (PBES2/AES-256, HMAC-SHA256 MAC) protected by [`Self::pfx_password`]
    /// (`{app}.pfx`, mode 0600).
    pub pfx_path: PathBuf,
    /// Password of the PFX file. Never printed by `Debug`.
    pub pfx_password: String,
    /// SHA-1 thumbprint of the certificate, upper-case hex (MSAL's `thumbprint`).
    pub thumbprint_sha1: String,
    /// SHA-256 thumbprint of the certificate, upper-case hex.
    pub thumbprint_sha256: String,
}

impl fmt::Debug for CertificateFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateFiles")
            .field("pem_path", &self.pem_path)
            .field("key_path", &self.key_path)
            .field("cert_path", &self.cert_path)
            .field("pfx_path", &self.pfx_path)
            .field("pfx_password", &"<redacted>")
            .field("thumbprint_sha1", &self.thumbprint_sha1)
            .field("thumbprint_sha256", &self.thumbprint_sha256)
            .finish()
    }
}

/// A certificate the emulator holds the key of: which app it belongs to, the certificate and the files.
#[derive(Clone, Debug)]
pub(crate) struct HeldCertificate {
    pub app: String,
    pub cert_der: Vec<u8>,
    pub files: CertificateFiles,
}

/// `certificates.json`: per app, the PFX password and the thumbprint of the certificate in the files.
#[derive(Default, Serialize, Deserialize)]
struct HeldState {
    #[serde(flatten)]
    apps: BTreeMap<String, HeldEntry>,
}

#[derive(Clone, Serialize, Deserialize)]
struct HeldEntry {
    thumbprint_sha1: String,
    pfx_password: String,
}

struct FileNames {
    pem: String,
    key: String,
    cert: String,
    pfx: String,
}

fn file_names(app: &str) -> FileNames {
    FileNames {
        pem: format!("{app}.pem"),
        key: format!("{app}.key.pem"),
        cert: format!("{app}.cer"),
        pfx: format!("{app}.pfx"),
    }
}

fn files(store: &Store, app: &str, cert_der: &[u8], pfx_password: String) -> CertificateFiles {
    let names = file_names(app);
    CertificateFiles {
        pem_path: store.path(&names.pem),
        key_path: store.path(&names.key),
        cert_path: store.path(&names.cert),
        pfx_path: store.path(&names.pfx),
        pfx_password,
        thumbprint_sha1: hex_upper(&Sha1::digest(cert_der)),
        thumbprint_sha256: hex_upper(&Sha256::digest(cert_der)),
    }
}

fn io_error(store: &Store, name: &str, source: std::io::Error) -> EmulatorError {
    EmulatorError::StateDir {
        path: store.path(name),
        source,
    }
}

/// The certificate of `app` as persisted, if the state holds a complete, consistent set of files.
fn load(store: &Store, app: &str, entry: &HeldEntry) -> Option<HeldCertificate> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let names = file_names(app);
    let cert_pem = store.read(&names.cert).ok().flatten()?;
    let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).ok()?.to_vec();
    let complete = [&names.pem, &names.key, &names.pfx]
        .iter()
        .all(|n| store.path(n).is_file());
    let files = files(store, app, &cert_der, entry.pfx_password.clone());
    (complete && files.thumbprint_sha1.eq_ignore_ascii_case(&entry.thumbprint_sha1)).then(|| {
        HeldCertificate {
            app: app.to_owned(),
            cert_der,
            files,
        }
    })
}

/// Freshly generated material for one app (built on the blocking pool).
#[derive(Clone)]
struct Generated {
    app: String,
    key_pem: String,
    cert_pem: String,
    cert_der: Vec<u8>,
    pfx: Vec<u8>,
    pfx_password: String,
}

fn generate(app: String) -> Result<Generated, EmulatorError> {
    const ALNUM: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let cert = DevCertificate::generate(&app, VALIDITY)?;
    let pfx_password = random_string(24, ALNUM);
    let pfx = cert.pfx(&pfx_password, PfxEncryption::Modern)?;
    Ok(Generated {
        key_pem: cert.key_pem(),
        cert_pem: cert.cert_pem(),
        cert_der: cert.cert_der().to_vec(),
        pfx,
        pfx_password,
        app,
    })
}

/// Generates the material for `apps` on the blocking pool.
async fn generate_all(apps: Vec<String>) -> Result<Vec<Generated>, EmulatorError> {
    tokio::task::spawn_blocking(move || apps.into_iter().map(generate).collect::<Result<Vec<_>, _>>())
        .await
        .map_err(|e| EmulatorError::Certificate(e.to_string()))?
}

/// Per app, the material generated for temporary stores in this process: emulators without a state
/// directory share it instead of each spending a key generation on it (their audiences differ by port, so
/// an assertion for one is still refused by the others).
type ProcessCache = std::sync::Mutex<BTreeMap<String, std::sync::Arc<tokio::sync::OnceCell<Generated>>>>;

fn process_cache() -> &'static ProcessCache {
    static CACHE: std::sync::OnceLock<ProcessCache> = std::sync::OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Material for a temporary store: generated once per process and app.
async fn generate_for_temporary(apps: Vec<String>) -> Result<Vec<Generated>, EmulatorError> {
    let mut out = Vec::with_capacity(apps.len());
    for app in apps {
        let cell = process_cache()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(app.clone())
            .or_default()
            .clone();
        let generated = cell
            .get_or_try_init(|| async move {
                let mut one = generate_all(vec![app]).await?;
                one.pop()
                    .ok_or_else(|| EmulatorError::Certificate("no certificate generated".to_owned()))
            })
            .await?;
        out.push(generated.clone());
    }
    Ok(out)
}

/// Loads the held certificates of `apps` from the store, generating (and writing) the missing ones.
pub(crate) async fn load_or_create(
    store: &Store,
    apps: &[String],
) -> Result<Vec<HeldCertificate>, EmulatorError> {
    if apps.is_empty() {
        return Ok(Vec::new());
    }
    let mut state: HeldState = match store
        .read(state_dir::HELD_CERTIFICATES)
        .map_err(|e| io_error(store, state_dir::HELD_CERTIFICATES, e))?
    {
        Some(json) => serde_json::from_str(&json).map_err(|e| EmulatorError::CorruptState {
            path: store.path(state_dir::HELD_CERTIFICATES),
            message: e.to_string(),
        })?,
        None => HeldState::default(),
    };
    let mut held = Vec::new();
    let mut missing = Vec::new();
    for app in apps {
        match state.apps.get(app).and_then(|entry| load(store, app, entry)) {
            Some(h) => held.push(h),
            None => missing.push(app.clone()),
        }
    }
    if missing.is_empty() {
        return Ok(held);
    }
    if store.is_persistent() {
        tracing::info!(apps = ?missing, "generating certificates for seeded apps");
    }
    let generated = if store.is_persistent() {
        generate_all(missing).await?
    } else {
        generate_for_temporary(missing).await?
    };
    for g in generated {
        let names = file_names(&g.app);
        let write = |name: &str, result: std::io::Result<()>| result.map_err(|e| io_error(store, name, e));
        write(
            &names.pem,
            store.write_private(&names.pem, &format!("{}{}", g.key_pem, g.cert_pem)),
        )?;
        write(&names.key, store.write_private(&names.key, &g.key_pem))?;
        write(&names.cert, store.write_public(&names.cert, &g.cert_pem))?;
        write(&names.pfx, store.write_private_bytes(&names.pfx, &g.pfx))?;
        let files = files(store, &g.app, &g.cert_der, g.pfx_password.clone());
        state.apps.insert(
            g.app.clone(),
            HeldEntry {
                thumbprint_sha1: files.thumbprint_sha1.clone(),
                pfx_password: g.pfx_password,
            },
        );
        held.push(HeldCertificate {
            app: g.app,
            cert_der: g.cert_der,
            files,
        });
    }
    let json = serde_json::to_string_pretty(&state).map_err(|e| EmulatorError::CorruptState {
        path: store.path(state_dir::HELD_CERTIFICATES),
        message: e.to_string(),
    })?;
    store
        .write_private(state_dir::HELD_CERTIFICATES, &json)
        .map_err(|e| io_error(store, state_dir::HELD_CERTIFICATES, e))?;
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_password() {
        let files = CertificateFiles {
            pem_path: "a.pem".into(),
            key_path: "a.key.pem".into(),
            cert_path: "a.cer".into(),
            pfx_path: "a.pfx".into(),
            pfx_password: "hunter2-very-secret".into(),
            thumbprint_sha1: "AB".into(),
            thumbprint_sha256: "CD".into(),
        };
        let dbg = format!("{files:?}");
        assert!(!dbg.contains("hunter2"));
        assert!(dbg.contains("a.pfx") && dbg.contains("AB"));
    }
}
