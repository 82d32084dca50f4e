//! The seeded demo directory: tenant `contoso.onmicrosoft.com` with its apps and users, and the upgrade
//! that brings a directory persisted by an earlier version up to date.

use time::{Duration, OffsetDateTime};

use crate::directory::{
    AppRegistration, ClientSecret, DEFAULT_TENANT_DOMAIN, DEFAULT_TENANT_ID, DEFAULT_TENANT_NAME, Directory,
    FederatedIdentityCredential, SignInAudience, TOKEN_EXCHANGE_AUDIENCE, Tenant, User,
};
use crate::ids::stable_guid;

impl Directory {
    /// The seeded default directory: tenant `contoso.onmicrosoft.com` (with the federated domain
    /// `fabrikam.com`), the confidential apps `daemon`, `expired-secret`, `no-permissions`, `workload` (a
    /// federated credential for the emulator's own token issuer, subject [`WORKLOAD_SUBJECT`]) and
    /// `daemon-certificate`, the public-client apps `device-code`, `username-password`,
    /// `public-flows-disabled` (with the Web redirect URI `http://localhost`), `single-tenant`,
    /// `personal-only` and `interactive` (redirect URI `http://localhost`, "Mobile and desktop"), sixteen demo users, the sample user
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
            seeded_workload_app(),
        ];
        apps.extend(PUBLIC_APPS.iter().map(seeded_public_app));
        apps.push(seeded_interactive_app());
        if let Some(app) = apps.iter_mut().find(|a| a.name == "public-flows-disabled") {
            // Registered under "Web": a code redeemed without a secret gets AADSTS7000218.
            app.web_redirect_uris.push("http://localhost".to_owned());
        }
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
                || app.name == INTERACTIVE_APP
                || app.name == WORKLOAD_APP
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
}

/// Short name of the seeded public client registered for the interactive flow (auth code + PKCE).
pub(crate) const INTERACTIVE_APP: &str = "interactive";

/// The interactive sample's app: platform "Mobile and desktop applications" with redirect URI
/// `http://localhost` (any port), as the sample's docs register it. No admin consent: the user consents to
/// `User.Read` on the first sign-in, as with a freshly registered app. "Allow public client flows" is on so
/// that its refresh tokens are redeemed without a credential (the emulator ties that to the flag).
fn seeded_interactive_app() -> AppRegistration {
    AppRegistration {
        sign_in_audience: SignInAudience::MultipleOrgs.as_str().to_owned(),
        is_fallback_public_client: true,
        public_client_redirect_uris: vec!["http://localhost".to_owned()],
        ..seeded_app(INTERACTIVE_APP, "Contoso interactive sample", &[], None)
    }
}

/// Short name of the seeded app that authenticates with a certificate.
pub(crate) const DAEMON_CERTIFICATE_APP: &str = "daemon-certificate";

/// Seeded apps whose certificate (and private key) the emulator creates.
pub(crate) const HELD_CERTIFICATE_APPS: &[&str] = &[DAEMON_CERTIFICATE_APP];

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
        public_client_redirect_uris: Vec::new(),
        web_redirect_uris: Vec::new(),
        federated_credentials: Vec::new(),
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

/// The issuer of a federated credential that stands for the emulator's own issuer
/// (`https://127.0.0.1:PORT/workload-issuer/`, see [`crate::Emulator::workload_issuer`]).
pub(crate) const OWN_ISSUER: &str = "emulator:workload-issuer";

/// The app that authenticates with a federated identity credential (workload identity federation).
pub(crate) const WORKLOAD_APP: &str = "workload";
/// The federated credential of [`WORKLOAD_APP`] that trusts the emulator's own token issuer. Its issuer is
/// [`OWN_ISSUER`]: the directory stays the same whatever port the emulator listens on.
pub(crate) const WORKLOAD_CREDENTIAL: &str = "emulator-cluster";
/// The subject of that credential: a Kubernetes service account, `default/workload-identity-sa` (the name of
/// the AKS workload identity quickstart).
pub const WORKLOAD_SUBJECT: &str = "system:serviceaccount:default:workload-identity-sa";

/// `workload`: no secret, no certificate, one federated credential for the emulator's issuer.
fn seeded_workload_app() -> AppRegistration {
    AppRegistration {
        federated_credentials: vec![FederatedIdentityCredential {
            name: WORKLOAD_CREDENTIAL.to_owned(),
            issuer: OWN_ISSUER.to_owned(),
            subject: WORKLOAD_SUBJECT.to_owned(),
            audiences: vec![TOKEN_EXCHANGE_AUDIENCE.to_owned()],
        }],
        ..seeded_app(
            WORKLOAD_APP,
            "Contoso workload (federated credential)",
            &["User.Read.All", "Application.Read.All"],
            None,
        )
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
        let mut before_interactive = Directory::seeded();
        before_interactive.tenants[0]
            .apps
            .retain(|a| a.name != INTERACTIVE_APP);
        assert_eq!(
            before_interactive.add_missing_seeded_entries(),
            ["app interactive"],
            "a directory from before the interactive flow gains its app"
        );
        let mut edited = Directory::seeded();
        edited.tenants[0].users.truncate(3);
        edited.tenants[0].apps.retain(|a| a.name != "single-tenant");
        assert!(
            edited.add_missing_seeded_entries().is_empty(),
            "a current directory edited on purpose stays as it is"
        );
    }
}
