//! The authorization endpoint and the authorization code grant over real HTTPS: the sign-in pages driven
//! like a browser does (the session cookie, the forms' hidden fields), the answers at the redirect URI in
//! `form_post` and `query` mode, the redirect URI rules, PKCE, single use and expiry of codes, and each
//! AADSTS error of this path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

mod common;

use std::collections::HashMap;

use base64::Engine as _;
use common::*;
use entra_emulator::{DEMO_PASSWORD, DEMO_USERNAME, Directory, Emulator, Tenant, User};
use serde_json::Value;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const REDIRECT: &str = "http://localhost:53127";

/// A browser: no redirects followed, the session cookie kept.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

/// A page or an answer: status, `Location`, body.
struct Page {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Page {
    /// The hidden and filled-in fields of the page's first form, unescaped, with its action.
    fn form(&self) -> (String, HashMap<String, String>) {
        let body = &self.body;
        let start = body.find("<form").unwrap_or_else(|| panic!("no form in {body}"));
        let form = &body[start..];
        let action = attr(form, "action").expect("form action");
        let mut fields = HashMap::new();
        for input in form.split("<input").skip(1) {
            let tag = &input[..input.find('>').unwrap()];
            if let Some(name) = attr(tag, "name") {
                fields.insert(name, attr(tag, "value").unwrap_or_default());
            }
        }
        (action, fields)
    }

    fn assert_contains(&self, text: &str) {
        assert!(self.body.contains(text), "{text:?} not in page:\n{}", self.body);
    }
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let end = tag[start..].find('"')?;
    Some(unescape(&tag[start..start + end]))
}

impl Browser {
    fn new(emu: &Emulator) -> Self {
        let ca = reqwest::Certificate::from_pem(emu.ca_pem().as_bytes()).unwrap();
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap();
        Self {
            http,
            base: emu.https_url(),
            cookie: None,
        }
    }

    async fn read(&mut self, resp: reqwest::Response) -> Page {
        if let Some(c) = resp.headers().get("set-cookie") {
            let c = c.to_str().unwrap();
            self.cookie = Some(c.split(';').next().unwrap().to_owned());
        }
        Page {
            status: resp.status().as_u16(),
            location: resp
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned()),
            body: resp.text().await.unwrap(),
        }
    }

    async fn get(&mut self, url: &str) -> Page {
        let mut req = self.http.get(url);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.unwrap();
        self.read(resp).await
    }

    /// Submits the page's form with `extra` fields set.
    async fn submit(&mut self, page: &Page, extra: &[(&str, &str)]) -> Page {
        let (action, mut fields) = page.form();
        for (k, v) in extra {
            fields.insert((*k).to_owned(), (*v).to_owned());
        }
        let mut req = self
            .http
            .post(format!("{}{action}", self.base))
            .header("origin", &self.base)
            .form(&fields);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.unwrap();
        self.read(resp).await
    }

    /// Signs in on the sign-in page as `username`.
    async fn sign_in(&mut self, page: &Page, username: &str, password: &str) -> Page {
        page.assert_contains("id=\"signin\"");
        self.submit(page, &[("username", username), ("password", password)])
            .await
    }
}

fn authorize_url(emu: &Emulator, client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&emu.authorize_url()).unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", client_id);
        q.append_pair("response_type", "code");
        q.append_pair("scope", USER_SCOPES);
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    url.to_string()
}

/// The usual request of MSAL's interactive flow: form_post, PKCE S256, state and nonce.
fn msal_request<'a>(redirect: &'a str, state: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("redirect_uri", redirect),
        ("response_mode", "form_post"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("state", state),
        ("nonce", "nonce-123"),
        ("client_info", "1"),
    ]
}

