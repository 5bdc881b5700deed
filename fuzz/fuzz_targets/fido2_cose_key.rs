//! A credential public key (COSE_Key) as registered, and as the store hands it back.
//!
//! Beyond "does not crash": a key Herarx accepts is a COSE_Key, built again from its
//! coordinates it is accepted as the same key, and checking a signature with it (of any
//! shape) never panics.
#![no_main]

use coset::iana;
use coset::{CborSerializable, CoseKey, CoseKeyBuilder};
use herarxd::fido2::{Algorithm, PublicKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(key) = PublicKey::from_cose(data) else {
        return;
    };
    assert!(CoseKey::from_slice(data).is_ok());
    let rebuilt = match &key {
        PublicKey::Es256(vk) => {
            let pt = vk.to_encoded_point(false);
            let (Some(x), Some(y)) = (pt.x(), pt.y()) else {
                panic!("an accepted P-256 key has no affine coordinates");
            };
            CoseKeyBuilder::new_ec2_pub_key(iana::EllipticCurve::P_256, x.to_vec(), y.to_vec())
                .algorithm(iana::Algorithm::ES256)
                .build()
        }
        PublicKey::EdDsa(vk) => CoseKeyBuilder::new_okp_key()
            .param(
                iana::OkpKeyParameter::Crv as i64,
                ciborium::Value::from(iana::EllipticCurve::Ed25519 as i64),
            )
            .param(
                iana::OkpKeyParameter::X as i64,
                ciborium::Value::Bytes(vk.to_bytes().to_vec()),
            )
            .algorithm(iana::Algorithm::EdDSA)
            .build(),
    };
    let bytes = rebuilt.to_vec().expect("encoding a COSE key");
    assert_eq!(PublicKey::from_cose(&bytes), Ok(key.clone()));
    assert_eq!(
        key.algorithm().cose_id(),
        match key.algorithm() {
            Algorithm::Es256 => -7,
            Algorithm::EdDsa => -8,
        }
    );
    // Any bytes as a signature over any message: refused, never a panic.
    assert!(key.verify(data, data).is_err());
    assert!(key.verify(b"", &[]).is_err());
});
