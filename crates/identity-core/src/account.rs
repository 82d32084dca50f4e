//! Signed-in accounts (user flows): who signed in, read from `client_info` and the ID token.
//!
//! The ID token is read for display only. It came straight from the token endpoint over TLS, so this client
//! does not validate its signature (as MSAL does not); nothing here is used for authorization.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::cache::CachedAccount;

/// A signed-in account, as kept in the token cache.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Account {
    /// `<uid>.<utid>`: the user's object id and home tenant id, from `client_info`. Keys the account's records.
    pub home_account_id: String,
    /// The authority host (and port) the account signed in at.
    pub environment: String,
    /// The tenant (id) of the sign-in.
    pub realm: String,
    /// `preferred_username` (usually the UPN), for display and to pick an account.
    pub username: String,
    /// Display name, when the ID token has one.
    pub name: Option<String>,
    /// The user's object id in `realm`.
    pub local_account_id: String,
}

impl Account {
    pub(crate) fn from_cached(environment: &str, cached: CachedAccount) -> Account {
        Account {
            home_account_id: cached.home_account_id,
            environment: environment.to_string(),
            realm: cached.realm,
            username: cached.username,
            name: cached.name,
            local_account_id: cached.local_account_id,
        }
    }

    pub(crate) fn to_cached(&self) -> CachedAccount {
        CachedAccount {
            home_account_id: self.home_account_id.clone(),
            realm: self.realm.clone(),
            username: self.username.clone(),
            name: self.name.clone(),
            local_account_id: self.local_account_id.clone(),
        }
    }

    /// Builds the account from a user-token response. `fallback_username` is used when the ID token names no
    /// user (for example the username given to the password grant).
    pub(crate) fn from_response(
        environment: &str,
        client_info: Option<&str>,
        id_token: Option<&str>,
        fallback_username: Option<&str>,
    ) -> Result<Account, String> {
        let claims = match id_token {
            Some(token) => IdTokenClaims::parse(token)?,
            None => IdTokenClaims::default(),
        };
        let info = client_info.map(ClientInfo::parse).transpose()?;
        let oid = claims.oid.clone().or_else(|| claims.sub.clone());
        let home_account_id = match (&info, &oid, &claims.tid) {
            (Some(info), _, _) => format!("{}.{}", info.uid, info.utid),
            (None, Some(oid), Some(tid)) => format!("{oid}.{tid}"),
            _ => {
                return Err("the response has neither client_info nor an ID token naming the user".into());
            }
        };
        let realm = claims
            .tid
            .clone()
            .or_else(|| info.as_ref().map(|i| i.utid.clone()))
            .unwrap_or_default();
        let username = claims
            .preferred_username
            .or(claims.upn)
            .or(claims.email)
            .or_else(|| fallback_username.map(str::to_string))
            .unwrap_or_default();
        Ok(Account {
            home_account_id,
            environment: environment.to_string(),
            realm,
            username,
            name: claims.name,
            local_account_id: oid.or_else(|| info.map(|i| i.uid)).unwrap_or_default(),
        })
    }
}

/// `client_info`: base64url (unpadded) JSON `{"uid": …, "utid": …}`.
#[derive(Debug, Deserialize)]
struct ClientInfo {
    uid: String,
    utid: String,
}

impl ClientInfo {
    fn parse(value: &str) -> Result<ClientInfo, String> {
        let bytes = decode_base64url(value).ok_or("client_info is not base64url")?;
        serde_json::from_slice(&bytes).map_err(|e| format!("client_info is not the expected JSON: {e}"))
    }
}

/// The ID token claims used to describe the account.
#[derive(Debug, Default, Deserialize)]
struct IdTokenClaims {
    #[serde(default)]
    oid: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    tid: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
    #[serde(default)]
    upn: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

impl IdTokenClaims {
    fn parse(jwt: &str) -> Result<IdTokenClaims, String> {
        let payload = jwt.split('.').nth(1).ok_or("the ID token is not a JWT")?;
        let bytes = decode_base64url(payload).ok_or("the ID token payload is not base64url")?;
        serde_json::from_slice(&bytes).map_err(|e| format!("the ID token payload is not JSON claims: {e}"))
    }
}

/// The `nonce` claim of an ID token (the interactive flow checks it is the one it sent).
pub(crate) fn id_token_nonce(jwt: &str) -> Result<Option<String>, String> {
    #[derive(Deserialize)]
    struct Nonce {
        #[serde(default)]
        nonce: Option<String>,
    }
    let payload = jwt.split('.').nth(1).ok_or("the ID token is not a JWT")?;
    let bytes = decode_base64url(payload).ok_or("the ID token payload is not base64url")?;
    let claims: Nonce = serde_json::from_slice(&bytes)
        .map_err(|_| "the ID token payload is not JSON claims with a string nonce".to_string())?;
    Ok(claims.nonce)
}

/// Entra sends base64url without padding; tolerate padding anyway.
fn decode_base64url(value: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(value.trim().trim_end_matches('=')).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn reads_client_info_and_id_token() {
        let client_info = b64(r#"{"uid":"u-1","utid":"t-1"}"#);
        let id_token = format!(
            "h.{}.s",
            b64(r#"{"oid":"u-1","tid":"t-1","preferred_username":"adele@contoso.com","name":"Adele"}"#)
        );
        let a = Account::from_response("login.x", Some(&client_info), Some(&id_token), None).unwrap();
        assert_eq!(a.home_account_id, "u-1.t-1");
        assert_eq!(a.realm, "t-1");
        assert_eq!(a.username, "adele@contoso.com");
        assert_eq!(a.name.as_deref(), Some("Adele"));
        assert_eq!(a.local_account_id, "u-1");
        // Padded client_info (seen from some proxies) is accepted too.
        let padded = format!("{client_info}==");
        assert!(Account::from_response("login.x", Some(&padded), None, Some("u@x")).is_ok());
    }

    #[test]
    fn falls_back_to_id_token_then_fails_clearly() {
        let id_token = format!("h.{}.s", b64(r#"{"oid":"o","tid":"t","upn":"u@x"}"#));
        let a = Account::from_response("e", None, Some(&id_token), None).unwrap();
        assert_eq!((a.home_account_id.as_str(), a.username.as_str()), ("o.t", "u@x"));
        let err = Account::from_response("e", None, None, Some("u@x")).unwrap_err();
        assert!(err.contains("client_info"), "{err}");
        assert!(Account::from_response("e", Some("%%%"), None, None).is_err());
        assert!(Account::from_response("e", None, Some("not-a-jwt"), None).is_err());
    }
}
