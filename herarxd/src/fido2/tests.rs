//! Unit tests with a scripted authenticator: real P-256 and Ed25519 keys generated here,
//! producing validly signed but wrong data, each refused with a clear error.

use std::time::{Duration, Instant};

use ciborium::Value;
use coset::iana;
use coset::{CborSerializable, CoseKeyBuilder};
use p256::ecdsa::signature::Signer as _;

use super::authdata::{self, AuthDataError, FLAG_AT, FLAG_ED, FLAG_UP, FLAG_UV};
use super::*;

const RP: &str = "pam://testhost";

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).unwrap();
    b
}

/// A small deterministic PRNG for the fuzz-style loops (reproducible failures).
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn byte(&mut self) -> u8 {
        (self.next() & 0xff) as u8
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

enum Sk {
    P256(p256::ecdsa::SigningKey),
    Ed(ed25519_dalek::SigningKey),
}

/// The scripted authenticator: one credential, with knobs for every wrong thing.
pub(crate) struct Scripted {
    sk: Sk,
    pub(crate) cred_id: Vec<u8>,
    pub(crate) aaguid: [u8; 16],
}

impl Scripted {
    pub(crate) fn p256() -> Self {
        let sk = loop {
            if let Ok(k) = p256::ecdsa::SigningKey::from_slice(&random::<32>()) {
                break k;
            }
        };
        Self {
            sk: Sk::P256(sk),
            cred_id: random::<48>().to_vec(),
            aaguid: random(),
        }
    }

    pub(crate) fn ed25519() -> Self {
        let sk = ed25519_dalek::SigningKey::from_bytes(&random::<32>());
        Self {
            sk: Sk::Ed(sk),
            cred_id: random::<64>().to_vec(),
            aaguid: random(),
        }
    }

    pub(crate) fn cose_key(&self) -> Vec<u8> {
        match &self.sk {
            Sk::P256(sk) => {
                let pt = sk.verifying_key().to_encoded_point(false);
                CoseKeyBuilder::new_ec2_pub_key(
                    iana::EllipticCurve::P_256,
                    pt.x().unwrap().to_vec(),
                    pt.y().unwrap().to_vec(),
                )
                .algorithm(iana::Algorithm::ES256)
                .build()
                .to_vec()
                .unwrap()
            }
            Sk::Ed(sk) => okp_key(-8, 6, Some(sk.verifying_key().to_bytes().to_vec())),
        }
    }

    pub(crate) fn sign(&self, msg: &[u8]) -> Vec<u8> {
        match &self.sk {
            Sk::P256(sk) => {
                let sig: p256::ecdsa::DerSignature = sk.sign(msg);
                sig.as_bytes().to_vec()
            }
            Sk::Ed(sk) => {
                use ed25519_dalek::Signer as _;
                sk.sign(msg).to_bytes().to_vec()
            }
        }
    }

    pub(crate) fn credential(&self, counter: u32) -> Credential {
        Credential {
            credential_id: self.cred_id.clone(),
            cose_key: self.cose_key(),
            counter,
        }
    }

    /// Assertion authData: rpIdHash(rp) | flags | counter.
    pub(crate) fn assertion_auth_data(&self, rp: &str, flags: u8, counter: u32) -> Vec<u8> {
        let mut ad = rp_id_hash(rp).to_vec();
        ad.push(flags);
        ad.extend_from_slice(&counter.to_be_bytes());
        ad
    }

    /// A validly signed assertion over `auth_data` and `challenge`.
    pub(crate) fn assert_raw(&self, auth_data: Vec<u8>, challenge: &[u8; 32]) -> RawAssertion {
        let signature = self.sign(&signed_message(&auth_data, challenge));
        RawAssertion {
            credential_id: self.cred_id.clone(),
            auth_data,
            signature,
        }
    }

    pub(crate) fn registration_auth_data(&self, rp: &str, flags: u8, cose_key: &[u8]) -> Vec<u8> {
        let mut ad = rp_id_hash(rp).to_vec();
        ad.push(flags | FLAG_AT);
        ad.extend_from_slice(&0u32.to_be_bytes());
        ad.extend_from_slice(&self.aaguid);
        ad.extend_from_slice(&(self.cred_id.len() as u16).to_be_bytes());
        ad.extend_from_slice(&self.cred_id);
        ad.extend_from_slice(cose_key);
        ad
    }

    /// Packed self attestation.
    pub(crate) fn register_raw(&self, auth_data: Vec<u8>, challenge: &[u8; 32]) -> RawRegistration {
        let alg = match self.sk {
            Sk::P256(_) => -7,
            Sk::Ed(_) => -8,
        };
        RawRegistration {
            fmt: "packed".into(),
            att_alg: Some(alg),
            att_sig: self.sign(&signed_message(&auth_data, challenge)),
            att_x5c: vec![],
            auth_data,
        }
    }
}

fn okp_key(alg: i64, crv: i64, x: Option<Vec<u8>>) -> Vec<u8> {
    let mut m = vec![
        (Value::from(1), Value::from(1)),
        (Value::from(3), Value::from(alg)),
        (Value::from(-1), Value::from(crv)),
    ];
    if let Some(x) = x {
        m.push((Value::from(-2), Value::Bytes(x)));
    }
    cbor(&Value::Map(m))
}

fn cbor(v: &Value) -> Vec<u8> {
    let mut out = vec![];
    ciborium::ser::into_writer(v, &mut out).unwrap();
    out
}

/// An EC2 COSE key from raw parts (any of them may be wrong).
fn ec2_key(alg: Option<i64>, crv: i64, x: Option<Vec<u8>>, y: Option<Value>) -> Vec<u8> {
    let mut m = vec![(Value::from(1), Value::from(2))];
    if let Some(alg) = alg {
        m.push((Value::from(3), Value::from(alg)));
    }
    m.push((Value::from(-1), Value::from(crv)));
    if let Some(x) = x {
        m.push((Value::from(-2), Value::Bytes(x)));
    }
    if let Some(y) = y {
        m.push((Value::from(-3), y));
    }
    cbor(&Value::Map(m))
}

fn p256_xy(key: &Scripted) -> (Vec<u8>, Vec<u8>) {
    let Sk::P256(sk) = &key.sk else {
        panic!("not p256")
    };
    let pt = sk.verifying_key().to_encoded_point(false);
    (pt.x().unwrap().to_vec(), pt.y().unwrap().to_vec())
}

// ---------------------------------------------------------------- authData parser

#[test]
fn authdata_minimal_assertion_parses() {
    let k = Scripted::p256();
    let ad = k.assertion_auth_data(RP, FLAG_UP | FLAG_UV, 7);
    let p = authdata::parse(&ad).unwrap();
    assert_eq!(p.rp_id_hash, rp_id_hash(RP));
    assert!(p.flags.user_present() && p.flags.user_verified());
    assert_eq!(p.sign_count, 7);
    assert!(p.attested.is_none() && p.extensions.is_none());
}

#[test]
fn authdata_registration_with_extensions_parses_exactly() {
    let k = Scripted::ed25519();
    let mut ad = k.registration_auth_data(RP, FLAG_UP | FLAG_ED, &k.cose_key());
    let ext = cbor(&Value::Map(vec![(
        Value::from("hmac-secret"),
        Value::from(true),
    )]));
    ad.extend_from_slice(&ext);
    let p = authdata::parse(&ad).unwrap();
    let at = p.attested.unwrap();
    assert_eq!(at.credential_id, k.cred_id.as_slice());
    assert_eq!(at.aaguid, k.aaguid);
    assert_eq!(at.public_key, k.cose_key().as_slice());
    assert_eq!(p.extensions, Some(ext.as_slice()));
}

#[test]
fn authdata_truncated_at_every_length_is_refused() {
    let k = Scripted::p256();
    let mut ad = k.registration_auth_data(RP, FLAG_UP | FLAG_ED, &k.cose_key());
    ad.extend_from_slice(&cbor(&Value::Map(vec![(
        Value::from("credProtect"),
        Value::from(2),
    )])));
    for n in 0..ad.len() {
        let r = authdata::parse(&ad[..n]);
        assert!(r.is_err(), "truncated to {n} bytes accepted");
    }
    assert!(authdata::parse(&ad).is_ok());
    assert!(matches!(
        authdata::parse(&ad[..36]),
        Err(AuthDataError::Truncated {
            field: "signCount",
            need: 4,
            have: 3
        })
    ));
}

#[test]
fn authdata_trailing_bytes_are_refused() {
    let k = Scripted::p256();
    let mut ad = k.assertion_auth_data(RP, FLAG_UP, 1);
    ad.push(0);
    assert_eq!(authdata::parse(&ad), Err(AuthDataError::TrailingBytes(1)));
    let mut ad = k.registration_auth_data(RP, FLAG_UP, &k.cose_key());
    ad.extend_from_slice(&[0xa0, 0xa0]);
    assert_eq!(authdata::parse(&ad), Err(AuthDataError::TrailingBytes(2)));
}

#[test]
fn authdata_oversized_lengths_are_refused() {
    let k = Scripted::p256();
    let mut ad = k.registration_auth_data(RP, FLAG_UP, &k.cose_key());
    // credentialIdLength is at 37 + 16.
    ad[53..55].copy_from_slice(&1024u16.to_be_bytes());
    assert_eq!(
        authdata::parse(&ad),
        Err(AuthDataError::CredentialIdTooLong(1024))
    );
    ad[53..55].copy_from_slice(&0xffffu16.to_be_bytes());
    assert_eq!(
        authdata::parse(&ad),
        Err(AuthDataError::CredentialIdTooLong(0xffff))
    );
    ad[53..55].copy_from_slice(&1000u16.to_be_bytes());
    assert!(matches!(
        authdata::parse(&ad),
        Err(AuthDataError::Truncated {
            field: "credentialId",
            ..
        })
    ));
    ad[53..55].copy_from_slice(&0u16.to_be_bytes());
    assert_eq!(authdata::parse(&ad), Err(AuthDataError::CredentialIdEmpty));

    // A COSE key claiming a 2^63-byte string, and one claiming a huge array.
    let mut head = k.registration_auth_data(RP, FLAG_UP, &[]);
    head.extend_from_slice(&[0x5b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2]);
    assert_eq!(authdata::parse(&head), Err(AuthDataError::PublicKeyCbor));
    let mut head = k.registration_auth_data(RP, FLAG_UP, &[]);
    head.extend_from_slice(&[0x9b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1]);
    assert_eq!(authdata::parse(&head), Err(AuthDataError::PublicKeyCbor));
    // Deep nesting.
    let mut head = k.registration_auth_data(RP, FLAG_UP, &[]);
    head.extend(std::iter::repeat_n(0x81u8, 10_000));
    head.push(0);
    assert_eq!(authdata::parse(&head), Err(AuthDataError::PublicKeyCbor));
    // Well-formed CBOR that is not a COSE_Key.
    let head = k.registration_auth_data(RP, FLAG_UP, &cbor(&Value::from(5)));
    assert_eq!(
        authdata::parse(&head),
        Err(AuthDataError::PublicKeyNotCoseKey)
    );
    // Extensions that are not a map.
    let mut ad = k.assertion_auth_data(RP, FLAG_UP | FLAG_ED, 1);
    ad.extend_from_slice(&cbor(&Value::from("x")));
    assert_eq!(authdata::parse(&ad), Err(AuthDataError::ExtensionsNotMap));
}

#[test]
fn authdata_random_and_mutated_inputs_never_panic() {
    let k = Scripted::p256();
    let mut base = k.registration_auth_data(RP, FLAG_UP | FLAG_ED, &k.cose_key());
    base.extend_from_slice(&cbor(&Value::Map(vec![(Value::from("a"), Value::from(1))])));
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        // Random bytes, with the flags often announcing AT/ED.
        let len = rng.below(300);
        let mut buf: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
        if buf.len() > 32 && rng.below(2) == 0 {
            buf[32] |= FLAG_AT;
        }
        let _ = authdata::parse(&buf);
        // Mutations of a valid blob: flipped bytes, cuts, insertions.
        let mut m = base.clone();
        for _ in 0..=rng.below(4) {
            let i = rng.below(m.len());
            match rng.below(3) {
                0 => m[i] = rng.byte(),
                1 => m.truncate(i),
                _ => m.insert(i, rng.byte()),
            }
            if m.is_empty() {
                break;
            }
        }
        if let Ok(AuthData {
            attested: Some(at), ..
        }) = authdata::parse(&m)
        {
            let _ = PublicKey::from_cose(at.public_key);
        }
    }
}

