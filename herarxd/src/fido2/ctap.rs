//! The production FIDO2 backend over ctap-hid-fido2 (hidapi hidraw).
//!
//! Every device call is contained: it runs on its own worker thread inside
//! `std::panic::catch_unwind` (ctap-hid-fido2 indexes and `expect`s on device input), and the
//! caller waits at most until its deadline, then gets [`DeviceError::Timeout`]. A worker that
//! outlives its deadline is left to finish on its own (a real key gives up waiting for a touch
//! after ~30 s and answers with an error; an unplugged key makes the read fail); meanwhile the
//! device is marked busy so that no second CTAPHID transaction is started on it.
//!
//! Output: ctap-hid-fido2 prints "- Touch the sensor..." on keep-alive, to stdout by default.
//! [`quiet_cfg`] turns that (and its debug log) off. It still has a few unconditional
//! `println!`s on unusual responses (an unknown makeCredential extension or response key),
//! which the requests made here do not trigger.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ctap_hid_fido2::fidokey::get_assertion::get_assertion_params::Assertion;
use ctap_hid_fido2::fidokey::make_credential::Attestation;
use ctap_hid_fido2::fidokey::{
    CredentialSupportedKeyType, GetAssertionArgsBuilder, MakeCredentialArgsBuilder,
};
use ctap_hid_fido2::public_key_credential_user_entity::PublicKeyCredentialUserEntity;
use ctap_hid_fido2::{FidoKeyHid, HidParam, LibCfg};

use super::cose::Algorithm;
use super::device::{
    Authenticator, CredId, DeviceError, DeviceInfo, RawAssertion, RawRegistration, Uv,
};

/// The ctap-hid-fido2 configuration Herarx uses: no keep-alive message, no debug log.
pub fn quiet_cfg() -> LibCfg {
    LibCfg {
        enable_log: false,
        enable_keep_alive_msg: false,
        keep_alive_msg: String::new(),
        keep_alive_msg_to_stderr: true,
        ..LibCfg::init()
    }
}

/// The hidapi/ctap-hid-fido2 backend.
#[derive(Clone, Debug, Default)]
pub struct CtapHid {
    busy: Arc<Mutex<HashSet<String>>>,
}

/// Removes a device from the busy set when its worker ends (even by panic).
struct BusyGuard {
    busy: Arc<Mutex<HashSet<String>>>,
    path: String,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.busy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.path);
    }
}

impl CtapHid {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `job` against the device at `path` on a worker thread, until `deadline`.
    fn contained<T, F>(&self, path: &str, deadline: Instant, job: F) -> Result<T, DeviceError>
    where
        T: Send + 'static,
        F: FnOnce(&FidoKeyHid) -> Result<T, DeviceError> + Send + 'static,
    {
        if !self
            .busy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_owned())
        {
            return Err(DeviceError::Busy);
        }
        let guard = BusyGuard {
            busy: Arc::clone(&self.busy),
            path: path.to_owned(),
        };
        let path = path.to_owned();
        let (tx, rx) = sync_channel(1);
        let worker = move || {
            let result = catch_unwind(AssertUnwindSafe(|| {
                let key = FidoKeyHid::new(&[HidParam::Path(path)], &quiet_cfg())
                    .map_err(|_| DeviceError::NotPresent)?;
                job(&key)
                // `key` (the open device) is closed here, before the device is marked free.
            }))
            .unwrap_or(Err(DeviceError::BackendPanicked));
            // Free the device before answering, so that the caller's next call finds it free.
            drop(guard);
            // The caller may have given up (deadline): then nobody listens, and that is fine.
            let _ = tx.send(result);
        };
        std::thread::Builder::new()
            .name("herarx-fido2".into())
            .spawn(worker)
            .map_err(|e| DeviceError::Other(format!("cannot start device thread: {e}")))?;
        let wait = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => Err(DeviceError::Timeout),
            Err(RecvTimeoutError::Disconnected) => Err(DeviceError::BackendPanicked),
        }
    }
}

/// Maps a ctap-hid-fido2 error message (its `anyhow` error carrying the CTAP status byte as
/// "err = 0xNN ...") to a [`DeviceError`].
pub fn map_error(msg: &str) -> DeviceError {
    match ctap_status(msg) {
        Some(0x31) => DeviceError::PinInvalid,
        Some(0x36) => DeviceError::PinRequired,
        Some(0x35) => DeviceError::PinNotSet,
        Some(0x32 | 0x34) => DeviceError::PinBlocked,
        Some(0x2E) => DeviceError::NoCredentials,
        Some(0x19) => DeviceError::CredentialExcluded,
        Some(0x27 | 0x2F) => DeviceError::Denied,
        Some(0x26) => DeviceError::Unsupported("the requested algorithms".into()),
        Some(0x2B | 0x2C) => DeviceError::Unsupported("user verification without a PIN".into()),
        Some(0xFE) => DeviceError::NotPresent,
        _ => DeviceError::Other(msg.to_owned()),
    }
}

fn ctap_status(msg: &str) -> Option<u8> {
    let at = msg.find("err = 0x")? + "err = 0x".len();
    let hex = msg.get(at..at + 2)?;
    u8::from_str_radix(hex, 16).ok()
}

fn key_type(alg: Algorithm) -> CredentialSupportedKeyType {
    match alg {
        Algorithm::Es256 => CredentialSupportedKeyType::Ecdsa256,
        Algorithm::EdDsa => CredentialSupportedKeyType::Ed25519,
    }
}

