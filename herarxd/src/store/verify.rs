//! What a login reads of a user, and the check of any code (app, backup, sent) that consumes
//! it, counts the failure or clears the counter: the store verifies, it never hands a secret out.

use crate::store::{BACKUP_CODE, FactorKind};
use herarx_proto::FactorInfo;
use rusqlite::{Transaction, TransactionBehavior};

use super::audit::{self, AuditCtx, AuditEntry, AuditResult};
use super::factors::{list, list_all, record_use};
use super::lockout::{self, Failures, Scope};
use super::{Ctx, Store, StoreError};
use crate::crypto::seal::{self, Kind};
use crate::crypto::totp::{self, Rejection};

/// What a code check came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyOutcome {
    /// Accepted and consumed: the factor's last step is now `step`; or, when
    /// `backup_codes_left` is set, a backup code was used up (`factor_id` is then
    /// [`BACKUP_CODE`] and `step` 0).
    Accepted {
        factor_id: String,
        step: u64,
        backup_codes_left: Option<u32>,
    },
    /// Not accepted; counted as a failure. `locked_until` is set when this failure locked the
    /// scope. `no_factor` tells the audit log the user has nothing enrolled.
    Rejected {
        reason: Rejection,
        no_factor: bool,
        failures: u32,
        locked_until: Option<u64>,
    },
    /// The scope was already locked; the code was not even looked at.
    Locked { until: u64 },
}

impl VerifyOutcome {
    /// The audit result and reason for this outcome.
    pub fn audit(&self) -> (AuditResult, String) {
        match self {
            VerifyOutcome::Accepted {
                backup_codes_left: Some(left),
                ..
            } => (
                AuditResult::Success,
                format!("backup code accepted ({left} left)"),
            ),
            VerifyOutcome::Accepted { factor_id, .. } => (
                AuditResult::Success,
                format!("code accepted (factor {factor_id})"),
            ),
            VerifyOutcome::Rejected {
                reason,
                no_factor,
                failures,
                locked_until,
            } => {
                let what = if *no_factor {
                    "no factor enrolled"
                } else {
                    match reason {
                        Rejection::Wrong => "wrong code",
                        Rejection::Replayed => "code already used",
                        Rejection::Malformed => "malformed code",
                        Rejection::Unusable => "stored factor unusable",
                    }
                };
                let mut reason = format!("{what} (failure {failures})");
                if let Some(until) = locked_until {
                    reason.push_str(&format!("; locked until {until}"));
                }
                (AuditResult::Denied, reason)
            }
            VerifyOutcome::Locked { until } => {
                (AuditResult::Locked, format!("locked until {until}"))
            }
        }
    }
}

/// Login state at the start of a transaction (a read: nothing is written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginState {
    pub locked_until: Option<u64>,
    pub totp_factors: usize,
    pub backup_codes_left: u32,
    pub fido2_keys: usize,
    /// Email and SMS factors.
    pub contacts: usize,
}

impl Store {
    /// Whether the scope is locked, and how many TOTP factors the user has.
    pub fn login_state(
        &mut self,
        user: &str,
        scope: &Scope,
        now: u64,
    ) -> Result<LoginState, StoreError> {
        let locked_until = lockout::locked_until(&self.conn, user, scope, now)?;
        // One statement for what the login offers: it runs on every login.
        let mut stmt = self.conn.prepare_cached(
            "SELECT (SELECT count(*) FROM factors WHERE user = ?1 AND kind = ?2),
                    (SELECT count(*) FROM factors WHERE user = ?1 AND kind = ?3),
                    (SELECT count(*) FROM backup_codes WHERE user = ?1 AND used = 0),
                    (SELECT count(*) FROM factors WHERE user = ?1 AND kind IN (?4, ?5))",
        )?;
        let (totp, fido2, codes, contacts): (i64, i64, i64, i64) = stmt.query_row(
            (
                user,
                FactorKind::Totp,
                FactorKind::Fido2,
                FactorKind::Email,
                FactorKind::Sms,
            ),
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        Ok(LoginState {
            locked_until,
            totp_factors: usize::try_from(totp).unwrap_or(0),
            backup_codes_left: u32::try_from(codes).unwrap_or(u32::MAX),
            fido2_keys: usize::try_from(fido2).unwrap_or(0),
            contacts: usize::try_from(contacts).unwrap_or(0),
        })
    }

    /// Records that Herarx saw the account (the start of its enrolment window, until an admin
    /// reset). Returns its row.
    pub fn touch_account(
        &mut self,
        user: &str,
        now: u64,
    ) -> Result<super::accounts::Account, StoreError> {
        Ok(super::accounts::touch(&self.conn, user, now)?)
    }

    /// The failures of the attempt's own counter (local, or its source) as they count at `now`.
    pub fn failures(
        &mut self,
        user: &str,
        scope: &Scope,
        now: u64,
    ) -> Result<Failures, StoreError> {
        Ok(lockout::load(&self.conn, user, scope)?.current(now, &self.policy.lockout))
    }

    /// The user's factors, as the owner sees them, the primary one marked (the chosen one,
    /// else the oldest).
    pub fn factor_infos(&mut self, user: &str) -> Result<Vec<FactorInfo>, StoreError> {
        let mut infos: Vec<FactorInfo> = list_all(&self.conn, user)?
            .iter()
            .map(|row| FactorInfo {
                detail: super::factors::detail_of(&self.key, user, row),
                ..row.info()
            })
            .collect();
        let chosen = super::accounts::load(&self.conn, user)?.primary_factor;
        let primary = chosen
            .as_deref()
            .and_then(|id| infos.iter().position(|f| f.id == id))
            .unwrap_or(0);
        if let Some(f) = infos.get_mut(primary) {
            f.primary = true;
        }
        Ok(infos)
    }

    /// Checks `code` against the user's TOTP factors and consumes it, in one IMMEDIATE
    /// transaction with its audit row: refused while the scope is locked; on a match (a step
    /// after the factor's last one) records the step and clears the scope's failures; otherwise
    /// counts a failure and locks the scope at `max_failures`.
    pub fn verify_and_consume(
        &mut self,
        ctx: &AuditCtx,
        code: &str,
        now: u64,
        scope: &Scope,
        method: &str,
    ) -> Result<(VerifyOutcome, AuditEntry), StoreError> {
        self.verify_and_consume_accepting(ctx, code, now, scope, method, Accept::ALL)
    }

    /// Like [`Store::verify_and_consume`], accepting only the kinds of answer in `accept` (a
    /// service's `methods`): any other is checked as a wrong code, and counted.
    pub fn verify_and_consume_accepting(
        &mut self,
        ctx: &AuditCtx,
        code: &str,
        now: u64,
        scope: &Scope,
        method: &str,
        accept: Accept,
    ) -> Result<(VerifyOutcome, AuditEntry), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let outcome = verify_in_accepting(
            &tx,
            Ctx::new(&self.key, &self.policy, now),
            &ctx.user,
            code,
            scope,
            accept,
        )?;
        let (result, reason) = outcome.audit();
        let entry = ctx.entry(now, method, result, reason);
        audit::insert(&tx, &entry)?;
        tx.commit()?;
        Ok((outcome, entry))
    }
}

