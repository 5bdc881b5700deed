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

    /// The touch: asks the plugged-in keys for an assertion over a fresh challenge, and
    /// verifies it here (rpIdHash, flags, allow list, signature, counter) before anything is
    /// believed; the counter moves forward in the store before success is reported.
    pub(super) fn answer_touch(
        &self,
        id: &str,
        ctx: &AuditCtx,
        scope: &Scope,
        methods: Methods,
        pin: Option<&str>,
        now: u64,
    ) -> Result<Next, HerarxError> {
        use crate::fido2::{AssertionError, CredId, DeviceError, Purpose, Uv};
        use std::time::{Duration, Instant};
        let config = self.state.config();
        let uv_required = methods.key_pin;
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
        let timeout = Duration::from_secs(config.fido2.touch_timeout_seconds);
        let started = Instant::now();
        let challenge = self
            .state
            .challenges
            .issue(
                user,
                Purpose::Login,
                started,
                timeout + Duration::from_secs(5),
            )
            .map_err(|e| {
                self.state
                    .log
                    .log(Severity::Error, &format!("cannot make a challenge: {e}"));
                HerarxError::Internal("herarxd could not make a challenge; try again.".into())
            })?;
        let allow: Vec<CredId> = stored
            .iter()
            .map(|k| CredId(k.credential.credential_id.clone()))
            .collect();
        let uv = if uv_required {
            Uv::Required
        } else {
            Uv::Discouraged
        };
        let asked = crate::fido2::get_assertion_any(
            self.state.keys.as_ref(),
            &devices,
            &rp_id,
            &challenge,
            &allow,
            uv,
            pin,
            started + timeout,
        );
        // Single use, whatever the key said.
        let fresh = self
            .state
            .challenges
            .take(&challenge, user, Purpose::Login, Instant::now());
        let raw = match asked {
            Ok((_, raw)) => raw,
            Err(DeviceError::PinInvalid) => {
                note("wrong security key PIN".into());
                return Ok(if self.use_try(id) {
                    Next::Continue(Stage::KeyPin, Step::prompt(KEY_PIN_AGAIN))
                } else {
                    Next::Done(Step::terminal(Action::Denied, "Wrong PIN."))
                });
            }
            Err(DeviceError::PinRequired) if pin.is_none() => {
                return Ok(Next::Continue(Stage::KeyPin, Step::prompt(KEY_NEEDS_PIN)));
            }
            Err(DeviceError::Timeout | DeviceError::Denied) => {
                note("security key not touched in time".into());
                return Ok(self.after_key(methods, KEY_NOT_TOUCHED));
            }
            Err(DeviceError::NoCredentials) => {
                note("the plugged-in keys hold none of the user's credentials".into());
                return Ok(self.after_key(methods, KEY_NOT_REGISTERED));
            }
            Err(DeviceError::NotPresent) => {
                note("no security key plugged in".into());
                return Ok(self.after_key(methods, KEY_NOT_PLUGGED));
            }
            Err(e) => {
                note(format!("security key error: {e}"));
                let mut why = e.to_string();
                if let Some(first) = why.get(..1) {
                    why = format!("{}{}.", first.to_uppercase(), &why[1..]);
                }
                return Ok(self.after_key(methods, &why));
            }
        };
        let creds: Vec<crate::fido2::Credential> =
            stored.iter().map(|k| k.credential.clone()).collect();
        let verified = fresh
            .map_err(|_| AssertionError::UnknownCredential)
            .and_then(|()| {
                crate::fido2::verify_assertion_for_user(
                    &creds,
                    &raw.credential_id,
                    &rp_id,
                    &challenge,
                    &raw.auth_data,
                    &raw.signature,
                    uv_required,
                )
            });
        match verified {
            Ok((index, counter)) => {
                let factor_id = stored
                    .get(index)
                    .map(|k| k.factor_id.clone())
                    .unwrap_or_default();
                let (acceptance, entry) = self
                    .state
                    .store()
                    .fido2_accept(ctx, scope, &factor_id, counter.counter, now)
                    .map_err(|e| self.state.internal("recording a key's counter", &e))?;
                self.state.log.audit(&entry);
                if let KeyAcceptance::Locked { until } = acceptance {
                    return Ok(Next::Done(Step::terminal(
                        Action::Locked,
                        locked_message(until, now),
                    )));
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
                    Ok(Next::Continue(stage, Step::prompt(prompt)))
                } else if accepted {
                    Ok(Next::Done(self.after_success(
                        id,
                        ctx,
                        Step::terminal(Action::Success, ""),
                        now,
                    )))
                } else {
                    self.state.log.log(Severity::Warning, &entry.reason);
                    Ok(Next::Done(Step::terminal(Action::Denied, KEY_CLONED)))
                }
            }
            Err(e) => {
                let (locked, entry) = self
                    .state
                    .store()
                    .fido2_reject(ctx, scope, e.audit_reason(), now)
                    .map_err(|e| self.state.internal("counting a refused key", &e))?;
                self.state.log.audit(&entry);
                if let Some(until) = locked {
                    return Ok(Next::Done(Step::terminal(
                        Action::Locked,
                        locked_message(until, now),
                    )));
                }
                if matches!(e, AssertionError::CounterRegression { .. }) {
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
}
