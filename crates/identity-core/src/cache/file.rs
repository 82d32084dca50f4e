//! A cache file that survives runs and is shared safely by the processes of one user.
//!
//! - Owner-only: the directory is created `0700` and the file `0600`; a file others can read is fixed (and
//!   said so), one owned by another user is refused.
//! - Atomic: every write goes to a temporary file that is renamed over the cache, so a reader (or a process
//!   killed mid-write) never sees half a file. Nothing is fsynced: a cache needs atomicity and recovery, not
//!   durability (after a power cut the tokens are simply fetched again).
//! - Shared: writers take an exclusive lock on `<file>.lock` and re-read before they change anything, so two
//!   processes writing at once lose nothing. [`TokenCache::lock`] offers a second lock, held while a token is
//!   fetched and stored, so processes that start together ask the identity provider once; waiters block in the
//!   kernel (on a blocking thread) and wake the moment it is released.
//! - Inline: reads and writes of the (small) file run on the caller's thread, with no thread started; the
//!   clients write it in the background ([`TokenCache::writes_behind`]) and wait for it in `flush()`.
//! - Forgiving: a corrupt, truncated, oversized (over 16 MiB) or newer-format file is reported and treated as
//!   empty, never a crash; a single record that cannot be read (or holds absurd times) is dropped, not the file.
//! - Careful with hostile paths: only regular files of this user are ever read, created, chmod'ed or replaced. A
//!   symbolic link, a directory, a device or a FIFO at the cache path (or at its lock file) is refused without
//!   being opened for reading, and a permission fix goes through the open file, never through the path. A cache
//!   directory others can write to is reported once. See [`FileCache::check`].
//! - Optionally encrypted at rest (cargo feature `encrypted-file-cache`, Linux): see [`FileCache::open_encrypted`].

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{CacheEntry, CacheError, CacheKey, CacheLock, TokenCache, now_secs};

mod encryption;

use encryption::{Encryption, OpenError};

/// Version of the file format this crate writes (plain and encrypted).
const FORMAT_VERSION: u32 = 1;
/// How long a process waits for another one's token request before asking itself.
const FETCH_LOCK_WAIT: Duration = Duration::from_secs(45);
/// See [`FileCache::MAX_FILE_SIZE`].
const MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;
/// The furthest ahead a stored expiry may be. Tokens and discovery documents live hours; a record claiming more
/// than this is treated as unreadable rather than served for years.
const MAX_LIFETIME_SECS: u64 = 366 * 24 * 3600;

/// A token cache in a JSON file.
pub struct FileCache {
    path: PathBuf,
    /// `None`: a plain owner-only file.
    encryption: Option<Arc<Encryption>>,
    warnings: Arc<Warnings>,
}

/// Conditions reported once per cache rather than at every read.
#[derive(Default)]
struct Warnings {
    /// The directory was checked for write access by others (once per cache: a stat per operation is waste).
    directory_checked: AtomicBool,
    /// The file is corrupt or oversized; cleared by the next good read, so a later corruption is reported too.
    unreadable_file: AtomicBool,
}

impl fmt::Debug for FileCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key name is not secret; the key itself is never held here.
        let mut d = f.debug_struct("FileCache");
        d.field("path", &self.path)
            .field("encrypted", &self.is_encrypted());
        if let Some(name) = self.encryption.as_ref().and_then(|e| e.explicit_name()) {
            d.field("key_name", &name);
        }
        d.finish()
    }
}

#[derive(Serialize)]
struct Contents {
    version: u32,
    records: BTreeMap<String, Record>,
}

/// The plain form as read: each record is decoded on its own, so one bad record does not cost the others.
#[derive(Deserialize)]
struct StoredContents {
    version: u32,
    records: BTreeMap<String, serde_json::Value>,
}

/// Either form of the file: plain (`records`) or encrypted (`encryption`, `nonce`, `ciphertext`).
#[derive(Deserialize)]
struct Stored {
    version: u32,
    #[serde(default)]
    records: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    encryption: Option<encryption::Header>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    ciphertext: Option<String>,
}

/// What a read found.
struct Loaded {
    contents: Contents,
    /// A plain file with records in it, while this cache encrypts: to be rewritten encrypted.
    needs_encrypting: bool,
}

#[derive(Serialize, Deserialize)]
struct Record {
    key: CacheKey,
    entry: CacheEntry,
}

impl Default for Contents {
    fn default() -> Self {
        Contents {
            version: FORMAT_VERSION,
            records: BTreeMap::new(),
        }
    }
}

impl FileCache {
    /// The largest cache file read, in bytes (16 MiB). Real ones hold a few KiB per app and account; a larger
    /// file is treated as corrupt (reported, never read whole, replaced at the next write), so a runaway or
    /// hostile file cannot exhaust memory.
    pub const MAX_FILE_SIZE: u64 = MAX_FILE_SIZE;

