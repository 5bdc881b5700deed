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
    /// The key has this few PIN retries left: herarxd sends it no PIN (the next wrong ones
    /// would block it for good).
    PinRetriesLow(u32),
    /// A PIN was given and several keys could be the one meant: herarxd sends a PIN to one key
    /// only, the one the user chose (by leaving it alone plugged in).
    SeveralKeys(usize),
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
            Self::PinRetriesLow(n) => write!(f, "the security key has only {n} PIN retries left"),
            Self::SeveralKeys(n) => write!(f, "{n} security keys could take the PIN"),
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

    /// A silent getAssertion (no touch, no PIN: `up=false`) over `allow`: whether `dev` holds
    /// one of those credentials for `rp_id`. Nothing secret is sent, and the user sees nothing.
    fn probe(
        &self,
        dev: &DeviceInfo,
        rp_id: &str,
        allow: &[CredId],
        deadline: Instant,
    ) -> Result<bool, DeviceError>;

    /// How many PIN retries `dev` has left (clientPIN getPinRetries).
    fn pin_retries(&self, dev: &DeviceInfo, deadline: Instant) -> Result<u32, DeviceError>;
}

/// Refuses a key whose PIN is close to blocking.
fn check_retries<A: Authenticator + ?Sized>(
    backend: &A,
    dev: &DeviceInfo,
    deadline: Instant,
) -> Result<(), DeviceError> {
    match backend.pin_retries(dev, deadline)? {
        n if n <= super::pin_attempts::RETRIES_FLOOR => Err(DeviceError::PinRetriesLow(n)),
        _ => Ok(()),
    }
}

/// The one key a PIN may go to in a login or step-up: the first that a silent probe shows to
/// hold one of `allow`, and only when it has retries to spare. A key holding none of them
/// (another user's) never sees the PIN: [`DeviceError::NoCredentials`].
pub fn pin_target<A: Authenticator + ?Sized>(
    backend: &A,
    devices: &[DeviceInfo],
    rp_id: &str,
    allow: &[CredId],
    deadline: Instant,
) -> Result<DeviceInfo, DeviceError> {
    if allow.is_empty() {
        return Err(DeviceError::NoCredentials);
    }
    for dev in devices {
        match backend.probe(dev, rp_id, allow, deadline) {
            Ok(true) => {
                check_retries(backend, dev, deadline)?;
                return Ok(dev.clone());
            }
            Ok(false) | Err(DeviceError::NotPresent | DeviceError::NoCredentials) => {}
            Err(e) => return Err(e),
        }
    }
    Err(DeviceError::NoCredentials)
}

/// The one key a PIN may go to at enrolment: the only plugged-in key that holds none of the
/// user's credentials (`exclude`, probed silently). With several such keys the user must
/// choose by unplugging the others ([`DeviceError::SeveralKeys`]): herarxd never tries a PIN
/// on one key after another.
pub fn enrol_pin_target<A: Authenticator + ?Sized>(
    backend: &A,
    devices: &[DeviceInfo],
    rp_id: &str,
    exclude: &[CredId],
    deadline: Instant,
) -> Result<DeviceInfo, DeviceError> {
    let mut candidates = Vec::new();
    for dev in devices {
        let holds = if exclude.is_empty() {
            Ok(false)
        } else {
            backend.probe(dev, rp_id, exclude, deadline)
        };
        match holds {
            Ok(false) | Err(DeviceError::NoCredentials) => candidates.push(dev),
            Ok(true) | Err(DeviceError::NotPresent) => {}
            Err(e) => return Err(e),
        }
    }
    match candidates.as_slice() {
        [] if devices.is_empty() => Err(DeviceError::NotPresent),
        [] => Err(DeviceError::CredentialExcluded),
        [only] => {
            check_retries(backend, only, deadline)?;
            Ok((*only).clone())
        }
        more => Err(DeviceError::SeveralKeys(more.len())),
    }
}

/// Several keys plugged in: tries each device in turn (until `deadline`) and returns the first
/// assertion, skipping keys that hold none of the allowed credentials. With a PIN, only the key
/// [`pin_target`] picks is asked (the others never see the PIN). The assertion still has to be
/// verified.
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
    if pin.is_some() {
        let dev = pin_target(backend, devices, rp_id, allow, deadline)?;
        let a = backend.get_assertion(&dev, rp_id, challenge, allow, uv, pin, deadline)?;
        return Ok((dev, a));
    }
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
