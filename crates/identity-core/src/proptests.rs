//! Property tests over every server answer this crate parses: token answers, OAuth error answers (with any
//! status, HTTP 200 included), discovery documents, Graph error envelopes, and any JSON document. Arbitrary and
//! adversarial bodies (huge numbers as numbers, strings and floats, wrong JSON types per member, deep nesting,
//! HTML, empty, truncated) never panic, never quote a token in an error, and a token answer that parses always
//! gives a cache entry that serializes, reads back, and converts to a result.
//!
//! The device-code and user-realm answers are parsed inside the public client's flows: `tests/a1_proptests.rs`
//! sends them through those flows over HTTP.

use std::time::{Duration, UNIX_EPOCH};

use http::HeaderMap;
use proptest::prelude::*;
use reqwest::StatusCode;

use crate::authority::{Authority, Metadata};
use crate::cache::{CacheEntry, MAX_TOKEN_LIFETIME};
use crate::error::{Error, HttpError};
use crate::http::{Response, graph_error, identity_answer};
use crate::json::parse_json;
use crate::token::{TokenResult, TokenSource, parse_token_response};

const URL: &str = "https://login.example.com/contoso.onmicrosoft.com/oauth2/v2.0/token";
/// Put in string members: must never show in an error about a success answer.
const MARKER: &str = "SECRETMARKER";

/// The authority whose discovery documents the property tests parse.
fn authority() -> Authority {
    Authority::parse("https://login.example.com/contoso.onmicrosoft.com").unwrap()
}

const TOKEN_MEMBERS: &[&str] = &[
    "access_token",
    "token_type",
    "expires_in",
    "ext_expires_in",
    "refresh_in",
    "refresh_token",
    "scope",
    "id_token",
    "client_info",
    "foci",
];
const ERROR_MEMBERS: &[&str] = &[
    "error",
    "error_description",
    "error_codes",
    "timestamp",
    "trace_id",
    "correlation_id",
    "error_uri",
    "suberror",
    "claims",
];
const DISCOVERY_MEMBERS: &[&str] = &[
    "token_endpoint",
    "authorization_endpoint",
    "device_authorization_endpoint",
    "issuer",
    "jwks_uri",
];

/// A JSON value as text, adversarial: huge and negative numbers, numbers as strings, NaN text, wrong types,
/// nesting, odd strings.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1e30".to_string()),
        Just("-1e30".to_string()),
        Just("1000000000000000000000000000000".to_string()),
        Just("18446744073709551615".to_string()),
        Just("18446744073709551616".to_string()),
        Just("-1".to_string()),
        Just("0".to_string()),
        Just("3599".to_string()),
        Just("1.5e3".to_string()),
        Just("1e400".to_string()),
        Just("\"NaN\"".to_string()),
        Just("\"Infinity\"".to_string()),
        Just("\"99999999999999999999999\"".to_string()),
        Just("\"3599\"".to_string()),
        Just("\" 3599 \"".to_string()),
        Just("\"-5\"".to_string()),
        Just("\"Bearer\"".to_string()),
        Just("\"bearer\"".to_string()),
        Just(format!("\"{MARKER}\"")),
        Just("\"\"".to_string()),
        Just("null".to_string()),
        Just("true".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just(format!("[\"{MARKER}\",1,null]")),
        Just(format!("{{\"a\":\"{MARKER}\"}}")),
        Just("\"https://login.example.com/contoso.onmicrosoft.com/oauth2/v2.0/token\"".to_string()),
        Just("\"http://10.0.0.1/t/token\"".to_string()),
        Just("\"not a url\"".to_string()),
        Just("\"\\u0000\\n\\u001b[31m\"".to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
        any::<u64>().prop_map(|n| format!("\"{n}\"")),
        "[a-zA-Z0-9 ._-]{0,12}".prop_map(|s| serde_json::Value::String(s).to_string()),
        (1usize..300).prop_map(|depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth))),
    ]
}

