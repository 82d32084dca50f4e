//! Azure Arc: the agent answers a first request with `401` and `WWW-Authenticate: Basic realm=<file>`; whoever
//! can read that file (members of the agent's group) proves it by sending its content. The file is read only
//! if it is a regular `.key` file of at most 4096 bytes inside the agent's token directory, after resolving
//! symbolic links. A user-assigned identity counts only if the answer echoes it (MSAL Python 1.39 does the same:
//! older agents silently answer with the system-assigned identity).

use std::path::{Path, PathBuf};

use super::error::ManagedIdentityError;
use super::identity::ManagedIdentitySource;
use super::identity::{ManagedIdentityId, TokenRequest};
use super::response::{Lifetime, TokenAnswer, parse_token};
use super::sources::error_answer;
use super::transport::{get, header};
use crate::secret::ClientSecret;

const ARC_API_VERSION: &str = "2020-06-01";
/// The agent's key files are a few dozen bytes; anything larger is not one.
pub(crate) const MAX_KEY_BYTES: u64 = 4096;

pub(crate) async fn arc(
    client: &reqwest::Client,
    url: &url::Url,
    token_dir: &Path,
    request: &TokenRequest<'_>,
) -> Result<TokenAnswer, ManagedIdentityError> {
    let source = ManagedIdentitySource::AzureArc;
    let mut query = vec![("api-version", ARC_API_VERSION), ("resource", request.resource)];
    // Arc honours IMDS's spelling of a resource id, msi_res_id.
    query.extend(request.id.query_pair("client_id", "object_id", "msi_res_id"));
    let metadata = || header("metadata", "true", false);
    let first = get(
        client,
        source,
        url,
        &query,
        metadata().into_iter().collect(),
        &|_| None,
    )
    .await?;
    if first.status != 401 {
        if first.status == 200 {
            return Err(ManagedIdentityError::InvalidResponse {
                platform: source,
                reason: "the agent answered without its authentication challenge (HTTP 401)".into(),
            });
        }
        return Err(error_answer(source, &first, None, request.id));
    }
    let challenge = first
        .headers
        .get(http::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| refused("the 401 answer has no WWW-Authenticate header".into()))?;
    let realm = basic_realm(challenge)
        .ok_or_else(|| refused("the WWW-Authenticate header is not 'Basic realm=<file>'".into()))?;
    let key = read_key(token_dir, Path::new(&realm))?;
    let authorization = format!("Basic {}", key.secret());
    let headers = [metadata(), header("authorization", &authorization, true)]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>();
    if headers.len() != 2 {
        return Err(refused(
            "the key file holds characters a header cannot carry".into(),
        ));
    }
    let reply = get(client, source, url, &query, headers, &|_| None).await?;
    if reply.status != 200 {
        return Err(error_answer(source, &reply, Some(key.secret()), request.id));
    }
    let answer = parse_token(source, &reply.body, request.now, Lifetime::ExpiresIn)?;
    confirm_identity(request.id, &answer)?;
    Ok(answer)
}

fn refused(reason: String) -> ManagedIdentityError {
    ManagedIdentityError::ArcChallenge { reason }
}

/// The realm of `Basic realm=<path>` (optionally quoted).
fn basic_realm(header: &str) -> Option<String> {
    let (scheme, rest) = header.trim().split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let (name, value) = rest.trim().split_once('=')?;
    if !name.trim().eq_ignore_ascii_case("realm") {
        return None;
    }
    let value = value.trim();
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    (!value.is_empty()).then(|| value.to_string())
}

/// Reads the challenge's key file after checking it: inside `token_dir` once links are resolved, named
/// `*.key`, a regular file, at most [`MAX_KEY_BYTES`].
fn read_key(token_dir: &Path, file: &Path) -> Result<ClientSecret, ManagedIdentityError> {
    let shown = file.display().to_string();
    if file.extension().and_then(|e| e.to_str()) != Some("key") {
        return Err(refused(format!(
            "the challenge file '{shown}' is not a .key file"
        )));
    }
    let dir = std::fs::canonicalize(token_dir).map_err(|e| {
        refused(format!(
            "the agent's token directory '{}' is unusable: {e}",
            token_dir.display()
        ))
    })?;
    let resolved: PathBuf = std::fs::canonicalize(file)
        .map_err(|e| refused(format!("the challenge file '{shown}' is unusable: {e}")))?;
    if resolved.parent() != Some(dir.as_path()) {
        return Err(refused(format!(
            "the challenge file '{shown}' is not in the agent's token directory '{}'",
            token_dir.display()
        )));
    }
    if resolved.extension().and_then(|e| e.to_str()) != Some("key") {
        return Err(refused(format!(
            "the challenge file '{shown}' links to a file that is not a .key file"
        )));
    }
    let metadata = std::fs::metadata(&resolved)
        .map_err(|e| refused(format!("the challenge file '{shown}' is unusable: {e}")))?;
    if !metadata.is_file() {
        return Err(refused(format!(
            "the challenge file '{shown}' is not a regular file"
        )));
    }
    // Size before content, as MSAL does.
    if metadata.len() > MAX_KEY_BYTES {
        return Err(refused(format!(
            "the challenge file '{shown}' is larger than {MAX_KEY_BYTES} bytes"
        )));
    }
    let content = crate::fs::read_bounded(&resolved, MAX_KEY_BYTES)
        .map_err(|e| refused(format!("the challenge file '{shown}' cannot be read: {e}")))?;
    let text = String::from_utf8(content)
        .map_err(|_| refused(format!("the challenge file '{shown}' is not text")))?;
    let key = text.trim();
    if key.is_empty() {
        return Err(refused(format!("the challenge file '{shown}' is empty")));
    }
    Ok(ClientSecret::new(key))
}

/// A user-assigned identity must be echoed by the answer (client id and object id compared as GUIDs, a
/// resource id case-insensitively).
fn confirm_identity(id: &ManagedIdentityId, answer: &TokenAnswer) -> Result<(), ManagedIdentityError> {
    let (requested, echoed) = match id {
        ManagedIdentityId::SystemAssigned => return Ok(()),
        ManagedIdentityId::ClientId(v) => (v, &answer.client_id),
        ManagedIdentityId::ObjectId(v) => (v, &answer.object_id),
        ManagedIdentityId::ResourceId(v) => (v, &answer.resource_id),
    };
    match echoed {
        Some(e) if e.eq_ignore_ascii_case(requested) => Ok(()),
        _ => Err(ManagedIdentityError::ArcIdentityNotConfirmed {
            identity: id.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realms() {
        assert_eq!(
            basic_realm("Basic realm=/var/opt/azcmagent/tokens/a.key").as_deref(),
            Some("/var/opt/azcmagent/tokens/a.key")
        );
        assert_eq!(
            basic_realm("basic  Realm=\"/x/a.key\"").as_deref(),
            Some("/x/a.key")
        );
        assert_eq!(basic_realm("Bearer realm=/x/a.key"), None);
        assert_eq!(basic_realm("Basic realm="), None);
        assert_eq!(basic_realm("Basic"), None);
    }
}
