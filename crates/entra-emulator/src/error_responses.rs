//! Error responses in the two dialects the emulator speaks: the identity platform's OAuth errors
//! (`AADSTSnnnn`, seven members, `\r\n` trailer) and Microsoft Graph's OData error envelope.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::formats::{Ordered, aad_timestamp, dotnet_roundtrip, graph_inner_date, us_datetime};
use crate::request_context::Ctx;

/// An identity-platform (STS) error: HTTP status, OAuth `error`, AADSTS code and message text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AadError {
    pub status: StatusCode,
    pub error: &'static str,
    pub code: u32,
    pub message: String,
    /// MSAL's `suberror` (`basic_action`, `consent_required`, `user_password_expired`, …).
    pub suberror: Option<&'static str>,
}

#[derive(Serialize)]
struct AadErrorBody<'a> {
    error: &'a str,
    error_description: String,
    error_codes: [u32; 1],
    timestamp: String,
    trace_id: &'a str,
    correlation_id: &'a str,
    error_uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    suberror: Option<&'a str>,
}

impl AadError {
    pub fn new(status: StatusCode, error: &'static str, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            error,
            code,
            message: message.into(),
            suberror: None,
        }
    }

    fn with_suberror(mut self, suberror: &'static str) -> Self {
        self.suberror = Some(suberror);
        self
    }

    fn bad_request(error: &'static str, code: u32, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, code, message)
    }

    // ---- the catalogue (texts as observed from the real service) ----

    /// AADSTS90002. `error` is `invalid_tenant` on discovery endpoints and `invalid_request` on the token
    /// endpoint.
    pub fn tenant_not_found(tenant: &str, error: &'static str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            error,
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing \
                 into the correct cloud. Check with your subscription administrator, this may happen if there \
                 are no active subscriptions for the tenant."
            ),
        )
    }

    /// AADSTS900023: the tenant segment is neither a GUID nor a DNS name.
    pub fn invalid_tenant_syntax(tenant: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900023,
            format!(
                "Specified tenant identifier '{tenant}' is neither a valid DNS name, nor a valid external domain."
            ),
        )
    }

    /// AADSTS900144: a required body parameter is missing.
    pub fn missing_parameter(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    }

    /// AADSTS70003.
    pub fn unsupported_grant_type(grant_type: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant_type}'."),
        )
    }

    /// AADSTS50059: client credentials on `common`/`organizations`.
    pub fn no_tenant_information() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            50059,
            "No tenant-identifying information found in either the request or implied by any provided credentials.",
        )
    }

    /// AADSTS700016: unknown client id in this tenant.
    pub fn app_not_found(client_id: &str, directory: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{directory}'. This can \
                 happen if the application has not been installed by the administrator of the tenant or \
                 consented to by any user in the tenant. You may have sent your authentication request to the \
                 wrong tenant."
            ),
        )
    }

    /// AADSTS7000215: wrong client secret.
    pub fn invalid_client_secret(app_id: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client \
                 secret value, not the client secret ID, for a secret added to app '{app_id}'."
            ),
        )
    }

    /// AADSTS7000222: the client secret matched but has expired.
    pub fn client_secret_expired(app_id: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000222,
            format!(
                "The provided client secret keys for app '{app_id}' are expired. Visit the Azure portal to \
                 create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate \
                 credentials for added security: https://aka.ms/certCreds."
            ),
        )
    }

    /// AADSTS7000216: no client credential at all.
    pub fn credential_required(grant_type: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000216,
            format!(
                "'client_assertion', 'client_secret' or 'request' is required for the '{grant_type}' grant type."
            ),
        )
    }

    // ---- client assertions (certificate credentials) ----

    /// AADSTS9002313: a request carrying both a client secret and a client assertion (real code for malformed
    /// requests; its use for this case is unconfirmed).
    pub fn conflicting_client_credentials() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            9002313,
            "Invalid request. Request is malformed or invalid.",
        )
    }

    /// AADSTS90011: `client_assertion_type` is not the JWT bearer type (text observed in 2016).
    pub fn unexpected_assertion_type() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90011,
            "Unexpected client assertion type.",
        )
    }

    /// AADSTS50027: the assertion is not a JWS (three base64url parts of JSON objects), or a claim has the
    /// wrong type (e.g. `aud` as an array).
    pub fn malformed_jwt() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            50027,
            "JWT token is invalid or malformed.",
        )
    }

    /// AADSTS5002727: a `typ` header other than `JWT`.
    pub fn invalid_jwt_type() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            5002727,
            "Invalid JWT header type specified, must be 'JWT' or 'http://openid.net/specs/jwt/1.0'.",
        )
    }

    /// AADSTS5002738: signature algorithm not supported (ES256, HS256, none, …).
    pub fn unsupported_signing_algorithm(alg: &str, supported: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            5002738,
            format!(
                "Invalid JWT token. '{alg}' is not a supported signature algorithm. Supported signing algorithms \
                 are: '{supported}'"
            ),
        )
    }

    /// AADSTS5002723: the header names no key (`x5t`, `x5t#S256` or `kid`).
    pub fn assertion_without_key_id() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            5002723,
            "Invalid JWT token. No certificate SHA-1 thumbprint, certificate SHA-256 thumbprint, nor keyId \
             specified in token header.",
        )
    }

    /// AADSTS700027, key not found. `thumbprint` (hex of the header's `x5t#S256` or `x5t`) is left out of
    /// the text when the header's value could not be decoded, as the real service does.
    pub fn assertion_key_not_found(thumbprint: Option<&str>, app_id: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700027,
            format!(
                "The certificate with identifier used to sign the client assertion is not registered on \
                 application. [Reason - The key was not found., {}{}].",
                thumbprint_part(thumbprint),
                configured_keys_hint(app_id)
            ),
        )
    }

    /// AADSTS700027, the matching certificate is expired (or not yet valid).
    pub fn assertion_key_expired(
        thumbprint: Option<&str>,
        start: time::OffsetDateTime,
        end: time::OffsetDateTime,
        app_id: &str,
    ) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700027,
            format!(
                "The certificate with identifier used to sign the client assertion is expired on application. \
                 [Reason - The key used is expired., {}{}{}].",
                thumbprint_part(thumbprint),
                found_key_part(start, end),
                configured_keys_hint(app_id)
            ),
        )
    }

    /// AADSTS700027, the key was found but the signature does not verify with it.
    pub fn assertion_bad_signature(
        thumbprint: Option<&str>,
        start: time::OffsetDateTime,
        end: time::OffsetDateTime,
        app_id: &str,
    ) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700027,
            format!(
                "Client assertion contains an invalid signature. [Reason - Key was found, but use of the key to \
                 verify the signature failed., {}{}{}].",
                thumbprint_part(thumbprint),
                found_key_part(start, end),
                configured_keys_hint(app_id)
            ),
        )
    }

    /// AADSTS90014: a required claim (`iss`, `sub`, `aud`) is missing.
    pub fn assertion_missing_claim(claim: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90014,
            format!(
                "The required field '{claim}' is missing from the credential. Ensure that you have all the \
                 necessary parameters for the login request."
            ),
        )
    }

    /// AADSTS700021: `iss` or `sub` is not the `client_id`.
    pub fn assertion_client_mismatch() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700021,
            format!(
                "Client assertion application identifier doesn't match 'client_id' parameter. Review the \
                 documentation at {CERT_CREDENTIALS_DOC} ."
            ),
        )
    }

    /// AADSTS700023: `aud` is not this tenant's token endpoint.
    pub fn assertion_audience_mismatch() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700023,
            format!(
                "Client assertion audience claim does not match Realm issuer. Review the documentation at \
                 {CERT_CREDENTIALS_DOC} ."
            ),
        )
    }

    /// AADSTS700024: outside `nbf`…`exp` (with clock skew), or no `exp`. Instants absent from the assertion
    /// show as 1970-01-01, as on the real service.
    pub fn assertion_time_range(now: time::OffsetDateTime, nbf: Option<i64>, exp: Option<i64>) -> Self {
        let instant = |t: Option<i64>| {
            dotnet_roundtrip(
                t.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
                    .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
            )
        };
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, \
                 expiry time of assertion {}. Review the documentation at {CERT_CREDENTIALS_DOC_NEW} .",
                dotnet_roundtrip(now),
                instant(nbf),
                instant(exp)
            ),
        )
    }

    /// A client assertion whose `jti` was already used (the emulator's replay check; the code is AADSTS50013
    /// "InvalidAssertion", the real service is not known to reject replays).
    pub fn assertion_replayed() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            50013,
            "Assertion is invalid because of various reasons. The client assertion's 'jti' has already been used; \
             sign a new assertion for every request.",
        )
    }

    /// AADSTS1002012: client credentials need `<resource>/.default`.
    pub fn scope_requires_default(scope: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope \
                 value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        )
    }

    /// AADSTS70011: malformed scope value.
    pub fn invalid_scope(scope: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            format!(
                "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            ),
        )
    }

    /// AADSTS700022: scopes for more than one resource.
    pub fn multiple_resources(scope: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            700022,
            format!(
                "The provided value for the input parameter scope is not valid because it contains more than one \
                 resource. Scope {scope} is not valid."
            ),
        )
    }

    /// AADSTS500011: unknown resource.
    pub fn resource_not_found(resource: &str, tenant_name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500011,
            format!(
                "The resource principal named {resource} was not found in the tenant named {tenant_name}. This \
                 can happen if the application has not been installed by the administrator of the tenant or \
                 consented to by any user in the tenant. You might have sent your authentication request to the \
                 wrong tenant."
            ),
        )
    }

    // ---- user flows: tenant rules, public clients (device code, ROPC, refresh) ----

    /// AADSTS50194: a single-tenant app used on `/common`.
    pub fn single_tenant_app_on_common(app_id: &str, app_name: &str) -> Self {
        Self::bad_request(
            "invalid_request",
            50194,
            format!(
                "Application '{app_id}'({app_name}) is not configured as a multi-tenant application. Usage of the \
                 /common endpoint is not supported for such applications created after '10/15/2018'. Use a \
                 tenant-specific endpoint or configure the application to be multi-tenant."
            ),
        )
    }

    /// AADSTS9002331: an app for personal Microsoft accounts only, used outside `/consumers`.
    pub fn personal_accounts_only(app_id: &str, app_name: &str) -> Self {
        Self::bad_request(
            "invalid_request",
            9002331,
            format!(
                "Application '{app_id}'({app_name}) is configured for use by Microsoft Account users only. Please \
                 use the /consumers endpoint to serve this request."
            ),
        )
    }

    /// AADSTS9002332: an app for work and school accounts only, used on `/consumers`.
    pub fn organizations_only(app_id: &str, app_name: &str) -> Self {
        Self::bad_request(
            "invalid_request",
            9002332,
            format!(
                "Application '{app_id}'({app_name}) is configured for use by Azure Active Directory users only. \
                 Please do not use the /consumers endpoint to serve this request."
            ),
        )
    }

    /// AADSTS9001023: the password grant on `/common` or `/consumers`.
    pub fn ropc_tenant_not_supported() -> Self {
        Self::bad_request(
            "invalid_request",
            9001023,
            "The grant type is not supported over the /common or /consumers endpoints. Please use the \
             /organizations or tenant-specific endpoint.",
        )
    }

    /// AADSTS7000218: no client credential, and the app does not allow public client flows.
    pub fn public_client_flows_disabled() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )
    }

    /// AADSTS700025: a public client sent a client secret or assertion.
    pub fn public_client_sent_credential() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700025,
            "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
        )
    }

    /// AADSTS70016: device flow, the user has not finished.
    pub fn authorization_pending() -> Self {
        Self::bad_request(
            "authorization_pending",
            70016,
            "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
        )
    }

    /// `slow_down` (RFC 8628), only when configured: Entra is not known to send it; the code is the pending one.
    pub fn slow_down() -> Self {
        Self::bad_request(
            "slow_down",
            70016,
            "OAuth 2.0 device flow error. Authorization is pending. Polling too frequently: add 5 seconds to the \
             interval and continue polling.",
        )
    }

    /// The user declined on the sign-in page (AADSTS65004, code unconfirmed for the device flow).
    pub fn authorization_declined() -> Self {
        Self::bad_request(
            "authorization_declined",
            65004,
            "User declined to consent to access the app.",
        )
    }

    /// An unknown device code, one issued on another tenant segment or to another client, or one already
    /// redeemed (AADSTS70000, code unconfirmed for the device flow).
    pub fn bad_verification_code() -> Self {
        Self::bad_request(
            "bad_verification_code",
            70000,
            "The provided value for the input parameter 'device_code' is not valid.",
        )
    }

    /// AADSTS70019: the device code expired (`expires_in` passed).
    pub fn device_code_expired() -> Self {
        Self::bad_request("expired_token", 70019, "Verification code expired.")
    }

    /// AADSTS50126: wrong password (also the answer for federated users, whose passwords only their federation
    /// server can check).
    pub fn invalid_credentials() -> Self {
        Self::bad_request(
            "invalid_grant",
            50126,
            "Error validating credentials due to invalid username or password.",
        )
    }

    /// AADSTS50034: no such user; the name is hidden as the real service does.
    pub fn user_not_found(directory: &str) -> Self {
        Self::bad_request(
            "invalid_grant",
            50034,
            format!(
                "The user account {{EmailHidden}} does not exist in the {directory} directory. To sign into this \
                 application, the account must be added to the directory."
            ),
        )
    }

    /// AADSTS50076: MFA required (`invalid_grant` as in the 2023-24 captures, suberror `basic_action`).
    pub fn mfa_required(resource_app_id: &str) -> Self {
        Self::bad_request(
            "invalid_grant",
            50076,
            format!(
                "Due to a configuration change made by your administrator, or because you moved to a new location, \
                 you must use multi-factor authentication to access '{resource_app_id}'."
            ),
        )
        .with_suberror("basic_action")
    }

    /// AADSTS50079: the user must register for MFA first.
    pub fn mfa_registration_required(resource_app_id: &str) -> Self {
        Self::bad_request(
            "invalid_grant",
            50079,
            format!(
                "Due to a configuration change made by your administrator, or because you moved to a new location, \
                 you must enroll in multi-factor authentication to access '{resource_app_id}'."
            ),
        )
        .with_suberror("basic_action")
    }

    /// AADSTS65001: neither the user nor an administrator consented (suberror `consent_required`).
    pub fn consent_required(app_id: &str, app_name: &str) -> Self {
        Self::bad_request(
            "invalid_grant",
            65001,
            format!(
                "The user or administrator has not consented to use the application with ID '{app_id}' named \
                 '{app_name}'. Send an interactive authorization request for this user and resource."
            ),
        )
        .with_suberror("consent_required")
    }

    /// AADSTS50053: the account is locked.
    pub fn account_locked() -> Self {
        Self::bad_request(
            "invalid_grant",
            50053,
            "You've tried to sign in too many times with an incorrect user ID or password.",
        )
    }

    /// AADSTS50055: the password has expired (suberror `user_password_expired`).
    pub fn password_expired() -> Self {
        Self::bad_request("invalid_grant", 50055, "The password is expired.")
            .with_suberror("user_password_expired")
    }

    /// AADSTS50057: the account is disabled.
    pub fn account_disabled() -> Self {
        Self::bad_request("invalid_grant", 50057, "The user account is disabled.")
    }

    /// AADSTS53003: blocked by Conditional Access.
    pub fn blocked_by_conditional_access() -> Self {
        Self::bad_request(
            "invalid_grant",
            53003,
            "Access has been blocked by Conditional Access policies. The access policy does not allow token \
             issuance.",
        )
    }

    /// AADSTS700082: the refresh token expired through inactivity.
    pub fn refresh_token_expired(issued: time::OffsetDateTime, inactive_secs: u64) -> Self {
        Self::bad_request(
            "invalid_grant",
            700082,
            format!(
                "The refresh token has expired due to inactivity. The token was issued on {} and was inactive for \
                 {}.",
                dotnet_roundtrip(issued),
                inactivity(inactive_secs)
            ),
        )
    }

    /// AADSTS50173: the refresh token was revoked (e.g. after a password change or an admin revocation).
    pub fn refresh_token_revoked(issued: time::OffsetDateTime) -> Self {
        Self::bad_request(
            "invalid_grant",
            50173,
            format!(
                "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user \
                 might have changed or reset their password. The grant was issued on '{}' and the \
                 TokensValidFrom date (before which tokens are not valid) for this user is '{}'.",
                dotnet_roundtrip(issued),
                dotnet_roundtrip(time::OffsetDateTime::now_utc())
            ),
        )
    }

    /// AADSTS9002313 (`invalid_grant`): a refresh token the emulator did not issue, or for another client.
    pub fn malformed_grant() -> Self {
        Self::bad_request(
            "invalid_grant",
            9002313,
            "Invalid request. Request is malformed or invalid.",
        )
    }

    /// AADSTS900561: wrong HTTP method on the token endpoint.
    pub fn post_only(method: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900561,
            format!("The endpoint only accepts POST, OPTIONS requests. Received a {method} request."),
        )
    }

    /// AADSTS50049: instance discovery for an unknown host.
    pub fn unknown_instance() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_instance",
            50049,
            "Unknown or invalid instance.",
        )
    }

    /// Injected fault: throttling (AADSTS50196) or a transient outage (AADSTS90033).
    pub fn injected(status: StatusCode) -> Self {
        if status == StatusCode::TOO_MANY_REQUESTS {
            Self::new(
                status,
                "temporarily_unavailable",
                50196,
                "The server terminated an operation because it encountered a client request loop. Please contact your app vendor.",
            )
        } else {
            Self::new(
                status,
                "temporarily_unavailable",
                90033,
                "A transient error has occurred. Please try again.",
            )
        }
    }

    /// Injected 401: the STS's answer to a client it cannot authenticate (AADSTS7000215).
    pub fn injected_unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret \
             value, not the client secret ID.",
        )
    }

    /// Renders the error as the STS does, with the usual headers.
    pub fn into_response_with(self, ctx: &Ctx) -> Response {
        let timestamp = aad_timestamp(ctx.now);
        let body = AadErrorBody {
            error: self.error,
            error_description: format!(
                "AADSTS{}: {}\r\nTrace ID: {}\r\nCorrelation ID: {}\r\nTimestamp: {}",
                self.code, self.message, ctx.trace_id, ctx.correlation_id, timestamp
            ),
            error_codes: [self.code],
            timestamp,
            trace_id: &ctx.trace_id,
            correlation_id: &ctx.correlation_id,
            error_uri: format!("https://login.microsoftonline.com/error?code={}", self.code),
            suberror: self.suberror,
        };
        let json = serde_json::to_string(&body).unwrap_or_default();
        let mut resp = (self.status, json).into_response();
        sts_headers(&mut resp, ctx, "no-store, no-cache");
        resp
    }
}

