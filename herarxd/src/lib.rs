//! herarxd: the Herarx daemon. Serves `org.herarx.Herarx1` (see `herarx-proto`): login
//! transactions for the PAM module and self-service factor management, over an encrypted
//! SQLite store.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Tests may unwrap and panic: a failing test is the point.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod admin;
pub mod alerts;
pub mod auth;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod delivery;
pub mod enrol_text;
pub mod fido2;
pub mod fido2_service;
pub mod keys;
pub mod local_session;
pub mod logger;
pub mod logind;
pub mod otpauth;
pub mod policy;
pub mod refusals;
pub mod reload;
pub mod seal;
pub mod selfservice;
pub mod selfservice_contacts;
pub mod sent_text;
pub mod service;
pub mod service_admin;
pub mod sessions;
pub mod signals;
pub mod ssh_info;
pub mod state;
pub mod store;
pub mod totp;
pub mod users;
