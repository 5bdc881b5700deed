//! What a login remembers after a second factor: a remote address (for users who opted in to
//! "only ask from new addresses") or an SSH key, each until an expiry. Forgotten by
//! `herarxctl forget` and by an admin reset.

use rusqlite::{Connection, OptionalExtension};

use super::{Store, StoreError, from_sql, to_sql};

pub const KIND_ADDRESS: &str = "address";
pub const KIND_SSH_KEY: &str = "ssh-key";
/// Entries kept per user and kind; remembering one more drops the oldest.
pub const PER_USER_MAX: usize = 64;

/// One remembered thing, as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remembered {
    pub kind: String,
    pub value: String,
    pub created: u64,
    pub expires: u64,
}

/// Until when `value` is remembered for `user`, if it still is at `now`.
pub fn until(
    conn: &Connection,
    user: &str,
    kind: &str,
    value: &str,
    now: u64,
) -> rusqlite::Result<Option<u64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT expires FROM remembered WHERE user = ?1 AND kind = ?2 AND value = ?3",
    )?;
    Ok(stmt
        .query_row((user, kind, value), |r| r.get::<_, i64>(0))
        .optional()?
        .map(from_sql)
        .filter(|e| *e > now))
}

/// Remembers `value` until `now + seconds` (renewing it when already there).
pub fn remember(
    conn: &Connection,
    user: &str,
    kind: &str,
    value: &str,
    seconds: u64,
    now: u64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO remembered (user, kind, value, created, expires) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (user, kind, value) DO UPDATE SET expires = excluded.expires",
    )?
    .execute((
        user,
        kind,
        value,
        to_sql(now),
        to_sql(now.saturating_add(seconds)),
    ))?;
    conn.prepare_cached(
        "DELETE FROM remembered WHERE user = ?1 AND kind = ?2 AND value IN (
            SELECT value FROM remembered WHERE user = ?1 AND kind = ?2
            ORDER BY expires DESC LIMIT -1 OFFSET ?3)",
    )?
    .execute((user, kind, PER_USER_MAX as i64))?;
    Ok(())
}

/// Everything remembered for `user` that has not expired, newest first.
pub fn list(conn: &Connection, user: &str, now: u64) -> rusqlite::Result<Vec<Remembered>> {
    let mut stmt = conn.prepare_cached(
        "SELECT kind, value, created, expires FROM remembered
         WHERE user = ?1 AND expires > ?2 ORDER BY created DESC, value",
    )?;
    let rows = stmt.query_map((user, to_sql(now)), |r| {
        Ok(Remembered {
            kind: r.get(0)?,
            value: r.get(1)?,
            created: from_sql(r.get(2)?),
            expires: from_sql(r.get(3)?),
        })
    })?;
    rows.collect()
}

/// Forgets everything remembered for `user`. Returns how many entries there were.
pub fn forget_all(conn: &Connection, user: &str) -> rusqlite::Result<usize> {
    conn.prepare_cached("DELETE FROM remembered WHERE user = ?1")?
        .execute([user])
}

/// Whether `user` opted in to "only ask from new addresses".
pub fn opted_in(conn: &Connection, user: &str) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached("SELECT remember_addresses FROM accounts WHERE user = ?1")?
        .query_row([user], |r| r.get::<_, i64>(0))
        .optional()?
        .is_some_and(|v| v != 0))
}

/// Sets the opt-in; turning it off also forgets the remembered addresses.
pub fn set_opt_in(conn: &Connection, user: &str, on: bool, now: u64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO accounts (user, first_seen, remember_addresses) VALUES (?1, ?2, ?3)
         ON CONFLICT (user) DO UPDATE SET remember_addresses = excluded.remember_addresses",
    )?
    .execute((user, to_sql(now), i64::from(on)))?;
    if !on {
        conn.prepare_cached("DELETE FROM remembered WHERE user = ?1 AND kind = ?2")?
            .execute((user, KIND_ADDRESS))?;
    }
    Ok(())
}

/// Drops expired entries.
pub fn purge_expired(conn: &Connection, now: u64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM remembered WHERE expires <= ?1")?
        .execute([to_sql(now)])?;
    Ok(())
}

impl Store {
    /// The opt-in and what is remembered for `user`, for its owner's status.
    pub fn remembered_status(
        &mut self,
        user: &str,
        now: u64,
    ) -> Result<(bool, Vec<Remembered>), StoreError> {
        Ok((opted_in(&self.conn, user)?, list(&self.conn, user, now)?))
    }

