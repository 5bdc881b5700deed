//! Self-service email and SMS factors: adding an address or a number (a code is sent there
//! and must come back, so nobody registers a destination they do not control), and codes sent
//! for a step-up (a user whose only methods are email or SMS proves it is them that way).

use crate::store::FactorKind;
use herarx_proto::{FactorInfo, HerarxError, limits};

use crate::delivery::text::{self, CodeUse};
use crate::delivery::{Delivery, contact};
use crate::selfservice::SelfService;
use crate::selfservice::refusals::{
    CONTACT_WORDS, REMOVE_ANY, changed_since_begin, no_such_enrollment, no_such_factor,
    not_a_contact_kind, step_up_refusal, step_up_too_long, too_many_factors,
    wrong_confirmation_code,
};
use crate::state::valid_text;
use crate::store::contact_enrollments::{ContactBeginOutcome, NewContact};
use crate::store::enrollments::ConfirmOutcome;
use crate::store::sent_codes::{IssueOutcome, Issued, Purpose};
use crate::store::{AuditCtx, AuditResult};

/// A code went out: the pending id (empty for a step-up code) and where, masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeSent {
    pub id: String,
    pub masked: String,
}

fn rate_limited(retry_after: u64, now: u64) -> HerarxError {
    HerarxError::Busy(format!(
        "Too many codes were sent to this account or destination in the last hour: try again \
         in {}.",
        text::minutes(retry_after.saturating_sub(now))
    ))
}

/// What `BeginContactEnrollment` asks, as the caller typed it: `kind` "email" or "sms", the
/// destination before normalizing, and the id of the factor it replaces (empty: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContactRequest<'a> {
    pub kind: &'a str,
    pub destination: &'a str,
    pub name: &'a str,
    pub replace: &'a str,
}

impl SelfService {
    fn kind_enabled(&self, kind: FactorKind) -> Result<(), HerarxError> {
        let config = self.state.config();
        let (on, key) = match kind {
            FactorKind::Email => (config.email_enabled(), "email.transport"),
            FactorKind::Sms => (config.sms_enabled(), "sms.gateway"),
            _ => {
                return Err(not_a_contact_kind());
            }
        };
        if on {
            Ok(())
        } else {
            Err(HerarxError::InvalidArgument(format!(
                "This host does not send {}: ask your administrator to set {key} in \
                 /etc/herarx/herarx.toml.",
                if kind == FactorKind::Email {
                    "email"
                } else {
                    "text messages"
                }
            )))
        }
    }

    /// Sends `issued` by its kind; on failure, the audit row and a sentence for the caller.
    fn deliver(
        &self,
        ctx: &AuditCtx,
        use_: CodeUse,
        issued: &Issued,
        now: u64,
    ) -> Result<(), HerarxError> {
        let Some(_slot) = self.state.deliveries.try_start() else {
            return Err(HerarxError::Busy(
                "Too many messages are being sent right now: try again in a moment.".into(),
            ));
        };
        let config = self.state.config();
        let valid = config.sent_code_valid_seconds();
        let delivery = Delivery::from_config(&config, &self.state.hostname);
        let host = &self.state.hostname;
        let sent = if issued.kind == FactorKind::Email {
            let (subject, body) = text::email(use_, &ctx.user, host, &issued.code, valid);
            delivery.send_email(
                &issued.destination,
                &subject,
                &zeroize::Zeroizing::new(body),
            )
        } else {
            let text = text::sms(use_, &ctx.user, host, &issued.code, valid);
            delivery.send_sms(&issued.destination, &zeroize::Zeroizing::new(text))
        };
        sent.map_err(|e| {
            // The delivery error names no destination in clear, nor a long digit run.
            let reason = format!("code not delivered: {e}");
            self.record(&ctx.entry(now, issued.kind, AuditResult::Error, reason.clone()));
            self.state.log.log(
                crate::logger::Severity::Warning,
                &format!("user {}: {reason}", ctx.user),
            );
            HerarxError::Internal(format!(
                "The code could not be sent to {}: {}. Check the address or number, or try \
                 again later.",
                crate::store::factors::mask(issued.kind, &issued.destination),
                e
            ))
        })
    }

