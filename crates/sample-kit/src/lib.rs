//! Plumbing shared by the sample programs, so each sample's `main.rs` shows only the identity calls:
//!
//! - [`parse`]: loads `.env`, parses flags backed by environment variables, and sets up logging;
//! - [`CommonArgs::configure`]: turns the settings into a validated [`Config`], or starts the embedded
//!   emulator when nothing is configured, or refuses a partial configuration naming each missing variable;
//! - [`main`]: runs a sample and maps its error to a message on stderr and a distinct exit code;
//! - `certificate_helper`: makes a self-signed development certificate (PEM, PFX, thumbprints); with the
//!   `embedded-emulator` feature (on by default);
//! - the scenarios' credential settings: [`SecretArgs`], [`CertificateArgs`] (`daemon.rs`), [`DeviceCodeArgs`],
//!   [`UserPasswordArgs`] (`user.rs`) and [`WorkloadArgs`] (`workload.rs`, the federated token file).

// On docs.rs (`--cfg docsrs`, nightly), label each feature-gated item with its feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod args;
pub mod cache;
pub mod cache_tool;
#[cfg(feature = "embedded-emulator")]
#[cfg_attr(docsrs, doc(cfg(feature = "embedded-emulator")))]
pub mod certificate_helper;
mod config;
mod daemon;
mod error;
mod prompt;
mod report;
mod user;
mod workload;

pub use args::{CommonArgs, parse};
pub use config::{Config, CredentialArgs, Defaults};
pub use daemon::{CertificateArgs, SecretArgs};
pub use error::{Missing, SetupError};
pub use prompt::{Cancelled, wait_for_sign_in};
pub use report::{ExitCode, main, say_token_source};
pub use user::{DeviceCodeArgs, UserCredential, UserPasswordArgs, silent};
pub use workload::WorkloadArgs;
