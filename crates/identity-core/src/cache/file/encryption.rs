//! Encryption at rest for the cache file: AES-256-GCM with a random 256-bit key kept in the OS key store.
//!
//! The key lives in the Linux kernel's key retention service, in the user's *persistent* keyring
//! (persistent-keyring(7)), falling back to the user keyring on kernels built without persistent keyrings. Every
//! process of the user finds it there (a shell, a cron job, a systemd service) and it is never written to disk.
//! The session keyring is not used: a cron job or a service has a different session. Kernel keys do not survive a
//! reboot, and the persistent keyring expires when no process has used it for
//! `/proc/sys/kernel/keys/persistent_keyring_expiry` seconds (3 days by default); a file whose key is gone cannot be
//! decrypted and is treated like a corrupt one: the cache starts empty and the tokens are fetched again.
//!
//! On disk (JSON, like the plain file, so one parse tells them apart):
//!
//! ```text
//! {"version":1,
//!  "encryption":{"alg":"A256GCM","key_id":"<description of the key in the kernel keyring>"},
//!  "nonce":"<base64url, 12 random bytes, new for every write>",
//!  "ciphertext":"<base64url of AES-256-GCM(the plain version-1 file), 16-byte tag appended>"}
//! ```
//!
//! The additional authenticated data binds the format version, the algorithm and the key id, so none of them can
//! be changed without decryption failing.

#![cfg_attr(
    not(all(feature = "encrypted-file-cache", target_os = "linux")),
    allow(
        dead_code,
        reason = "encryption is only switched on where a key store backend is built"
    )
)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{Aad, NONCE_LEN, Nonce};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use super::FORMAT_VERSION;

/// The only algorithm written and read.
pub(super) const ALG: &str = "A256GCM";
/// Prefix of the keys' descriptions in the keyring, so `keyctl show` says whose they are.
const KEY_NAME_PREFIX: &str = "identity-core:token-cache:";

/// The `encryption` member of an encrypted file.
#[derive(Serialize, Deserialize)]
pub(super) struct Header {
    /// The algorithm; only [`ALG`] is understood.
    pub(super) alg: String,
    /// The description of the key in the kernel keyring.
    pub(super) key_id: String,
}

#[derive(Serialize)]
struct Envelope<'a> {
    version: u32,
    encryption: Header,
    nonce: &'a str,
    ciphertext: &'a str,
}

/// Why an encrypted file could not be opened.
pub(super) enum OpenError {
    /// The key is not (or no longer) in the keyring: after a reboot, or removed.
    KeyMissing,
    /// Written with another key than the one this cache uses.
    OtherKey(String),
    /// An algorithm this version does not know.
    UnknownAlgorithm(String),
    /// Authentication failed: tampered with, truncated, or sealed with a different key of the same name.
    Undecryptable,
    /// The key store itself failed (not reachable, permission denied, ...).
    KeyStore(String),
}

/// Encryption settings of one [`FileCache`](super::FileCache).
pub(super) struct Encryption {
    /// Set by the caller, or derived from the file's canonical path on first use.
    explicit_name: Option<String>,
    derived_name: OnceLock<String>,
    /// The "key is gone" warning is given once per cache, then at debug level.
    warned_key_missing: AtomicBool,
}

impl Encryption {
    /// Encryption with the key named `name`, or by default one key per cache file.
    pub(super) fn new(name: Option<String>) -> Encryption {
        Encryption {
            explicit_name: name,
            derived_name: OnceLock::new(),
            warned_key_missing: AtomicBool::new(false),
        }
    }

