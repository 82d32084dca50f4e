//! `WWW-Authenticate` challenges from a resource: the claims a continuous access evaluation challenge asks for.

use base64::Engine;
use http::HeaderMap;
use serde_json::Value;

/// The claims a 401's `WWW-Authenticate: Bearer …, error="insufficient_claims", claims="<base64>"` asks for, as
/// JSON text; `None` without such a challenge, or when its claims are not base64 of a JSON object.
pub(crate) fn claims_challenge(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| {
            let params = bearer_params(value)?;
            let error = params.iter().find(|(k, _)| k.eq_ignore_ascii_case("error"))?;
            if error.1 != "insufficient_claims" {
                return None;
            }
            let (_, encoded) = params.iter().find(|(k, _)| k.eq_ignore_ascii_case("claims"))?;
            let encoded = encoded.trim().trim_end_matches('=');
            let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(encoded)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded))
                .ok()?;
            let json: Value = serde_json::from_slice(&bytes).ok()?;
            json.is_object()
                .then(|| String::from_utf8_lossy(&bytes).into_owned())
        })
}

/// The `name="value"` (or `name=token`) parameters of a `Bearer` challenge.
fn bearer_params(header: &str) -> Option<Vec<(String, String)>> {
    let rest = header.trim_start();
    let scheme_len = rest.find(char::is_whitespace).unwrap_or(rest.len());
    if !rest[..scheme_len].eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut chars = rest[scheme_len..].chars().peekable();
    let mut params = Vec::new();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let name: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if name.trim().is_empty() || chars.next() != Some('=') {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => value.extend(chars.next()),
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect();
        }
        params.push((name.trim().to_string(), value.trim().to_string()));
    }
    Some(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn challenge(value: &str) -> Option<String> {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_str(value).unwrap(),
        );
        claims_challenge(&headers)
    }

    #[test]
    fn reads_a_cae_claims_challenge() {
        let claims = r#"{"access_token":{"nbf":{"essential":true,"value":"1604106651"}}}"#;
        let encoded = base64::engine::general_purpose::STANDARD.encode(claims);
        let header = format!(
            r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000", error="insufficient_claims", claims="{encoded}""#
        );
        assert_eq!(challenge(&header).as_deref(), Some(claims));
    }

    #[test]
    fn ignores_what_is_not_a_claims_challenge() {
        let encoded = base64::engine::general_purpose::STANDARD.encode(r#"{"a":1}"#);
        assert_eq!(challenge(r#"Bearer error="invalid_token""#), None);
        assert_eq!(
            challenge(&format!(
                r#"Basic error="insufficient_claims", claims="{encoded}""#
            )),
            None
        );
        assert_eq!(
            challenge(r#"Bearer error="insufficient_claims", claims="%%%""#),
            None
        );
        let not_json = base64::engine::general_purpose::STANDARD.encode("not json");
        assert_eq!(
            challenge(&format!(
                r#"Bearer error="insufficient_claims", claims="{not_json}""#
            )),
            None
        );
        assert_eq!(challenge("Bearer"), None);
        assert!(challenge(&format!(r#"Bearer error=insufficient_claims, claims={encoded}"#)).is_some());
    }
}