const CERT_CREDENTIALS_DOC: &str =
    "https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials";
const CERT_CREDENTIALS_DOC_NEW: &str =
    "https://learn.microsoft.com/entra/identity-platform/certificate-credentials";

/// `1.02:03:04` style (.NET `TimeSpan`), how AADSTS700082 states the inactivity.
fn inactivity(secs: u64) -> String {
    let (days, rest) = (secs / 86_400, secs % 86_400);
    format!(
        "{days}.{:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

fn thumbprint_part(thumbprint: Option<&str>) -> String {
    thumbprint
        .map(|t| format!("Thumbprint of key used by client: '{t}', "))
        .unwrap_or_default()
}

fn found_key_part(start: time::OffsetDateTime, end: time::OffsetDateTime) -> String {
    format!(
        "Found key 'Start={}, End={}', ",
        us_datetime(start),
        us_datetime(end)
    )
}

fn configured_keys_hint(app_id: &str) -> String {
    format!(
        "Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id \
         '{app_id}'. Review the documentation at https://docs.microsoft.com/en-us/graph/deployments to determine \
         the corresponding service endpoint and \
         https://docs.microsoft.com/en-us/graph/api/application-get?view=graph-rest-1.0&tabs=http to build a query \
         request URL, such as 'https://graph.microsoft.com/beta/applications/{app_id}'"
    )
}

/// Headers the STS puts on its JSON answers.
pub(crate) fn sts_headers(resp: &mut Response, ctx: &Ctx, cache_control: &'static str) {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control));
    if cache_control.starts_with("no-store") {
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        h.insert(header::EXPIRES, HeaderValue::from_static("-1"));
    }
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000; includeSubDomains"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        "x-ms-ests-server",
        HeaderValue::from_static("2.1.0 - entra-emulator"),
    );
    if let Ok(v) = HeaderValue::from_str(&ctx.trace_id) {
        h.insert("x-ms-request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&ctx.correlation_id) {
        h.insert("client-request-id", v);
    }
}

/// A Microsoft Graph error: status, OData error `code` and `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GraphError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra header, e.g. `WWW-Authenticate` or `Retry-After`.
    pub extra_header: Option<(&'static str, String)>,
}

impl GraphError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            extra_header: None,
        }
    }

    pub fn unauthorized(message: &str, www_authenticate: String) -> Self {
        Self {
            extra_header: Some(("www-authenticate", www_authenticate)),
            ..Self::new(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", message)
        }
    }

    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )
    }

    pub fn not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!(
                "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
            ),
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    /// Injected fault with the body Graph sends for that status.
    pub fn injected(status: StatusCode) -> Self {
        match status.as_u16() {
            401 => Self::new(
                status,
                "InvalidAuthenticationToken",
                "Access token validation failure.",
            ),
            429 => Self::new(status, "TooManyRequests", "Please retry again later."),
            503 => Self::new(
                status,
                "serviceNotAvailable",
                "The service is temporarily unavailable. Please retry later.",
            ),
            504 => Self::new(
                status,
                "gatewayTimeout",
                "The gateway did not receive a timely response.",
            ),
            500..=599 => Self::new(status, "generalException", "An unexpected error occurred."),
            _ => Self::new(status, "BadRequest", "Injected fault."),
        }
    }

    pub fn into_response_with(self, ctx: &Ctx) -> Response {
        let mut inner = Ordered::new();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            inner.push("code", "429");
        }
        inner.push("date", graph_inner_date(ctx.now));
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            inner.push("message", "Please retry after");
        }
        inner.push("request-id", ctx.trace_id.clone());
        inner.push("client-request-id", ctx.graph_client_request_id().to_owned());
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            inner.push("status", "429");
        }
        let mut error = Ordered::new()
            .with("code", self.code)
            .with("message", self.message);
        error.push_object("innerError", inner);
        let mut body = Ordered::new();
        body.push_object("error", error);
        let mut resp = (self.status, body.to_json()).into_response();
        graph_headers(&mut resp, ctx, false);
        if let Some((name, value)) = self.extra_header
            && let Ok(v) = HeaderValue::from_str(&value)
        {
            resp.headers_mut().insert(name, v);
        }
        resp
    }
}

/// Headers Graph puts on its answers (`odata` selects the OData content type used for success bodies).
pub(crate) fn graph_headers(resp: &mut Response, ctx: &Ctx, odata: bool) {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if odata {
            "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
        } else {
            "application/json"
        }),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    h.insert("odata-version", HeaderValue::from_static("4.0"));
    h.insert("x-ms-resource-unit", HeaderValue::from_static("1"));
    h.insert(
        "x-ms-ags-diagnostic",
        HeaderValue::from_static(
            r#"{"ServerInfo":{"DataCenter":"Local","Slice":"E","Ring":"5","ScaleUnit":"000","RoleInstance":"entra-emulator"}}"#,
        ),
    );
    if let Ok(v) = HeaderValue::from_str(&ctx.trace_id) {
        h.insert("request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(ctx.graph_client_request_id()) {
        h.insert("client-request-id", v);
    }
}