/// The fields of the answer at the redirect URI (form_post page or query `Location`).
fn answer_fields(page: &Page, redirect: &str) -> HashMap<String, String> {
    match &page.location {
        Some(location) => {
            assert_eq!(page.status, 302);
            let url = url::Url::parse(location).unwrap();
            let expected = url::Url::parse(redirect).unwrap();
            assert_eq!(
                (url.scheme(), url.host_str(), url.port(), url.path()),
                (
                    expected.scheme(),
                    expected.host_str(),
                    expected.port(),
                    expected.path()
                ),
                "{location}"
            );
            url.query_pairs().into_owned().collect()
        }
        None => {
            assert_eq!(page.status, 200, "{}", page.body);
            page.assert_contains("document.forms[0].submit();");
            let (action, fields) = page.form();
            assert_eq!(action, redirect);
            fields
        }
    }
}

async fn redeem(
    emu: &Emulator,
    client_id: &str,
    code: &str,
    redirect: &str,
    verifier: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("client_id", client_id),
        ("code", code),
        ("redirect_uri", redirect),
        ("scope", USER_SCOPES),
        ("client_info", "1"),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    post_form(&client(emu), &token_url(emu), &form).await
}

/// Signs the demo user in to the `interactive` app and accepts the consent page; returns the answer.
async fn sign_in_and_consent(emu: &Emulator, browser: &mut Browser, extra: &[(&str, &str)]) -> Page {
    let cid = app_id(emu, "interactive");
    let page = browser.get(&authorize_url(emu, &cid, extra)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.assert_contains("Contoso interactive sample");
    let consent = browser.sign_in(&page, DEMO_USERNAME, DEMO_PASSWORD).await;
    consent.assert_contains("Permissions requested");
    consent.assert_contains("Sign you in and read your profile");
    browser.submit(&consent, &[("action", "accept")]).await
}

#[tokio::test]
async fn form_post_happy_path_gives_a_code_redeemed_for_tokens_with_the_nonce() {
    let emu = start().await;
    let cid = app_id(&emu, "interactive");
    let mut browser = Browser::new(&emu);
    let answer = sign_in_and_consent(&emu, &mut browser, &msal_request(REDIRECT, "st-1")).await;
    let fields = answer_fields(&answer, REDIRECT);
    assert_eq!(fields["state"], "st-1");
    assert!(uuid::Uuid::parse_str(&fields["session_state"]).is_ok());
    let info = b64url_json(&fields["client_info"]);
    let debra = user(&emu, DEMO_USERNAME);
    assert_eq!(info["uid"], debra.id.as_str());

    let resp = redeem(&emu, &cid, &fields["code"], REDIRECT, Some(VERIFIER)).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let (_, id) = assert_user_tokens(&body, &emu, &cid, &debra);
    assert_eq!(id["nonce"], "nonce-123");

    // The access token works on Graph as the user.
    let me: Value = client(&emu)
        .get(format!("{}/me", emu.graph_base()))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["userPrincipalName"], DEMO_USERNAME);

    // The refresh token is redeemed without a credential.
    let resp = post_form(
        &client(&emu),
        &token_url(&emu),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &cid),
            ("refresh_token", body["refresh_token"].as_str().unwrap()),
            ("scope", USER_SCOPES),
        ],
    )
    .await;
    assert_eq!(resp.status(), 200);

    // The same browser is signed in and has consented: the next request is answered without a page.
    let again = browser
        .get(&authorize_url(&emu, &cid, &msal_request(REDIRECT, "st-2")))
        .await;
    let fields = answer_fields(&again, REDIRECT);
    assert_eq!(fields["state"], "st-2");
    let resp = redeem(&emu, &cid, &fields["code"], REDIRECT, Some(VERIFIER)).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn query_mode_redirects_with_the_code_and_state() {
    let emu = start().await;
    let cid = app_id(&emu, "interactive");
    let mut browser = Browser::new(&emu);
    let redirect = "http://localhost:8400/callback-not-registered";
    // A path other than the registered one is a different redirect URI.
    let page = browser
        .get(&authorize_url(&emu, &cid, &[("redirect_uri", redirect)]))
        .await;
    assert_eq!(page.status, 400);
    page.assert_contains("AADSTS50011");

    let redirect = "http://localhost:8400";
    let extra = [
        ("redirect_uri", redirect),
        ("state", "a b&c"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let answer = sign_in_and_consent(&emu, &mut browser, &extra).await;
    assert!(
        answer
            .location
            .as_deref()
            .unwrap()
            .starts_with("http://localhost:8400/?code=1.A")
    );
    let fields = answer_fields(&answer, redirect);
    assert_eq!(fields["state"], "a b&c");
    let resp = redeem(&emu, &cid, &fields["code"], redirect, Some(VERIFIER)).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let (_, id) = decode_jwt(body["id_token"].as_str().unwrap());
    assert!(id.get("nonce").is_none(), "no nonce asked for");

    // fragment mode (single sign-on: answered at once).
    let page = browser
        .get(&authorize_url(
            &emu,
            &cid,
            &[
                ("redirect_uri", redirect),
                ("response_mode", "fragment"),
                ("state", "f"),
            ],
        ))
        .await;
    assert_eq!(page.status, 302);
    let location = url::Url::parse(page.location.as_deref().unwrap()).unwrap();
    assert_eq!(location.query(), None);
    let fields: HashMap<String, String> =
        url::form_urlencoded::parse(location.fragment().unwrap().as_bytes())
            .into_owned()
            .collect();
    assert_eq!(fields["state"], "f");
    assert!(fields["code"].starts_with("1.A"));
}

#[tokio::test]
async fn redirect_uri_rules_and_unknown_clients_are_error_pages() {
    let emu = start().await;
    let cid = app_id(&emu, "interactive");
    let mut browser = Browser::new(&emu);
    // http://localhost registered: any port.
    for ok in [
        "http://localhost:1",
        "http://localhost:65535/",
        "http://LOCALHOST:5000",
    ] {
        let page = browser
            .get(&authorize_url(&emu, &cid, &[("redirect_uri", ok)]))
            .await;
        assert_eq!(page.status, 200, "{ok}: {}", page.body);
        page.assert_contains("id=\"signin\"");
    }
    for bad in [
        "http://127.0.0.1:5000",
        "https://localhost:5000",
        "http://localhost.evil.example:5000",
        "http://localhost:5000/cb",
        "http://localhost:5000/#frag",
        "https://evil.example/\"><script>alert(1)</script>",
        "urn:ietf:wg:oauth:2.0:oob",
    ] {
        let page = browser
            .get(&authorize_url(
                &emu,
                &cid,
                &[("redirect_uri", bad), ("state", "s")],
            ))
            .await;
        assert_eq!(page.status, 400, "{bad}");
        assert!(page.location.is_none(), "never redirected to {bad}");
        page.assert_contains(&format!(
            "AADSTS50011: The redirect URI &#39;{}&#39; specified in the request does not match the redirect \
             URIs configured for the application &#39;{cid}&#39;.",
            bad.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
        ));
        assert!(!page.body.contains("<script>alert"), "escaped");
        page.assert_contains("Correlation Id: ");
    }
    // An app with no redirect URI at all.
    let page = browser
        .get(&authorize_url(&emu, &app_id(&emu, "device-code"), &[]))
        .await;
    assert_eq!(page.status, 400);
    page.assert_contains("AADSTS500113");
    // Unknown client.
    let unknown = "7c9d1e2f-0000-4000-8000-000000000001";
    let page = browser
        .get(&authorize_url(&emu, unknown, &[("redirect_uri", REDIRECT)]))
        .await;
    assert_eq!(page.status, 400);
    page.assert_contains(&format!(
        "AADSTS700016: Application with identifier &#39;{unknown}&#39; was not found in the directory"
    ));
    assert!(page.location.is_none());
}

/// Parameters replaced, expected `error`, expected AADSTS code.
type Case = (
    &'static [(&'static str, &'static str)],
    &'static str,
    &'static str,
);

#[tokio::test]
async fn errors_after_the_redirect_uri_go_to_it() {
    let emu = start().await;
    let cid = app_id(&emu, "interactive");
    let mut browser = Browser::new(&emu);
    let cases: [Case; 4] = [
        (
            &[("response_type", "token")],
            "unsupported_response_type",
            "AADSTS700054",
        ),
        (
            &[("scope", "api://other/read")],
            "invalid_resource",
            "AADSTS500011",
        ),
        (
            &[("code_challenge", CHALLENGE), ("code_challenge_method", "S512")],
            "invalid_request",
            "AADSTS501491",
        ),
        (&[("code_challenge", "short")], "invalid_request", "AADSTS501491"),
    ];
    for (extra, error, code) in cases {
        let mut url = url::Url::parse(&authorize_url(
            &emu,
            &cid,
            &[("redirect_uri", REDIRECT), ("state", "s1")],
        ))
        .unwrap();
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .into_owned()
            .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
            .collect();
        url.query_pairs_mut()
            .clear()
            .extend_pairs(kept)
            .extend_pairs(extra.iter().copied());
        let page = browser.get(url.as_str()).await;
        let fields = answer_fields(&page, REDIRECT);
        assert_eq!(fields["error"], error, "{extra:?}: {fields:?}");
        assert!(fields["error_description"].starts_with(code), "{fields:?}");
        assert!(fields["error_description"].contains("\r\nCorrelation ID: "));
        assert_eq!(fields["state"], "s1");
    }
    // prompt=none without a signed-in browser: login_required, here in form_post mode.
    let page = browser
        .get(&authorize_url(
            &emu,
            &cid,
            &[
                ("redirect_uri", REDIRECT),
                ("response_mode", "form_post"),
                ("prompt", "none"),
            ],
        ))
        .await;
    let fields = answer_fields(&page, REDIRECT);
    assert_eq!(fields["error"], "login_required");
    assert!(fields["error_description"].starts_with("AADSTS50058: "));
}

#[tokio::test]
async fn cancel_on_the_consent_page_sends_access_denied() {
    let emu = start().await;
    let cid = app_id(&emu, "interactive");
    let mut browser = Browser::new(&emu);
    let page = browser
        .get(&authorize_url(&emu, &cid, &msal_request(REDIRECT, "st-x")))
        .await;
    let consent = browser.sign_in(&page, DEMO_USERNAME, DEMO_PASSWORD).await;
    let answer = browser.submit(&consent, &[("action", "decline")]).await;
    let fields = answer_fields(&answer, REDIRECT);
    assert_eq!(fields["error"], "access_denied");
    assert!(
        fields["error_description"].starts_with("AADSTS65004: User declined to consent to access the app."),
        "{fields:?}"
    );
    assert_eq!(fields["state"], "st-x");
    assert!(!fields.contains_key("code"));
    // Nothing was consented: the next request shows the consent page again (after single sign-on).
    let page = browser
        .get(&authorize_url(&emu, &cid, &msal_request(REDIRECT, "st-y")))
        .await;
    page.assert_contains("Permissions requested");
    // prompt=none cannot show it: consent_required.
    let page = browser
        .get(&authorize_url(
            &emu,
            &cid,
            &[("redirect_uri", REDIRECT), ("prompt", "none")],
        ))
        .await;
    let fields = answer_fields(&page, REDIRECT);
    assert_eq!(fields["error"], "consent_required");
    assert!(fields["error_description"].starts_with("AADSTS65001: "));
}

#[tokio::test]
async fn pkce_redirect_uri_client_and_single_use_are_checked_at_redemption() {
    let emu = start().await;
    let cid = app_id(&emu, "interactive");
    let mut browser = Browser::new(&emu);
    let answer = sign_in_and_consent(&emu, &mut browser, &msal_request(REDIRECT, "s")).await;
    let code = answer_fields(&answer, REDIRECT)["code"].clone();

    let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK";
    assert_aad_error(
        redeem(&emu, &cid, &code, REDIRECT, Some(wrong)).await,
        400,
        "invalid_grant",
        501481,
    )
    .await;
    assert_aad_error(
        redeem(&emu, &cid, &code, REDIRECT, None).await,
        400,
        "invalid_grant",
        50148,
    )
    .await;
    let body = assert_aad_error(
        redeem(&emu, &cid, &code, "http://localhost:1", Some(VERIFIER)).await,
        400,
        "invalid_grant",
        500112,
    )
    .await;
    assert!(body["error_description"].as_str().unwrap().contains(
        "The reply address 'http://localhost:1' does not match the reply address 'http://localhost:53127'"
    ));
    // Another client cannot redeem it.
    let other = app_id(&emu, "device-code");
    assert_aad_error(
        redeem(&emu, &other, &code, REDIRECT, Some(VERIFIER)).await,
        400,
        "invalid_grant",
        70000,
    )
    .await;
    // A public client sends no secret.
    let resp = post_form(
        &client(&emu),
        &token_url(&emu),
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &cid),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_secret", "x"),
        ],
    )
    .await;
    assert_aad_error(resp, 401, "invalid_client", 700025).await;
    // None of the failures used it up; now it works once.
    assert_eq!(
        redeem(&emu, &cid, &code, REDIRECT, Some(VERIFIER)).await.status(),
        200
    );
    let body = assert_aad_error(
        redeem(&emu, &cid, &code, REDIRECT, Some(VERIFIER)).await,
        400,
        "invalid_grant",
        54005,
    )
    .await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("OAuth2 Authorization code was already redeemed")
    );
    // A code the emulator never issued.
    assert_aad_error(
        redeem(&emu, &cid, "1.AXYZ", REDIRECT, Some(VERIFIER)).await,
        400,
        "invalid_grant",
        9002313,
    )
    .await;
}

