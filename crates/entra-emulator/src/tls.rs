//! TLS: a local certificate authority (ECDSA P-256, created once and kept in the state directory) and a
//! server certificate for `localhost`, `127.0.0.1` and `::1` signed by it at every start.

use std::net::IpAddr;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PublicKeyData as _, SanType,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest as _, Sha256};
use time::{Duration, OffsetDateTime};

use crate::state_dir::{CA_CERT, CA_KEY, Store};

/// What the server needs for TLS, plus the CA certificate clients must trust.
pub(crate) struct TlsMaterial {
    pub ca_pem: String,
    pub server_config: Arc<ServerConfig>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial").finish_non_exhaustive()
    }
}

/// Loads the CA from the store (or creates and saves it) and issues a fresh server certificate.
/// `extra_ips` are added to the certificate's subject alternative names.
pub(crate) fn load_or_create(store: &Store, extra_ips: &[IpAddr]) -> Result<TlsMaterial, String> {
    let (ca_key, ca_pem) = match (store.read(CA_KEY), store.read(CA_CERT)) {
        (Ok(Some(key_pem)), Ok(Some(cert_pem))) => {
            let key = KeyPair::from_pem(&key_pem)
                .map_err(|e| format!("{}: invalid CA key: {e}", store.path(CA_KEY).display()))?;
            (key, cert_pem)
        }
        (Ok(None), Ok(None)) => {
            let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| format!("CA key: {e}"))?;
            let cert = ca_params(&key, true)
                .self_signed(&key)
                .map_err(|e| format!("CA certificate: {e}"))?;
            let pem = cert.pem();
            if store.is_persistent() {
                store
                    .write_private(CA_KEY, &key.serialize_pem())
                    .map_err(|e| format!("{}: {e}", store.path(CA_KEY).display()))?;
            }
            (key, pem)
        }
        (Ok(_), Ok(_)) => {
            return Err(format!(
                "{} holds only one of {CA_CERT} and {CA_KEY}; remove the other or both",
                store.dir().display()
            ));
        }
        (Err(e), _) | (_, Err(e)) => return Err(format!("{}: {e}", store.dir().display())),
    };
    // Always (re)write the certificate so that the file clients are told to trust exists.
    store
        .write_public(CA_CERT, &ca_pem)
        .map_err(|e| format!("{}: {e}", store.path(CA_CERT).display()))?;

    let issuer = Issuer::new(ca_params(&ca_key, false), ca_key);
    let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| format!("server key: {e}"))?;
    let leaf = leaf_params(extra_ips)?
        .signed_by(&leaf_key, &issuer)
        .map_err(|e| format!("server certificate: {e}"))?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .map_err(|e| format!("TLS configuration: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsMaterial {
        ca_pem,
        server_config: Arc::new(config),
    })
}

/// The CA's parameters. The subject is derived from the key, so the same key always yields the same
/// issuer name (needed to keep issuing server certificates from a persisted CA key).
fn ca_params(key: &KeyPair, with_validity: bool) -> CertificateParams {
    let fingerprint = Sha256::digest(key.der_bytes());
    let suffix: String = fingerprint.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("Entra Emulator Local CA {suffix}"));
    dn.push(DnType::OrganizationName, "entra-emulator");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    if with_validity {
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(3650);
    }
    params
}

fn leaf_params(extra_ips: &[IpAddr]) -> Result<CertificateParams, String> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "localhost");
    params.distinguished_name = dn;
    let mut sans = vec![
        SanType::DnsName("localhost".try_into().map_err(|e| format!("SAN: {e}"))?),
        SanType::IpAddress(IpAddr::from([127, 0, 0, 1])),
        SanType::IpAddress(IpAddr::from(std::net::Ipv6Addr::LOCALHOST)),
    ];
    for ip in extra_ips {
        let san = SanType::IpAddress(*ip);
        if !sans.contains(&san) {
            sans.push(san);
        }
    }
    params.subject_alt_names = sans;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(365);
    Ok(params)
}
