//! The machine-readable self-description (`--describe FILE`, `Emulator::description()`): where the
//! emulator listens, which CA to trust, and the directory's tenants, apps (with secrets and certificates,
//! including where the private keys of seeded certificates are) and users (with passwords). Schema
//! documented in `docs/emulator.md`.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::directory::{AppCertificate, ClientSecret, Directory};
use crate::seed::DEMO_USERNAME;
use crate::seeded_certificates::HeldCertificate;

/// Current schema version of [`Description`].
pub const DESCRIPTION_VERSION: u32 = 1;

/// The self-description: URLs, CA file and the directory with its credentials.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Description {
    /// Schema version ([`DESCRIPTION_VERSION`]).
    pub version: u32,
    /// `https://127.0.0.1:PORT`
    pub https_url: String,
    /// `http://127.0.0.1:PORT` when the plain-HTTP listener is enabled.
    pub http_url: Option<String>,
    /// Authority of the default tenant: `https://127.0.0.1:PORT/{tenant id}`.
    pub authority: String,
    /// Authority host (what `AZURE_AUTHORITY_HOST` would be): `https://127.0.0.1:PORT`.
    pub authority_host: String,
    /// Graph base URL: `https://127.0.0.1:PORT/v1.0`.
    pub graph_base_url: String,
    /// PEM file of the CA certificate clients must trust.
    pub ca_file: String,
    /// The device-code sign-in page: `https://127.0.0.1:PORT/devicelogin`.
    #[serde(default)]
    pub verification_uri: String,
    /// `kid` of the key that signs the emulator's tokens ([`crate::Emulator::signing_key_id`]).
    #[serde(default)]
    pub signing_key_id: String,
    /// The user the samples sign in as (documented password), when the directory has it.
    #[serde(default)]
    pub demo_user: Option<DemoUserDescription>,
    /// All tenants; the first is the default one.
    pub tenants: Vec<TenantDescription>,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
/// The sample user in the [`Description`].
pub struct DemoUserDescription {
    /// User principal name.
    pub username: String,
    /// Password.
    pub password: String,
}

