//! `create-certificate`: makes a self-signed certificate for development, replacing the quickstart's three
//! `openssl` commands. Writes the key and certificate as PEM and as a PFX (owner-only permissions), and says
//! where to upload the certificate.
//!
//! Available with the `embedded-emulator` feature (on by default), whose certificate generator it shares.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use entra_emulator::certificates::{DevCertificate, PfxEncryption};

/// Creates a self-signed certificate for a daemon's app registration (development only; in production use a
/// certificate from your PKI or Azure Key Vault).
#[derive(Parser, Debug)]
#[command(version)]
pub struct CreateCertificateArgs {
    /// Directory to write into.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Base name of the files, and the certificate's common name (CN).
    #[arg(long, default_value = "daemon-certificate")]
    pub name: String,
    /// Validity in days.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub days: u32,
    /// Password of the PFX file (default: none).
    #[arg(
        long,
        env = "AZURE_CLIENT_CERTIFICATE_PASSWORD",
        hide_env_values = true,
        default_value = ""
    )]
    pub password: String,
    /// Replace existing files.
    #[arg(long)]
    pub force: bool,
}

/// Runs the helper and prints what was written.
pub fn create_certificate(args: CreateCertificateArgs) -> anyhow::Result<()> {
    let cert = DevCertificate::generate(&args.name, Duration::from_secs(u64::from(args.days) * 86400))?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let pem = args.out.join(format!("{}.pem", args.name));
    let cer = args.out.join(format!("{}.cer", args.name));
    let pfx = args.out.join(format!("{}.pfx", args.name));
    write_file(
        &pem,
        (cert.key_pem() + &cert.cert_pem()).as_bytes(),
        true,
        args.force,
    )?;
    write_file(&cer, cert.cert_pem().as_bytes(), false, args.force)?;
    write_file(
        &pfx,
        &cert.pfx(&args.password, PfxEncryption::Modern)?,
        true,
        args.force,
    )?;

    println!(
        "Created a self-signed certificate CN={} valid for {} days:",
        args.name, args.days
    );
    println!("  {}  private key + certificate (PEM, owner-only)", pem.display());
    println!(
        "  {}  the same as PKCS#12 (owner-only){}",
        pfx.display(),
        if args.password.is_empty() {
            ", no password"
        } else {
            ""
        }
    );
    println!("  {}  certificate only: upload this one", cer.display());
    println!("Thumbprint (SHA-1):   {}", cert.thumbprint_sha1());
    println!("Thumbprint (SHA-256): {}", cert.thumbprint_sha256());
    println!();
    println!(
        "Next: Entra admin center > App registrations > your app > Certificates & secrets > Certificates >"
    );
    println!(
        "Upload certificate > {}; check that the Thumbprint column shows the SHA-1 above. Then set",
        cer.display()
    );
    println!("  AZURE_CLIENT_CERTIFICATE_PATH={}", pem.display());
    Ok(())
}

fn write_file(path: &Path, contents: &[u8], private: bool, force: bool) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true)
    } else {
        options.create_new(true)
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    let mut file = options.open(path).with_context(|| {
        format!(
            "cannot write {} (it exists? pass --force to replace it)",
            path.display()
        )
    })?;
    // A replaced file keeps its old mode; tighten it explicitly.
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(contents)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
