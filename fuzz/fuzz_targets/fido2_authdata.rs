//! WebAuthn authenticator data, as a security key (or anything on the HID bus) returns it.
//!
//! Beyond "does not crash": what parses is re-serialised from its parts to exactly the input
//! (nothing skipped, nothing trailing), the optional parts are there exactly when the flags
//! say so, and the credential key it delimits is a COSE_Key on its own.
#![no_main]

use coset::{CborSerializable, CoseKey};
use herarxd::fido2::authdata::{self, MAX_CREDENTIAL_ID_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = authdata::parse(data) else {
        return;
    };
    assert_eq!(
        parsed.attested.is_some(),
        parsed.flags.attested_credential()
    );
    assert_eq!(parsed.extensions.is_some(), parsed.flags.extensions());
    let mut again = parsed.rp_id_hash.to_vec();
    again.push(parsed.flags.0);
    again.extend_from_slice(&parsed.sign_count.to_be_bytes());
    if let Some(att) = &parsed.attested {
        let len = att.credential_id.len();
        assert!((1..=MAX_CREDENTIAL_ID_LEN).contains(&len));
        again.extend_from_slice(&att.aaguid);
        again.extend_from_slice(&(len as u16).to_be_bytes());
        again.extend_from_slice(att.credential_id);
        again.extend_from_slice(att.public_key);
        assert!(CoseKey::from_slice(att.public_key).is_ok());
    }
    if let Some(ext) = parsed.extensions {
        again.extend_from_slice(ext);
    }
    assert_eq!(again, data, "re-serialised authenticator data differs");
    assert_eq!(authdata::parse(&again), Ok(parsed));
});
