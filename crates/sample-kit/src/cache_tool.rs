//! `token-cache list | clear`: what the samples have cached (accounts, tokens with scopes, expiry and authority
//! host, discovery metadata), never the token values.

use clap::{Parser, Subcommand};
use identity_core::now_secs;
use identity_core::{CacheEntry, CacheError, CacheKey, FileCache};

use crate::args::{CommonArgs, RunArgs};
use crate::cache::StoreKind;

/// Lists or clears the samples' token cache (the same IDENTITY_CACHE / IDENTITY_CACHE_PATH settings). Token
/// values are never shown. Without IDENTITY_CACHE_PATH, every app's and tenant's cache file is listed (or
/// cleared). For Redis, AZURE_CLIENT_ID and AZURE_TENANT_ID choose one app's records; without
/// them, every app's and tenant's records are listed (or cleared).
#[derive(Parser, Debug)]
#[command(name = "token-cache", version)]
pub struct CacheToolArgs {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Subcommand, Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    /// Shows each cached record: kind, app, tenant or account, scopes, expiry, authority host.
    List,
    /// Removes every record.
    Clear,
}

/// Runs the tool.
pub async fn run(mut args: CacheToolArgs) -> anyhow::Result<()> {
    // The library's warnings (a refused or corrupt cache file) go to stderr, as in the samples.
    crate::args::init_logging(args.common.run.verbose);
    // IDENTITY_CACHE_PATH=~/... names the same file as for the samples (the tool calls no Graph URL to check).
    args.common.run.expand_paths()?;
    let client_id = args.common.client_id.clone().unwrap_or_default();
    let tenant = args.common.tenant_id.clone().unwrap_or_default();
    #[cfg(feature = "redis")]
    if is_redis(&args.common.run.cache) && (client_id.trim().is_empty() || tenant.trim().is_empty()) {
        return every_app(&args, &client_id, &tenant).await;
    }
    let file_store = matches!(args.common.run.cache.trim(), "" | "file" | "encrypted-file");
    if file_store
        && args
            .common
            .run
            .cache_path
            .as_ref()
            .is_none_or(|p| p.as_os_str().is_empty())
    {
        // One file per app and tenant: every one of them (and the file all apps shared before, if any).
        let paths = crate::cache::all_file_paths(&args.common.run)?;
        if paths.is_empty() {
            println!("Token cache: no cache files yet.");
        }
        for path in paths {
            let mut run = args.common.run.clone();
            run.cache_path = Some(path);
            one_store(&run, args.command, &client_id, &tenant).await?;
        }
        return Ok(());
    }
    one_store(&args.common.run, args.command, &client_id, &tenant).await
}

/// Lists or clears one store.
async fn one_store(run: &RunArgs, command: Command, client_id: &str, tenant: &str) -> anyhow::Result<()> {
    let store = crate::cache::open_store(run, client_id, tenant).await?;
    if let StoreKind::RefusedFile(path) = &store.kind {
        // The warning above says why and what to do; the samples refuse the same file, so it serves no tokens.
        println!(
            "Token cache: file {} is not usable (see the warning); nothing {}.",
            path.display(),
            if command == Command::List {
                "to list"
            } else {
                "cleared"
            }
        );
        return Ok(());
    }
    let mut entries = store.cache.entries().await.map_err(|e| explain(&store.kind, e))?;
    let kind = &store.kind;
    match command {
        Command::Clear => {
            store.cache.clear().await.map_err(|e| explain(kind, e))?;
            println!(
                "Cleared {} record(s) from the token cache ({kind}).",
                entries.len()
            );
        }
        Command::List => {
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            println!("Token cache: {kind}: {} record(s)", entries.len());
            for (key, entry) in entries {
                println!("{}", describe(&key, &entry, now_secs()));
            }
        }
    }
    Ok(())
}

/// The library's error, with the tool's own settings as the fix where they are the cause: a file written with
/// `IDENTITY_CACHE=encrypted-file` read as a plain one.
fn explain(kind: &StoreKind, error: CacheError) -> anyhow::Error {
    if let (StoreKind::File(path), CacheError::Refused(_)) = (kind, &error)
        && FileCache::new(path).holds_encrypted_file().unwrap_or(false)
    {
        return anyhow::anyhow!(
            "the token cache file {} is encrypted (written with IDENTITY_CACHE=encrypted-file) and cannot be read \
             as a plain file; set IDENTITY_CACHE=encrypted-file to list or clear it",
            path.display()
        );
    }
    error.into()
}

#[cfg(feature = "redis")]
fn is_redis(choice: &str) -> bool {
    let choice = choice.trim();
    choice.starts_with("redis://") || choice.starts_with("rediss://")
}

