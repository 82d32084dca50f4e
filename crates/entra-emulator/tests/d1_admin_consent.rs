//! The admin-consent page over real HTTPS: the URL the samples print for AADSTS65001 (`/{tenant}/adminconsent`)
//! and the v2 form (`/{tenant}/v2.0/adminconsent?scope=…`), driven like a browser (cookie, hidden fields, same
//! Origin). Accepting grants the consent, so the same sign-in that got AADSTS65001 then succeeds; forged posts,
//! unknown apps and foreign redirect URIs are refused with the real service's codes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{app_id, assert_aad_error, ropc, user};
use entra_emulator::{DEMO_PASSWORD, DEMO_USERNAME, Emulator};

const NO_CONSENT: &str = "no.consent@contoso.onmicrosoft.com";

/// A browser that does not follow redirects, keeps the one session cookie and submits forms with their
/// hidden fields.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    html: String,
}

impl Page {
    /// `(name, value)` of every hidden input, unescaped as a browser would.
    fn hidden_fields(&self) -> Vec<(String, String)> {
        let mut fields = Vec::new();
        let mut rest = self.html.as_str();
        while let Some(i) = rest.find("<input type=\"hidden\" name=\"") {
            rest = &rest[i + "<input type=\"hidden\" name=\"".len()..];
            let name = &rest[..rest.find('"').unwrap()];
            let value_at = rest.find("value=\"").unwrap() + "value=\"".len();
            let value = &rest[value_at..value_at + rest[value_at..].find('"').unwrap()];
            fields.push((name.to_owned(), unescape(value)));
        }
        fields
    }

    fn form_action(&self) -> String {
        let at = self.html.find("<form method=\"post\" action=\"").unwrap() + 28;
        self.html[at..at + self.html[at..].find('"').unwrap()].to_owned()
    }

    fn location(&self) -> url::Url {
        url::Url::parse(self.headers["location"].to_str().unwrap()).unwrap()
    }
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

impl Browser {
    fn new(emu: &Emulator) -> Self {
        let ca = reqwest::Certificate::from_pem(emu.ca_pem().as_bytes()).unwrap();
        Self {
            http: reqwest::Client::builder()
                .use_rustls_tls()
                .tls_built_in_root_certs(false)
                .add_root_certificate(ca)
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: emu.https_url(),
            cookie: None,
        }
    }

    async fn take(&mut self, resp: reqwest::Response) -> Page {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        if let Some(set) = headers.get("set-cookie") {
            self.cookie = Some(set.to_str().unwrap().split(';').next().unwrap().to_owned());
        }
        Page {
            status,
            headers,
            html: resp.text().await.unwrap(),
        }
    }

