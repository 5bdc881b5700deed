//! Self-service changes to factors a user has: removal, backup codes, the primary factor and
//! names.
//!
//! Each operation is one IMMEDIATE transaction with its audit row. Removal and new backup
//! codes need a fresh code from one of the user's factors (step-up), checked by the same code
//! path as logins: consumed, counted and subject to lockout; the primary and names need only
//! ownership.

use herarx_proto::FactorInfo;
use zeroize::Zeroizing;

use super::Decision;
use super::audit::{AuditCtx, AuditEntry, AuditResult};
use super::factors::{self, info_of};
use super::lockout::{self};
use super::step_up::{StepUpRefusal, refuse_step_up};
use super::verify::VerifyOutcome;
use super::{Ctx, Store, StoreError};
use super::{accounts, backup_codes};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveOutcome {
    /// Removed; when it was the last factor, the user's unused backup codes went with it
    /// (how many).
    Removed {
        backup_codes_deleted: usize,
    },
    /// Unknown id or another user's: the same answer.
    NoSuchFactor,
    StepUpRequired,
    StepUpFailed(VerifyOutcome),
}

/// A new set of backup codes, to show once. Never in `Debug` output.
pub enum BackupCodesOutcome {
    Generated(Vec<Zeroizing<String>>),
    StepUpRequired,
    StepUpFailed(VerifyOutcome),
}

impl std::fmt::Debug for BackupCodesOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackupCodesOutcome::Generated(codes) => {
                write!(f, "Generated({} codes, redacted)", codes.len())
            }
            BackupCodesOutcome::StepUpRequired => f.write_str("StepUpRequired"),
            BackupCodesOutcome::StepUpFailed(o) => write!(f, "StepUpFailed({o:?})"),
        }
    }
}

impl From<StepUpRefusal> for BackupCodesOutcome {
    fn from(r: StepUpRefusal) -> Self {
        match r {
            StepUpRefusal::Missing => BackupCodesOutcome::StepUpRequired,
            StepUpRefusal::Failed(o) => BackupCodesOutcome::StepUpFailed(o),
        }
    }
}

/// The outcome of a change that needs nothing but ownership (primary, rename).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FactorChange {
    Changed(FactorInfo),
    /// Unknown id or another user's: the same answer.
    NoSuchFactor,
}

impl From<StepUpRefusal> for RemoveOutcome {
    fn from(r: StepUpRefusal) -> Self {
        match r {
            StepUpRefusal::Missing => RemoveOutcome::StepUpRequired,
            StepUpRefusal::Failed(o) => RemoveOutcome::StepUpFailed(o),
        }
    }
}

impl Store {
    /// Removes one of `ctx.user`'s factors after a step-up with any of them.
    pub fn remove_factor(
        &mut self,
        ctx: &AuditCtx,
        id: &str,
        step_up: &str,
        now: u64,
    ) -> Result<(RemoveOutcome, AuditEntry), StoreError> {
        self.remove_factor_with(ctx, id, Some(step_up), now)
    }

    /// Removes a factor after the caller proved it is the user by a touch of one of their
    /// security keys (verified, counter advanced and audited before this call).
    pub fn remove_factor_after_touch(
        &mut self,
        ctx: &AuditCtx,
        id: &str,
        now: u64,
    ) -> Result<(RemoveOutcome, AuditEntry), StoreError> {
        self.remove_factor_with(ctx, id, None, now)
    }

    /// `step_up`: a code to check in the transaction, or `None` when a touch was verified.
    fn remove_factor_with(
        &mut self,
        ctx: &AuditCtx,
        id: &str,
        step_up: Option<&str>,
        now: u64,
    ) -> Result<(RemoveOutcome, AuditEntry), StoreError> {
        const METHOD: &str = "remove";
        let user = ctx.user.as_str();
        let tx = Decision::begin(&mut self.conn, ctx, METHOD, now)?;
        if factors::get(&tx, user, id)?.is_none() {
            return tx.finish(
                RemoveOutcome::NoSuchFactor,
                AuditResult::Refused,
                "no such factor".into(),
            );
        }
        if let Some(step_up) = step_up
            && let Some(refusal) =
                refuse_step_up(&tx, Ctx::new(&self.key, &self.policy, now), user, step_up)?
        {
            let (result, reason) = refusal.audit();
            return tx.finish(RemoveOutcome::from(refusal), result, reason);
        }
        factors::delete(&tx, user, id)?;
        // Codes already sent to it stop working with it.
        super::sent_codes::delete_codes_of(&tx, user, id)?;
        // Backup codes alone are a weak second factor, and they would keep the account
        // counted as enrolled: the last factor takes them along.
        let backup_codes_deleted = if factors::count(&tx, user)? == 0 {
            let unused = backup_codes::left(&tx, user)?;
            backup_codes::delete_all(&tx, user)?;
            usize::try_from(unused).unwrap_or(usize::MAX)
        } else {
            0
        };
        let reason = if backup_codes_deleted > 0 {
            format!(
                "factor {id} removed; it was the last, so its {backup_codes_deleted} unused \
                 backup codes were deleted too"
            )
        } else {
            format!("factor {id} removed")
        };
        tx.finish(
            RemoveOutcome::Removed {
                backup_codes_deleted,
            },
            AuditResult::Success,
            reason,
        )
    }

