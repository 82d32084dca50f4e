//! Which token cache a sample uses: `IDENTITY_CACHE` = `file` (default), `encrypted-file`, `memory`, or a Redis
//! URL.

use std::path::PathBuf;
use std::sync::Arc;

use identity_core::{ConfigError, FileCache, MemoryCache, TokenCache};

use crate::args::CommonArgs;
use crate::error::SetupError;

/// The store named by the settings. Redis keys are prefixed per client and tenant. A cache file the library
/// refuses (a symbolic link, a directory, a device, a FIFO, another user's file) is reported in one warning and
/// replaced by a memory cache, so the sample still runs.
pub async fn open_cache(
    args: &CommonArgs,
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
pub async fn open_store(args: &CommonArgs, client_id: &str, tenant: &str) -> Result<Store, SetupError> {
    let choice = args.cache.trim();
    match choice {
        "" | "file" => {
            let path = file_path(args)?;
            Ok(checked_file(FileCache::new(&path), StoreKind::File(path)))
        }
        "encrypted-file" => {
            let path = file_path(args)?;
            Ok(checked_file(
                open_encrypted(&path)?,
                StoreKind::EncryptedFile(path),
            ))
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

/// The cache file: `IDENTITY_CACHE_PATH`, else the user's cache directory.
pub fn file_path(args: &CommonArgs) -> Result<PathBuf, SetupError> {
    match &args.cache_path {
        Some(path) if !path.as_os_str().is_empty() => Ok(path.clone()),
        _ => FileCache::default_path().ok_or(SetupError::Invalid {
            setting: "IDENTITY_CACHE_PATH",
            source: ConfigError::Empty {
                setting: "the user's cache directory (HOME is not set); IDENTITY_CACHE_PATH",
            },
        }),
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