// ---------------------------------------------------------------- COSE keys

#[test]
fn cose_accepts_es256_and_eddsa() {
    assert_eq!(
        PublicKey::from_cose(&Scripted::p256().cose_key())
            .unwrap()
            .algorithm(),
        Algorithm::Es256
    );
    assert_eq!(
        PublicKey::from_cose(&Scripted::ed25519().cose_key())
            .unwrap()
            .algorithm(),
        Algorithm::EdDsa
    );
}

#[test]
fn cose_refuses_bad_keys() {
    let k = Scripted::p256();
    let (x, y) = p256_xy(&k);
    // Wrong curve (P-384 = 2) for ES256.
    assert_eq!(
        PublicKey::from_cose(&ec2_key(
            Some(-7),
            2,
            Some(x.clone()),
            Some(Value::Bytes(y.clone()))
        )),
        Err(CoseKeyError::UnsupportedCurve("2".into()))
    );
    // Point not on the curve.
    let mut bad_y = y.clone();
    bad_y[31] ^= 1;
    assert_eq!(
        PublicKey::from_cose(&ec2_key(
            Some(-7),
            1,
            Some(x.clone()),
            Some(Value::Bytes(bad_y))
        )),
        Err(CoseKeyError::InvalidPoint)
    );
    // RS256: kty RSA (3) and alg -257.
    let rsa = cbor(&Value::Map(vec![
        (Value::from(1), Value::from(3)),
        (Value::from(3), Value::from(-257)),
        (Value::from(-1), Value::Bytes(vec![0xc5; 256])),
        (Value::from(-2), Value::Bytes(vec![1, 0, 1])),
    ]));
    assert_eq!(
        PublicKey::from_cose(&rsa),
        Err(CoseKeyError::UnsupportedKeyType("3".into()))
    );
    // EC2 key labelled RS256.
    assert_eq!(
        PublicKey::from_cose(&ec2_key(
            Some(-257),
            1,
            Some(x.clone()),
            Some(Value::Bytes(y.clone()))
        )),
        Err(CoseKeyError::UnsupportedAlgorithm("-257".into()))
    );
    // Missing x, missing alg, short x, compressed point (y as a sign bit).
    assert_eq!(
        PublicKey::from_cose(&ec2_key(Some(-7), 1, None, Some(Value::Bytes(y.clone())))),
        Err(CoseKeyError::MissingParameter("x"))
    );
    assert_eq!(
        PublicKey::from_cose(&ec2_key(
            None,
            1,
            Some(x.clone()),
            Some(Value::Bytes(y.clone()))
        )),
        Err(CoseKeyError::MissingAlgorithm)
    );
    assert_eq!(
        PublicKey::from_cose(&ec2_key(
            Some(-7),
            1,
            Some(x[..31].to_vec()),
            Some(Value::Bytes(y.clone()))
        )),
        Err(CoseKeyError::WrongLength {
            param: "x",
            expected: 32,
            got: 31
        })
    );
    assert_eq!(
        PublicKey::from_cose(&ec2_key(
            Some(-7),
            1,
            Some(x.clone()),
            Some(Value::Bool(true))
        )),
        Err(CoseKeyError::WrongType("y"))
    );
    // Ed25519: wrong curve (X25519 = 4), missing x, small-order point, ES256 label.
    let ed = Scripted::ed25519();
    let Sk::Ed(sk) = &ed.sk else { unreachable!() };
    let ex = sk.verifying_key().to_bytes().to_vec();
    assert_eq!(
        PublicKey::from_cose(&okp_key(-8, 4, Some(ex.clone()))),
        Err(CoseKeyError::UnsupportedCurve("4".into()))
    );
    assert_eq!(
        PublicKey::from_cose(&okp_key(-8, 6, None)),
        Err(CoseKeyError::MissingParameter("x"))
    );
    let mut identity = vec![0u8; 32];
    identity[0] = 1;
    assert_eq!(
        PublicKey::from_cose(&okp_key(-8, 6, Some(identity))),
        Err(CoseKeyError::InvalidPoint)
    );
    assert_eq!(
        PublicKey::from_cose(&okp_key(-7, 6, Some(ex))),
        Err(CoseKeyError::UnsupportedAlgorithm("-7".into()))
    );
    // Not CBOR at all; private key included.
    assert_eq!(
        PublicKey::from_cose(&[0xff, 0x00]),
        Err(CoseKeyError::Malformed)
    );
    let mut with_d = ec2_key(Some(-7), 1, Some(x), Some(Value::Bytes(y)));
    let Value::Map(mut m) = ciborium::de::from_reader::<Value, _>(with_d.as_slice()).unwrap()
    else {
        unreachable!()
    };
    m.push((Value::from(-4), Value::Bytes(vec![1; 32])));
    with_d = cbor(&Value::Map(m));
    assert_eq!(PublicKey::from_cose(&with_d), Err(CoseKeyError::PrivateKey));
}