    /// A cache in `path` (created on first write, with its directory).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use identity_core::{Authority, ClientSecret, ConfidentialClient, FileCache, TokenSource};
    /// # use identity_core::{HttpClient, HttpConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = entra_emulator::Emulator::builder().start().await?;
    /// # let daemon = emulator.app("daemon").ok_or("no daemon app")?;
    /// # let (authority, client_id, secret) = (emulator.authority(), daemon.app_id.clone(), daemon.secrets[0].value.clone());
    /// # let http = HttpClient::new(HttpConfig::default().with_extra_ca_pem(emulator.ca_pem()))?;
    /// # let dir = std::env::temp_dir().join(format!("identity-core-example-{}", uuid::Uuid::new_v4()));
    /// # let path = dir.join("token-cache.json");
    /// // `path` is usually `FileCache::default_path_for(client id, tenant)`, in the user's cache directory.
    /// let build = || -> Result<ConfidentialClient, Box<dyn std::error::Error>> {
    ///     Ok(ConfidentialClient::builder(client_id.clone(), Authority::parse(&authority)?)
    ///         .client_secret(ClientSecret::new(secret.clone()))
    ///         .cache(Arc::new(FileCache::new(&path)))
    /// #       .http_client(http.clone())
    ///         .build()?)
    /// };
    /// build()?.acquire_token_for_client(&["https://graph.microsoft.com/.default"]).await?;
    /// // A later run (here, another client) finds the token in the file.
    /// let token = build()?.acquire_token_for_client(&["https://graph.microsoft.com/.default"]).await?;
    /// assert_eq!(token.source, TokenSource::Cache);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(path: impl Into<PathBuf>) -> FileCache {
        FileCache {
            path: path.into(),
            encryption: None,
            warnings: Arc::default(),
        }
    }

    /// Checks, without opening anything, that the path can hold the cache: nothing there yet, or a regular file
    /// of this user (not a symbolic link, directory, device or FIFO). Every operation checks this too and fails
    /// with [`CacheError::Refused`]; calling it at startup lets a program choose another store at once (the
    /// samples then keep their tokens in memory). Also reports, once, a directory that others can write to.
    pub fn check(&self) -> Result<(), CacheError> {
        self.warn_about_directory();
        check_path(&self.path)
    }

    /// Whether the file holds the encrypted form (read whole, up to [`MAX_FILE_SIZE`](Self::MAX_FILE_SIZE), with the same checks as
    /// a read). Lets a program that opened the cache without encryption tell why it was refused.
    pub fn holds_encrypted_file(&self) -> Result<bool, CacheError> {
        let FileBytes::Read(text) = read_file(&self.path)? else {
            return Ok(false);
        };
        Ok(serde_json::from_slice::<Stored>(&text).is_ok_and(|s| s.encryption.is_some()))
    }

    /// Warns, once per cache, when the cache directory is writable by others: they could plant files or
    /// links beside the cache (which is refused then, and the cache stops working).
    fn warn_about_directory(&self) {
        if self.warnings.directory_checked.swap(true, Ordering::Relaxed) {
            return;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let dir = parent_dir(&self.path);
            let Ok(meta) = std::fs::metadata(dir) else {
                return;
            };
            if meta.mode() & 0o022 != 0 {
                tracing::warn!(
                    directory = %dir.display(),
                    mode = format!("{:o}", meta.mode() & 0o7777),
                    "the token cache directory is writable by other users, who could plant files or links \
                     beside the cache file; keep the cache in a directory only you can write to"
                );
            }
        }
    }

    /// A cache in `path`, encrypted at rest: AES-256-GCM with a random key kept in the OS key store, never on
    /// disk. Same as `FileCache::new(path).encrypt(true)`. Available with the `encrypted-file-cache` feature.
    ///
    /// On Linux the key lives in the kernel key retention service (the user's persistent keyring), where every
    /// process of the user finds it. Kernel keys do not survive a reboot: a file whose key is gone is reported
    /// once and the cache starts empty (the tokens are fetched again). A plain file found here is rewritten
    /// encrypted on first use. The key store must be usable (containers often block the `keyctl` system call);
    /// if it is not, the cache's operations fail with an error saying so, and no plain file is written.
    ///
    /// On other platforms there is no key store backend yet (Keychain on macOS and DPAPI on Windows would be
    /// the candidates): the file stays a plain owner-only file and a warning says so; see
    /// [`is_encrypted`](Self::is_encrypted).
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::FileCache;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let path = FileCache::default_path_for("00000000-0000-0000-0000-000000000001", "contoso.onmicrosoft.com")
    ///     .ok_or("no cache directory for this user")?;
    /// // Nothing is read or written yet: the key store is used on the cache's first operation.
    /// let cache = FileCache::open_encrypted(path);
    /// assert_eq!(cache.is_encrypted(), cfg!(target_os = "linux"));
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "encrypted-file-cache")]
    #[cfg_attr(docsrs, doc(cfg(feature = "encrypted-file-cache")))]
    pub fn open_encrypted(path: impl Into<PathBuf>) -> FileCache {
        FileCache::new(path).encrypt(true)
    }

    /// Switches encryption at rest on or off; see [`open_encrypted`](Self::open_encrypted). A cache without
    /// encryption refuses (with an error saying so) to read or overwrite an encrypted file. Available with the
    /// `encrypted-file-cache` feature.
    #[cfg(feature = "encrypted-file-cache")]
    #[cfg_attr(docsrs, doc(cfg(feature = "encrypted-file-cache")))]
    pub fn encrypt(mut self, on: bool) -> FileCache {
        if !on {
            self.encryption = None;
            return self;
        }
        #[cfg(target_os = "linux")]
        if self.encryption.is_none() {
            self.encryption = Some(Arc::new(Encryption::new(None)));
        }
        #[cfg(not(target_os = "linux"))]
        tracing::warn!(path = %self.path.display(), "token cache encryption is implemented on Linux only; on this platform the cache file is a plain file protected by its owner-only permissions");
        self
    }

    /// Names the key in the key store (its description in the kernel keyring) and switches encryption on. By
    /// default each file has its own key, named `identity-core:token-cache:<hash of the file's canonical path>`.
    /// Give each cache file its own name: two files sharing one key name could replace each other's key.
    /// Available with the `encrypted-file-cache` feature.
    #[cfg(feature = "encrypted-file-cache")]
    #[cfg_attr(docsrs, doc(cfg(feature = "encrypted-file-cache")))]
    pub fn key_name(self, name: impl Into<String>) -> FileCache {
        let mut cache = self.encrypt(true);
        if cache.encryption.is_some() {
            cache.encryption = Some(Arc::new(Encryption::new(Some(name.into()))));
        }
        cache
    }

    /// Whether the file is written encrypted (false without encryption, and on platforms without a key store).
    pub fn is_encrypted(&self) -> bool {
        self.encryption.is_some()
    }

    /// The single file of this user that every app shared before the per-app files
    /// ([`FileCache::default_path_for`]): `<platform cache dir>/identity-core/token-cache.json` (on Linux
    /// `$XDG_CACHE_HOME` or `~/.cache`; on macOS `~/Library/Caches`; on Windows `%LOCALAPPDATA%`). Its records
    /// move to the per-app files with [`FileCache::adopt_records_from`].
    pub fn default_path() -> Option<PathBuf> {
        dirs::cache_dir().map(|d| d.join("identity-core").join("token-cache.json"))
    }

    /// The directory of the per-app files: `<platform cache dir>/identity-core/token-cache`.
    pub fn default_dir() -> Option<PathBuf> {
        dirs::cache_dir().map(|d| d.join("identity-core").join("token-cache"))
    }

    /// The file of one app (client id) and tenant in [`FileCache::default_dir`]:
    /// `<client id>_<tenant>.json`, lower case, with any character other than a letter, digit, `.` or `-`
    /// replaced by `_`. One file per app and tenant keeps every read and write the size of one app's records,
    /// however many other apps and tenants the user runs.
    ///
    /// # Examples
    ///
    /// ```
    /// use identity_core::FileCache;
    ///
    /// let path = FileCache::default_path_for("0E4A5C7B-AAAA-4BBB-8CCC-000000000001", "contoso.onmicrosoft.com");
    /// if let Some(path) = path {
    ///     assert!(path.ends_with("identity-core/token-cache/0e4a5c7b-aaaa-4bbb-8ccc-000000000001_contoso.onmicrosoft.com.json"));
    /// }
    /// ```
    pub fn default_path_for(client_id: &str, tenant: &str) -> Option<PathBuf> {
        FileCache::default_dir().map(|d| d.join(partition_file_name(client_id, tenant)))
    }

    /// Moves the records of one app (client id) and tenant from `legacy`, a file several apps share (usually
    /// [`FileCache::default_path`]), into this cache, and removes them there; the other apps' records stay. Does
    /// nothing if this cache's file already exists (the move is done once: the shared file is not read
    /// again) or `legacy` does not. Moved are the records of the client id, except app-only access tokens of
    /// another tenant; returns how many. The records are written here before they are removed there, so an
    /// interrupted move loses nothing.
    pub async fn adopt_records_from(
        &self,
        legacy: &Path,
        client_id: &str,
        tenant: &str,
    ) -> Result<usize, CacheError> {
        if legacy == self.path.as_path()
            || std::fs::symlink_metadata(&self.path).is_ok()
            || std::fs::symlink_metadata(legacy).is_err()
        {
            return Ok(0);
        }
        let (client_id, tenant) = (
            client_id.trim().to_ascii_lowercase(),
            tenant.trim().to_ascii_lowercase(),
        );
        let belongs = |key: &CacheKey| match key {
            CacheKey::AccessToken(k) if k.home_account_id.is_none() => {
                k.client_id == client_id && k.realm == tenant
            }
            other => other.client_id() == Some(client_id.as_str()),
        };
        let shared = FileCache {
            path: legacy.to_path_buf(),
            encryption: self.encryption.as_ref().map(|e| Arc::new(e.for_other_file())),
            warnings: Arc::default(),
        };
        let moved: Vec<(CacheKey, CacheEntry)> = shared
            .entries()
            .await?
            .into_iter()
            .filter(|(key, _)| belongs(key))
            .collect();
        if moved.is_empty() {
            return Ok(0);
        }
        self.put_all(&moved).await?;
        shared
            .update(|c| c.records.retain(|_, r| !belongs(&r.key)))
            .await?;
        tracing::info!(from = %legacy.display(), to = %self.path.display(), records = moved.len(), "moved this app's token cache records to its own file");
        Ok(moved.len())
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What an operation works with. File operations run inline: a cache file is a few KiB, read or replaced
    /// in microseconds, less than handing the work to another thread would cost. Only waits for another
    /// process's lock leave the runtime's thread.
    fn access(&self) -> Access<'_> {
        self.warn_about_directory();
        Access {
            path: &self.path,
            encryption: self.encryption.as_deref(),
            warnings: &self.warnings,
        }
    }

    /// Applies `change` to the file's contents under the write lock and replaces the file atomically.
    async fn update(&self, change: impl FnOnce(&mut Contents)) -> Result<(), CacheError> {
        let access = self.access();
        check_path(access.path)?;
        ensure_dir(access.path)?;
        // Also serialises creating the encryption key, so processes starting together end with one key.
        let _lock = lock_waiting(lock_path(access.path, ".lock"), None).await?;
        update_locked(&access, change)
    }
}

