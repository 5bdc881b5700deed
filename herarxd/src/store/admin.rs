//! What `herarxctl admin` reads and clears: one user's whole state, the list of users with any
//! state, the audit trail, and the two destructive actions (reset, unlock), each one IMMEDIATE
//! transaction with its audit row inside.

use herarx_proto::{AuditRecord, FactorInfo, UserSummary, limits};
use rusqlite::{Connection, TransactionBehavior};

use super::audit::{self, AuditCtx, AuditEntry, AuditResult};
use super::lockout::{self, Failures};
use super::{Store, StoreError, accounts, backup_codes, from_sql, to_sql};

/// A user's state as an admin sees it (no secret in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserState {
    pub factors: Vec<FactorInfo>,
    pub backup_codes_left: u32,
    /// Counters that still count, by key (`local`, `remote`, `remote:<address>`).
    pub locks: Vec<(String, Failures)>,
}

/// What a reset removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResetCounts {
    pub factors: u32,
    pub backup_codes: u32,
    pub pending: u32,
    pub counters: u32,
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The page of users after `after` (byte order), at most `limit`. Each table's own index on
/// `user` gives its names in order, and the compound SELECT merges them with the LIMIT pushed
/// down, so a page costs the same at the start as deep into 100,000 users.
const LIST_SQL: &str = "
    WITH page(user) AS (
        SELECT user FROM factors WHERE user > ?1
        UNION SELECT user FROM backup_codes WHERE user > ?1
        UNION SELECT user FROM failures WHERE user > ?1
        ORDER BY 1 LIMIT ?2
    )
    SELECT p.user,
        (SELECT count(*) FROM factors f WHERE f.user = p.user),
        (SELECT group_concat(kind, ',') FROM
            (SELECT DISTINCT kind FROM factors f WHERE f.user = p.user ORDER BY kind)),
        (SELECT coalesce(max(last_used), 0) FROM factors f WHERE f.user = p.user),
        (SELECT count(*) FROM backup_codes b WHERE b.user = p.user AND b.used = 0),
        EXISTS (SELECT 1 FROM failures l WHERE l.user = p.user AND l.locked_until > ?3)
    FROM page p ORDER BY p.user";

pub fn list(
    conn: &Connection,
    after: &str,
    limit: u32,
    now: u64,
) -> rusqlite::Result<Vec<UserSummary>> {
    let limit = limit.min(limits::PAGE_MAX);
    let mut stmt = conn.prepare_cached(LIST_SQL)?;
    let rows = stmt.query_map((after, limit, to_sql(now)), |r| {
        Ok(UserSummary {
            user: r.get(0)?,
            factors: count(usize::try_from(r.get::<_, i64>(1)?).unwrap_or(0)),
            kinds: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
            last_used: from_sql(r.get(3)?),
            backup_codes_left: count(usize::try_from(r.get::<_, i64>(4)?).unwrap_or(0)),
            locked: r.get(5)?,
        })
    })?;
    rows.collect()
}

const LOG_COLUMNS: &str =
    "id, time, user, caller_uid, service, rhost, remote, method, result, reason";

/// Audit rows newest first: of `user` (empty: everyone), with `time >= since`, with an id below
/// `before` (0: no bound), at most `limit` (capped at `PAGE_MAX`). With a user, the
/// `audit_by_user (user, id)` index walks that user's rows backwards; without one, the rowid.
pub fn log(
    conn: &Connection,
    user: &str,
    since: u64,
    before: u64,
    limit: u32,
) -> rusqlite::Result<Vec<AuditRecord>> {
    let limit = limit.min(limits::PAGE_MAX);
    let before = if before == 0 {
        i64::MAX
    } else {
        to_sql(before)
    };
    let map = |r: &rusqlite::Row<'_>| {
        Ok(AuditRecord {
            id: from_sql(r.get(0)?),
            time: from_sql(r.get(1)?),
            user: r.get(2)?,
            caller_uid: r.get(3)?,
            service: r.get(4)?,
            rhost: r.get(5)?,
            remote: r.get(6)?,
            method: r.get(7)?,
            result: r.get(8)?,
            reason: r.get(9)?,
        })
    };
    if user.is_empty() {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {LOG_COLUMNS} FROM audit WHERE id < ?1 AND time >= ?2
             ORDER BY id DESC LIMIT ?3"
        ))?;
        let rows = stmt.query_map((before, to_sql(since), limit), map)?;
        rows.collect()
    } else {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {LOG_COLUMNS} FROM audit INDEXED BY audit_by_user
             WHERE user = ?1 AND id < ?2 AND time >= ?3 ORDER BY id DESC LIMIT ?4"
        ))?;
        let rows = stmt.query_map((user, before, to_sql(since), limit), map)?;
        rows.collect()
    }
}

