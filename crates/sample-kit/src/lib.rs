//! Plumbing shared by the sample programs, so each sample's `main.rs` shows only the identity calls:
//!
//! - [`parse`]: loads `.env`, parses flags backed by environment variables, and sets up logging;
//! - [`CommonArgs::configure`]: turns the settings into a validated [`Config`], or starts the embedded
//!   emulator when nothing is configured, or refuses a partial configuration naming each missing variable;
//! - [`InteractiveArgs::options`] and [`until_ctrl_c`]: the interactive sample's browser sign-in (the page opened,
//!   its address printed) and Ctrl-C;
//! - [`main`]: runs a sample and maps its error to a message on stderr and a distinct exit code;
//! - `certificate_helper`: makes a self-signed development certificate (PEM, PFX, thumbprints); with the
//!   `embedded-emulator` feature (on by default).
//!
//! # Layout
//!
//! - `args.rs`: the flags shared by every sample and `.env` loading; `config.rs`: settings to a [`Config`] (or the
//!   embedded emulator); `error.rs`: setup errors; `report.rs`: the error report and exit codes.
//! - `daemon.rs` (secret, certificate), `user.rs` (device code, username/password), `interactive.rs` (the
//!   browser sign-in): each scenario's settings; `prompt.rs`: the device-code screen and Ctrl-C.
//! - `cache.rs`, `cache_tool.rs`: the token cache chosen by the settings, and the cache inspection tool;
//!   `certificate_helper.rs`: development certificates.

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
mod interactive;
mod prompt;
mod report;
mod user;

pub use args::{CommonArgs, parse};
pub use config::{Config, CredentialArgs, Defaults};
pub use daemon::{CertificateArgs, SecretArgs};
pub use error::{Missing, SetupError};
pub use interactive::{InteractiveArgs, until_ctrl_c};
pub use prompt::{Cancelled, wait_for_sign_in};
pub use report::{ExitCode, main, say_token_source};
pub use user::{DeviceCodeArgs, UserCredential, UserPasswordArgs, silent};
