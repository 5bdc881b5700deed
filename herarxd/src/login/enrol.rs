//! Enrolment inside the login: the QR code, the first code of the new app, then backup codes.

use herarx_proto::{Action, HerarxError, Step};
use zeroize::Zeroizing;

use super::*;
use crate::crypto::otpauth;
use crate::logger::Severity;
use crate::login::enrol_text;
use crate::store::enrollments::{BeginOutcome, ConfirmOutcome};
use crate::store::{AuditCtx, AuditResult};

/// The end of an enrolment inside a login when the account gained a factor meanwhile.
pub const ENROL_SUPERSEDED: &str = "A second factor was added to this account while this \
     login was setting one up, so nothing was added here: log in again and use that factor.";

impl Logins {
    /// Starts enrolling a first TOTP factor inside the login: the secret is made and sealed
    /// by the store, shown once in the first step's message.
    pub(super) fn start_enrolment(&self, ctx: &AuditCtx, now: u64) -> Result<Start, HerarxError> {
        let config = self.state.config();
        let params = crate::config::totp_params(&config);
        let started = {
            let mut store = self.state.store();
            store.begin_totp_enrollment(ctx, "authenticator", "", params, now)
        };
        let outcome = self
            .state
            .settle("starting an enrolment in a login", started)?;
        let BeginOutcome::Started(n) = outcome else {
            // A user without factors needs no step-up and has room: never reached.
            return Ok(Start::Done(Step::terminal(
                Action::Denied,
                NO_FACTOR_DENIED,
            )));
        };
        let uri = otpauth::totp_uri(
            &config.totp.issuer,
            &ctx.user,
            &self.state.hostname,
            &n.secret,
            &n.params,
        );
        let secret = Zeroizing::new(data_encoding::BASE32_NOPAD.encode(&n.secret));
        let text = enrol_text::enrolment(&uri, &secret);
        Ok(Start::Run(Box::new(Run {
            stage: Stage::Enrol {
                pending_id: n.id.clone(),
            },
            // Enrolling: no method yet.
            methods: Methods::default(),
            step: Step::prompt(ENROL_PROMPT).with_message(text.as_str()),
            remember: Vec::new(),
            contacts: Vec::new(),
            last_sent: None,
        })))
    }

    /// The first code of an app being set up inside the login.
    pub(super) fn answer_enrolment(
        &self,
        ctx: &AuditCtx,
        pending_id: &str,
        response: &str,
        now: u64,
    ) -> Result<Next, HerarxError> {
        let confirmed = {
            let mut store = self.state.store();
            store.confirm_totp_enrollment(ctx, pending_id, response, now)
        };
        let outcome = self
            .state
            .settle("confirming an enrolment in a login", confirmed)?;
        match outcome {
            ConfirmOutcome::Enrolled(info) => {
                // Prominent: a stolen password plus this window is how an attacker would
                // enrol their own app, so admins must see every one.
                let where_from = if ctx.rhost.is_empty() {
                    "locally".to_owned()
                } else {
                    format!("from {}", ctx.rhost)
                };
                let reason = format!(
                    "ENROLLED INSIDE A LOGIN: factor {} for {} via {} {where_from}",
                    info.id, ctx.user, ctx.service
                );
                self.state.log.log(Severity::Warning, &reason);
                self.record(&ctx.entry(now, "enroll-in-login", AuditResult::Success, reason));
                let issued = {
                    let mut store = self.state.store();
                    store.issue_backup_codes(ctx, now)
                };
                let codes = self
                    .state
                    .settle("issuing backup codes in a login", issued)?;
                let text = enrol_text::backup_codes(&codes);
                Ok(Next::Continue(
                    Stage::ShowCodes,
                    Step::prompt_visible(SAVED_PROMPT).with_message(text.as_str()),
                ))
            }
            ConfirmOutcome::Wrong { tries_left } if tries_left > 0 => Ok(Next::Continue(
                Stage::Enrol {
                    pending_id: pending_id.to_owned(),
                },
                Step::prompt(ENROL_PROMPT_AFTER_WRONG),
            )),
            ConfirmOutcome::Wrong { .. } | ConfirmOutcome::NoSuchEnrollment => {
                Ok(Next::Done(Step::terminal(Action::Denied, ENROL_FAILED)))
            }
            ConfirmOutcome::TooManyFactors => {
                Ok(Next::Done(Step::terminal(Action::Denied, NO_FACTOR_DENIED)))
            }
            // The account gained a factor while this login was enrolling one: whoever
            // enrolled it logs in with it; this enrolment, begun with no step-up, is void.
            ConfirmOutcome::StepUpRequired | ConfirmOutcome::NoSuchFactor => {
                Ok(Next::Done(Step::terminal(Action::Denied, ENROL_SUPERSEDED)))
            }
        }
    }
}
