//! Codes sent by email or text message in a login: which factors are offered, sending (off
//! every lock: a slow gateway holds up this login only), and the resend wait.
//!
//! A code is sent only when the login gets to it: the user's primary method is email or SMS,
//! or the user picks it in the menu. A PAM stack that puts the password first as `requisite`
//! never reaches this module after a wrong password, so nothing is sent for it.

use crate::store::FactorKind;
use herarx_proto::{Action, HerarxError, Step};

use super::*;
use crate::config::Config;
use crate::delivery::Delivery;
use crate::delivery::text::{self, CodeUse};
use crate::logger::Severity;
use crate::store::sent_codes::{IssueOutcome, Purpose};
use crate::store::{AuditCtx, AuditResult};

/// When the bound on deliveries under way is reached (a mail server or gateway hangs).
pub const BUSY_SENDING: &str = "Too many messages are being sent right now: use another way, \
or try again in a moment.";
pub const SENT_PROMPT: &str = "Code we sent (Enter for other ways): ";
pub const SENT_PROMPT_AFTER_WRONG: &str = "Wrong code. Code we sent (Enter for other ways): ";
/// After a wrong answer once the last code this login sent has expired: said whatever was
/// typed, so it tells nothing about the answer.
pub const SENT_PROMPT_AFTER_EXPIRED: &str =
    "Wrong code, or it expired. Code we sent (Enter to ask for a new one): ";

/// The stage and `Wait` step that send a code to `contact` in the next answer.
pub(super) fn sending(contact: &ContactChoice) -> (Stage, Step) {
    (
        Stage::Send {
            factor_id: contact.factor_id.clone(),
        },
        Step::wait(format!("Sending a code to {}…", contact.masked)),
    )
}

impl Logins {
    /// The email and SMS factors this login may offer (the service accepts the kind and this
    /// host can send it), and whether the primary method is one of them.
    pub(super) fn contact_choices(
        &self,
        config: &Config,
        ctx: &AuditCtx,
    ) -> Result<(Vec<ContactChoice>, bool), HerarxError> {
        let (all, primary) = self
            .state
            .store()
            .contacts_for_login(&ctx.user)
            .map_err(|e| self.state.internal("reading the email and SMS factors", &e))?;
        let offered = |kind: FactorKind| {
            let enabled = if kind == FactorKind::Email {
                config.email_enabled()
            } else {
                config.sms_enabled()
            };
            enabled && config.service_accepts(&ctx.service, kind.as_str())
        };
        let mut choices: Vec<ContactChoice> = all
            .into_iter()
            .filter(|c| offered(c.kind))
            .map(|c| ContactChoice {
                masked: crate::store::factors::mask(c.kind, &c.destination),
                factor_id: c.factor_id,
                kind: c.kind,
            })
            .collect();
        // The primary one first: it is the one sent to at the start.
        let first = primary
            .as_deref()
            .and_then(|p| choices.iter().position(|c| c.factor_id == p));
        if let Some(i) = first {
            let c = choices.remove(i);
            choices.insert(0, c);
        }
        Ok((choices, first.is_some()))
    }

    /// The answer after "Sending a code to …": sends it, then asks for it; or, when nothing
    /// could be sent, the other ways in with why (the end when there is none).
    pub(super) fn answer_send(
        &self,
        turn: &Turn,
        factor_id: &str,
        now: u64,
    ) -> Result<Next, HerarxError> {
        let (id, ctx) = (turn.id.as_str(), &turn.ctx);
        let (methods, contacts, last_sent) =
            (turn.methods, turn.contacts.as_slice(), turn.last_sent);
        let Some(contact) = contacts.iter().find(|c| c.factor_id == factor_id) else {
            return Ok(Next::Done(Step::terminal(
                Action::Denied,
                NO_ACCEPTED_METHOD,
            )));
        };
        let note = match self.send_code(Some(id), ctx, contact, last_sent, now)? {
            Ok((stage, step)) => return Ok(Next::Continue(stage, step)),
            Err(note) => note,
        };
        let items = methods.menu(contacts);
        Ok(if last_sent.is_some() {
            // A code this login sent earlier still works: back to asking for it.
            Next::Continue(
                Stage::SentCode {
                    masked: contact.masked.clone(),
                },
                Step::prompt(SENT_PROMPT).with_message(note),
            )
        } else if methods.totp {
            Next::Continue(Stage::Code, methods.first_prompt().with_message(note))
        } else if methods.backup_codes > 0 {
            Next::Continue(
                Stage::BackupCode,
                Step::prompt(BACKUP_PROMPT).with_message(note),
            )
        } else if items.len() > 1 {
            Next::Continue(
                Stage::Menu {
                    back: Box::new(Stage::SentCode {
                        masked: contact.masked.clone(),
                    }),
                },
                menu_step(&items, Some(&note)),
            )
        } else {
            self.record(&ctx.entry(
                now,
                contact.kind,
                AuditResult::Denied,
                "no code could be sent",
            ));
            Next::Done(Step::terminal(Action::Denied, note))
        })
    }

