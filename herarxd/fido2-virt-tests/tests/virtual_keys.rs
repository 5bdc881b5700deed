//! herarxd's FIDO2 backend (`herarxd::fido2::CtapHid`) and verifier, end to end through the
//! real ctap-hid-fido2 + hidapi stack against `fido-authenticator` software keys (see
//! tests/virt/shim.rs). Key 0 stays touch-only; key 1 gets a PIN.

#[path = "virt/shim.rs"]
mod shim;

use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use herarxd::fido2::{
    Algorithm, AssertionError, Authenticator, Challenges, CredId, Credential, CtapHid, DeviceError,
    DeviceInfo, NewCredential, Purpose, RawAssertion, Uv, get_assertion_any,
    verify_assertion_for_user, verify_registration,
};

const RP: &str = "pam://testhost";
static SERIAL: Mutex<()> = Mutex::new(());

struct Env {
    backend: CtapHid,
    challenges: Challenges,
    keys: Vec<DeviceInfo>,
}

fn env() -> Env {
    shim::start();
    Env {
        backend: CtapHid::new(),
        challenges: Challenges::new(),
        keys: shim::PATHS
            .iter()
            .map(|p| DeviceInfo::from_path(p))
            .collect(),
    }
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(20)
}

impl Env {
    /// A fresh daemon challenge, consumed as the daemon would before verifying.
    fn challenge(&self, user: &str, purpose: Purpose) -> [u8; 32] {
        let now = Instant::now();
        let c = self
            .challenges
            .issue(user, purpose, now, Duration::from_secs(60))
            .unwrap();
        self.challenges.take(&c, user, purpose, now).unwrap();
        c
    }

    fn enrol(
        &self,
        key: usize,
        user: &str,
        alg: Algorithm,
        uv: Uv,
        pin: Option<&str>,
    ) -> NewCredential {
        let c = self.challenge(user, Purpose::Register);
        let raw = self
            .backend
            .make_credential(
                &self.keys[key],
                RP,
                &c,
                user.as_bytes(),
                &[],
                &[alg],
                uv,
                pin,
                deadline(),
            )
            .unwrap();
        let new = verify_registration(RP, &c, &raw, uv == Uv::Required).unwrap();
        assert_eq!(new.algorithm, alg);
        new
    }

    fn assert_raw(
        &self,
        key: usize,
        c: &[u8; 32],
        allow: &[&NewCredential],
        uv: Uv,
        pin: Option<&str>,
    ) -> Result<RawAssertion, DeviceError> {
        let allow: Vec<CredId> = allow
            .iter()
            .map(|n| CredId(n.credential_id.clone()))
            .collect();
        self.backend
            .get_assertion(&self.keys[key], RP, c, &allow, uv, pin, deadline())
    }
}

fn stored(n: &NewCredential) -> Credential {
    Credential {
        credential_id: n.credential_id.clone(),
        cose_key: n.cose_key.clone(),
        counter: n.counter,
    }
}

fn check(
    creds: &[Credential],
    c: &[u8; 32],
    a: &RawAssertion,
    uv: bool,
) -> Result<(usize, u32), AssertionError> {
    verify_assertion_for_user(
        creds,
        &a.credential_id,
        RP,
        c,
        &a.auth_data,
        &a.signature,
        uv,
    )
    .map(|(i, n)| (i, n.counter))
}

