//! FIDO2 security keys: the daemon's own verification of registrations and assertions, and
//! the device boundary.
//!
//! - `authdata`: bounds-checked WebAuthn authenticator data parser.
//! - `cose`: COSE_Key → verifying key (ES256, EdDSA only).
//! - `challenge`: single-use challenges bound to (user, purpose) with a deadline.
//! - `verify`: registration and assertion verification (rpIdHash, UP, UV, signature, counter).
//! - `device`: the `Authenticator` trait (raw bytes only) and its error type.
//! - `pin_attempts`: the per-caller bound on PINs sent to keys.
//! - `ctap`: the production backend over ctap-hid-fido2, every call contained.

pub mod authdata;
pub mod challenge;
pub mod cose;
pub mod ctap;
pub mod device;
pub mod pin_attempts;
pub mod verify;

pub use authdata::{AuthData, AuthDataError, Flags};
pub use challenge::{Challenge, ChallengeError, Challenges, Purpose};
pub use cose::{Algorithm, BadSignature, CoseKeyError, PublicKey};
pub use ctap::CtapHid;
pub use device::{
    Authenticator, CredId, DeviceError, DeviceInfo, RawAssertion, RawRegistration, Uv,
    enrol_pin_target, get_assertion_any, pin_target,
};
pub use verify::{
    AssertionError, Credential, NewCounter, NewCredential, RegistrationError, rp_id_hash,
    signed_message, verify_assertion, verify_assertion_for_user, verify_registration,
};

#[cfg(test)]
mod pin_target_tests;
#[cfg(test)]
pub(crate) mod tests;
