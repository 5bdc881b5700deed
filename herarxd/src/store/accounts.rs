//! Per-account settings that are not factors: the primary method, and when Herarx first saw
//! the account or an admin last reset it (the start of the enrolment window).

use rusqlite::{Connection, OptionalExtension};

use super::{from_sql, to_sql};

/// The account's row, or the defaults when it has none.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Account {
    /// The factor the login offers first; `None`: the oldest.
    pub primary_factor: Option<String>,
    /// Unix time Herarx first saw the account; 0 when never.
    pub first_seen: u64,
    /// Unix time of the last admin reset; 0 when never.
    pub reset_at: u64,
}

impl Account {
    /// When the enrolment window started: the last reset, else the first sight.
    pub fn window_start(&self) -> u64 {
        self.reset_at.max(self.first_seen)
    }
}

pub fn load(conn: &Connection, user: &str) -> rusqlite::Result<Account> {
    let mut stmt = conn.prepare_cached(
        "SELECT primary_factor, first_seen, reset_at FROM accounts WHERE user = ?1",
    )?;
    Ok(stmt
        .query_row([user], |r| {
            Ok(Account {
                primary_factor: r.get(0)?,
                first_seen: from_sql(r.get(1)?),
                reset_at: from_sql(r.get(2)?),
            })
        })
        .optional()?
        .unwrap_or_default())
}

/// Records that the account was seen at `now`, unless it was seen before. Returns the row.
pub fn touch(conn: &Connection, user: &str, now: u64) -> rusqlite::Result<Account> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO accounts (user, first_seen) VALUES (?1, ?2) ON CONFLICT (user) DO NOTHING",
    )?;
    stmt.execute((user, to_sql(now)))?;
    load(conn, user)
}

pub fn set_primary(
    conn: &Connection,
    user: &str,
    factor: Option<&str>,
    now: u64,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO accounts (user, primary_factor, first_seen) VALUES (?1, ?2, ?3)
         ON CONFLICT (user) DO UPDATE SET primary_factor = excluded.primary_factor",
    )?;
    stmt.execute((user, factor, to_sql(now)))?;
    Ok(())
}

/// An admin reset: no primary, and the enrolment window starts again at `now`.
pub fn mark_reset(conn: &Connection, user: &str, now: u64) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO accounts (user, primary_factor, first_seen, reset_at) VALUES (?1, NULL, ?2, ?2)
         ON CONFLICT (user) DO UPDATE SET primary_factor = NULL, reset_at = excluded.reset_at",
    )?;
    stmt.execute((user, to_sql(now)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sight_is_kept_and_a_reset_restarts_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let s = crate::store::testing::open_store(dir.path());
        let c = s.conn();
        assert_eq!(load(c, "alice").unwrap(), Account::default());
        assert_eq!(touch(c, "alice", 100).unwrap().first_seen, 100);
        assert_eq!(touch(c, "alice", 200).unwrap().first_seen, 100);
        set_primary(c, "alice", Some("abcd1234"), 300).unwrap();
        assert_eq!(
            load(c, "alice").unwrap().primary_factor.as_deref(),
            Some("abcd1234")
        );
        mark_reset(c, "alice", 400).unwrap();
        let a = load(c, "alice").unwrap();
        assert_eq!(
            (a.primary_factor.clone(), a.first_seen, a.window_start()),
            (None, 100, 400)
        );
        mark_reset(c, "bob", 500).unwrap();
        assert_eq!(load(c, "bob").unwrap().window_start(), 500);
    }
}
