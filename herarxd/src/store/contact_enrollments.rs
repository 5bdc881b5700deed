//! Adding an email address or a phone number: a step-up, a code sent there, its confirmation
//! and the new factor, each in one transaction with its audit row.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use subtle::ConstantTimeEq;

use super::FactorKind;
use super::audit::{AuditCtx, AuditEntry, AuditResult};
use super::enrollments::{CONFIRM_ATTEMPTS_MAX, ConfirmOutcome};
use super::factors::{self, FactorRow};
use super::install::install;
use super::sent_codes::{
    Issued, PendingContact, Purpose, ToSend, code_hash, contacts, issue_in, normalize,
};
use super::step_up::{AdditionRefusal, StepUp, StepUpRefusal, addition_refusal};
use super::verify::VerifyOutcome;
use super::{Ctx, Store, StoreError, to_sql};
use super::{Decision, commit_audited};
use crate::crypto::seal::{self, Kind};
use crate::crypto::totp::Params;

/// An email address or phone number to add: `destination` normalized (an address, or an E.164
/// number), `replace` the factor it replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewContact<'a> {
    pub kind: FactorKind,
    pub destination: &'a str,
    pub name: &'a str,
    pub replace: Option<&'a str>,
}

/// The start of an email or SMS enrolment.
pub enum ContactBeginOutcome {
    Started(Issued),
    StepUpRequired,
    StepUpFailed(VerifyOutcome),
    TooManyFactors,
    /// The factor to replace is not one of the user's.
    NoSuchFactor,
    /// The user already has this address or number.
    AlreadyEnrolled,
    RateLimited {
        retry_after: u64,
    },
}

impl From<StepUpRefusal> for ContactBeginOutcome {
    fn from(r: StepUpRefusal) -> Self {
        match r {
            StepUpRefusal::Missing => ContactBeginOutcome::StepUpRequired,
            StepUpRefusal::Failed(o) => ContactBeginOutcome::StepUpFailed(o),
        }
    }
}

impl From<AdditionRefusal> for ContactBeginOutcome {
    fn from(r: AdditionRefusal) -> Self {
        match r {
            AdditionRefusal::NoSuchFactor => ContactBeginOutcome::NoSuchFactor,
            AdditionRefusal::TooMany(_) => ContactBeginOutcome::TooManyFactors,
            AdditionRefusal::StepUp(r) => ContactBeginOutcome::from(r),
        }
    }
}

/// The `sent_codes` row of an email or SMS enrolment waiting for its code. No `Debug`: it
/// holds the code's hash.
struct PendingCode {
    kind: FactorKind,
    /// The id the new factor gets (the destination is sealed under it).
    factor_id: Option<String>,
    name: String,
    /// The destination, sealed.
    sealed: Option<Vec<u8>>,
    /// The factor the confirmation replaces, if any.
    replaces: Option<String>,
    hash: Vec<u8>,
    attempts: u32,
    /// The enrolment began after a step-up.
    stepped_up: bool,
}

/// `user`'s unexpired enrolment code `id`, if any.
fn pending_code(
    conn: &Connection,
    id: &str,
    user: &str,
    now: u64,
) -> rusqlite::Result<Option<PendingCode>> {
    conn.prepare_cached(
        "SELECT kind, factor_id, name, sealed, replaces, hash, attempts, stepped_up
         FROM sent_codes
         WHERE id = ?1 AND user = ?2 AND purpose = 'enrol' AND expires > ?3",
    )?
    .query_row((id, user, to_sql(now)), |r| {
        Ok(PendingCode {
            kind: r.get(0)?,
            factor_id: r.get(1)?,
            name: r.get(2)?,
            sealed: r.get(3)?,
            replaces: r.get(4)?,
            hash: r.get(5)?,
            attempts: r.get(6)?,
            stepped_up: r.get(7)?,
        })
    })
    .optional()
}