// ---------------------------------------------------------------- assertions

fn check(
    k: &Scripted,
    stored: u32,
    a: &RawAssertion,
    challenge: &[u8; 32],
    uv: bool,
) -> Result<NewCounter, AssertionError> {
    verify_assertion(
        &k.credential(stored),
        RP,
        challenge,
        &a.auth_data,
        &a.signature,
        uv,
    )
}

#[test]
fn valid_assertions_are_accepted_and_return_the_new_counter() {
    for k in [Scripted::p256(), Scripted::ed25519()] {
        let c = random::<32>();
        let a = k.assert_raw(k.assertion_auth_data(RP, FLAG_UP, 6), &c);
        assert_eq!(
            check(&k, 5, &a, &c, false),
            Ok(NewCounter {
                counter: 6,
                user_verified: false
            })
        );
        let a = k.assert_raw(k.assertion_auth_data(RP, FLAG_UP | FLAG_UV, 9), &c);
        assert_eq!(
            check(&k, 5, &a, &c, true),
            Ok(NewCounter {
                counter: 9,
                user_verified: true
            })
        );
        // Keys without a counter: both zero is accepted.
        let a = k.assert_raw(k.assertion_auth_data(RP, FLAG_UP, 0), &c);
        assert_eq!(
            check(&k, 0, &a, &c, false),
            Ok(NewCounter {
                counter: 0,
                user_verified: false
            })
        );
    }
}

