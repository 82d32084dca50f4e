//! The emulated directory: tenants, app registrations (with their client secrets and granted application
//! permissions) and users. Plain data that tests can build or tweak; the seeded default lives here too.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};
use time::{Duration, OffsetDateTime};

use crate::EmulatorError;
use crate::util::{b64url, guid_eq, hex_upper, new_guid, random_string, stable_guid};

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
    /// The seeded default directory: tenant `contoso.onmicrosoft.com` (with the federated domain
    /// `fabrikam.com`), the confidential apps `daemon`, `expired-secret`, `no-permissions` and
    /// `daemon-certificate`, the public-client apps `device-code`, `username-password`,
    /// `public-flows-disabled`, `single-tenant` and `personal-only`, sixteen demo users, the sample user
    /// [`DEMO_USERNAME`] (password [`DEMO_PASSWORD`]), one user per [`User`] flag (`mfa.user@…`,
    /// `mfa.register@…`, `locked.user@…`, `disabled.user@…`, `expired.password@…`, `ca.blocked@…`,
    /// `no.consent@…`) and the federated `federated.user@fabrikam.com`. Ids are fixed; secret values and the
    /// other passwords are generated. `daemon-certificate` has no certificate here: the emulator attaches the
    /// one whose private key it holds when it starts (key generation is too slow for this constructor).
    pub fn seeded() -> Self {
        let now = OffsetDateTime::now_utc();
        let mut apps = vec![
            seeded_app(
                "daemon",
                "Contoso daemon (client secret)",
                &["User.Read.All", "Application.Read.All"],
                Some(ClientSecret::generate("emulator", now, now + Duration::days(730))),
            ),
            seeded_app(
                "expired-secret",
                "Contoso daemon (expired secret)",
                &["User.Read.All", "Application.Read.All"],
                Some(ClientSecret::generate(
                    "expired",
                    now - Duration::days(181),
                    now - Duration::days(1),
                )),
            ),
            seeded_app(
                "no-permissions",
                "Contoso daemon (no permissions)",
                &[],
                Some(ClientSecret::generate("emulator", now, now + Duration::days(730))),
            ),
            seeded_certificate_app(),
        ];
        apps.extend(PUBLIC_APPS.iter().map(seeded_public_app));
        let mut users: Vec<User> = DEMO_USERS
            .iter()
            .map(|d| {
                let upn = format!("{}@{DEFAULT_TENANT_DOMAIN}", d.alias);
                User {
                    job_title: d.job_title.map(str::to_owned),
                    office_location: d.office.map(str::to_owned),
                    business_phones: d.phone.iter().map(|p| (*p).to_owned()).collect(),
                    ..seeded_user(d.given, d.surname, d.alias, &upn)
                }
            })
            .collect();
        users.push(User {
            job_title: Some("Sample user".to_owned()),
            password: DEMO_PASSWORD.to_owned(),
            ..seeded_user("Debra", "Berger", "DebraB", DEMO_USERNAME)
        });
        users.extend(FLAGGED_USERS.iter().map(|(alias, given, surname, flag)| {
            let mut user = seeded_user(given, surname, alias, &format!("{alias}@{DEFAULT_TENANT_DOMAIN}"));
            flag(&mut user);
            user
        }));
        users.push(seeded_user(
            "Federated",
            "User",
            "federated.user",
            &format!("federated.user@{FEDERATED_DOMAIN}"),
        ));
        Self {
            tenants: vec![Tenant {
                id: DEFAULT_TENANT_ID.to_owned(),
                domains: vec![DEFAULT_TENANT_DOMAIN.to_owned()],
                display_name: DEFAULT_TENANT_NAME.to_owned(),
                apps,
                users,
                federated_domains: vec![FEDERATED_DOMAIN.to_owned()],
            }],
        }
    }

    /// Adds what later versions of the seeded directory have to a directory that was seeded by an earlier
    /// version and persisted (one whose default tenant is the seeded tenant and still holds the seeded `daemon`
    /// app): the `daemon-certificate` app if missing, and — if the directory predates the user flows (none of
    /// the public apps, the sample user or the federated domain is there) — the public apps, the sample,
    /// flagged and federated users and the federated domain. A directory that already has some of them was
    /// edited on purpose and is left alone. Nothing already there is changed. Returns what was added.
    pub(crate) fn add_missing_seeded_entries(&mut self) -> Vec<String> {
        let Some(tenant) = self.tenants.first_mut() else {
            return Vec::new();
        };
        let seeded_origin = tenant.id == DEFAULT_TENANT_ID
            && tenant
                .app("daemon")
                .is_some_and(|a| a.app_id == stable_guid("app", "daemon"));
        let Some(seeded) = seeded_origin
            .then(|| Self::seeded().tenants.into_iter().next())
            .flatten()
        else {
            return Vec::new();
        };
        let mut added = Vec::new();
        let predates_user_flows = PUBLIC_APPS.iter().all(|(name, ..)| tenant.app(name).is_none())
            && tenant.user(DEMO_USERNAME).is_none()
            && tenant.federated_domains.is_empty();
        let demo_users = DEMO_USERS.len();
        for app in seeded.apps {
            let wanted = app.name == DAEMON_CERTIFICATE_APP
                || (predates_user_flows && PUBLIC_APPS.iter().any(|(name, ..)| *name == app.name));
            if wanted && tenant.app(&app.name).is_none() {
                added.push(format!("app {}", app.name));
                tenant.apps.push(app);
            }
        }
        if predates_user_flows {
            for user in seeded.users.into_iter().skip(demo_users) {
                if tenant.user(&user.user_principal_name).is_none() {
                    added.push(format!("user {}", user.user_principal_name));
                    tenant.users.push(user);
                }
            }
            for domain in seeded.federated_domains {
                added.push(format!("federated domain {domain}"));
                tenant.federated_domains.push(domain);
            }
        }
        added
    }

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
            if !crate::util::is_guid(&t.id) {
                return Err(format!("tenant id '{}' is not a GUID", t.id));
            }
            for a in &t.apps {
                if !crate::util::is_guid(&a.app_id) {
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

/// Short name of the seeded app that authenticates with a certificate.
pub(crate) const DAEMON_CERTIFICATE_APP: &str = "daemon-certificate";

fn seeded_app(name: &str, display: &str, roles: &[&str], secret: Option<ClientSecret>) -> AppRegistration {
    AppRegistration {
        name: name.to_owned(),
        app_id: stable_guid("app", name),
        object_id: stable_guid("application-object", name),
        service_principal_id: stable_guid("service-principal", name),
        display_name: display.to_owned(),
        sign_in_audience: "AzureADMyOrg".to_owned(),
        secrets: secret.into_iter().collect(),
        certificates: Vec::new(),
        app_roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        is_fallback_public_client: false,
        delegated_permissions: Vec::new(),
        admin_consent_granted: false,
    }
}

/// User name of the seeded sample user, whose password is [`DEMO_PASSWORD`] (a fake directory: the password
/// is documented so that the samples can be run by hand).
pub const DEMO_USERNAME: &str = "DebraB@contoso.onmicrosoft.com";
/// Password of [`DEMO_USERNAME`].
pub const DEMO_PASSWORD: &str = "Emulator-Demo-2024!";
/// The seeded tenant's federated domain (user realm `Federated`).
pub const FEDERATED_DOMAIN: &str = "fabrikam.com";

/// Delegated Graph permissions the seeded public clients hold (admin-consented).
const PUBLIC_APP_PERMISSIONS: [&str; 2] = ["User.Read", "User.ReadBasic.All"];

/// Seeded public-client apps: short name, display name, sign-in audience, "Allow public client flows".
const PUBLIC_APPS: [(&str, &str, SignInAudience, bool); 5] = [
    (
        "device-code",
        "Contoso device code sample",
        SignInAudience::MultipleOrgs,
        true,
    ),
    (
        "username-password",
        "Contoso username/password sample",
        SignInAudience::MultipleOrgs,
        true,
    ),
    (
        "public-flows-disabled",
        "Contoso app without public client flows",
        SignInAudience::MultipleOrgs,
        false,
    ),
    (
        "single-tenant",
        "Contoso single-tenant public client",
        SignInAudience::MyOrg,
        true,
    ),
    (
        "personal-only",
        "Contoso personal accounts app",
        SignInAudience::PersonalOnly,
        true,
    ),
];

fn seeded_public_app(
    (name, display, audience, public_flows): &(&str, &str, SignInAudience, bool),
) -> AppRegistration {
    AppRegistration {
        sign_in_audience: audience.as_str().to_owned(),
        is_fallback_public_client: *public_flows,
        delegated_permissions: PUBLIC_APP_PERMISSIONS.iter().map(|p| (*p).to_owned()).collect(),
        ..seeded_app(name, display, &[], None)
    }
}

/// A seeded user with a fixed id (from `alias`), mail = UPN, no flags and a generated password.
fn seeded_user(given: &str, surname: &str, alias: &str, upn: &str) -> User {
    User {
        id: stable_guid("user", alias),
        mail: Some(upn.to_owned()),
        user_principal_name: upn.to_owned(),
        ..User::new(given, surname, alias, DEFAULT_TENANT_DOMAIN)
    }
}

/// One seeded user per flag: alias (UPN local part), given name, surname, which flag.
type FlagSetter = fn(&mut User);
const FLAGGED_USERS: [(&str, &str, &str, FlagSetter); 7] = [
    ("mfa.user", "MFA", "Required", |u| u.mfa_required = true),
    ("mfa.register", "MFA", "Registration", |u| {
        u.mfa_registration_required = true
    }),
    ("locked.user", "Locked", "User", |u| u.locked = true),
    ("disabled.user", "Disabled", "User", |u| u.disabled = true),
    ("expired.password", "Expired", "Password", |u| {
        u.password_expired = true
    }),
    ("ca.blocked", "Conditional Access", "Blocked", |u| {
        u.blocked_by_conditional_access = true
    }),
    ("no.consent", "No", "Consent", |u| u.consent_missing = true),
];

/// `daemon-certificate` without its certificate (attached at start).
fn seeded_certificate_app() -> AppRegistration {
    seeded_app(
        DAEMON_CERTIFICATE_APP,
        "Contoso daemon (certificate)",
        &["User.Read.All", "Application.Read.All"],
        None,
    )
}

struct DemoUser {
    given: &'static str,
    surname: &'static str,
    alias: &'static str,
    job_title: Option<&'static str>,
    office: Option<&'static str>,
    phone: Option<&'static str>,
}

const fn demo(
    given: &'static str,
    surname: &'static str,
    alias: &'static str,
    job_title: Option<&'static str>,
    office: Option<&'static str>,
    phone: Option<&'static str>,
) -> DemoUser {
    DemoUser {
        given,
        surname,
        alias,
        job_title,
        office,
        phone,
    }
}

const DEMO_USERS: &[DemoUser] = &[
    demo(
        "Adele",
        "Vance",
        "AdeleV",
        Some("Retail Manager"),
        Some("18/2111"),
        Some("+1 425 555 0109"),
    ),
    demo(
        "Alex",
        "Wilber",
        "AlexW",
        Some("Marketing Assistant"),
        Some("131/1104"),
        Some("+1 858 555 0110"),
    ),
    demo(
        "Diego",
        "Siciliani",
        "DiegoS",
        Some("HR Manager"),
        Some("14/1108"),
        Some("+1 205 555 0108"),
    ),
    demo(
        "Grady",
        "Archie",
        "GradyA",
        Some("Designer"),
        Some("19/2109"),
        Some("+1 309 555 0104"),
    ),
    demo(
        "Henrietta",
        "Mueller",
        "HenriettaM",
        Some("Developer"),
        Some("18/1106"),
        Some("+1 954 555 0118"),
    ),
    demo(
        "Isaiah",
        "Langer",
        "IsaiahL",
        Some("Sales Rep"),
        Some("20/1101"),
        Some("+1 918 555 0101"),
    ),
    demo(
        "Johanna",
        "Lorenz",
        "JohannaL",
        Some("Senior Engineer"),
        Some("23/2102"),
        Some("+1 262 555 0106"),
    ),
    demo(
        "Joni",
        "Sherman",
        "JoniS",
        Some("Paralegal"),
        Some("20/1109"),
        Some("+1 980 555 0101"),
    ),
    demo(
        "Lee",
        "Gu",
        "LeeG",
        Some("Director"),
        Some("23/3101"),
        Some("+1 913 555 0101"),
    ),
    demo(
        "Lidia",
        "Holloway",
        "LidiaH",
        Some("Product Manager"),
        Some("20/2107"),
        Some("+1 918 555 0107"),
    ),
    demo(
        "Lynne",
        "Robbins",
        "LynneR",
        Some("Planner"),
        Some("20/1104"),
        Some("+1 412 555 0109"),
    ),
    demo(
        "Megan",
        "Bowen",
        "MeganB",
        Some("Marketing Manager"),
        Some("12/1110"),
        Some("+1 412 555 0109"),
    ),
    demo(
        "Miriam",
        "Graham",
        "MiriamG",
        Some("Director"),
        Some("131/2103"),
        Some("+1 206 555 0105"),
    ),
    demo(
        "Nestor",
        "Wilke",
        "NestorW",
        Some("Director"),
        Some("36/2121"),
        Some("+1 425 555 0105"),
    ),
    demo(
        "Patti",
        "Fernandez",
        "PattiF",
        Some("President"),
        Some("15/1102"),
        Some("+1 858 555 0103"),
    ),
    demo(
        "Pradeep",
        "Gupta",
        "PradeepG",
        Some("Accountant II"),
        Some("98/2202"),
        None,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_directory_shape() {
        let d = Directory::seeded();
        assert!(d.validate().is_ok());
        let t = d.tenant("CONTOSO.onmicrosoft.com").expect("tenant by domain");
        assert_eq!(t.id, DEFAULT_TENANT_ID);
        assert!(d.tenant(&DEFAULT_TENANT_ID.to_uppercase()).is_some());
        assert_eq!(t.users.len(), 16 + 1 + 7 + 1);
        let demo = t.user(DEMO_USERNAME).expect("demo user");
        assert_eq!(demo.password, DEMO_PASSWORD);
        assert!(demo.flags().is_empty());
        assert_eq!(
            t.user("mfa.user@contoso.onmicrosoft.com").expect("mfa").flags(),
            ["mfa_required"]
        );
        assert_eq!(
            t.user("no.consent@contoso.onmicrosoft.com").expect("nc").flags(),
            ["consent_missing"]
        );
        let federated = t.user("federated.user@fabrikam.com").expect("federated user");
        assert!(t.is_federated_user(federated));
        assert!(d.tenant("fabrikam.com").is_some());
        let dc = t.app("device-code").expect("device-code");
        assert!(dc.is_fallback_public_client && dc.has_delegated_permission("user.read"));
        assert_eq!(dc.audience(), SignInAudience::MultipleOrgs);
        assert!(
            !t.app("public-flows-disabled")
                .expect("pfd")
                .is_fallback_public_client
        );
        assert_eq!(
            t.app("single-tenant").expect("st").audience(),
            SignInAudience::MyOrg
        );
        assert_eq!(
            t.app("personal-only").expect("po").audience(),
            SignInAudience::PersonalOnly
        );
        let daemon = t.app("daemon").expect("daemon");
        assert!(daemon.first_valid_secret().is_some());
        assert!(
            t.app("expired-secret")
                .expect("expired")
                .first_valid_secret()
                .is_none()
        );
        assert!(t.app("no-permissions").expect("np").app_roles.is_empty());
        let cert_app = t.app("daemon-certificate").expect("daemon-certificate");
        assert!(cert_app.secrets.is_empty() && cert_app.certificates.is_empty());
        assert_eq!(cert_app.display_name, "Contoso daemon (certificate)");
        assert!(cert_app.has_role("user.read.all") && cert_app.has_role("Application.Read.All"));
        assert_eq!(Directory::seeded().tenants[0].apps[0].app_id, daemon.app_id);
        assert!(t.user("adelev@contoso.onmicrosoft.com").is_some());
    }

    #[test]
    fn older_seeded_directories_gain_the_new_entries_and_load_without_the_new_fields() {
        let mut d = Directory::seeded();
        let old_apps = ["daemon", "expired-secret", "no-permissions"];
        d.tenants[0].apps.retain(|a| old_apps.contains(&a.name.as_str()));
        d.tenants[0].users.truncate(16);
        d.tenants[0].federated_domains.clear();
        let mut json: serde_json::Value = serde_json::to_value(&d).expect("json");
        let tenant = json["tenants"][0].as_object_mut().expect("tenant");
        tenant.remove("federated_domains");
        for app in tenant["apps"].as_array_mut().expect("apps") {
            let app = app.as_object_mut().expect("app");
            app.remove("certificates");
            app.remove("delegated_permissions");
        }
        for user in tenant["users"].as_array_mut().expect("users") {
            user.as_object_mut()
                .expect("user")
                .retain(|k, _| !k.contains("mfa") && k != "locked");
        }
        let mut old: Directory = serde_json::from_value(json).expect("an older directory.json loads");
        assert_eq!(old, d);
        let added = old.add_missing_seeded_entries();
        assert!(added.contains(&"app daemon-certificate".to_owned()), "{added:?}");
        assert!(added.contains(&"app device-code".to_owned()), "{added:?}");
        assert!(added.contains(&format!("user {DEMO_USERNAME}")), "{added:?}");
        assert!(
            added.contains(&"federated domain fabrikam.com".to_owned()),
            "{added:?}"
        );
        assert!(old.add_missing_seeded_entries().is_empty(), "only once");
        assert_eq!(
            old.tenants[0].apps.len(),
            Directory::seeded().tenants[0].apps.len()
        );
        assert_eq!(
            old.tenants[0].users.len(),
            Directory::seeded().tenants[0].users.len()
        );
        assert_eq!(
            old.tenants[0].users[0], d.tenants[0].users[0],
            "existing users untouched"
        );
        let mut custom = Directory::seeded();
        custom.tenants[0]
            .apps
            .retain(|a| a.name != "daemon-certificate" && a.name != "daemon");
        assert!(
            custom.add_missing_seeded_entries().is_empty(),
            "not a seeded directory any more"
        );
        let mut edited = Directory::seeded();
        edited.tenants[0].users.truncate(3);
        edited.tenants[0].apps.retain(|a| a.name != "single-tenant");
        assert!(
            edited.add_missing_seeded_entries().is_empty(),
            "a current directory edited on purpose stays as it is"
        );
    }

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
