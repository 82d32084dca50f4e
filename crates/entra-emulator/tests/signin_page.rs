//! The device-code sign-in page driven with plain HTTPS form posts and a cookie jar: the steps, escaping of
//! user input, anti-forgery (cookie + hidden field, Origin) and what flagged users see.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

mod common;

use std::time::Duration;

use common::*;
use entra_emulator::{DEMO_PASSWORD, DEMO_USERNAME, DeviceCodeStatus, Emulator};
use serde_json::Value;

const COOKIE: &str = "__Host-emulator-devicelogin";

/// A minimal browser: one cookie, form posts with the page's anti-forgery token.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
    token: Option<String>,
}

struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    html: String,
}

fn hidden_token(html: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker)? + marker.len();
    Some(html[start..start + html[start..].find('"')?].to_owned())
}

impl Browser {
    fn new(emu: &Emulator) -> Self {
        Self {
            http: client(emu),
            base: emu.https_url(),
            cookie: None,
            token: None,
        }
    }

    async fn take(&mut self, resp: reqwest::Response) -> Page {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        if let Some(set) = headers.get("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            self.cookie = Some(pair.trim().to_owned());
        }
        let html = resp.text().await.unwrap();
        if let Some(token) = hidden_token(&html) {
            self.token = Some(token);
        }
        Page {
            status,
            headers,
            html,
        }
    }

    async fn open(&mut self) -> Page {
        let mut req = self.http.get(format!("{}/devicelogin", self.base));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.unwrap();
        self.take(resp).await
    }

    /// Posts like a browser on the page would: cookie, token, same Origin.
    async fn submit(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        let token = self.token.clone().unwrap_or_default();
        form.push(("csrf_token", &token));
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("origin", &self.base)
            .form(&form);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.unwrap();
        self.take(resp).await
    }
}

async fn device_code_for(emu: &Emulator) -> (String, String) {
    new_device_code(emu, &client(emu)).await
}

async fn poll_once(emu: &Emulator, device_code: &str) -> reqwest::Response {
    poll(
        emu,
        &client(emu),
        &emu.tenant_id(),
        &app_id(emu, "device-code"),
        device_code,
    )
    .await
}

#[tokio::test]
async fn the_page_sets_a_strict_cookie_and_safe_headers() {
    let emu = start().await;
    let mut b = Browser::new(&emu);
    let page = b.open().await;
    assert_eq!(page.status, 200);
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    let set = page.headers["set-cookie"].to_str().unwrap();
    assert!(set.starts_with(&format!("{COOKIE}=")), "{set}");
    for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(set.contains(attribute), "{attribute} in {set}");
    }
    let cookie_value = b.cookie.clone().unwrap().split_once('=').unwrap().1.to_owned();
    assert_eq!(
        b.token.as_deref(),
        Some(cookie_value.as_str()),
        "the hidden field repeats the cookie"
    );
    assert!(cookie_value.len() >= 43);
    assert_eq!(page.headers["x-frame-options"], "DENY");
    // `same-origin`, not `no-referrer`: with the latter browsers post `Origin: null`.
    assert_eq!(page.headers["referrer-policy"], "same-origin");
    assert!(
        page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("form-action 'self'")
    );
    assert_eq!(page.headers["cache-control"], "no-store");
    assert!(
        page.html
            .contains("<form method=\"post\" action=\"/devicelogin\">")
    );
    assert!(!page.html.contains("<script"), "no JavaScript");
    // A second visit keeps the session.
    let again = b.open().await;
    assert!(again.headers.get("set-cookie").is_none());
    assert_eq!(b.token.as_deref(), Some(cookie_value.as_str()));
}

