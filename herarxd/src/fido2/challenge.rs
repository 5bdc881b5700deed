//! Single-use FIDO2 challenges, in memory: 32 random bytes bound to (user, purpose) with a
//! deadline. `take` consumes a challenge whatever the outcome, so a challenge is used at most
//! once. The caller passes the time in.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a challenge is for: a challenge issued for enrolment cannot be used to log in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Purpose {
    Register,
    Login,
}

/// A 32-byte challenge.
pub type Challenge = [u8; 32];

/// Outstanding challenges per (user, purpose); issuing one more drops the oldest.
pub const MAX_PER_USER: usize = 4;
/// Outstanding challenges in all, after expired ones are dropped.
pub const MAX_TOTAL: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChallengeError {
    /// The system random source failed.
    Random,
    /// Too many outstanding challenges (after pruning expired ones).
    TooMany,
    /// Never issued, or already used.
    Unknown,
    /// Issued for another user (it is now consumed).
    WrongUser,
    /// Issued for another purpose (it is now consumed).
    WrongPurpose,
    /// Past its deadline (it is now consumed).
    Expired,
}

impl fmt::Display for ChallengeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Random => "the random source failed",
            Self::TooMany => "too many outstanding FIDO2 challenges",
            Self::Unknown => "unknown or already used challenge",
            Self::WrongUser => "challenge was issued for another user",
            Self::WrongPurpose => "challenge was issued for another purpose",
            Self::Expired => "challenge expired",
        })
    }
}

impl std::error::Error for ChallengeError {}

#[derive(Debug)]
struct Entry {
    user: String,
    purpose: Purpose,
    issued: Instant,
    deadline: Instant,
}

/// The outstanding challenges of this daemon.
#[derive(Debug, Default)]
pub struct Challenges {
    inner: Mutex<HashMap<Challenge, Entry>>,
}

impl Challenges {
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Challenge, Entry>> {
        // Every change is a single insert/remove: see `crate::lock`.
        crate::lock::lock(&self.inner)
    }

    /// Issues a fresh challenge for `user` and `purpose`, valid until `now + ttl`.
    pub fn issue(
        &self,
        user: &str,
        purpose: Purpose,
        now: Instant,
        ttl: Duration,
    ) -> Result<Challenge, ChallengeError> {
        let mut challenge = [0u8; 32];
        getrandom::fill(&mut challenge).map_err(|_| ChallengeError::Random)?;
        let mut map = self.map();
        map.retain(|_, e| e.deadline > now);
        let mut mine: Vec<(Challenge, Instant)> = map
            .iter()
            .filter(|(_, e)| e.user == user && e.purpose == purpose)
            .map(|(c, e)| (*c, e.issued))
            .collect();
        if mine.len() >= MAX_PER_USER {
            mine.sort_by_key(|(_, issued)| *issued);
            for (c, _) in mine.iter().take(mine.len() + 1 - MAX_PER_USER) {
                map.remove(c);
            }
        }
        if map.len() >= MAX_TOTAL {
            return Err(ChallengeError::TooMany);
        }
        let deadline = now.checked_add(ttl).unwrap_or(now);
        map.insert(
            challenge,
            Entry {
                user: user.to_owned(),
                purpose,
                issued: now,
                deadline,
            },
        );
        Ok(challenge)
    }

    /// Consumes `challenge`: Ok only if it was issued for `user` and `purpose` and `now` is
    /// before its deadline. A second `take` of the same challenge is `Unknown`.
    pub fn take(
        &self,
        challenge: &Challenge,
        user: &str,
        purpose: Purpose,
        now: Instant,
    ) -> Result<(), ChallengeError> {
        let entry = self
            .map()
            .remove(challenge)
            .ok_or(ChallengeError::Unknown)?;
        if entry.user != user {
            return Err(ChallengeError::WrongUser);
        }
        if entry.purpose != purpose {
            return Err(ChallengeError::WrongPurpose);
        }
        if now >= entry.deadline {
            return Err(ChallengeError::Expired);
        }
        Ok(())
    }

    /// How many challenges are outstanding (expired ones included until the next `issue`).
    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