fn raw_registration(att: Attestation) -> RawRegistration {
    let has_stmt = !att.attstmt_sig.is_empty();
    RawRegistration {
        fmt: att.fmt,
        auth_data: att.auth_data,
        att_alg: has_stmt.then_some(i64::from(att.attstmt_alg)),
        att_sig: att.attstmt_sig,
        att_x5c: att.attstmt_x5c,
    }
}

fn raw_assertion(a: Assertion, allow: &[Vec<u8>]) -> RawAssertion {
    // CTAP lets the key omit the credential when the allow list has exactly one entry.
    let credential_id = match (a.credential_id.is_empty(), allow) {
        (true, [only]) => only.clone(),
        _ => a.credential_id,
    };
    RawAssertion {
        credential_id,
        auth_data: a.auth_data,
        signature: a.signature,
    }
}

impl Authenticator for CtapHid {
    fn list(&self) -> Vec<DeviceInfo> {
        let found = catch_unwind(ctap_hid_fido2::get_fidokey_devices).unwrap_or_default();
        found
            .into_iter()
            .filter_map(|d| match d.param {
                HidParam::Path(path) => Some(DeviceInfo {
                    path,
                    vendor_id: d.vid,
                    product_id: d.pid,
                    product: d.product_string,
                }),
                HidParam::VidPid { .. } => None,
            })
            .collect()
    }

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
    ) -> Result<RawRegistration, DeviceError> {
        if algorithms.is_empty() {
            return Err(DeviceError::Unsupported("an empty algorithm list".into()));
        }
        let rp_id = rp_id.to_owned();
        let challenge = *challenge;
        let user =
            PublicKeyCredentialUserEntity::new(Some(user_id), Some("herarx"), Some("herarx"));
        let exclude: Vec<Vec<u8>> = exclude.iter().map(|c| c.0.clone()).collect();
        let algorithms = algorithms.to_vec();
        let pin = pin.map(str::to_owned);
        self.contained(&dev.path, deadline, move |key| {
            let mut b = MakeCredentialArgsBuilder::new(&rp_id, &challenge).user_entity(&user);
            b = match (&pin, uv) {
                (Some(pin), _) => b.pin(pin),
                (None, Uv::Discouraged) => b.without_pin_and_uv(),
                (None, Uv::Required) => b, // the key's built-in UV (builder default uv=true)
            };
            for id in &exclude {
                b = b.exclude_authenticator(id);
            }
            for alg in &algorithms {
                b = b.key_type(key_type(*alg));
            }
            let att = key
                .make_credential_with_args(&b.build())
                .map_err(|e| map_error(&format!("{e:#}")))?;
            Ok(raw_registration(att))
        })
    }

    fn get_assertion(
        &self,
        dev: &DeviceInfo,
        rp_id: &str,
        challenge: &[u8; 32],
        allow: &[CredId],
        uv: Uv,
        pin: Option<&str>,
        deadline: Instant,
    ) -> Result<RawAssertion, DeviceError> {
        if allow.is_empty() {
            // Herarx never uses discoverable credentials: no allow list, nothing to ask.
            return Err(DeviceError::NoCredentials);
        }
        let rp_id = rp_id.to_owned();
        let challenge = *challenge;
        let allow: Vec<Vec<u8>> = allow.iter().map(|c| c.0.clone()).collect();
        let pin = pin.map(str::to_owned);
        self.contained(&dev.path, deadline, move |key| {
            let mut b = GetAssertionArgsBuilder::new(&rp_id, &challenge);
            b = match (&pin, uv) {
                (Some(pin), _) => b.pin(pin),
                (None, Uv::Discouraged) => b.without_pin_and_uv(),
                (None, Uv::Required) => b,
            };
            for id in &allow {
                b = b.add_credential_id(id);
            }
            let mut all = key
                .get_assertion_with_args(&b.build())
                .map_err(|e| map_error(&format!("{e:#}")))?;
            if all.is_empty() {
                return Err(DeviceError::Other("no assertion returned".into()));
            }
            Ok(raw_assertion(all.swap_remove(0), &allow))
        })
    }

    fn probe(
        &self,
        dev: &DeviceInfo,
        rp_id: &str,
        allow: &[CredId],
        deadline: Instant,
    ) -> Result<bool, DeviceError> {
        if allow.is_empty() {
            return Ok(false);
        }
        let rp_id = rp_id.to_owned();
        let allow: Vec<Vec<u8>> = allow.iter().map(|c| c.0.clone()).collect();
        self.contained(&dev.path, deadline, move |key| {
            // No challenge worth keeping: the answer is only "held or not", never verified.
            let mut b = GetAssertionArgsBuilder::new(&rp_id, &[0u8; 32])
                .without_pin_and_uv()
                .without_up();
            for id in &allow {
                b = b.add_credential_id(id);
            }
            match key.get_assertion_with_args(&b.build()) {
                Ok(_) => Ok(true),
                Err(e) => match map_error(&format!("{e:#}")) {
                    DeviceError::NoCredentials => Ok(false),
                    other => Err(other),
                },
            }
        })
    }

    fn pin_retries(&self, dev: &DeviceInfo, deadline: Instant) -> Result<u32, DeviceError> {
        self.contained(&dev.path, deadline, move |key| {
            let n = key
                .get_pin_retries()
                .map_err(|e| map_error(&format!("{e:#}")))?;
            u32::try_from(n).map_err(|_| DeviceError::Other(format!("PIN retries {n}")))
        })
    }
}