#[test]
fn touch_only_enrol_and_login() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let e = env();
    let cred = e.enrol(0, "alice", Algorithm::Es256, Uv::Discouraged, None);
    assert!(!cred.user_verified);
    let mut creds = vec![stored(&cred)];

    let c1 = e.challenge("alice", Purpose::Login);
    let a1 = e
        .assert_raw(0, &c1, &[&cred], Uv::Discouraged, None)
        .unwrap();
    let (i, n1) = check(&creds, &c1, &a1, false).unwrap();
    creds[i].counter = n1;
    let c2 = e.challenge("alice", Purpose::Login);
    let a2 = e
        .assert_raw(0, &c2, &[&cred], Uv::Discouraged, None)
        .unwrap();
    let (_, n2) = check(&creds, &c2, &a2, false).unwrap();
    assert!(n2 > n1, "counter must rise: {n1} then {n2}");
    creds[0].counter = n2;

    // Failing twins through the real stack.
    assert!(matches!(
        check(&creds, &c1, &a1, false),
        Err(AssertionError::CounterRegression { .. })
    ));
    assert_eq!(
        check(&creds, &c1, &a2, false),
        Err(AssertionError::BadSignature)
    );
    let c3 = e.challenge("alice", Purpose::Login);
    let a3 = e
        .assert_raw(0, &c3, &[&cred], Uv::Discouraged, None)
        .unwrap();
    assert_eq!(
        check(&creds, &c3, &a3, true),
        Err(AssertionError::UserNotVerified)
    );
    assert_eq!(
        verify_assertion_for_user(
            &creds,
            &a3.credential_id,
            "pam://otherhost",
            &c3,
            &a3.auth_data,
            &a3.signature,
            false
        ),
        Err(AssertionError::RpIdMismatch)
    );
    // Wrong rpId at the key: the credential does not exist there.
    let c4 = e.challenge("alice", Purpose::Login);
    let allow = [CredId(cred.credential_id.clone())];
    assert_eq!(
        e.backend.get_assertion(
            &e.keys[0],
            "pam://otherhost",
            &c4,
            &allow,
            Uv::Discouraged,
            None,
            deadline()
        ),
        Err(DeviceError::NoCredentials)
    );
    // Exclude list: the same key cannot be registered twice.
    let c5 = e.challenge("alice", Purpose::Register);
    assert_eq!(
        e.backend.make_credential(
            &e.keys[0],
            RP,
            &c5,
            b"alice",
            &allow,
            &[Algorithm::Es256],
            Uv::Discouraged,
            None,
            deadline()
        ),
        Err(DeviceError::CredentialExcluded)
    );
}

#[test]
fn two_credentials_removed_one_and_other_user_refused() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let e = env();
    let k1 = e.enrol(0, "alice", Algorithm::Es256, Uv::Discouraged, None);
    let k2 = e.enrol(0, "alice", Algorithm::EdDsa, Uv::Discouraged, None);
    let kb = e.enrol(0, "bob", Algorithm::Es256, Uv::Discouraged, None);
    assert_ne!(k1.credential_id, k2.credential_id);
    let alice = vec![stored(&k1), stored(&k2)];
    let bob = vec![stored(&kb)];

    for (want, k) in [(0, &k1), (1, &k2)] {
        let c = e.challenge("alice", Purpose::Login);
        let a = e.assert_raw(0, &c, &[k], Uv::Discouraged, None).unwrap();
        assert_eq!(a.credential_id, k.credential_id);
        assert_eq!(check(&alice, &c, &a, false).map(|(i, _)| i), Ok(want));
        // A key registered for alice is refused for bob.
        assert_eq!(
            check(&bob, &c, &a, false),
            Err(AssertionError::UnknownCredential)
        );
    }
    // alice removes k2: its assertion is refused, k1 still works.
    let alice_after = vec![stored(&k1)];
    let c = e.challenge("alice", Purpose::Login);
    let a = e.assert_raw(0, &c, &[&k2], Uv::Discouraged, None).unwrap();
    assert_eq!(
        check(&alice_after, &c, &a, false),
        Err(AssertionError::UnknownCredential)
    );
    // The wrong credential's assertion cannot pass as another's (id swapped).
    assert_eq!(
        verify_assertion_for_user(
            &alice,
            &k1.credential_id,
            RP,
            &c,
            &a.auth_data,
            &a.signature,
            false
        ),
        Err(AssertionError::BadSignature)
    );
}

