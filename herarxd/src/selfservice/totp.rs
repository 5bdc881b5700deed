//! TOTP enrolment: begin (a new secret, or a replacement of a factor) and confirm.

use herarx_proto::{FactorInfo, HerarxError, PendingEnrollment, limits};

use crate::crypto::otpauth;
use crate::selfservice::SelfService;
use crate::selfservice::refusals::{
    REMOVE_ANY, TOTP_WORDS, changed_since_begin, no_such_enrollment, no_such_factor,
    step_up_refusal, step_up_too_long, too_many_factors, wrong_confirmation_code,
};
use crate::state::valid_text;
use crate::store::enrollments::{BeginOutcome, ConfirmOutcome};

pub const DEFAULT_FACTOR_NAME: &str = "authenticator";

impl SelfService {
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
        let params = crate::config::totp_params(&config);
        let result = {
            let mut store = self.state.store();
            let replace = (!replace.is_empty()).then_some(replace);
            store.begin_totp_enrollment_replacing(&ctx, name, step_up_code, replace, params, now)
        };
        let outcome = self.state.settle("starting an enrolment", result)?;
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
        let outcome = self.state.settle("confirming an enrolment", result)?;
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
}

#[cfg(test)]
#[path = "totp_tests.rs"]
mod tests;