/// The body of [`Store::verify_and_consume`], for composing into larger transactions (step-up
/// before an enrolment or a removal). The caller commits, whatever the outcome.
pub(crate) fn verify_in(
    tx: &Transaction<'_>,
    cx: Ctx<'_>,
    user: &str,
    code: &str,
    scope: &Scope,
) -> Result<VerifyOutcome, StoreError> {
    verify_in_accepting(tx, cx, user, code, scope, Accept::ALL)
}

/// The kinds of answer a check accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accept {
    pub totp: bool,
    pub backup_codes: bool,
    /// Codes sent by email, by text message.
    pub email: bool,
    pub sms: bool,
}

impl Accept {
    pub const ALL: Accept = Accept {
        totp: true,
        backup_codes: true,
        email: true,
        sms: true,
    };
}

fn verify_in_accepting(
    tx: &Transaction<'_>,
    cx: Ctx<'_>,
    user: &str,
    code: &str,
    scope: &Scope,
    accept: Accept,
) -> Result<VerifyOutcome, StoreError> {
    let Ctx { key, policy, now } = cx;
    if let Some(until) = lockout::locked_until(tx, user, scope, now)? {
        return Ok(VerifyOutcome::Locked { until });
    }
    let factors = if accept.totp {
        list(tx, user, FactorKind::Totp)?
    } else {
        Vec::new()
    };
    let mut rejection = Rejection::Malformed;
    for f in &factors {
        let aad = seal::aad(Kind::Totp, user, &f.id);
        let verdict = match seal::open(key, &aad, &f.sealed) {
            Ok(secret) => totp::verify(&secret, &f.params, code, now, policy.skew, f.last_step),
            // A row that does not open (moved, tampered) can never match.
            Err(_) => Err(Rejection::Unusable),
        };
        match verdict {
            Ok(step) => {
                record_use(tx, &f.id, step, now)?;
                lockout::clear(tx, user, scope)?;
                return Ok(VerifyOutcome::Accepted {
                    factor_id: f.id.clone(),
                    step,
                    backup_codes_left: None,
                });
            }
            // Keep the most telling reason across factors: replayed > wrong > malformed.
            Err(Rejection::Replayed) => rejection = Rejection::Replayed,
            Err(Rejection::Wrong) if rejection != Rejection::Replayed => {
                rejection = Rejection::Wrong
            }
            Err(Rejection::Unusable) if rejection == Rejection::Malformed => {
                rejection = Rejection::Unusable
            }
            Err(_) => {}
        }
    }
    // Not a TOTP code: a backup code, typed at the same prompt?
    if accept.backup_codes
        && let Some(left) = super::backup_codes::consume(tx, key, user, code, now)?
    {
        lockout::clear(tx, user, scope)?;
        return Ok(VerifyOutcome::Accepted {
            factor_id: BACKUP_CODE.into(),
            step: 0,
            backup_codes_left: Some(left),
        });
    }
    // A code sent by email or text message (for this login, another one, or a step-up).
    if let Some((factor_id, _kind)) =
        super::sent_codes::consume(tx, key, user, code, now, accept.email, accept.sms)?
    {
        lockout::clear(tx, user, scope)?;
        return Ok(VerifyOutcome::Accepted {
            factor_id,
            step: 0,
            backup_codes_left: None,
        });
    }
    if super::backup_codes::normalize(code).is_some() && rejection == Rejection::Malformed {
        rejection = Rejection::Wrong;
    }
    if factors.is_empty() {
        rejection = if totp::normalize_code(code, 6).is_ok()
            || super::backup_codes::normalize(code).is_some()
        {
            Rejection::Wrong
        } else {
            Rejection::Malformed
        };
    }
    let after = lockout::record_failure(tx, user, scope, now, &policy.lockout)?;
    Ok(VerifyOutcome::Rejected {
        reason: rejection,
        no_factor: accept.totp && factors.is_empty(),
        failures: after.count,
        locked_until: after.locked_at(now),
    })
}
