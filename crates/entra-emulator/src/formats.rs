//! Wire formats: base64, hexadecimal, percent-decoding, the services' date formats, and a JSON object that keeps
//! its members in order.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::ser::{Serialize, SerializeMap, Serializer};
use time::OffsetDateTime;
use time::macros::format_description;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
