//! Client assertions (RFC 7523 `private_key_jwt`, "certificate credentials"): structure, header, key lookup
//! among the app's certificates by `x5t` / `x5t#S256` / `kid`, RS256/RS384/RS512/PS256 signature
//! verification and the claim checks, each failure mapped to the AADSTS error the real service answers.
//!
//! Never log an assertion: it is a bearer credential until it expires.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rsa::RsaPublicKey;
use rsa::signature::Verifier as _;
use rsa::traits::PublicKeyParts as _;
use serde_json::{Map, Value};
use sha2::{Sha256, Sha384, Sha512};
use time::OffsetDateTime;

use crate::directory::{AppCertificate, AppRegistration, Tenant};
use crate::error_responses::AadError;
use crate::formats::hex_upper;
use crate::ids::guid_eq;

/// The only `client_assertion_type` the token endpoint accepts.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Clock skew allowed on `nbf` and `exp`, seconds.
pub(crate) const CLOCK_SKEW_SECS: i64 = 300;

/// What the caller needs from a verified assertion (for the replay check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verified {
    /// The `jti` claim, if any.
    pub jti: Option<String>,
    /// The `exp` claim (seconds since the epoch, floored).
    pub exp: i64,
}

/// Everything an assertion is checked against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expected<'a> {
    /// The authenticating app (by the request's `client_id`).
    pub app: &'a AppRegistration,
    /// The tenant of the token endpoint the request arrived on.
    pub tenant: &'a Tenant,
    /// `scheme://host:port` of that endpoint as the client addressed it.
    pub base: &'a str,
    pub now: OffsetDateTime,
}

/// Supported signature algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alg {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
}

const SUPPORTED_ALGS: &str = "RS256,RS384,RS512,PS256";

impl Alg {
    fn parse(alg: &str) -> Option<Self> {
        match alg {
            "RS256" => Some(Self::Rs256),
            "RS384" => Some(Self::Rs384),
            "RS512" => Some(Self::Rs512),
            "PS256" => Some(Self::Ps256),
            _ => None,
        }
    }

    fn verify(self, key: &RsaPublicKey, message: &[u8], signature: &[u8]) -> bool {
        use rsa::{pkcs1v15, pss};
        fn pkcs1<D>(key: &RsaPublicKey, message: &[u8], signature: &[u8]) -> bool
        where
            D: sha2::Digest + rsa::pkcs8::AssociatedOid,
        {
            pkcs1v15::Signature::try_from(signature).is_ok_and(|sig| {
                pkcs1v15::VerifyingKey::<D>::new(key.clone())
                    .verify(message, &sig)
                    .is_ok()
            })
        }
        match self {
            Self::Rs256 => pkcs1::<Sha256>(key, message, signature),
            Self::Rs384 => pkcs1::<Sha384>(key, message, signature),
            Self::Rs512 => pkcs1::<Sha512>(key, message, signature),
            Self::Ps256 => {
                let Ok(sig) = pss::Signature::try_from(signature) else {
                    return false;
                };
                // RFC 7518 (and PyJWT, MSAL.NET, Java) use a salt as long as the hash; some signers use the
                // maximum. The rsa crate verifies one given salt length, so try both.
                let em_len = (key.n().bits() + 6) / 8;
                let max_salt = em_len.saturating_sub(32 + 2);
                [32, max_salt].into_iter().any(|salt| {
                    pss::VerifyingKey::<Sha256>::new_with_salt_len(key.clone(), salt)
                        .verify(message, &sig)
                        .is_ok()
                })
            }
        }
    }
}

/// Decodes one base64url JWT part into a JSON object.
fn json_object(part: &str) -> Result<Map<String, Value>, AadError> {
    URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|v| match v {
            Value::Object(map) => Some(map),
            _ => None,
        })
        .ok_or_else(AadError::malformed_jwt)
}

/// A string member, `None` if absent; another type is malformed.
fn string_member<'a>(map: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, AadError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(AadError::malformed_jwt()),
    }
}