/// `<client id>_<tenant>.json`, lower case, each part reduced to letters, digits, `.` and `-` (anything else
/// becomes `_`, and a leading `.` too, so a part never names a hidden file or a parent directory).
fn partition_file_name(client_id: &str, tenant: &str) -> String {
    let clean = |part: &str| -> String {
        let mut out: String = part
            .trim()
            .chars()
            .map(|c| match c {
                'a'..='z' | '0'..='9' | '.' | '-' => c,
                'A'..='Z' => c.to_ascii_lowercase(),
                _ => '_',
            })
            .collect();
        if out.starts_with('.') || out.is_empty() {
            out.insert(0, '_');
        }
        out
    };
    format!("{}_{}.json", clean(client_id), clean(tenant))
}

/// What a file operation works with.
struct Access<'a> {
    path: &'a Path,
    encryption: Option<&'a Encryption>,
    warnings: &'a Warnings,
}

fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn lock_path(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// [`FileCache::update`] for a caller that cannot await (rewriting a plain file encrypted, once): waits for the
/// write lock on this thread.
fn update(access: &Access<'_>, change: impl FnOnce(&mut Contents)) -> Result<(), CacheError> {
    check_path(access.path)?;
    ensure_dir(access.path)?;
    let lock = open_lock_file(&lock_path(access.path, ".lock"))?;
    lock.0
        .lock()
        .map_err(|e| unavailable(access.path, "cannot lock", e))?;
    update_locked(access, change)
}

/// Applies `change` under the write lock (held by the caller): re-read, prune, change, replace atomically
/// (encrypted if configured).
fn update_locked(access: &Access<'_>, change: impl FnOnce(&mut Contents)) -> Result<(), CacheError> {
    let path = access.path;
    let mut contents = read_contents(access)?.contents;
    let now = now_secs();
    contents
        .records
        .retain(|_, r| r.entry.expires_on().is_none_or(|e| e > now));
    change(&mut contents);
    let bytes = encode(path, access.encryption, &contents)?;
    // Checked again under the lock, right before the rename: what is replaced is a regular file of ours.
    check_path(path)?;
    write_atomically(path, &bytes)?;
    sweep_stale_temporaries(path);
    Ok(())
}

/// Reads the file; a plain file found by a cache that encrypts is rewritten encrypted at once, not at the next
/// token write (which may be an hour away).
fn read_and_migrate(access: &Access<'_>) -> Result<Contents, CacheError> {
    let loaded = read_contents(access)?;
    if loaded.needs_encrypting {
        update(access, |_| {})?;
        tracing::info!(path = %access.path.display(), "token cache file was plain text; rewritten encrypted");
    }
    Ok(loaded.contents)
}

#[async_trait]
impl TokenCache for FileCache {
    async fn get(&self, key: &CacheKey) -> Result<Option<CacheEntry>, CacheError> {
        let storage_key = key.storage_key();
        Ok(read_and_migrate(&self.access())?
            .records
            .remove(&storage_key)
            .map(|r| r.entry))
    }

    async fn put(&self, key: &CacheKey, entry: &CacheEntry) -> Result<(), CacheError> {
        self.put_all(&[(key.clone(), entry.clone())]).await
    }

    async fn put_all(&self, records: &[(CacheKey, CacheEntry)]) -> Result<(), CacheError> {
        let path = &self.path;
        self.update(move |c| {
            let now = now_secs();
            for (key, entry) in records {
                let storage_key = key.storage_key();
                if is_plausible(key, entry, now) {
                    c.records.insert(
                        storage_key,
                        Record {
                            key: key.clone(),
                            entry: entry.clone(),
                        },
                    );
                } else {
                    // It would be dropped when read back: never stored, and no older version lingers.
                    tracing::debug!(path = %path.display(), key = storage_key, "not storing a token cache record with absurd times");
                    c.records.remove(&storage_key);
                }
            }
        })
        .await
    }

    async fn remove(&self, key: &CacheKey) -> Result<(), CacheError> {
        let storage_key = key.storage_key();
        self.update(move |c| {
            c.records.remove(&storage_key);
        })
        .await
    }

    async fn entries(&self) -> Result<Vec<(CacheKey, CacheEntry)>, CacheError> {
        Ok(read_and_migrate(&self.access())?
            .records
            .into_values()
            .map(|r| (r.key, r.entry))
            .collect())
    }

    async fn clear(&self) -> Result<(), CacheError> {
        self.update(|c| c.records.clear()).await
    }

    fn writes_behind(&self) -> bool {
        true
    }

    async fn lock(&self, _key: &CacheKey) -> Result<Option<Box<dyn CacheLock>>, CacheError> {
        let access = self.access();
        check_path(access.path)?;
        ensure_dir(access.path)?;
        let lock = lock_waiting(lock_path(access.path, ".fetch.lock"), Some(FETCH_LOCK_WAIT)).await?;
        Ok(Some(Box::new(lock)))
    }
}

/// An exclusive lock on a lock file, released when dropped (or when the process dies).
#[derive(Debug)]
struct FileLock(File);

impl CacheLock for FileLock {}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

fn unavailable(path: &Path, what: &str, e: impl fmt::Display) -> CacheError {
    CacheError::Unavailable(format!("{what} {}: {e}", path.display()))
}

/// Opens (creating it) a lock file, with the same rules as for the cache file: never a link, a FIFO or a
/// device, never another user's file.
fn open_lock_file(path: &Path) -> Result<FileLock, CacheError> {
    check_path(path)?;
    let file = private_options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| open_error(path, "cannot open lock file", e))?;
    check_open_file(path, &file)?;
    Ok(FileLock(file))
}

