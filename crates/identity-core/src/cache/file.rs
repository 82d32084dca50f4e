//! A cache file that survives runs and is shared safely by the processes of one user.
//!
//! - Owner-only: the directory is created `0700` and the file `0600`; a file others can read is fixed (and
//!   said so), one owned by another user is refused.
//! - Atomic: every write goes to a temporary file that is synced and renamed over the cache, so a reader (or a
//!   process killed mid-write) never sees half a file.
//! - Shared: writers take an exclusive lock on `<file>.lock` and re-read before they change anything, so two
//!   processes writing at once lose nothing. [`TokenCache::lock`] offers a second lock, held while a token is
//!   fetched, so processes that start together ask the identity provider once.
//! - Forgiving: a corrupt, truncated or newer-format file is reported and treated as empty, never a crash.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{CacheEntry, CacheError, CacheKey, CacheLock, TokenCache, now_secs};

/// Version of the file format this crate writes.
const FORMAT_VERSION: u32 = 1;
/// How long a process waits for another one's token request before asking itself.
const FETCH_LOCK_WAIT: Duration = Duration::from_secs(45);

/// A token cache in a JSON file.
pub struct FileCache {
    path: PathBuf,
}

impl fmt::Debug for FileCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileCache").field("path", &self.path).finish()
    }
}

#[derive(Serialize, Deserialize)]
struct Contents {
    version: u32,
    records: BTreeMap<String, Record>,
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
    /// A cache in `path` (created on first write, with its directory).
    pub fn new(path: impl Into<PathBuf>) -> FileCache {
        FileCache { path: path.into() }
    }

    /// The default file of this user: `<platform cache dir>/identity-core/token-cache.json` (on Linux
    /// `$XDG_CACHE_HOME` or `~/.cache`; on macOS `~/Library/Caches`; on Windows `%LOCALAPPDATA%`).
    pub fn default_path() -> Option<PathBuf> {
        dirs::cache_dir().map(|d| d.join("identity-core").join("token-cache.json"))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock_path(&self, suffix: &str) -> PathBuf {
        let mut name = self
            .path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        name.push(suffix);
        self.path.with_file_name(name)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Path) -> Result<T, CacheError> + Send + 'static,
    ) -> Result<T, CacheError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || work(&path))
            .await
            .map_err(|e| CacheError::Unavailable(format!("cache task failed: {e}")))?
    }

    /// Applies `change` to the file's contents under the write lock and replaces the file atomically.
    async fn update(&self, change: impl FnOnce(&mut Contents) + Send + 'static) -> Result<(), CacheError> {
        let lock_path = self.lock_path(".lock");
        self.blocking(move |path| {
            ensure_dir(path)?;
            let _lock = lock_exclusive(&lock_path, None)?;
            let mut contents = read_contents(path)?;
            let now = now_secs();
            contents
                .records
                .retain(|_, r| r.entry.expires_on().is_none_or(|e| e > now));
            change(&mut contents);
            write_atomically(path, &contents)?;
            sweep_stale_temporaries(path);
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl TokenCache for FileCache {
    async fn get(&self, key: &CacheKey) -> Result<Option<CacheEntry>, CacheError> {
        let storage_key = key.storage_key();
        self.blocking(move |path| Ok(read_contents(path)?.records.remove(&storage_key).map(|r| r.entry)))
            .await
    }

    async fn put(&self, key: &CacheKey, entry: &CacheEntry) -> Result<(), CacheError> {
        let record = Record {
            key: key.clone(),
            entry: entry.clone(),
        };
        self.update(move |c| {
            c.records.insert(record.key.storage_key(), record);
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
        self.blocking(|path| {
            Ok(read_contents(path)?
                .records
                .into_values()
                .map(|r| (r.key, r.entry))
                .collect())
        })
        .await
    }

    async fn clear(&self) -> Result<(), CacheError> {
        self.update(|c| c.records.clear()).await
    }

    async fn lock(&self, _key: &CacheKey) -> Result<Option<Box<dyn CacheLock>>, CacheError> {
        let lock_path = self.lock_path(".fetch.lock");
        let lock = self
            .blocking(move |path| {
                ensure_dir(path)?;
                lock_exclusive(&lock_path, Some(FETCH_LOCK_WAIT))
            })
            .await?;
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

fn lock_exclusive(path: &Path, wait: Option<Duration>) -> Result<FileLock, CacheError> {
    let file = private_options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| unavailable(path, "cannot open lock file", e))?;
    match wait {
        None => file.lock().map_err(|e| unavailable(path, "cannot lock", e))?,
        Some(limit) => {
            let started = Instant::now();
            loop {
                match file.try_lock() {
                    Ok(()) => break,
                    Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < limit => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(std::fs::TryLockError::WouldBlock) => {
                        return Err(unavailable(
                            path,
                            "gave up waiting for",
                            "another process holds it",
                        ));
                    }
                    Err(std::fs::TryLockError::Error(e)) => return Err(unavailable(path, "cannot lock", e)),
                }
            }
        }
    }
    Ok(FileLock(file))
}

fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
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

/// Checks that only the owner can read the file; fixes group/world permissions, refuses a stranger's file.
#[cfg(unix)]
fn check_permissions(path: &Path, file: &File) -> Result<(), CacheError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = file
        .metadata()
        .map_err(|e| unavailable(path, "cannot inspect", e))?;
    let uid = current_uid(path)?;
    if meta.uid() != uid {
        return Err(CacheError::Refused(format!(
            "{} belongs to another user (uid {}); refusing to use it",
            path.display(),
            meta.uid()
        )));
    }
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
fn check_permissions(_path: &Path, _file: &File) -> Result<(), CacheError> {
    Ok(())
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

fn read_contents(path: &Path) -> Result<Contents, CacheError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Contents::default()),
        Err(e) => return Err(unavailable(path, "cannot open", e)),
    };
    check_permissions(path, &file)?;
    let mut text = Vec::new();
    file.read_to_end(&mut text)
        .map_err(|e| unavailable(path, "cannot read", e))?;
    if text.is_empty() {
        return Ok(Contents::default());
    }
    match serde_json::from_slice::<Contents>(&text) {
        Ok(c) if c.version == FORMAT_VERSION => Ok(c),
        Ok(c) => {
            tracing::warn!(path = %path.display(), version = c.version, "token cache file has an unknown format version; starting with an empty cache");
            Ok(Contents::default())
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "token cache file is corrupt or truncated; starting with an empty cache");
            Ok(Contents::default())
        }
    }
}

/// Removes temporary files that writers killed mid-write left behind (older than a minute, so never one that
/// a live writer is still filling).
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
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > Duration::from_secs(60)));
        if stale && entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn write_atomically(path: &Path, contents: &Contents) -> Result<(), CacheError> {
    let json = serde_json::to_vec(contents).map_err(|e| unavailable(path, "cannot encode", e))?;
    let tmp = path.with_extension(format!(
        "tmp-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let result = (|| {
        let mut file = private_options().write(true).create_new(true).open(&tmp)?;
        file.write_all(&json)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Make the rename itself durable.
            File::open(dir)?.sync_all()?;
        }
        Ok::<(), std::io::Error>(())
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        unavailable(path, "cannot write", e)
    })
}
