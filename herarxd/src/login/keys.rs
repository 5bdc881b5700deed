//! Security keys in a login: the touch, verified by the daemon, and where a key that did not
//! do it leaves the login.

use herarx_proto::{Action, HerarxError, Step};

use super::*;
use crate::logger::Severity;
use crate::store::fido2::KeyAcceptance;
use crate::store::{AuditCtx, AuditResult, FactorKind, Scope};

impl Logins {
    /// Whether the transaction's next answer may wait: for a security key (up to
    /// `fido2.touch_timeout_seconds`), or for a mail server or SMS gateway (after a
    /// "Sending a code" `Wait` step). The D-Bus layer then runs it on the blocking pool.
    pub fn answer_may_block(&self, bus_name: &str, id: &str) -> bool {
        self.table().by_id.get(id).is_some_and(|t| {
            t.owner == bus_name && matches!(t.stage, Stage::KeyTouch { .. } | Stage::Send { .. })
        })
    }

    /// Where a key that did not do it leaves the login: the code prompt (prefixed with why),
    /// or the end when the user has nothing else.
    pub(super) fn after_key(&self, methods: Methods, why: &str) -> Next {
        // Key and code both required: a key that did not do it ends the login.
        if methods.key_then_code {
            Next::Done(Step::terminal(Action::Denied, why))
        } else if methods.totp {
            Next::Continue(
                Stage::Code,
                Step::prompt(format!("{why} {}", PROMPT_WITH_MENU)),
            )
        } else if methods.backup_codes > 0 {
            Next::Continue(
                Stage::BackupCode,
                Step::prompt(format!("{why} {BACKUP_PROMPT}")),
            )
        } else if methods.contacts > 0 {
            // Enter opens the menu, where a code can be sent.
            Next::Continue(
                Stage::SentCode {
                    masked: String::new(),
                },
                Step::prompt(format!("{why} Press Enter for other ways: ")),
            )
        } else {
            Next::Done(Step::terminal(Action::Denied, why))
        }
    }

    /// Uses up one of the login's tries; whether any are left (none when the transaction
    /// went away meanwhile).
    pub(super) fn use_try(&self, id: &str) -> bool {
        let max_tries = self.state.config().login.max_tries;
        let mut table = self.table();
        match table.by_id.get_mut(id) {
            Some(txn) => {
                txn.tries += 1;
                txn.tries < max_tries
            }
            None => false,
        }
    }

    /// The touch (`factors::touch`): asks the plugged-in keys for an assertion over a fresh
    /// challenge, and verifies it there (rpIdHash, flags, allow list, signature, counter)
    /// before anything is believed; the counter moves forward in the store before success is
    /// reported.
    pub(super) fn answer_touch(
        &self,
        id: &str,
        ctx: &AuditCtx,
        scope: &Scope,
        methods: Methods,
        pin: Option<&str>,
        now: u64,
    ) -> Result<Next, HerarxError> {
        use crate::factors::touch::{self, SettleError, Settled, TouchRequest};
        use crate::fido2::AssertionError;
        use std::time::Duration;
        let config = self.state.config();
        let user = ctx.user.as_str();
        let (stored, rp_id) = {
            let mut store = self.state.store();
            store.fido2_keys(user).and_then(|k| {
                Ok((
                    k,
                    store.fido2_rp_id(&config.fido2.rp_id, &self.state.hostname)?,
                ))
            })
        }
        .map_err(|e| self.state.internal("reading security keys", &e))?;
        let note = |reason: String| {
            self.record(&ctx.entry(now, FactorKind::Fido2, AuditResult::Denied, reason));
        };
        let devices = self.state.keys.list();
        if devices.is_empty() || stored.is_empty() {
            note("no security key plugged in".into());
            return Ok(self.after_key(methods, KEY_NOT_PLUGGED));
        }
        let request = TouchRequest {
            keys: self.state.keys.as_ref(),
            challenges: &self.state.challenges,
            devices: &devices,
            stored: &stored,
            rp_id: &rp_id,
            uv_required: methods.key_pin,
            pin,
            timeout: Duration::from_secs(config.fido2.touch_timeout_seconds),
            scope,
            log: self.state.log.as_ref(),
        };
        let answer = match touch::ask(&request, user) {
            Ok(answer) => answer,
            Err(why) => return self.key_gave_no_answer(id, ctx, methods, pin, why, now),
        };
        // A challenge no longer valid counts as a refused key (`touch::settle`).
        let settled = touch::settle(&request, &answer, &|| self.state.store(), ctx, "", now)
            .map_err(|e| match e {
                SettleError::Accepting(e) => self.state.internal("recording a key's counter", &e),
                SettleError::Rejecting(e) => self.state.internal("counting a refused key", &e),
            })?;
        match settled {
            Settled::Verified { acceptance, entry } => {
                Ok(self.key_verified(id, ctx, methods, acceptance, &entry.reason, now))
            }
            Settled::Refused {
                error,
                locked,
                entry,
            } => {
                if let Some(until) = locked {
                    return Ok(Next::Done(Step::terminal(
                        Action::Locked,
                        locked_message(until, now),
                    )));
                }
                if matches!(error, AssertionError::CounterRegression { .. }) {
                    self.state.log.log(Severity::Warning, &entry.reason);
                    return Ok(Next::Done(Step::terminal(Action::Denied, KEY_CLONED)));
                }
                Ok(if self.use_try(id) {
                    self.after_key(methods, KEY_REFUSED)
                } else {
                    Next::Done(Step::terminal(Action::Denied, KEY_REFUSED))
                })
            }
        }
    }