    /// Starts adding an email address or phone number: validates it, asks for a step-up when
    /// the user has anything that logs in, and sends the confirmation code there.
    pub fn begin_contact_enrollment(
        &self,
        uid: u32,
        request: &ContactRequest<'_>,
        step_up_code: &str,
        now: u64,
    ) -> Result<CodeSent, HerarxError> {
        let ContactRequest {
            kind,
            destination,
            name,
            replace,
        } = *request;
        let method = format!("{kind}-enroll");
        let ctx = self.account(uid, "contact-enroll", now)?;
        let Some(kind) = FactorKind::parse(kind).filter(|k| k.is_contact()) else {
            self.refuse(&ctx, "contact-enroll", now, "unknown kind");
            return Err(not_a_contact_kind());
        };
        self.kind_enabled(kind)?;
        let normalized = if kind == FactorKind::Email {
            contact::normalize_email(destination)
        } else {
            contact::normalize_phone(destination)
        };
        let destination = match normalized {
            Ok(d) => d,
            Err(why) => {
                self.refuse(&ctx, &method, now, "invalid destination");
                return Err(HerarxError::InvalidArgument(why));
            }
        };
        if !replace.is_empty() && !valid_text(replace, limits::ID_MAX) {
            self.refuse(&ctx, &method, now, "malformed id of the factor to replace");
            return Err(no_such_factor());
        }
        let name = if name.is_empty() {
            if kind == FactorKind::Email {
                "email"
            } else {
                "phone"
            }
        } else {
            name
        };
        self.check_name(&ctx, &method, name, now)?;
        if step_up_code.len() > limits::ANSWER_MAX {
            self.refuse(&ctx, &method, now, "step-up code too long");
            return Err(step_up_too_long());
        }
        let result = {
            let mut store = self.state.store();
            let replace = (!replace.is_empty()).then_some(replace);
            store.begin_contact_enrollment(
                &ctx,
                &NewContact {
                    kind,
                    destination: &destination,
                    name,
                    replace,
                },
                step_up_code,
                now,
            )
        };
        let outcome = self.state.settle("starting an enrolment", result)?;
        match outcome {
            ContactBeginOutcome::Started(issued) => {
                self.deliver(&ctx, CodeUse::Enrol, &issued, now)?;
                Ok(CodeSent {
                    id: issued.id.clone(),
                    masked: crate::store::factors::mask(kind, &destination),
                })
            }
            ContactBeginOutcome::StepUpRequired => Err(HerarxError::StepUpRequired(
                "You already have a way to sign in: give a current code from it, or a backup \
                 code (step-up)."
                    .into(),
            )),
            ContactBeginOutcome::StepUpFailed(o) => Err(step_up_refusal(&o, now)),
            ContactBeginOutcome::NoSuchFactor => Err(no_such_factor()),
            ContactBeginOutcome::TooManyFactors => Err(too_many_factors(REMOVE_ANY)),
            ContactBeginOutcome::AlreadyEnrolled => Err(HerarxError::InvalidArgument(
                "That address or number is already one of your sign-in methods (`herarxctl \
                 status`)."
                    .into(),
            )),
            ContactBeginOutcome::RateLimited { retry_after } => Err(rate_limited(retry_after, now)),
        }
    }

    /// Completes an email or SMS enrolment with the code sent there.
    pub fn confirm_contact_enrollment(
        &self,
        uid: u32,
        id: &str,
        code: &str,
        now: u64,
    ) -> Result<FactorInfo, HerarxError> {
        const METHOD: &str = "contact-confirm";
        let ctx = self.account(uid, METHOD, now)?;
        if !valid_text(id, limits::ID_MAX) {
            self.refuse(&ctx, METHOD, now, "malformed enrolment id");
            return Err(no_such_enrollment(&CONTACT_WORDS));
        }
        let code = if code.len() <= limits::ANSWER_MAX {
            code
        } else {
            "-"
        };
        let result = self
            .state
            .store()
            .confirm_contact_enrollment(&ctx, id, code, now);
        let outcome = self.state.settle("confirming an enrolment", result)?;
        match outcome {
            ConfirmOutcome::Enrolled(info) => {
                self.alert_method_change(&ctx, &info, true, now);
                Ok(info)
            }
            ConfirmOutcome::NoSuchEnrollment => Err(no_such_enrollment(&CONTACT_WORDS)),
            ConfirmOutcome::Wrong { tries_left } => {
                Err(wrong_confirmation_code(&CONTACT_WORDS, tries_left))
            }
            ConfirmOutcome::TooManyFactors => Err(too_many_factors(REMOVE_ANY)),
            ConfirmOutcome::StepUpRequired => Err(changed_since_begin(true, &CONTACT_WORDS)),
            ConfirmOutcome::NoSuchFactor => Err(changed_since_begin(false, &CONTACT_WORDS)),
        }
    }

    /// Sends a step-up code to one of the caller's email or SMS factors (empty id: the first
    /// one). The code then works as the step-up of any change, once, for a few minutes.
    pub fn send_step_up_code(
        &self,
        uid: u32,
        factor_id: &str,
        now: u64,
    ) -> Result<CodeSent, HerarxError> {
        const METHOD: &str = "send-code";
        let ctx = self.account(uid, METHOD, now)?;
        if !factor_id.is_empty() && !valid_text(factor_id, limits::ID_MAX) {
            self.refuse(&ctx, METHOD, now, "malformed factor id");
            return Err(HerarxError::NoSuchFactor(
                "You have no email or SMS factor with that id: run `herarxctl status`.".into(),
            ));
        }
        let config = self.state.config();
        let contacts = self
            .state
            .store()
            .contacts(&ctx.user)
            .map_err(|e| self.state.internal("reading the email and SMS factors", &e))?;
        let usable = |kind: FactorKind| {
            (kind == FactorKind::Email && config.email_enabled())
                || (kind == FactorKind::Sms && config.sms_enabled())
        };
        let Some(target) = contacts
            .iter()
            .find(|c| (factor_id.is_empty() || c.factor_id == factor_id) && usable(c.kind))
        else {
            self.refuse(&ctx, METHOD, now, "no such email or SMS factor");
            return Err(HerarxError::NoSuchFactor(
                "You have no email or SMS factor this host can send to: give a code from your \
                 app or a backup code instead."
                    .into(),
            ));
        };
        let result = self
            .state
            .store()
            .issue_code(&ctx, &target.factor_id, Purpose::StepUp, now);
        let outcome = self.state.settle("issuing a code", result)?;
        match outcome {
            IssueOutcome::Issued(issued) => {
                self.deliver(&ctx, CodeUse::StepUp, &issued, now)?;
                Ok(CodeSent {
                    id: String::new(),
                    masked: crate::store::factors::mask(target.kind, &target.destination),
                })
            }
            IssueOutcome::RateLimited { retry_after } => Err(rate_limited(retry_after, now)),
            IssueOutcome::NoSuchFactor => Err(HerarxError::NoSuchFactor(
                "That factor is gone: run `herarxctl status`.".into(),
            )),
        }
    }
}
