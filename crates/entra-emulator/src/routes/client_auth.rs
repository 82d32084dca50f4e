//! Client authentication at the token endpoint: the client's id and secret (body or HTTP Basic) and
//! signed JWT client assertions.

use axum::http::{HeaderMap, header};
use base64::Engine as _;

use crate::assertion;
use crate::directory::{AppRegistration, Tenant};
use crate::error_responses::AadError;
use crate::ids::secret_eq;
use crate::request_context::Ctx;
use crate::routes::request::Form;
use crate::state::AppState;

/// Client id and secret of a token request: from the body, else from HTTP Basic.
pub(crate) struct ClientCredentials {
    pub client_id: Option<String>,
    pub secret: Option<String>,
}

pub(crate) fn client_credentials_of(form: &Form, headers: &HeaderMap) -> ClientCredentials {
    let basic = basic_credentials(headers);
    let client_id = form.get("client_id").map(str::to_owned).or_else(|| {
        basic
            .as_ref()
            .map(|(id, _)| id.clone())
            .filter(|id| !id.is_empty())
    });
    let secret = form
        .get("client_secret")
        .map(str::to_owned)
        .or_else(|| basic.map(|(_, s)| s).filter(|s| !s.is_empty()));
    ClientCredentials { client_id, secret }
}

/// Client id and secret from `Authorization: Basic b64(urlenc(id):urlenc(secret))`.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| -> String {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((unescape(id), unescape(secret)))
}

/// How the client authenticated; becomes the token's `appidacr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientAuth {
    /// A public client (no credential).
    Public,
    Secret,
    Certificate,
}

impl ClientAuth {
    pub(crate) fn appidacr(self) -> &'static str {
        match self {
            ClientAuth::Public => "0",
            ClientAuth::Secret => "1",
            ClientAuth::Certificate => "2",
        }
    }
}

/// Checks the client's credential: a client secret (body or Basic) or a client assertion signed with the
/// key of one of the app's certificates.
pub(crate) fn authenticate_client(
    state: &AppState,
    ctx: &Ctx,
    tenant: &Tenant,
    app: &AppRegistration,
    secret: Option<&str>,
    form: &Form,
) -> Result<ClientAuth, AadError> {
    let assertion = form.get("client_assertion");
    let assertion_type = form.get("client_assertion_type");
    if secret.is_some() && assertion.is_some() {
        return Err(AadError::conflicting_client_credentials());
    }
    if let Some(secret) = secret {
        let now = ctx.now;
        return match app.secrets.iter().find(|s| secret_eq(&s.value, secret)) {
            Some(s) if s.is_valid_at(now) => Ok(ClientAuth::Secret),
            Some(s) if s.is_expired_at(now) => Err(AadError::client_secret_expired(&app.app_id)),
            _ => Err(AadError::invalid_client_secret(&app.app_id)),
        };
    }
    if assertion_type.is_some_and(|t| t != assertion::JWT_BEARER) {
        return Err(AadError::unexpected_assertion_type());
    }
    let assertion = match (assertion, assertion_type) {
        (Some(a), Some(_)) => a,
        (Some(_), None) => return Err(AadError::missing_parameter("client_assertion_type")),
        (None, _) => return Err(AadError::credential_required("client_credentials")),
    };
    // A token from another issuer: workload identity federation (no replay check: a projected token is
    // legitimately reused until the kubelet rotates it).
    if crate::workload_issuer::is_federated(assertion, &app.app_id) {
        state.workload_issuer.verify(app, assertion, ctx.now)?;
        return Ok(ClientAuth::Certificate);
    }
    let expected = assertion::Expected {
        app,
        tenant,
        base: &ctx.base,
        now: ctx.now,
    };
    let verified = assertion::verify(&expected, assertion)?;
    if state.reject_replayed_assertions
        && let Some(jti) = &verified.jti
    {
        let until = verified.exp.saturating_add(assertion::CLOCK_SKEW_SECS);
        if !state.record_assertion(&app.app_id, jti, ctx.now.unix_timestamp(), until) {
            return Err(AadError::assertion_replayed());
        }
    }
    Ok(ClientAuth::Certificate)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn basic_header_parsing() {
        let mut h = HeaderMap::new();
        let enc = base64::engine::general_purpose::STANDARD.encode("abc:s%7Ee+cret");
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {enc}")).expect("hv"),
        );
        assert_eq!(
            basic_credentials(&h),
            Some(("abc".to_owned(), "s~e cret".to_owned()))
        );
    }
}
