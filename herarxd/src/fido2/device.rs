//! The device boundary: what a FIDO2 backend may do. Backends return RAW BYTES only
//! (authenticator data, signatures, attestation fields as the key sent them) and never a
//! verdict, so that no backend — not even a test double — can skip `verify.rs`.

use std::fmt;
use std::time::Instant;

use super::cose::Algorithm;

/// A FIDO HID device found on this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The hidraw path (what the backend opens).
    pub path: String,
    pub vendor_id: u16,
    pub product_id: u16,
    /// The product string the device reports (may be empty).
    pub product: String,
}

impl DeviceInfo {
    /// A device known only by its path (e.g. chosen by the caller, or a test device).
    pub fn from_path(path: &str) -> Self {
        Self {
            path: path.to_owned(),
            vendor_id: 0,
            product_id: 0,
            product: String::new(),
        }
    }
}

/// A credential id, as registered.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CredId(pub Vec<u8>);

/// User verification wanted from the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Uv {
    /// Touch only (UP): no PIN, no UV.
    Discouraged,
    /// PIN (when given) or the key's built-in UV.
    Required,
}

/// The makeCredential response, unverified.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawRegistration {
    /// Attestation format ("none", "packed", ...).
    pub fmt: String,
    pub auth_data: Vec<u8>,
    /// attStmt.alg, when present.
    pub att_alg: Option<i64>,
    /// attStmt.sig (empty when absent).
    pub att_sig: Vec<u8>,
    /// attStmt.x5c (empty when absent: self attestation or "none").
    pub att_x5c: Vec<Vec<u8>>,
}

/// The getAssertion response, unverified.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawAssertion {
    pub credential_id: Vec<u8>,
    pub auth_data: Vec<u8>,
    pub signature: Vec<u8>,
}

/// What went wrong at the device. Messages are meant for the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceError {
    /// No security key plugged in (or it went away).
    NotPresent,
    /// The deadline passed: the key was not touched in time.
    Timeout,
    /// Wrong PIN (CTAP 0x31).
    PinInvalid,
    /// The key needs a PIN for this (CTAP 0x36) or none was given.
    PinRequired,
    /// PIN not set on the key (CTAP 0x35).
    PinNotSet,
    /// Too many wrong PINs: blocked (0x32) or a power cycle is needed (0x34).
    PinBlocked,
    /// The key holds none of the allowed credentials for this rpId (CTAP 0x2E).
    NoCredentials,
    /// The key already holds a credential of the exclude list (CTAP 0x19).
    CredentialExcluded,
    /// The user declined or the key timed out waiting for a touch (CTAP 0x27 / 0x2F).
    Denied,
    /// The key does not support what was asked (algorithm, option).
    Unsupported(String),
    /// A previous call on this device is still waiting for it (after its deadline).
    Busy,
    /// The device library panicked; the call was contained.
    BackendPanicked,
    /// Any other device or protocol error, with the library's message.
    Other(String),
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotPresent => f.write_str("no security key found: plug in your key"),
            Self::Timeout => f.write_str("the security key was not touched in time"),
            Self::PinInvalid => f.write_str("wrong security key PIN"),
            Self::PinRequired => f.write_str("the security key needs its PIN"),
            Self::PinNotSet => f.write_str("the security key has no PIN set"),
            Self::PinBlocked => f.write_str("the security key PIN is blocked"),
            Self::NoCredentials => f.write_str("this security key is not registered here"),
            Self::CredentialExcluded => f.write_str("this security key is already registered"),
            Self::Denied => f.write_str("the security key refused or was not touched"),
            Self::Unsupported(what) => write!(f, "the security key does not support {what}"),
            Self::Busy => f.write_str("the security key is still busy with a previous request"),
            Self::BackendPanicked => f.write_str("internal error talking to the security key"),
            Self::Other(msg) => write!(f, "security key error: {msg}"),
        }
    }
}

impl std::error::Error for DeviceError {}

/// A FIDO2 device backend. Implementations must return by `deadline` (with
/// [`DeviceError::Timeout`] if the user did not act) and must not print to stdout.
pub trait Authenticator: Send + Sync {
    /// The FIDO devices plugged in now.
    fn list(&self) -> Vec<DeviceInfo>;

    /// makeCredential on `dev`. `algorithms` in order of preference.
    #[allow(clippy::too_many_arguments)]
    fn make_credential(
        &self,
        dev: &DeviceInfo,
        rp_id: &str,
        challenge: &[u8; 32],
        user_id: &[u8],
        exclude: &[CredId],
        algorithms: &[Algorithm],
        uv: Uv,
        pin: Option<&str>,
        deadline: Instant,
    ) -> Result<RawRegistration, DeviceError>;

    /// getAssertion on `dev` for one of `allow`.
    #[allow(clippy::too_many_arguments)]
    fn get_assertion(
        &self,
        dev: &DeviceInfo,
        rp_id: &str,
        challenge: &[u8; 32],
        allow: &[CredId],
        uv: Uv,
        pin: Option<&str>,
        deadline: Instant,
    ) -> Result<RawAssertion, DeviceError>;
}

/// Several keys plugged in: tries each device in turn (until `deadline`) and returns the first
/// assertion, skipping keys that hold none of the allowed credentials. The assertion still has
/// to be verified.
#[allow(clippy::too_many_arguments)]
pub fn get_assertion_any<A: Authenticator + ?Sized>(
    backend: &A,
    devices: &[DeviceInfo],
    rp_id: &str,
    challenge: &[u8; 32],
    allow: &[CredId],
    uv: Uv,
    pin: Option<&str>,
    deadline: Instant,
) -> Result<(DeviceInfo, RawAssertion), DeviceError> {
    let mut last = DeviceError::NotPresent;
    for dev in devices {
        match backend.get_assertion(dev, rp_id, challenge, allow, uv, pin, deadline) {
            Ok(a) => return Ok((dev.clone(), a)),
            Err(e @ (DeviceError::NoCredentials | DeviceError::NotPresent)) => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}
