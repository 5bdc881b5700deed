//! Which key a PIN may go to: decided before any PIN leaves the daemon.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::*;

/// Keys "0", "1", ...: each holds the credentials listed, has a PIN retry count, and records
/// every PIN it is sent.
struct Keys {
    holds: Vec<Vec<u8>>,
    retries: Vec<u32>,
    pins_seen: Mutex<Vec<(usize, String)>>,
}

impl Keys {
    fn new(holds: &[&[u8]], retries: &[u32]) -> Self {
        Keys {
            holds: holds.iter().map(|h| h.to_vec()).collect(),
            retries: retries.to_vec(),
            pins_seen: Mutex::new(Vec::new()),
        }
    }
    fn index(dev: &DeviceInfo) -> usize {
        dev.path.parse().unwrap()
    }
    fn holds(&self, dev: &DeviceInfo, ids: &[CredId]) -> bool {
        let held = &self.holds[Self::index(dev)];
        !held.is_empty() && ids.iter().any(|c| &c.0 == held)
    }
    fn saw(&self, dev: &DeviceInfo, pin: Option<&str>) {
        if let Some(p) = pin {
            self.pins_seen
                .lock()
                .unwrap()
                .push((Self::index(dev), p.to_owned()));
        }
    }
    fn devices(&self) -> Vec<DeviceInfo> {
        (0..self.holds.len())
            .map(|i| DeviceInfo::from_path(&i.to_string()))
            .collect()
    }
}

impl Authenticator for Keys {
    fn list(&self) -> Vec<DeviceInfo> {
        self.devices()
    }
    fn make_credential(
        &self,
        dev: &DeviceInfo,
        _: &str,
        _: &[u8; 32],
        _: &[u8],
        exclude: &[CredId],
        _: &[Algorithm],
        _: Uv,
        pin: Option<&str>,
        _: Instant,
    ) -> Result<RawRegistration, DeviceError> {
        self.saw(dev, pin);
        if self.holds(dev, exclude) {
            return Err(DeviceError::CredentialExcluded);
        }
        Ok(RawRegistration::default())
    }
    fn get_assertion(
        &self,
        dev: &DeviceInfo,
        _: &str,
        _: &[u8; 32],
        allow: &[CredId],
        _: Uv,
        pin: Option<&str>,
        _: Instant,
    ) -> Result<RawAssertion, DeviceError> {
        self.saw(dev, pin);
        if !self.holds(dev, allow) {
            return Err(DeviceError::NoCredentials);
        }
        Ok(RawAssertion::default())
    }
    fn probe(
        &self,
        dev: &DeviceInfo,
        _: &str,
        allow: &[CredId],
        _: Instant,
    ) -> Result<bool, DeviceError> {
        Ok(self.holds(dev, allow))
    }
    fn pin_retries(&self, dev: &DeviceInfo, _: Instant) -> Result<u32, DeviceError> {
        Ok(self.retries[Self::index(dev)])
    }
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

const MINE: &[u8] = b"alice's credential";
const THEIRS: &[u8] = b"bob's credential";

#[test]
fn a_login_pin_goes_only_to_the_key_holding_the_users_credential() {
    // Bob's key is plugged in first: it must never see alice's PIN.
    let keys = Keys::new(&[THEIRS, MINE], &[8, 8]);
    let allow = [CredId(MINE.to_vec())];
    let got = get_assertion_any(
        &keys,
        &keys.devices(),
        "pam://x",
        &[0; 32],
        &allow,
        Uv::Required,
        Some("1234"),
        soon(),
    );
    assert_eq!(got.map(|(d, _)| d.path), Ok("1".to_owned()));
    assert_eq!(*keys.pins_seen.lock().unwrap(), [(1, "1234".to_owned())]);
}

#[test]
fn no_key_holding_the_credential_gets_no_pin_at_all() {
    let keys = Keys::new(&[THEIRS, b""], &[8, 8]);
    let allow = [CredId(MINE.to_vec())];
    let got = get_assertion_any(
        &keys,
        &keys.devices(),
        "pam://x",
        &[0; 32],
        &allow,
        Uv::Required,
        Some("1234"),
        soon(),
    );
    assert_eq!(got.map(|_| ()), Err(DeviceError::NoCredentials));
    assert!(keys.pins_seen.lock().unwrap().is_empty());
}

#[test]
fn a_key_with_three_retries_or_fewer_gets_no_pin() {
    let allow = [CredId(MINE.to_vec())];
    for (left, ok) in [(4, true), (3, false), (1, false), (0, false)] {
        let keys = Keys::new(&[MINE], &[left]);
        let got = pin_target(&keys, &keys.devices(), "pam://x", &allow, soon());
        if ok {
            assert!(got.is_ok(), "{left} left");
        } else {
            assert_eq!(got, Err(DeviceError::PinRetriesLow(left)));
        }
    }
}

#[test]
fn an_enrolment_pin_goes_to_the_one_key_not_yet_the_users() {
    let mine = [CredId(MINE.to_vec())];
    // Alice's registered key and a new one: the new one is the target.
    let keys = Keys::new(&[MINE, b""], &[8, 8]);
    let got = enrol_pin_target(&keys, &keys.devices(), "pam://x", &mine, soon());
    assert_eq!(got.map(|d| d.path), Ok("1".to_owned()));
    // Two keys that could be meant (one of them bob's): no guess, and no PIN.
    let keys = Keys::new(&[THEIRS, b""], &[8, 8]);
    assert_eq!(
        enrol_pin_target(&keys, &keys.devices(), "pam://x", &mine, soon()),
        Err(DeviceError::SeveralKeys(2))
    );
    assert_eq!(
        enrol_pin_target(&keys, &keys.devices(), "pam://x", &[], soon()),
        Err(DeviceError::SeveralKeys(2)),
        "a first key: no exclude list, still one key only"
    );
    // Only her own keys, or none.
    let keys = Keys::new(&[MINE], &[8]);
    assert_eq!(
        enrol_pin_target(&keys, &keys.devices(), "pam://x", &mine, soon()),
        Err(DeviceError::CredentialExcluded)
    );
    assert_eq!(
        enrol_pin_target(&keys, &[], "pam://x", &mine, soon()),
        Err(DeviceError::NotPresent)
    );
    // The one new key, nearly blocked.
    let keys = Keys::new(&[b""], &[2]);
    assert_eq!(
        enrol_pin_target(&keys, &keys.devices(), "pam://x", &mine, soon()),
        Err(DeviceError::PinRetriesLow(2))
    );
    assert!(keys.pins_seen.lock().unwrap().is_empty());
}