/// A time claim: a JSON number (integer or float, as MSAL Python sends) or a numeric string (as MSAL.NET
/// sends), floored to whole seconds.
fn time_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, AadError> {
    let seconds = match claims.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match seconds {
        // The range keeps the conversion exact and far from overflow.
        Some(s) if s.is_finite() && s.abs() < 1e15 => Ok(Some(s.floor() as i64)),
        _ => Err(AadError::malformed_jwt()),
    }
}

/// A thumbprint header (`x5t`, `x5t#S256`): base64url, padded or not. Standard base64 (`+`, `/`) does
/// not decode, as on the real service.
fn thumbprint_bytes(value: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(value.trim_end_matches('=')).ok()
}

/// `x5c`: one base64 certificate or an array of them (entries may carry PEM line breaks, as MSAL Python's
/// do). Only its shape is checked; the key is chosen by thumbprint.
fn check_x5c(header: &Map<String, Value>) -> Result<(), AadError> {
    let decodes = |s: &str| {
        let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        !compact.is_empty() && STANDARD.decode(compact).is_ok()
    };
    let ok = match header.get("x5c") {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => decodes(s),
        Some(Value::Array(entries)) => entries.iter().all(|e| e.as_str().is_some_and(decodes)),
        Some(_) => false,
    };
    if ok {
        Ok(())
    } else {
        Err(AadError::malformed_jwt())
    }
}

/// Finds the certificate the header designates.
fn find_certificate<'a>(
    app: &'a AppRegistration,
    header: &Map<String, Value>,
) -> Result<(&'a AppCertificate, Option<String>), AadError> {
    let x5t_s256 = string_member(header, "x5t#S256")?;
    let x5t = string_member(header, "x5t")?;
    let kid = string_member(header, "kid")?;
    if x5t_s256.is_none() && x5t.is_none() && kid.is_none() {
        return Err(AadError::assertion_without_key_id());
    }
    let s256 = x5t_s256.and_then(thumbprint_bytes);
    let sha1 = x5t.and_then(thumbprint_bytes);
    // The thumbprint quoted in AADSTS700027 texts: the one the client used, in hex.
    let quoted = s256.as_deref().or(sha1.as_deref()).map(hex_upper);
    let by_s256 = s256
        .as_deref()
        .and_then(|t| app.certificates.iter().find(|c| c.sha256()[..] == *t));
    let by_sha1 = || {
        sha1.as_deref()
            .and_then(|t| app.certificates.iter().find(|c| c.sha1()[..] == *t))
    };
    let by_kid = || {
        kid.and_then(|kid| {
            let b64 = kid.trim_end_matches('=');
            app.certificates.iter().find(|c| {
                guid_eq(&c.key_id, kid)
                    || c.thumbprint_sha1.eq_ignore_ascii_case(kid)
                    || c.thumbprint_sha256().eq_ignore_ascii_case(kid)
                    || c.x5t() == b64
                    || c.x5t_s256() == b64
            })
        })
    };
    match by_s256.or_else(by_sha1).or_else(by_kid) {
        Some(cert) => Ok((cert, quoted)),
        None => Err(AadError::assertion_key_not_found(quoted.as_deref(), &app.app_id)),
    }
}

/// Whether `aud` is the v2.0 token endpoint of `tenant` (GUID or one of its domains) on the host and port
/// the request arrived on; a trailing slash is tolerated.
fn audience_matches(aud: &str, base: &str, tenant: &Tenant) -> bool {
    let (Ok(aud), Ok(base)) = (url::Url::parse(aud.trim()), url::Url::parse(base)) else {
        return false;
    };
    let same_origin = aud.scheme().eq_ignore_ascii_case(base.scheme())
        && aud.host_str().map(str::to_ascii_lowercase) == base.host_str().map(str::to_ascii_lowercase)
        && aud.port_or_known_default() == base.port_or_known_default();
    if !same_origin || aud.query().is_some() || aud.fragment().is_some() {
        return false;
    }
    let path = aud.path();
    let path = path.strip_suffix('/').unwrap_or(path);
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        [t, oauth2, version, token] => {
            oauth2.eq_ignore_ascii_case("oauth2")
                && version.eq_ignore_ascii_case("v2.0")
                && token.eq_ignore_ascii_case("token")
                && (guid_eq(t, &tenant.id) || tenant.has_domain(t))
        }
        _ => false,
    }
}