    /// Whether the last code this login sent has expired.
    pub(super) fn sent_code_expired(&self, id: &str, now: u64) -> bool {
        let valid = self.state.config().sent_code_valid_seconds();
        let last = self.table().by_id.get(id).and_then(|t| t.last_sent);
        last.is_some_and(|at| now >= at.saturating_add(valid))
    }

    /// Why a new code cannot go yet in this login (`sent_codes.resend_after`), or `None`.
    pub(super) fn resend_wait(&self, last_sent: Option<u64>, now: u64) -> Option<String> {
        let wait = self.state.config().sent_code_resend_seconds();
        let at = last_sent?;
        let ready = at.saturating_add(wait);
        (now < ready).then(|| {
            format!(
                "A code was sent {} seconds ago; you can ask for a new one in {} seconds. It \
                 can take a minute to arrive.",
                now.saturating_sub(at),
                ready - now
            )
        })
    }

    /// Sends a new login code to `contact`. `Ok`: the stage and prompt that ask for it;
    /// `Err`: a sentence saying why nothing was sent (the resend wait, the flood limit, a
    /// failed delivery), for the menu.
    pub(super) fn send_code(
        &self,
        id: Option<&str>,
        ctx: &AuditCtx,
        contact: &ContactChoice,
        last_sent: Option<u64>,
        now: u64,
    ) -> Result<Result<(Stage, Step), String>, HerarxError> {
        if let Some(note) = self.resend_wait(last_sent, now) {
            return Ok(Err(note));
        }
        let Some(_slot) = self.state.deliveries.try_start() else {
            self.state.log.log(
                Severity::Warning,
                "too many deliveries under way: a login's code was not sent",
            );
            return Ok(Err(BUSY_SENDING.into()));
        };
        let config = self.state.config();
        let result = self
            .state
            .store()
            .issue_code(ctx, &contact.factor_id, Purpose::Login, now);
        let outcome = self.state.settle("issuing a code", result)?;
        let issued = match outcome {
            IssueOutcome::Issued(issued) => issued,
            IssueOutcome::RateLimited { retry_after } => {
                return Ok(Err(format!(
                    "Too many codes were sent recently: the next one can go in {}. Use another \
                     way, or wait.",
                    text::minutes(retry_after.saturating_sub(now))
                )));
            }
            IssueOutcome::NoSuchFactor => {
                return Ok(Err("That method is no longer set up.".into()));
            }
        };
        let valid = config.sent_code_valid_seconds();
        let delivery = Delivery::from_config(&config, &self.state.hostname);
        let host = &self.state.hostname;
        // No lock is held here: a slow mail server or gateway delays this login only.
        let sent = if issued.kind == FactorKind::Email {
            let (subject, body) = text::email(CodeUse::Login, &ctx.user, host, &issued.code, valid);
            delivery.send_email(
                &issued.destination,
                &subject,
                &zeroize::Zeroizing::new(body),
            )
        } else {
            let text = text::sms(CodeUse::Login, &ctx.user, host, &issued.code, valid);
            delivery.send_sms(&issued.destination, &zeroize::Zeroizing::new(text))
        };
        if let Err(e) = sent {
            // The delivery error names no destination in clear, nor a long digit run.
            let reason = format!("code to factor {} not delivered: {e}", contact.factor_id);
            self.record(&ctx.entry(now, issued.kind, AuditResult::Error, reason.clone()));
            self.state
                .log
                .log(Severity::Warning, &format!("user {}: {reason}", ctx.user));
            return Ok(Err(format!(
                "The code could not be sent to {}. Use another way, or try again later.",
                contact.masked
            )));
        }
        if let Some(id) = id
            && let Some(txn) = self.table().by_id.get_mut(id)
        {
            txn.last_sent = Some(now);
        }
        let minutes = text::minutes(valid);
        Ok(Ok((
            Stage::SentCode {
                masked: contact.masked.clone(),
            },
            Step::prompt(SENT_PROMPT).with_message(format!(
                "A code was sent to {}. It works for {minutes}.",
                contact.masked
            )),
        )))
    }
}
