//! Makes a self-signed development certificate for daemon-certificate: PEM, PFX and the file to upload.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = sample_kit::certificate_helper::CreateCertificateArgs::parse();
    match sample_kit::certificate_helper::create_certificate(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` is the message and its causes on one line; returning the error from main would print its
            // Debug form, a backtrace included when RUST_BACKTRACE is set.
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
