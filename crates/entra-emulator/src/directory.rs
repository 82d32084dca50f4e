//! The emulated directory: tenants, app registrations (with their client secrets and granted application
//! permissions) and users. Plain data that tests can build or tweak; the seeded default is in `seed`.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};
use time::{Duration, OffsetDateTime};

use crate::error::EmulatorError;
use crate::formats::{b64url, hex_upper};
use crate::ids::{guid_eq, new_guid, random_string};

/// Tenant id (GUID) of the seeded default tenant.
pub const DEFAULT_TENANT_ID: &str = "3f2c8a91-5b7e-4d06-9c1a-8e4b2d7f6a53";
/// Verified domain of the seeded default tenant.
pub const DEFAULT_TENANT_DOMAIN: &str = "contoso.onmicrosoft.com";
/// Display name of the seeded default tenant.
pub const DEFAULT_TENANT_NAME: &str = "Contoso";
/// Application id of Microsoft Graph (usable as a resource: `00000003-…/.default`).
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
/// Application ID URI of Microsoft Graph.
pub const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";
/// The Microsoft-account (consumers) tenant.
pub const MSA_TENANT_ID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// Everything the emulator knows about: one or more tenants. The first tenant is the default one
/// (the one `Emulator::authority()` points at).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directory {
    /// The tenants; the first is the default one.
    pub tenants: Vec<Tenant>,
}

/// An Entra tenant (directory).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// Tenant (directory) id, a GUID.
    pub id: String,
    /// Verified domains, e.g. `contoso.onmicrosoft.com`. The first one is the initial domain.
    pub domains: Vec<String>,
    /// Organization name (`Contoso`), used in AADSTS messages.
    pub display_name: String,
    /// App registrations (each with its service principal).
    pub apps: Vec<AppRegistration>,
    /// User accounts.
    pub users: Vec<User>,
    /// Verified domains whose users sign in at a federation server (AD FS): user realm discovery answers
    /// `Federated` for them. The emulator has no WS-Trust server, so their password grant fails (AADSTS50126).
    /// Users of these domains belong to this tenant (`Tenant::has_domain` is true for them).
    #[serde(default)]
    pub federated_domains: Vec<String>,
}

/// An app registration together with its service principal in the same tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRegistration {
    /// Short key used by tests and the self-description (`daemon`, `expired-secret`, …).
    pub name: String,
    /// Application (client) id.
    pub app_id: String,
    /// Object id of the application object (Graph `/applications/{id}`).
    pub object_id: String,
    /// Object id of the service principal; `oid`/`sub` of app-only tokens.
    pub service_principal_id: String,
    /// Display name (`app_displayname` of tokens).
    pub display_name: String,
    /// `AzureADMyOrg`, `AzureADMultipleOrgs`, `AzureADandPersonalMicrosoftAccount` or `PersonalMicrosoftAccount`.
    pub sign_in_audience: String,
    /// Client secrets (password credentials).
    pub secrets: Vec<ClientSecret>,
    /// Certificates (key credentials): only their public part, as uploaded under "Certificates & secrets".
    /// Client assertions signed with the matching private keys authenticate the app.
    #[serde(default)]
    pub certificates: Vec<AppCertificate>,
    /// Granted (admin-consented) application permissions on Microsoft Graph, e.g. `User.Read.All`.
    pub app_roles: Vec<String>,
    /// "Allow public client flows": device code and username/password without a client credential. Such an
    /// app must not send one (AADSTS700025); without the flag a request without one gets AADSTS7000218.
    pub is_fallback_public_client: bool,
    /// Admin-consented delegated permissions on Microsoft Graph (`User.Read`, `User.ReadBasic.All`, …).
    /// `openid`, `profile`, `email` and `offline_access` are always allowed. A user flow asking for a Graph
    /// scope outside this list (and not consented by the user on the sign-in page) gets AADSTS65001.
    #[serde(default)]
    pub delegated_permissions: Vec<String>,
    /// An administrator granted consent for the whole tenant (the admin-consent page, `/{tenant}/adminconsent`):
    /// [`Self::delegated_permissions`] then cover every user, those flagged `consent_missing` included.
    #[serde(default)]
    pub admin_consent_granted: bool,
    /// Redirect URIs of the "Mobile and desktop applications" platform (Graph `publicClient.redirectUris`):
    /// the authorization code redeemed for them needs no client credential. `http://localhost` and
    /// `http://127.0.0.1` match any port (see `routes::authorize`).
    #[serde(default)]
    pub public_client_redirect_uris: Vec<String>,
    /// Redirect URIs of the "Web" platform (Graph `web.redirectUris`): the code is redeemed by a
    /// confidential client (secret or certificate).
    #[serde(default)]
    pub web_redirect_uris: Vec<String>,
    /// Federated identity credentials (workload identity federation): tokens from these issuers, for these
    /// subjects and audiences, authenticate the app as client assertions.
    #[serde(default)]
    pub federated_credentials: Vec<FederatedIdentityCredential>,
}

