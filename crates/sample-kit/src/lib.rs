//! Plumbing shared by the sample programs, so each sample's `main.rs` shows only the identity calls:
//!
//! - [`parse`]: loads `.env`, parses flags backed by environment variables, and sets up logging;
//! - [`CommonArgs::configure`]: turns the settings into a validated [`Config`], or starts the embedded
//!   emulator when nothing is configured, or refuses a partial configuration naming each missing variable;
//! - [`InteractiveArgs::options`] and [`until_ctrl_c`]: the interactive sample's browser sign-in (the page opened,
//!   its address printed) and Ctrl-C;
//! - [`ManagedIdentityArgs::configure`]: the managed-identity sample's settings (which identity; this host's
//!   endpoint or the embedded emulator playing IMDS);
//! - [`main`]: runs a sample and maps its error to a message on stderr and a distinct exit code;
//! - `certificate_helper`: makes a self-signed development certificate (PEM, PFX, thumbprints); with the
//!   `embedded-emulator` feature (on by default).
//!
//! # Layout
//!
//! - `args`: the flags, each backed by its environment variable: [`CommonArgs`] (the identity platform's, for
//!   every sample but managed identity) and [`RunArgs`] (request, network, token cache, output: every sample's);
//!   `.env` loading, logging.
//! - `config`: from settings to a validated [`Config`] (a tenant, or the embedded emulator), [`CredentialArgs`].
//! - `daemon`: the daemon samples' settings ([`SecretArgs`], [`CertificateArgs`]).
//! - `workload`: the workload-identity sample's settings ([`WorkloadArgs`], the federated token file).
//! - `user`: the user-flow samples' settings ([`DeviceCodeArgs`], [`UserPasswordArgs`]) and [`silent`] sign-in.
//! - `cache`: which token cache a sample uses (`IDENTITY_CACHE`) and where its file lives.
//! - `cache_tool`: the `token-cache list | clear` tool (`src/bin/token-cache.rs` is its entry point).
//! - `certificate_helper`: the `create-certificate` development certificate (feature `embedded-emulator`).
//! - `interactive`: the interactive sample's settings ([`InteractiveArgs`]), the browser opener, [`until_ctrl_c`].
//! - `prompt`: the device-code prompt (the code, a QR code of the page, the wait).
//! - `error`: [`SetupError`], why a sample cannot start, naming the sample's variables.
//! - `report`: how a sample ends: [`main`], the error report with the fix, and the [`ExitCode`]s.

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
mod managed_identity;
mod prompt;
mod report;
mod user;
mod workload;

pub use args::{CommonArgs, RunArgs, parse};
pub use config::{Config, CredentialArgs, Defaults};
pub use daemon::{CertificateArgs, SecretArgs};
pub use error::{Missing, SetupError};
pub use interactive::{InteractiveArgs, until_ctrl_c};
pub use managed_identity::{ManagedIdentityArgs, ManagedIdentityConfig};
pub use prompt::{Cancelled, wait_for_sign_in};
pub use report::{ExitCode, main, print_graph_result, say_token_source};
pub use user::{DeviceCodeArgs, UserCredential, UserPasswordArgs, silent};
pub use workload::WorkloadArgs;
