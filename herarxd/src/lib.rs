//! herarxd: the Herarx daemon. Serves `org.herarx.Herarx1` (see `herarx-proto`): login
//! transactions for the PAM module and self-service factor management, over an encrypted
//! SQLite store.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Tests may unwrap and panic: a failing test is the point.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub(crate) mod admin;
pub(crate) mod alerts;
pub(crate) mod bus;
pub mod config;
pub mod crypto;
pub mod daemon;
pub mod delivery;
pub(crate) mod factors;
pub mod fido2;
pub(crate) mod lock;
pub(crate) mod logger;
pub mod login;
pub(crate) mod selfservice;
pub mod state;
pub mod store;
pub(crate) mod users;