/// The audience Entra expects in federated tokens (a federated identity credential's audience).
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// A federated identity credential of an app registration (Graph `federatedIdentityCredential`): a token whose
/// `iss`, `sub` and one of whose `aud` values equal these (case-sensitive) authenticates the app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FederatedIdentityCredential {
    /// Unique name within the app (`emulator-cluster`).
    pub name: String,
    /// The external issuer's URL, exactly as in the tokens' `iss` (an AKS cluster's OIDC issuer URL).
    pub issuer: String,
    /// The tokens' `sub` (`system:serviceaccount:<namespace>:<name>` on Kubernetes).
    pub subject: String,
    /// Accepted `aud` values; Entra's is `api://AzureADTokenExchange`.
    pub audiences: Vec<String>,
}

/// A client secret (password credential) of an app registration.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientSecret {
    /// Secret id (GUID); not the value.
    pub key_id: String,
    /// Description shown in the portal.
    pub display_name: String,
    /// The secret value. Never printed by `Debug`.
    pub value: String,
    /// First three characters of the value, as the portal and Graph show them.
    pub hint: String,
    /// Valid from.
    #[serde(with = "time::serde::rfc3339")]
    pub start_date_time: OffsetDateTime,
    /// Expires at (AADSTS7000222 afterwards).
    #[serde(with = "time::serde::rfc3339")]
    pub end_date_time: OffsetDateTime,
}

/// A certificate uploaded to an app registration (a key credential of type `AsymmetricX509Cert`): the
/// public certificate only. Build one with [`AppCertificate::from_der`] / [`AppCertificate::from_pem`], which
/// take the validity from the certificate itself.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppCertificate {
    /// Key id (GUID), Graph `keyCredentials[].keyId`.
    pub key_id: String,
    /// Description; the portal uses the certificate's subject (`CN=…`).
    pub display_name: String,
    /// The certificate, DER (base64 in JSON).
    #[serde(with = "base64_bytes")]
    pub cert_der: Vec<u8>,
    /// SHA-1 thumbprint, upper-case hex (the portal's Thumbprint column; Graph `customKeyIdentifier`).
    pub thumbprint_sha1: String,
    /// Start of validity (the certificate's notBefore).
    #[serde(with = "time::serde::rfc3339")]
    pub start_date_time: OffsetDateTime,
    /// End of validity (the certificate's notAfter); afterwards assertions get AADSTS700027 "The key used is
    /// expired.".
    #[serde(with = "time::serde::rfc3339")]
    pub end_date_time: OffsetDateTime,
}

mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(deserializer)?;
        STANDARD.decode(s.trim()).map_err(serde::de::Error::custom)
    }
}

impl fmt::Debug for AppCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppCertificate")
            .field("key_id", &self.key_id)
            .field("display_name", &self.display_name)
            .field("thumbprint_sha1", &self.thumbprint_sha1)
            .field("start_date_time", &self.start_date_time)
            .field("end_date_time", &self.end_date_time)
            .finish_non_exhaustive()
    }
}