    async fn open(&mut self, path_and_query: &str) -> Page {
        let mut req = self.http.get(format!("{}{path_and_query}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.unwrap();
        self.take(resp).await
    }

    /// Submits the page's form with its hidden fields and `action`, replacing fields named in `overrides`.
    async fn submit(&mut self, page: &Page, action: &str, overrides: &[(&str, &str)]) -> Page {
        let mut form: Vec<(String, String)> = page
            .hidden_fields()
            .into_iter()
            .filter(|(name, _)| !overrides.iter().any(|(o, _)| o == name))
            .collect();
        form.extend(overrides.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())));
        form.push(("action".to_owned(), action.to_owned()));
        let mut req = self
            .http
            .post(format!("{}{}", self.base, page.form_action()))
            .header("origin", &self.base)
            .form(&form);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.unwrap();
        self.take(resp).await
    }
}

/// The no-consent user's password sign-in with the seeded username/password app.
async fn no_consent_sign_in(emu: &Emulator) -> reqwest::Response {
    let u = user(emu, NO_CONSENT);
    ropc(
        emu,
        &common::client(emu),
        &emu.tenant_id(),
        &app_id(emu, "username-password"),
        &u.user_principal_name,
        &u.password,
        "User.ReadBasic.All openid profile offline_access",
    )
    .await
}

#[tokio::test]
async fn accepting_the_printed_admin_consent_url_ends_aadsts65001() {
    let emu = Emulator::builder().start().await.unwrap();
    assert_aad_error(no_consent_sign_in(&emu).await, 400, "invalid_grant", 65001).await;

    // What identity-core's admin_consent_url() prints.
    let client_id = app_id(&emu, "username-password");
    let mut browser = Browser::new(&emu);
    let page = browser
        .open(&format!(
            "/{}/adminconsent?client_id={client_id}",
            emu.tenant_id()
        ))
        .await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    assert!(
        page.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("HttpOnly; SameSite=Strict")
    );
    assert!(
        page.html
            .contains("<strong id=\"app\">Contoso username/password sample</strong>")
    );
    assert!(page.html.contains("<strong id=\"tenant\">Contoso</strong>"));
    for permission in ["User.Read", "User.ReadBasic.All"] {
        assert!(page.html.contains(&format!("({permission})")), "{}", page.html);
    }

    // Forgeries change nothing: no token, a wrong token, another origin.
    let forged = browser.submit(&page, "accept", &[("csrf_token", "forged")]).await;
    assert_eq!(forged.status, 403);
    let mut stranger = Browser::new(&emu);
    let no_cookie = stranger.submit(&page, "accept", &[]).await;
    assert_eq!(no_cookie.status, 403);
    let cross_origin = browser
        .http
        .post(format!("{}{}", browser.base, page.form_action()))
        .header("origin", "https://evil.example")
        .header("cookie", browser.cookie.clone().unwrap())
        .form(&[("action", "accept")])
        .send()
        .await
        .unwrap();
    assert_eq!(cross_origin.status(), 403);
    // Cancel grants nothing either.
    let cancelled = browser.submit(&page, "cancel", &[]).await;
    assert_eq!(cancelled.status, 200);
    assert!(cancelled.html.contains("Consent declined"));
    assert_aad_error(no_consent_sign_in(&emu).await, 400, "invalid_grant", 65001).await;
    assert!(!emu.app("username-password").unwrap().admin_consent_granted);

    let done = browser.submit(&page, "accept", &[]).await;
    assert_eq!(done.status, 200, "{}", done.html);
    assert!(done.html.contains("Permissions granted"));
    assert!(emu.app("username-password").unwrap().admin_consent_granted);

    let resp = no_consent_sign_in(&emu).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    // Only for that app: another app's consent is untouched.
    assert!(!emu.app("device-code").unwrap().admin_consent_granted);
}

#[tokio::test]
async fn the_v2_form_grants_the_listed_scopes_and_redirects_with_the_real_parameters() {
    let emu = Emulator::builder().start().await.unwrap();
    let http = common::client(&emu);
    let client_id = app_id(&emu, "username-password");
    let tenant = emu.tenant_id();
    let mail = || {
        ropc(
            &emu,
            &http,
            &tenant,
            &client_id,
            DEMO_USERNAME,
            DEMO_PASSWORD,
            "Mail.Read openid",
        )
    };
    assert_aad_error(mail().await, 400, "invalid_grant", 65001).await;

    let mut browser = Browser::new(&emu);
    let state = "st\"<x>&1";
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &client_id)
        .append_pair("scope", "https://graph.microsoft.com/Mail.Read openid")
        .append_pair("redirect_uri", "http://localhost:8400/callback")
        .append_pair("state", state)
        .finish();
    let page = browser
        .open(&format!("/contoso.onmicrosoft.com/v2.0/adminconsent?{query}"))
        .await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("(Mail.Read)") || page.html.contains("<code>Mail.Read</code>"));
    assert!(!page.html.contains(state), "request values are escaped");
    assert!(page.html.contains("value=\"st&quot;&lt;x&gt;&amp;1\""));

    let redirect = browser.submit(&page, "accept", &[]).await;
    assert_eq!(redirect.status, 302, "{}", redirect.html);
    let location = redirect.location();
    assert_eq!(
        location.as_str().split('?').next().unwrap(),
        "http://localhost:8400/callback"
    );
    let pairs: Vec<(String, String)> = location.query_pairs().into_owned().collect();
    assert_eq!(
        pairs,
        [
            ("admin_consent".to_owned(), "True".to_owned()),
            ("tenant".to_owned(), emu.tenant_id()),
            (
                "scope".to_owned(),
                "https://graph.microsoft.com/Mail.Read openid".to_owned()
            ),
            ("state".to_owned(), state.to_owned()),
        ]
    );
    let resp = mail().await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["scope"], "Mail.Read openid");
}

