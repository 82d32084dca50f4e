//! The answers of the managed-identity endpoints: a token (lifetime as `expires_in` or `expires_on`, numbers or
//! numeric strings), or each source's own error shape, turned into a typed error. Nothing from an answer is
//! quoted except an error message, cleaned, shortened, and hidden when it repeats the request's secret.

use serde_json::Value;

use super::error::ManagedIdentityError;
use super::identity::ManagedIdentitySource;

/// A token answer, checked.
#[derive(Debug)]
pub(crate) struct TokenAnswer {
    pub access_token: String,
    pub token_type: String,
    /// Seconds from now.
    pub expires_in: u64,
    pub refresh_in: Option<u64>,
    /// The identity the endpoint says it used (Azure Arc echoes it).
    pub client_id: Option<String>,
    pub object_id: Option<String>,
    pub resource_id: Option<String>,
}

/// Which lifetime member a source documents; the other is accepted too.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Lifetime {
    ExpiresIn,
    ExpiresOn,
}

/// Parses a success answer at `now` (Unix seconds).
pub(crate) fn parse_token(
    source: ManagedIdentitySource,
    body: &[u8],
    now: u64,
    lifetime: Lifetime,
) -> Result<TokenAnswer, ManagedIdentityError> {
    let invalid = |reason: String| ManagedIdentityError::InvalidResponse {
        platform: source,
        reason,
    };
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        invalid(if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<') {
            "not JSON: an HTML page".to_string()
        } else {
            format!("not JSON (line {}, column {})", e.line(), e.column())
        })
    })?;
    let Value::Object(members) = value else {
        return Err(invalid("not a JSON object".into()));
    };
    let text = |name: &str| members.get(name).and_then(Value::as_str).map(str::to_string);
    let access_token = text("access_token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid("member 'access_token' is missing or empty".into()))?;
    let token_type = text("token_type").unwrap_or_else(|| "Bearer".into());
    if !token_type.eq_ignore_ascii_case("bearer") {
        return Err(invalid("member 'token_type' is not Bearer".into()));
    }
    let number = |name: &str| -> Result<Option<u64>, ManagedIdentityError> {
        members
            .get(name)
            .map(|v| seconds(v).ok_or_else(|| invalid(format!("member '{name}' is not a number of seconds"))))
            .transpose()
    };
    let expires_in = number("expires_in")?;
    let expires_on = number("expires_on")?;
    let from_expires_on = |on: u64| {
        on.checked_sub(now).filter(|left| *left > 0).ok_or_else(|| {
            invalid("member 'expires_on' is in the past: the token has already expired".into())
        })
    };
    let expires_in = match (lifetime, expires_in, expires_on) {
        (Lifetime::ExpiresIn, Some(secs), _) | (Lifetime::ExpiresOn, Some(secs), None) => secs,
        (_, _, Some(on)) => from_expires_on(on)?,
        (_, None, None) => {
            return Err(invalid(
                "members 'expires_in' and 'expires_on' are both missing".into(),
            ));
        }
    };
    if expires_in == 0 {
        return Err(invalid(
            "member 'expires_in' is zero: the token has already expired".into(),
        ));
    }
    Ok(TokenAnswer {
        access_token,
        token_type,
        expires_in,
        refresh_in: number("refresh_in")?,
        client_id: text("client_id"),
        object_id: text("object_id"),
        resource_id: text("msi_res_id").or_else(|| text("mi_res_id")),
    })
}

/// Seconds: a non-negative integer as a JSON number or a string of digits (IMDS sends strings).
fn seconds(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0)
                .map(|f| if f >= u64::MAX as f64 { u64::MAX } else { f as u64 })
        }),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    }
}

/// What an error answer says: a code (if any) and a message, in whichever shape the source uses.
#[derive(Debug, Default)]
pub(crate) struct ErrorAnswer {
    pub code: Option<String>,
    pub message: String,
}

/// Reads an error answer: `{"error","error_description"}` (IMDS, Arc), `{"error":{"code","message"}}`
/// (Service Fabric), `{"statusCode","message"}` (App Service, Azure ML), or anything else (its start).
pub(crate) fn parse_error(body: &[u8], secret: Option<&str>) -> ErrorAnswer {
    let clean = |s: &str| clean_message(s, secret);
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(members)) => {
            let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
            match members.get("error") {
                Some(Value::Object(inner)) => ErrorAnswer {
                    code: text(inner.get("code")).map(|c| clean(&c)),
                    message: clean(&text(inner.get("message")).unwrap_or_default()),
                },
                Some(Value::String(code)) => ErrorAnswer {
                    code: Some(clean(code)),
                    message: clean(
                        &text(members.get("error_description"))
                            .or_else(|| text(members.get("message")))
                            .unwrap_or_default(),
                    ),
                },
                _ => ErrorAnswer {
                    code: members
                        .get("statusCode")
                        .map(|c| clean(&c.to_string().replace('"', ""))),
                    message: clean(
                        &text(members.get("message"))
                            .or_else(|| text(members.get("Message")))
                            .unwrap_or_default(),
                    ),
                },
            }
        }
        _ if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<') => ErrorAnswer {
            code: None,
            message: "an HTML page".into(),
        },
        _ => ErrorAnswer {
            code: None,
            message: clean(&String::from_utf8_lossy(body)),
        },
    }
}

