//! Which token cache a sample uses: `IDENTITY_CACHE` = `file` (default), `encrypted-file`, `memory`, or a Redis
//! URL.

use std::path::PathBuf;
use std::sync::Arc;

use identity_core::{ConfigError, FileCache, MemoryCache, TokenCache};

use crate::args::RunArgs;
use crate::error::SetupError;

/// The store named by the settings. Redis keys are prefixed per client and tenant. A cache file the library
/// refuses (a symbolic link, a directory, a device, a FIFO, another user's file) is reported in one warning and
/// replaced by a memory cache, so the sample still runs.
pub async fn open_cache(
    args: &RunArgs,
    client_id: &str,
    tenant: &str,
) -> Result<Arc<dyn TokenCache>, SetupError> {
    Ok(open_store(args, client_id, tenant).await?.cache)
}

/// An opened store and what it is.
#[derive(Debug)]
pub struct Store {
    /// The store.
    pub cache: Arc<dyn TokenCache>,
    /// What it is, for messages.
    pub kind: StoreKind,
}

/// Which store [`open_store`] opened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreKind {
    /// The cache file.
    File(PathBuf),
    /// The cache file, encrypted.
    EncryptedFile(PathBuf),
    /// A memory cache in place of a cache file that was refused (and reported).
    RefusedFile(PathBuf),
    /// A memory cache, as asked.
    Memory,
    /// Redis, with this key prefix.
    Redis(String),
}

impl std::fmt::Display for StoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreKind::File(path) => write!(f, "file {}", path.display()),
            StoreKind::EncryptedFile(path) => write!(f, "encrypted file {}", path.display()),
            StoreKind::RefusedFile(path) => {
                write!(f, "memory, in place of the refused file {}", path.display())
            }
            StoreKind::Memory => f.write_str("memory (nothing persists)"),
            StoreKind::Redis(prefix) => write!(f, "redis, keys {prefix}:*"),
        }
    }
}

/// [`open_cache`], saying which store it is.
pub async fn open_store(args: &RunArgs, client_id: &str, tenant: &str) -> Result<Store, SetupError> {
    let choice = args.cache.trim();
    match choice {
        "" | "file" => {
            let path = file_path(args, client_id, tenant)?;
            let store = checked_file(FileCache::new(&path), StoreKind::File(path));
            adopt_legacy_records(args, &store, client_id, tenant).await;
            Ok(store)
        }
        "encrypted-file" => {
            let path = file_path(args, client_id, tenant)?;
            let store = checked_file(open_encrypted(&path)?, StoreKind::EncryptedFile(path));
            adopt_legacy_records(args, &store, client_id, tenant).await;
            Ok(store)
        }
        "memory" => Ok(Store {
            cache: Arc::new(MemoryCache::new()),
            kind: StoreKind::Memory,
        }),
        url if url.starts_with("redis://") || url.starts_with("rediss://") => {
            open_redis(url, client_id, tenant).await
        }
        _ => Err(invalid(format!(
            "'{}' is not a token cache: use file, encrypted-file, memory or redis://host:port",
            if choice.contains('@') {
                "[a URL with a password]"
            } else {
                choice
            }
        ))),
    }
}

/// The file cache if its path is usable; else a memory cache and one warning naming the path, the problem
/// and the fix. Nothing at the path is opened, changed or replaced.
fn checked_file(cache: FileCache, kind: StoreKind) -> Store {
    let path = cache.path().to_path_buf();
    match cache.check() {
        Ok(()) => Store {
            cache: Arc::new(cache),
            kind,
        },
        Err(e) => {
            let link = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
            tracing::warn!(
                "{e}. Running without the file cache: this run keeps its tokens in memory only. Fix: {}",
                if link {
                    "remove the symbolic link, or set IDENTITY_CACHE_PATH to another file"
                } else {
                    "set IDENTITY_CACHE_PATH to another file"
                }
            );
            Store {
                cache: Arc::new(MemoryCache::new()),
                kind: StoreKind::RefusedFile(path),
            }
        }
    }
}