    /// Sets the opt-in, with its audit row.
    pub fn set_remember_addresses(
        &mut self,
        ctx: &super::AuditCtx,
        on: bool,
        now: u64,
    ) -> Result<super::AuditEntry, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        set_opt_in(&tx, &ctx.user, on, now)?;
        let entry = ctx.entry(
            now,
            "remember-addresses",
            super::AuditResult::Success,
            if on {
                "only ask from new addresses: on"
            } else {
                "only ask from new addresses: off (remembered addresses forgotten)"
            },
        );
        super::audit::insert(&tx, &entry)?;
        tx.commit()?;
        Ok(entry)
    }

    /// Forgets everything remembered for the user, with its audit row. Returns how many.
    pub fn forget(
        &mut self,
        ctx: &super::AuditCtx,
        now: u64,
    ) -> Result<(usize, super::AuditEntry), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = forget_all(&tx, &ctx.user)?;
        let entry = ctx.entry(
            now,
            "forget",
            super::AuditResult::Success,
            format!("{n} remembered addresses and keys forgotten"),
        );
        super::audit::insert(&tx, &entry)?;
        tx.commit()?;
        Ok((n, entry))
    }

    /// Until when `value` is remembered for `user` (a read).
    pub fn remembered_until(
        &mut self,
        user: &str,
        kind: &str,
        value: &str,
        now: u64,
    ) -> Result<Option<u64>, StoreError> {
        Ok(until(&self.conn, user, kind, value, now)?)
    }

    /// Whether `user` opted in to "only ask from new addresses".
    pub fn remembers_addresses(&mut self, user: &str) -> Result<bool, StoreError> {
        Ok(opted_in(&self.conn, user)?)
    }

    /// Remembers `value` for `user`, with its audit row, in one transaction.
    pub fn remember(
        &mut self,
        ctx: &super::AuditCtx,
        kind: &str,
        value: &str,
        seconds: u64,
        now: u64,
    ) -> Result<super::AuditEntry, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        remember(&tx, &ctx.user, kind, value, seconds, now)?;
        let entry = ctx.entry(
            now,
            "remember",
            super::AuditResult::Success,
            format!("{kind} {value} remembered for {}s", seconds),
        );
        super::audit::insert(&tx, &entry)?;
        tx.commit()?;
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::open_store;

    #[test]
    fn remembered_until_expiry_per_user_and_kind() {
        let dir = tempfile::tempdir().unwrap();
        let s = open_store(dir.path());
        let c = s.conn();
        remember(c, "alice", KIND_ADDRESS, "192.0.2.1", 100, 1000).unwrap();
        assert_eq!(
            until(c, "alice", KIND_ADDRESS, "192.0.2.1", 1099).unwrap(),
            Some(1100)
        );
        assert_eq!(
            until(c, "alice", KIND_ADDRESS, "192.0.2.1", 1100).unwrap(),
            None
        );
        assert_eq!(
            until(c, "alice", KIND_SSH_KEY, "192.0.2.1", 1000).unwrap(),
            None
        );
        assert_eq!(
            until(c, "bob", KIND_ADDRESS, "192.0.2.1", 1000).unwrap(),
            None
        );
        remember(c, "alice", KIND_ADDRESS, "192.0.2.1", 100, 1050).unwrap();
        assert_eq!(
            until(c, "alice", KIND_ADDRESS, "192.0.2.1", 1100).unwrap(),
            Some(1150)
        );
        assert_eq!(list(c, "alice", 1100).unwrap().len(), 1);
        assert_eq!(forget_all(c, "alice").unwrap(), 1);
        assert!(list(c, "alice", 1100).unwrap().is_empty());
    }

    #[test]
    fn at_most_so_many_per_user_and_kind() {
        let dir = tempfile::tempdir().unwrap();
        let s = open_store(dir.path());
        let c = s.conn();
        for i in 0..(PER_USER_MAX as u64 + 5) {
            remember(
                c,
                "alice",
                KIND_ADDRESS,
                &format!("10.0.0.{i}"),
                1000 + i,
                0,
            )
            .unwrap();
        }
        assert_eq!(list(c, "alice", 1).unwrap().len(), PER_USER_MAX);
        assert_eq!(
            until(c, "alice", KIND_ADDRESS, "10.0.0.0", 1).unwrap(),
            None,
            "oldest gone"
        );
    }

    #[test]
    fn opting_out_forgets_addresses_but_not_keys() {
        let dir = tempfile::tempdir().unwrap();
        let s = open_store(dir.path());
        let c = s.conn();
        assert!(!opted_in(c, "alice").unwrap());
        set_opt_in(c, "alice", true, 1).unwrap();
        assert!(opted_in(c, "alice").unwrap());
        remember(c, "alice", KIND_ADDRESS, "192.0.2.1", 100, 1).unwrap();
        remember(c, "alice", KIND_SSH_KEY, "SHA256:x", 100, 1).unwrap();
        set_opt_in(c, "alice", false, 2).unwrap();
        assert!(!opted_in(c, "alice").unwrap());
        let left: Vec<String> = list(c, "alice", 2)
            .unwrap()
            .into_iter()
            .map(|r| r.kind)
            .collect();
        assert_eq!(left, vec![KIND_SSH_KEY]);
    }
}