    /// The key's description in the keyring: the caller's, or `identity-core:token-cache:<hash of the file's
    /// canonical path>`, so that every spelling of the path (symlinks, relative paths) finds the same key.
    pub(super) fn key_name(&self, path: &Path) -> String {
        if let Some(name) = &self.explicit_name {
            return name.clone();
        }
        if let Some(name) = self.derived_name.get() {
            return name.clone();
        }
        match canonical(path) {
            Some(canonical) => self.derived_name.get_or_init(|| derive_name(&canonical)).clone(),
            // The directory does not exist yet (so neither does the file): not cached, computed again later.
            None => derive_name(&std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())),
        }
    }

    /// Encryption for another file (the shared file records are moved from): that file's own default key.
    pub(super) fn for_other_file(&self) -> Encryption {
        Encryption::new(None)
    }

    /// The name set by the caller, if any.
    pub(super) fn explicit_name(&self) -> Option<&str> {
        self.explicit_name.as_deref()
    }

    /// Logs that the key is gone: a warning the first time, then at debug level.
    pub(super) fn report_key_missing(&self, path: &Path) {
        if self.warned_key_missing.swap(true, Ordering::Relaxed) {
            tracing::debug!(path = %path.display(), "token cache encryption key not in the kernel keyring; the cache starts empty");
        } else {
            tracing::warn!(path = %path.display(), "token cache file cannot be decrypted: its encryption key is no longer in the kernel keyring (e.g. after a reboot); the cache starts empty");
        }
    }

    /// Decrypts a file's contents; the caller has checked the format version.
    pub(super) fn open(
        &self,
        path: &Path,
        header: &Header,
        nonce: &str,
        ciphertext: &str,
    ) -> Result<Vec<u8>, OpenError> {
        if header.alg != ALG {
            return Err(OpenError::UnknownAlgorithm(header.alg.clone()));
        }
        let name = self.key_name(path);
        if header.key_id != name {
            return Err(OpenError::OtherKey(header.key_id.clone()));
        }
        let nonce: [u8; NONCE_LEN] = URL_SAFE_NO_PAD
            .decode(nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or(OpenError::Undecryptable)?;
        let mut in_out = URL_SAFE_NO_PAD
            .decode(ciphertext)
            .map_err(|_| OpenError::Undecryptable)?;
        let key = match kernel::find(&name) {
            Ok(Some(key)) => key,
            Ok(None) => return Err(OpenError::KeyMissing),
            Err(e) => return Err(OpenError::KeyStore(e)),
        };
        let plain_len = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(&header.alg, &header.key_id)),
                &mut in_out,
            )
            .map_err(|_| OpenError::Undecryptable)?
            .len();
        in_out.truncate(plain_len);
        Ok(in_out)
    }

    /// Encrypts a file's contents under this cache's key, creating the key if there is none. The caller holds
    /// the file's write lock, so two processes creating the key at once end with one key.
    pub(super) fn seal(&self, path: &Path, mut plain: Vec<u8>) -> Result<Vec<u8>, String> {
        let name = self.key_name(path);
        let key = kernel::find_or_create(&name)?;
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| "the system random number generator failed".to_string())?;
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(ALG, &name)),
            &mut plain,
        )
        .map_err(|_| "encryption failed".to_string())?;
        serde_json::to_vec(&Envelope {
            version: FORMAT_VERSION,
            encryption: Header {
                alg: ALG.to_string(),
                key_id: name,
            },
            nonce: &URL_SAFE_NO_PAD.encode(nonce),
            ciphertext: &URL_SAFE_NO_PAD.encode(&plain),
        })
        .map_err(|e| e.to_string())
    }
}

/// What the tag authenticates besides the ciphertext: the format version, the algorithm and the key id.
fn aad(alg: &str, key_id: &str) -> Vec<u8> {
    format!("identity-core token cache\0version={FORMAT_VERSION}\0alg={alg}\0key_id={key_id}").into_bytes()
}

fn canonical(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Some(dir.canonicalize().ok()?.join(name))
}

fn derive_name(path: &Path) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, path.as_os_str().as_encoded_bytes());
    let hex: String = digest.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{KEY_NAME_PREFIX}{hex}")
}

/// Builds the AES key from raw bytes (which the caller wipes).
#[cfg(all(feature = "encrypted-file-cache", target_os = "linux"))]
fn aead_key(bytes: &[u8]) -> Result<ring::aead::LessSafeKey, String> {
    ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, bytes)
        .map(ring::aead::LessSafeKey::new)
        .map_err(|_| "the key in the kernel keyring is not a 256-bit key".to_string())
}

