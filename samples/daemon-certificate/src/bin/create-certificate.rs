//! Makes a self-signed development certificate for daemon-certificate: PEM, PFX and the file to upload.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    sample_kit::certificate_helper::create_certificate(
        sample_kit::certificate_helper::CreateCertificateArgs::parse(),
    )
}
