//! The step-up every change to an account with factors needs, and the checks before a factor
//! is added: shared by every kind of enrolment and removal, run inside their transaction.

use super::audit::AuditResult;
use super::factors::{self, FACTORS_PER_USER_MAX};
use super::lockout::Scope;
use super::verify::{VerifyOutcome, verify_in};
use super::{Ctx, StoreError, backup_codes};

/// Step-ups are checked against the local counter: they come from a logged-in user.
const STEP_UP_SCOPE: Scope = Scope::Local;

const STEP_UP_MISSING: &str = "step-up code required";

/// Why the step-up that every change to an account with factors needs was refused.
pub(crate) enum StepUpRefusal {
    /// No code was given.
    Missing,
    /// The code did not verify (wrong, replayed, or the account is locked).
    Failed(VerifyOutcome),
}

impl StepUpRefusal {
    pub(crate) fn audit(&self) -> (AuditResult, String) {
        match self {
            StepUpRefusal::Missing => (AuditResult::Refused, STEP_UP_MISSING.into()),
            StepUpRefusal::Failed(outcome) => {
                let (result, reason) = outcome.audit();
                (result, format!("step-up: {reason}"))
            }
        }
    }
}

/// A fresh code from one of `user`'s factors, checked inside the caller's transaction and
/// consumed, counted and locked out exactly like a login's. `None`: passed.
pub(crate) fn refuse_step_up(
    tx: &rusqlite::Transaction<'_>,
    cx: Ctx<'_>,
    user: &str,
    step_up: &str,
) -> Result<Option<StepUpRefusal>, StoreError> {
    let Some(code) = step_up_code(step_up) else {
        return Ok(Some(StepUpRefusal::Missing));
    };
    Ok(match verify_in(tx, cx, user, code, &STEP_UP_SCOPE)? {
        VerifyOutcome::Accepted { .. } => None,
        failed => Some(StepUpRefusal::Failed(failed)),
    })
}

/// What proves, for an addition, that the caller is the account's owner once the account has
/// anything that logs in. No `Debug`: `Code` holds the code itself.
#[derive(Clone, Copy)]
pub(crate) enum StepUp<'a> {
    /// A code given with this call, checked (consumed, counted) in the transaction.
    Code(&'a str),
    /// Verified before this transaction: the code given when the enrolment began, or a touch
    /// of one of the user's security keys.
    Verified,
    /// Nothing: the addition is refused as soon as the account has anything that logs in.
    Absent,
}

impl StepUp<'_> {
    /// The proof a confirmation carries: whatever its beginning had.
    pub(crate) fn from_begin(stepped_up: bool) -> Self {
        if stepped_up {
            StepUp::Verified
        } else {
            StepUp::Absent
        }
    }
}

/// An addition [`addition_refusal`] let through.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Allowed {
    /// The account had something that logs in, and the step-up was shown.
    pub stepped_up: bool,
}

/// Why a new factor may not be added (a TOTP app, an address, a number, a security key),
/// checked in the transaction that begins the enrolment and again in the one that writes the
/// factor: what held when an enrolment began may no longer hold when it is confirmed.
pub(crate) enum AdditionRefusal {
    /// The factor to replace is not one of the user's.
    NoSuchFactor,
    /// Already this many factors (a replacement leaves the count as it is).
    TooMany(usize),
    /// The step-up every addition to an account that can log in needs.
    StepUp(StepUpRefusal),
}

impl AdditionRefusal {
    pub(crate) fn audit(&self) -> (AuditResult, String) {
        match self {
            AdditionRefusal::NoSuchFactor => {
                (AuditResult::Refused, "no such factor to replace".into())
            }
            AdditionRefusal::TooMany(n) => (AuditResult::Refused, format!("already {n} factors")),
            AdditionRefusal::StepUp(r) => r.audit(),
        }
    }

    /// The audit row of a confirmation refused by what changed since its beginning.
    pub(crate) fn confirm_audit(&self) -> (AuditResult, String) {
        let (result, why) = match self {
            AdditionRefusal::StepUp(_) => (
                AuditResult::Refused,
                "a factor was added since this enrolment began without a step-up; a step-up is \
                 needed now"
                    .to_owned(),
            ),
            other => other.audit(),
        };
        (result, format!("{why}: pending enrolment dropped"))
    }
}

/// The checks before adding a factor for `user`: the replaced factor exists, the cap, and a
/// step-up once the user has anything that logs in (unused backup codes count: they log in,
/// so whoever adds a factor proves it first). Every kind of addition, at its beginning and at
/// its confirmation, goes through here.
pub(crate) fn addition_refusal(
    tx: &rusqlite::Transaction<'_>,
    cx: Ctx<'_>,
    user: &str,
    replace: Option<&str>,
    step_up: StepUp<'_>,
) -> Result<Result<Allowed, AdditionRefusal>, StoreError> {
    let existing = factors::count(tx, user)?;
    if let Some(old) = replace
        && factors::get(tx, user, old)?.is_none()
    {
        return Ok(Err(AdditionRefusal::NoSuchFactor));
    }
    if replace.is_none() && existing >= FACTORS_PER_USER_MAX {
        return Ok(Err(AdditionRefusal::TooMany(existing)));
    }
    let guarded = existing > 0 || backup_codes::left(tx, user)? > 0;
    if guarded {
        let refusal = match step_up {
            StepUp::Code(code) => refuse_step_up(tx, cx, user, code)?,
            StepUp::Verified => None,
            StepUp::Absent => Some(StepUpRefusal::Missing),
        };
        if let Some(refusal) = refusal {
            return Ok(Err(AdditionRefusal::StepUp(refusal)));
        }
    }
    Ok(Ok(Allowed {
        stepped_up: guarded,
    }))
}

fn step_up_code(code: &str) -> Option<&str> {
    let c = code.trim();
    (!c.is_empty()).then_some(c)
}