/// Takes the exclusive lock on `path`. Free, at once; held by another process, the wait is a blocking `flock`
/// on a blocking thread (the runtime goes on), which the kernel ends the moment the holder releases the lock
/// or dies. After `wait`, gives up (the thread's late lock is released as soon as it is taken).
async fn lock_waiting(path: PathBuf, wait: Option<Duration>) -> Result<FileLock, CacheError> {
    let lock = open_lock_file(&path)?;
    match lock.0.try_lock() {
        Ok(()) => return Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => {}
        Err(std::fs::TryLockError::Error(e)) => return Err(unavailable(&path, "cannot lock", e)),
    }
    let waiting = tokio::task::spawn_blocking(move || lock.0.lock().map(|()| lock));
    let locked = match wait {
        None => waiting.await,
        Some(limit) => match tokio::time::timeout(limit, waiting).await {
            Ok(locked) => locked,
            Err(_) => {
                return Err(unavailable(
                    &path,
                    "gave up waiting for",
                    "another process holds it",
                ));
            }
        },
    };
    locked
        .map_err(|e| unavailable(&path, "cannot wait for", e))?
        .map_err(|e| unavailable(&path, "cannot lock", e))
}

/// Options for every file this cache opens: created owner-only; never through a symbolic link (`O_NOFOLLOW`)
/// and never waiting on a FIFO (`O_NONBLOCK`, which changes nothing for regular files), should one replace the
/// file between its check and its opening.
fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    options
}

