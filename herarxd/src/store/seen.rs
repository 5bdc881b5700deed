//! The remote addresses each user has passed a second factor from: a login from one never
//! seen raises the new-address alert.

use rusqlite::OptionalExtension;

use super::{Store, StoreError, to_sql};

/// Addresses kept per user; the least recently seen go first.
const PER_USER_MAX: i64 = 200;

impl Store {
    /// Records a login of `user` from `address`; whether it was never seen before.
    pub fn saw_address(&mut self, user: &str, address: &str, now: u64) -> Result<bool, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let known = tx
            .prepare_cached("SELECT 1 FROM seen_addresses WHERE user = ?1 AND address = ?2")?
            .query_row((user, address), |_| Ok(()))
            .optional()?
            .is_some();
        tx.prepare_cached(
            "INSERT INTO seen_addresses (user, address, first_seen, last_seen)
             VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (user, address) DO UPDATE SET last_seen = excluded.last_seen",
        )?
        .execute((user, address, to_sql(now)))?;
        tx.prepare_cached(
            "DELETE FROM seen_addresses WHERE user = ?1 AND address IN (
                SELECT address FROM seen_addresses WHERE user = ?1
                ORDER BY last_seen DESC LIMIT -1 OFFSET ?2)",
        )?
        .execute((user, PER_USER_MAX))?;
        tx.commit()?;
        Ok(!known)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::testing::open_store;

    #[test]
    fn an_address_is_new_once_per_user() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open_store(dir.path());
        assert!(s.saw_address("alice", "203.0.113.9", 100).unwrap());
        assert!(!s.saw_address("alice", "203.0.113.9", 200).unwrap());
        assert!(
            s.saw_address("bob", "203.0.113.9", 200).unwrap(),
            "per user"
        );
        assert!(s.saw_address("alice", "198.51.100.1", 300).unwrap());
    }
}
