//! `Answer`: a code at a code prompt, a choice in the menu, and the alerts a wrong code may
//! raise.

use super::*;

use herarx_proto::{Action, HerarxError, Step, limits};
use zeroize::Zeroizing;

use crate::crypto::totp::Rejection;
use crate::logger::Severity;
use crate::state::printable;
use crate::store::verify::VerifyOutcome;
use crate::store::{AuditCtx, AuditResult, FactorKind, Scope};

/// What taking a transaction for an answer came to.
enum Taken {
    /// The transaction as it stands, and its stage.
    Turn(Turn, Stage),
    /// It ended (timed out, too many steps) with this step.
    Over(Step),
}

impl Logins {
    /// Answers the current prompt of transaction `id`, begun by `bus_name`.
    pub fn answer(
        &self,
        bus_name: &str,
        id: &str,
        response: &str,
        now: u64,
    ) -> Result<Step, HerarxError> {
        let (turn, stage) = match self.take_turn(bus_name, id, now)? {
            Taken::Turn(turn, stage) => (turn, stage),
            Taken::Over(step) => return Ok(step),
        };
        // An overlong answer is no code: checked (and counted) as a malformed one.
        let response = if response.len() <= limits::ANSWER_MAX {
            response
        } else {
            "-"
        };
        let next = self.dispatch(&turn, stage, response, now);
        self.end_turn(id, next)
    }

    /// Takes transaction `id` of `bus_name` for one answer: refused while another answer of
    /// it is being checked; over when past its deadline or its step cap.
    fn take_turn(&self, bus_name: &str, id: &str, now: u64) -> Result<Taken, HerarxError> {
        let mut table = self.table();
        let Some(txn) = table.by_id.get_mut(id).filter(|t| t.owner == bus_name) else {
            drop(table);
            self.state.log.log(
                Severity::Notice,
                &format!("refused Answer from {bus_name}: no such transaction"),
            );
            return Err(no_such_transaction());
        };
        if txn.checking {
            return Err(HerarxError::Busy(
                "An answer of this login is being checked; wait for its reply.".into(),
            ));
        }
        if now >= txn.deadline {
            let txn = table.remove(id);
            drop(table);
            if let Some(t) = txn {
                self.record(&t.ctx.entry(
                    now,
                    FactorKind::Totp,
                    AuditResult::Denied,
                    "login timed out",
                ));
            }
            return Ok(Taken::Over(Step::terminal(Action::Denied, TIMED_OUT)));
        }
        if txn.steps >= limits::STEPS_MAX {
            let txn = table.remove(id);
            drop(table);
            if let Some(t) = txn {
                self.record(&t.ctx.entry(
                    now,
                    FactorKind::Totp,
                    AuditResult::Denied,
                    "step cap reached",
                ));
            }
            return Ok(Taken::Over(Step::terminal(Action::Denied, TOO_MANY_STEPS)));
        }
        txn.checking = true;
        txn.steps += 1;
        Ok(Taken::Turn(
            Turn {
                id: id.to_owned(),
                ctx: txn.ctx.clone(),
                scope: txn.scope.clone(),
                methods: txn.methods,
                contacts: txn.contacts.clone(),
                last_sent: txn.last_sent,
            },
            txn.stage.clone(),
        ))
    }

    /// The answer, by the stage it came in.
    fn dispatch(
        &self,
        turn: &Turn,
        stage: Stage,
        response: &str,
        now: u64,
    ) -> Result<Next, HerarxError> {
        let (id, ctx, scope, methods) = (turn.id.as_str(), &turn.ctx, &turn.scope, turn.methods);
        match stage {
            Stage::Code | Stage::BackupCode | Stage::SentCode { .. } => {
                self.answer_code(turn, &stage, response, now)
            }
            Stage::Menu { back } => Ok(self.answer_menu(turn, *back, response, now)),
            Stage::Send { factor_id } => self.answer_send(turn, &factor_id, now),
            Stage::Enrol { pending_id } => self.answer_enrolment(ctx, &pending_id, response, now),
            Stage::KeyPin => Ok(Next::Continue(
                Stage::KeyTouch {
                    pin: Some(Zeroizing::new(response.to_owned())),
                },
                Step::wait(TOUCH_MESSAGE),
            )),
            Stage::KeyTouch { pin } => self.answer_touch(
                id,
                ctx,
                scope,
                methods,
                pin.as_deref().map(String::as_str),
                now,
            ),
            Stage::ShowCodes => Ok(Next::Done(self.after_success(
                id,
                ctx,
                Step::terminal(Action::Success, ""),
                now,
            ))),
        }
    }