#[test]
fn wrong_but_validly_signed_assertions_are_refused() {
    for k in [Scripted::p256(), Scripted::ed25519()] {
        let c = random::<32>();
        let a = k.assert_raw(k.assertion_auth_data(RP, 0, 6), &c);
        assert_eq!(
            check(&k, 5, &a, &c, false),
            Err(AssertionError::UserNotPresent)
        );
        let a = k.assert_raw(k.assertion_auth_data(RP, FLAG_UP, 6), &c);
        assert_eq!(
            check(&k, 5, &a, &c, true),
            Err(AssertionError::UserNotVerified)
        );
        let a = k.assert_raw(k.assertion_auth_data("pam://otherhost", FLAG_UP, 6), &c);
        assert_eq!(
            check(&k, 5, &a, &c, false),
            Err(AssertionError::RpIdMismatch)
        );
        let a = k.assert_raw(k.assertion_auth_data(RP, FLAG_UP, 4), &c);
        assert_eq!(
            check(&k, 5, &a, &c, false),
            Err(AssertionError::CounterRegression {
                stored: 5,
                received: 4
            })
        );
        let a = k.assert_raw(k.assertion_auth_data(RP, FLAG_UP, 5), &c);
        assert_eq!(
            check(&k, 5, &a, &c, false),
            Err(AssertionError::CounterRegression {
                stored: 5,
                received: 5
            })
        );
        // A key that stops counting after having counted.
        let a = k.assert_raw(k.assertion_auth_data(RP, FLAG_UP, 0), &c);
        assert!(matches!(
            check(&k, 5, &a, &c, false),
            Err(AssertionError::CounterRegression { .. })
        ));
        // Signed over another challenge.
        let a = k.assert_raw(k.assertion_auth_data(RP, FLAG_UP, 6), &random::<32>());
        assert_eq!(
            check(&k, 5, &a, &c, false),
            Err(AssertionError::BadSignature)
        );
        // Flags changed after signing.
        let mut a = k.assert_raw(k.assertion_auth_data(RP, FLAG_UP, 6), &c);
        a.auth_data[32] |= FLAG_UV;
        assert_eq!(
            check(&k, 5, &a, &c, true),
            Err(AssertionError::BadSignature)
        );
        // Truncated and oversized authData (signed as sent).
        let full = k.assertion_auth_data(RP, FLAG_UP, 6);
        let a = k.assert_raw(full[..36].to_vec(), &c);
        assert!(matches!(
            check(&k, 5, &a, &c, false),
            Err(AssertionError::AuthData(AuthDataError::Truncated { .. }))
        ));
        let mut long = full.clone();
        long.extend_from_slice(&[0u8; 1000]);
        let a = k.assert_raw(long, &c);
        assert_eq!(
            check(&k, 5, &a, &c, false),
            Err(AssertionError::AuthData(AuthDataError::TrailingBytes(1000)))
        );
        // Attested credential data in an assertion.
        let a = k.assert_raw(k.registration_auth_data(RP, FLAG_UP, &k.cose_key()), &c);
        assert_eq!(
            check(&k, 0, &a, &c, false),
            Err(AssertionError::UnexpectedAttestedCredential)
        );
    }
}