#[test]
fn pin_enrol_and_login_with_uv_and_wrong_pin() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let e = env();
    {
        let key = ctap_hid_fido2::FidoKeyHid::new(
            &[ctap_hid_fido2::HidParam::Path(shim::PATHS[1].into())],
            &herarxd::fido2::ctap::quiet_cfg(),
        )
        .unwrap();
        key.set_new_pin("4321").unwrap();
    }
    for alg in [Algorithm::Es256, Algorithm::EdDsa] {
        let cred = e.enrol(1, "carol", alg, Uv::Required, Some("4321"));
        assert!(cred.user_verified);
        let creds = vec![stored(&cred)];
        let c = e.challenge("carol", Purpose::Login);
        let a = e
            .assert_raw(1, &c, &[&cred], Uv::Required, Some("4321"))
            .unwrap();
        check(&creds, &c, &a, true).unwrap();

        let c = e.challenge("carol", Purpose::Login);
        assert_eq!(
            e.assert_raw(1, &c, &[&cred], Uv::Required, Some("0000")),
            Err(DeviceError::PinInvalid)
        );
    }
    // Enrolment with a wrong PIN is refused too.
    let c = e.challenge("carol", Purpose::Register);
    assert_eq!(
        e.backend.make_credential(
            &e.keys[1],
            RP,
            &c,
            b"carol",
            &[],
            &[Algorithm::Es256],
            Uv::Required,
            Some("9999"),
            deadline()
        ),
        Err(DeviceError::PinInvalid)
    );
}

#[test]
fn several_keys_plugged_in() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let e = env();
    let cred = e.enrol(0, "dave", Algorithm::Es256, Uv::Discouraged, None);
    let creds = vec![stored(&cred)];
    let c = e.challenge("dave", Purpose::Login);
    let allow = [CredId(cred.credential_id.clone())];
    // Key 1 does not hold the credential and is skipped; key 0 answers.
    let order = [e.keys[1].clone(), e.keys[0].clone()];
    let (dev, a) = get_assertion_any(
        &e.backend,
        &order,
        RP,
        &c,
        &allow,
        Uv::Discouraged,
        None,
        deadline(),
    )
    .unwrap();
    assert_eq!(dev, e.keys[0]);
    check(&creds, &c, &a, false).unwrap();
    // Only key 1: no credentials.
    assert_eq!(
        get_assertion_any(
            &e.backend,
            &order[..1],
            RP,
            &c,
            &allow,
            Uv::Discouraged,
            None,
            deadline()
        )
        .map(|_| ()),
        Err(DeviceError::NoCredentials)
    );
    // Enumeration through hidapi works (no real keys here: the virtual ones are not listed).
    let listed = e.backend.list();
    assert!(
        listed
            .iter()
            .all(|d| e.keys.iter().all(|k| k.path != d.path)),
        "udev cannot see the virtual keys, so hidapi lists none of them: {:?}",
        listed.iter().map(|d| &d.path).collect::<Vec<_>>()
    );
}