/// An open failure; a symbolic link that appeared after the check is refused like one found by it.
fn open_error(path: &Path, what: &str, e: std::io::Error) -> CacheError {
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::ELOOP) {
        return refused_type(path, "a symbolic link");
    }
    unavailable(path, what, e)
}

fn refused_type(path: &Path, kind: &str) -> CacheError {
    let fix = if kind == "a symbolic link" {
        "remove the link or use the path of a regular file"
    } else {
        "use the path of a regular file (or of one yet to be created)"
    };
    CacheError::Refused(format!(
        "{} is {kind}, not a regular file; the token cache only ever reads, creates or replaces regular files \
         of its own; {fix}",
        path.display()
    ))
}

/// What is at `path`, found without following a link or opening anything: nothing, or a regular file of this
/// user; anything else is refused.
fn check_path(path: &Path) -> Result<(), CacheError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => check_type_and_owner(path, &meta),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(unavailable(path, "cannot inspect", e)),
    }
}

/// The same checks on a file just opened (it may have been replaced since [`check_path`]).
fn check_open_file(path: &Path, file: &File) -> Result<(), CacheError> {
    let meta = file
        .metadata()
        .map_err(|e| unavailable(path, "cannot inspect", e))?;
    check_type_and_owner(path, &meta)
}