impl AppCertificate {
    /// The public part of a DER certificate, with a new key id, its subject as display name and its validity.
    /// Only RSA certificates can authenticate (the assertion algorithms are RSA ones).
    pub fn from_der(cert_der: &[u8]) -> Result<Self, EmulatorError> {
        let parsed = crate::x509::parse(cert_der).map_err(EmulatorError::Certificate)?;
        Ok(Self {
            key_id: new_guid(),
            display_name: parsed.subject,
            cert_der: cert_der.to_vec(),
            thumbprint_sha1: hex_upper(&Sha1::digest(cert_der)),
            start_date_time: parsed.not_before,
            end_date_time: parsed.not_after,
        })
    }

    /// Like [`Self::from_der`], from PEM (the first `CERTIFICATE` block: a `.cer`/`.crt` file).
    pub fn from_pem(pem: &str) -> Result<Self, EmulatorError> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject as _;
        let der = CertificateDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| EmulatorError::Certificate(format!("no PEM certificate: {e}")))?;
        Self::from_der(&der)
    }

    /// SHA-256 thumbprint, upper-case hex.
    pub fn thumbprint_sha256(&self) -> String {
        hex_upper(&Sha256::digest(&self.cert_der))
    }

    /// `x5t`: base64url (unpadded) SHA-1 of the certificate.
    pub fn x5t(&self) -> String {
        b64url(&Sha1::digest(&self.cert_der))
    }

    /// `x5t#S256`: base64url (unpadded) SHA-256 of the certificate.
    pub fn x5t_s256(&self) -> String {
        b64url(&Sha256::digest(&self.cert_der))
    }

    /// Whether the certificate is within its validity at `now`.
    pub fn is_valid_at(&self, now: OffsetDateTime) -> bool {
        self.start_date_time <= now && now <= self.end_date_time
    }

    /// Whether the certificate has expired at `now`.
    pub fn is_expired_at(&self, now: OffsetDateTime) -> bool {
        now > self.end_date_time
    }

    pub(crate) fn sha1(&self) -> [u8; 20] {
        Sha1::digest(&self.cert_der).into()
    }

    pub(crate) fn sha256(&self) -> [u8; 32] {
        Sha256::digest(&self.cert_der).into()
    }
}

/// A user account.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Object id (GUID); Graph `id`, token `oid`.
    pub id: String,
    /// Graph `displayName`.
    pub display_name: String,
    /// Graph `givenName`.
    pub given_name: Option<String>,
    /// Graph `surname`.
    pub surname: Option<String>,
    /// Sign-in name, e.g. `AdeleV@contoso.onmicrosoft.com`.
    pub user_principal_name: String,
    /// Graph `mail`.
    pub mail: Option<String>,
    /// Graph `jobTitle`.
    pub job_title: Option<String>,
    /// Graph `officeLocation`.
    pub office_location: Option<String>,
    /// Graph `preferredLanguage`.
    pub preferred_language: Option<String>,
    /// Graph `businessPhones`.
    pub business_phones: Vec<String>,
    /// Graph `mobilePhone`.
    pub mobile_phone: Option<String>,
    /// The user's password. Never printed by `Debug`.
    pub password: String,
    /// Multi-factor authentication required: username/password gets AADSTS50076; the sign-in page asks for
    /// an (emulated) second factor.
    #[serde(default)]
    pub mfa_required: bool,
    /// Must register for MFA first: username/password gets AADSTS50079.
    #[serde(default)]
    pub mfa_registration_required: bool,
    /// Locked after too many attempts: AADSTS50053.
    #[serde(default)]
    pub locked: bool,
    /// Disabled account: AADSTS50057.
    #[serde(default)]
    pub disabled: bool,
    /// Expired password: AADSTS50055 (suberror `user_password_expired`).
    #[serde(default)]
    pub password_expired: bool,
    /// Blocked by a Conditional Access policy: AADSTS53003.
    #[serde(default)]
    pub blocked_by_conditional_access: bool,
    /// Never consented to anything, and not covered by admin consent: user flows get AADSTS65001 until the
    /// user consents on the sign-in page.
    #[serde(default)]
    pub consent_missing: bool,
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSecret")
            .field("key_id", &self.key_id)
            .field("display_name", &self.display_name)
            .field("value", &"<redacted>")
            .field("hint", &self.hint)
            .field("start_date_time", &self.start_date_time)
            .field("end_date_time", &self.end_date_time)
            .finish()
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("display_name", &self.display_name)
            .field("user_principal_name", &self.user_principal_name)
            .field("mail", &self.mail)
            .field("job_title", &self.job_title)
            .field("office_location", &self.office_location)
            .field("password", &"<redacted>")
            .field("flags", &self.flags())
            .finish_non_exhaustive()
    }
}

