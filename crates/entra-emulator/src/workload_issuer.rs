//! Workload identity federation: the emulator's own token issuer (a stand-in for a Kubernetes cluster's OIDC
//! issuer: discovery document, JWKS, service-account tokens signed with a key of its own), and the token
//! endpoint's validation of federated client assertions against an app's federated identity credentials, each
//! failure mapped to the AADSTS error the real service answers.
//!
//! The real service fetches `{iss}/.well-known/openid-configuration` and its `jwks_uri`; the emulator can reach
//! only itself, so an issuer other than its own is one whose endpoint "failed" (AADSTS50166).
//!
//! Never log an assertion: it is a bearer credential until it expires.

use std::sync::OnceLock;

use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::assertion::CLOCK_SKEW_SECS;
use crate::directory::{AppRegistration, FederatedIdentityCredential};
use crate::error_responses::AadError;
use crate::formats::{b64url, b64url_decode};
use crate::ids::{guid_eq, is_guid, new_guid};
use crate::keys::TokenSigningKey;
use crate::seed::OWN_ISSUER;

/// Path of the issuer under the emulator's HTTPS URL (with the trailing slash AKS issuers have).
pub(crate) const ISSUER_PATH: &str = "/workload-issuer/";
/// Kubernetes' JWKS path under the issuer.
pub(crate) const JWKS_PATH: &str = "openid/v1/jwks";
/// The longest lifetime (`exp` − `iat`) the service accepts of an external token: 1 day and 1 hour.
pub(crate) const MAX_EXTERNAL_TOKEN_LIFETIME_SECS: i64 = 25 * 3600;

const WIF_DOC: &str =
    "https://docs.microsoft.com/en-us/azure/active-directory/develop/workload-identity-federation";

/// The emulator's token issuer. Its RSA key is generated on first use (most runs never need it).
#[derive(Debug)]
pub(crate) struct WorkloadIssuer {
    issuer: String,
    key: OnceLock<Result<TokenSigningKey, String>>,
}

/// What a minted service-account token says.
#[derive(Debug, Clone)]
pub(crate) struct Minted<'a> {
    pub issuer: Option<&'a str>,
    pub subject: &'a str,
    pub audiences: &'a [String],
    pub issued_at: i64,
    pub lifetime_secs: i64,
}

impl WorkloadIssuer {
    /// The issuer of the emulator listening at `https_url`.
    pub(crate) fn new(https_url: &str) -> Self {
        WorkloadIssuer {
            issuer: format!("{}{ISSUER_PATH}", https_url.trim_end_matches('/')),
            key: OnceLock::new(),
        }
    }

    /// `https://127.0.0.1:PORT/workload-issuer/`.
    pub(crate) fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The signing key, generated on first use (a few tens of milliseconds).
    pub(crate) fn key(&self) -> Result<&TokenSigningKey, String> {
        self.key
            .get_or_init(TokenSigningKey::generate)
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The OIDC discovery document, as a Kubernetes API server serves it.
    pub(crate) fn openid_configuration(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}{JWKS_PATH}", self.issuer),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        })
    }

    /// The JWKS (the key without `x5c`, as Kubernetes publishes it).
    pub(crate) fn jwks(&self) -> Result<Value, String> {
        let mut jwk = self.key()?.jwk(None);
        if let Some(obj) = jwk.as_object_mut() {
            obj.remove("x5c");
            obj.remove("x5t");
            obj.insert("alg".to_owned(), Value::from("RS256"));
        }
        Ok(json!({ "keys": [jwk] }))
    }

    /// A Kubernetes-style service-account token (`alg` RS256, `kid`; `aud` an array; the `kubernetes.io`
    /// claim).
    /// The issuer a federated credential names: [`OWN_ISSUER`] stands for this emulator's issuer, whose URL holds
    /// the port (known only at start, and different for two emulators sharing one state directory).
    pub(crate) fn effective_issuer<'a>(&'a self, credential: &'a FederatedIdentityCredential) -> &'a str {
        if credential.issuer == OWN_ISSUER {
            &self.issuer
        } else {
            &credential.issuer
        }
    }

