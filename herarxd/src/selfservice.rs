//! The `Factors` interface: each caller manages their own factors, identified by the uid the
//! bus reports (there is no user argument to get wrong). Every refusal is a named error with a
//! sentence saying what to do, an audit row and a log line.

use std::sync::Arc;

use herarx_proto::{FactorInfo, HerarxError, PendingEnrollment, UserStatus, limits};

use crate::auth::locked_message;
use crate::otpauth;
use crate::state::{State, printable, valid_text};
use crate::store::enrollments::{
    BeginOutcome, CONFIRM_ATTEMPTS_MAX, ConfirmOutcome, RemoveOutcome,
};
use crate::store::factors::{FACTORS_PER_USER_MAX, VerifyOutcome};
use crate::store::{AuditCtx, AuditEntry, AuditResult, Scope};
use crate::totp::Params;

pub const DEFAULT_FACTOR_NAME: &str = "authenticator";

pub struct SelfService {
    state: Arc<State>,
}

fn step_up_refusal(outcome: &VerifyOutcome, now: u64) -> HerarxError {
    match outcome {
        VerifyOutcome::Locked { until }
        | VerifyOutcome::Rejected {
            locked_until: Some(until),
            ..
        } => HerarxError::Locked(locked_message(*until, now)),
        _ => HerarxError::WrongCode(
            "That code is wrong or was already used: give the current code of one of your \
             factors (or wait for the next one)."
                .into(),
        ),
    }
}

fn no_such_factor() -> HerarxError {
    HerarxError::NoSuchFactor(
        "You have no factor with that id: run `herarxctl status` to list yours.".into(),
    )
}

fn no_such_enrollment() -> HerarxError {
    HerarxError::NoSuchEnrollment(
        "No such enrolment (it expired, was replaced or was finished): start again with \
         `herarxctl totp add`."
            .into(),
    )
}

impl SelfService {
    pub fn new(state: Arc<State>) -> Self {
        SelfService { state }
    }