    /// The keys gave no answer: why, as the login's next step.
    fn key_gave_no_answer(
        &self,
        id: &str,
        ctx: &AuditCtx,
        methods: Methods,
        pin: Option<&str>,
        why: crate::factors::touch::NoAnswer,
        now: u64,
    ) -> Result<Next, HerarxError> {
        use crate::factors::touch::NoAnswer;
        use crate::fido2::DeviceError;
        let note = |reason: String| {
            self.record(&ctx.entry(now, FactorKind::Fido2, AuditResult::Denied, reason));
        };
        match why {
            NoAnswer::NoChallenge(e) => {
                self.state
                    .log
                    .log(Severity::Error, &format!("cannot make a challenge: {e}"));
                Err(HerarxError::Internal(
                    "herarxd could not make a challenge; try again.".into(),
                ))
            }
            NoAnswer::Device(DeviceError::PinInvalid) => {
                note("wrong security key PIN".into());
                Ok(if self.use_try(id) {
                    Next::Continue(Stage::KeyPin, Step::prompt(KEY_PIN_AGAIN))
                } else {
                    Next::Done(Step::terminal(Action::Denied, "Wrong PIN."))
                })
            }
            NoAnswer::Device(DeviceError::PinRequired) if pin.is_none() => {
                Ok(Next::Continue(Stage::KeyPin, Step::prompt(KEY_NEEDS_PIN)))
            }
            NoAnswer::Device(DeviceError::Timeout | DeviceError::Denied) => {
                note("security key not touched in time".into());
                Ok(self.after_key(methods, KEY_NOT_TOUCHED))
            }
            NoAnswer::Device(DeviceError::NoCredentials) => {
                note("the plugged-in keys hold none of the user's credentials".into());
                Ok(self.after_key(methods, KEY_NOT_REGISTERED))
            }
            NoAnswer::Device(DeviceError::NotPresent) => {
                note("no security key plugged in".into());
                Ok(self.after_key(methods, KEY_NOT_PLUGGED))
            }
            NoAnswer::Device(e) => {
                note(format!("security key error: {e}"));
                let mut why = e.to_string();
                if let Some(first) = why.get(..1) {
                    why = format!("{}{}.", first.to_uppercase(), &why[1..]);
                }
                Ok(self.after_key(methods, &why))
            }
        }
    }

    /// A key's answer verified: the counter's verdict (moved forward, or went backwards: a
    /// clone) as the login's next step; with `fido2.key_alone = false` a code comes next.
    fn key_verified(
        &self,
        id: &str,
        ctx: &AuditCtx,
        methods: Methods,
        acceptance: KeyAcceptance,
        cloned_reason: &str,
        now: u64,
    ) -> Next {
        if let KeyAcceptance::Locked { until } = acceptance {
            return Next::Done(Step::terminal(Action::Locked, locked_message(until, now)));
        }
        let accepted = acceptance == KeyAcceptance::Accepted;
        if accepted && methods.key_then_code {
            // The code comes next; from now on, the codes are all this login offers.
            if let Some(txn) = self.table().by_id.get_mut(id) {
                txn.methods = Methods {
                    keys: 0,
                    key_then_code: false,
                    ..methods
                };
            }
            let stage = if methods.totp {
                Stage::Code
            } else {
                Stage::BackupCode
            };
            let prompt = if methods.totp {
                KEY_THEN_CODE_PROMPT
            } else {
                KEY_THEN_BACKUP_PROMPT
            };
            Next::Continue(stage, Step::prompt(prompt))
        } else if accepted {
            Next::Done(self.after_success(id, ctx, Step::terminal(Action::Success, ""), now))
        } else {
            self.state.log.log(Severity::Warning, cloned_reason);
            Next::Done(Step::terminal(Action::Denied, KEY_CLONED))
        }
    }
}
