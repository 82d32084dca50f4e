//! Small helpers shared by the modules: identifiers, time formats, encodings and an ordered JSON object.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::ser::{Serialize, SerializeMap, Serializer};
use sha1::{Digest as _, Sha1};
use time::OffsetDateTime;
use time::macros::format_description;

/// A fresh random GUID in its usual lower-case hyphenated form.
pub(crate) fn new_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A GUID derived from a name (SHA-1 based, version 5 layout), so seeded objects keep their ids.
pub(crate) fn stable_guid(kind: &str, name: &str) -> String {
    let digest = Sha1::digest(format!("entra-emulator/{kind}/{name}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes).into_uuid().to_string()
}

/// True for a GUID in any of the forms Entra accepts (hyphenated, optionally braced).
pub(crate) fn is_guid(s: &str) -> bool {
    let s = s.strip_prefix('{').and_then(|s| s.strip_suffix('}')).unwrap_or(s);
    s.len() == 36 && uuid::Uuid::parse_str(s).is_ok()
}

/// Case-insensitive GUID comparison that tolerates braces.
pub(crate) fn guid_eq(a: &str, b: &str) -> bool {
    match (
        uuid::Uuid::parse_str(a.trim_matches(['{', '}'])),
        uuid::Uuid::parse_str(b.trim_matches(['{', '}'])),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

pub(crate) fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

pub(crate) fn b64url_decode(data: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(data.trim_end_matches('=')).ok()
}

pub(crate) fn b64std(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// Upper-case hexadecimal, the form of certificate thumbprints in the portal and in AADSTS texts.
pub(crate) fn hex_upper(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02X}");
            s
        })
}

/// `yyyy-MM-ddTHH:mm:ss.fffffffZ` (seven fractional digits), the .NET round-trip format the STS uses for
/// instants inside AADSTS700024 texts.
pub(crate) fn dotnet_roundtrip(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:7]Z"
        ))
        .unwrap_or_default()
}

/// `MM/dd/yyyy HH:mm:ss`, how AADSTS700027 texts show a key's validity (`Found key 'Start=…, End=…'`).
pub(crate) fn us_datetime(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[month]/[day]/[year] [hour]:[minute]:[second]"
        ))
        .unwrap_or_default()
}

/// `yyyy-MM-dd HH:mm:ssZ`, the format of the identity platform's error timestamps.
pub(crate) fn aad_timestamp(t: OffsetDateTime) -> String {
    t.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second]Z"
    ))
    .unwrap_or_default()
}

/// `yyyy-MM-ddTHH:mm:ss`, the format of Graph's `innerError.date`.
pub(crate) fn graph_inner_date(t: OffsetDateTime) -> String {
    t.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]"
    ))
    .unwrap_or_default()
}

/// `yyyy-MM-ddTHH:mm:ssZ`, Graph's `DateTimeOffset` rendering.
pub(crate) fn graph_datetime(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap_or_default()
}

/// Percent-decodes a URL component; `+` is kept as is (path semantics). Invalid escapes are kept
/// literally; invalid UTF-8 is replaced.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Constant-time comparison of two secrets (length leaks, content does not).
pub(crate) fn secret_eq(a: &str, b: &str) -> bool {
    secret_eq_bytes(a.as_bytes(), b.as_bytes())
}

/// [`secret_eq`] on bytes.
pub(crate) fn secret_eq_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A JSON object that keeps its members in insertion order (serde_json's `Map` sorts them unless the
/// `preserve_order` feature is on, which we do not want to force on the whole workspace).
#[derive(Debug, Clone, Default)]
pub(crate) struct Ordered(pub Vec<(String, Node)>);

/// A member value of an [`Ordered`] object.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Value(serde_json::Value),
    Object(Ordered),
    Objects(Vec<Ordered>),
}

impl Ordered {
    pub(crate) fn new() -> Self {
        Self(Vec::new())
    }

    pub(crate) fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.push(key, value);
        self
    }

    pub(crate) fn push(&mut self, key: &str, value: impl Into<serde_json::Value>) {
        self.0.push((key.to_owned(), Node::Value(value.into())));
    }

    pub(crate) fn push_object(&mut self, key: &str, value: Ordered) {
        self.0.push((key.to_owned(), Node::Object(value)));
    }

    pub(crate) fn push_objects(&mut self, key: &str, values: Vec<Ordered>) {
        self.0.push((key.to_owned(), Node::Objects(values)));
    }

    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

impl Serialize for Ordered {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Value(v) => v.serialize(serializer),
            Node::Object(o) => o.serialize(serializer),
            Node::Objects(list) => list.serialize(serializer),
        }
    }
}

/// `len` random bytes, base64url (unpadded).
pub(crate) fn random_b64url(len: usize) -> String {
    use rand::RngCore as _;
    let mut bytes = vec![0u8; len];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    b64url(&bytes)
}

/// Random string from `alphabet`.
pub(crate) fn random_string(len: usize, alphabet: &[u8]) -> String {
    use rand::Rng as _;
    let mut rng = rand::rngs::OsRng;
    (0..len)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_guid_is_stable_and_valid() {
        let a = stable_guid("user", "AdeleV");
        assert_eq!(a, stable_guid("user", "AdeleV"));
        assert_ne!(a, stable_guid("user", "AlexW"));
        assert!(is_guid(&a));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(
            percent_decode("applications(appId=%27abc%27)"),
            "applications(appId='abc')"
        );
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("a+b"), "a+b");
    }

    #[test]
    fn formats() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("t")
            + time::Duration::nanoseconds(123_456_789);
        assert_eq!(dotnet_roundtrip(t), "2023-11-14T22:13:20.1234567Z");
        assert_eq!(us_datetime(t), "11/14/2023 22:13:20");
        assert_eq!(hex_upper(&[0x0a, 0xff]), "0AFF");
    }

    #[test]
    fn guid_checks() {
        assert!(is_guid("3f2c8a91-5b7e-4d06-9c1a-8e4b2d7f6a53"));
        assert!(is_guid("{3f2c8a91-5b7e-4d06-9c1a-8e4b2d7f6a53}"));
        assert!(!is_guid("3f2c8a915b7e4d069c1a8e4b2d7f6a53"));
        assert!(guid_eq(
            "3F2C8A91-5B7E-4D06-9C1A-8E4B2D7F6A53",
            "3f2c8a91-5b7e-4d06-9c1a-8e4b2d7f6a53"
        ));
    }
}