#[tokio::test]
async fn posts_without_the_anti_forgery_token_or_from_elsewhere_are_refused() {
    let emu = start().await;
    let (_, user_code) = device_code_for(&emu).await;
    let mut b = Browser::new(&emu);
    b.open().await;
    let http = client(&emu);
    let url = format!("{}/devicelogin", emu.https_url());
    let cookie = b.cookie.clone().unwrap();
    let token = b.token.clone().unwrap();
    let otc = user_code.as_str();
    // Nothing at all; cookie without field; field without cookie; mismatch; unknown session.
    type Attempt<'a> = (Option<String>, Vec<(&'a str, &'a str)>);
    let attempts: Vec<Attempt<'_>> = vec![
        (None, vec![("otc", otc)]),
        (Some(cookie.clone()), vec![("otc", otc)]),
        (None, vec![("otc", otc), ("csrf_token", token.as_str())]),
        (
            Some(cookie.clone()),
            vec![
                ("otc", otc),
                ("csrf_token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            ],
        ),
        (
            Some(format!("{COOKIE}=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")),
            vec![
                ("otc", otc),
                ("csrf_token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            ],
        ),
    ];
    for (cookie, form) in attempts {
        let mut req = http.post(&url).form(&form);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 403);
        assert!(
            resp.text()
                .await
                .unwrap()
                .contains("did not come from the sign-in page")
        );
    }
    // The right cookie and token, but from another origin.
    let resp = http
        .post(&url)
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .form(&[("otc", otc), ("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    // Out of sequence: consent before signing in.
    let page = b.submit("/devicelogin/consent", &[("action", "accept")]).await;
    assert_eq!(page.status, 403);
    // And the real thing works.
    let page = b.submit("/devicelogin", &[("otc", otc)]).await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("Sign in"));
    assert_eq!(emu.device_codes()[0].status, DeviceCodeStatus::Pending);
}

#[tokio::test]
async fn user_input_is_escaped() {
    let emu = start().await;
    let mut b = Browser::new(&emu);
    b.open().await;
    let page = b
        .submit("/devicelogin", &[("otc", "<script>alert(1)</script>\"'&")])
        .await;
    assert_eq!(page.status, 200);
    assert!(!page.html.contains("<script>"), "{}", page.html);
    assert!(
        page.html
            .contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"),
        "{}",
        page.html
    );
    assert!(page.html.contains("We don&#39;t recognize the code"));

    let (_, user_code) = device_code_for(&emu).await;
    b.submit("/devicelogin", &[("otc", &user_code)]).await;
    let page = b
        .submit(
            "/devicelogin/signin",
            &[("username", "\"><img src=x onerror=alert(1)>"), ("password", "x")],
        )
        .await;
    assert!(!page.html.contains("<img"), "{}", page.html);
    assert!(page.html.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
}

#[tokio::test]
async fn the_full_flow_signs_in_consents_and_the_poller_gets_tokens() {
    let emu = start().await;
    let (device_code, user_code) = device_code_for(&emu).await;
    let resp = poll_once(&emu, &device_code).await;
    assert_aad_error(resp, 400, "authorization_pending", 70016).await;

    let mut b = Browser::new(&emu);
    let page = b.open().await;
    assert!(page.html.contains("Enter code"));
    // Typed in lower case with a dash, as people do.
    let typed = format!("{}-{}", &user_code[..4], user_code[4..].to_lowercase());
    let page = b.submit("/devicelogin", &[("otc", &typed)]).await;
    assert!(
        page.html.contains("Contoso device code sample"),
        "the app is named"
    );
    assert!(page.html.contains("id=\"password\""));

    let page = b
        .submit(
            "/devicelogin/signin",
            &[("username", DEMO_USERNAME), ("password", "wrong")],
        )
        .await;
    assert!(
        page.html.contains("Your account or password is incorrect"),
        "{}",
        page.html
    );
    assert!(
        page.html.contains(&format!("value=\"{DEMO_USERNAME}\"")),
        "the name is kept"
    );
    assert_eq!(emu.device_codes()[0].status, DeviceCodeStatus::Pending);

    let page = b
        .submit(
            "/devicelogin/signin",
            &[("username", DEMO_USERNAME), ("password", DEMO_PASSWORD)],
        )
        .await;
    assert!(page.html.contains("Permissions requested"), "{}", page.html);
    assert!(page.html.contains("Contoso device code sample"));
    assert!(page.html.contains("Sign you in and read your profile"));
    assert!(
        page.html
            .contains("Maintain access to data you have given it access to")
    );
    assert!(page.html.contains("id=\"accept\"") && page.html.contains("id=\"decline\""));

    let page = b.submit("/devicelogin/consent", &[("action", "accept")]).await;
    assert!(
        page.html.contains("You may now close this window."),
        "{}",
        page.html
    );
    assert_eq!(emu.device_codes()[0].status, DeviceCodeStatus::Approved);
    let resp = poll_once(&emu, &device_code).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_user_tokens(
        &body,
        &emu,
        &app_id(&emu, "device-code"),
        &user(&emu, DEMO_USERNAME),
    );

    // The code cannot be used again on the page.
    b.open().await;
    let page = b.submit("/devicelogin", &[("otc", &user_code)]).await;
    assert!(page.html.contains("has already been used"), "{}", page.html);
}

#[tokio::test]
async fn declining_tells_the_poller() {
    let emu = start().await;
    let (device_code, user_code) = device_code_for(&emu).await;
    let mut b = Browser::new(&emu);
    b.open().await;
    b.submit("/devicelogin", &[("otc", &user_code)]).await;
    b.submit(
        "/devicelogin/signin",
        &[("username", DEMO_USERNAME), ("password", DEMO_PASSWORD)],
    )
    .await;
    let page = b.submit("/devicelogin/consent", &[("action", "decline")]).await;
    assert!(page.html.contains("You declined"), "{}", page.html);
    let resp = poll_once(&emu, &device_code).await;
    assert_aad_error(resp, 400, "authorization_declined", 65004).await;
}

#[tokio::test]
async fn mfa_users_verify_and_get_mfa_in_amr() {
    let emu = start().await;
    let (device_code, user_code) = device_code_for(&emu).await;
    let mfa = user(&emu, "mfa.user@contoso.onmicrosoft.com");
    let mut b = Browser::new(&emu);
    b.open().await;
    b.submit("/devicelogin", &[("otc", &user_code)]).await;
    let page = b
        .submit(
            "/devicelogin/signin",
            &[
                ("username", &mfa.user_principal_name),
                ("password", &mfa.password),
            ],
        )
        .await;
    assert!(page.html.contains("Verify your identity"), "{}", page.html);
    let page = b.submit("/devicelogin/verify", &[]).await;
    assert!(page.html.contains("Permissions requested"));
    b.submit("/devicelogin/consent", &[("action", "accept")]).await;
    let body: Value = poll_once(&emu, &device_code).await.json().await.unwrap();
    let (_, at) = decode_jwt(body["access_token"].as_str().unwrap());
    assert_eq!(at["amr"], serde_json::json!(["pwd", "mfa"]));
    assert_eq!(at["upn"], mfa.user_principal_name.as_str());
}

#[tokio::test]
async fn flagged_and_unknown_users_get_their_message() {
    let emu = start().await;
    let (_, user_code) = device_code_for(&emu).await;
    let mut b = Browser::new(&emu);
    b.open().await;
    b.submit("/devicelogin", &[("otc", &user_code)]).await;
    let cases = [
        ("locked.user@contoso.onmicrosoft.com", "AADSTS50053"),
        ("disabled.user@contoso.onmicrosoft.com", "AADSTS50057"),
        ("expired.password@contoso.onmicrosoft.com", "AADSTS50055"),
        ("ca.blocked@contoso.onmicrosoft.com", "AADSTS53003"),
        ("federated.user@fabrikam.com", "federated"),
        ("nobody@contoso.onmicrosoft.com", "This username may be incorrect"),
    ];
    for (upn, message) in cases {
        let password = emu.directory().tenants[0]
            .user(upn)
            .map(|u| u.password.clone())
            .unwrap_or_default();
        let page = b
            .submit(
                "/devicelogin/signin",
                &[("username", upn), ("password", &password)],
            )
            .await;
        assert_eq!(page.status, 200);
        assert!(page.html.contains(message), "{upn}: {}", page.html);
        assert!(page.html.contains("id=\"password\""), "they may try again");
    }
    assert_eq!(emu.device_codes()[0].status, DeviceCodeStatus::Pending);
}

#[tokio::test]
async fn consenting_on_the_page_lets_a_no_consent_user_in_afterwards() {
    let emu = start().await;
    let nc = user(&emu, "no.consent@contoso.onmicrosoft.com");
    let http = client(&emu);
    let ropc_cid = app_id(&emu, "device-code");
    let resp = ropc(
        &emu,
        &http,
        &emu.tenant_id(),
        &ropc_cid,
        &nc.user_principal_name,
        &nc.password,
        USER_SCOPES,
    )
    .await;
    assert_aad_error(resp, 400, "invalid_grant", 65001).await;
    let (device_code, user_code) = device_code_for(&emu).await;
    let mut b = Browser::new(&emu);
    b.open().await;
    b.submit("/devicelogin", &[("otc", &user_code)]).await;
    b.submit(
        "/devicelogin/signin",
        &[("username", &nc.user_principal_name), ("password", &nc.password)],
    )
    .await;
    b.submit("/devicelogin/consent", &[("action", "accept")]).await;
    assert_eq!(poll_once(&emu, &device_code).await.status(), 200);
    let resp = ropc(
        &emu,
        &http,
        &emu.tenant_id(),
        &ropc_cid,
        &nc.user_principal_name,
        &nc.password,
        USER_SCOPES,
    )
    .await;
    assert_eq!(resp.status(), 200, "consented now");
}

#[tokio::test]
async fn expired_codes_are_reported_on_the_page() {
    let emu = Emulator::builder()
        .device_code_lifetime(Duration::ZERO)
        .start()
        .await
        .unwrap();
    let (_, user_code) = device_code_for(&emu).await;
    let mut b = Browser::new(&emu);
    b.open().await;
    let page = b.submit("/devicelogin", &[("otc", &user_code)]).await;
    assert!(page.html.contains("has expired"), "{}", page.html);
    assert!(page.html.contains("id=\"otc\""));
}
