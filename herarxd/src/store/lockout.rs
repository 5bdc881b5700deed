//! Failure counting and lockout, per user and per source, with time passed in.
//!
//! A local failure counts against the user's `local` counter. A remote failure counts against
//! the counter of its source address (`remote:<address>`) and against `remote`, all remote
//! sources together: guessing from one address locks that address out after `max_failures`;
//! guessing spread over many addresses locks the remote path after `remote_max_failures`. No
//! remote failure ever touches `local`, so nobody on the network can lock a user out of the
//! console. Each lock of a counter lasts twice as long as its previous one (up to
//! `max_lockout_seconds`), and the count of past locks is kept until the counter has been
//! quiet for that long.

use rusqlite::{Connection, OptionalExtension};

use super::{from_sql, to_sql};

/// Where an attempt comes from, as the daemon decided it (never as the caller claimed).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    Local,
    /// A remote login; the source is PAM_RHOST as given (an address, or a host name).
    Remote(String),
}

/// The counter of every remote source together.
pub const REMOTE_PATH: &str = "remote";

impl Scope {
    /// `local` or `remote`: the path, for logs and the audit trail.
    pub fn as_str(&self) -> &'static str {
        match self {
            Scope::Local => "local",
            Scope::Remote(_) => "remote",
        }
    }

    /// The counter this attempt's own failures go to.
    pub fn key(&self) -> String {
        match self {
            Scope::Local => "local".into(),
            Scope::Remote(source) => format!("remote:{}", source.trim().to_ascii_lowercase()),
        }
    }

    /// Every counter that can bar this attempt.
    fn keys(&self) -> Vec<(String, Limit)> {
        match self {
            Scope::Local => vec![("local".into(), Limit::PerSource)],
            Scope::Remote(_) => vec![
                (self.key(), Limit::PerSource),
                (REMOTE_PATH.into(), Limit::RemotePath),
            ],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    PerSource,
    RemotePath,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures within the window that lock one source (or local logins).
    pub max_failures: u32,
    /// Failures within the window, from all remote sources together, that lock remote logins.
    pub remote_max_failures: u32,
    pub window_seconds: u64,
    /// The first lock's length; each further lock of the same counter doubles it.
    pub lockout_seconds: u64,
    /// The longest a lock lasts.
    pub max_lockout_seconds: u64,
}

impl LockoutPolicy {
    fn max_for(&self, limit: Limit) -> u32 {
        match limit {
            Limit::PerSource => self.max_failures,
            Limit::RemotePath => self.remote_max_failures,
        }
    }

    /// The length of the lock that follows `previous_locks` earlier ones.
    pub fn lock_length(&self, previous_locks: u32) -> u64 {
        let factor = 1u64.checked_shl(previous_locks.min(32)).unwrap_or(u64::MAX);
        self.lockout_seconds
            .saturating_mul(factor)
            .min(self.max_lockout_seconds.max(self.lockout_seconds))
    }
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
    /// Locks so far (for the back-off); forgotten after a quiet `max_lockout_seconds`.
    pub lockouts: u32,
}

impl Failures {
    /// The unix time the lock ends, while it lasts.
    pub fn locked_at(&self, now: u64) -> Option<u64> {
        (self.locked_until > now).then_some(self.locked_until)
    }

    /// What still counts at `now`: a lock that has ended, or a window that has passed, starts
    /// the count afresh (the number of past locks stays for the back-off).
    pub fn current(self, now: u64, policy: &LockoutPolicy) -> Failures {
        if self.locked_until > now {
            return self;
        }
        let lock_ended = self.locked_until != 0;
        let window_ended = now >= self.window_start.saturating_add(policy.window_seconds);
        let quiet_since = self.locked_until.max(self.window_start);
        let lockouts = if now >= quiet_since.saturating_add(policy.max_lockout_seconds) {
            0
        } else {
            self.lockouts
        };
        if lock_ended || window_ended || self.count == 0 {
            Failures {
                lockouts,
                ..Failures::default()
            }
        } else {
            self
        }
    }

    /// The state after one more failure at `now`, locking at `max` failures.
    fn after_failure_max(self, now: u64, policy: &LockoutPolicy, max: u32) -> Failures {
        let mut f = self.current(now, policy);
        if f.locked_until > now {
            // Already locked (answers are refused before counting): leave it as it is.
            return f;
        }
        if f.count == 0 {
            f.window_start = now;
        }
        f.count = f.count.saturating_add(1);
        if f.count >= max {
            f.locked_until = now.saturating_add(policy.lock_length(f.lockouts));
            f.lockouts = f.lockouts.saturating_add(1);
        }
        f
    }

    /// The state after one more failure at `now` on a per-source (or local) counter.
    pub fn after_failure(self, now: u64, policy: &LockoutPolicy) -> Failures {
        self.after_failure_max(now, policy, policy.max_failures)
    }
}

/// The stored row of counter `key` as it is (not yet aged with [`Failures::current`]).
pub fn load_key(conn: &Connection, user: &str, key: &str) -> rusqlite::Result<Failures> {
    let mut stmt = conn.prepare_cached(
        "SELECT count, window_start, locked_until, lockouts FROM failures
         WHERE user = ?1 AND scope = ?2",
    )?;
    Ok(stmt
        .query_row((user, key), |r| {
            Ok(Failures {
                count: u32::try_from(r.get::<_, i64>(0)?).unwrap_or(u32::MAX),
                window_start: from_sql(r.get(1)?),
                locked_until: from_sql(r.get(2)?),
                lockouts: u32::try_from(r.get::<_, i64>(3)?).unwrap_or(u32::MAX),
            })
        })
        .optional()?
        .unwrap_or_default())
}

/// The stored row of the attempt's own counter (local, or its source).
pub fn load(conn: &Connection, user: &str, scope: &Scope) -> rusqlite::Result<Failures> {
    load_key(conn, user, &scope.key())
}

pub fn save_key(conn: &Connection, user: &str, key: &str, f: &Failures) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO failures (user, scope, count, window_start, locked_until, lockouts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (user, scope) DO UPDATE SET
            count = excluded.count,
            window_start = excluded.window_start,
            locked_until = excluded.locked_until,
            lockouts = excluded.lockouts",
    )?;
    stmt.execute((
        user,
        key,
        f.count,
        to_sql(f.window_start),
        to_sql(f.locked_until),
        f.lockouts,
    ))?;
    Ok(())
}

