//! otpauth:// URIs: the one herarxd hands out (`herarxd::crypto::otpauth::totp_uri`) and herarxctl's
//! reader of it (`herarxctl/src/otpauth.rs`, for typing the secret in by hand).
//!
//! Input fields (see `herarx_fuzz::Fields`): a URI for the reader; then issuer, user, host,
//! secret bytes and parameters for the writer.
//!
//! Beyond "does not crash": what the reader returns has a non-empty upper-case secret without
//! padding, and its grouped form is the secret again once the spaces are gone; and a URI the
//! daemon writes reads back to the same label, issuer, secret and parameters.
#![no_main]

use data_encoding::BASE32_NOPAD;
use herarx_fuzz::Fields;
use herarx_fuzz::ctl_otpauth::{group_secret, parse};
use herarxd::crypto::otpauth::totp_uri;
use herarxd::crypto::totp::{Algorithm, Params};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut f = Fields::new(data);
    if let Some(read) = parse(&f.text()) {
        assert!(!read.secret.is_empty());
        assert!(!read.secret.contains('='));
        assert_eq!(read.secret.to_ascii_uppercase(), *read.secret);
        let grouped = group_secret(&read.secret);
        assert_eq!(grouped.replace(' ', ""), *read.secret.replace(' ', ""));
    }

    let (issuer, user, host) = (f.text(), f.text(), f.text());
    let secret = f.bytes();
    let mode = f.byte();
    let params = Params {
        algorithm: match mode % 3 {
            0 => Algorithm::Sha1,
            1 => Algorithm::Sha256,
            _ => Algorithm::Sha512,
        },
        digits: 6 + (mode / 3) % 3,
        // The URI's period is a u32 for the reader; the daemon's are 15 to 120 seconds.
        period: u64::from(f.u64() as u32),
    };
    let uri = totp_uri(&issuer, &user, &host, secret, &params);
    let back = parse(&uri);
    if secret.is_empty() {
        assert!(back.is_none(), "a URI without a secret was read");
        return;
    }
    let Some(back) = back else {
        panic!("herarxctl cannot read the URI herarxd wrote");
    };
    let account = if host.is_empty() {
        user.clone()
    } else {
        format!("{user}@{host}")
    };
    assert_eq!(back.label, format!("{issuer}:{account}"));
    assert_eq!(back.issuer.as_deref(), Some(issuer.as_str()));
    assert_eq!(*back.secret, BASE32_NOPAD.encode(secret));
    assert_eq!(back.algorithm, params.algorithm.as_str());
    assert_eq!(back.digits, u32::from(params.digits));
    assert_eq!(u64::from(back.period), params.period);
});