/// A JSON object made of these members (some repeated), each with an adversarial value.
fn object(members: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec((prop::sample::select(members), value()), 0..8).prop_map(|pairs| {
        let body: Vec<String> = pairs
            .into_iter()
            .map(|(name, value)| format!("\"{name}\":{value}"))
            .collect();
        format!("{{{}}}", body.join(","))
    })
}

/// A valid token answer with adversarial lifetimes, the kind that must parse and be cached safely.
fn plausible_token_answer() -> impl Strategy<Value = String> {
    let lifetime = prop_oneof![
        Just(None),
        Just(Some("1e30".to_string())),
        Just(Some("18446744073709551615".to_string())),
        Just(Some("\"99999999999999999999999\"".to_string())),
        Just(Some("1.0e19".to_string())),
        any::<u64>().prop_map(|n| Some(n.to_string())),
        any::<u64>().prop_map(|n| Some(format!("\"{n}\""))),
        (0u64..100_000).prop_map(|n| Some(n.to_string())),
    ];
    (lifetime.clone(), lifetime.clone(), lifetime).prop_map(|(expires, ext, refresh)| {
        let mut body = format!("{{\"token_type\":\"Bearer\",\"access_token\":\"{MARKER}\"");
        for (name, value) in [
            ("expires_in", expires),
            ("ext_expires_in", ext),
            ("refresh_in", refresh),
        ] {
            if let Some(value) = value {
                body.push_str(&format!(",\"{name}\":{value}"));
            }
        }
        body.push('}');
        body
    })
}

/// Bodies that are not the expected JSON at all, or cut short.
fn broken(members: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        Just(b"   \r\n".to_vec()),
        Just(b"<html><head><title>Sign in to the WiFi</title></head></html>".to_vec()),
        Just(b"\xEF\xBB\xBF<!DOCTYPE html>".to_vec()),
        Just(b"null".to_vec()),
        (1usize..2000).prop_map(|depth| "{\"a\":".repeat(depth).into_bytes()),
        (1usize..2000).prop_map(|depth| "[".repeat(depth).into_bytes()),
        (object(members), any::<prop::sample::Index>()).prop_map(|(text, cut)| {
            let bytes = text.into_bytes();
            let at = cut.index(bytes.len().max(1));
            bytes[..at].to_vec()
        }),
        prop::collection::vec(any::<u8>(), 0..64),
    ]
}

fn body(members: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => object(members).prop_map(String::into_bytes),
        1 => broken(members),
    ]
}

fn now() -> u64 {
    crate::cache::now_secs()
}

/// What a client does with a parsed token answer, then what a later run does with the stored entry.
fn cache_and_read_back(body: &[u8]) -> Result<(), TestCaseError> {
    match parse_token_response(body, URL) {
        Ok(response) => {
            let now = now();
            let entry = response.into_cached_access_token(&["s/.default".into()], now);
            let max = MAX_TOKEN_LIFETIME.as_secs();
            prop_assert!(entry.expires_on >= now && entry.expires_on - now <= max);
            prop_assert!(entry.refresh_on.is_none_or(|r| r <= entry.expires_on));
            prop_assert!(entry.extended_expires_on.is_none_or(|e| e - now <= max));
            let stored = serde_json::to_string(&CacheEntry::AccessToken(entry))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let back: CacheEntry =
                serde_json::from_str(&stored).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let CacheEntry::AccessToken(back) = back else {
                return Err(TestCaseError::fail("not an access token entry"));
            };
            let result = TokenResult::from_cached(back, TokenSource::Cache, None);
            prop_assert!(result.expires_in() <= MAX_TOKEN_LIFETIME);
        }
        Err(e) => {
            let text = format!("{e} {e:?}");
            prop_assert!(!text.contains(MARKER), "a success answer was quoted: {text}");
            prop_assert!(e.fix().is_some());
        }
    }
    Ok(())
}