#[test]
fn es256_signature_must_be_der() {
    let k = Scripted::p256();
    let c = random::<32>();
    let ad = k.assertion_auth_data(RP, FLAG_UP, 1);
    let Sk::P256(sk) = &k.sk else { unreachable!() };
    let raw: p256::ecdsa::Signature = sk.sign(&signed_message(&ad, &c));
    let r = verify_assertion(&k.credential(0), RP, &c, &ad, &raw.to_bytes(), false);
    assert_eq!(r, Err(AssertionError::BadSignature));
}

#[test]
fn credential_is_looked_up_in_the_users_allow_list() {
    let (a_key, b_key) = (Scripted::p256(), Scripted::ed25519());
    let creds = vec![a_key.credential(3), b_key.credential(0)];
    let c = random::<32>();
    let ra = a_key.assert_raw(a_key.assertion_auth_data(RP, FLAG_UP, 4), &c);
    assert_eq!(
        verify_assertion_for_user(
            &creds,
            &ra.credential_id,
            RP,
            &c,
            &ra.auth_data,
            &ra.signature,
            false
        ),
        Ok((
            0,
            NewCounter {
                counter: 4,
                user_verified: false
            }
        ))
    );
    let rb = b_key.assert_raw(b_key.assertion_auth_data(RP, FLAG_UP, 1), &c);
    assert_eq!(
        verify_assertion_for_user(
            &creds,
            &rb.credential_id,
            RP,
            &c,
            &rb.auth_data,
            &rb.signature,
            false
        ),
        Ok((
            1,
            NewCounter {
                counter: 1,
                user_verified: false
            }
        ))
    );
    // Unknown credential id (another user's key, or a removed one).
    let other = Scripted::p256();
    let ro = other.assert_raw(other.assertion_auth_data(RP, FLAG_UP, 1), &c);
    assert_eq!(
        verify_assertion_for_user(
            &creds,
            &ro.credential_id,
            RP,
            &c,
            &ro.auth_data,
            &ro.signature,
            false
        ),
        Err(AssertionError::UnknownCredential)
    );
    // A key claiming another credential's id: the signature check fails.
    assert_eq!(
        verify_assertion_for_user(
            &creds,
            &a_key.cred_id,
            RP,
            &c,
            &ro.auth_data,
            &ro.signature,
            false
        ),
        Err(AssertionError::BadSignature)
    );
    // A corrupted stored key is reported as such.
    let mut broken = creds.clone();
    broken[0].cose_key.truncate(10);
    assert!(matches!(
        verify_assertion_for_user(
            &broken,
            &ra.credential_id,
            RP,
            &c,
            &ra.auth_data,
            &ra.signature,
            false
        ),
        Err(AssertionError::StoredKey(_))
    ));
}

