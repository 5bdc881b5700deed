//! The `Factors` interface: each caller manages their own factors, identified by the uid the
//! bus reports (there is no user argument to get wrong). Every refusal is a named error with a
//! sentence saying what to do, an audit row and a log line.
//!
//! This file: the `SelfService` type and what all its calls share (the caller's account,
//! audit rows, alerts, the name check). One file per group of calls: `status`, `totp`,
//! `backup_codes`, `manage` (remove, primary, rename), `keys`, `contacts`; the refusal
//! sentences several of them give in `refusals`.

mod backup_codes;
mod contacts;
pub use contacts::ContactRequest;
mod keys;
mod manage;
mod refusals;
mod status;
mod totp;

use std::sync::Arc;

use herarx_proto::{FactorInfo, HerarxError, limits};

use crate::state::{State, printable, valid_text};
use crate::store::{AuditCtx, AuditEntry, AuditResult, FactorKind};

pub struct SelfService {
    pub(crate) state: Arc<State>,
    /// Security-key PINs sent per caller (see `fido2::pin_attempts`).
    pub(crate) pin_attempts: crate::fido2::pin_attempts::PinAttempts,
}

impl SelfService {
    pub fn new(state: Arc<State>) -> Self {
        SelfService {
            state,
            pin_attempts: Default::default(),
        }
    }

    /// The caller's account, or a refusal when the uid has no name.
    pub(crate) fn account(
        &self,
        uid: u32,
        method: &str,
        now: u64,
    ) -> Result<AuditCtx, HerarxError> {
        match self.state.users.name_of(uid) {
            Some(user) => Ok(AuditCtx {
                user,
                caller_uid: uid,
                ..AuditCtx::default()
            }),
            None => {
                let ctx = AuditCtx {
                    user: format!("#{uid}"),
                    caller_uid: uid,
                    ..AuditCtx::default()
                };
                self.refuse(&ctx, method, now, "caller uid has no account name");
                Err(HerarxError::PermissionDenied(format!(
                    "Your uid {uid} has no account name on this host; factors belong to named \
                     accounts."
                )))
            }
        }
    }

    pub(crate) fn record(&self, entry: &AuditEntry) {
        self.state.record(entry);
    }

    /// The alert for a method added to or removed from the caller's account. `emails`: the
    /// addresses to tell (read before a removal, which may take one of them along).
    pub(crate) fn alert_method_change_to(
        &self,
        ctx: &AuditCtx,
        info: &FactorInfo,
        added: bool,
        emails: Vec<String>,
        now: u64,
    ) {
        // "an email method", "an SMS method", "a totp method", "a security key".
        let kind = match FactorKind::parse(&info.kind) {
            Some(FactorKind::Email) => "an email method",
            Some(FactorKind::Sms) => "an SMS method",
            Some(FactorKind::Fido2) => "a security key",
            Some(FactorKind::Totp) | None => "an authenticator app (TOTP)",
        };
        let detail = if info.detail.is_empty() {
            String::new()
        } else {
            format!(" ({})", info.detail)
        };
        let what = if added {
            format!("{kind} \"{}\"{detail} was added", info.name)
        } else {
            format!("{kind} \"{}\"{detail} was removed", info.name)
        };
        let alert = crate::alerts::Alert {
            kind: if added {
                crate::alerts::AlertKind::MethodAdded
            } else {
                crate::alerts::AlertKind::MethodRemoved
            },
            user: ctx.user.clone(),
            when: now,
            rhost: String::new(),
            service: "herarxctl".into(),
            what,
        };
        self.state.alert_to(alert, emails);
    }

    /// [`SelfService::alert_method_change_to`] the user's addresses as they are now.
    pub(crate) fn alert_method_change(
        &self,
        ctx: &AuditCtx,
        info: &FactorInfo,
        added: bool,
        now: u64,
    ) {
        let kind = if added {
            crate::alerts::AlertKind::MethodAdded
        } else {
            crate::alerts::AlertKind::MethodRemoved
        };
        let emails = self.state.alert_emails(&ctx.user, kind);
        self.alert_method_change_to(ctx, info, added, emails, now);
    }

    pub(crate) fn refuse(&self, ctx: &AuditCtx, method: &str, now: u64, reason: &str) {
        self.record(&ctx.entry(now, method, AuditResult::Refused, reason));
    }

    /// Refuses a factor name that is empty, too long or not printable.
    pub(crate) fn check_name(
        &self,
        ctx: &AuditCtx,
        method: &str,
        name: &str,
        now: u64,
    ) -> Result<(), HerarxError> {
        if valid_text(name, limits::FACTOR_NAME_MAX) && !name.trim().is_empty() {
            return Ok(());
        }
        self.refuse(
            ctx,
            method,
            now,
            &format!("invalid factor name {:?}", printable(name)),
        );
        Err(HerarxError::InvalidArgument(format!(
            "The factor name must be 1 to {} printable characters.",
            limits::FACTOR_NAME_MAX
        )))
    }
}

/// Test helpers shared by the calls' tests.
#[cfg(test)]
pub(crate) mod test_support {
    use super::SelfService;
    use crate::login::tests::NOW;

    /// Alice with one TOTP factor, and its id.
    pub(crate) fn enrolled(h: &crate::login::tests::Harness) -> (SelfService, String) {
        h.enrol("alice");
        let svc = SelfService::new(h.state.clone());
        let id = svc.status(1000, NOW).unwrap().factors[0].id.clone();
        (svc, id)
    }
}