#[tokio::test]
async fn expired_codes_get_70008_and_plain_pkce_is_accepted() {
    let emu = start().await;
    let cid = app_id(&emu, "interactive");
    let mut browser = Browser::new(&emu);
    let plain = [
        ("redirect_uri", REDIRECT),
        ("code_challenge", VERIFIER),
        ("code_challenge_method", "plain"),
    ];
    let answer = sign_in_and_consent(&emu, &mut browser, &plain).await;
    let code = answer_fields(&answer, REDIRECT)["code"].clone();
    assert_eq!(emu.expire_authorization_codes(), 1);
    let body = assert_aad_error(
        redeem(&emu, &cid, &code, REDIRECT, Some(VERIFIER)).await,
        400,
        "invalid_grant",
        70008,
    )
    .await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("The provided authorization code or refresh token has expired")
    );
    // A fresh code with the plain challenge (single sign-on: no page).
    let answer = browser.get(&authorize_url(&emu, &cid, &plain)).await;
    let code = answer_fields(&answer, REDIRECT)["code"].clone();
    assert_eq!(
        redeem(&emu, &cid, &code, REDIRECT, Some(VERIFIER)).await.status(),
        200
    );
}

#[tokio::test]
async fn a_web_redirect_uri_makes_a_confidential_code() {
    let emu = start().await;
    let cid = app_id(&emu, "public-flows-disabled");
    let mut browser = Browser::new(&emu);
    let page = browser
        .get(&authorize_url(&emu, &cid, &[("redirect_uri", REDIRECT)]))
        .await;
    // Admin-consented: straight from the sign-in to the answer.
    let answer = browser.sign_in(&page, DEMO_USERNAME, DEMO_PASSWORD).await;
    let code = answer_fields(&answer, REDIRECT)["code"].clone();
    assert_aad_error(
        redeem(&emu, &cid, &code, REDIRECT, None).await,
        401,
        "invalid_client",
        7000218,
    )
    .await;
}

