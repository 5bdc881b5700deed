//! What a login already proved another way (a FIDO-backed or remembered SSH key, a remembered
//! address), what it remembers once its code passes, and session trust.

use herarx_proto::{HerarxError, Step};

use super::*;
use crate::logger::Severity;
use crate::login::ssh_info;
use crate::state::printable;
use crate::state::session_trust::NO_SESSION;
use crate::store::remembered::{KIND_ADDRESS, KIND_SSH_KEY};
use crate::store::{AuditCtx, AuditResult, Scope, random_hex};
use crate::users::Lookup;

impl Logins {
    /// Whether this connection already proved what a second factor would (a FIDO-backed SSH
    /// key, a remembered SSH key, a remembered address); if not, what to remember once the
    /// code passes.
    pub(super) fn already_verified(
        &self,
        ctx: &AuditCtx,
        scope: &Scope,
        caller: &Caller,
        ssh_auth_info: &str,
        now: u64,
    ) -> Result<Verified, HerarxError> {
        let config = self.state.config();
        let user = ctx.user.as_str();
        let mut remember = Vec::new();
        let keys = if caller.uid == 0 && config.believes_ssh_auth_info(&ctx.service) {
            ssh_info::passed_keys(ssh_auth_info)
        } else {
            Vec::new()
        };
        if config.remember.sk_keys_are_second_factor
            && let Some(k) = keys.iter().find(|k| k.is_security_key())
        {
            return Ok(Verified::Yes(
                "sk-key",
                format!(
                    "FIDO-backed SSH key {} {} counts as the second factor \
                     (remember.sk_keys_are_second_factor)",
                    k.key_type, k.fingerprint
                ),
            ));
        }
        let key_seconds = config.ssh_key_memory_seconds();
        if key_seconds > 0 {
            for k in &keys {
                let until = self
                    .state
                    .store()
                    .remembered_until(user, KIND_SSH_KEY, &k.fingerprint, now)
                    .map_err(|e| self.state.internal("reading remembered keys", &e))?;
                if let Some(until) = until {
                    return Ok(Verified::Yes(
                        "ssh-key",
                        format!("remembered SSH key {} (until {until})", k.fingerprint),
                    ));
                }
            }
            if let Some(k) = keys.first() {
                remember.push(Remember {
                    kind: KIND_SSH_KEY,
                    value: k.fingerprint.clone(),
                    seconds: key_seconds,
                });
            }
        }
        // Only a remote login's address, as root's login program (sshd) reports it, and never a
        // loopback one: a non-root caller (a screen locker) could claim any rhost, and after one
        // code from 127.0.0.1 every login relayed through this host (port forwards, web
        // terminals, onion services) would come from a remembered address.
        let source = match scope {
            Scope::Remote(source) if caller.uid == 0 => crate::config::rhost_address(&ctx.rhost)
                .filter(|a| !a.is_loopback())
                .map(|_| source.clone()),
            _ => None,
        };
        if let (Some(source), Some(seconds)) = (source.as_ref(), config.address_memory_seconds()) {
            let (opted_in, until) = {
                let mut store = self.state.store();
                store.remembers_addresses(user).and_then(|on| {
                    Ok((
                        on,
                        if on {
                            store.remembered_until(user, KIND_ADDRESS, source, now)?
                        } else {
                            None
                        },
                    ))
                })
            }
            .map_err(|e| self.state.internal("reading remembered addresses", &e))?;
            if let Some(until) = until {
                return Ok(Verified::Yes(
                    "address",
                    format!("remembered address {source} (until {until})"),
                ));
            }
            if opted_in {
                remember.push(Remember {
                    kind: KIND_ADDRESS,
                    value: source.clone(),
                    seconds,
                });
            }
        }
        Ok(Verified::No(remember))
    }

    /// After a second factor passed: remember what the login asked to, and make the ticket
    /// that lets its session be trusted. Failing to remember costs the user a prompt next time,
    /// never the login: logged, not returned.
    /// Records a remote address a second factor passed from; the first time, the
    /// new-address alert.
    fn note_address(&self, ctx: &AuditCtx, address: &str, now: u64) {
        let seen = self.state.store().saw_address(&ctx.user, address, now);
        match seen {
            Ok(true) => self.state.alert(crate::alerts::Alert {
                kind: crate::alerts::AlertKind::NewAddress,
                user: ctx.user.clone(),
                when: now,
                rhost: ctx.rhost.clone(),
                service: ctx.service.clone(),
                what: format!(
                    "a successful sign-in from {address}, an address never seen for this account"
                ),
            }),
            Ok(false) => {}
            Err(e) => self.state.log.log(
                Severity::Error,
                &format!("cannot record a login address: {e}"),
            ),
        }
    }

