//! Property tests over HTTP for the answers parsed inside the public client's flows: the device authorization
//! answer and the user realm answer. A local stand-in (plain http on 127.0.0.1) serves discovery and, for every
//! other request, the body of the current case; arbitrary and adversarial bodies must never panic, and an
//! answer carrying an OAuth `error` is a service error whatever its status.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop at the first failure"
)]

use std::sync::{Arc, Mutex, OnceLock};

use identity_core::{Authority, Error, Password, PublicClient};
use proptest::prelude::*;

mod common;
use common::{Reply, Stub, loopback_http, serve_identity};

const TENANT: &str = "contoso.onmicrosoft.com";

/// The answer for the next non-discovery request: status and body.
type Answer = Arc<Mutex<(u16, Vec<u8>)>>;

struct Stand {
    /// Held for a whole case: the two properties run on parallel test threads and share the answer.
    turn: Mutex<()>,
    runtime: tokio::runtime::Runtime,
    answer: Answer,
    client: PublicClient,
    /// Serves discovery and the current answer while the tests run.
    _stub: Stub,
}

/// One stand-in and one client for all cases (discovery is fetched once).
fn stand() -> &'static Stand {
    static STAND: OnceLock<Stand> = OnceLock::new();
    STAND.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let answer: Answer = Arc::new(Mutex::new((200, Vec::new())));
        let served = answer.clone();
        let stub = runtime.block_on(serve_identity(TENANT, move |request, _| {
            if request.path().ends_with("/oauth2/v2.0/token") {
                Reply::raw(400, r#"{"error":"invalid_grant","error_codes":[50126]}"#)
            } else {
                let (status, body) = served.lock().unwrap().clone();
                Reply::raw(status, body)
            }
        }));
        let base = stub.base();
        let client = PublicClient::builder(
            "public-app",
            Authority::parse(&format!("{base}/{TENANT}")).unwrap(),
        )
        .http_client(loopback_http(None))
        .build()
        .unwrap();
        Stand {
            turn: Mutex::new(()),
            runtime,
            answer,
            client,
            _stub: stub,
        }
    })
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1e30".to_string()),
        Just("-1".to_string()),
        Just("18446744073709551615".to_string()),
        Just("\"NaN\"".to_string()),
        Just("\"99999999999999999999999\"".to_string()),
        Just("900".to_string()),
        Just("\"5\"".to_string()),
        Just("null".to_string()),
        Just("true".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("\"\"".to_string()),
        Just("\"ABCD-EFGH\"".to_string()),
        Just("\"Managed\"".to_string()),
        Just("\"Federated\"".to_string()),
        Just("\"Unknown\"".to_string()),
        Just("\"https://microsoft.com/devicelogin\"".to_string()),
        Just("\"http://192.0.2.1/devicelogin\"".to_string()),
        Just("\"javascript:alert(1)\"".to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        "[a-zA-Z0-9 :/._-]{0,16}".prop_map(|s| serde_json::Value::String(s).to_string()),
        (1usize..200).prop_map(|d| format!("{}{}", "[".repeat(d), "]".repeat(d))),
    ]
}

fn object(members: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec((prop::sample::select(members), value()), 0..8).prop_map(|pairs| {
        let members: Vec<String> = pairs.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", members.join(","))
    })
}

fn body(members: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => object(members).prop_map(String::into_bytes),
        1 => (object(members), any::<prop::sample::Index>()).prop_map(|(text, cut)| {
            text.as_bytes()[..cut.index(text.len())].to_vec()
        }),
        1 => Just(b"<html><title>Portal</title></html>".to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..32),
    ]
}

const DEVICE_CODE_MEMBERS: &[&str] = &[
    "user_code",
    "device_code",
    "verification_uri",
    "verification_url",
    "expires_in",
    "interval",
    "message",
    "error",
    "error_description",
    "error_codes",
];
const USER_REALM_MEMBERS: &[&str] = &[
    "account_type",
    "domain_name",
    "federation_protocol",
    "cloud_instance_name",
    "error",
];

fn has_error_member(body: &[u8]) -> bool {
    matches!(
        serde_json::from_slice::<serde_json::Value>(body),
        Ok(serde_json::Value::Object(m))
            if m.get("error").and_then(|e| e.as_str()).is_some_and(|e| !e.trim().is_empty())
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn device_code_answers_never_panic(
        status in prop_oneof![3 => Just(200u16), 1 => Just(400u16)],
        body in body(DEVICE_CODE_MEMBERS),
    ) {
        let stand = stand();
        let _turn = stand.turn.lock().unwrap_or_else(|e| e.into_inner());
        *stand.answer.lock().unwrap() = (status, body.clone());
        let outcome = stand.runtime.block_on(stand.client.initiate_device_flow(&["User.Read"]));
        match outcome {
            Ok(flow) => {
                prop_assert_eq!(status, 200);
                prop_assert!(!has_error_member(&body));
                prop_assert!(!flow.user_code.trim().is_empty());
                prop_assert!(!flow.message.is_empty());
            }
            Err(e) => {
                let _ = (e.to_string(), e.fix());
                if has_error_member(&body) {
                    prop_assert!(matches!(e, Error::Service(ref s) if s.status == status), "{:?}", e);
                }
            }
        }
    }

    #[test]
    fn user_realm_answers_never_panic(
        status in prop_oneof![3 => Just(200u16), 1 => Just(404u16), 1 => Just(400u16)],
        body in body(USER_REALM_MEMBERS),
    ) {
        let stand = stand();
        let _turn = stand.turn.lock().unwrap_or_else(|e| e.into_inner());
        *stand.answer.lock().unwrap() = (status, body.clone());
        let password = Password::new("not-the-password");
        let outcome = stand.runtime.block_on(stand.client.acquire_token_by_username_password(
            "user@contoso.onmicrosoft.com",
            &password,
            &["User.Read"],
        ));
        // The token endpoint always refuses: no case can sign in.
        let e = outcome.expect_err("the stand-in never issues a token");
        let text = format!("{e} {:?}", e.fix());
        prop_assert!(!text.contains("not-the-password"), "{}", text);
    }
}