/// Characters of generated secret values (Azure uses letters, digits and `~ . _ -`).
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789~._-";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

impl ClientSecret {
    /// A new random secret, valid from `start` to `end`. Values look like Azure's: 40 characters, the
    /// 4th–6th being `8Q~`.
    pub fn generate(display_name: &str, start: OffsetDateTime, end: OffsetDateTime) -> Self {
        let value = format!(
            "{}8Q~{}",
            random_string(3, ALNUM),
            random_string(34, SECRET_ALPHABET)
        );
        Self {
            key_id: new_guid(),
            display_name: display_name.to_owned(),
            hint: value.chars().take(3).collect(),
            value,
            start_date_time: trunc_seconds(start),
            end_date_time: trunc_seconds(end),
        }
    }

    /// A secret created now and valid for `days` days.
    pub fn generate_valid_for_days(display_name: &str, days: i64) -> Self {
        let now = OffsetDateTime::now_utc();
        Self::generate(display_name, now, now + Duration::days(days))
    }

    /// Whether the secret can be used at `now`.
    pub fn is_valid_at(&self, now: OffsetDateTime) -> bool {
        self.start_date_time <= now && now < self.end_date_time
    }

    /// Whether the secret has expired at `now`.
    pub fn is_expired_at(&self, now: OffsetDateTime) -> bool {
        now >= self.end_date_time
    }
}

fn trunc_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

impl AppRegistration {
    /// A new single-tenant confidential app with random ids, no secret and no permissions.
    pub fn new(name: &str, display_name: &str) -> Self {
        Self {
            name: name.to_owned(),
            app_id: new_guid(),
            object_id: new_guid(),
            service_principal_id: new_guid(),
            display_name: display_name.to_owned(),
            sign_in_audience: "AzureADMyOrg".to_owned(),
            secrets: Vec::new(),
            certificates: Vec::new(),
            app_roles: Vec::new(),
            is_fallback_public_client: false,
            delegated_permissions: Vec::new(),
            admin_consent_granted: false,
            public_client_redirect_uris: Vec::new(),
            web_redirect_uris: Vec::new(),
            federated_credentials: Vec::new(),
        }
    }

    /// The sign-in audience, parsed. Unknown values count as `AzureADMyOrg` (the most restrictive).
    pub fn audience(&self) -> SignInAudience {
        SignInAudience::parse(&self.sign_in_audience)
    }

    /// Whether the app holds the admin-consented delegated permission `scope` (case-insensitive).
    pub fn has_delegated_permission(&self, scope: &str) -> bool {
        self.delegated_permissions
            .iter()
            .any(|p| p.eq_ignore_ascii_case(scope))
    }

    /// The first secret that is valid now (what the self-description calls `client_secret`).
    pub fn first_valid_secret(&self) -> Option<&ClientSecret> {
        let now = OffsetDateTime::now_utc();
        self.secrets.iter().find(|s| s.is_valid_at(now))
    }

    /// Whether the app holds the application permission `role` (case-insensitive).
    pub fn has_role(&self, role: &str) -> bool {
        self.app_roles.iter().any(|r| r.eq_ignore_ascii_case(role))
    }
}

