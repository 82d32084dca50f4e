//! Helpers for the workspace's tests and benchmarks, kept out of the shipped crates' APIs.
//!
//! [`msal_python`] finds or provisions MSAL Python and locates our MSAL Python versions of the samples, for the
//! fidelity tests of `entra-emulator` and for `bench-harness`. [`webdriver`] drives headless Chromium over WebDriver
//! for the tests that sign in on a page like a person.
//!
//! # Layout
//!
//! - `msal_python`: MSAL Python in a venv, and our MSAL Python versions of the samples.
//! - `webdriver`: Chromium and chromedriver found (or installed), a WebDriver session, the emulator's key pinned.

pub mod msal_python;
pub mod webdriver;