fn check_type_and_owner(path: &Path, meta: &std::fs::Metadata) -> Result<(), CacheError> {
    let file_type = meta.file_type();
    if file_type.is_symlink() {
        return Err(refused_type(path, "a symbolic link"));
    }
    if !file_type.is_file() {
        return Err(refused_type(path, kind_of(&file_type)));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if meta.uid() != current_uid(path)? {
            return Err(CacheError::Refused(format!(
                "{} belongs to another user (uid {}); refusing to use it",
                path.display(),
                meta.uid()
            )));
        }
    }
    Ok(())
}

fn kind_of(file_type: &std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_char_device() || file_type.is_block_device() {
            return "a device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    "an unknown kind of file"
}

fn ensure_dir(path: &Path) -> Result<(), CacheError> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if dir.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| unavailable(dir, "cannot create directory", e))
}

/// Checks that the open file is a regular file of ours that only we can read; fixes group/world permissions
/// through the open file (never by path, which could name something else by now).
#[cfg(unix)]
fn check_permissions(path: &Path, file: &File) -> Result<(), CacheError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = file
        .metadata()
        .map_err(|e| unavailable(path, "cannot inspect", e))?;
    check_type_and_owner(path, &meta)?;
    if meta.mode() & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{:o}", meta.mode() & 0o777), "token cache file was readable by others; restricting it to its owner");
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| {
                CacheError::Refused(format!(
                    "{} is readable by others and cannot be fixed: {e}",
                    path.display()
                ))
            })?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(path: &Path, file: &File) -> Result<(), CacheError> {
    check_open_file(path, file)
}

/// The effective uid, read from `/proc/self` (no libc needed) or, elsewhere, from the owner of our cache dir.
#[cfg(unix)]
fn current_uid(path: &Path) -> Result<u32, CacheError> {
    use std::os::unix::fs::MetadataExt;
    if let Ok(meta) = std::fs::metadata("/proc/self") {
        return Ok(meta.uid());
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::metadata(dir)
        .map(|m| m.uid())
        .map_err(|e| unavailable(dir, "cannot inspect", e))
}

/// What is on disk.
enum FileBytes {
    Missing,
    /// Larger than [`MAX_FILE_SIZE`]: not read.
    TooLarge,
    Read(Vec<u8>),
}

/// Reads the cache file: only a regular file of ours (opened without following links, permissions fixed
/// through the open file), and at most [`MAX_FILE_SIZE`] bytes of it.
fn read_file(path: &Path) -> Result<FileBytes, CacheError> {
    check_path(path)?;
    let file = match private_options().read(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileBytes::Missing),
        Err(e) => return Err(open_error(path, "cannot open", e)),
    };
    check_permissions(path, &file)?;
    if file.metadata().is_ok_and(|m| m.len() > MAX_FILE_SIZE) {
        return Ok(FileBytes::TooLarge);
    }
    let mut text = Vec::new();
    // The file may grow between the size check and the read.
    file.take(MAX_FILE_SIZE.saturating_add(1))
        .read_to_end(&mut text)
        .map_err(|e| unavailable(path, "cannot read", e))?;
    if u64::try_from(text.len()).map_or(true, |len| len > MAX_FILE_SIZE) {
        return Ok(FileBytes::TooLarge);
    }
    Ok(FileBytes::Read(text))
}

impl Access<'_> {
    /// Reports a corrupt or oversized file: a warning the first time, then at debug level until a good read.
    fn report_unreadable(&self, reason: &str) {
        let path = self.path.display();
        if self.warnings.unreadable_file.swap(true, Ordering::Relaxed) {
            tracing::debug!(%path, reason, "token cache file is still unreadable; starting with an empty cache");
        } else {
            tracing::warn!(%path, reason, "token cache file is corrupt, truncated or oversized; starting with an empty cache (the file is replaced at the next write)");
        }
    }
}

/// A JSON error without its message, which may quote the file's contents (tokens).
fn json_error(e: &serde_json::Error) -> String {
    format!(
        "{:?} error at line {}, column {}",
        e.classify(),
        e.line(),
        e.column()
    )
}

