//! TOTP enrolment (begin, confirm, replacing a factor). Removal, backup codes, the primary
//! factor and names are in `factor_changes.rs` (their types re-exported here, where callers
//! have always found them).
//!
//! Each operation is one IMMEDIATE transaction with its audit row. When the user already has a
//! factor, the change needs a fresh code from one of them (step-up), checked by the same
//! code path as logins: consumed, counted and subject to lockout.

use crate::store::FactorKind;
use herarx_proto::FactorInfo;
use rusqlite::{Connection, OptionalExtension};
use zeroize::Zeroizing;

use super::Decision;
use super::audit::{AuditCtx, AuditEntry, AuditResult};
use super::factors::{self, FactorRow};
use super::install::install;
use super::step_up::{AdditionRefusal, StepUp, StepUpRefusal, addition_refusal};
use super::verify::VerifyOutcome;
use super::{Ctx, Store, StoreError, from_sql, random_hex, to_sql};
use crate::crypto::seal::{self, Kind};
use crate::crypto::totp::{self, Algorithm, Params};

pub use super::factor_changes::{BackupCodesOutcome, FactorChange, RemoveOutcome};

/// A pending enrolment is discarded this long after it began.
pub const PENDING_TTL_SECONDS: u64 = 600;
/// Pending enrolments kept per user; starting one more drops the oldest.
pub const PENDING_PER_USER_MAX: u32 = 5;
/// Wrong confirmation codes before a pending enrolment is dropped.
pub const CONFIRM_ATTEMPTS_MAX: u32 = 5;
/// Bytes of a new TOTP secret (160 bits, as RFC 4226 recommends).
pub const SECRET_LEN: usize = 20;

/// A started enrolment. The secret goes into the otpauth URI once and nowhere else.
pub struct NewEnrollment {
    pub id: String,
    pub secret: Zeroizing<Vec<u8>>,
    pub params: Params,
    pub expires: u64,
}

/// Never the secret: a `{:?}` in a log line must not leak it.
impl std::fmt::Debug for NewEnrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewEnrollment")
            .field("id", &self.id)
            .field("secret", &"(redacted)")
            .field("params", &self.params)
            .field("expires", &self.expires)
            .finish()
    }
}

#[derive(Debug)]
pub enum BeginOutcome {
    Started(NewEnrollment),
    /// The user has a factor and gave no step-up code.
    StepUpRequired,
    /// The step-up code was not accepted (a `Rejected` or `Locked` outcome).
    StepUpFailed(VerifyOutcome),
    TooManyFactors,
    /// The factor to replace is not one of the user's.
    NoSuchFactor,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfirmOutcome {
    Enrolled(FactorInfo),
    /// Unknown id, another user's, or expired.
    NoSuchEnrollment,
    /// Wrong code; 0 tries left means the pending enrolment is gone.
    Wrong {
        tries_left: u32,
    },
    TooManyFactors,
    /// The account gained a factor (or backup codes) after this enrolment began without a
    /// step-up: it needs one now. The pending enrolment is gone; start again.
    StepUpRequired,
    /// The factor this enrolment was to replace is gone. The pending enrolment is gone too.
    NoSuchFactor,
}

struct PendingRow {
    name: String,
    sealed: Vec<u8>,
    params: Params,
    attempts: u32,
    /// The factor the confirmation replaces, if any.
    replaces: Option<String>,
    /// The enrolment began after a step-up.
    stepped_up: bool,
}

fn get_pending(
    conn: &Connection,
    user: &str,
    id: &str,
    now: u64,
) -> rusqlite::Result<Option<PendingRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, sealed, algorithm, digits, period, attempts, replaces, stepped_up
         FROM pending_enrollments
         WHERE id = ?1 AND user = ?2 AND expires > ?3",
    )?;
    stmt.query_row((id, user, to_sql(now)), |r| {
        let algorithm: String = r.get(2)?;
        Ok(PendingRow {
            name: r.get(0)?,
            sealed: r.get(1)?,
            params: Params {
                algorithm: Algorithm::from_config(&algorithm).unwrap_or(Algorithm::Sha1),
                digits: u8::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                period: from_sql(r.get(4)?),
            },
            attempts: u32::try_from(r.get::<_, i64>(5)?).unwrap_or(u32::MAX),
            replaces: r.get(6)?,
            stepped_up: r.get(7)?,
        })
    })
    .optional()
}

