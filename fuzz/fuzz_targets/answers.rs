//! The answers a login reads at its prompts: app codes (`totp::normalize_code`, then
//! `totp::verify`), backup codes (`store::backup_codes::normalize`) and codes sent by email or
//! text (`store::sent_codes::normalize`). The method menu's choice is parsed inside
//! `login/answer.rs` (`Logins::answer_menu`, `str::parse::<usize>` then a checked index) and is not
//! reachable without a store; see fuzz/README.md.
//!
//! Input fields (see `herarx_fuzz::Fields`): the answer; then a secret, parameters and a time
//! for the TOTP check.
//!
//! Beyond "does not crash": a normalised answer normalises to itself and has its documented
//! shape; and for any secret, parameters and time, the code the daemon makes is accepted once
//! at its own step and then refused as replayed, and the answer as typed is never accepted
//! at a step already used.
#![no_main]

use herarx_fuzz::Fields;
use herarxd::store::{backup_codes, sent_codes};
use herarxd::crypto::totp::{self, Algorithm, Params, Rejection};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut f = Fields::new(data);
    let answer = f.text();

    for digits in 6..=8u8 {
        if let Ok(code) = totp::normalize_code(&answer, digits) {
            assert_eq!(code.len(), usize::from(digits));
            assert!(code.bytes().all(|b| b.is_ascii_digit()));
            assert_eq!(totp::normalize_code(&code, digits).as_deref(), Ok(&*code));
        }
        if let Some(code) = sent_codes::normalize(&answer, u32::from(digits)) {
            assert_eq!(code.len(), usize::from(digits));
            assert!(code.bytes().all(|b| b.is_ascii_digit()));
            assert_eq!(sent_codes::normalize(&code, u32::from(digits)), Some(code));
        }
    }
    if let Some(code) = backup_codes::normalize(&answer) {
        assert_eq!(code.len(), backup_codes::CODE_LEN);
        assert!(!code.contains(['0', 'o', '1', 'l', 'i']) && code.is_ascii());
        assert_eq!(code.to_ascii_lowercase(), *code);
        assert_eq!(backup_codes::normalize(&code), Some(code.clone()));
        // The shape it is printed in reads back the same.
        let printed = format!("{}-{}", &code[..4], &code[4..]).to_ascii_uppercase();
        assert_eq!(backup_codes::normalize(&printed), Some(code));
    }

    // TOTP with parameters as the store may hold them (the config allows 6-8 digits, 15-120 s).
    let secret = f.bytes();
    let mode = f.byte();
    let params = Params {
        algorithm: match mode % 3 {
            0 => Algorithm::Sha1,
            1 => Algorithm::Sha256,
            _ => Algorithm::Sha512,
        },
        digits: 6 + (mode / 3) % 3,
        period: 15 + f.u64() % 106,
    };
    let now = f.u64();
    let skew = u32::from(f.byte() % 3);
    let Some(code) = totp::code_at(secret, &params, now) else {
        // The generator refuses this secret: so must the check.
        assert_eq!(
            totp::verify(secret, &params, &answer, now, skew, None).err(),
            match totp::normalize_code(&answer, params.digits) {
                Ok(_) => Some(Rejection::Unusable),
                Err(e) => Some(e),
            }
        );
        return;
    };
    let step = now / params.period;
    let first = totp::verify(secret, &params, &code, now, skew, None);
    assert_eq!(first.map(|s| s.abs_diff(step) <= u64::from(skew)), Ok(true));
    let used = first.unwrap_or(step);
    assert!(used >= step, "the latest matching step is kept");
    assert_eq!(
        totp::verify(secret, &params, &code, now, skew, Some(used)),
        Err(Rejection::Replayed)
    );
    if let Ok(s) = totp::verify(secret, &params, &answer, now, skew, Some(used)) {
        assert!(s > used, "an answer was accepted at a step already used");
    }
});