// ---------------------------------------------------------------- challenges

#[test]
fn challenges_are_single_use_and_bound() {
    let ch = Challenges::new();
    let t0 = Instant::now();
    let ttl = Duration::from_secs(60);
    let c = ch.issue("alice", Purpose::Login, t0, ttl).unwrap();
    assert_eq!(ch.take(&c, "alice", Purpose::Login, t0), Ok(()));
    assert_eq!(
        ch.take(&c, "alice", Purpose::Login, t0),
        Err(ChallengeError::Unknown)
    );

    let c = ch.issue("alice", Purpose::Login, t0, ttl).unwrap();
    assert_eq!(
        ch.take(&c, "bob", Purpose::Login, t0),
        Err(ChallengeError::WrongUser)
    );
    assert_eq!(
        ch.take(&c, "alice", Purpose::Login, t0),
        Err(ChallengeError::Unknown)
    );

    let c = ch.issue("alice", Purpose::Register, t0, ttl).unwrap();
    assert_eq!(
        ch.take(&c, "alice", Purpose::Login, t0),
        Err(ChallengeError::WrongPurpose)
    );

    let c = ch.issue("alice", Purpose::Login, t0, ttl).unwrap();
    assert_eq!(
        ch.take(&c, "alice", Purpose::Login, t0 + ttl),
        Err(ChallengeError::Expired)
    );
    assert_eq!(
        ch.take(&random::<32>(), "alice", Purpose::Login, t0),
        Err(ChallengeError::Unknown)
    );

    // At most MAX_PER_USER outstanding per (user, purpose): the oldest go first.
    let issued: Vec<_> = (0..6u64)
        .map(|i| {
            ch.issue("carol", Purpose::Login, t0 + Duration::from_millis(i), ttl)
                .unwrap()
        })
        .collect();
    assert_eq!(
        ch.take(&issued[0], "carol", Purpose::Login, t0),
        Err(ChallengeError::Unknown)
    );
    assert_eq!(ch.take(&issued[5], "carol", Purpose::Login, t0), Ok(()));
    // Expired ones are pruned at the next issue.
    let later = t0 + ttl * 2;
    ch.issue("dave", Purpose::Login, later, ttl).unwrap();
    assert_eq!(ch.len(), 1);
}

// ---------------------------------------------------------------- registrations

#[test]
fn valid_registrations_are_accepted() {
    for k in [Scripted::p256(), Scripted::ed25519()] {
        let c = random::<32>();
        let reg = k.register_raw(
            k.registration_auth_data(RP, FLAG_UP | FLAG_UV, &k.cose_key()),
            &c,
        );
        let n = verify_registration(RP, &c, &reg, true).unwrap();
        assert_eq!(n.credential_id, k.cred_id);
        assert_eq!(n.cose_key, k.cose_key());
        assert_eq!(n.aaguid, k.aaguid);
        assert_eq!(n.counter, 0);
        assert!(n.user_verified);
        // "none" attestation.
        let none = RawRegistration {
            fmt: "none".into(),
            auth_data: k.registration_auth_data(RP, FLAG_UP, &k.cose_key()),
            ..Default::default()
        };
        assert_eq!(
            verify_registration(RP, &c, &none, false)
                .unwrap()
                .attestation_format,
            "none"
        );
    }
}

