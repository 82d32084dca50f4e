//! Helpers for the workspace's tests and benchmarks, kept out of the shipped crates' APIs.
//!
//! [`msal_python`] finds or provisions MSAL Python and locates our MSAL Python versions of the samples, for the
//! fidelity tests of `entra-emulator` and for `bench-harness`.

pub mod msal_python;