impl User {
    /// A user `given surname` with UPN `{alias}@{domain}`, mail equal to the UPN and a random password.
    pub fn new(given: &str, surname: &str, alias: &str, domain: &str) -> Self {
        let upn = format!("{alias}@{domain}");
        Self {
            id: new_guid(),
            display_name: format!("{given} {surname}"),
            given_name: Some(given.to_owned()),
            surname: Some(surname.to_owned()),
            mail: Some(upn.clone()),
            user_principal_name: upn,
            job_title: None,
            office_location: None,
            preferred_language: Some("en-US".to_owned()),
            business_phones: Vec::new(),
            mobile_phone: None,
            password: generate_password(),
            mfa_required: false,
            mfa_registration_required: false,
            locked: false,
            disabled: false,
            password_expired: false,
            blocked_by_conditional_access: false,
            consent_missing: false,
        }
    }

    /// The names of the flags that are set (`mfa_required`, `locked`, …), in declaration order.
    pub fn flags(&self) -> Vec<&'static str> {
        [
            (self.mfa_required, "mfa_required"),
            (self.mfa_registration_required, "mfa_registration_required"),
            (self.locked, "locked"),
            (self.disabled, "disabled"),
            (self.password_expired, "password_expired"),
            (
                self.blocked_by_conditional_access,
                "blocked_by_conditional_access",
            ),
            (self.consent_missing, "consent_missing"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect()
    }

    /// Whether a second factor is needed (MFA, or MFA registration).
    pub fn needs_mfa(&self) -> bool {
        self.mfa_required || self.mfa_registration_required
    }
}

/// Who may sign in to an app (`signInAudience`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignInAudience {
    /// `AzureADMyOrg`: accounts of the app's own tenant only (single tenant).
    MyOrg,
    /// `AzureADMultipleOrgs`: work and school accounts of any tenant.
    MultipleOrgs,
    /// `AzureADandPersonalMicrosoftAccount`: work, school and personal Microsoft accounts.
    OrgsAndPersonal,
    /// `PersonalMicrosoftAccount`: personal Microsoft accounts only.
    PersonalOnly,
}

impl SignInAudience {
    /// Parses the Graph `signInAudience` value (case-insensitive); unknown values are `MyOrg`.
    pub fn parse(value: &str) -> Self {
        match value.to_ascii_lowercase().as_str() {
            "azureadmultipleorgs" => Self::MultipleOrgs,
            "azureadandpersonalmicrosoftaccount" => Self::OrgsAndPersonal,
            "personalmicrosoftaccount" => Self::PersonalOnly,
            _ => Self::MyOrg,
        }
    }

    /// The Graph spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MyOrg => "AzureADMyOrg",
            Self::MultipleOrgs => "AzureADMultipleOrgs",
            Self::OrgsAndPersonal => "AzureADandPersonalMicrosoftAccount",
            Self::PersonalOnly => "PersonalMicrosoftAccount",
        }
    }
}

/// A random password that satisfies Entra's complexity rules (upper, lower, digit, symbol).
pub(crate) fn generate_password() -> String {
    format!(
        "{}{}-{}{}!",
        random_string(1, b"ABCDEFGHJKLMNPQRSTUVWXYZ"),
        random_string(7, b"abcdefghijkmnopqrstuvwxyz"),
        random_string(6, b"abcdefghijkmnopqrstuvwxyz23456789"),
        random_string(2, b"23456789")
    )
}

impl Tenant {
    /// The app registration with this application (client) id.
    pub fn app_by_client_id(&self, client_id: &str) -> Option<&AppRegistration> {
        self.apps.iter().find(|a| guid_eq(&a.app_id, client_id))
    }

    /// The app registration with this application object id.
    pub fn app_by_object_id(&self, object_id: &str) -> Option<&AppRegistration> {
        self.apps.iter().find(|a| guid_eq(&a.object_id, object_id))
    }

    /// The app registration with this short name.
    pub fn app(&self, name: &str) -> Option<&AppRegistration> {
        self.apps.iter().find(|a| a.name == name)
    }

    /// A user by object id or user principal name (case-insensitive).
    pub fn user(&self, id_or_upn: &str) -> Option<&User> {
        self.users
            .iter()
            .find(|u| guid_eq(&u.id, id_or_upn) || u.user_principal_name.eq_ignore_ascii_case(id_or_upn))
    }

