//! Email addresses and phone numbers as users type them (`herarxctl email add`, the login's
//! enrolment), and their masks in prompts and logs.
//!
//! Beyond "does not crash": a normalised address or number normalises to itself, keeps the
//! documented shape (one '@', lower-case domain, at most 254 bytes; '+' and 8 to 15 digits),
//! its mask never shows it whole, and `without_address` leaves no copy of it in a text.
#![no_main]

use herarx_fuzz::Fields;
use herarxd::delivery::contact::{
    mask_email, mask_phone, normalize_email, normalize_phone, without_address,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut f = Fields::new(data);
    let typed = f.text();
    let text = f.text();

    if let Ok(addr) = normalize_email(&typed) {
        assert_eq!(normalize_email(&addr).as_ref(), Ok(&addr), "not idempotent");
        assert!(addr.len() <= 254 && addr.is_ascii());
        let (local, domain) = addr.split_once('@').expect("no '@'");
        assert!(!local.is_empty() && !domain.contains('@'));
        assert_eq!(domain, domain.to_ascii_lowercase());
        assert!(!addr.contains(char::is_whitespace) && !addr.starts_with('-'));
        let mask = mask_email(&addr);
        // Only the first character of the name shows; the domain shows whole.
        let first: String = local.chars().take(1).collect();
        assert_eq!(mask, format!("{first}***@{domain}"));
        // A name with '*' in it ("*@example.com", "jj***@...") can be rebuilt from its mask's
        // asterisks and the character before it: the mask's own shape, nothing of the name.
        if !local.contains('*') {
            let scrubbed = without_address(&format!("{text}{addr}{text}"), &addr);
            assert!(
                !scrubbed
                    .to_ascii_lowercase()
                    .contains(&addr.to_ascii_lowercase())
                    || text
                        .to_ascii_lowercase()
                        .contains(&addr.to_ascii_lowercase()),
                "{scrubbed:?} still holds {addr:?}"
            );
        }
    } else {
        let _ = without_address(&text, &typed);
        let _ = mask_email(&typed);
    }

    if let Ok(number) = normalize_phone(&typed) {
        assert_eq!(
            normalize_phone(&number).as_ref(),
            Ok(&number),
            "not idempotent"
        );
        let digits = number.strip_prefix('+').expect("no '+'");
        assert!((8..=15).contains(&digits.len()));
        assert!(digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0'));
        let mask = mask_phone(&number);
        let shown = mask.chars().filter(char::is_ascii_digit).count();
        // The country code (1 to 3 digits) and at most the last 3: never the number.
        assert!(
            shown <= 6 && shown < digits.len(),
            "{mask:?} shows too much of {number:?}"
        );
    } else {
        let _ = mask_phone(&typed);
    }
});
