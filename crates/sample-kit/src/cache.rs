//! Which token cache a sample uses: `IDENTITY_CACHE` = `file` (default), `encrypted-file`, `memory`, or a Redis
//! URL.

use std::path::PathBuf;
use std::sync::Arc;

use identity_core::{ConfigError, FileCache, MemoryCache, TokenCache};

use crate::args::CommonArgs;
use crate::config::SetupError;

/// The store named by the settings. Redis keys are prefixed per client and tenant.
pub async fn open_cache(
    args: &CommonArgs,
    client_id: &str,
    tenant: &str,
) -> Result<Arc<dyn TokenCache>, SetupError> {
    let choice = args.cache.trim();
    match choice {
        "" | "file" => Ok(Arc::new(FileCache::new(file_path(args)?))),
        "encrypted-file" => open_encrypted(file_path(args)?),
        "memory" => Ok(Arc::new(MemoryCache::new())),
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
async fn open_redis(url: &str, client_id: &str, tenant: &str) -> Result<Arc<dyn TokenCache>, SetupError> {
    use identity_core::cache::RedisCache;
    // Connecting sends nothing, so an error here is a bad URL; a server that is down is handled per call (the
    // client then asks the identity provider).
    let redis = RedisCache::connect(url, RedisCache::app_prefix(client_id, tenant))
        .await
        .map_err(|e| invalid(e.to_string()))?;
    Ok(Arc::new(redis))
}

#[cfg(not(feature = "redis"))]
async fn open_redis(_: &str, _: &str, _: &str) -> Result<Arc<dyn TokenCache>, SetupError> {
    Err(invalid(
        "this build has no Redis support: build sample-kit with the 'redis' feature".into(),
    ))
}

#[cfg(feature = "encrypted-file-cache")]
fn open_encrypted(path: PathBuf) -> Result<Arc<dyn TokenCache>, SetupError> {
    let cache = FileCache::open_encrypted(path);
    if !cache.is_encrypted() {
        tracing::warn!("this platform has no supported key store: the cache file is a plain owner-only file");
    }
    Ok(Arc::new(cache))
}

#[cfg(not(feature = "encrypted-file-cache"))]
fn open_encrypted(_: PathBuf) -> Result<Arc<dyn TokenCache>, SetupError> {
    Err(invalid(
        "this build cannot encrypt the cache file: build sample-kit with the 'encrypted-file-cache' feature"
            .into(),
    ))
}