#[test]
fn wrong_registrations_are_refused() {
    let k = Scripted::p256();
    let c = random::<32>();
    let reg = |flags: u8, rp: &str| {
        k.register_raw(k.registration_auth_data(rp, flags, &k.cose_key()), &c)
    };
    assert_eq!(
        verify_registration(RP, &c, &reg(0, RP), false),
        Err(RegistrationError::UserNotPresent)
    );
    assert_eq!(
        verify_registration(RP, &c, &reg(FLAG_UP, RP), true),
        Err(RegistrationError::UserNotVerified)
    );
    assert_eq!(
        verify_registration(RP, &c, &reg(FLAG_UP, "pam://otherhost"), false),
        Err(RegistrationError::RpIdMismatch)
    );
    // Self attestation over another challenge.
    assert_eq!(
        verify_registration(RP, &random::<32>(), &reg(FLAG_UP, RP), false),
        Err(RegistrationError::BadAttestationSignature)
    );
    // No attested credential data.
    let no_at = k.register_raw(k.assertion_auth_data(RP, FLAG_UP, 0), &c);
    assert_eq!(
        verify_registration(RP, &c, &no_at, false),
        Err(RegistrationError::MissingAttestedCredential)
    );
    // An RS256-labelled key.
    let (x, y) = p256_xy(&k);
    let rs = ec2_key(Some(-257), 1, Some(x), Some(Value::Bytes(y)));
    let bad_key = k.register_raw(k.registration_auth_data(RP, FLAG_UP, &rs), &c);
    assert!(matches!(
        verify_registration(RP, &c, &bad_key, false),
        Err(RegistrationError::Key(_))
    ));
    // Formats.
    let mut tpm = reg(FLAG_UP, RP);
    tpm.fmt = "tpm".into();
    assert_eq!(
        verify_registration(RP, &c, &tpm, false),
        Err(RegistrationError::UnsupportedAttestation("tpm".into()))
    );
    let mut none_with_sig = reg(FLAG_UP, RP);
    none_with_sig.fmt = "none".into();
    assert!(matches!(
        verify_registration(RP, &c, &none_with_sig, false),
        Err(RegistrationError::MalformedAttestation(_))
    ));
    let mut wrong_alg = reg(FLAG_UP, RP);
    wrong_alg.att_alg = Some(-8);
    assert!(matches!(
        verify_registration(RP, &c, &wrong_alg, false),
        Err(RegistrationError::MalformedAttestation(_))
    ));
    // Truncated.
    let mut cut = reg(FLAG_UP, RP);
    cut.auth_data.truncate(60);
    assert!(matches!(
        verify_registration(RP, &c, &cut, false),
        Err(RegistrationError::AuthData(_))
    ));
}

// ---------------------------------------------------------------- through the trait

/// The scripted key behind the `Authenticator` trait: it can only hand back bytes.
pub(crate) struct ScriptedDevice {
    pub(crate) key: Scripted,
    pub(crate) flags: u8,
    pub(crate) counter: std::sync::atomic::AtomicU32,
}

impl Authenticator for ScriptedDevice {
    fn list(&self) -> Vec<DeviceInfo> {
        vec![DeviceInfo::from_path("/scripted")]
    }
    fn make_credential(
        &self,
        _dev: &DeviceInfo,
        rp_id: &str,
        challenge: &[u8; 32],
        _user_id: &[u8],
        exclude: &[CredId],
        _algorithms: &[Algorithm],
        _uv: Uv,
        _pin: Option<&str>,
        _deadline: Instant,
    ) -> Result<RawRegistration, DeviceError> {
        if exclude.iter().any(|e| e.0 == self.key.cred_id) {
            return Err(DeviceError::CredentialExcluded);
        }
        Ok(self.key.register_raw(
            self.key
                .registration_auth_data(rp_id, self.flags, &self.key.cose_key()),
            challenge,
        ))
    }
    fn get_assertion(
        &self,
        _dev: &DeviceInfo,
        rp_id: &str,
        challenge: &[u8; 32],
        allow: &[CredId],
        _uv: Uv,
        _pin: Option<&str>,
        _deadline: Instant,
    ) -> Result<RawAssertion, DeviceError> {
        if !allow.iter().any(|a| a.0 == self.key.cred_id) {
            return Err(DeviceError::NoCredentials);
        }
        self.counter
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(self.key.assert_raw(
            self.key.assertion_auth_data(
                rp_id,
                self.flags,
                self.counter.load(std::sync::atomic::Ordering::SeqCst),
            ),
            challenge,
        ))
    }
    fn probe(
        &self,
        _dev: &DeviceInfo,
        _rp_id: &str,
        allow: &[CredId],
        _deadline: Instant,
    ) -> Result<bool, DeviceError> {
        Ok(allow.iter().any(|a| a.0 == self.key.cred_id))
    }
    fn pin_retries(&self, _dev: &DeviceInfo, _deadline: Instant) -> Result<u32, DeviceError> {
        Ok(8)
    }
}

