//! Failure counting and lockout, per user and per scope (local or remote), with time passed in.
//!
//! Remote and local failures are counted apart, so a network attacker who guesses codes can
//! lock the user out of remote logins only, never out of the console.

use rusqlite::{Connection, OptionalExtension};

use super::{from_sql, to_sql};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Local,
    Remote,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Local => "local",
            Scope::Remote => "remote",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures within the window that lock the scope.
    pub max_failures: u32,
    pub window_seconds: u64,
    pub lockout_seconds: u64,
}

/// One row of the `failures` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Failures {
    /// Failures counted in the current window.
    pub count: u32,
    /// Unix time of the first failure of the window.
    pub window_start: u64,
    /// Unix time until which logins are refused; 0 when never locked.
    pub locked_until: u64,
}

impl Failures {
    /// The unix time the lock ends, while it lasts.
    pub fn locked_at(&self, now: u64) -> Option<u64> {
        (self.locked_until > now).then_some(self.locked_until)
    }

    /// What still counts at `now`: a lock that has ended, or a window that has passed, starts
    /// afresh.
    pub fn current(self, now: u64, policy: &LockoutPolicy) -> Failures {
        if self.locked_until > now {
            return self;
        }
        let lock_ended = self.locked_until != 0;
        let window_ended = now >= self.window_start.saturating_add(policy.window_seconds);
        if lock_ended || window_ended || self.count == 0 {
            Failures::default()
        } else {
            self
        }
    }

    /// The state after one more failure at `now`.
    pub fn after_failure(self, now: u64, policy: &LockoutPolicy) -> Failures {
        let mut f = self.current(now, policy);
        if f.locked_until > now {
            // Already locked (answers are refused before counting): leave it as it is.
            return f;
        }
        if f.count == 0 {
            f.window_start = now;
        }
        f.count = f.count.saturating_add(1);
        if f.count >= policy.max_failures {
            f.locked_until = now.saturating_add(policy.lockout_seconds);
        }
        f
    }
}

/// The stored row as it is (not yet aged with [`Failures::current`]).
pub fn load(conn: &Connection, user: &str, scope: Scope) -> rusqlite::Result<Failures> {
    let mut stmt = conn.prepare_cached(
        "SELECT count, window_start, locked_until FROM failures WHERE user = ?1 AND scope = ?2",
    )?;
    Ok(stmt
        .query_row((user, scope.as_str()), |r| {
            Ok(Failures {
                count: u32::try_from(r.get::<_, i64>(0)?).unwrap_or(u32::MAX),
                window_start: from_sql(r.get(1)?),
                locked_until: from_sql(r.get(2)?),
            })
        })
        .optional()?
        .unwrap_or_default())
}

pub fn save(conn: &Connection, user: &str, scope: Scope, f: &Failures) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO failures (user, scope, count, window_start, locked_until)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (user, scope) DO UPDATE SET
            count = excluded.count,
            window_start = excluded.window_start,
            locked_until = excluded.locked_until",
    )?;
    stmt.execute((
        user,
        scope.as_str(),
        f.count,
        to_sql(f.window_start),
        to_sql(f.locked_until),
    ))?;
    Ok(())
}

/// A success resets the scope's counter.
pub fn clear(conn: &Connection, user: &str, scope: Scope) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached("DELETE FROM failures WHERE user = ?1 AND scope = ?2")?;
    stmt.execute((user, scope.as_str()))?;
    Ok(())
}