fn response(status: u16, body: Vec<u8>) -> Response {
    Response {
        url: URL.to_string(),
        status: StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        headers: HeaderMap::new(),
        body,
    }
}

/// Everything a caller reads from an error, as the sample reports do.
fn read_error(e: &Error) -> String {
    let fix = e.fix().unwrap_or_default();
    match e {
        Error::Service(s) => format!("{s} {:?} {} {fix}", s.code(), s.summary()),
        other => format!("{other} {fix}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn token_answers_never_panic_and_always_cache_safely(body in body(TOKEN_MEMBERS)) {
        cache_and_read_back(&body)?;
    }

    #[test]
    fn plausible_token_answers_with_any_lifetime_parse_and_cache(body in plausible_token_answer()) {
        prop_assert!(parse_token_response(body.as_bytes(), URL).is_ok(), "{body}");
        cache_and_read_back(body.as_bytes())?;
    }

    #[test]
    fn error_answers_with_any_status_never_panic(
        status in prop_oneof![Just(200u16), Just(400), Just(401), Just(429), Just(500), 100u16..600],
        body in prop_oneof![body(ERROR_MEMBERS), body(TOKEN_MEMBERS)],
    ) {
        match identity_answer(response(status, body.clone())) {
            Ok(returned) => {
                prop_assert!((200..300).contains(&status));
                prop_assert_eq!(returned, body);
            }
            Err(e) => {
                read_error(&e);
                if let Error::Service(s) = &e {
                    prop_assert!(!s.error.trim().is_empty());
                    prop_assert_eq!(s.status, status);
                }
            }
        }
    }

    #[test]
    fn graph_error_envelopes_never_panic(
        status in 400u16..600,
        inner in object(&["code", "message", "innerError", "innererror", "request-id", "date"]),
        wrap in any::<bool>(),
        broken in broken(&["error", "code"]),
    ) {
        let body = if wrap { format!("{{\"error\":{inner}}}").into_bytes() } else { broken };
        read_error(&graph_error(response(status, body)));
    }

    #[test]
    fn discovery_documents_never_panic(body in body(DISCOVERY_MEMBERS)) {
        if let Err(e) = Metadata::from_json(&authority(), &body) {
            prop_assert!(HttpError::fix(&e).is_some());
        }
    }

    #[test]
    fn any_json_answer_parses_or_is_named_without_its_content(body in body(TOKEN_MEMBERS)) {
        if let Err(e) = parse_json::<serde_json::Value>(&body, URL, "answer") {
            let HttpError::InvalidResponse { reason, .. } = &e else {
                return Err(TestCaseError::fail(format!("unexpected error {e:?}")));
            };
            prop_assert!(!reason.contains(MARKER), "{}", reason);
            prop_assert!(reason.chars().all(|c| !c.is_control()), "{}", reason);
        }
    }

    #[test]
    fn hostile_cache_entries_never_panic_and_absurd_ones_count_as_expired(
        expires_on in any::<u64>(),
        refresh_on in any::<Option<u64>>(),
        cached_at in any::<u64>(),
    ) {
        let json = serde_json::json!({
            "kind": "access_token", "access_token": "t", "token_type": "Bearer", "scopes": [],
            "cached_at": cached_at, "expires_on": expires_on, "refresh_on": refresh_on,
        });
        let entry: CacheEntry = serde_json::from_value(json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let CacheEntry::AccessToken(entry) = entry else {
            return Err(TestCaseError::fail("not an access token entry"));
        };
        let now = now();
        let usable = entry.is_usable(now);
        entry.is_fresh(now);
        if expires_on.saturating_sub(now) > MAX_TOKEN_LIFETIME.as_secs() {
            prop_assert!(!usable);
        }
        let result = TokenResult::from_cached(entry, TokenSource::Cache, None);
        result.expires_in();
        let representable = UNIX_EPOCH.checked_add(Duration::from_secs(expires_on));
        prop_assert_eq!(result.expires_on, representable.unwrap_or(UNIX_EPOCH));
    }
}