/// Redis without a client id or tenant: every app's records (under `identity-core:`), narrowed to the id
/// that is given, grouped by app and tenant.
#[cfg(feature = "redis")]
async fn every_app(args: &CacheToolArgs, client_id: &str, tenant: &str) -> anyhow::Result<()> {
    use identity_core::RedisCache;
    use identity_core::TokenCache as _;
    let url = args.common.run.cache.trim();
    let root = RedisCache::connect(url, RedisCache::APP_PREFIX_ROOT)
        .await
        .map_err(|e| crate::error::SetupError::Cache(e.to_string()))?;
    // The prefix is identity-core:{client id}:{tenant}, lower case.
    let wanted = |prefix: &str| {
        let mut parts = prefix
            .strip_prefix(RedisCache::APP_PREFIX_ROOT)
            .and_then(|p| p.strip_prefix(':'))
            .unwrap_or_default()
            .splitn(2, ':');
        let (app, app_tenant) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
        (client_id.trim().is_empty() || app == client_id.trim().to_ascii_lowercase())
            && (tenant.trim().is_empty() || app_tenant == tenant.trim().to_ascii_lowercase())
    };
    let mut records: Vec<_> = root
        .entries_under_prefix()
        .await?
        .into_iter()
        .filter(|(prefix, _, _)| wanted(prefix))
        .collect();
    records.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let scope = "redis, every app and tenant (keys identity-core:*)";
    match args.command {
        Command::Clear => {
            let mut prefixes: Vec<&str> = records.iter().map(|(p, _, _)| p.as_str()).collect();
            prefixes.dedup();
            for prefix in prefixes {
                RedisCache::connect(url, prefix)
                    .await
                    .map_err(|e| crate::error::SetupError::Cache(e.to_string()))?
                    .clear()
                    .await?;
            }
            println!(
                "Cleared {} record(s) from the token cache ({scope}).",
                records.len()
            );
        }
        Command::List => {
            println!("Token cache: {scope}: {} record(s)", records.len());
            let mut current = None;
            for (prefix, key, entry) in &records {
                if current != Some(prefix) {
                    println!("{prefix}:");
                    current = Some(prefix);
                }
                println!("  {}", describe(key, entry, now_secs()));
            }
        }
    }
    Ok(())
}

/// One line per record, ending with the authority host (the emulator's records and a tenant's would look
/// alike without it); values are never printed.
fn describe(key: &CacheKey, entry: &CacheEntry, now: u64) -> String {
    match (key, entry) {
        (CacheKey::AccessToken(k), CacheEntry::AccessToken(t)) => format!(
            "access token   app {}  tenant {}{}  scopes [{}]  {}  host {}",
            k.client_id,
            k.realm,
            k.home_account_id
                .as_deref()
                .map(|a| format!("  account {a}"))
                .unwrap_or_default(),
            k.target,
            expiry(t.expires_on, now),
            k.environment
        ),
        (CacheKey::RefreshToken(k), _) => format!(
            "refresh token  app {}  account {}  host {}",
            k.client_id, k.home_account_id, k.environment
        ),
        (CacheKey::IdToken(k), _) => format!(
            "id token       app {}  account {}  host {}",
            k.client_id, k.home_account_id, k.environment
        ),
        (CacheKey::Account(k), CacheEntry::Account(a)) => {
            format!(
                "account        app {}  {} ({})  tenant {}  host {}",
                k.client_id, a.username, k.home_account_id, a.realm, k.environment
            )
        }
        (CacheKey::Metadata { url }, CacheEntry::Metadata(m)) => {
            format!("discovery      {url}  {}", expiry(m.expires_on, now))
        }
        (key, _) => format!("record         {}", key.storage_key()),
    }
}

fn expiry(at: u64, now: u64) -> String {
    if at <= now {
        return "expired".into();
    }
    let left = at - now;
    match left {
        0..=119 => format!("expires in {left} s"),
        120..=7199 => format!("expires in {} min", left / 60),
        _ => format!("expires in {} h", left / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use identity_core::{AccessTokenKey, CachedAccessToken, SecretToken};

    #[test]
    fn a_line_per_record_without_the_token() {
        let key = CacheKey::AccessToken(AccessTokenKey::new(
            None,
            "h",
            "app-1",
            "t",
            &["https://graph.microsoft.com/.default"],
        ));
        let entry = CacheEntry::AccessToken(CachedAccessToken::new(
            SecretToken::new("SECRET-TOKEN"),
            "Bearer".into(),
            vec![],
            1000,
            3600,
            None,
            None,
        ));
        let line = describe(&key, &entry, 1000);
        assert_eq!(
            line,
            "access token   app app-1  tenant t  scopes [https://graph.microsoft.com/.default]  expires in 60 min  host h"
        );
        assert!(!line.contains("SECRET"));
        assert_eq!(expiry(10, 20), "expired");
        assert_eq!(expiry(30, 0), "expires in 30 s");
        assert_eq!(expiry(86400, 0), "expires in 24 h");
    }
}