    /// Replaces `ctx.user`'s backup codes with a new set. Once the user has a factor or an
    /// unused code, it needs a step-up (a backup code counts, and is spent by it).
    pub fn generate_backup_codes(
        &mut self,
        ctx: &AuditCtx,
        step_up: &str,
        now: u64,
    ) -> Result<(BackupCodesOutcome, AuditEntry), StoreError> {
        const METHOD: &str = "backup-codes";
        let user = ctx.user.as_str();
        let tx = Decision::begin(&mut self.conn, ctx, METHOD, now)?;
        let guarded = factors::count(&tx, user)? > 0 || backup_codes::left(&tx, user)? > 0;
        if guarded
            && let Some(refusal) =
                refuse_step_up(&tx, Ctx::new(&self.key, &self.policy, now), user, step_up)?
        {
            let (result, reason) = refusal.audit();
            return tx.finish(BackupCodesOutcome::from(refusal), result, reason);
        }
        let codes = backup_codes::replace_set(&tx, &self.key, user, now)?;
        let reason = format!(
            "{} new backup codes{}; the previous set is void",
            codes.len(),
            if guarded { " after step-up" } else { "" }
        );
        tx.finish(
            BackupCodesOutcome::Generated(codes),
            AuditResult::Success,
            reason,
        )
    }

    /// Makes factor `id` of `ctx.user`'s the one logins offer first.
    pub fn set_primary(
        &mut self,
        ctx: &AuditCtx,
        id: &str,
        now: u64,
    ) -> Result<(FactorChange, AuditEntry), StoreError> {
        const METHOD: &str = "primary";
        let user = ctx.user.as_str();
        let tx = Decision::begin(&mut self.conn, ctx, METHOD, now)?;
        let Some(row) = factors::get(&tx, user, id)? else {
            return tx.finish(
                FactorChange::NoSuchFactor,
                AuditResult::Refused,
                "no such factor".into(),
            );
        };
        accounts::set_primary(&tx, user, Some(id), now)?;
        let info = info_of(&tx, &self.key, user, &row)?;
        tx.finish(
            FactorChange::Changed(info),
            AuditResult::Success,
            format!("factor {id} is now the primary one"),
        )
    }

    /// Renames factor `id` of `ctx.user`'s. `name` is checked by the caller.
    pub fn rename_factor(
        &mut self,
        ctx: &AuditCtx,
        id: &str,
        name: &str,
        now: u64,
    ) -> Result<(FactorChange, AuditEntry), StoreError> {
        const METHOD: &str = "rename";
        let user = ctx.user.as_str();
        let tx = Decision::begin(&mut self.conn, ctx, METHOD, now)?;
        let Some(mut row) = factors::get(&tx, user, id)? else {
            return tx.finish(
                FactorChange::NoSuchFactor,
                AuditResult::Refused,
                "no such factor".into(),
            );
        };
        tx.prepare_cached("UPDATE factors SET name = ?3 WHERE id = ?1 AND user = ?2")?
            .execute((id, user, name))?;
        name.clone_into(&mut row.name);
        let info = info_of(&tx, &self.key, user, &row)?;
        tx.finish(
            FactorChange::Changed(info),
            AuditResult::Success,
            format!("factor {id} renamed"),
        )
    }

    /// What `herarxctl status` shows beside the factors: unused backup codes, and until when
    /// remote logins are locked (0: not locked).
    pub fn self_status_extras(&mut self, user: &str, now: u64) -> Result<(u32, u64), StoreError> {
        let left = backup_codes::left(&self.conn, user)?;
        let remote = lockout::load_key(&self.conn, user, lockout::REMOTE_PATH)?;
        Ok((left, remote.locked_at(now).unwrap_or(0)))
    }
}
