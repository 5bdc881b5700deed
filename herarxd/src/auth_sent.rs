//! Codes sent by email or text message in a login: which factors are offered, sending (off
//! every lock: a slow gateway holds up this login only), and the resend wait.
//!
//! A code is sent only when the login gets to it: the user's primary method is email or SMS,
//! or the user picks it in the menu. A PAM stack that puts the password first as `requisite`
//! never reaches this module after a wrong password, so nothing is sent for it.

use herarx_proto::{Action, HerarxError, Step};

use super::*;
use crate::config::Config;
use crate::delivery::Delivery;
use crate::logger::Severity;
use crate::sent_text::{self, CodeUse};
use crate::store::sent_codes::{self, IssueOutcome, KIND_EMAIL, Purpose};
use crate::store::{AuditCtx, AuditResult};

pub const SENT_PROMPT: &str = "Code we sent (Enter for other ways): ";
pub const SENT_PROMPT_AFTER_WRONG: &str = "Wrong code. Code we sent (Enter for other ways): ";

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
        let offered = |kind: &str| {
            let (enabled, name) = if kind == KIND_EMAIL {
                (config.email_enabled(), "email")
            } else {
                (config.sms_enabled(), "sms")
            };
            enabled && config.service_accepts(&ctx.service, name)
        };
        let mut choices: Vec<ContactChoice> = all
            .into_iter()
            .filter(|c| offered(&c.kind))
            .map(|c| ContactChoice {
                masked: sent_codes::mask(&c.kind, &c.destination),
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

    /// The transaction to create once a login knows its methods: sends the primary contact's
    /// code right away when that is where it starts.
    pub(super) fn first_run(
        &self,
        ctx: &AuditCtx,
        methods: Methods,
        contacts: Vec<ContactChoice>,
        remember: Vec<(&'static str, String, u64)>,
        now: u64,
    ) -> Result<Start, HerarxError> {
        let (stage, step) = methods.first();
        let run = |stage, step, last_sent| {
            Ok(Start::Run(Box::new(Run {
                stage,
                methods,
                step,
                remember: remember.clone(),
                contacts: contacts.clone(),
                last_sent,
            })))
        };
        if !matches!(stage, Stage::Send { .. }) {
            return run(stage, step, None);
        }
        let Some(contact) = contacts.first() else {
            return Ok(Start::Done(Step::terminal(
                Action::Denied,
                NO_ACCEPTED_METHOD,
            )));
        };
        match self.send_code(None, ctx, contact, None, now)? {
            Ok((stage, step)) => run(stage, step, Some(now)),
            // Not sent: the other ways in, with why.
            Err(note) if methods.totp => {
                run(Stage::Code, methods.first_prompt().with_message(note), None)
            }
            Err(note) if methods.backup_codes > 0 => run(
                Stage::BackupCode,
                Step::prompt(BACKUP_PROMPT).with_message(note),
                None,
            ),
            Err(note) if methods.menu(&contacts).len() > 1 => {
                let items = methods.menu(&contacts);
                run(
                    Stage::Menu {
                        back: Box::new(Stage::SentCode {
                            masked: contact.masked.clone(),
                        }),
                    },
                    menu_step(&items, Some(&note)),
                    None,
                )
            }
            Err(note) => {
                self.record(&ctx.entry(
                    now,
                    &contact.kind,
                    AuditResult::Denied,
                    "no code could be sent",
                ));
                Ok(Start::Done(Step::terminal(Action::Denied, note)))
            }
        }
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
        let config = self.state.config();
        let wait = config.sent_code_resend_seconds();
        if let Some(at) = last_sent
            && now < at.saturating_add(wait)
        {
            let left = at.saturating_add(wait) - now;
            return Ok(Err(format!(
                "A code was sent {} seconds ago; you can ask for a new one in {left} seconds. \
                 It can take a minute to arrive.",
                now.saturating_sub(at)
            )));
        }
        let (outcome, entry) = self
            .state
            .store()
            .issue_code(ctx, &contact.factor_id, Purpose::Login, now)
            .map_err(|e| self.state.internal("issuing a code", &e))?;
        self.state.log.audit(&entry);
        let issued = match outcome {
            IssueOutcome::Issued(issued) => issued,
            IssueOutcome::RateLimited { retry_after } => {
                let minutes = retry_after.saturating_sub(now).div_ceil(60).max(1);
                return Ok(Err(format!(
                    "Too many codes were sent recently: the next one can go in {minutes} \
                     minutes. Use another way, or wait."
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
        let sent = if issued.kind == KIND_EMAIL {
            let (subject, body) =
                sent_text::email(CodeUse::Login, &ctx.user, host, &issued.code, valid);
            delivery.send_email(
                &issued.destination,
                &subject,
                &zeroize::Zeroizing::new(body),
            )
        } else {
            let text = sent_text::sms(CodeUse::Login, &ctx.user, host, &issued.code, valid);
            delivery.send_sms(&issued.destination, &zeroize::Zeroizing::new(text))
        };
        if let Err(e) = sent {
            let reason = format!("code to factor {} not delivered: {e}", contact.factor_id);
            self.record(&ctx.entry(now, &issued.kind, AuditResult::Error, reason.clone()));
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
        let minutes = valid.div_ceil(60).max(1);
        Ok(Ok((
            Stage::SentCode {
                masked: contact.masked.clone(),
            },
            Step::prompt(SENT_PROMPT).with_message(format!(
                "A code was sent to {}. It works for {minutes} minutes.",
                contact.masked
            )),
        )))
    }
}
