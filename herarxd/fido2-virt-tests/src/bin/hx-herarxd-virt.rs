//! `hx-herarxd-virt`: herarxd whose security keys are `fido-authenticator` software keys in
//! its own memory, reached through the production backend (`herarxd::fido2::CtapHid`, i.e.
//! ctap-hid-fido2 and hidapi's hidraw code) thanks to the linker-wrapped open()/ioctl() of
//! tests/virt/shim.rs. TEST-ONLY: never install it.
//!
//! Same arguments as herarxd. The keys are set up from the environment at start:
//! - `HX_VIRT_KEYS`: how many keys are plugged in (0 to 2; default 1). Udev cannot see the
//!   virtual keys, so `list()` returns their magic paths instead of enumerating hidraw.
//! - `HX_VIRT_PINS`: comma-separated PIN per key, empty for none (e.g. `",4321"`).
//! - `HX_VIRT_HOLD`: comma-separated indexes of keys that are never touched (they answer
//!   every request with keep-alives "waiting for a touch").
//! - `HX_VIRT_HOLD_FILE`: a path; while a file exists there, no key is touched (a test can
//!   register a key, then create the file to play a user who does not touch it at login).
//! - `HX_VIRT_RETRIES_DIR`: a directory; `retries-N` there holds key N's PIN retry counter as
//!   the key reports it, written at start and after every request that carried a PIN (so a
//!   test can tell whether a PIN reached a key).

#[path = "../../tests/virt/shim.rs"]
#[allow(dead_code)]
mod shim;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use clap::Parser;
use herarxd::fido2::{
    Algorithm, Authenticator, CredId, CtapHid, DeviceError, DeviceInfo, RawAssertion,
    RawRegistration, Uv,
};

/// The production backend, except for enumeration.
struct VirtualKeys {
    inner: CtapHid,
    plugged: usize,
    retries_dir: String,
}

impl VirtualKeys {
    /// Records `dev`'s PIN retry counter in `HX_VIRT_RETRIES_DIR`, when set.
    fn note_retries(&self, dev: &DeviceInfo) {
        if self.retries_dir.is_empty() {
            return;
        }
        let Some(i) = shim::PATHS.iter().position(|p| *p == dev.path) else {
            return;
        };
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        let shown = match self.inner.pin_retries(dev, deadline) {
            Ok(n) => n.to_string(),
            Err(e) => format!("error: {e}"),
        };
        let _ = std::fs::write(format!("{}/retries-{i}", self.retries_dir), shown);
    }
}

impl Authenticator for VirtualKeys {
    fn list(&self) -> Vec<DeviceInfo> {
        shim::PATHS[..self.plugged]
            .iter()
            .map(|p| DeviceInfo::from_path(p))
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
        let r = self.inner.make_credential(
            dev, rp_id, challenge, user_id, exclude, algorithms, uv, pin, deadline,
        );
        if pin.is_some() {
            self.note_retries(dev);
        }
        r
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
        let r = self
            .inner
            .get_assertion(dev, rp_id, challenge, allow, uv, pin, deadline);
        if pin.is_some() {
            self.note_retries(dev);
        }
        r
    }

    fn probe(
        &self,
        dev: &DeviceInfo,
        rp_id: &str,
        allow: &[CredId],
        deadline: Instant,
    ) -> Result<bool, DeviceError> {
        self.inner.probe(dev, rp_id, allow, deadline)
    }

    fn pin_retries(&self, dev: &DeviceInfo, deadline: Instant) -> Result<u32, DeviceError> {
        self.inner.pin_retries(dev, deadline)
    }
}

/// While `HX_VIRT_HOLD_FILE` exists, every key is held; once it is gone they are released
/// again (keys held from `HX_VIRT_HOLD` stay held). Polled, so that a request already waiting
/// for a touch is released too, as a real key is when finally touched.
fn follow_hold_file(path: String) {
    let fixed = env("HX_VIRT_HOLD");
    loop {
        let held = std::path::Path::new(&path).exists();
        for (i, hold) in shim::HOLD.iter().enumerate() {
            let always = fixed
                .split(',')
                .any(|x| x.trim().parse::<usize>().ok() == Some(i));
            hold.store(held || always, Ordering::SeqCst);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

fn main() -> ExitCode {
    let args = herarxd::daemon::cli::Args::parse();
    let plugged = env("HX_VIRT_KEYS")
        .trim()
        .parse::<usize>()
        .unwrap_or(1)
        .min(shim::KEYS);
    shim::start();
    for (i, pin) in env("HX_VIRT_PINS").split(',').enumerate().take(shim::KEYS) {
        if pin.is_empty() {
            continue;
        }
        let set = ctap_hid_fido2::FidoKeyHid::new(
            &[ctap_hid_fido2::HidParam::Path(shim::PATHS[i].into())],
            &herarxd::fido2::ctap::quiet_cfg(),
        )
        .and_then(|key| key.set_new_pin(pin));
        if let Err(e) = set {
            eprintln!("hx-herarxd-virt: cannot set the PIN of virtual key {i}: {e:#}");
            return ExitCode::FAILURE;
        }
    }
    for i in env("HX_VIRT_HOLD").split(',') {
        if let Ok(i) = i.trim().parse::<usize>()
            && i < shim::KEYS
        {
            shim::HOLD[i].store(true, Ordering::SeqCst);
        }
    }
    let hold_file = env("HX_VIRT_HOLD_FILE");
    if !hold_file.is_empty() {
        std::thread::spawn(move || follow_hold_file(hold_file));
    }
    let keys = VirtualKeys {
        inner: CtapHid::new(),
        plugged,
        retries_dir: env("HX_VIRT_RETRIES_DIR"),
    };
    for (i, pin) in env("HX_VIRT_PINS").split(',').enumerate().take(shim::KEYS) {
        if !pin.is_empty() {
            keys.note_retries(&DeviceInfo::from_path(shim::PATHS[i]));
        }
    }
    herarxd::daemon::run_with_keys(args, Arc::new(keys))
}
