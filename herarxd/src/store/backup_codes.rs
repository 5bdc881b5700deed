//! Backup codes: single-use recovery codes, stored only as keyed hashes.
//!
//! A code is 8 characters from a 31-character alphabet without look-alikes (no 0/o, 1/l/i),
//! shown as `xxxx-xxxx`: about 39.6 bits, so guessing under the lockout (a few tries per
//! quarter hour) is hopeless. The hash is HMAC-SHA256 under a key derived from the master key
//! (HKDF, its own label), over the user name and the code, so a stolen store alone gives
//! nothing to brute-force offline and rows cannot be moved between users. A login compares the
//! answer's hash with each unused hash of the user in constant time and marks the match used
//! inside the login's own transaction: a code works once, even for two logins at once.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rusqlite::Connection;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{StoreError, from_sql, to_sql};
use crate::crypto::master_key::MasterKey;

/// Codes in a set.
pub const SET_SIZE: usize = 10;
/// Characters of a code (without the dash).
pub const CODE_LEN: usize = 8;
/// At or below this many left, a login that used one says so.
pub const FEW_LEFT: u32 = 3;
/// No 0/o, 1/l/i: easy to read back from paper.
const ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";

type HmacSha256 = Hmac<Sha256>;

/// The hashing key, derived from the master key for this one use.
fn hash_key(master: &MasterKey) -> Zeroizing<[u8; 32]> {
    let hk = Hkdf::<Sha256>::new(Some(b"herarx/v1"), master.as_bytes());
    let mut okm = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's limit (255 * 32): this cannot fail.
    let _ = hk.expand(b"backup-code-hash", &mut okm[..]);
    okm
}

