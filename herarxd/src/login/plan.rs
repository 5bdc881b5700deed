//! What a login needs: the store's facts about the user and the policy, turned into a plan.

use super::*;

use herarx_proto::{Action, HerarxError, Step};

use crate::factors::requirement::{self, NoFactor, Origin};
use crate::store::{AuditCtx, AuditResult, FactorKind, Scope};
use crate::users::Account;

impl Logins {
    /// What this login needs, from policy and the store: the heart of `begin`.
    pub(super) fn decide(
        &self,
        ctx: &AuditCtx,
        scope: &Scope,
        caller: &Caller,
        account: Option<&Account>,
        ssh_auth_info: &str,
        now: u64,
    ) -> Result<Start, HerarxError> {
        let config = self.state.config();
        let user = ctx.user.as_str();
        let skip_as = |method: &str, reason: String| {
            self.record(&ctx.entry(now, method, AuditResult::Skip, reason));
            Ok(Start::Done(Step::terminal(Action::Skip, "")))
        };
        let skip = |reason: String| skip_as("none", reason);
        // Already verified in this very login session (sudo, a screen locker): nothing to ask.
        // Only for a local login, and only from a process whose session was begun by this very
        // user (its login uid): a daemon started by hand inside the session (an sshd on a
        // second port) inherits the session id, and so does `su` to another user.
        let session_user = account.is_some_and(|a| caller.login_uid == Some(a.uid));
        if config.session_trust_seconds() > 0
            && !ctx.remote
            && session_user
            && let Some(trust) = self.state.sessions.trusted(caller.session, user, now)
        {
            return skip_as(
                "session",
                format!(
                    "trusted session {} (second factor passed in it; trusted until {})",
                    caller.session, trust.expires
                ),
            );
        }
        // A login from a trusted network (PAM_RHOST an IP address inside one of the service's
        // trusted networks; host names never match) asks for nothing, before any lockout is
        // looked at; except that a user who must enrol is offered it there when policy allows.
        let trusted = config.trusted_network_of(&ctx.service, &ctx.rhost);
        let login = {
            let mut store = self.state.store();
            store.login_state(user, scope, now)
        }
        .map_err(|e| self.state.internal("reading the login state", &e))?;
        let enrolled = Methods {
            totp: login.totp_factors > 0,
            backup_codes: login.backup_codes_left,
            keys: login.fido2_keys,
            key_pin: config.fido2_uv_required(),
            keys_first: config.fido2.keys_first,
            key_then_code: false,
            contacts: login.contacts,
            contact_first: false,
            email: false,
            sms: false,
        };
        // What this service accepts of them (`services.NAME.methods`); keys only locally.
        let methods = Methods {
            totp: enrolled.totp && config.service_accepts(&ctx.service, FactorKind::Totp.as_str()),
            backup_codes: if config.service_accepts(&ctx.service, "backup-code") {
                enrolled.backup_codes
            } else {
                0
            },
            keys: if scope == &Scope::Local
                && caller.keys_allowed
                && config.service_accepts(&ctx.service, FactorKind::Fido2.as_str())
            {
                enrolled.keys
            } else {
                0
            },
            ..enrolled
        };
        // Email and SMS factors this service accepts and this host can send to.
        let (contacts, contact_first) = if enrolled.contacts > 0 {
            self.contact_choices(&config, ctx)?
        } else {
            (Vec::new(), false)
        };
        let methods = Methods {
            contacts: contacts.len(),
            contact_first,
            email: contacts.iter().any(|c| c.kind == FactorKind::Email),
            sms: contacts.iter().any(|c| c.kind == FactorKind::Sms),
            ..methods
        };
        let methods = Methods {
            key_then_code: !config.fido2.key_alone
                && methods.keys > 0
                && (methods.totp || methods.backup_codes > 0),
            ..methods
        };
        let trusted_skip =
            |net: ipnet::IpNet| skip(format!("trusted network {net} (service {})", ctx.service));
        if methods.any()
            && let Some(net) = trusted
        {
            return trusted_skip(net);
        }
        if let Some(until) = login.locked_until.filter(|_| trusted.is_none()) {
            self.record(&ctx.entry(
                now,
                "begin",
                AuditResult::Locked,
                format!("{} logins locked until {until}", scope.as_str()),
            ));
            return Ok(Start::Done(Step::terminal(
                Action::Locked,
                locked_message(until, now),
            )));
        }
        if enrolled.any() && !methods.any() && scope != &Scope::Local && !enrolled.codes() {
            self.record(&ctx.entry(
                now,
                "none",
                AuditResult::Denied,
                "only security keys enrolled; keys are not offered to remote logins",
            ));
            return Ok(Start::Done(Step::terminal(Action::Denied, KEYS_NOT_REMOTE)));
        }
        if enrolled.any() && !methods.any() {
            self.record(&ctx.entry(
                now,
                "none",
                AuditResult::Denied,
                format!(
                    "none of the user's methods is accepted by service {} (services.{}.methods)",
                    ctx.service, ctx.service
                ),
            ));
            return Ok(Start::Done(Step::terminal(
                Action::Denied,
                NO_ACCEPTED_METHOD,
            )));
        }
        if methods.any() {
            let remember = match self.already_verified(ctx, scope, caller, ssh_auth_info, now)? {
                Verified::Yes(method, reason) => return skip_as(method, reason),
                Verified::No(remember) => remember,
            };
            return self.first_run(methods, contacts, remember);
        }
        // No factor: what policy says for this user, here, now.
        let requirement = requirement::requirement(&config, self.state.users.as_ref(), user);
        // Only enrolment needs to know whether the account exists.
        let enrolling = config.no_factor_policy() == Some(crate::config::NoFactorPolicy::Enroll);
        let known = enrolling && account.is_some();
        let window_start = if known && requirement.required {
            self.state
                .store()
                .touch_account(user, now)
                .map_err(|e| self.state.internal("recording an account", &e))?
                .window_start()
        } else {
            now
        };
        let origin = match (trusted.is_some(), scope != &Scope::Local) {
            (true, _) => Origin::Trusted,
            (false, true) => Origin::Remote,
            (false, false) => Origin::Local,
        };
        match (
            requirement::no_factor(&config, &requirement, known, window_start, origin, now),
            trusted,
        ) {
            (NoFactor::Enroll, _) => self.start_enrolment(ctx, now),
            (_, Some(net)) => trusted_skip(net),
            (NoFactor::Allow(reason), None) => skip(reason),
            (NoFactor::Deny(reason), None) => {
                self.record(&ctx.entry(now, "none", AuditResult::Denied, reason));
                Ok(Start::Done(Step::terminal(
                    Action::Denied,
                    NO_FACTOR_DENIED,
                )))
            }
        }
    }
}