impl fmt::Debug for DemoUserDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemoUserDescription")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
/// A tenant in the [`Description`].
pub struct TenantDescription {
    /// Tenant id (GUID).
    pub id: String,
    /// Verified domains.
    pub domains: Vec<String>,
    /// Federated domains (user realm `Federated`).
    #[serde(default)]
    pub federated_domains: Vec<String>,
    /// Organization name.
    pub display_name: String,
    /// Authority for this tenant.
    pub authority: String,
    /// App registrations.
    pub apps: Vec<AppDescription>,
    /// Users.
    pub users: Vec<UserDescription>,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
/// An app registration in the [`Description`].
pub struct AppDescription {
    /// Short name (`daemon`, …).
    pub name: String,
    /// Application (client) id.
    pub client_id: String,
    /// Application object id (Graph `/applications/{id}`).
    pub object_id: String,
    /// Service principal object id (`oid`/`sub` of its app-only tokens).
    pub service_principal_id: String,
    /// Display name.
    pub display_name: String,
    /// Value of the first currently valid secret, `null` if there is none.
    pub client_secret: Option<String>,
    /// All secrets, valid or not.
    pub secrets: Vec<SecretDescription>,
    /// Certificates (key credentials), valid or not.
    #[serde(default)]
    pub certificates: Vec<CertificateDescription>,
    /// Granted Graph application permissions.
    pub roles: Vec<String>,
    /// "Allow public client flows".
    pub is_fallback_public_client: bool,
    /// `AzureADMyOrg`, `AzureADMultipleOrgs`, `AzureADandPersonalMicrosoftAccount` or `PersonalMicrosoftAccount`.
    #[serde(default)]
    pub sign_in_audience: String,
    /// Admin-consented delegated Graph permissions.
    #[serde(default)]
    pub delegated_permissions: Vec<String>,
    /// Redirect URIs of the "Mobile and desktop applications" platform (auth code flow of a public client).
    #[serde(default)]
    pub public_client_redirect_uris: Vec<String>,
    /// Redirect URIs of the "Web" platform.
    #[serde(default)]
    pub web_redirect_uris: Vec<String>,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
/// A client secret in the [`Description`].
pub struct SecretDescription {
    /// Secret id.
    pub key_id: String,
    /// Description.
    pub display_name: String,
    /// The secret value.
    pub value: String,
    /// First three characters of the value.
    pub hint: String,
    /// Valid from (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub start_date_time: OffsetDateTime,
    /// Valid until (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub end_date_time: OffsetDateTime,
    /// Whether `end_date_time` has passed (the token endpoint answers AADSTS7000222).
    pub expired: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
/// A certificate of an app in the [`Description`].
pub struct CertificateDescription {
    /// Key id (GUID).
    pub key_id: String,
    /// Description (the certificate's subject, `CN=…`).
    pub display_name: String,
    /// SHA-1 thumbprint, upper-case hex (MSAL's `thumbprint`).
    pub thumbprint_sha1: String,
    /// SHA-256 thumbprint, upper-case hex.
    pub thumbprint_sha256: String,
    /// `x5t` header value: base64url SHA-1 (unpadded).
    pub x5t: String,
    /// `x5t#S256` header value: base64url SHA-256 (unpadded).
    #[serde(rename = "x5t#S256")]
    pub x5t_s256: String,
    /// Valid from (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub start_date_time: OffsetDateTime,
    /// Valid until (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub end_date_time: OffsetDateTime,
    /// Whether `end_date_time` has passed (assertions get AADSTS700027 "The key used is expired.").
    pub expired: bool,
    /// For a certificate the emulator created (seeded apps), where its private key is; `null` otherwise.
    #[serde(default)]
    pub files: Option<CertificateFilesDescription>,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
/// Files of a certificate the emulator holds the private key of.
pub struct CertificateFilesDescription {
    /// PKCS#8 key followed by the certificate, PEM.
    pub pem: String,
    /// PKCS#8 key alone, PEM.
    pub key: String,
    /// Certificate alone, PEM.
    pub cert: String,
    /// PKCS#12 file with key and certificate.
    pub pfx: String,
    /// Password of the PKCS#12 file.
    pub pfx_password: String,
}

impl fmt::Debug for CertificateFilesDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateFilesDescription")
            .field("pem", &self.pem)
            .field("key", &self.key)
            .field("cert", &self.cert)
            .field("pfx", &self.pfx)
            .field("pfx_password", &"<redacted>")
            .finish()
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
/// A user in the [`Description`].
pub struct UserDescription {
    /// Object id.
    pub id: String,
    /// Sign-in name.
    pub user_principal_name: String,
    /// Display name.
    pub display_name: String,
    /// Password.
    pub password: String,
    /// Flags that change how sign-ins end (`mfa_required`, `locked`, …; see `User`).
    #[serde(default)]
    pub flags: Vec<String>,
}

impl fmt::Debug for Description {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Description")
            .field("version", &self.version)
            .field("https_url", &self.https_url)
            .field("http_url", &self.http_url)
            .field("authority", &self.authority)
            .field("graph_base_url", &self.graph_base_url)
            .field("ca_file", &self.ca_file)
            .field("verification_uri", &self.verification_uri)
            .field("signing_key_id", &self.signing_key_id)
            .field("demo_user", &self.demo_user)
            .field("tenants", &self.tenants)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for AppDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppDescription")
            .field("name", &self.name)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("secrets", &self.secrets)
            .field("certificates", &self.certificates)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for SecretDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretDescription")
            .field("key_id", &self.key_id)
            .field("hint", &self.hint)
            .field("value", &"<redacted>")
            .field("expired", &self.expired)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for UserDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserDescription")
            .field("id", &self.id)
            .field("user_principal_name", &self.user_principal_name)
            .field("password", &"<redacted>")
            .field("flags", &self.flags)
            .finish_non_exhaustive()
    }
}

fn secret_description(s: &ClientSecret, now: OffsetDateTime) -> SecretDescription {
    SecretDescription {
        key_id: s.key_id.clone(),
        display_name: s.display_name.clone(),
        value: s.value.clone(),
        hint: s.hint.clone(),
        start_date_time: s.start_date_time,
        end_date_time: s.end_date_time,
        expired: s.is_expired_at(now),
    }
}

fn certificate_description(
    c: &AppCertificate,
    app: &str,
    held: &[HeldCertificate],
    now: OffsetDateTime,
) -> CertificateDescription {
    let files = held
        .iter()
        .find(|h| h.app == app && h.cert_der == c.cert_der)
        .map(|h| CertificateFilesDescription {
            pem: h.files.pem_path.display().to_string(),
            key: h.files.key_path.display().to_string(),
            cert: h.files.cert_path.display().to_string(),
            pfx: h.files.pfx_path.display().to_string(),
            pfx_password: h.files.pfx_password.clone(),
        });
    CertificateDescription {
        key_id: c.key_id.clone(),
        display_name: c.display_name.clone(),
        thumbprint_sha1: c.thumbprint_sha1.clone(),
        thumbprint_sha256: c.thumbprint_sha256(),
        x5t: c.x5t(),
        x5t_s256: c.x5t_s256(),
        start_date_time: c.start_date_time,
        end_date_time: c.end_date_time,
        expired: c.is_expired_at(now),
        files,
    }
}

pub(crate) fn describe(
    directory: &Directory,
    held: &[HeldCertificate],
    https_url: &str,
    http_url: Option<&str>,
    ca_file: &std::path::Path,
    signing_key_id: &str,
) -> Description {
    let now = OffsetDateTime::now_utc();
    let tenants: Vec<TenantDescription> = directory
        .tenants
        .iter()
        .map(|t| TenantDescription {
            id: t.id.clone(),
            domains: t.domains.clone(),
            federated_domains: t.federated_domains.clone(),
            display_name: t.display_name.clone(),
            authority: format!("{https_url}/{}", t.id),
            apps: t
                .apps
                .iter()
                .map(|a| AppDescription {
                    name: a.name.clone(),
                    client_id: a.app_id.clone(),
                    object_id: a.object_id.clone(),
                    service_principal_id: a.service_principal_id.clone(),
                    display_name: a.display_name.clone(),
                    client_secret: a.first_valid_secret().map(|s| s.value.clone()),
                    secrets: a.secrets.iter().map(|s| secret_description(s, now)).collect(),
                    certificates: a
                        .certificates
                        .iter()
                        .map(|c| certificate_description(c, &a.name, held, now))
                        .collect(),
                    roles: a.app_roles.clone(),
                    is_fallback_public_client: a.is_fallback_public_client,
                    sign_in_audience: a.sign_in_audience.clone(),
                    delegated_permissions: a.delegated_permissions.clone(),
                    public_client_redirect_uris: a.public_client_redirect_uris.clone(),
                    web_redirect_uris: a.web_redirect_uris.clone(),
                })
                .collect(),
            users: t
                .users
                .iter()
                .map(|u| UserDescription {
                    id: u.id.clone(),
                    user_principal_name: u.user_principal_name.clone(),
                    display_name: u.display_name.clone(),
                    password: u.password.clone(),
                    flags: u.flags().into_iter().map(str::to_owned).collect(),
                })
                .collect(),
        })
        .collect();
    Description {
        version: DESCRIPTION_VERSION,
        https_url: https_url.to_owned(),
        http_url: http_url.map(str::to_owned),
        authority: tenants
            .first()
            .map(|t| t.authority.clone())
            .unwrap_or_else(|| https_url.to_owned()),
        authority_host: https_url.to_owned(),
        graph_base_url: format!("{https_url}/v1.0"),
        ca_file: ca_file.display().to_string(),
        verification_uri: format!("{https_url}/devicelogin"),
        signing_key_id: signing_key_id.to_owned(),
        demo_user: directory
            .tenants
            .iter()
            .find_map(|t| t.user(DEMO_USERNAME))
            .map(|u| DemoUserDescription {
                username: u.user_principal_name.clone(),
                password: u.password.clone(),
            }),
        tenants,
    }
}