fn read_contents(access: &Access<'_>) -> Result<Loaded, CacheError> {
    let (path, encryption) = (access.path, access.encryption);
    let empty = || Loaded {
        contents: Contents::default(),
        needs_encrypting: false,
    };
    let corrupt = |reason: &str| {
        access.report_unreadable(reason);
        Ok(empty())
    };
    let text = match read_file(path)? {
        FileBytes::Missing => return Ok(empty()),
        FileBytes::TooLarge => return corrupt(&format!("larger than {MAX_FILE_SIZE} bytes")),
        FileBytes::Read(text) => text,
    };
    if text.is_empty() {
        return Ok(empty());
    }
    let stored = match serde_json::from_slice::<Stored>(&text) {
        Ok(s) if s.version == FORMAT_VERSION => s,
        Ok(s) => {
            tracing::warn!(path = %path.display(), version = s.version, "token cache file has an unknown format version; starting with an empty cache");
            return Ok(empty());
        }
        Err(e) => return corrupt(&json_error(&e)),
    };
    let Some(header) = stored.encryption else {
        let Some(records) = stored.records else {
            return corrupt("no records");
        };
        access.warnings.unreadable_file.store(false, Ordering::Relaxed);
        return Ok(Loaded {
            needs_encrypting: encryption.is_some() && !records.is_empty(),
            contents: Contents {
                version: FORMAT_VERSION,
                records: decode_records(path, records),
            },
        });
    };
    let Some(encryption) = encryption else {
        // Refused rather than overwritten: a process without encryption must not replace an encrypted cache
        // with a plain one.
        return Err(CacheError::Refused(format!(
            "{} is encrypted (its key is in the kernel keyring) but this cache does not encrypt; open it with \
             FileCache::open_encrypted (cargo feature `encrypted-file-cache` of identity-core), or use another \
             cache file",
            path.display()
        )));
    };
    let (Some(nonce), Some(ciphertext)) = (stored.nonce, stored.ciphertext) else {
        return corrupt("encrypted file without nonce or ciphertext");
    };
    let plain = match encryption.open(path, &header, &nonce, &ciphertext) {
        Ok(plain) => plain,
        Err(OpenError::KeyMissing) => {
            encryption.report_key_missing(path);
            return Ok(empty());
        }
        Err(OpenError::OtherKey(key_id)) => {
            tracing::warn!(path = %path.display(), key_id, "token cache file was encrypted with another key than this cache's; starting with an empty cache");
            return Ok(empty());
        }
        Err(OpenError::UnknownAlgorithm(alg)) => {
            tracing::warn!(path = %path.display(), alg, "token cache file is encrypted with an unknown algorithm; starting with an empty cache");
            return Ok(empty());
        }
        Err(OpenError::Undecryptable) => {
            tracing::warn!(path = %path.display(), "token cache file cannot be decrypted (tampered with, truncated, or sealed with a replaced key); starting with an empty cache");
            return Ok(empty());
        }
        Err(OpenError::KeyStore(e)) => return Err(unavailable(path, "cannot decrypt", e)),
    };
    match serde_json::from_slice::<StoredContents>(&plain) {
        Ok(stored) if stored.version == FORMAT_VERSION => {
            access.warnings.unreadable_file.store(false, Ordering::Relaxed);
            Ok(Loaded {
                contents: Contents {
                    version: FORMAT_VERSION,
                    records: decode_records(path, stored.records),
                },
                needs_encrypting: false,
            })
        }
        Ok(c) => {
            tracing::warn!(path = %path.display(), version = c.version, "token cache file has an unknown format version inside its encryption; starting with an empty cache");
            Ok(empty())
        }
        Err(e) => corrupt(&json_error(&e)),
    }
}

/// Decodes the records one by one: one that does not decode, is filed under another key or claims absurd
/// times is dropped (and gone at the next write), not the whole file.
fn decode_records(path: &Path, stored: BTreeMap<String, serde_json::Value>) -> BTreeMap<String, Record> {
    let now = now_secs();
    let mut records = BTreeMap::new();
    for (storage_key, value) in stored {
        match serde_json::from_value::<Record>(value) {
            Ok(record)
                if record.key.storage_key() == storage_key
                    && is_plausible(&record.key, &record.entry, now) =>
            {
                records.insert(storage_key, record);
            }
            Ok(_) => {
                tracing::debug!(path = %path.display(), key = storage_key, "dropping a token cache record filed under another key or with absurd times");
            }
            Err(e) => {
                tracing::debug!(path = %path.display(), key = storage_key, error = json_error(&e), "dropping an unreadable token cache record");
            }
        }
    }
    records
}

/// Whether a record read back makes sense: the key and the entry are of the same kind, and no time in it lies
/// absurdly far ahead (such a record would be served for years). Shared with the Redis store.
pub(super) fn is_plausible(key: &CacheKey, entry: &CacheEntry, now: u64) -> bool {
    let horizon = now.saturating_add(MAX_LIFETIME_SECS);
    let within = |t: u64| t <= horizon;
    match (key, entry) {
        (CacheKey::AccessToken(_), CacheEntry::AccessToken(t)) => {
            within(t.expires_on)
                && within(t.cached_at)
                && t.extended_expires_on.is_none_or(within)
                && t.refresh_on.is_none_or(within)
        }
        (CacheKey::Metadata { .. }, CacheEntry::Metadata(m)) => within(m.expires_on),
        (CacheKey::RefreshToken(_), CacheEntry::RefreshToken(r)) => within(r.last_modified),
        (CacheKey::IdToken(_), CacheEntry::IdToken(_)) | (CacheKey::Account(_), CacheEntry::Account(_)) => {
            true
        }
        _ => false,
    }
}