fn delete_pending(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached("DELETE FROM pending_enrollments WHERE id = ?1")?;
    stmt.execute([id])?;
    Ok(())
}

pub fn purge_expired(conn: &Connection, now: u64) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached("DELETE FROM pending_enrollments WHERE expires <= ?1")?;
    stmt.execute([to_sql(now)])?;
    Ok(())
}

pub fn pending_count(conn: &Connection, user: &str) -> rusqlite::Result<u32> {
    let mut stmt =
        conn.prepare_cached("SELECT count(*) FROM pending_enrollments WHERE user = ?1")?;
    stmt.query_row([user], |r| r.get(0))
}

impl From<StepUpRefusal> for BeginOutcome {
    fn from(r: StepUpRefusal) -> Self {
        match r {
            StepUpRefusal::Missing => BeginOutcome::StepUpRequired,
            StepUpRefusal::Failed(o) => BeginOutcome::StepUpFailed(o),
        }
    }
}

impl From<AdditionRefusal> for BeginOutcome {
    fn from(r: AdditionRefusal) -> Self {
        match r {
            AdditionRefusal::NoSuchFactor => BeginOutcome::NoSuchFactor,
            AdditionRefusal::TooMany(_) => BeginOutcome::TooManyFactors,
            AdditionRefusal::StepUp(r) => BeginOutcome::from(r),
        }
    }
}

impl From<AdditionRefusal> for ConfirmOutcome {
    fn from(r: AdditionRefusal) -> Self {
        match r {
            AdditionRefusal::NoSuchFactor => ConfirmOutcome::NoSuchFactor,
            AdditionRefusal::TooMany(_) => ConfirmOutcome::TooManyFactors,
            AdditionRefusal::StepUp(_) => ConfirmOutcome::StepUpRequired,
        }
    }
}

impl Store {
    /// Starts a TOTP enrolment named `name` for `ctx.user` with a new random secret.
    pub fn begin_totp_enrollment(
        &mut self,
        ctx: &AuditCtx,
        name: &str,
        step_up: &str,
        params: Params,
        now: u64,
    ) -> Result<(BeginOutcome, AuditEntry), StoreError> {
        self.begin_totp_enrollment_replacing(ctx, name, step_up, None, params, now)
    }

    /// [`Store::begin_totp_enrollment`], or with `replace`, an enrolment whose confirmation
    /// removes that factor of the user's in the same transaction (moving to a new phone).
    /// Replacing always needs a step-up: the factor being replaced exists.
    pub fn begin_totp_enrollment_replacing(
        &mut self,
        ctx: &AuditCtx,
        name: &str,
        step_up: &str,
        replace: Option<&str>,
        params: Params,
        now: u64,
    ) -> Result<(BeginOutcome, AuditEntry), StoreError> {
        const METHOD: &str = "totp-enroll";
        let user = ctx.user.as_str();
        let tx = Decision::begin(&mut self.conn, ctx, METHOD, now)?;
        let checked = addition_refusal(
            &tx,
            Ctx::new(&self.key, &self.policy, now),
            user,
            replace,
            StepUp::Code(step_up),
        )?;
        let allowed = match checked {
            Ok(allowed) => allowed,
            Err(refusal) => {
                let (result, reason) = refusal.audit();
                return tx.finish(BeginOutcome::from(refusal), result, reason);
            }
        };
        // Keep at most PENDING_PER_USER_MAX, this one included: drop expired, then the oldest.
        tx.prepare_cached("DELETE FROM pending_enrollments WHERE user = ?1 AND expires <= ?2")?
            .execute((user, to_sql(now)))?;
        tx.prepare_cached(
            "DELETE FROM pending_enrollments WHERE id IN (
                SELECT id FROM pending_enrollments WHERE user = ?1
                ORDER BY created DESC, rowid DESC LIMIT -1 OFFSET ?2)",
        )?
        .execute((user, PENDING_PER_USER_MAX - 1))?;

