//! The authorization code grant (`grant_type=authorization_code`) at the token endpoint: redeems a code
//! issued by the authorization endpoint (`routes::authorize`) once, within its lifetime, for the client it
//! was issued to, with the same `redirect_uri` and the PKCE verifier of its challenge. Returns the user
//! tokens of the other user flows (access, refresh, ID token with the request's `nonce`, `client_info` when
//! asked) and records nothing new: consent was given on the sign-in page.
//!
//! Errors, as the real service answers them (`invalid_grant` unless noted): AADSTS54005 for a code already
//! redeemed, 70008 for an expired one, 9002313 for one the emulator never issued, 700005 for one issued on
//! another tenant, 500112 for another `redirect_uri` than the authorization request's, 50148 for a missing
//! and 501481 for a wrong `code_verifier`; the client rules of a "Mobile and desktop" redirect URI (no
//! credential, else 700025) or a "Web" one (a credential, else 7000218).

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use sha2::{Digest as _, Sha256};

use crate::auth_codes::{Challenge, CodeRefusal};
use crate::directory::Directory;
use crate::error_responses::AadError;
use crate::formats::b64url;
use crate::ids::{guid_eq, secret_eq};
use crate::request_context::Ctx;
use crate::routes::client_auth::{ClientAuth, authenticate_client, client_credentials_of};
use crate::routes::request::Form;
use crate::routes::user_flow::{self, AccountBlock, Scopes, SignedIn};
use crate::state::AppState;
use crate::tenancy::ResolvedTenant;

fn invalid_grant(code: u32, message: impl Into<String>) -> AadError {
    AadError::new(StatusCode::BAD_REQUEST, "invalid_grant", code, message)
}

fn already_redeemed() -> AadError {
    invalid_grant(
        54005,
        "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an \
         existing refresh token.",
    )
}

fn expired() -> AadError {
    invalid_grant(
        70008,
        "The provided authorization code or refresh token has expired due to inactivity. Send a new \
         interactive authorization request for this user and resource.",
    )
}

fn other_tenant() -> AadError {
    invalid_grant(
        700005,
        "Provided Authorization Code is intended to use against other tenant, thus rejected.",
    )
}

fn reply_address_mismatch(sent: &str, original: &str) -> AadError {
    invalid_grant(
        500112,
        format!(
            "The reply address '{sent}' does not match the reply address '{original}' provided when requesting \
             Authorization code."
        ),
    )
}

fn verifier_missing() -> AadError {
    invalid_grant(
        50148,
        "The code_verifier does not match the code_challenge supplied in the authorization request for PKCE.",
    )
}

fn verifier_mismatch() -> AadError {
    invalid_grant(
        501481,
        "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
    )
}

/// Whether `verifier` answers `challenge` (RFC 7636 §4.6), compared in constant time.
fn verifier_matches(challenge: &Challenge, verifier: &str) -> bool {
    let derived = if challenge.s256 {
        b64url(&Sha256::digest(verifier.as_bytes()))
    } else {
        verifier.to_owned()
    };
    secret_eq(&derived, &challenge.value)
}

/// The token request of `grant_type=authorization_code`.
pub(crate) fn redeem(
    state: &AppState,
    ctx: &Ctx,
    directory: &Directory,
    resolved: &ResolvedTenant,
    headers: &HeaderMap,
    form: &Form,
) -> Result<Response, AadError> {
    let client_id = user_flow::client_id(form, headers)?;
    let (home, app) = user_flow::find_app(directory, resolved, &client_id)?;
    let code = form
        .get("code")
        .ok_or_else(|| AadError::missing_parameter("code"))?;
    let issued = state.auth_codes().peek(code).map_err(|refusal| match refusal {
        CodeRefusal::Unknown => AadError::malformed_grant(),
        CodeRefusal::Redeemed => already_redeemed(),
        CodeRefusal::Expired => expired(),
    })?;
    let request = &issued.request;
    if !guid_eq(&request.client_id, &app.app_id) {
        // (unconfirmed: the real code for a code redeemed by another client)
        return Err(invalid_grant(
            70000,
            "The provided value for the 'code' parameter is not valid. The code was issued to another client.",
        ));
    }
    if let ResolvedTenant::Tenant { id } = resolved
        && *id != issued.tenant_id
    {
        return Err(other_tenant());
    }
    let credentials = client_credentials_of(form, headers);
    let presents = credentials.secret.is_some()
        || form.get("client_assertion").is_some()
        || form.get("client_assertion_type").is_some();
    let auth = match (request.public_client, presents) {
        (true, true) => return Err(AadError::public_client_sent_credential()),
        (true, false) => ClientAuth::Public,
        (false, false) => return Err(AadError::public_client_flows_disabled()),
        (false, true) => authenticate_client(state, ctx, home, app, credentials.secret.as_deref(), form)?,
    };
    let redirect_uri = form
        .get("redirect_uri")
        .ok_or_else(|| AadError::missing_parameter("redirect_uri"))?;
    if redirect_uri != request.redirect_uri {
        return Err(reply_address_mismatch(redirect_uri, &request.redirect_uri));
    }
    if let Some(challenge) = &request.challenge {
        let verifier = form.get("code_verifier").ok_or_else(verifier_missing)?;
        if !verifier_matches(challenge, verifier) {
            return Err(verifier_mismatch());
        }
    }
    // Single use: the first redemption that got this far wins, a concurrent second one is a reuse.
    state.auth_codes().redeem(code).map_err(|_| already_redeemed())?;
    let (tenant, user) = directory
        .tenant(&issued.tenant_id)
        .and_then(|t| t.user(&issued.user_id).map(|u| (t, u)))
        .ok_or_else(AadError::malformed_grant)?;
    if let Some(block) = AccountBlock::of(user) {
        return Err(block.aad_error());
    }
    let consents = state.grants().user_consents(&user.id, &app.app_id);
    let requested = Scopes::parse(&request.scope, &tenant.display_name)?;
    let granted = user_flow::grant(app, user, &consents, &requested)?;
    let signed_in = SignedIn {
        tenant,
        app,
        user,
        mfa: issued.mfa,
        auth,
    };
    user_flow::issue_user_tokens_with_nonce(state, ctx, &signed_in, &granted, form, request.nonce.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_and_plain() {
        // RFC 7636 appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let s256 = Challenge {
            value: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
            s256: true,
        };
        assert!(verifier_matches(&s256, verifier));
        assert!(!verifier_matches(
            &s256,
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK"
        ));
        let plain = Challenge {
            value: verifier.into(),
            s256: false,
        };
        assert!(verifier_matches(&plain, verifier));
        assert!(!verifier_matches(&plain, "x"));
    }
}