#[tokio::test]
async fn prompts_login_hint_and_the_sign_in_page_errors() {
    let emu = start().await;
    let cid = app_id(&emu, "interactive");
    let mut browser = Browser::new(&emu);
    let hinted = [
        ("redirect_uri", REDIRECT),
        ("login_hint", "Mallory\"<b>@x"),
        ("domain_hint", "contoso.com"),
    ];
    let page = browser.get(&authorize_url(&emu, &cid, &hinted)).await;
    page.assert_contains("value=\"Mallory&quot;&lt;b&gt;@x\"");
    let again = browser.sign_in(&page, DEMO_USERNAME, "wrong").await;
    again.assert_contains("Your account or password is incorrect");
    again.assert_contains(&format!("value=\"{DEMO_USERNAME}\""));
    let again = browser
        .sign_in(&again, "nobody@contoso.onmicrosoft.com", "x")
        .await;
    again.assert_contains("This username may be incorrect");
    let again = browser
        .sign_in(
            &again,
            "locked.user@contoso.onmicrosoft.com",
            &password_of(&emu, "locked.user@contoso.onmicrosoft.com"),
        )
        .await;
    again.assert_contains("AADSTS50053");
    // MFA: the emulated second factor, then consent.
    let verify = browser
        .sign_in(
            &again,
            "mfa.user@contoso.onmicrosoft.com",
            &password_of(&emu, "mfa.user@contoso.onmicrosoft.com"),
        )
        .await;
    verify.assert_contains("Verify your identity");
    let consent = browser.submit(&verify, &[]).await;
    consent.assert_contains("Permissions requested");
    let answer = browser.submit(&consent, &[("action", "accept")]).await;
    let code = answer_fields(&answer, REDIRECT)["code"].clone();
    let body: Value = redeem(&emu, &cid, &code, REDIRECT, None)
        .await
        .json()
        .await
        .unwrap();
    let (_, at) = decode_jwt(body["access_token"].as_str().unwrap());
    assert_eq!(at["amr"], serde_json::json!(["pwd", "mfa"]));

    // prompt=login shows the sign-in page although the browser is signed in; consent shows the consent page.
    let page = browser
        .get(&authorize_url(
            &emu,
            &cid,
            &[("redirect_uri", REDIRECT), ("prompt", "login")],
        ))
        .await;
    page.assert_contains("id=\"signin\"");
    let page = browser
        .get(&authorize_url(
            &emu,
            &cid,
            &[("redirect_uri", REDIRECT), ("prompt", "consent")],
        ))
        .await;
    page.assert_contains("Permissions requested");
    // A login_hint naming someone else than the signed-in user shows the sign-in page.
    let page = browser
        .get(&authorize_url(
            &emu,
            &cid,
            &[("redirect_uri", REDIRECT), ("login_hint", DEMO_USERNAME)],
        ))
        .await;
    page.assert_contains("id=\"signin\"");
    // prompt=none for the signed-in user who consented: a code without a page.
    let page = browser
        .get(&authorize_url(
            &emu,
            &cid,
            &[("redirect_uri", REDIRECT), ("prompt", "none")],
        ))
        .await;
    assert!(answer_fields(&page, REDIRECT).contains_key("code"));
}