    /// The initial domain (first of `domains`), or the id when there is none.
    pub fn primary_domain(&self) -> &str {
        self.domains.first().map(String::as_str).unwrap_or(&self.id)
    }

    /// Whether `domain` is one of the tenant's domains, managed or federated (case-insensitive).
    pub fn has_domain(&self, domain: &str) -> bool {
        self.domains
            .iter()
            .chain(&self.federated_domains)
            .any(|d| d.eq_ignore_ascii_case(domain))
    }

    /// Whether `domain` is one of the tenant's federated domains (case-insensitive).
    pub fn is_federated_domain(&self, domain: &str) -> bool {
        self.federated_domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(domain))
    }

    /// Whether the user signs in at a federation server (the domain of the UPN is federated).
    pub fn is_federated_user(&self, user: &User) -> bool {
        user.user_principal_name
            .rsplit_once('@')
            .is_some_and(|(_, domain)| self.is_federated_domain(domain))
    }
}

impl Directory {
    /// The first app with this short name (default tenant first), mutable.
    pub(crate) fn app_mut(&mut self, name: &str) -> Option<&mut AppRegistration> {
        self.tenants
            .iter_mut()
            .find_map(|t| t.apps.iter_mut().find(|a| a.name == name))
    }

    /// The default tenant (the first one).
    pub fn default_tenant(&self) -> Option<&Tenant> {
        self.tenants.first()
    }

    /// A tenant by GUID or verified domain (case-insensitive).
    pub fn tenant(&self, id_or_domain: &str) -> Option<&Tenant> {
        self.tenants
            .iter()
            .find(|t| guid_eq(&t.id, id_or_domain) || t.has_domain(id_or_domain))
    }

    /// The tenant whose domain matches the domain part of a user name (user realm discovery).
    pub fn tenant_for_username(&self, username: &str) -> Option<&Tenant> {
        let domain = username.rsplit_once('@').map(|(_, d)| d)?;
        self.tenants.iter().find(|t| t.has_domain(domain))
    }

    /// Checks the invariants the server relies on.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.tenants.is_empty() {
            return Err("the directory has no tenant".to_owned());
        }
        for t in &self.tenants {
            if !crate::ids::is_guid(&t.id) {
                return Err(format!("tenant id '{}' is not a GUID", t.id));
            }
            for a in &t.apps {
                if !crate::ids::is_guid(&a.app_id) {
                    return Err(format!("app '{}' has an app_id that is not a GUID", a.name));
                }
                if let Some(c) = a
                    .certificates
                    .iter()
                    .find(|c| crate::x509::parse(&c.cert_der).is_err())
                {
                    return Err(format!(
                        "app '{}' has a certificate ({}) that is not an X.509 certificate",
                        a.name, c.key_id
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_must_be_x509() {
        let mut d = Directory::seeded();
        d.tenants[0].apps[0].certificates.push(AppCertificate {
            key_id: new_guid(),
            display_name: "CN=junk".into(),
            cert_der: b"junk".to_vec(),
            thumbprint_sha1: String::new(),
            start_date_time: OffsetDateTime::UNIX_EPOCH,
            end_date_time: OffsetDateTime::UNIX_EPOCH,
        });
        assert!(
            d.validate()
                .is_err_and(|e| e.contains("not an X.509 certificate"))
        );
        assert!(AppCertificate::from_der(b"junk").is_err());
        assert!(AppCertificate::from_pem("no pem here").is_err());
    }

    #[test]
    fn secret_shape_and_debug_redaction() {
        let s = ClientSecret::generate_valid_for_days("x", 1);
        assert_eq!(s.value.len(), 40);
        assert_eq!(&s.value[3..6], "8Q~");
        assert_eq!(s.hint, &s.value[..3]);
        let dbg = format!("{s:?}");
        assert!(!dbg.contains(&s.value));
        let d = Directory::seeded();
        let dbg = format!("{d:?}");
        for u in &d.tenants[0].users {
            assert!(!dbg.contains(&u.password));
        }
        for a in &d.tenants[0].apps {
            for s in &a.secrets {
                assert!(!dbg.contains(&s.value));
            }
        }
    }
}