    /// What the answer led to, written back: the transaction ends, or goes on in its new
    /// stage (unless it was cancelled meanwhile).
    fn end_turn(&self, id: &str, next: Result<Next, HerarxError>) -> Result<Step, HerarxError> {
        let mut table = self.table();
        let next = match next {
            Ok(next) => next,
            Err(e) => {
                table.remove(id);
                return Err(e);
            }
        };
        match next {
            Next::Done(step) => {
                table.remove(id);
                Ok(step)
            }
            Next::Continue(stage, step) => match table.by_id.get_mut(id) {
                Some(txn) => {
                    txn.checking = false;
                    txn.stage = stage;
                    Ok(step)
                }
                // Cancelled or its connection left meanwhile: nothing to continue.
                None => Ok(Step::terminal(Action::Denied, "")),
            },
        }
    }

    /// A code (from the app, a backup code, or a code sent by email or text) at a code
    /// prompt.
    pub(super) fn answer_code(
        &self,
        turn: &Turn,
        stage: &Stage,
        response: &str,
        now: u64,
    ) -> Result<Next, HerarxError> {
        let (id, ctx, scope) = (turn.id.as_str(), &turn.ctx, &turn.scope);
        let methods = turn.methods;
        // An empty answer (or `?`) asks for the other ways in, when there are any.
        if response.trim().is_empty() || response.trim() == "?" {
            return Ok(self.other_ways(turn, stage, now));
        }
        let accept = methods.accept();
        let verified = {
            let mut store = self.state.store();
            store.verify_and_consume_accepting(
                ctx,
                response,
                now,
                scope,
                FactorKind::Totp.as_str(),
                accept,
            )
        };
        let outcome = self.state.settle("checking a code", verified)?;
        if let VerifyOutcome::Rejected {
            failures,
            locked_until,
            ..
        } = &outcome
        {
            self.alert_failures(ctx, scope, *failures, *locked_until, now);
        }
        Ok(match outcome {
            VerifyOutcome::Accepted {
                backup_codes_left, ..
            } => Next::Done(
                self.after_success(
                    id,
                    ctx,
                    Step::terminal(
                        Action::Success,
                        backup_codes_left
                            .map(backup_code_message)
                            .unwrap_or_default(),
                    ),
                    now,
                ),
            ),
            VerifyOutcome::Locked { until }
            | VerifyOutcome::Rejected {
                locked_until: Some(until),
                ..
            } => Next::Done(Step::terminal(Action::Locked, locked_message(until, now))),
            VerifyOutcome::Rejected { reason, .. } => self.wrong_code(turn, stage, reason, now),
        })
    }

    /// An empty answer at a code prompt: the menu when there is another way in (after a code
    /// was sent, even when it is the only way: that is where a new one is asked for). It is no
    /// attempt at a code, so it is not counted.
    fn other_ways(&self, turn: &Turn, stage: &Stage, now: u64) -> Next {
        let (id, ctx) = (turn.id.as_str(), &turn.ctx);
        let (methods, contacts) = (turn.methods, turn.contacts.as_slice());
        let items = methods.menu(contacts);
        let sent = matches!(stage, Stage::SentCode { .. });
        if items.len() > 1 || (sent && !items.is_empty()) {
            return Next::Continue(
                Stage::Menu {
                    back: Box::new(stage.clone()),
                },
                menu_step(&items, None),
            );
        }
        // Nothing to switch to: an empty answer is a try without a code. It uses up one
        // of the login's tries (a client that answers empty forever ends like one that
        // answers wrong), but no failure is counted towards the lockout.
        if !self.use_try(id) {
            self.record(&ctx.entry(now, FactorKind::Totp, AuditResult::Denied, "no code given"));
            return Next::Done(Step::terminal(Action::Denied, NO_CODE_GIVEN));
        }
        Next::Continue(stage.clone(), prompt_of(stage, methods))
    }

