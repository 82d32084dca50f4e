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
    /// "Allow public client flows".
    pub is_fallback_public_client: bool,
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
        }
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

    /// Whether `domain` is one of the tenant's domains (case-insensitive).
    pub fn has_domain(&self, domain: &str) -> bool {
        self.domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
    }
}

impl Directory {
    /// The seeded default directory: tenant `contoso.onmicrosoft.com` with the apps `daemon`,
    /// `expired-secret`, `no-permissions` and `daemon-certificate` and sixteen demo users. Ids are fixed;
    /// secret values and passwords are generated. `daemon-certificate` has no certificate here: the emulator
    /// attaches the one whose private key it holds when it starts (key generation is too slow for this
    /// constructor).
    pub fn seeded() -> Self {
        let now = OffsetDateTime::now_utc();
        let apps = vec![
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
        let users = DEMO_USERS
            .iter()
            .map(|d| {
                let upn = format!("{}@{DEFAULT_TENANT_DOMAIN}", d.alias);
                User {
                    id: stable_guid("user", d.alias),
                    display_name: format!("{} {}", d.given, d.surname),
                    given_name: Some(d.given.to_owned()),
                    surname: Some(d.surname.to_owned()),
                    mail: Some(upn.clone()),
                    user_principal_name: upn,
                    job_title: d.job_title.map(str::to_owned),
                    office_location: d.office.map(str::to_owned),
                    preferred_language: Some("en-US".to_owned()),
                    business_phones: d.phone.iter().map(|p| (*p).to_owned()).collect(),
                    mobile_phone: None,
                    password: generate_password(),
                }
            })
            .collect();
        Self {
            tenants: vec![Tenant {
                id: DEFAULT_TENANT_ID.to_owned(),
                domains: vec![DEFAULT_TENANT_DOMAIN.to_owned()],
                display_name: DEFAULT_TENANT_NAME.to_owned(),
                apps,
                users,
            }],
        }
    }

    /// Adds apps that later versions of the seeded directory have (`daemon-certificate`) to a directory that
    /// was seeded by an earlier version and persisted: one whose default tenant is the seeded tenant and
    /// still holds the seeded `daemon` app. Returns whether it changed anything.
    pub(crate) fn add_missing_seeded_apps(&mut self) -> bool {
        let Some(tenant) = self.tenants.first_mut() else {
            return false;
        };
        let seeded_origin = tenant.id == DEFAULT_TENANT_ID
            && tenant
                .app("daemon")
                .is_some_and(|a| a.app_id == stable_guid("app", "daemon"));
        if !seeded_origin || tenant.app(DAEMON_CERTIFICATE_APP).is_some() {
            return false;
        }
        tenant.apps.push(seeded_certificate_app());
        true
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
    }
}

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
        assert_eq!(t.users.len(), 16);
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
    fn older_seeded_directories_gain_the_certificate_app_and_load_without_certificates() {
        let mut d = Directory::seeded();
        d.tenants[0].apps.retain(|a| a.name != "daemon-certificate");
        let mut json: serde_json::Value = serde_json::to_value(&d).expect("json");
        for app in json["tenants"][0]["apps"].as_array_mut().expect("apps") {
            app.as_object_mut().expect("app").remove("certificates");
        }
        let mut old: Directory = serde_json::from_value(json).expect("an older directory.json loads");
        assert_eq!(old, d);
        assert!(old.add_missing_seeded_apps());
        assert!(!old.add_missing_seeded_apps(), "only once");
        assert_eq!(old.tenants[0].apps.len(), 4);
        let mut custom = Directory::seeded();
        custom.tenants[0]
            .apps
            .retain(|a| a.name != "daemon-certificate" && a.name != "daemon");
        assert!(
            !custom.add_missing_seeded_apps(),
            "not a seeded directory any more"
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
