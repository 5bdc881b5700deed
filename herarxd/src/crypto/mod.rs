//! The cryptography under the store: the master key, sealing at rest, TOTP and otpauth URIs.
//! Depends on nothing else in the daemon.

pub mod master_key;
pub mod otpauth;
pub mod seal;
pub mod totp;
