//! JWT encoding (RS256 with the emulator key) and verification of the emulator's own tokens.

use serde::Serialize;

use crate::formats::{b64url, b64url_decode};
use crate::keys::TokenSigningKey;

/// Header of access tokens: `{"typ":"JWT","alg":"RS256","x5t":…,"kid":…}` in that order.
#[derive(Serialize)]
struct Header<'a> {
    typ: &'static str,
    alg: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    x5t: Option<&'a str>,
    kid: &'a str,
}

/// Signs `claims` into a compact JWS. `with_x5t` adds the `x5t` header (v1 access tokens have it, v2
/// tokens do not).
pub(crate) fn encode<C: Serialize>(
    key: &TokenSigningKey,
    claims: &C,
    with_x5t: bool,
) -> Result<String, String> {
    let header = Header {
        typ: "JWT",
        alg: "RS256",
        x5t: with_x5t.then_some(key.kid()),
        kid: key.kid(),
    };
    let header = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
    let claims = serde_json::to_vec(claims).map_err(|e| e.to_string())?;
    let signing_input = format!("{}.{}", b64url(&header), b64url(&claims));
    let signature = key.sign(signing_input.as_bytes())?;
    Ok(format!("{signing_input}.{}", b64url(&signature)))
}

/// Why a bearer token was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenRejection {
    /// Not three base64url parts of JSON.
    Malformed,
    /// Wrong algorithm or signature.
    BadSignature,
}

/// Checks structure and signature; returns the decoded claims. Time and audience checks are the
/// caller's business (their error messages differ).
pub(crate) fn decode_verified(
    key: &TokenSigningKey,
    token: &str,
) -> Result<serde_json::Value, TokenRejection> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenRejection::Malformed);
    };
    let header: serde_json::Value = b64url_decode(h)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(TokenRejection::Malformed)?;
    let claims: serde_json::Value = b64url_decode(c)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(TokenRejection::Malformed)?;
    if !header.is_object() || !claims.is_object() {
        return Err(TokenRejection::Malformed);
    }
    let signature = b64url_decode(s).ok_or(TokenRejection::BadSignature)?;
    if header.get("alg").and_then(|a| a.as_str()) != Some("RS256") {
        return Err(TokenRejection::BadSignature);
    }
    let signing_input = &token[..h.len() + 1 + c.len()];
    if !key.verify(signing_input.as_bytes(), &signature) {
        return Err(TokenRejection::BadSignature);
    }
    Ok(claims)
}