#[test]
fn enrol_then_login_through_the_trait_with_single_use_challenges() {
    let dev = ScriptedDevice {
        key: Scripted::p256(),
        flags: FLAG_UP,
        counter: 0.into(),
    };
    let other = ScriptedDevice {
        key: Scripted::ed25519(),
        flags: FLAG_UP,
        counter: 0.into(),
    };
    let ch = Challenges::new();
    let now = Instant::now();
    let deadline = now + Duration::from_secs(30);
    let ttl = Duration::from_secs(60);

    let c = ch.issue("alice", Purpose::Register, now, ttl).unwrap();
    let d = &dev.list()[0];
    let raw = dev
        .make_credential(
            d,
            RP,
            &c,
            b"alice",
            &[],
            &[Algorithm::Es256],
            Uv::Discouraged,
            None,
            deadline,
        )
        .unwrap();
    ch.take(&c, "alice", Purpose::Register, now).unwrap();
    let new = verify_registration(RP, &c, &raw, false).unwrap();
    let mut creds = vec![Credential {
        credential_id: new.credential_id.clone(),
        cose_key: new.cose_key,
        counter: new.counter,
    }];
    let allow = vec![CredId(new.credential_id)];
    assert_eq!(
        dev.make_credential(
            d,
            RP,
            &c,
            b"alice",
            &allow,
            &[Algorithm::Es256],
            Uv::Discouraged,
            None,
            deadline
        ),
        Err(DeviceError::CredentialExcluded)
    );

    for expected in 1..=2 {
        let c = ch.issue("alice", Purpose::Login, now, ttl).unwrap();
        // Two keys plugged in: the one without the credential is skipped.
        let a = ScriptedPair(&other, &dev);
        let (_, raw) = get_assertion_any(
            &a,
            &[DeviceInfo::from_path("0"), DeviceInfo::from_path("1")],
            RP,
            &c,
            &allow,
            Uv::Discouraged,
            None,
            deadline,
        )
        .unwrap();
        ch.take(&c, "alice", Purpose::Login, now).unwrap();
        let (i, n) = verify_assertion_for_user(
            &creds,
            &raw.credential_id,
            RP,
            &c,
            &raw.auth_data,
            &raw.signature,
            false,
        )
        .unwrap();
        assert_eq!(n.counter, expected);
        creds[i].counter = n.counter;
        // Replaying the same challenge and response.
        assert_eq!(
            ch.take(&c, "alice", Purpose::Login, now),
            Err(ChallengeError::Unknown)
        );
        assert!(matches!(
            verify_assertion_for_user(
                &creds,
                &raw.credential_id,
                RP,
                &c,
                &raw.auth_data,
                &raw.signature,
                false
            ),
            Err(AssertionError::CounterRegression { .. })
        ));
    }
}

/// Two scripted devices, addressed by path "0" and "1".
struct ScriptedPair<'a>(&'a ScriptedDevice, &'a ScriptedDevice);

impl Authenticator for ScriptedPair<'_> {
    fn list(&self) -> Vec<DeviceInfo> {
        vec![DeviceInfo::from_path("0"), DeviceInfo::from_path("1")]
    }
    fn make_credential(
        &self,
        _: &DeviceInfo,
        _: &str,
        _: &[u8; 32],
        _: &[u8],
        _: &[CredId],
        _: &[Algorithm],
        _: Uv,
        _: Option<&str>,
        _: Instant,
    ) -> Result<RawRegistration, DeviceError> {
        Err(DeviceError::Unsupported("not scripted".into()))
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
        let d = if dev.path == "0" { self.0 } else { self.1 };
        d.get_assertion(dev, rp_id, challenge, allow, uv, pin, deadline)
    }
    fn probe(
        &self,
        dev: &DeviceInfo,
        rp_id: &str,
        allow: &[CredId],
        deadline: Instant,
    ) -> Result<bool, DeviceError> {
        let d = if dev.path == "0" { self.0 } else { self.1 };
        d.probe(dev, rp_id, allow, deadline)
    }
    fn pin_retries(&self, _dev: &DeviceInfo, _deadline: Instant) -> Result<u32, DeviceError> {
        Ok(8)
    }
}

#[test]
fn ctap_status_bytes_map_to_clear_errors() {
    use super::ctap::map_error;
    let m = |code: &str| map_error(&format!("response_status err = {code} CTAP2_ERR_X text"));
    assert_eq!(m("0x31"), DeviceError::PinInvalid);
    assert_eq!(m("0x36"), DeviceError::PinRequired);
    assert_eq!(m("0x2E"), DeviceError::NoCredentials);
    assert_eq!(m("0x27"), DeviceError::Denied);
    assert_eq!(m("0x2F"), DeviceError::Denied);
    assert_eq!(m("0x19"), DeviceError::CredentialExcluded);
    assert_eq!(m("0x32"), DeviceError::PinBlocked);
    assert!(matches!(
        map_error("Failed to open device."),
        DeviceError::Other(_)
    ));
}

#[test]
fn ctap_backend_is_configured_quiet() {
    let cfg = super::ctap::quiet_cfg();
    assert!(!cfg.enable_keep_alive_msg && cfg.keep_alive_msg.is_empty() && !cfg.enable_log);
}