/// Until when this attempt is barred (its source, or the remote path, or local), if it is.
pub fn locked_until(
    conn: &Connection,
    user: &str,
    scope: &Scope,
    now: u64,
) -> rusqlite::Result<Option<u64>> {
    let mut until = None;
    for (key, _) in scope.keys() {
        if let Some(t) = load_key(conn, user, &key)?.locked_at(now) {
            until = Some(until.map_or(t, |u: u64| u.max(t)));
        }
    }
    Ok(until)
}

/// Counts one failure against every counter of the attempt. Returns the attempt's own counter
/// (local, or its source), with `locked_until` the latest lock now barring the attempt.
pub fn record_failure(
    conn: &Connection,
    user: &str,
    scope: &Scope,
    now: u64,
    policy: &LockoutPolicy,
) -> rusqlite::Result<Failures> {
    let mut own = Failures::default();
    let mut until = 0;
    for (i, (key, limit)) in scope.keys().into_iter().enumerate() {
        let f = load_key(conn, user, &key)?.after_failure_max(now, policy, policy.max_for(limit));
        save_key(conn, user, &key, &f)?;
        if f.locked_until > now {
            until = until.max(f.locked_until);
        }
        if i == 0 {
            own = f;
        }
    }
    own.locked_until = until;
    Ok(own)
}

/// A success clears the counters of the attempt (its source and the remote path, or local).
pub fn clear(conn: &Connection, user: &str, scope: &Scope) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached("DELETE FROM failures WHERE user = ?1 AND scope = ?2")?;
    for (key, _) in scope.keys() {
        stmt.execute((user, key))?;
    }
    Ok(())
}

/// Clears every counter of the user (admin unlock, admin reset). Returns how many there were.
pub fn clear_user(conn: &Connection, user: &str) -> rusqlite::Result<usize> {
    let mut stmt = conn.prepare_cached("DELETE FROM failures WHERE user = ?1")?;
    stmt.execute([user])
}

/// The user's counters that still count at `now`, by key.
pub fn list_user(
    conn: &Connection,
    user: &str,
    now: u64,
    policy: &LockoutPolicy,
) -> rusqlite::Result<Vec<(String, Failures)>> {
    let mut stmt =
        conn.prepare_cached("SELECT scope FROM failures WHERE user = ?1 ORDER BY scope")?;
    let keys: Vec<String> = stmt
        .query_map([user], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::new();
    for key in keys {
        let f = load_key(conn, user, &key)?.current(now, policy);
        if f.count > 0 || f.locked_until > now {
            out.push((key, f));
        }
    }
    Ok(out)
}

/// Drops rows that no longer count: no lock running, the window passed, and quiet for
/// `max_lockout_seconds` (so the back-off is remembered that long), so names that only ever
/// failed do not pile up.
pub fn purge_stale(conn: &Connection, now: u64, policy: &LockoutPolicy) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "DELETE FROM failures WHERE locked_until <= ?1 AND window_start + ?2 <= ?1
            AND max(locked_until, window_start) + ?3 <= ?1",
    )?;
    stmt.execute((
        to_sql(now),
        to_sql(policy.window_seconds),
        to_sql(policy.max_lockout_seconds),
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests;
