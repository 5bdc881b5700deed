//! TOTP verification (RFC 6238) with replay protection, as pure functions of their inputs.
//!
//! Time is always passed in. Code generation and the constant-time comparison come from
//! totp-rs; what it leaves to the caller (a code is accepted at most once, and never an older
//! one after a newer one) is done here against the last accepted time step.

use totp_rs::{Builder, Totp};
use zeroize::Zeroizing;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    /// The spelling of the configuration file, the store and otpauth URIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }

    pub fn from_config(s: &str) -> Option<Self> {
        match s {
            "SHA1" => Some(Algorithm::Sha1),
            "SHA256" => Some(Algorithm::Sha256),
            "SHA512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }

    fn to_totp_rs(self) -> totp_rs::Algorithm {
        match self {
            Algorithm::Sha1 => totp_rs::Algorithm::SHA1,
            Algorithm::Sha256 => totp_rs::Algorithm::SHA256,
            Algorithm::Sha512 => totp_rs::Algorithm::SHA512,
        }
    }
}

/// How codes of one factor are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub algorithm: Algorithm,
    pub digits: u8,
    /// Seconds per time step.
    pub period: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: 30,
        }
    }
}

/// Why a code was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Well-formed, but no step in the window produces it.
    Wrong,
    /// It matches a step at or before the last accepted one: already used, or older.
    Replayed,
    /// Not `digits` decimal digits (after removing spaces). Counts as wrong.
    Malformed,
    /// The stored parameters or secret cannot make codes (corrupt row). Counts as wrong.
    Unusable,
}

/// Removes spaces (apps show "123 456") and checks the result is `digits` ASCII digits.
pub fn normalize_code(code: &str, digits: u8) -> Result<Zeroizing<String>, Rejection> {
    if code.len() > 64 {
        return Err(Rejection::Malformed);
    }
    let stripped: Zeroizing<String> = Zeroizing::new(code.chars().filter(|c| *c != ' ').collect());
    if stripped.len() != usize::from(digits) || !stripped.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rejection::Malformed);
    }
    Ok(stripped)
}

fn generator(secret: &[u8], params: &Params) -> Option<Totp> {
    if params.period == 0 {
        return None;
    }
    Builder::new()
        .with_algorithm(params.algorithm.to_totp_rs())
        .with_digits(params.digits)
        .with_skew(0)
        .with_step_duration(params.period)
        .with_secret(secret)
        .build()
        .ok()
}

/// The code for unix time `time` (used by tests and tools; verification uses [`verify`]).
pub fn code_at(secret: &[u8], params: &Params, time: u64) -> Option<Zeroizing<String>> {
    generator(secret, params).map(|t| Zeroizing::new(t.generate(time).to_string()))
}

