//! HTTP routes. The identity platform: `discovery` (OpenID Connect documents, keys, instance and user realm
//! discovery) and `token`, the token endpoint, which serves client credentials itself and dispatches the user
//! flows to `device` (device code), `password` (username/password) and `refresh`, all three sharing
//! `user_flow`; `client_auth` authenticates clients and `request` parses forms and tenant segments for them
//! all. `graph` serves Microsoft Graph, `admin` the emulator's own `/_emulator/*` endpoints, `signin` the
//! device-code sign-in page and `admin_consent` the admin-consent page. The auth code flow: `authorize` (the
//! authorization endpoint), `authorize_answer` (its answers), `login` (its sign-in pages) and `auth_code` (the code grant at the
//! token endpoint).

pub(crate) mod admin;
pub(crate) mod admin_consent;
pub(crate) mod auth_code;
pub(crate) mod authorize;
pub(crate) mod authorize_answer;
pub(crate) mod client_auth;
pub(crate) mod device;
pub(crate) mod discovery;
pub(crate) mod graph;
pub(crate) mod login;
pub(crate) mod password;
pub(crate) mod refresh;
pub(crate) mod request;
pub(crate) mod signin;
pub(crate) mod token;
pub(crate) mod user_flow;
pub(crate) mod workload_issuer;