/// Drops rows that no longer count (ended locks, passed windows), so names that only ever
/// failed do not pile up.
pub fn purge_stale(conn: &Connection, now: u64, policy: &LockoutPolicy) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "DELETE FROM failures WHERE locked_until <= ?1 AND (locked_until != 0 OR window_start + ?2 <= ?1)",
    )?;
    stmt.execute((to_sql(now), to_sql(policy.window_seconds)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: LockoutPolicy = LockoutPolicy {
        max_failures: 5,
        window_seconds: 900,
        lockout_seconds: 600,
    };

    fn fail_n(mut f: Failures, n: u32, start: u64, gap: u64) -> Failures {
        for i in 0..u64::from(n) {
            f = f.after_failure(start + i * gap, &P);
        }
        f
    }

    #[test]
    fn max_failures_within_the_window_lock_for_lockout_seconds() {
        let f = fail_n(Failures::default(), 4, 1000, 10);
        assert_eq!(f.count, 4);
        assert_eq!(f.locked_at(1040), None);
        let f = f.after_failure(1040, &P);
        assert_eq!(f.count, 5);
        assert_eq!(f.locked_until, 1040 + 600);
        assert_eq!(f.locked_at(1041), Some(1640));
        assert_eq!(f.locked_at(1639), Some(1640));
        assert_eq!(
            f.locked_at(1640),
            None,
            "the lock lasts exactly lockout_seconds"
        );
    }

    #[test]
    fn an_expired_window_resets_the_count() {
        let f = fail_n(Failures::default(), 4, 1000, 10);
        // The window began at 1000; at 1900 it is over.
        let f = f.after_failure(1900, &P);
        assert_eq!(f.count, 1);
        assert_eq!(f.window_start, 1900);
        assert_eq!(f.locked_until, 0);
        // One second before the end it still counts.
        let g = fail_n(Failures::default(), 4, 1000, 10).after_failure(1899, &P);
        assert_eq!(g.count, 5);
        assert!(g.locked_at(1899).is_some());
    }

    #[test]
    fn after_a_lock_ends_counting_starts_afresh() {
        let f = fail_n(Failures::default(), 5, 1000, 1);
        assert_eq!(f.locked_until, 1604);
        assert_eq!(f.current(1604, &P), Failures::default());
        let f = f.after_failure(1700, &P);
        assert_eq!((f.count, f.window_start, f.locked_until), (1, 1700, 0));
    }

    #[test]
    fn failures_while_locked_do_not_extend_the_lock() {
        let f = fail_n(Failures::default(), 5, 1000, 1);
        let g = f.after_failure(1100, &P);
        assert_eq!(g, f);
    }

    #[test]
    fn scopes_are_counted_apart_and_survive_in_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let s = crate::store::testing::open_store(dir.path());
        let conn = s.conn();
        let locked = fail_n(Failures::default(), 5, 1000, 1);
        save(conn, "alice", Scope::Remote, &locked).unwrap();
        assert_eq!(load(conn, "alice", Scope::Remote).unwrap(), locked);
        assert_eq!(
            load(conn, "alice", Scope::Local).unwrap(),
            Failures::default()
        );
        assert_eq!(
            load(conn, "bob", Scope::Remote).unwrap(),
            Failures::default()
        );
        clear(conn, "alice", Scope::Remote).unwrap();
        assert_eq!(
            load(conn, "alice", Scope::Remote).unwrap(),
            Failures::default()
        );
    }

    #[test]
    fn purge_keeps_only_rows_that_still_count() {
        let dir = tempfile::tempdir().unwrap();
        let s = crate::store::testing::open_store(dir.path());
        let conn = s.conn();
        let counting = fail_n(Failures::default(), 2, 1000, 1);
        let locked = fail_n(Failures::default(), 5, 1000, 1);
        save(conn, "counting", Scope::Local, &counting).unwrap();
        save(conn, "locked", Scope::Local, &locked).unwrap();
        purge_stale(conn, 1500, &P).unwrap();
        assert_eq!(load(conn, "counting", Scope::Local).unwrap(), counting);
        assert_eq!(load(conn, "locked", Scope::Local).unwrap(), locked);
        purge_stale(conn, 1900, &P).unwrap();
        assert_eq!(
            load(conn, "counting", Scope::Local).unwrap(),
            Failures::default()
        );
        assert_eq!(
            load(conn, "locked", Scope::Local).unwrap(),
            Failures::default()
        );
    }
}