    pub(crate) fn mint(&self, token: &Minted<'_>) -> Result<String, String> {
        let key = self.key()?;
        let exp = token
            .issued_at
            .checked_add(token.lifetime_secs)
            .ok_or("the token lifetime overflows")?;
        let (namespace, account) = token
            .subject
            .strip_prefix("system:serviceaccount:")
            .and_then(|rest| rest.split_once(':'))
            .unwrap_or(("default", "default"));
        let claims = json!({
            "aud": token.audiences,
            "exp": exp,
            "iat": token.issued_at,
            "iss": token.issuer.unwrap_or(&self.issuer),
            "jti": new_guid(),
            "kubernetes.io": {
                "namespace": namespace,
                "pod": {"name": format!("{account}-emulated"), "uid": new_guid()},
                "serviceaccount": {"name": account, "uid": new_guid()},
            },
            "nbf": token.issued_at,
            "sub": token.subject,
        });
        let header = json!({"alg": "RS256", "kid": key.kid()});
        let header = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
        let claims = serde_json::to_vec(&claims).map_err(|e| e.to_string())?;
        let signing_input = format!("{}.{}", b64url(&header), b64url(&claims));
        let signature = key.sign(signing_input.as_bytes())?;
        Ok(format!("{signing_input}.{}", b64url(&signature)))
    }

    /// Validates a federated client assertion for `app`, in the service's order: a matching federated
    /// identity credential (issuer, then subject, then audience), the issuer's keys, the signature, the
    /// token's lifetime, then its time range.
    pub(crate) fn verify(
        &self,
        app: &AppRegistration,
        assertion: &str,
        now: OffsetDateTime,
    ) -> Result<(), AadError> {
        let (header, claims, signing_input, signature) =
            split(assertion).ok_or_else(AadError::malformed_jwt)?;
        let iss = string_claim(&claims, "iss")?.ok_or_else(|| AadError::assertion_missing_claim("iss"))?;
        let sub = string_claim(&claims, "sub")?.ok_or_else(|| AadError::assertion_missing_claim("sub"))?;
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(values)) => values
                .iter()
                .map(|v| v.as_str().ok_or_else(AadError::malformed_jwt))
                .collect::<Result<_, _>>()?,
            None | Some(Value::Null) => return Err(AadError::assertion_missing_claim("aud")),
            Some(_) => return Err(AadError::malformed_jwt()),
        };

        if app.federated_credentials.is_empty() {
            return Err(no_matching_record(iss, sub, &audiences.join(",")));
        }
        let by_issuer: Vec<_> = app
            .federated_credentials
            .iter()
            .filter(|f| self.effective_issuer(f) == iss)
            .collect();
        if by_issuer.is_empty() {
            return Err(no_matching_issuer(iss));
        }
        let by_subject: Vec<_> = by_issuer.into_iter().filter(|f| f.subject == sub).collect();
        if by_subject.is_empty() {
            return Err(no_matching_subject(sub));
        }
        if !by_subject
            .iter()
            .any(|f| f.audiences.iter().any(|a| audiences.contains(&a.as_str())))
        {
            return Err(no_matching_audience(&audiences.join(",")));
        }

        if iss != self.issuer {
            return Err(external_oidc_endpoint_failed());
        }
        let key = self.key().map_err(|_| external_oidc_endpoint_failed())?;
        let alg = string_claim(&header, "alg")?.ok_or_else(AadError::malformed_jwt)?;
        if alg != "RS256" {
            return Err(AadError::unsupported_signing_algorithm(alg, "RS256"));
        }
        let kid = string_claim(&header, "kid")?.unwrap_or("");
        if kid != key.kid() {
            return Err(signing_key_not_found(kid, iss));
        }
        if !key.verify(signing_input.as_bytes(), &signature) {
            return Err(bad_signature());
        }

        let exp = time_claim(&claims, "exp")?;
        let nbf = time_claim(&claims, "nbf")?;
        let iat = time_claim(&claims, "iat")?;
        if let (Some(exp), Some(start)) = (exp, iat.or(nbf))
            && exp.saturating_sub(start) > MAX_EXTERNAL_TOKEN_LIFETIME_SECS
        {
            return Err(lifetime_too_long(start, exp));
        }
        let now_secs = now.unix_timestamp();
        let in_range = exp.is_some_and(|exp| now_secs <= exp.saturating_add(CLOCK_SKEW_SECS))
            && nbf.is_none_or(|nbf| nbf.saturating_sub(CLOCK_SKEW_SECS) <= now_secs);
        if !in_range {
            return Err(AadError::assertion_time_range(now, nbf, exp));
        }
        tracing::debug!(client_id = %app.app_id, "federated client assertion verified");
        Ok(())
    }
}

/// Whether `assertion` is a federated one for `app_id`: its `iss` is an external issuer, not a client id (a
/// signed client assertion's `iss` is the client id; another GUID there is a client mismatch, AADSTS700021).
/// Anything unreadable is left to the client-assertion checks.
pub(crate) fn is_federated(assertion: &str, app_id: &str) -> bool {
    split(assertion)
        .and_then(|(_, claims, _, _)| {
            claims
                .get("iss")
                .and_then(Value::as_str)
                .map(|iss| !guid_eq(iss, app_id) && !is_guid(iss.trim()))
        })
        .unwrap_or(false)
}