impl Store {
    /// Starts adding `destination` (a normalized address or E.164 number) as a factor of
    /// `kind`: a step-up once the user has anything that logs in, then a confirmation code to
    /// send there.
    pub fn begin_contact_enrollment(
        &mut self,
        ctx: &AuditCtx,
        new: &NewContact<'_>,
        step_up: &str,
        now: u64,
    ) -> Result<(ContactBeginOutcome, AuditEntry), StoreError> {
        let NewContact {
            kind,
            destination,
            name,
            replace,
        } = *new;
        let method = format!("{kind}-enroll");
        let user = ctx.user.as_str();
        let tx = Decision::begin(&mut self.conn, ctx, method.as_str(), now)?;
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
                return tx.finish(ContactBeginOutcome::from(refusal), result, reason);
            }
        };
        // After the step-up: nobody learns which addresses an account has without it.
        let same = contacts(&tx, &self.key, user)?
            .iter()
            .any(|c| c.kind == kind && c.destination.eq_ignore_ascii_case(destination));
        if same {
            return tx.finish(
                ContactBeginOutcome::AlreadyEnrolled,
                AuditResult::Refused,
                format!("this {kind} destination is already enrolled"),
            );
        }
        // The id of the pending row is not known before it is made: seal under a fresh id
        // that becomes the factor's id at confirmation.
        let factor_id = factors::new_id(&tx)?;
        let sealed = seal::seal(
            &self.key,
            &seal::aad(Kind::Contact, user, &factor_id),
            destination.as_bytes(),
        )?;
        let issued = issue_in(
            &tx,
            Ctx::new(&self.key, &self.policy, now),
            user,
            ToSend {
                kind,
                destination,
                purpose: Purpose::Enrol,
                factor_id: Some(&factor_id),
                enrolment: Some(PendingContact {
                    name,
                    sealed: &sealed,
                    replaces: replace,
                    stepped_up: allowed.stepped_up,
                }),
            },
        )?;
        match issued {
            Ok(issued) => tx.finish(
                ContactBeginOutcome::Started(issued),
                AuditResult::Success,
                "confirmation code issued".into(),
            ),
            Err(retry_after) => tx.finish(
                ContactBeginOutcome::RateLimited { retry_after },
                AuditResult::Refused,
                format!("flood limit: no code before {retry_after}"),
            ),
        }
    }

    /// Completes an email or SMS enrolment with the code sent there.
    pub fn confirm_contact_enrollment(
        &mut self,
        ctx: &AuditCtx,
        id: &str,
        code: &str,
        now: u64,
    ) -> Result<(ConfirmOutcome, AuditEntry), StoreError> {
        let user = ctx.user.as_str();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let pending = pending_code(&tx, id, user, now)?;
        let Some(PendingCode {
            kind,
            factor_id: Some(factor_id),
            name,
            sealed: Some(sealed),
            replaces,
            hash,
            attempts,
            stepped_up,
        }) = pending
        else {
            let entry = ctx.entry(
                now,
                "contact-confirm",
                AuditResult::Refused,
                "no such pending enrolment",
            );
            return commit_audited(tx, entry, ConfirmOutcome::NoSuchEnrollment);
        };
        let method = format!("{kind}-confirm");
        let finish = |tx, outcome, result, reason: String| {
            commit_audited(tx, ctx.entry(now, &method, result, reason), outcome)
        };
        // What held when the enrolment began is checked again: the same rules as for TOTP.
        let checked = addition_refusal(
            &tx,
            Ctx::new(&self.key, &self.policy, now),
            user,
            replaces.as_deref(),
            StepUp::from_begin(stepped_up),
        )?;
        if let Err(refusal) = checked {
            tx.prepare_cached("DELETE FROM sent_codes WHERE id = ?1")?
                .execute([id])?;
            let (result, reason) = refusal.confirm_audit();
            return finish(tx, ConfirmOutcome::from(refusal), result, reason);
        }
        let typed = normalize(code, self.policy.sent_codes.digits);
        let same =
            typed.is_some_and(|t| bool::from(code_hash(&self.key, id, user, &t).ct_eq(&hash)));
        if !same {
            let attempts = attempts.saturating_add(1);
            let tries_left = CONFIRM_ATTEMPTS_MAX.saturating_sub(attempts);
            if tries_left == 0 {
                tx.prepare_cached("DELETE FROM sent_codes WHERE id = ?1")?
                    .execute([id])?;
            } else {
                tx.prepare_cached("UPDATE sent_codes SET attempts = ?2 WHERE id = ?1")?
                    .execute((id, attempts))?;
            }
            return finish(
                tx,
                ConfirmOutcome::Wrong { tries_left },
                AuditResult::Denied,
                format!("wrong confirmation code ({tries_left} tries left)"),
            );
        }
        // The factor id was drawn (and the destination sealed under it) when the enrolment
        // began. The code's row goes after the new factor is in, as it always did.
        let row = FactorRow {
            id: factor_id,
            user: user.to_owned(),
            kind,
            name,
            // Unused for these kinds: no seed, no steps.
            params: Params::default(),
            sealed,
            last_step: None,
            created: now,
            // Proven to receive codes just now.
            last_used: now,
        };
        let installed = install(
            &tx,
            &self.key,
            &row,
            replaces.as_deref(),
            |tx| {
                tx.prepare_cached("DELETE FROM sent_codes WHERE id = ?1")?
                    .execute([id])?;
                Ok(())
            },
            now,
        )?;
        let reason = installed.reason();
        finish(
            tx,
            ConfirmOutcome::Enrolled(installed.info),
            AuditResult::Success,
            reason,
        )
    }
}
