//! Just enough X.509 for certificate credentials: a certificate's subject, validity and RSA public key.

use rsa::RsaPublicKey;
use rsa::pkcs8::DecodePublicKey as _;
use time::OffsetDateTime;

/// The parts of a certificate the emulator uses.
#[derive(Debug, Clone)]
pub(crate) struct ParsedCertificate {
    /// `CN=…` (RFC 4514 rendering), what the portal shows as the key credential's description.
    pub subject: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// DER of the SubjectPublicKeyInfo.
    pub spki_der: Vec<u8>,
}

/// Parses one DER certificate (nothing may follow it).
pub(crate) fn parse(der: &[u8]) -> Result<ParsedCertificate, String> {
    let (rest, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    if !rest.is_empty() {
        return Err("trailing data after the certificate".to_owned());
    }
    let validity = cert.validity();
    Ok(ParsedCertificate {
        subject: cert.subject().to_string(),
        not_before: validity.not_before.to_datetime(),
        not_after: validity.not_after.to_datetime(),
        spki_der: cert.public_key().raw.to_vec(),
    })
}

/// The RSA public key of a certificate (`None` for other key types).
pub(crate) fn rsa_public_key(der: &[u8]) -> Option<RsaPublicKey> {
    let parsed = parse(der).ok()?;
    RsaPublicKey::from_public_key_der(&parsed.spki_der).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certificates::DevCertificate;

    #[test]
    fn parses_a_dev_certificate() {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).expect("ns");
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("key");
        let cert = DevCertificate::from_key(
            key.clone(),
            "unit",
            now - time::Duration::days(1),
            now + time::Duration::days(1),
        )
        .expect("cert");
        let parsed = parse(cert.cert_der()).expect("parses");
        assert_eq!(parsed.subject, "CN=unit");
        assert_eq!(parsed.not_before, now - time::Duration::days(1));
        assert_eq!(parsed.not_after, now + time::Duration::days(1));
        assert_eq!(rsa_public_key(cert.cert_der()), Some(key.to_public_key()));
        assert!(parse(b"not DER").is_err());
        let mut trailing = cert.cert_der().to_vec();
        trailing.push(0);
        assert!(parse(&trailing).is_err());
    }
}