impl Store {
    /// Everything about `user` but secrets.
    pub fn admin_user_state(&mut self, user: &str, now: u64) -> Result<UserState, StoreError> {
        let factors = self.factor_infos(user)?;
        let backup_codes_left = backup_codes::left(&self.conn, user)?;
        let locks = lockout::list_user(&self.conn, user, now, &self.policy.lockout)?;
        Ok(UserState {
            factors,
            backup_codes_left,
            locks,
        })
    }

    pub fn admin_list(
        &mut self,
        after: &str,
        limit: u32,
        now: u64,
    ) -> Result<Vec<UserSummary>, StoreError> {
        Ok(list(&self.conn, after, limit, now)?)
    }

    pub fn admin_log(
        &mut self,
        user: &str,
        since: u64,
        before: u64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        Ok(log(&self.conn, user, since, before, limit)?)
    }

    /// Removes all of `ctx.user`'s factors, backup codes, pending enrolments, codes sent by
    /// email or text, failure counters, remembered addresses and SSH keys (and the opt-in), and
    /// restarts the enrolment window, in one transaction with its audit row
    /// (`ctx.caller_uid` is the admin). A user with nothing is not an error: the row says so.
    pub fn admin_reset(
        &mut self,
        ctx: &AuditCtx,
        now: u64,
    ) -> Result<(ResetCounts, AuditEntry), StoreError> {
        let user = ctx.user.as_str();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let factors = tx
            .prepare_cached("DELETE FROM factors WHERE user = ?1")?
            .execute([user])?;
        let codes = backup_codes::delete_all(&tx, user)?;
        // Codes sent by email or text message, for logins and enrolments alike, die too.
        let pending = tx
            .prepare_cached("DELETE FROM pending_enrollments WHERE user = ?1")?
            .execute([user])?
            + tx.prepare_cached("DELETE FROM sent_codes WHERE user = ?1")?
                .execute([user])?;
        let counters = lockout::clear_user(&tx, user)?;
        let remembered = super::remembered::forget_all(&tx, user)?;
        super::remembered::set_opt_in(&tx, user, false, now)?;
        accounts::mark_reset(&tx, user, now)?;
        let counts = ResetCounts {
            factors: count(factors),
            backup_codes: count(codes),
            pending: count(pending),
            counters: count(counters),
        };
        let entry = ctx.entry(
            now,
            "admin-reset",
            AuditResult::Success,
            format!(
                "reset by uid {}: {} factors, {} backup codes, {} pending enrolments, \
                 {} failure counters, {remembered} remembered addresses and keys removed",
                ctx.caller_uid,
                counts.factors,
                counts.backup_codes,
                counts.pending,
                counts.counters
            ),
        );
        audit::insert(&tx, &entry)?;
        tx.commit()?;
        Ok((counts, entry))
    }

    /// Clears `ctx.user`'s failure counters and lockouts, with its audit row. Returns how many
    /// counters there were.
    pub fn admin_unlock(
        &mut self,
        ctx: &AuditCtx,
        now: u64,
    ) -> Result<(u32, AuditEntry), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let cleared = count(lockout::clear_user(&tx, &ctx.user)?);
        let entry = ctx.entry(
            now,
            "admin-unlock",
            AuditResult::Success,
            format!(
                "unlocked by uid {}: {cleared} failure counters cleared",
                ctx.caller_uid
            ),
        );
        audit::insert(&tx, &entry)?;
        tx.commit()?;
        Ok((cleared, entry))
    }
}

#[cfg(test)]
mod tests;