    /// A code the store refused: asked again while the login has tries left, else the end.
    fn wrong_code(&self, turn: &Turn, stage: &Stage, reason: Rejection, now: u64) -> Next {
        let id = turn.id.as_str();
        let replayed = reason == Rejection::Replayed;
        if self.use_try(id) {
            let again = match (stage, replayed) {
                (_, true) => Step::prompt(PROMPT_AFTER_REPLAY),
                (Stage::BackupCode, false) => Step::prompt(BACKUP_PROMPT_AFTER_WRONG),
                (Stage::SentCode { .. }, false) if self.sent_code_expired(id, now) => {
                    Step::prompt(SENT_PROMPT_AFTER_EXPIRED)
                }
                (Stage::SentCode { .. }, false) => Step::prompt(SENT_PROMPT_AFTER_WRONG),
                _ => Step::prompt(PROMPT_AFTER_WRONG),
            };
            Next::Continue(stage.clone(), again)
        } else {
            Next::Done(Step::terminal(
                Action::Denied,
                if replayed { REPLAYED_CODE } else { WRONG_CODE },
            ))
        }
    }

    /// The alerts a wrong second factor may raise: the count reaching
    /// `alerts.failed_second_factor` (the password was right, unless the PAM stack lets a
    /// wrong one through to this module), and a lock that just began.
    pub(super) fn alert_failures(
        &self,
        ctx: &AuditCtx,
        scope: &Scope,
        failures: u32,
        locked_until: Option<u64>,
        now: u64,
    ) {
        use crate::alerts::{Alert, AlertKind};
        let threshold = self.state.config().alerts.failed_second_factor;
        let alert = |kind, what: String| Alert {
            kind,
            user: ctx.user.clone(),
            when: now,
            rhost: ctx.rhost.clone(),
            service: ctx.service.clone(),
            what,
        };
        if threshold > 0 && failures == threshold {
            self.state.alert(alert(
                AlertKind::FailedSecondFactor,
                format!("{failures} wrong verification codes in a row after a correct password"),
            ));
        }
        if let Some(until) = locked_until {
            let at = humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(until),
            );
            let which = match scope {
                Scope::Local => "local sign-ins".to_owned(),
                Scope::Remote(source) => format!("sign-ins from {source}"),
            };
            self.state.alert(alert(
                AlertKind::Lockout,
                format!("after {failures} failed attempts, {which} are locked until {at}"),
            ));
        }
    }

    /// A choice in the method menu; Enter goes back to where it was opened. Choosing an
    /// email or SMS factor leads to its `Wait` step (the send is the next answer), unless a
    /// code went out too recently in this login.
    pub(super) fn answer_menu(&self, turn: &Turn, back: Stage, response: &str, now: u64) -> Next {
        let (methods, contacts, last_sent) =
            (turn.methods, turn.contacts.as_slice(), turn.last_sent);
        let items = methods.menu(contacts);
        let choice = response.trim();
        if choice.is_empty() {
            let step = prompt_of(&back, methods);
            return Next::Continue(back, step);
        }
        match choice
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| items.get(i))
        {
            Some((Stage::Send { factor_id }, _)) => {
                let contact = contacts.iter().find(|c| &c.factor_id == factor_id);
                let wait = self.resend_wait(last_sent, now);
                match (contact, wait) {
                    (Some(contact), None) => {
                        let (stage, step) = sending(contact);
                        Next::Continue(stage, step)
                    }
                    (_, note) => Next::Continue(
                        Stage::Menu {
                            back: Box::new(back),
                        },
                        menu_step(&items, note.as_deref()),
                    ),
                }
            }
            Some((stage, _)) => Next::Continue(stage.clone(), prompt_of(stage, methods)),
            None => Next::Continue(
                Stage::Menu {
                    back: Box::new(back),
                },
                menu_step(
                    &items,
                    Some(&format!(
                        "\"{}\" is not one of the choices.",
                        printable(choice)
                    )),
                ),
            ),
        }
    }
}