    /// The caller's account, or a refusal when the uid has no name.
    fn account(&self, uid: u32, method: &str, now: u64) -> Result<AuditCtx, HerarxError> {
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

    fn record(&self, entry: &AuditEntry) {
        if let Err(e) = self.state.store().record(entry) {
            self.state.log.log(
                crate::logger::Severity::Error,
                &format!("cannot write an audit row: {e}"),
            );
        }
        self.state.log.audit(entry);
    }

    fn refuse(&self, ctx: &AuditCtx, method: &str, now: u64, reason: &str) {
        self.record(&ctx.entry(now, method, AuditResult::Refused, reason));
    }

    /// The caller's factors, failures and lockout (local scope) and the no-factor policy.
    pub fn status(&self, uid: u32, now: u64) -> Result<UserStatus, HerarxError> {
        let ctx = self.account(uid, "status", now)?;
        let read = {
            let mut store = self.state.store();
            store
                .factor_infos(&ctx.user)
                .and_then(|f| Ok((f, store.failures(&ctx.user, &Scope::Local, now)?)))
        };
        let (factors, failures) = read.map_err(|e| self.state.internal("reading a status", &e))?;
        Ok(UserStatus {
            user: ctx.user,
            factors,
            backup_codes_left: 0,
            failures: failures.count,
            locked_until: failures.locked_at(now).unwrap_or(0),
            remote_locked_until: 0,
            required: true,
            no_factor_policy: self.state.config().login.no_factor.clone(),
        })
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
        if !replace.is_empty() {
            return Err(HerarxError::InvalidArgument(
                "Replacing a factor is not available in this herarxd.".into(),
            ));
        }
        let name = if name.is_empty() {
            DEFAULT_FACTOR_NAME
        } else {
            name
        };
        if !valid_text(name, limits::FACTOR_NAME_MAX) || name.trim().is_empty() {
            self.refuse(
                &ctx,
                METHOD,
                now,
                &format!("invalid factor name {:?}", printable(name)),
            );
            return Err(HerarxError::InvalidArgument(format!(
                "The factor name must be 1 to {} printable characters.",
                limits::FACTOR_NAME_MAX
            )));
        }
        if step_up_code.len() > limits::ANSWER_MAX {
            self.refuse(&ctx, METHOD, now, "step-up code too long");
            return Err(HerarxError::InvalidArgument(
                "The step-up code is too long: give the code your authenticator shows.".into(),
            ));
        }
        let config = self.state.config();
        let params = Params {
            algorithm: config.totp_algorithm(),
            digits: u8::try_from(config.totp.digits).unwrap_or(6),
            period: u64::from(config.totp.period),
        };
        let result = {
            let mut store = self.state.store();
            store.begin_totp_enrollment(&ctx, name, step_up_code, params, now)
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
            BeginOutcome::StepUpRequired => Err(HerarxError::StepUpRequired(
                "You already have a factor: give a current code from it (step-up).".into(),
            )),
            BeginOutcome::StepUpFailed(o) => Err(step_up_refusal(&o, now)),
            BeginOutcome::TooManyFactors => Err(HerarxError::Busy(format!(
                "You have {FACTORS_PER_USER_MAX} factors, the most allowed: remove one first \
                 (`herarxctl remove ID`)."
            ))),
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
            return Err(no_such_enrollment());
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
            ConfirmOutcome::Enrolled(info) => Ok(info),
            ConfirmOutcome::NoSuchEnrollment => Err(no_such_enrollment()),
            ConfirmOutcome::Wrong { tries_left: 0 } => Err(HerarxError::WrongCode(format!(
                "Wrong code, {CONFIRM_ATTEMPTS_MAX} times: this enrolment is cancelled. Start \
                 again with `herarxctl totp add`, and check that the device's clock is right."
            ))),
            ConfirmOutcome::Wrong { tries_left } => Err(HerarxError::WrongCode(format!(
                "Wrong code: give the code the authenticator shows now (and check that the \
                 device's clock is right); {tries_left} {} left.",
                if tries_left == 1 { "try" } else { "tries" }
            ))),
            ConfirmOutcome::TooManyFactors => Err(HerarxError::Busy(format!(
                "You have {FACTORS_PER_USER_MAX} factors, the most allowed: remove one first \
                 (`herarxctl remove ID`)."
            ))),
        }
    }

    pub fn remove_factor(
        &self,
        uid: u32,
        id: &str,
        step_up_code: &str,
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
            return Err(HerarxError::InvalidArgument(
                "The step-up code is too long: give the code your authenticator shows.".into(),
            ));
        }
        let result = {
            let mut store = self.state.store();
            store.remove_factor(&ctx, id, step_up_code, now)
        };
        let (outcome, entry) = result.map_err(|e| self.state.internal("removing a factor", &e))?;
        self.state.log.audit(&entry);
        match outcome {
            RemoveOutcome::Removed => Ok(()),
            RemoveOutcome::NoSuchFactor => Err(no_such_factor()),
            RemoveOutcome::StepUpRequired => Err(HerarxError::StepUpRequired(
                "Removing a factor needs a current code from one of your factors (step-up).".into(),
            )),
            RemoveOutcome::StepUpFailed(o) => Err(step_up_refusal(&o, now)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::tests::{NOW, harness};
    use crate::totp::code_at;

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
            .remove_factor(1001, &info.id, "123456", NOW)
            .unwrap_err();
        assert!(matches!(e, HerarxError::NoSuchFactor(_)));
        let e = svc.remove_factor(1000, &info.id, "", NOW).unwrap_err();
        assert!(matches!(e, HerarxError::StepUpRequired(_)));
        let e = svc
            .remove_factor(1000, &info.id, &code(&secret, NOW), NOW)
            .unwrap_err();
        assert!(
            matches!(e, HerarxError::WrongCode(_)),
            "the enrolment code is spent"
        );
        svc.remove_factor(1000, &info.id, &code(&secret, NOW + 30), NOW + 30)
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
            .begin_totp_enrollment(1000, "x", &crate::auth::tests::code(NOW), "", NOW)
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