/// Verifies a client assertion for `expected.app`. Order of the checks: structure, `typ`, `alg`, `x5c`
/// shape, key lookup, key validity, signature, then the claims (`iss`, `sub`, `aud`, times).
pub(crate) fn verify(expected: &Expected<'_>, assertion: &str) -> Result<Verified, AadError> {
    let mut parts = assertion.trim().split('.');
    let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(AadError::malformed_jwt());
    };
    let header = json_object(h)?;
    let claims = json_object(c)?;
    let signature = URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| AadError::malformed_jwt())?;

    if let Some(typ) = string_member(&header, "typ")?
        && !typ.eq_ignore_ascii_case("JWT")
        && typ != "http://openid.net/specs/jwt/1.0"
    {
        return Err(AadError::invalid_jwt_type());
    }
    let alg_name = string_member(&header, "alg")?.ok_or_else(AadError::malformed_jwt)?;
    let alg = Alg::parse(alg_name)
        .ok_or_else(|| AadError::unsupported_signing_algorithm(alg_name, SUPPORTED_ALGS))?;
    check_x5c(&header)?;

    let app = expected.app;
    let (cert, thumbprint) = find_certificate(app, &header)?;
    if !cert.is_valid_at(expected.now) {
        return Err(AadError::assertion_key_expired(
            thumbprint.as_deref(),
            cert.start_date_time,
            cert.end_date_time,
            &app.app_id,
        ));
    }
    let signing_input = &assertion.trim()[..h.len() + 1 + c.len()];
    let verified = crate::x509::rsa_public_key(&cert.cert_der)
        .is_some_and(|key| alg.verify(&key, signing_input.as_bytes(), &signature));
    if !verified {
        return Err(AadError::assertion_bad_signature(
            thumbprint.as_deref(),
            cert.start_date_time,
            cert.end_date_time,
            &app.app_id,
        ));
    }

    let iss = string_member(&claims, "iss")?.ok_or_else(|| AadError::assertion_missing_claim("iss"))?;
    let sub = string_member(&claims, "sub")?.ok_or_else(|| AadError::assertion_missing_claim("sub"))?;
    if !guid_eq(iss, &app.app_id) || !guid_eq(sub, &app.app_id) {
        return Err(AadError::assertion_client_mismatch());
    }
    // An array audience (as some OIDC libraries send) is rejected as malformed by the real service.
    let aud = string_member(&claims, "aud")?.ok_or_else(|| AadError::assertion_missing_claim("aud"))?;
    if !audience_matches(aud, expected.base, expected.tenant) {
        return Err(AadError::assertion_audience_mismatch());
    }
    let exp = time_claim(&claims, "exp")?;
    let nbf = time_claim(&claims, "nbf")?;
    time_claim(&claims, "iat")?;
    let now = expected.now.unix_timestamp();
    let in_range = exp.is_some_and(|exp| now <= exp.saturating_add(CLOCK_SKEW_SECS))
        && nbf.is_none_or(|nbf| nbf.saturating_sub(CLOCK_SKEW_SECS) <= now);
    let Some(exp) = exp.filter(|_| in_range) else {
        return Err(AadError::assertion_time_range(expected.now, nbf, exp));
    };
    let jti = match claims.get("jti") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => return Err(AadError::malformed_jwt()),
    };
    // Which forms clients use is worth seeing; the values (and the assertion) never are logged.
    tracing::debug!(
        client_id = %app.app_id,
        alg = alg_name,
        x5t = header.contains_key("x5t"),
        x5t_s256 = header.contains_key("x5t#S256"),
        kid = header.contains_key("kid"),
        x5c = header.contains_key("x5c"),
        "client assertion verified"
    );
    Ok(Verified { jti, exp })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::Directory;

    #[test]
    fn audiences() {
        let d = Directory::seeded();
        let t = &d.tenants[0];
        let base = "https://127.0.0.1:8443";
        for ok in [
            format!("{base}/{}/oauth2/v2.0/token", t.id),
            format!("{base}/{}/oauth2/v2.0/token/", t.id.to_uppercase()),
            format!("{base}/contoso.onmicrosoft.com/oauth2/v2.0/token"),
            "HTTPS://127.0.0.1:8443/Contoso.onmicrosoft.com/oauth2/v2.0/token".to_owned(),
        ] {
            assert!(audience_matches(&ok, base, t), "{ok}");
        }
        for bad in [
            format!("https://login.microsoftonline.com/{}/oauth2/v2.0/token", t.id),
            format!("https://127.0.0.1:9443/{}/oauth2/v2.0/token", t.id),
            format!("http://127.0.0.1:8443/{}/oauth2/v2.0/token", t.id),
            format!("https://localhost:8443/{}/oauth2/v2.0/token", t.id),
            format!("{base}/{}/oauth2/token", t.id),
            format!("{base}/{}/v2.0", t.id),
            format!("{base}/common/oauth2/v2.0/token"),
            format!("{base}/fabrikam.onmicrosoft.com/oauth2/v2.0/token"),
            format!("{base}/{}/oauth2/v2.0/token?x=1", t.id),
            "not a url".to_owned(),
        ] {
            assert!(!audience_matches(&bad, base, t), "{bad}");
        }
    }

    #[test]
    fn time_claims() {
        let claims: Map<String, Value> = serde_json::from_str(
            r#"{"a":1700000000,"b":1700000000.9,"c":"1700000000","d":" 1700000000.5 ","e":"soon","f":true,"g":1e300}"#,
        )
        .expect("json");
        assert_eq!(time_claim(&claims, "a").ok(), Some(Some(1_700_000_000)));
        assert_eq!(time_claim(&claims, "b").ok(), Some(Some(1_700_000_000)));
        assert_eq!(time_claim(&claims, "c").ok(), Some(Some(1_700_000_000)));
        assert_eq!(time_claim(&claims, "d").ok(), Some(Some(1_700_000_000)));
        assert_eq!(time_claim(&claims, "missing").ok(), Some(None));
        for bad in ["e", "f", "g"] {
            assert_eq!(
                time_claim(&claims, bad).err().map(|e| e.code),
                Some(50027),
                "{bad}"
            );
        }
    }

    #[test]
    fn thumbprints_padded_or_not() {
        assert_eq!(
            thumbprint_bytes("hOBcHZi846VCHSJbFAs26Go9VTQ="),
            thumbprint_bytes("hOBcHZi846VCHSJbFAs26Go9VTQ")
        );
        assert_eq!(
            thumbprint_bytes("hOBcHZi846VCHSJbFAs26Go9VTQ")
                .map(|b| hex_upper(&b))
                .as_deref(),
            Some("84E05C1D98BCE3A5421D225B140B36E86A3D5534")
        );
        assert_eq!(thumbprint_bytes("a+b/"), None);
    }

    #[test]
    fn x5c_shapes() {
        let header = |v: Value| -> Map<String, Value> {
            let mut m = Map::new();
            m.insert("x5c".to_owned(), v);
            m
        };
        assert!(check_x5c(&header(Value::from("TUlJ\nQg=="))).is_ok());
        assert!(check_x5c(&header(serde_json::json!(["TUlJ\nQg==", "TUlJQg=="]))).is_ok());
        assert!(check_x5c(&Map::new()).is_ok());
        assert!(check_x5c(&header(serde_json::json!([1]))).is_err());
        assert!(check_x5c(&header(Value::from("%%%"))).is_err());
        assert!(check_x5c(&header(serde_json::json!({"a": 1}))).is_err());
    }
}
