//! The audit table: one row per decision, written inside the decision's own transaction.

use std::fmt;

use rusqlite::Connection;

use super::to_sql;

/// Who asked, for what login. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditCtx {
    /// The account concerned (as given; may not exist).
    pub user: String,
    pub caller_uid: u32,
    /// The PAM service; empty for self-service calls.
    pub service: String,
    pub rhost: String,
    pub remote: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditResult {
    /// Verified, or the change was made.
    Success,
    /// No second factor needed for this login (policy).
    Skip,
    /// A wrong answer, or a login that ended without success.
    Denied,
    /// Refused because of a lockout.
    Locked,
    /// The request itself was refused (permission, argument, step-up, unknown id).
    Refused,
    /// The daemon failed inside.
    Error,
}

impl AuditResult {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditResult::Success => "success",
            AuditResult::Skip => "skip",
            AuditResult::Denied => "denied",
            AuditResult::Locked => "locked",
            AuditResult::Refused => "refused",
            AuditResult::Error => "error",
        }
    }
}

/// One decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub time: u64,
    pub user: String,
    pub caller_uid: u32,
    pub service: String,
    pub rhost: String,
    pub remote: bool,
    /// What was attempted: `totp`, `begin`, `totp-enroll`, `totp-confirm`, `remove`, ...
    pub method: String,
    pub result: AuditResult,
    pub reason: String,
}

impl AuditCtx {
    pub fn entry(
        &self,
        time: u64,
        method: impl AsRef<str>,
        result: AuditResult,
        reason: impl Into<String>,
    ) -> AuditEntry {
        AuditEntry {
            time,
            user: self.user.clone(),
            caller_uid: self.caller_uid,
            service: self.service.clone(),
            rhost: self.rhost.clone(),
            remote: self.remote,
            method: method.as_ref().to_owned(),
            result,
            reason: reason.into(),
        }
    }
}

/// Quotes a value for a log line when it would otherwise be ambiguous.
fn field(v: &str) -> String {
    if v.is_empty() {
        "\"\"".into()
    } else if v
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '=' || c == '\\')
    {
        format!("{v:?}")
    } else {
        v.to_owned()
    }
}

impl fmt::Display for AuditEntry {
    /// The syslog line: `key=value` pairs in a fixed order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} user={} uid={} service={} rhost={} remote={} method={} result={} reason={}",
            match self.result {
                AuditResult::Success => "accepted",
                AuditResult::Skip => "skipped",
                AuditResult::Denied => "denied",
                AuditResult::Locked => "locked",
                AuditResult::Refused => "refused",
                AuditResult::Error => "error",
            },
            field(&self.user),
            self.caller_uid,
            field(&self.service),
            field(&self.rhost),
            if self.remote { "yes" } else { "no" },
            field(&self.method),
            self.result.as_str(),
            field(&self.reason),
        )
    }
}

pub fn insert(conn: &Connection, e: &AuditEntry) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO audit (time, user, caller_uid, service, rhost, remote, method, result, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    stmt.execute(rusqlite::params![
        to_sql(e.time),
        e.user,
        e.caller_uid,
        e.service,
        e.rhost,
        e.remote,
        e.method,
        e.result.as_str(),
        e.reason,
    ])?;
    Ok(())
}

/// Drops up to `batch` of the oldest rows older than `before` (unix seconds). Returns how many.
pub fn purge_older_than(conn: &Connection, before: u64, batch: u32) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "DELETE FROM audit WHERE id IN (
            SELECT id FROM audit WHERE time < ?1 ORDER BY time LIMIT ?2)",
    )?
    .execute((super::to_sql(before), batch))
}

/// Drops up to `batch` of the oldest rows beyond the newest `max_rows`. Returns how many.
pub fn purge_beyond(conn: &Connection, max_rows: u64, batch: u32) -> rusqlite::Result<usize> {
    let rows: i64 = conn.query_row("SELECT count(*) FROM audit", [], |r| r.get(0))?;
    let excess = u64::try_from(rows)
        .unwrap_or(0)
        .saturating_sub(max_rows)
        .min(u64::from(batch));
    if excess == 0 {
        return Ok(0);
    }
    conn.prepare_cached(
        "DELETE FROM audit WHERE id IN (SELECT id FROM audit ORDER BY id LIMIT ?1)",
    )?
    .execute([super::to_sql(excess)])
}