        let mut secret = Zeroizing::new(vec![0u8; SECRET_LEN]);
        getrandom::fill(&mut secret[..]).map_err(|_| StoreError::Random)?;
        let id = random_hex(8)?;
        let sealed = seal::seal(&self.key, &seal::aad(Kind::PendingTotp, user, &id), &secret)?;
        let expires = now.saturating_add(PENDING_TTL_SECONDS);
        tx.prepare_cached(
            "INSERT INTO pending_enrollments
                (id, user, name, sealed, algorithm, digits, period, created, expires, attempts,
                 replaces, stepped_up)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, ?10, ?11)",
        )?
        .execute(rusqlite::params![
            id,
            user,
            name,
            sealed,
            params.algorithm.as_str(),
            params.digits,
            to_sql(params.period),
            to_sql(now),
            to_sql(expires),
            replace,
            allowed.stepped_up,
        ])?;
        let reason = match replace {
            Some(old) => format!("enrolment replacing factor {old} started after step-up"),
            None if allowed.stepped_up => "enrolment started after step-up".into(),
            None => "first enrolment started".into(),
        };
        tx.finish(
            BeginOutcome::Started(NewEnrollment {
                id,
                secret,
                params,
                expires,
            }),
            AuditResult::Success,
            reason,
        )
    }

    /// Completes a pending enrolment with a code from the new authenticator. The code's step
    /// becomes the factor's last step, so it cannot be used again to log in.
    pub fn confirm_totp_enrollment(
        &mut self,
        ctx: &AuditCtx,
        id: &str,
        code: &str,
        now: u64,
    ) -> Result<(ConfirmOutcome, AuditEntry), StoreError> {
        const METHOD: &str = "totp-confirm";
        let user = ctx.user.as_str();
        let tx = Decision::begin(&mut self.conn, ctx, METHOD, now)?;
        let Some(pending) = get_pending(&tx, user, id, now)? else {
            return tx.finish(
                ConfirmOutcome::NoSuchEnrollment,
                AuditResult::Refused,
                "no such pending enrolment".into(),
            );
        };
        // The account may have changed since the enrolment began (a factor added, the one to
        // replace removed): the rules are those of now, with the step-up shown back then.
        let checked = addition_refusal(
            &tx,
            Ctx::new(&self.key, &self.policy, now),
            user,
            pending.replaces.as_deref(),
            StepUp::from_begin(pending.stepped_up),
        )?;
        if let Err(refusal) = checked {
            delete_pending(&tx, id)?;
            let (result, reason) = refusal.confirm_audit();
            return tx.finish(ConfirmOutcome::from(refusal), result, reason);
        }
        let secret = seal::open(
            &self.key,
            &seal::aad(Kind::PendingTotp, user, id),
            &pending.sealed,
        )?;
        match totp::verify(&secret, &pending.params, code, now, self.policy.skew, None) {
            Ok(step) => {
                // The new id is drawn before the replaced factor is deleted (as it always
                // was), so it can never be that factor's id. Drawing it before install()'s
                // reads (the replaced row, the primary) moves only reads past reads.
                let factor_id = factors::new_id(&tx)?;
                let sealed =
                    seal::seal(&self.key, &seal::aad(Kind::Totp, user, &factor_id), &secret)?;
                let row = FactorRow {
                    id: factor_id,
                    user: user.to_owned(),
                    kind: FactorKind::Totp,
                    name: pending.name,
                    params: pending.params,
                    sealed,
                    // The confirmation code's step: it cannot log in again.
                    last_step: Some(step),
                    created: now,
                    // Not used to log in yet.
                    last_used: 0,
                };
                let installed = install(
                    &tx,
                    &self.key,
                    &row,
                    pending.replaces.as_deref(),
                    |tx| delete_pending(tx, id),
                    now,
                )?;
                let reason = installed.reason();
                tx.finish(
                    ConfirmOutcome::Enrolled(installed.info),
                    AuditResult::Success,
                    reason,
                )
            }
            Err(_) => {
                let attempts = pending.attempts.saturating_add(1);
                let tries_left = CONFIRM_ATTEMPTS_MAX.saturating_sub(attempts);
                if tries_left == 0 {
                    delete_pending(&tx, id)?;
                } else {
                    tx.prepare_cached(
                        "UPDATE pending_enrollments SET attempts = ?2 WHERE id = ?1",
                    )?
                    .execute((id, attempts))?;
                }
                tx.finish(
                    ConfirmOutcome::Wrong { tries_left },
                    AuditResult::Denied,
                    format!("wrong confirmation code ({tries_left} tries left)"),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests;