    pub(super) fn after_success(&self, id: &str, ctx: &AuditCtx, step: Step, now: u64) -> Step {
        let (remember, scope) = self
            .table()
            .by_id
            .get_mut(id)
            .map(|t| (std::mem::take(&mut t.remember), Some(t.scope.clone())))
            .unwrap_or_default();
        if let Some(Scope::Remote(address)) = scope {
            self.note_address(ctx, &address, now);
        }
        for Remember {
            kind,
            value,
            seconds,
        } in remember
        {
            let written = self.state.store().remember(ctx, kind, &value, seconds, now);
            match written {
                Ok(entry) => self.state.log.audit(&entry),
                Err(e) => self
                    .state
                    .log
                    .log(Severity::Error, &format!("cannot remember a {kind}: {e}")),
            }
        }
        if !self.session_trust() {
            return step;
        }
        match random_hex(16) {
            Ok(ticket) => {
                if self.state.sessions.issue(&ticket, &ctx.user, now) {
                    step.with_ticket(ticket)
                } else {
                    self.state.log.log(
                        Severity::Warning,
                        "session trust: too many tickets waiting; this session is not trusted",
                    );
                    step
                }
            }
            Err(e) => {
                self.state.log.log(
                    Severity::Error,
                    &format!("cannot make a session ticket: {e}"),
                );
                step
            }
        }
    }

    /// From the module's session hook (root): trusts the caller's session for `user`.
    pub fn open_session(
        &self,
        caller: &Caller,
        caller_pid: u32,
        user: &str,
        ticket: &str,
        now: u64,
    ) -> Result<bool, HerarxError> {
        if caller.uid != 0 {
            return Err(HerarxError::PermissionDenied(
                "Only root (the login program's session hook) may open a trusted session.".into(),
            ));
        }
        let seconds = self.state.config().session_trust_seconds();
        let account = self.state.users.account(user);
        let user = match &account {
            Lookup::Known(a) => a.name.as_str(),
            _ => user,
        };
        // The session must be this user's own (its login uid, set by `pam_loginuid` in this
        // very login): a ticket cannot lend trust to a session begun by someone else.
        let own_session = matches!(&account, Lookup::Known(a) if caller.login_uid == Some(a.uid));
        let opened = own_session
            && self
                .state
                .sessions
                .open(ticket, user, caller.session, caller_pid, seconds, now);
        let ctx = AuditCtx {
            user: printable(user),
            caller_uid: caller.uid,
            ..AuditCtx::default()
        };
        let (result, reason) = if opened {
            (
                AuditResult::Success,
                format!("session {} trusted for {seconds}s", caller.session),
            )
        } else if caller.session == NO_SESSION {
            (
                AuditResult::Refused,
                "the session hook's process has no audit session: put pam_loginuid before \
                 pam_herarx in the session stack"
                    .to_owned(),
            )
        } else if !own_session {
            (
                AuditResult::Refused,
                "the session was not begun by this user (its login uid is not theirs): put \
                 pam_loginuid before pam_herarx in the session stack"
                    .to_owned(),
            )
        } else {
            (
                AuditResult::Refused,
                "no valid ticket (expired, used, another user's, or session trust off)".to_owned(),
            )
        };
        self.record(&ctx.entry(now, "session-open", result, reason));
        Ok(opened)
    }

    /// From the module's session hook at logout (root): ends the caller's session trust.
    pub fn close_session(
        &self,
        caller: &Caller,
        caller_pid: u32,
        user: &str,
    ) -> Result<bool, HerarxError> {
        if caller.uid != 0 {
            return Err(HerarxError::PermissionDenied(
                "Only root (the login program's session hook) may close a trusted session.".into(),
            ));
        }
        let user = match self.state.users.account(user) {
            Lookup::Known(a) => a.name,
            _ => user.to_owned(),
        };
        Ok(self.state.sessions.close(caller.session, &user, caller_pid))
    }
}
