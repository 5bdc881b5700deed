//! A bound on security-key PINs sent for each caller, before the key's own counter.
//!
//! A FIDO2 key blocks its PIN for good after 8 wrong PINs (and asks for a replug after 3 in a
//! row), and whoever sends them need not own the key. So herarxd sends at most
//! [`ATTEMPTS_MAX`] PINs per caller uid in any [`WINDOW_SECONDS`] (enrolment and step-up
//! together), and never one to a key with [`RETRIES_FLOOR`] or fewer retries left: a user can
//! mistype a few times, but no caller can walk a key down to its block. Kept in memory (a
//! restart forgets it; the key's own counter, checked before every PIN, does not), bounded in
//! size: when full of live entries, new callers are refused rather than old ones forgotten.

use std::collections::HashMap;
use std::sync::Mutex;

/// PINs sent per caller uid per window.
pub const ATTEMPTS_MAX: usize = 3;
pub const WINDOW_SECONDS: u64 = 600;
/// A key with this many PIN retries left or fewer gets no PIN from herarxd.
pub const RETRIES_FLOOR: u32 = 3;
/// Callers tracked at most.
pub const CALLERS_MAX: usize = 4096;

#[derive(Default)]
pub struct PinAttempts(Mutex<HashMap<u32, Vec<u64>>>);

impl PinAttempts {
    /// Takes one attempt for `uid` at `now`; `Err(seconds)` until the next is allowed.
    pub fn take(&self, uid: u32, now: u64) -> Result<(), u64> {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let live = |at: &u64| at.saturating_add(WINDOW_SECONDS) > now;
        if !t.contains_key(&uid) && t.len() >= CALLERS_MAX {
            t.retain(|_, times| {
                times.retain(live);
                !times.is_empty()
            });
            if t.len() >= CALLERS_MAX {
                return Err(WINDOW_SECONDS);
            }
        }
        let times = t.entry(uid).or_default();
        times.retain(live);
        if times.len() >= ATTEMPTS_MAX {
            let oldest = times.iter().min().copied().unwrap_or(now);
            return Err(oldest
                .saturating_add(WINDOW_SECONDS)
                .saturating_sub(now)
                .max(1));
        }
        times.push(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_pins_per_uid_per_ten_minutes() {
        let p = PinAttempts::default();
        for i in 0..3 {
            assert_eq!(p.take(1000, 100 + i), Ok(()));
        }
        assert_eq!(p.take(1000, 200), Err(500), "until the first ages out");
        assert_eq!(p.take(1001, 200), Ok(()), "per uid");
        assert_eq!(p.take(1000, 700), Ok(()), "the first aged out");
        assert_eq!(p.take(1000, 700), Err(1), "the second ages out at 701");
    }

    #[test]
    fn a_full_table_refuses_new_callers_instead_of_forgetting_live_ones() {
        let p = PinAttempts::default();
        for uid in 0..CALLERS_MAX as u32 {
            assert_eq!(p.take(uid, 10), Ok(()));
        }
        assert!(p.take(u32::MAX, 11).is_err());
        assert_eq!(p.take(5, 11), Ok(()), "a tracked caller still counts");
        assert_eq!(
            p.take(u32::MAX, 10 + WINDOW_SECONDS),
            Ok(()),
            "all aged out"
        );
    }
}
