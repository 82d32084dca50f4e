//! Service Fabric: its token service is https with a certificate no public CA signs; the runtime publishes the
//! certificate's SHA-1 thumbprint in `IDENTITY_SERVER_THUMBPRINT`, and only that certificate is accepted (a
//! rustls verifier that pins it; the handshake signature is still checked, so the server must hold its key).

use std::sync::{Arc, Mutex};

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use super::error::ManagedIdentityError;
use super::identity::ManagedIdentitySource;
use super::identity::{ManagedIdentityId, TokenRequest};
use super::response::{Lifetime, TokenAnswer, parse_token};
use super::source::hex;
use super::sources::error_answer;
use super::transport::{base_builder, get, header};
use crate::secret::ClientSecret;

const SERVICE_FABRIC_API_VERSION: &str = "2019-07-01-preview";

/// Accepts exactly the certificate whose SHA-1 is pinned, and remembers a mismatch to report it.
#[derive(Debug)]
pub(crate) struct PinnedVerifier {
    thumbprint: [u8; 20],
    provider: Arc<CryptoProvider>,
    presented: Mutex<Option<[u8; 20]>>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, end_entity.as_ref());
        let mut presented = [0u8; 20];
        presented.copy_from_slice(digest.as_ref());
        // Thumbprints are public: no need for a constant-time comparison.
        if presented == self.thumbprint {
            Ok(ServerCertVerified::assertion())
        } else {
            *self.presented.lock().unwrap_or_else(|e| e.into_inner()) = Some(presented);
            Err(rustls::Error::General(
                "the server certificate is not the pinned one".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// An HTTP client that trusts only the pinned certificate, and its verifier (to report a mismatch).
pub(crate) fn pinned_client(thumbprint: [u8; 20]) -> Result<(reqwest::Client, Arc<PinnedVerifier>), String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(PinnedVerifier {
        thumbprint,
        provider: provider.clone(),
        presented: Mutex::new(None),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    let client = base_builder()
        .use_preconfigured_tls(config)
        .build()
        .map_err(|e| e.to_string())?;
    Ok((client, verifier))
}

pub(crate) async fn service_fabric(
    client: &reqwest::Client,
    verifier: &PinnedVerifier,
    url: &url::Url,
    secret: &ClientSecret,
    request: &TokenRequest<'_>,
) -> Result<TokenAnswer, ManagedIdentityError> {
    let source = ManagedIdentitySource::ServiceFabric;
    if !matches!(request.id, ManagedIdentityId::SystemAssigned) {
        // MSAL ignores the selector with a debug line; asking for one identity and silently getting another
        // is worse than a clear refusal.
        return Err(ManagedIdentityError::Unsupported {
            platform: source,
            reason: "the application's identity is chosen in the cluster's configuration, not per request"
                .into(),
        });
    }
    let query = [
        ("api-version", SERVICE_FABRIC_API_VERSION),
        ("resource", request.resource),
    ];
    let headers = [header("secret", secret.secret(), true)]
        .into_iter()
        .flatten()
        .collect();
    let mismatch = |_: &reqwest::Error| {
        verifier
            .presented
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .map(|presented| ManagedIdentityError::ThumbprintMismatch {
                expected: hex(&verifier.thumbprint),
                presented: hex(&presented),
            })
    };
    let reply = get(client, source, url, &query, headers, &mismatch).await?;
    if reply.status == 200 {
        return parse_token(source, &reply.body, request.now, Lifetime::ExpiresOn);
    }
    Err(error_answer(source, &reply, Some(secret.secret()), request.id))
}
