//! A makeCredential response (attestation object fields), as a security key returns it at
//! enrolment, through the daemon's own verification.
//!
//! Input fields (see `herarx_fuzz::Fields`): mode, authData, attStmt.alg, attStmt.sig,
//! attStmt.x5c (one certificate when not empty), fmt (when mode says so). Mode bits: 0-1 the
//! format ("none", "packed", "fido-u2f", the fmt field), 2 UV required, 3 alg present.
//!
//! Beyond "does not crash": an accepted registration is for our relying party, with the user
//! present (and verified when required), its key loads again from the bytes the store will
//! keep, and packed self attestation verified over authData ‖ SHA-256(challenge).
#![no_main]

use herarx_fuzz::{CHALLENGE, Fields, RP_ID};
use herarxd::fido2::{
    PublicKey, RawRegistration, authdata, rp_id_hash, signed_message, verify_registration,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut f = Fields::new(data);
    let mode = f.byte();
    let auth_data = f.bytes().to_vec();
    let alg = f.u64() as i64;
    let att_sig = f.bytes().to_vec();
    let x5c = f.bytes();
    let fmt = match mode & 3 {
        0 => "none".to_owned(),
        1 => "packed".to_owned(),
        2 => "fido-u2f".to_owned(),
        _ => f.text(),
    };
    let require_uv = mode & 4 != 0;
    let reg = RawRegistration {
        fmt,
        auth_data,
        att_alg: (mode & 8 != 0).then_some(alg),
        att_sig,
        att_x5c: if x5c.is_empty() {
            Vec::new()
        } else {
            vec![x5c.to_vec()]
        },
    };
    let Ok(new) = verify_registration(RP_ID, &CHALLENGE, &reg, require_uv) else {
        return;
    };
    let parsed = authdata::parse(&reg.auth_data).expect("accepted authData parses");
    assert_eq!(parsed.rp_id_hash, rp_id_hash(RP_ID));
    assert!(parsed.flags.user_present());
    assert!(!require_uv || parsed.flags.user_verified());
    assert_eq!(new.user_verified, parsed.flags.user_verified());
    assert_eq!(new.counter, parsed.sign_count);
    let att = parsed
        .attested
        .expect("accepted without attested credential data");
    assert_eq!(new.credential_id, att.credential_id);
    assert_eq!(new.cose_key, att.public_key);
    assert_eq!(new.aaguid, att.aaguid);
    let key = PublicKey::from_cose(&new.cose_key).expect("stored key does not load");
    assert_eq!(key.algorithm(), new.algorithm);
    assert_eq!(new.attestation_format, reg.fmt);
    match reg.fmt.as_str() {
        "none" => assert!(reg.att_sig.is_empty() && reg.att_x5c.is_empty()),
        "packed" if reg.att_x5c.is_empty() => {
            let msg = signed_message(&reg.auth_data, &CHALLENGE);
            assert!(key.verify(&msg, &reg.att_sig).is_ok());
        }
        "packed" => assert!(!reg.att_sig.is_empty()),
        other => panic!("format {other:?} accepted"),
    }
});
