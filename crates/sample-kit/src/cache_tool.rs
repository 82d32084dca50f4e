//! `token-cache list | clear`: what the samples have cached (accounts, tokens with scopes and expiry, discovery
//! metadata), never the token values.

use clap::{Parser, Subcommand};
use identity_core::cache::now_secs;
use identity_core::{CacheEntry, CacheKey};

use crate::args::CommonArgs;

/// Lists or clears the samples' token cache (the same IDENTITY_CACHE / IDENTITY_CACHE_PATH settings). Token
/// values are never shown. For Redis, AZURE_CLIENT_ID and AZURE_TENANT_ID choose the app's key prefix.
#[derive(Parser, Debug)]
#[command(name = "token-cache", version)]
pub struct CacheToolArgs {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Subcommand, Debug, Clone, Copy)]
enum Command {
    /// Shows each cached record: kind, app, tenant or account, scopes, expiry.
    List,
    /// Removes every record.
    Clear,
}

/// Runs the tool.
pub async fn run(args: CacheToolArgs) -> anyhow::Result<()> {
    let client_id = args.common.client_id.clone().unwrap_or_default();
    let tenant = args.common.tenant_id.clone().unwrap_or_default();
    let cache = crate::cache::open_cache(&args.common, &client_id, &tenant).await?;
    let store = match args.common.cache.as_str() {
        "" | "file" => format!("file {}", crate::cache::file_path(&args.common)?.display()),
        "encrypted-file" => format!(
            "encrypted file {}",
            crate::cache::file_path(&args.common)?.display()
        ),
        "memory" => "memory (nothing persists)".to_string(),
        _ => "redis".to_string(),
    };
    match args.command {
        Command::Clear => {
            let count = cache.entries().await?.len();
            cache.clear().await?;
            println!("Cleared {count} record(s) from the token cache ({store}).");
        }
        Command::List => {
            let mut entries = cache.entries().await?;
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            println!("Token cache: {store}: {} record(s)", entries.len());
            for (key, entry) in entries {
                println!("{}", describe(&key, &entry, now_secs()));
            }
        }
    }
    Ok(())
}

/// One line per record; values are never printed.
fn describe(key: &CacheKey, entry: &CacheEntry, now: u64) -> String {
    match (key, entry) {
        (CacheKey::AccessToken(k), CacheEntry::AccessToken(t)) => format!(
            "access token   app {}  tenant {}{}  scopes [{}]  {}",
            k.client_id,
            k.realm,
            k.home_account_id
                .as_deref()
                .map(|a| format!("  account {a}"))
                .unwrap_or_default(),
            k.target,
            expiry(t.expires_on, now)
        ),
        (CacheKey::RefreshToken(k), _) => format!(
            "refresh token  app {}  account {}",
            k.client_id, k.home_account_id
        ),
        (CacheKey::IdToken(k), _) => format!(
            "id token       app {}  account {}",
            k.client_id, k.home_account_id
        ),
        (CacheKey::Account(k), CacheEntry::Account(a)) => {
            format!(
                "account        app {}  {} ({})  tenant {}",
                k.client_id, a.username, k.home_account_id, a.realm
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
    use identity_core::{AccessToken, AccessTokenKey, CachedAccessToken};

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
            AccessToken::new("SECRET-TOKEN"),
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
            "access token   app app-1  tenant t  scopes [https://graph.microsoft.com/.default]  expires in 60 min"
        );
        assert!(!line.contains("SECRET"));
        assert_eq!(expiry(10, 20), "expired");
        assert_eq!(expiry(30, 0), "expires in 30 s");
        assert_eq!(expiry(86400, 0), "expires in 24 h");
    }
}
