//! A getAssertion response (authData, signature, credential id) at login, checked against a
//! stored credential whose key and counter also come from the input (the store is outside
//! input too: it is re-validated on every use).
//!
//! Input fields (see `herarx_fuzz::Fields`): mode (bit 0: UV required), stored COSE key,
//! stored counter, authData, signature, credential id.
//!
//! Beyond "does not crash": an accepted assertion is for our relying party, has the user
//! present (verified when required), no attested data, a signature that verifies, and a
//! counter that went up (or both zero); and once its counter is stored, the same assertion is
//! refused (a replayed assertion never passes twice, unless the key has no counter).
#![no_main]

use herarx_fuzz::{CHALLENGE, Fields, RP_ID};
use herarxd::fido2::{
    AssertionError, Credential, PublicKey, authdata, rp_id_hash, signed_message, verify_assertion,
    verify_assertion_for_user,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut f = Fields::new(data);
    let require_uv = f.byte() & 1 != 0;
    let cose_key = f.bytes().to_vec();
    let counter = f.u64() as u32;
    let auth_data = f.bytes();
    let signature = f.bytes();
    let credential_id = f.bytes();
    let stored = Credential {
        credential_id: credential_id.to_vec(),
        cose_key,
        counter,
    };
    let other = Credential {
        credential_id: b"another credential".to_vec(),
        ..stored.clone()
    };
    let creds = [other, stored.clone()];
    let result = verify_assertion_for_user(
        &creds,
        credential_id,
        RP_ID,
        &CHALLENGE,
        auth_data,
        signature,
        require_uv,
    );
    let direct = verify_assertion(&stored, RP_ID, &CHALLENGE, auth_data, signature, require_uv);
    if credential_id != b"another credential" {
        assert_eq!(result.clone().map(|(_, c)| c), direct);
    }
    let Ok((index, new)) = result else {
        return;
    };
    assert_eq!(creds[index].credential_id, credential_id);
    let parsed = authdata::parse(auth_data).expect("accepted authData parses");
    assert_eq!(parsed.rp_id_hash, rp_id_hash(RP_ID));
    assert!(parsed.flags.user_present());
    assert!(parsed.attested.is_none());
    assert!(!require_uv || new.user_verified);
    assert_eq!(new.counter, parsed.sign_count);
    assert!(new.counter > counter || (new.counter == 0 && counter == 0));
    let key = PublicKey::from_cose(&stored.cose_key).expect("accepted with a bad stored key");
    assert!(
        key.verify(&signed_message(auth_data, &CHALLENGE), signature)
            .is_ok()
    );

    let after = Credential {
        counter: new.counter,
        ..stored
    };
    let again = verify_assertion(&after, RP_ID, &CHALLENGE, auth_data, signature, require_uv);
    if new.counter == 0 {
        assert!(again.is_ok());
    } else {
        assert!(
            matches!(again, Err(AssertionError::CounterRegression { .. })),
            "a replayed assertion was not refused: {again:?}"
        );
    }
});