#[test]
fn user_does_not_touch_times_out() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let e = env();
    let cred = e.enrol(0, "erin", Algorithm::Es256, Uv::Discouraged, None);
    let allow = [CredId(cred.credential_id.clone())];
    shim::HOLD[0].store(true, Ordering::SeqCst);
    let before = shim::REQUESTS[0].load(Ordering::SeqCst);
    let c = e.challenge("erin", Purpose::Login);
    let start = Instant::now();
    let r = e.backend.get_assertion(
        &e.keys[0],
        RP,
        &c,
        &allow,
        Uv::Discouraged,
        None,
        start + Duration::from_millis(1500),
    );
    let took = start.elapsed();
    assert_eq!(r, Err(DeviceError::Timeout));
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(4),
        "took {took:?}"
    );
    assert!(
        shim::REQUESTS[0].load(Ordering::SeqCst) > before,
        "the request reached the key"
    );
    // While the abandoned request still waits at the key, no second transaction is started.
    let c2 = e.challenge("erin", Purpose::Login);
    assert_eq!(
        e.backend.get_assertion(
            &e.keys[0],
            RP,
            &c2,
            &allow,
            Uv::Discouraged,
            None,
            deadline()
        ),
        Err(DeviceError::Busy)
    );
    // Enrolment times out the same way (on the other key, which is not held: hold it too).
    shim::HOLD[1].store(true, Ordering::SeqCst);
    let c3 = e.challenge("erin", Purpose::Register);
    let r = e.backend.make_credential(
        &e.keys[1],
        RP,
        &c3,
        b"erin",
        &[],
        &[Algorithm::Es256],
        Uv::Discouraged,
        Some("4321"),
        Instant::now() + Duration::from_millis(500),
    );
    assert_eq!(r, Err(DeviceError::Timeout));

    // The user touches at last: the abandoned workers finish and the keys are usable again.
    shim::HOLD[0].store(false, Ordering::SeqCst);
    shim::HOLD[1].store(false, Ordering::SeqCst);
    let until = Instant::now() + Duration::from_secs(10);
    let a = loop {
        let c = e.challenge("erin", Purpose::Login);
        match e.backend.get_assertion(
            &e.keys[0],
            RP,
            &c,
            &allow,
            Uv::Discouraged,
            None,
            deadline(),
        ) {
            Err(DeviceError::Busy) if Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(50))
            }
            other => break (c, other.unwrap()),
        }
    };
    check(&[stored(&cred)], &a.0, &a.1, false).unwrap();
    while Instant::now() < until {
        let c = e.challenge("erin", Purpose::Login);
        if e.backend.get_assertion(
            &e.keys[1],
            RP,
            &c,
            &allow,
            Uv::Discouraged,
            None,
            deadline(),
        ) != Err(DeviceError::Busy)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn malformed_key_responses_are_contained() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let e = env();
    // makeCredential response {1: "none", 2: h'00 × 10', 3: {}}: authData far too short.
    // ctap-hid-fido2 indexes into it and panics; the backend reports it and stays usable.
    let mut resp = vec![0x00, 0xa3, 0x01, 0x64];
    resp.extend_from_slice(b"none");
    resp.extend_from_slice(&[0x02, 0x4a]);
    resp.extend_from_slice(&[0u8; 10]);
    resp.extend_from_slice(&[0x03, 0xa0]);
    *shim::CANNED[0].lock().unwrap() = Some(resp);
    let c = e.challenge("frank", Purpose::Register);
    let r = e.backend.make_credential(
        &e.keys[0],
        RP,
        &c,
        b"frank",
        &[],
        &[Algorithm::Es256],
        Uv::Discouraged,
        None,
        deadline(),
    );
    assert_eq!(r, Err(DeviceError::BackendPanicked));

    // A getAssertion response whose authData is too short for any parser: ctap-hid-fido2
    // hands it over (or fails), and herarxd's verifier refuses it; no panic either way.
    let cred = e.enrol(0, "frank", Algorithm::Es256, Uv::Discouraged, None);
    let mut resp = vec![0x00, 0xa3, 0x01, 0xa2, 0x62];
    resp.extend_from_slice(b"id");
    resp.push(0x58);
    resp.push(cred.credential_id.len() as u8);
    resp.extend_from_slice(&cred.credential_id);
    resp.extend_from_slice(&[0x64]);
    resp.extend_from_slice(b"type");
    resp.push(0x6a);
    resp.extend_from_slice(b"public-key");
    resp.extend_from_slice(&[0x02, 0x45, 1, 2, 3, 4, 5, 0x03, 0x41, 0x00]);
    *shim::CANNED[0].lock().unwrap() = Some(resp);
    let c = e.challenge("frank", Purpose::Login);
    match e.assert_raw(0, &c, &[&cred], Uv::Discouraged, None) {
        Ok(a) => assert!(matches!(
            check(&[stored(&cred)], &c, &a, false),
            Err(AssertionError::AuthData(_))
        )),
        Err(err) => assert!(
            matches!(err, DeviceError::BackendPanicked | DeviceError::Other(_)),
            "{err:?}"
        ),
    }
    // And the key works again.
    let c = e.challenge("frank", Purpose::Login);
    let a = e
        .assert_raw(0, &c, &[&cred], Uv::Discouraged, None)
        .unwrap();
    check(&[stored(&cred)], &c, &a, false).unwrap();
}