/// The Linux kernel key retention service, through the `keyctl`/`add_key` system calls.
#[cfg(all(feature = "encrypted-file-cache", target_os = "linux"))]
mod kernel {
    use linux_keyutils::{KeyError, KeyPermissionsBuilder, KeyRing, KeyRingIdentifier, Permission};
    use ring::aead::LessSafeKey;
    use ring::rand::{SecureRandom, SystemRandom};
    use zeroize::Zeroizing;

    const KEY_LEN: usize = 32;

    /// The user's persistent keyring (it outlives the user's processes, so a cron job finds the key of the
    /// previous run), linked into this process's keyring so that we possess it; the user keyring where the
    /// kernel has no persistent keyrings.
    fn keyring() -> Result<KeyRing, String> {
        match KeyRing::get_persistent(KeyRingIdentifier::Process) {
            Ok(ring) => Ok(ring),
            Err(KeyError::OperationNotSupported) => {
                KeyRing::from_special_id(KeyRingIdentifier::User, true).map_err(unavailable)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    fn unavailable(e: KeyError) -> String {
        if e == KeyError::InvalidDescription {
            return "the key name is not valid in the kernel keyring (it must not contain NUL bytes); choose \
                    another with FileCache::key_name"
                .to_string();
        }
        format!(
            "the kernel key store is not usable ({e:?}); the encrypted token cache keeps its key there. Allow the \
             keyctl and add_key system calls (container runtimes often block them), or use a plain FileCache"
        )
    }

    fn is_missing(e: KeyError) -> bool {
        matches!(
            e,
            KeyError::KeyDoesNotExist | KeyError::KeyExpired | KeyError::KeyRevoked
        )
    }

    /// The key named `name`, if the keyring has it.
    pub(super) fn find(name: &str) -> Result<Option<LessSafeKey>, String> {
        let ring = keyring()?;
        let key = match ring.search(name) {
            Ok(key) => key,
            Err(e) if is_missing(e) => return Ok(None),
            Err(e) => return Err(unavailable(e)),
        };
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        let len = match key.read(&mut *bytes) {
            Ok(len) => len,
            // Removed between the search and the read.
            Err(e) if is_missing(e) => return Ok(None),
            Err(e) => return Err(unavailable(e)),
        };
        if len != KEY_LEN {
            return Err(format!(
                "the kernel keyring holds a key named {name} that is not a 256-bit key; remove it (keyctl \
                 unlink) or choose another key name"
            ));
        }
        super::aead_key(&bytes[..]).map(Some)
    }

    /// The key named `name`, created from 32 random bytes if the keyring has none. Called under the cache
    /// file's write lock; the key is read back after it is added, so what is used is what the keyring holds.
    pub(super) fn find_or_create(name: &str) -> Result<LessSafeKey, String> {
        if let Some(key) = find(name)? {
            return Ok(key);
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        SystemRandom::new()
            .fill(&mut bytes[..])
            .map_err(|_| "the system random number generator failed".to_string())?;
        let key = keyring()?.add_key(name, &bytes[..]).map_err(unavailable)?;
        // Readable by this user's processes even where they do not possess the keyring (no session link);
        // nobody else gets any access.
        let perms = KeyPermissionsBuilder::builder()
            .posessor(Permission::ALL)
            .user(Permission::VIEW | Permission::READ | Permission::SEARCH)
            .build();
        key.set_perms(perms).map_err(unavailable)?;
        find(name)?.ok_or_else(|| {
            format!("the key {name} vanished from the kernel keyring right after it was added")
        })
    }
}

/// No key store on this platform or in this build: encryption is never switched on, so this is never called.
#[cfg(not(all(feature = "encrypted-file-cache", target_os = "linux")))]
mod kernel {
    use ring::aead::LessSafeKey;

    const UNSUPPORTED: &str = "this build has no key store for the encrypted token cache";

    pub(super) fn find(_name: &str) -> Result<Option<LessSafeKey>, String> {
        Err(UNSUPPORTED.to_string())
    }

    pub(super) fn find_or_create(_name: &str) -> Result<LessSafeKey, String> {
        Err(UNSUPPORTED.to_string())
    }
}