/// The cache file: `IDENTITY_CACHE_PATH`, else this app's and tenant's own file in the user's cache directory,
/// `<cache dir>/identity-core/token-cache/<client id>_<tenant>.json` (see `FileCache::default_path_for`).
pub fn file_path(args: &RunArgs, client_id: &str, tenant: &str) -> Result<PathBuf, SetupError> {
    match &args.cache_path {
        Some(path) if !path.as_os_str().is_empty() => Ok(path.clone()),
        _ => FileCache::default_path_for(client_id, tenant).ok_or(SetupError::Invalid {
            setting: "IDENTITY_CACHE_PATH",
            source: ConfigError::Empty {
                setting: "the user's cache directory (HOME is not set); IDENTITY_CACHE_PATH",
            },
        }),
    }
}

/// Every file of the file cache: `IDENTITY_CACHE_PATH` alone if set; else each app's and tenant's file in the
/// user's cache directory, and the single file all apps shared before (if it is still there).
pub fn all_file_paths(args: &RunArgs) -> Result<Vec<PathBuf>, SetupError> {
    if let Some(path) = args.cache_path.as_ref().filter(|p| !p.as_os_str().is_empty()) {
        return Ok(vec![path.clone()]);
    }
    let no_home = || SetupError::Invalid {
        setting: "IDENTITY_CACHE_PATH",
        source: ConfigError::Empty {
            setting: "the user's cache directory (HOME is not set); IDENTITY_CACHE_PATH",
        },
    };
    let dir = FileCache::default_dir().ok_or_else(no_home)?;
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect(),
        Err(_) => Vec::new(),
    };
    paths.sort();
    if let Some(legacy) = FileCache::default_path().filter(|p| std::fs::symlink_metadata(p).is_ok()) {
        paths.push(legacy);
    }
    Ok(paths)
}

/// With the default file, moves this app's records out of the single file all apps shared before, once (the
/// library does nothing once this app's own file exists). A failure is reported; the run goes on.
async fn adopt_legacy_records(args: &RunArgs, store: &Store, client_id: &str, tenant: &str) {
    let uses_default = args.cache_path.as_ref().is_none_or(|p| p.as_os_str().is_empty());
    let (StoreKind::File(path) | StoreKind::EncryptedFile(path)) = &store.kind else {
        return;
    };
    let Some(legacy) = FileCache::default_path().filter(|_| uses_default) else {
        return;
    };
    let cache = match &store.kind {
        StoreKind::EncryptedFile(_) => match open_encrypted(path) {
            Ok(cache) => cache,
            Err(_) => return,
        },
        _ => FileCache::new(path),
    };
    if let Err(e) = cache.adopt_records_from(&legacy, client_id, tenant).await {
        tracing::warn!(
            "could not move this app's records from the shared token cache file {}: {e}; they will be fetched again",
            legacy.display()
        );
    }
}

fn invalid(reason: String) -> SetupError {
    SetupError::Cache(reason)
}

#[cfg(feature = "redis")]
async fn open_redis(url: &str, client_id: &str, tenant: &str) -> Result<Store, SetupError> {
    use identity_core::RedisCache;
    // Connecting sends nothing, so an error here is a bad URL; a server that is down is handled per call (the
    // client then asks the identity provider).
    let prefix = RedisCache::app_prefix(client_id, tenant);
    let redis = RedisCache::connect(url, prefix.clone())
        .await
        .map_err(|e| invalid(e.to_string()))?;
    Ok(Store {
        cache: Arc::new(redis),
        kind: StoreKind::Redis(prefix),
    })
}

#[cfg(not(feature = "redis"))]
async fn open_redis(_: &str, _: &str, _: &str) -> Result<Store, SetupError> {
    Err(invalid(
        "this build has no Redis support: build sample-kit with the 'redis' feature".into(),
    ))
}

#[cfg(feature = "encrypted-file-cache")]
fn open_encrypted(path: &std::path::Path) -> Result<FileCache, SetupError> {
    let cache = FileCache::open_encrypted(path);
    if !cache.is_encrypted() {
        tracing::warn!("this platform has no supported key store: the cache file is a plain owner-only file");
    }
    Ok(cache)
}

#[cfg(not(feature = "encrypted-file-cache"))]
fn open_encrypted(_: &std::path::Path) -> Result<FileCache, SetupError> {
    Err(invalid(
        "this build cannot encrypt the cache file: build sample-kit with the 'encrypted-file-cache' feature"
            .into(),
    ))
}