/// The code as typed, reduced to its 8 characters: case, spaces and dashes do not matter.
/// `None` when it cannot be a backup code.
pub fn normalize(answer: &str) -> Option<Zeroizing<String>> {
    let code: Zeroizing<String> = Zeroizing::new(
        answer
            .chars()
            .filter(|c| !matches!(c, '-' | ' ' | '\t'))
            .map(|c| c.to_ascii_lowercase())
            .collect(),
    );
    (code.len() == CODE_LEN && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

fn hash(master: &MasterKey, user: &str, code: &str) -> Vec<u8> {
    let key = hash_key(master);
    // HMAC takes keys of any length: new_from_slice cannot fail.
    match HmacSha256::new_from_slice(&key[..]) {
        Ok(mut mac) => {
            mac.update(user.as_bytes());
            mac.update(&[0]);
            mac.update(code.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// One new random code, `xxxx-xxxx`.
fn new_code() -> Result<Zeroizing<String>, StoreError> {
    let mut out = Zeroizing::new(String::with_capacity(CODE_LEN + 1));
    let mut buf = [0u8; 32];
    while out.len() < CODE_LEN + 1 {
        getrandom::fill(&mut buf).map_err(|_| StoreError::Random)?;
        for b in buf {
            // Rejection sampling keeps every character equally likely: 248 = 8 * 31.
            if b >= 248 {
                continue;
            }
            if out.len() == CODE_LEN / 2 {
                out.push('-');
            }
            out.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
            if out.len() == CODE_LEN + 1 {
                break;
            }
        }
    }
    Ok(out)
}

/// Replaces `user`'s set with a new one, inside the caller's transaction. Returns the codes,
/// to show once.
pub fn replace_set(
    conn: &Connection,
    master: &MasterKey,
    user: &str,
    now: u64,
) -> Result<Vec<Zeroizing<String>>, StoreError> {
    conn.prepare_cached("DELETE FROM backup_codes WHERE user = ?1")?
        .execute([user])?;
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO backup_codes (user, hash, created, used) VALUES (?1, ?2, ?3, 0)",
    )?;
    let mut codes = Vec::with_capacity(SET_SIZE);
    while codes.len() < SET_SIZE {
        let code = new_code()?;
        let Some(plain) = normalize(&code) else {
            continue;
        };
        // A duplicate within the set (1 in 10^11) is simply drawn again.
        if insert.execute((user, hash(master, user, &plain), to_sql(now)))? == 1 {
            codes.push(code);
        }
    }
    Ok(codes)
}

/// Consumes `answer` if it is one of `user`'s unused codes, inside the caller's transaction.
/// Returns the codes left after it, or `None` when it is not one.
pub fn consume(
    conn: &Connection,
    master: &MasterKey,
    user: &str,
    answer: &str,
    now: u64,
) -> Result<Option<u32>, StoreError> {
    let Some(plain) = normalize(answer) else {
        return Ok(None);
    };
    let wanted = hash(master, user, &plain);
    let mut stmt =
        conn.prepare_cached("SELECT hash FROM backup_codes WHERE user = ?1 AND used = 0")?;
    let unused: Vec<Vec<u8>> = stmt
        .query_map([user], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    // Compare with every row, in constant time each, without stopping at the match.
    let mut found: Option<&Vec<u8>> = None;
    for h in &unused {
        if bool::from(h.as_slice().ct_eq(&wanted)) {
            found = Some(h);
        }
    }
    let Some(h) = found else {
        return Ok(None);
    };
    let marked = conn
        .prepare_cached(
            "UPDATE backup_codes SET used = ?3 WHERE user = ?1 AND hash = ?2 AND used = 0",
        )?
        .execute((user, h, to_sql(now.max(1))))?;
    if marked != 1 {
        return Ok(None);
    }
    Ok(Some(left(conn, user)?))
}

/// Unused codes of `user`.
pub fn left(conn: &Connection, user: &str) -> Result<u32, StoreError> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM backup_codes WHERE user = ?1 AND used = 0")?
        .query_row([user], |r| r.get(0))?;
    Ok(u32::try_from(from_sql(n)).unwrap_or(u32::MAX))
}

/// Drops `user`'s codes (admin reset). Returns how many there were.
pub fn delete_all(conn: &Connection, user: &str) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached("DELETE FROM backup_codes WHERE user = ?1")?
        .execute([user])?)
}

impl super::Store {
    /// A first set of backup codes for a user who has just proven a new factor inside a login
    /// (the login itself is the proof: no step-up). One transaction with its audit row.
    pub fn issue_backup_codes(
        &mut self,
        ctx: &super::AuditCtx,
        now: u64,
    ) -> Result<(Vec<Zeroizing<String>>, super::AuditEntry), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let codes = replace_set(&tx, &self.key, &ctx.user, now)?;
        let entry = ctx.entry(
            now,
            "backup-codes",
            super::AuditResult::Success,
            format!(
                "{} backup codes issued after enrolment in the login",
                codes.len()
            ),
        );
        super::audit::insert(&tx, &entry)?;
        tx.commit()?;
        Ok((codes, entry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::open_store;

    #[test]
    fn a_set_has_ten_distinct_readable_codes_each_working_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = open_store(dir.path());
        let (c, k) = (s.conn(), s.key());
        let codes = replace_set(c, k, "alice", 100).unwrap();
        assert_eq!(codes.len(), SET_SIZE);
        let mut uniq: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
        uniq.sort_unstable();
        uniq.dedup();
        assert_eq!(uniq.len(), SET_SIZE);
        for code in &codes {
            assert_eq!(code.len(), 9);
            assert_eq!(&code[4..5], "-");
            assert!(normalize(code).is_some(), "{}", code.as_str());
        }
        assert_eq!(left(c, "alice").unwrap(), 10);
        assert_eq!(consume(c, k, "alice", &codes[3], 200).unwrap(), Some(9));
        assert_eq!(
            consume(c, k, "alice", &codes[3], 201).unwrap(),
            None,
            "once"
        );
        // Typed loosely: upper case, no dash, spaces.
        let loose = codes[4].to_uppercase().replace('-', " ");
        assert_eq!(consume(c, k, "alice", &loose, 202).unwrap(), Some(8));
        assert_eq!(
            consume(c, k, "bob", &codes[5], 203).unwrap(),
            None,
            "not bob's"
        );
        // Stored only as hashes.
        let raw: Vec<Vec<u8>> = c
            .prepare("SELECT hash FROM backup_codes")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for h in raw {
            assert_eq!(h.len(), 32);
            for code in &codes {
                assert!(!h.windows(4).any(|w| w == &code.as_bytes()[..4]));
            }
        }
    }

    #[test]
    fn a_new_set_voids_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let s = open_store(dir.path());
        let (c, k) = (s.conn(), s.key());
        let old = replace_set(c, k, "alice", 100).unwrap();
        let new = replace_set(c, k, "alice", 200).unwrap();
        assert_eq!(consume(c, k, "alice", &old[0], 300).unwrap(), None);
        assert_eq!(consume(c, k, "alice", &new[0], 300).unwrap(), Some(9));
        assert_eq!(delete_all(c, "alice").unwrap(), 10);
        assert_eq!(left(c, "alice").unwrap(), 0);
    }

    #[test]
    fn malformed_answers_are_not_codes() {
        for bad in [
            "",
            "123456",
            "abcd-efg",
            "abcd-efgh-j",
            "abcd-efgo",
            "abcd-efg1",
            "ab\u{e9}d-efgh",
        ] {
            assert!(normalize(bad).is_none(), "{bad}");
        }
        assert_eq!(normalize("AbCd-EfGh").unwrap().as_str(), "abcdefgh");
    }

    #[test]
    fn the_hash_depends_on_key_user_and_code() {
        let k1 = MasterKey::from_bytes([1; 32]);
        let k2 = MasterKey::from_bytes([2; 32]);
        let h = hash(&k1, "alice", "abcdefgh");
        assert_eq!(h.len(), 32);
        assert_ne!(h, hash(&k2, "alice", "abcdefgh"));
        assert_ne!(h, hash(&k1, "bob", "abcdefgh"));
        assert_ne!(h, hash(&k1, "alice", "abcdefgj"));
        assert_eq!(h, hash(&k1, "alice", "abcdefgh"));
    }
}