/// Words an answer must not carry for its message to be shown: it would repeat a credential.
const CREDENTIAL_MARKERS: [&str; 4] = ["access_token", "bearer ", "basic ", "secret"];

/// A message as shown: printable, at most 300 characters, and not shown at all if it repeats the request's
/// secret or carries what looks like a credential.
pub(crate) fn clean_message(message: &str, secret: Option<&str>) -> String {
    let lower = message.to_ascii_lowercase();
    if secret.is_some_and(|s| !s.is_empty() && message.contains(s))
        || CREDENTIAL_MARKERS.iter().any(|m| lower.contains(m))
    {
        return "(not shown: the answer repeats the request's credentials)".into();
    }
    let shown: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    let shown = shown.trim();
    if shown.is_empty() {
        "(no message)".into()
    } else {
        shown.to_string()
    }
}

/// Whether an error answer means "no such identity here": IMDS/Arc 400 "Identity not found", App Service's
/// "No managed identity found ...", Service Fabric's `ManagedIdentityNotFound`.
pub(crate) fn is_identity_not_found(status: u16, answer: &ErrorAnswer) -> bool {
    let message = answer.message.to_ascii_lowercase();
    answer.code.as_deref() == Some("ManagedIdentityNotFound")
        || ((status == 400 || status == 404)
            && message.contains("identity")
            && (message.contains("not found") || message.contains("no managed identity")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: ManagedIdentitySource = ManagedIdentitySource::Imds;

    #[test]
    fn lifetimes_as_numbers_strings_or_expiry_times() {
        let a = parse_token(
            S,
            br#"{"access_token":"t","expires_in":"3599","token_type":"Bearer"}"#,
            1000,
            Lifetime::ExpiresIn,
        )
        .unwrap();
        assert_eq!(a.expires_in, 3599);
        let a = parse_token(
            S,
            br#"{"access_token":"t","expires_on":"4600"}"#,
            1000,
            Lifetime::ExpiresOn,
        )
        .unwrap();
        assert_eq!(a.expires_in, 3600);
        let a = parse_token(
            S,
            br#"{"access_token":"t","expires_on":4600,"expires_in":10}"#,
            1000,
            Lifetime::ExpiresOn,
        )
        .unwrap();
        assert_eq!(a.expires_in, 3600);
        for bad in [
            &br#"{"access_token":"t","expires_on":"900"}"#[..],
            br#"{"access_token":"t","expires_in":"-1"}"#,
            br#"{"access_token":"t","expires_in":"soon"}"#,
            br#"{"access_token":"","expires_in":1}"#,
            br#"{"access_token":"t","expires_in":1,"token_type":"pop"}"#,
            br#"{"access_token":"t"}"#,
            b"<html>",
            b"[1]",
        ] {
            let e = parse_token(S, bad, 1000, Lifetime::ExpiresIn)
                .unwrap_err()
                .to_string();
            assert!(!e.contains("\"t\""), "{e}");
        }
    }

    #[test]
    fn error_shapes() {
        let e = parse_error(
            br#"{"error":"invalid_request","error_description":"Identity not found"}"#,
            None,
        );
        assert_eq!(e.code.as_deref(), Some("invalid_request"));
        assert!(is_identity_not_found(400, &e));
        let e = parse_error(br#"{"statusCode":400,"message":"No managed identity found for specified ClientId/ResourceId/PrincipalId."}"#, None);
        assert_eq!(e.code.as_deref(), Some("400"));
        assert!(is_identity_not_found(400, &e));
        let e = parse_error(
            br#"{"error":{"code":"ManagedIdentityNotFound","message":"x"}}"#,
            None,
        );
        assert!(is_identity_not_found(404, &e));
        let e = parse_error(
            br#"{"statusCode":401,"message":"bad header hunter2"}"#,
            Some("hunter2"),
        );
        assert!(!e.message.contains("hunter2"), "{}", e.message);
    }
}