/// Checks `code` at unix time `now`, accepting the steps within `skew` of the current one that
/// come after `last_used_step`. Returns the matched step, to be stored as the new last one.
pub fn verify(
    secret: &[u8],
    params: &Params,
    code: &str,
    now: u64,
    skew: u32,
    last_used_step: Option<u64>,
) -> Result<u64, Rejection> {
    let code = normalize_code(code, params.digits)?;
    let totp = generator(secret, params).ok_or(Rejection::Unusable)?;
    let current = now / params.period;
    let first = current.saturating_sub(u64::from(skew));
    let last = current.saturating_add(u64::from(skew));
    let mut accepted = None;
    let mut replayed = false;
    // Every step of the window is computed and compared, whatever matches first, so the time
    // taken does not tell which step (if any) matched.
    for step in first..=last {
        let matched = totp.check(&code, step.saturating_mul(params.period)) == Some(step);
        if matched {
            if last_used_step.is_none_or(|l| step > l) {
                accepted = Some(step);
            } else {
                replayed = true;
            }
        }
    }
    match (accepted, replayed) {
        (Some(step), _) => Ok(step),
        (None, true) => Err(Rejection::Replayed),
        (None, false) => Err(Rejection::Wrong),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA1_SECRET: &[u8] = b"12345678901234567890";
    const SHA256_SECRET: &[u8] = b"12345678901234567890123456789012";
    const SHA512_SECRET: &[u8] =
        b"1234567890123456789012345678901234567890123456789012345678901234";

    fn p(algorithm: Algorithm, digits: u8) -> Params {
        Params {
            algorithm,
            digits,
            period: 30,
        }
    }

    /// RFC 6238 Appendix B.
    const VECTORS: [(u64, &str, &str, &str); 6] = [
        (59, "94287082", "46119246", "90693936"),
        (1111111109, "07081804", "68084774", "25091201"),
        (1111111111, "14050471", "67062674", "99943326"),
        (1234567890, "89005924", "91819424", "93441116"),
        (2000000000, "69279037", "90698825", "38618901"),
        (20000000000, "65353130", "77737706", "47863826"),
    ];

    #[test]
    fn rfc6238_appendix_b_vectors_verify() {
        for (t, sha1, sha256, sha512) in VECTORS {
            for (secret, algorithm, code) in [
                (SHA1_SECRET, Algorithm::Sha1, sha1),
                (SHA256_SECRET, Algorithm::Sha256, sha256),
                (SHA512_SECRET, Algorithm::Sha512, sha512),
            ] {
                let params = p(algorithm, 8);
                assert_eq!(
                    verify(secret, &params, code, t, 0, None),
                    Ok(t / 30),
                    "{algorithm:?} T={t}"
                );
                assert_eq!(&*code_at(secret, &params, t).unwrap(), code);
            }
        }
    }

    #[test]
    fn six_digit_codes_are_the_last_six_digits() {
        let params = p(Algorithm::Sha1, 6);
        assert_eq!(verify(SHA1_SECRET, &params, "287082", 59, 0, None), Ok(1));
        assert_eq!(verify(SHA1_SECRET, &params, "287 082", 59, 0, None), Ok(1));
        assert_eq!(
            verify(SHA1_SECRET, &params, "287083", 59, 0, None),
            Err(Rejection::Wrong)
        );
    }

    #[test]
    fn one_step_of_skew_is_accepted_and_two_are_not() {
        let params = p(Algorithm::Sha1, 8);
        // The code of step 37037036 (T=1111111109) checked from neighbouring steps.
        let code = "07081804";
        let step = 1111111109 / 30;
        let at = |s: u64| s * 30 + 7;
        assert_eq!(
            verify(SHA1_SECRET, &params, code, at(step + 1), 1, None),
            Ok(step)
        );
        assert_eq!(
            verify(SHA1_SECRET, &params, code, at(step - 1), 1, None),
            Ok(step)
        );
        assert_eq!(
            verify(SHA1_SECRET, &params, code, at(step + 2), 1, None),
            Err(Rejection::Wrong)
        );
        assert_eq!(
            verify(SHA1_SECRET, &params, code, at(step - 2), 1, None),
            Err(Rejection::Wrong)
        );
        assert_eq!(
            verify(SHA1_SECRET, &params, code, at(step + 1), 0, None),
            Err(Rejection::Wrong)
        );
    }

    #[test]
    fn the_same_step_is_accepted_only_once() {
        let params = p(Algorithm::Sha1, 8);
        let step = verify(SHA1_SECRET, &params, "14050471", 1111111111, 1, None).unwrap();
        assert_eq!(
            verify(SHA1_SECRET, &params, "14050471", 1111111111, 1, Some(step)),
            Err(Rejection::Replayed)
        );
    }

    #[test]
    fn an_older_step_after_a_newer_one_is_refused() {
        let params = p(Algorithm::Sha1, 6);
        let now = 1_700_000_000;
        let current = now / 30;
        let older = code_at(SHA1_SECRET, &params, (current - 1) * 30).unwrap();
        let newer = code_at(SHA1_SECRET, &params, current * 30).unwrap();
        let used = verify(SHA1_SECRET, &params, &newer, now, 1, None).unwrap();
        assert_eq!(used, current);
        assert_eq!(
            verify(SHA1_SECRET, &params, &older, now, 1, Some(used)),
            Err(Rejection::Replayed)
        );
        let next = code_at(SHA1_SECRET, &params, (current + 1) * 30).unwrap();
        assert_eq!(
            verify(SHA1_SECRET, &params, &next, now, 1, Some(used)),
            Ok(current + 1)
        );
    }

    #[test]
    fn malformed_codes_are_refused_as_such() {
        let params = p(Algorithm::Sha1, 6);
        for code in [
            "",
            "12345",
            "1234567",
            "12345a",
            "+12345",
            "١٢٣٤٥٦",
            "123\n456",
            "-12345",
        ] {
            assert_eq!(
                verify(SHA1_SECRET, &params, code, 59, 1, None),
                Err(Rejection::Malformed),
                "{code:?}"
            );
        }
        assert_eq!(
            normalize_code(" 12 34 56 ", 6).map(|c| c.to_string()),
            Ok("123456".into())
        );
    }

    #[test]
    fn a_secret_that_cannot_make_codes_is_unusable() {
        let params = p(Algorithm::Sha1, 6);
        assert_eq!(
            verify(b"short", &params, "123456", 59, 1, None),
            Err(Rejection::Unusable)
        );
    }

    #[test]
    fn time_zero_does_not_underflow() {
        let params = p(Algorithm::Sha1, 8);
        assert_eq!(verify(SHA1_SECRET, &params, "94287082", 0, 1, None), Ok(1));
    }
}
