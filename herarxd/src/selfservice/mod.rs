//! The `Factors` interface: each caller manages their own factors, identified by the uid the
//! bus reports (there is no user argument to get wrong). Every refusal is a named error with a
//! sentence saying what to do, an audit row and a log line.

mod contacts;
mod keys;
mod refusals;

use std::sync::Arc;

use herarx_proto::{FactorInfo, HerarxError, PendingEnrollment, UserStatus, limits};

use crate::crypto::otpauth;
use crate::crypto::totp::Params;
use crate::state::{State, printable, valid_text};
use crate::store::enrollments::{
    BackupCodesOutcome, BeginOutcome, ConfirmOutcome, FactorChange, RemoveOutcome,
};
use crate::store::{AuditCtx, AuditEntry, AuditResult, FactorKind, Scope};
use refusals::{
    REMOVE_ANY, TOTP_WORDS, changed_since_begin, no_such_enrollment, no_such_factor,
    step_up_refusal, step_up_too_long, too_many_factors, wrong_confirmation_code,
};

pub const DEFAULT_FACTOR_NAME: &str = "authenticator";

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

    /// The caller's factors, failures and lockout (local scope) and the no-factor policy.
    pub fn status(&self, uid: u32, now: u64) -> Result<UserStatus, HerarxError> {
        let ctx = self.account(uid, "status", now)?;
        let read = {
            let mut store = self.state.store();
            store.factor_infos(&ctx.user).and_then(|f| {
                let failures = store.failures(&ctx.user, &Scope::Local, now)?;
                let extras = store.self_status_extras(&ctx.user, now)?;
                Ok((f, failures, extras))
            })
        };
        let (factors, failures, (backup_codes_left, remote_locked_until)) =
            read.map_err(|e| self.state.internal("reading a status", &e))?;
        let (remember_addresses, remembered) = self
            .state
            .store()
            .remembered_status(&ctx.user, now)
            .map_err(|e| self.state.internal("reading a status", &e))?;
        let config = self.state.config();
        let requirement =
            crate::factors::requirement::requirement(&config, self.state.users.as_ref(), &ctx.user);
        let no_factor_policy = crate::factors::requirement::no_factor_name(&config, &requirement);
        Ok(UserStatus {
            user: ctx.user,
            factors,
            backup_codes_left,
            failures: failures.count,
            locked_until: failures.locked_at(now).unwrap_or(0),
            remote_locked_until,
            required: requirement.required,
            no_factor_policy,
            remember_addresses,
            remembered: remembered
                .into_iter()
                .map(|r| herarx_proto::RememberedInfo {
                    kind: r.kind,
                    value: r.value,
                    created: r.created,
                    expires: r.expires,
                })
                .collect(),
        })
    }

    /// Turns "only ask from new addresses" on or off for the caller. No step-up: it only ever
    /// skips the code from an address where this user already passed it.
    pub fn set_remember_addresses(&self, uid: u32, on: bool, now: u64) -> Result<(), HerarxError> {
        const METHOD: &str = "remember-addresses";
        let ctx = self.account(uid, METHOD, now)?;
        if on && self.state.config().address_memory_seconds().is_none() {
            self.refuse(&ctx, METHOD, now, "forbidden by remember.addresses");
            return Err(HerarxError::PermissionDenied(
                "Your administrator does not allow remembering addresses on this host \
                 (remember.addresses = \"off\" in /etc/herarx/herarx.toml)."
                    .into(),
            ));
        }
        let entry = self
            .state
            .store()
            .set_remember_addresses(&ctx, on, now)
            .map_err(|e| self.state.internal("changing the address memory", &e))?;
        self.state.log.audit(&entry);
        Ok(())
    }

    /// Forgets every address and SSH key remembered for the caller.
    pub fn forget(&self, uid: u32, now: u64) -> Result<u32, HerarxError> {
        let ctx = self.account(uid, "forget", now)?;
        let (n, entry) = self
            .state
            .store()
            .forget(&ctx, now)
            .map_err(|e| self.state.internal("forgetting remembered addresses", &e))?;
        self.state.log.audit(&entry);
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    pub fn begin_totp_enrollment(
        &self,
        uid: u32,
        name: &str,
        step_up_code: &str,
        replace: &str,
        now: u64,
    ) -> Result<PendingEnrollment, HerarxError> {
        const METHOD: &str = "totp-enroll";
        let ctx = self.account(uid, METHOD, now)?;
        if !replace.is_empty() && !valid_text(replace, limits::ID_MAX) {
            self.refuse(&ctx, METHOD, now, "malformed id of the factor to replace");
            return Err(no_such_factor());
        }
        let name = if name.is_empty() {
            DEFAULT_FACTOR_NAME
        } else {
            name
        };
        self.check_name(&ctx, METHOD, name, now)?;
        if step_up_code.len() > limits::ANSWER_MAX {
            self.refuse(&ctx, METHOD, now, "step-up code too long");
            return Err(step_up_too_long());
        }
        let config = self.state.config();
        let params = Params {
            algorithm: config.totp_algorithm(),
            digits: u8::try_from(config.totp.digits).unwrap_or(6),
            period: u64::from(config.totp.period),
        };
        let result = {
            let mut store = self.state.store();
            let replace = (!replace.is_empty()).then_some(replace);
            store.begin_totp_enrollment_replacing(&ctx, name, step_up_code, replace, params, now)
        };
        let (outcome, entry) =
            result.map_err(|e| self.state.internal("starting an enrolment", &e))?;
        self.state.log.audit(&entry);
        match outcome {
            BeginOutcome::Started(n) => {
                let uri = otpauth::totp_uri(
                    &config.totp.issuer,
                    &ctx.user,
                    &self.state.hostname,
                    &n.secret,
                    &n.params,
                );
                Ok(PendingEnrollment {
                    id: n.id,
                    uri: uri.to_string(),
                    expires: n.expires,
                })
            }
            BeginOutcome::StepUpRequired if !replace.is_empty() => {
                Err(HerarxError::StepUpRequired(
                    "Replacing a factor needs a current code from one of your factors, or a \
                     backup code (step-up)."
                        .into(),
                ))
            }
            BeginOutcome::StepUpRequired => Err(HerarxError::StepUpRequired(
                "You already have a factor: give a current code from it (step-up).".into(),
            )),
            BeginOutcome::NoSuchFactor => Err(no_such_factor()),
            BeginOutcome::StepUpFailed(o) => Err(step_up_refusal(&o, now)),
            BeginOutcome::TooManyFactors => Err(too_many_factors(REMOVE_ANY)),
        }
    }

    pub fn confirm_totp_enrollment(
        &self,
        uid: u32,
        id: &str,
        code: &str,
        now: u64,
    ) -> Result<FactorInfo, HerarxError> {
        const METHOD: &str = "totp-confirm";
        let ctx = self.account(uid, METHOD, now)?;
        if !valid_text(id, limits::ID_MAX) {
            self.refuse(&ctx, METHOD, now, "malformed enrolment id");
            return Err(no_such_enrollment(&TOTP_WORDS));
        }
        let code = if code.len() <= limits::ANSWER_MAX {
            code
        } else {
            "-"
        };
        let result = {
            let mut store = self.state.store();
            store.confirm_totp_enrollment(&ctx, id, code, now)
        };
        let (outcome, entry) =
            result.map_err(|e| self.state.internal("confirming an enrolment", &e))?;
        self.state.log.audit(&entry);
        match outcome {
            ConfirmOutcome::Enrolled(info) => {
                self.alert_method_change(&ctx, &info, true, now);
                Ok(info)
            }
            ConfirmOutcome::NoSuchEnrollment => Err(no_such_enrollment(&TOTP_WORDS)),
            ConfirmOutcome::Wrong { tries_left } => {
                Err(wrong_confirmation_code(&TOTP_WORDS, tries_left))
            }
            ConfirmOutcome::TooManyFactors => Err(too_many_factors(REMOVE_ANY)),
            ConfirmOutcome::StepUpRequired => Err(changed_since_begin(true, &TOTP_WORDS)),
            ConfirmOutcome::NoSuchFactor => Err(changed_since_begin(false, &TOTP_WORDS)),
        }
    }

    /// `local` is the verdict of `crate::bus::local_session` on the caller: a step-up by a touch
    /// (no code given, the user has keys) drives the keys plugged into this machine, which only
    /// a caller in a local login of its own may do.
    pub fn remove_factor(
        &self,
        uid: u32,
        id: &str,
        step_up_code: &str,
        local: Result<(), HerarxError>,
        now: u64,
    ) -> Result<(), HerarxError> {
        const METHOD: &str = "remove";
        let ctx = self.account(uid, METHOD, now)?;
        if !valid_text(id, limits::ID_MAX) {
            self.refuse(&ctx, METHOD, now, "malformed factor id");
            return Err(no_such_factor());
        }
        if step_up_code.len() > limits::ANSWER_MAX {
            self.refuse(&ctx, METHOD, now, "step-up code too long");
            return Err(step_up_too_long());
        }
        // No code: a user with security keys confirms with a touch of one of them (checked
        // like a login: challenge, signature, counter; failures count towards the lockout).
        let touched = step_up_code.trim().is_empty() && self.step_up_by_touch(&ctx, local, now)?;
        // What the alert will name, and who it goes to, as they are before the removal.
        let before = self
            .state
            .store()
            .factor_infos(&ctx.user)
            .map_err(|e| self.state.internal("reading the factors", &e))?
            .into_iter()
            .find(|f| f.id == id);
        let emails = self
            .state
            .alert_emails(&ctx.user, crate::alerts::AlertKind::MethodRemoved);
        let result = {
            let mut store = self.state.store();
            if touched {
                store.remove_factor_after_touch(&ctx, id, now)
            } else {
                store.remove_factor(&ctx, id, step_up_code, now)
            }
        };
        let (outcome, entry) = result.map_err(|e| self.state.internal("removing a factor", &e))?;
        self.state.log.audit(&entry);
        match outcome {
            RemoveOutcome::Removed { .. } => {
                if let Some(info) = &before {
                    self.alert_method_change_to(&ctx, info, false, emails, now);
                }
                Ok(())
            }
            RemoveOutcome::NoSuchFactor => Err(no_such_factor()),
            RemoveOutcome::StepUpRequired => Err(HerarxError::StepUpRequired(
                "Removing a factor needs a current code from one of your factors (step-up).".into(),
            )),
            RemoveOutcome::StepUpFailed(o) => Err(step_up_refusal(&o, now)),
        }
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

    /// A new set of backup codes (the old set stops working), returned once. Needs a step-up
    /// once the caller has a factor or an unused backup code.
    pub fn generate_backup_codes(
        &self,
        uid: u32,
        step_up_code: &str,
        now: u64,
    ) -> Result<Vec<String>, HerarxError> {
        const METHOD: &str = "backup-codes";
        let ctx = self.account(uid, METHOD, now)?;
        if step_up_code.len() > limits::ANSWER_MAX {
            self.refuse(&ctx, METHOD, now, "step-up code too long");
            return Err(step_up_too_long());
        }
        let result = {
            let mut store = self.state.store();
            store.generate_backup_codes(&ctx, step_up_code, now)
        };
        let (outcome, entry) =
            result.map_err(|e| self.state.internal("generating backup codes", &e))?;
        // The entry names how many codes, never one of them.
        self.state.log.audit(&entry);
        match outcome {
            BackupCodesOutcome::Generated(codes) => {
                Ok(codes.iter().map(|c| c.as_str().to_owned()).collect())
            }
            BackupCodesOutcome::StepUpRequired => Err(HerarxError::StepUpRequired(
                "New backup codes need a current code from one of your factors, or one of your \
                 backup codes (step-up)."
                    .into(),
            )),
            BackupCodesOutcome::StepUpFailed(o) => Err(step_up_refusal(&o, now)),
        }
    }

    /// Makes one of the caller's factors the one logins offer first. No step-up: choosing
    /// which of your own factors is asked first weakens nothing (every factor already logs
    /// in), and ownership is checked from the bus uid.
    pub fn set_primary(&self, uid: u32, id: &str, now: u64) -> Result<(), HerarxError> {
        const METHOD: &str = "primary";
        let ctx = self.account(uid, METHOD, now)?;
        if !valid_text(id, limits::ID_MAX) {
            self.refuse(&ctx, METHOD, now, "malformed factor id");
            return Err(no_such_factor());
        }
        let result = {
            let mut store = self.state.store();
            store.set_primary(&ctx, id, now)
        };
        let (outcome, entry) =
            result.map_err(|e| self.state.internal("choosing the primary factor", &e))?;
        self.state.log.audit(&entry);
        match outcome {
            FactorChange::Changed(_) => Ok(()),
            FactorChange::NoSuchFactor => Err(no_such_factor()),
        }
    }

    /// Renames one of the caller's factors. No step-up, for the same reason as the primary.
    pub fn rename_factor(
        &self,
        uid: u32,
        id: &str,
        name: &str,
        now: u64,
    ) -> Result<FactorInfo, HerarxError> {
        const METHOD: &str = "rename";
        let ctx = self.account(uid, METHOD, now)?;
        if !valid_text(id, limits::ID_MAX) {
            self.refuse(&ctx, METHOD, now, "malformed factor id");
            return Err(no_such_factor());
        }
        self.check_name(&ctx, METHOD, name, now)?;
        let result = {
            let mut store = self.state.store();
            store.rename_factor(&ctx, id, name, now)
        };
        let (outcome, entry) = result.map_err(|e| self.state.internal("renaming a factor", &e))?;
        self.state.log.audit(&entry);
        match outcome {
            FactorChange::Changed(info) => Ok(info),
            FactorChange::NoSuchFactor => Err(no_such_factor()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::totp::code_at;
    use crate::login::tests::{NOW, harness};

    fn secret_of(uri: &str) -> Vec<u8> {
        let s = uri
            .split("secret=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap();
        data_encoding::BASE32_NOPAD.decode(s.as_bytes()).unwrap()
    }

    fn code(secret: &[u8], t: u64) -> String {
        code_at(secret, &Params::default(), t).unwrap().to_string()
    }

    #[test]
    fn enrol_log_in_and_remove_as_the_caller() {
        let h = harness();
        let svc = SelfService::new(h.state.clone());
        let st = svc.status(1000, NOW).unwrap();
        assert_eq!((st.user.as_str(), st.factors.len()), ("alice", 0));
        assert_eq!(st.no_factor_policy, "deny");

        let p = svc.begin_totp_enrollment(1000, "", "", "", NOW).unwrap();
        assert!(
            p.uri
                .starts_with("otpauth://totp/Herarx:alice@host.example?secret="),
            "{}",
            p.uri
        );
        assert!(
            p.uri
                .ends_with("&issuer=Herarx&algorithm=SHA1&digits=6&period=30")
        );
        let secret = secret_of(&p.uri);
        assert_eq!(secret.len(), 20);

        let e = svc
            .confirm_totp_enrollment(1001, &p.id, &code(&secret, NOW), NOW)
            .unwrap_err();
        assert!(
            matches!(e, HerarxError::NoSuchEnrollment(_)),
            "another user's enrolment"
        );
        let e = svc
            .confirm_totp_enrollment(1000, &p.id, "000000", NOW)
            .unwrap_err();
        assert!(
            matches!(e, HerarxError::WrongCode(ref m) if m.contains("4 tries left")),
            "{e:?}"
        );
        let info = svc
            .confirm_totp_enrollment(1000, &p.id, &code(&secret, NOW), NOW)
            .unwrap();
        assert_eq!(info.name, "authenticator");
        assert_eq!(info.id.len(), 8);

        let st = svc.status(1000, NOW).unwrap();
        assert_eq!(st.factors, vec![info.clone()]);

        let e = svc
            .begin_totp_enrollment(1000, "second", "", "", NOW)
            .unwrap_err();
        assert_eq!(
            e,
            HerarxError::StepUpRequired(
                "You already have a factor: give a current code from it (step-up).".into()
            )
        );
        let e = svc
            .remove_factor(1001, &info.id, "123456", Ok(()), NOW)
            .unwrap_err();
        assert!(matches!(e, HerarxError::NoSuchFactor(_)));
        let e = svc
            .remove_factor(1000, &info.id, "", Ok(()), NOW)
            .unwrap_err();
        assert!(matches!(e, HerarxError::StepUpRequired(_)));
        let e = svc
            .remove_factor(1000, &info.id, &code(&secret, NOW), Ok(()), NOW)
            .unwrap_err();
        assert!(
            matches!(e, HerarxError::WrongCode(_)),
            "the enrolment code is spent"
        );
        svc.remove_factor(1000, &info.id, &code(&secret, NOW + 30), Ok(()), NOW + 30)
            .unwrap();
        assert!(svc.status(1000, NOW + 30).unwrap().factors.is_empty());

        for l in h.log.lines() {
            assert!(!l.contains("otpauth"), "{l}");
            assert!(
                !l.contains(&data_encoding::BASE32_NOPAD.encode(&secret)),
                "{l}"
            );
        }
    }

    #[test]
    fn step_up_failures_lock_like_logins() {
        let h = harness();
        h.enrol("alice");
        let svc = SelfService::new(h.state.clone());
        for _ in 0..4 {
            let e = svc
                .begin_totp_enrollment(1000, "x", "000000", "", NOW)
                .unwrap_err();
            assert!(matches!(e, HerarxError::WrongCode(_)), "{e:?}");
        }
        let e = svc
            .begin_totp_enrollment(1000, "x", "000000", "", NOW)
            .unwrap_err();
        assert!(matches!(e, HerarxError::Locked(_)), "{e:?}");
        let e = svc
            .begin_totp_enrollment(1000, "x", &crate::login::tests::code(NOW), "", NOW)
            .unwrap_err();
        assert!(
            matches!(e, HerarxError::Locked(ref m) if m.contains("15 more minutes")),
            "{e:?}"
        );
        let st = svc.status(1000, NOW).unwrap();
        assert_eq!((st.failures, st.locked_until), (5, NOW + 900));
    }

    #[test]
    fn names_are_checked_and_unknown_uids_refused() {
        let h = harness();
        let svc = SelfService::new(h.state.clone());
        let long = "n".repeat(limits::FACTOR_NAME_MAX + 1);
        for bad in [long.as_str(), "a\tb", "   "] {
            let e = svc
                .begin_totp_enrollment(1000, bad, "", "", NOW)
                .unwrap_err();
            assert!(matches!(e, HerarxError::InvalidArgument(_)), "{bad:?}");
        }
        let e = svc.status(4242, NOW).unwrap_err();
        assert!(matches!(e, HerarxError::PermissionDenied(_)));
        let e = svc
            .confirm_totp_enrollment(1000, "nope", "123456", NOW)
            .unwrap_err();
        assert!(matches!(e, HerarxError::NoSuchEnrollment(_)));
        assert!(h.audit().iter().all(|a| a.result == AuditResult::Refused));
    }
}

#[cfg(test)]
mod issue4_tests {
    use super::*;
    use crate::crypto::totp::code_at;
    use crate::login::tests::{NOW, code, harness, harness_with};
    use crate::store::lockout::{Failures, REMOTE_PATH, save_key};

    fn enrolled(h: &crate::login::tests::Harness) -> (SelfService, String) {
        h.enrol("alice");
        let svc = SelfService::new(h.state.clone());
        let id = svc.status(1000, NOW).unwrap().factors[0].id.clone();
        (svc, id)
    }

    #[test]
    fn backup_codes_need_a_step_up_once_enrolled_and_a_new_set_voids_the_old() {
        let h = harness();
        let (svc, _) = enrolled(&h);
        let e = svc.generate_backup_codes(1000, "", NOW).unwrap_err();
        assert!(matches!(e, HerarxError::StepUpRequired(_)), "{e:?}");
        let e = svc
            .generate_backup_codes(1000, &crate::login::tests::wrong(NOW), NOW)
            .unwrap_err();
        assert!(matches!(e, HerarxError::WrongCode(_)), "{e:?}");
        assert_eq!(svc.status(1000, NOW).unwrap().backup_codes_left, 0);

        let first = svc.generate_backup_codes(1000, &code(NOW), NOW).unwrap();
        assert_eq!(first.len(), 10);
        assert_eq!(svc.status(1000, NOW).unwrap().backup_codes_left, 10);
        // A wrong step-up changes nothing: the set stays.
        let e = svc
            .generate_backup_codes(1000, "zzzz-zzzz", NOW + 30)
            .unwrap_err();
        assert!(matches!(e, HerarxError::WrongCode(_)), "{e:?}");
        assert_eq!(svc.status(1000, NOW + 30).unwrap().backup_codes_left, 10);

        // A backup code is a step-up, spent by it; the old set is void afterwards.
        let second = svc
            .generate_backup_codes(1000, &first[0], NOW + 30)
            .unwrap();
        assert_eq!(svc.status(1000, NOW + 30).unwrap().backup_codes_left, 10);
        let e = svc
            .generate_backup_codes(1000, &first[1], NOW + 31)
            .unwrap_err();
        assert!(
            matches!(e, HerarxError::WrongCode(_)),
            "old set void: {e:?}"
        );
        // Bob cannot spend Alice's codes, and has none himself: no step-up for him.
        let bobs = svc.generate_backup_codes(1001, &second[0], NOW).unwrap();
        assert_eq!(bobs.len(), 10);
        assert_eq!(svc.status(1000, NOW + 31).unwrap().backup_codes_left, 10);

        let all: Vec<&String> = first.iter().chain(&second).chain(&bobs).collect();
        for l in h.log.lines() {
            for c in &all {
                assert!(!l.contains(c.as_str()), "{l}");
                assert!(!l.contains(&c.replace('-', "")), "{l}");
            }
        }
        for a in h.audit() {
            for c in &all {
                assert!(!a.reason.contains(c.as_str()), "{}", a.reason);
            }
        }
        assert!(
            h.audit()
                .iter()
                .any(|a| a.method == "backup-codes" && a.result == AuditResult::Success)
        );
    }

    #[test]
    fn codes_alone_still_need_a_step_up_and_go_with_the_last_factor() {
        let h = harness();
        let svc = SelfService::new(h.state.clone());
        let codes = svc.generate_backup_codes(1000, "", NOW).unwrap();
        let e = svc.generate_backup_codes(1000, "", NOW).unwrap_err();
        assert!(matches!(e, HerarxError::StepUpRequired(_)), "{e:?}");

        h.enrol("alice");
        let id = svc.status(1000, NOW).unwrap().factors[0].id.clone();
        svc.remove_factor(1000, &id, &codes[0], Ok(()), NOW)
            .unwrap();
        let st = svc.status(1000, NOW).unwrap();
        assert_eq!((st.factors.len(), st.backup_codes_left), (0, 0));
        assert!(
            h.audit()
                .iter()
                .any(|a| a.method == "remove" && a.reason.contains("9 unused backup codes"))
        );
    }

    #[test]
    fn replacing_a_factor_swaps_it_in_one_step_and_keeps_it_primary() {
        let h = harness();
        let (svc, old) = enrolled(&h);
        let e = svc
            .begin_totp_enrollment(1000, "new phone", "", &old, NOW)
            .unwrap_err();
        assert!(matches!(e, HerarxError::StepUpRequired(ref m) if m.contains("Replacing")));
        let e = svc
            .begin_totp_enrollment(1000, "new phone", &code(NOW), "ffffffff", NOW)
            .unwrap_err();
        assert!(matches!(e, HerarxError::NoSuchFactor(_)), "{e:?}");
        let e = svc
            .begin_totp_enrollment(1001, "x", "", &old, NOW)
            .unwrap_err();
        assert!(matches!(e, HerarxError::NoSuchFactor(_)), "bob's: {e:?}");

        let codes = svc.generate_backup_codes(1000, &code(NOW), NOW).unwrap();
        let p = svc
            .begin_totp_enrollment(1000, "new phone", &codes[0], &old, NOW + 30)
            .unwrap();
        // Until confirmed, the old factor stays.
        assert_eq!(svc.status(1000, NOW + 30).unwrap().factors.len(), 1);
        let secret = {
            let s = p
                .uri
                .split("secret=")
                .nth(1)
                .unwrap()
                .split('&')
                .next()
                .unwrap();
            data_encoding::BASE32_NOPAD.decode(s.as_bytes()).unwrap()
        };
        let c = code_at(&secret, &Params::default(), NOW + 30)
            .unwrap()
            .to_string();
        let info = svc
            .confirm_totp_enrollment(1000, &p.id, &c, NOW + 30)
            .unwrap();
        assert!(info.primary);
        let st = svc.status(1000, NOW + 30).unwrap();
        assert_eq!(st.factors, vec![info.clone()]);
        assert_eq!(st.backup_codes_left, 9);
        // The old seed no longer opens anything.
        let e = svc
            .generate_backup_codes(1000, &code(NOW + 60), NOW + 60)
            .unwrap_err();
        assert!(matches!(e, HerarxError::WrongCode(_)), "{e:?}");
        assert!(
            h.audit().iter().any(|a| a.method == "totp-confirm"
                && a.reason.contains(&format!("replacing factor {old}")))
        );
    }

    #[test]
    fn primary_and_rename_belong_to_the_owner() {
        let h = harness();
        let (svc, _) = enrolled(&h);
        h.enrol("alice");
        let ids: Vec<String> = svc
            .status(1000, NOW)
            .unwrap()
            .factors
            .iter()
            .map(|f| f.id.clone())
            .collect();
        let (first, second) = (ids[0].clone(), ids[1].clone());
        assert!(svc.status(1000, NOW).unwrap().factors[0].primary);

        let e = svc.set_primary(1001, &second, NOW).unwrap_err();
        assert!(matches!(e, HerarxError::NoSuchFactor(_)));
        svc.set_primary(1000, &second, NOW).unwrap();
        let st = svc.status(1000, NOW).unwrap();
        let primaries: Vec<(&str, bool)> = st
            .factors
            .iter()
            .map(|f| (f.id.as_str(), f.primary))
            .collect();
        assert_eq!(
            primaries,
            vec![(first.as_str(), false), (second.as_str(), true)]
        );

        for bad in ["", "  ", "a\nb"] {
            let e = svc.rename_factor(1000, &first, bad, NOW).unwrap_err();
            assert!(matches!(e, HerarxError::InvalidArgument(_)), "{bad:?}");
        }
        let e = svc.rename_factor(1001, &first, "mine", NOW).unwrap_err();
        assert!(matches!(e, HerarxError::NoSuchFactor(_)));
        let info = svc.rename_factor(1000, &second, "work phone", NOW).unwrap();
        assert_eq!((info.name.as_str(), info.primary), ("work phone", true));
        assert_eq!(svc.status(1000, NOW).unwrap().factors[1].name, "work phone");
        assert_eq!(svc.status(1000, NOW).unwrap().factors[0].name, "phone");
    }

    #[test]
    fn status_tells_the_requirement_and_the_remote_lock() {
        let mut config = crate::config::Config::default();
        config.login.required = "groups".into();
        config.login.required_groups = vec!["wheel".into()];
        let h = harness_with(config);
        let svc = SelfService::new(h.state.clone());
        let st = svc.status(1000, NOW).unwrap();
        assert!(!st.required);
        assert_eq!(st.no_factor_policy, "allow");
        assert_eq!(st.remote_locked_until, 0);

        let h = harness();
        let svc = SelfService::new(h.state.clone());
        save_key(
            h.state.store().conn(),
            "alice",
            REMOTE_PATH,
            &Failures {
                count: 20,
                window_start: NOW,
                locked_until: NOW + 600,
                lockouts: 1,
            },
        )
        .unwrap();
        let st = svc.status(1000, NOW).unwrap();
        assert!(st.required);
        assert_eq!(st.no_factor_policy, "deny");
        assert_eq!(st.remote_locked_until, NOW + 600);
        assert_eq!(svc.status(1000, NOW + 600).unwrap().remote_locked_until, 0);
    }
}