/// The bytes to write: the JSON, sealed when the cache encrypts.
fn encode(path: &Path, encryption: Option<&Encryption>, contents: &Contents) -> Result<Vec<u8>, CacheError> {
    let json = serde_json::to_vec(contents).map_err(|e| unavailable(path, "cannot encode", e))?;
    match encryption {
        None => Ok(json),
        Some(encryption) => encryption
            .seal(path, json)
            .map_err(|e| unavailable(path, "cannot encrypt", e)),
    }
}

/// Removes temporary files that writers killed mid-write left behind (older than a minute, so never one that
/// a live writer is still filling). Only entries with this file's temporary prefix are looked at: the directory
/// holds every other app's and tenant's file too, and a write must not cost a `stat` per file.
fn sweep_stale_temporaries(path: &Path) {
    let (Some(dir), Some(stem)) = (path.parent(), path.file_stem().and_then(|s| s.to_str())) else {
        return;
    };
    let prefix = format!("{stem}.tmp-");
    let Ok(entries) = std::fs::read_dir(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }) else {
        return;
    };
    let ours = entries.flatten().filter(|entry| {
        entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(&prefix))
    });
    for entry in ours {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > Duration::from_secs(60)));
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CacheError> {
    let tmp = path.with_extension(format!(
        "tmp-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let result = (|| {
        // create_new: O_EXCL, so never an existing file or a link planted at the temporary name.
        let mut file = private_options().write(true).create_new(true).open(&tmp)?;
        file.write_all(bytes)?;
        // No fsync: a cache needs atomicity (the rename) and recovery (a lost or torn file after a power cut
        // reads as empty or corrupt, and the tokens are fetched again), not durability.
        std::fs::rename(&tmp, path)?;
        Ok::<(), std::io::Error>(())
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        unavailable(path, "cannot write", e)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    /// The sweep removes this file's stale temporaries only: not a fresh one (a live writer's), not another
    /// file's, and a link planted under our prefix is removed itself, never what it points to.
    #[cfg(unix)]
    #[test]
    fn the_sweep_removes_only_this_files_stale_temporaries() {
        let dir = std::env::temp_dir().join(format!("idcore-sweep-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let outside = dir.join("outside.json");
        std::fs::write(&outside, b"keep").unwrap();
        let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        let make = |name: &str, stale: bool| {
            let file = std::fs::File::create(dir.join(name)).unwrap();
            if stale {
                file.set_modified(an_hour_ago).unwrap();
            }
        };
        make("app_tenant.tmp-1-stale", true);
        make("app_tenant.tmp-2-fresh", false);
        make("other_tenant.tmp-3-stale", true);
        make("app_tenant.json.lock", true);
        std::os::unix::fs::symlink(&outside, dir.join("app_tenant.tmp-4-link")).unwrap();

        sweep_stale_temporaries(&dir.join("app_tenant.json"));

        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "app_tenant.json.lock",
                "app_tenant.tmp-2-fresh",
                "app_tenant.tmp-4-link",
                "other_tenant.tmp-3-stale",
                "outside.json"
            ]
        );
        assert_eq!(std::fs::read(&outside).unwrap(), b"keep");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn partition_names_are_plain_file_names() {
        assert_eq!(
            partition_file_name("0E4A-B", "Contoso.onmicrosoft.com"),
            "0e4a-b_contoso.onmicrosoft.com.json"
        );
        assert_eq!(partition_file_name("../x", "a/b\\c"), "_.._x_a_b_c.json");
        assert_eq!(partition_file_name(".hidden", ""), "_.hidden__.json");
    }

    /// In every build, with or without the encryption feature: an encrypted file is refused, not clobbered.
    #[tokio::test]
    async fn a_plain_cache_refuses_an_encrypted_file_and_leaves_it_alone() {
        let dir = std::env::temp_dir().join(format!("idcore-file-unit-{}", uuid::Uuid::new_v4()));
        let path = dir.join("cache.json");
        ensure_dir(&path).unwrap();
        let sealed = br#"{"version":1,"encryption":{"alg":"A256GCM","key_id":"k"},"nonce":"AAAA","ciphertext":"AAAA"}"#;
        std::fs::write(&path, sealed).unwrap();
        let cache = FileCache::new(&path);
        let key = CacheKey::Metadata { url: "u".into() };
        let err = cache.get(&key).await.unwrap_err();
        assert!(
            matches!(err, CacheError::Refused(ref m) if m.contains("is encrypted")),
            "{err}"
        );
        assert!(cache.clear().await.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), sealed);
        let _ = std::fs::remove_dir_all(dir);
    }
}