fn password_of(emu: &Emulator, upn: &str) -> String {
    user(emu, upn).password
}

#[tokio::test]
async fn forged_posts_are_refused() {
    let emu = start().await;
    let cid = app_id(&emu, "interactive");
    let mut browser = Browser::new(&emu);
    let page = browser
        .get(&authorize_url(&emu, &cid, &[("redirect_uri", REDIRECT)]))
        .await;
    // Another browser (no cookie, or its own cookie) cannot post this request's form.
    let mut other = Browser::new(&emu);
    let answer = other
        .submit(&page, &[("username", DEMO_USERNAME), ("password", DEMO_PASSWORD)])
        .await;
    assert_eq!(answer.status, 403);
    let _ = other
        .get(&authorize_url(&emu, &cid, &[("redirect_uri", REDIRECT)]))
        .await;
    let (_, fields) = page.form();
    let own = other
        .get(&authorize_url(&emu, &cid, &[("redirect_uri", REDIRECT)]))
        .await;
    let answer = other
        .submit(
            &own,
            &[
                ("request", &fields["request"]),
                ("username", DEMO_USERNAME),
                ("password", DEMO_PASSWORD),
            ],
        )
        .await;
    assert_eq!(answer.status, 403);
    // From another origin.
    let (action, fields) = page.form();
    let resp = browser
        .http
        .post(format!("{}{action}", browser.base))
        .header("origin", "https://evil.example")
        .header("cookie", browser.cookie.clone().unwrap())
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    // Out of sequence: the consent step before signing in.
    let resp = browser
        .http
        .post(format!("{}{action}/consent", browser.base))
        .header("cookie", browser.cookie.clone().unwrap())
        .form(
            &[("action", "accept")]
                .into_iter()
                .chain(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .collect::<Vec<_>>(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn a_user_of_another_tenant_gets_aadsts50020() {
    let mut directory = Directory::seeded();
    let mut guest = User::new("Gus", "Guest", "gus", "fabrikam.onmicrosoft.com");
    guest.password = "Guest-Password-1!".into();
    directory.tenants.push(Tenant {
        id: "6b1d2c3e-4f50-4a61-8b72-93a4b5c6d7e8".into(),
        domains: vec!["fabrikam.onmicrosoft.com".into()],
        display_name: "Fabrikam".into(),
        apps: Vec::new(),
        users: vec![guest],
        federated_domains: Vec::new(),
    });
    let emu = Emulator::builder().directory(directory).start().await.unwrap();
    let cid = app_id(&emu, "interactive");
    let mut browser = Browser::new(&emu);
    let page = browser
        .get(&authorize_url(&emu, &cid, &[("redirect_uri", REDIRECT)]))
        .await;
    let answer = browser
        .sign_in(&page, "gus@fabrikam.onmicrosoft.com", "Guest-Password-1!")
        .await;
    assert_eq!(answer.status, 400);
    assert!(answer.location.is_none());
    answer.assert_contains(
        "AADSTS50020: User account &#39;gus@fabrikam.onmicrosoft.com&#39; from identity provider",
    );
    answer.assert_contains("does not exist in tenant &#39;Contoso&#39;");
    // On /organizations the same user signs in to the multi-tenant app, in their own tenant.
    let url =
        authorize_url(&emu, &cid, &[("redirect_uri", REDIRECT)]).replace(&emu.tenant_id(), "organizations");
    let page = browser.get(&url).await;
    let consent = browser
        .sign_in(&page, "gus@fabrikam.onmicrosoft.com", "Guest-Password-1!")
        .await;
    consent.assert_contains("Permissions requested");
}

#[test]
fn the_test_pkce_pair_is_s256() {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(VERIFIER.as_bytes());
    assert_eq!(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest),
        CHALLENGE
    );
}

#[tokio::test]
async fn graph_lists_the_redirect_uris_by_platform() {
    let emu = start().await;
    let http = client(&emu);
    let bearer = token(&emu, &http, "daemon").await;
    let get = |app: &str| {
        let url = format!("{}/applications(appId='{}')", emu.graph_base(), app_id(&emu, app));
        let req = http.get(url).bearer_auth(&bearer);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let interactive = get("interactive").await;
    assert_eq!(
        interactive["publicClient"]["redirectUris"],
        serde_json::json!(["http://localhost"])
    );
    assert_eq!(interactive["web"]["redirectUris"], serde_json::json!([]));
    let web = get("public-flows-disabled").await;
    assert_eq!(
        web["web"]["redirectUris"],
        serde_json::json!(["http://localhost"])
    );
    assert_eq!(web["publicClient"]["redirectUris"], serde_json::json!([]));
}