#[tokio::test]
async fn cancel_redirects_with_access_denied() {
    let emu = Emulator::builder().start().await.unwrap();
    let mut browser = Browser::new(&emu);
    let page = browser
        .open(&format!(
            "/{}/adminconsent?client_id={}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&state=abc",
            emu.tenant_id(),
            app_id(&emu, "device-code")
        ))
        .await;
    let redirect = browser.submit(&page, "cancel", &[]).await;
    assert_eq!(redirect.status, 302);
    let pairs: Vec<(String, String)> = redirect.location().query_pairs().into_owned().collect();
    assert_eq!(pairs[0], ("error".to_owned(), "access_denied".to_owned()));
    assert!(pairs[1].1.starts_with("AADSTS65004: "));
    assert_eq!(pairs[2], ("state".to_owned(), "abc".to_owned()));
    assert!(!emu.app("device-code").unwrap().admin_consent_granted);
}

#[tokio::test]
async fn unknown_apps_tenants_and_foreign_redirect_uris_get_the_real_error_pages() {
    let emu = Emulator::builder().start().await.unwrap();
    let mut browser = Browser::new(&emu);
    let unknown = "11111111-2222-3333-4444-555555555555";
    let page = browser
        .open(&format!("/{}/adminconsent?client_id={unknown}", emu.tenant_id()))
        .await;
    assert_eq!(page.status, 400);
    assert!(
        page.html.contains(&format!(
            "AADSTS700016: Application with identifier &#39;{unknown}&#39; was not found in the directory \
             &#39;Contoso&#39;."
        )),
        "{}",
        page.html
    );
    assert!(page.html.contains("Correlation Id: "));
    assert!(!page.html.contains("<form"), "nothing to accept");

    let page = browser.open("/nosuch.example/adminconsent?client_id=x").await;
    assert_eq!(page.status, 400);
    assert!(page.html.contains("AADSTS90002: "), "{}", page.html);

    let page = browser.open(&format!("/{}/adminconsent", emu.tenant_id())).await;
    assert!(page.html.contains("AADSTS900144: "), "{}", page.html);

    let client_id = app_id(&emu, "device-code");
    let page = browser
        .open(&format!(
            "/{}/adminconsent?client_id={client_id}&redirect_uri=https%3A%2F%2Fevil.example%2F",
            emu.tenant_id()
        ))
        .await;
    assert_eq!(page.status, 400);
    assert!(
        page.html
            .contains("AADSTS50011: The redirect URI &#39;https://evil.example/&#39;")
    );

    let page = browser
        .open(&format!(
            "/{}/v2.0/adminconsent?client_id={client_id}",
            emu.tenant_id()
        ))
        .await;
    assert!(
        page.html.contains("AADSTS900144: "),
        "scope is required on v2: {}",
        page.html
    );

    // A POST that swaps in a foreign redirect URI is checked again.
    let page = browser
        .open(&format!(
            "/{}/adminconsent?client_id={client_id}",
            emu.tenant_id()
        ))
        .await;
    let swapped = browser
        .submit(&page, "accept", &[("redirect_uri", "https://evil.example/")])
        .await;
    assert_eq!(swapped.status, 400);
    assert!(swapped.headers.get("location").is_none());
    assert!(!emu.app("device-code").unwrap().admin_consent_granted);
}

#[tokio::test]
async fn an_admin_consent_is_kept_in_the_state_directory() {
    let dir = std::env::temp_dir().join(format!("entra-emulator-d1-consent-{}", uuid::Uuid::new_v4()));
    let first = Emulator::builder().state_dir(&dir).start().await.unwrap();
    let mut browser = Browser::new(&first);
    let page = browser
        .open(&format!(
            "/{}/adminconsent?client_id={}",
            first.tenant_id(),
            app_id(&first, "username-password")
        ))
        .await;
    assert_eq!(browser.submit(&page, "accept", &[]).await.status, 200);
    first.shutdown().await;

    let second = Emulator::builder().state_dir(&dir).start().await.unwrap();
    assert!(second.app("username-password").unwrap().admin_consent_granted);
    let resp = no_consent_sign_in(&second).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    second.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