type Parts = (Map<String, Value>, Map<String, Value>, String, Vec<u8>);

fn split(assertion: &str) -> Option<Parts> {
    let assertion = assertion.trim();
    let mut parts = assertion.split('.');
    let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    let object = |part: &str| -> Option<Map<String, Value>> {
        match serde_json::from_slice::<Value>(&b64url_decode(part.trim_end_matches('='))?).ok()? {
            Value::Object(map) => Some(map),
            _ => None,
        }
    };
    let signature = b64url_decode(s.trim_end_matches('='))?;
    Some((object(h)?, object(c)?, format!("{h}.{c}"), signature))
}

fn string_claim<'a>(map: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, AadError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(AadError::malformed_jwt()),
    }
}

fn time_claim(map: &Map<String, Value>, name: &str) -> Result<Option<i64>, AadError> {
    let seconds = match map.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match seconds {
        Some(s) if s.is_finite() && s.abs() < 1e15 => Ok(Some(s.floor() as i64)),
        _ => Err(AadError::malformed_jwt()),
    }
}

// ---- the service's answers (texts as observed from the real service) ----

/// AADSTS70021: the app has no federated credential that matches.
fn no_matching_record(iss: &str, sub: &str, aud: &str) -> AadError {
    AadError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        70021,
        format!(
            "No matching federated identity record found for presented assertion. Assertion Issuer: '{iss}'. \
             Assertion Subject: '{sub}'. Assertion Audience: '{aud}'. {WIF_DOC}"
        ),
    )
}

/// AADSTS700211: no federated credential has the assertion's issuer.
fn no_matching_issuer(iss: &str) -> AadError {
    AadError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        700211,
        format!(
            "No matching federated identity record found for presented assertion issuer '{iss}'. Please check \
             your federated identity credential Subject, Audience and Issuer against the presented assertion. \
             {WIF_DOC}"
        ),
    )
}

/// AADSTS700213: issuer matched, no federated credential has the assertion's subject.
fn no_matching_subject(sub: &str) -> AadError {
    AadError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        700213,
        format!(
            "No matching federated identity record found for presented assertion subject '{sub}'. Please check \
             your federated identity credential Subject, Audience and Issuer against the presented assertion. \
             {WIF_DOC}"
        ),
    )
}

/// AADSTS700212: issuer and subject matched, not the audience.
fn no_matching_audience(aud: &str) -> AadError {
    AadError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        700212,
        format!(
            "No matching federated identity record found for presented assertion audience '{aud}'. Please check \
             your federated identity credential Subject, Audience and Issuer against the presented assertion. \
             {WIF_DOC}"
        ),
    )
}

/// AADSTS50166: the issuer's discovery document or keys could not be fetched.
fn external_oidc_endpoint_failed() -> AadError {
    AadError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        50166,
        "Request to External OIDC endpoint failed.",
    )
}

/// AADSTS7000272: the `kid` is not among the issuer's keys.
fn signing_key_not_found(kid: &str, iss: &str) -> AadError {
    AadError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        7000272,
        format!(
            "The certificate with identifier {kid} used to sign the federated credential could not be found in \
             the metadata of identity provider {iss}. Please validate that your Identity Provider's metadata \
             exposes the key used to sign the incoming token."
        ),
    )
}

/// AADSTS50013: the signature does not verify with the issuer's key.
fn bad_signature() -> AadError {
    AadError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        50013,
        "Assertion failed signature validation. [Reason - The provided signature value did not match the \
         expected signature value.]",
    )
}

/// AADSTS70023: the external token lives longer than 1 day and 1 hour.
fn lifetime_too_long(issued: i64, expires: i64) -> AadError {
    AadError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        70023,
        format!(
            "External OIDC Provider token must have a lifetime of less than or equal to 1.01:00:00. Token issued \
             at {issued}. Token expires on {expires}."
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn federated_assertions_are_told_from_client_assertions() {
        let app_id = "6d3a5e1f-0000-4000-8000-000000000001";
        let token = |iss: &str| {
            format!(
                "{}.{}.c2ln",
                b64url(br#"{"alg":"RS256"}"#),
                b64url(json!({"iss": iss, "sub": "x"}).to_string().as_bytes())
            )
        };
        assert!(is_federated(&token("https://oidc.example/"), app_id));
        assert!(!is_federated(&token(app_id), app_id));
        assert!(!is_federated(&token(&app_id.to_uppercase()), app_id));
        assert!(
            !is_federated(&token("87120f13-f476-5edd-bcf8-e2af189432b6"), app_id),
            "another client id"
        );
        assert!(!is_federated("not a jwt", app_id));
    }
}