/// The last `limit` rows, newest first (admin reads and tests).
pub fn recent(conn: &Connection, limit: u32) -> rusqlite::Result<Vec<AuditEntry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT time, user, caller_uid, service, rhost, remote, method, result, reason
         FROM audit ORDER BY id DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit], |r| {
        let result: String = r.get(7)?;
        Ok(AuditEntry {
            time: super::from_sql(r.get(0)?),
            user: r.get(1)?,
            caller_uid: r.get(2)?,
            service: r.get(3)?,
            rhost: r.get(4)?,
            remote: r.get(5)?,
            method: r.get(6)?,
            result: match result.as_str() {
                "success" => AuditResult::Success,
                "skip" => AuditResult::Skip,
                "denied" => AuditResult::Denied,
                "locked" => AuditResult::Locked,
                "refused" => AuditResult::Refused,
                _ => AuditResult::Error,
            },
            reason: r.get(8)?,
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_rows_are_purged_in_bounded_batches() {
        let dir = tempfile::tempdir().unwrap();
        let s = crate::store::testing::open_store(dir.path());
        let ctx = AuditCtx {
            user: "alice".into(),
            ..AuditCtx::default()
        };
        for t in 0..25u64 {
            insert(
                s.conn(),
                &ctx.entry(1000 + t, "totp", AuditResult::Success, "x"),
            )
            .unwrap();
        }
        assert_eq!(purge_older_than(s.conn(), 1020, 8).unwrap(), 8, "a batch");
        assert_eq!(purge_older_than(s.conn(), 1020, 8).unwrap(), 8);
        assert_eq!(
            purge_older_than(s.conn(), 1020, 8).unwrap(),
            4,
            "only the old ones"
        );
        let left = recent(s.conn(), 100).unwrap();
        assert_eq!(left.len(), 5);
        assert!(left.iter().all(|r| r.time >= 1020));
    }

    #[test]
    fn rows_beyond_the_cap_are_dropped_oldest_first_in_bounded_batches() {
        let dir = tempfile::tempdir().unwrap();
        let s = crate::store::testing::open_store(dir.path());
        let ctx = AuditCtx {
            user: "alice".into(),
            ..AuditCtx::default()
        };
        for t in 0..25u64 {
            insert(s.conn(), &ctx.entry(t, "totp", AuditResult::Success, "x")).unwrap();
        }
        assert_eq!(purge_beyond(s.conn(), 10, 8).unwrap(), 8, "a batch");
        assert_eq!(purge_beyond(s.conn(), 10, 8).unwrap(), 7, "down to the cap");
        assert_eq!(purge_beyond(s.conn(), 10, 8).unwrap(), 0);
        let left = recent(s.conn(), 100).unwrap();
        assert_eq!(left.len(), 10);
        assert!(left.iter().all(|r| r.time >= 15), "the newest are kept");
    }

    #[test]
    fn housekeeping_holds_the_table_to_audit_max_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = crate::store::testing::open_store(dir.path());
        s.set_policy(crate::store::StorePolicy {
            audit_max_rows: 1_000,
            ..crate::store::testing::POLICY
        });
        let ctx = AuditCtx::default();
        let now = 1_700_000_000;
        for t in 0..1_500u64 {
            insert(
                s.conn(),
                &ctx.entry(now + t, "begin", AuditResult::Refused, "x"),
            )
            .unwrap();
        }
        s.prune(now + 1_500).unwrap();
        let count: i64 = s
            .conn()
            .query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 1_000);
    }

    #[test]
    fn the_log_line_quotes_what_needs_quoting() {
        let ctx = AuditCtx {
            user: "alice".into(),
            caller_uid: 0,
            service: "sshd".into(),
            rhost: "192.0.2.7".into(),
            remote: true,
        };
        let e = ctx.entry(5, "totp", AuditResult::Denied, "wrong code");
        assert_eq!(
            e.to_string(),
            "denied user=alice uid=0 service=sshd rhost=192.0.2.7 remote=yes method=totp result=denied reason=\"wrong code\""
        );
        let ctx = AuditCtx {
            user: "a b=\"c\"".into(),
            ..AuditCtx::default()
        };
        let line = ctx.entry(5, "begin", AuditResult::Refused, "x").to_string();
        assert!(line.contains(r#"user="a b=\"c\"""#), "{line}");
        assert!(line.contains("service=\"\""), "{line}");
    }
}
