//! Identifiers and secrets: GUIDs (fresh, derived from a name, compared as Entra compares them), random values,
//! and the constant-time comparison of secrets.

use sha1::{Digest as _, Sha1};

use crate::formats::b64url;

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
