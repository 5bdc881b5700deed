//! What a login needs: the store's facts about the user and the policy, turned into a plan.

use super::*;

use herarx_proto::{Action, HerarxError, Step};

use crate::config::Config;
use crate::factors::requirement::{self, NoFactor, Origin};
use crate::store::verify::LoginState;
use crate::store::{AuditCtx, AuditResult, BACKUP_CODE, FactorKind, Scope};
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
        if let Some(reason) = self.trusted_session(&config, ctx, caller, account, now) {
            return Ok(self.skip(ctx, "session", reason, now));
        }
        // A login from a trusted network (PAM_RHOST an IP address inside one of the service's
        // trusted networks; host names never match) asks for nothing, before any lockout is
        // looked at; except that a user who must enrol is offered it there when policy allows.
        let trusted = config.trusted_network_of(&ctx.service, &ctx.rhost);
        let login = {
            let mut store = self.state.store();
            store.login_state(&ctx.user, scope, now)
        }
        .map_err(|e| self.state.internal("reading the login state", &e))?;
        // Email and SMS factors this service accepts and this host can send to.
        let (contacts, contact_first) = if login.contacts > 0 {
            self.contact_choices(&config, ctx)?
        } else {
            (Vec::new(), false)
        };
        let local = scope == &Scope::Local;
        let keys_here = local && caller.keys_allowed;
        let offer = offer(
            &config,
            &ctx.service,
            keys_here,
            &login,
            &contacts,
            contact_first,
        );
        match gate(&offer, trusted, login.locked_until, local) {
            Gate::Trusted(net) => Ok(self.skip(ctx, "none", trusted_reason(net, ctx), now)),
            Gate::Ask => match self.already_verified(ctx, scope, caller, ssh_auth_info, now)? {
                Verified::Yes(method, reason) => Ok(self.skip(ctx, method, reason, now)),
                Verified::No(remember) => self.first_run(offer.methods, contacts, remember),
            },
            Gate::NoFactor => self.without_factor(ctx, scope, account, trusted, now),
            Gate::Refused(refusal) => Ok(self.refuse_at(ctx, scope, refusal, now)),
        }
    }

    /// Why the login may skip the second factor: it was passed in this very login session
    /// (sudo, a screen locker), when session trust is on. Only for a local login, and only from
    /// a process whose session was begun by this very user (its login uid): a daemon started by
    /// hand inside the session (an sshd on a second port) inherits the session id, and so does
    /// `su` to another user.
    fn trusted_session(
        &self,
        config: &Config,
        ctx: &AuditCtx,
        caller: &Caller,
        account: Option<&Account>,
        now: u64,
    ) -> Option<String> {
        let session_user = account.is_some_and(|a| caller.login_uid == Some(a.uid));
        if config.session_trust_seconds() == 0 || ctx.remote || !session_user {
            return None;
        }
        let trust = self
            .state
            .sessions
            .trusted(caller.session, &ctx.user, now)?;
        Some(format!(
            "trusted session {} (second factor passed in it; trusted until {})",
            caller.session, trust.expires
        ))
    }

    /// A login that asks for nothing: recorded as skipped, by `method`.
    fn skip(&self, ctx: &AuditCtx, method: &str, reason: String, now: u64) -> Start {
        self.record(&ctx.entry(now, method, AuditResult::Skip, reason));
        Start::Done(Step::terminal(Action::Skip, ""))
    }

    /// The end of a login its gate refused: locked, only keys remotely, or nothing of the
    /// user's accepted here.
    fn refuse_at(&self, ctx: &AuditCtx, scope: &Scope, refusal: Refusal, now: u64) -> Start {
        let (method, result, reason, step) = match refusal {
            Refusal::Locked(until) => (
                "begin",
                AuditResult::Locked,
                format!("{} logins locked until {until}", scope.as_str()),
                Step::terminal(Action::Locked, locked_message(until, now)),
            ),
            Refusal::KeysNotRemote => (
                "none",
                AuditResult::Denied,
                "only security keys enrolled; keys are not offered to remote logins".to_owned(),
                Step::terminal(Action::Denied, KEYS_NOT_REMOTE),
            ),
            Refusal::NotAccepted => (
                "none",
                AuditResult::Denied,
                format!(
                    "none of the user's methods is accepted by service {} (services.{}.methods)",
                    ctx.service, ctx.service
                ),
                Step::terminal(Action::Denied, NO_ACCEPTED_METHOD),
            ),
        };
        self.record(&ctx.entry(now, method, result, reason));
        Start::Done(step)
    }

    /// The transaction to create once a login knows its methods. When it starts with the
    /// primary contact, the first step is a `Wait` ("Sending a code to …"): the send happens
    /// in the `Answer` that follows, which the module allows to take long, not in `Begin`.
    pub(super) fn first_run(
        &self,
        methods: Methods,
        contacts: Vec<ContactChoice>,
        remember: Vec<Remember>,
    ) -> Result<Start, HerarxError> {
        let (stage, step) = match (methods.first(), contacts.first()) {
            (First::Ask(stage, step), _) => (stage, step),
            (First::SendToPrimaryContact, Some(contact)) => sending(contact),
            (First::SendToPrimaryContact, None) => {
                return Ok(Start::Done(Step::terminal(
                    Action::Denied,
                    NO_ACCEPTED_METHOD,
                )));
            }
        };
        Ok(Start::Run(Box::new(Run {
            stage,
            methods,
            step,
            remember,
            contacts,
            last_sent: None,
        })))
    }

    /// A user with no factor at all: what policy says for this user, here, now (enrol, allow
    /// or deny).
    fn without_factor(
        &self,
        ctx: &AuditCtx,
        scope: &Scope,
        account: Option<&Account>,
        trusted: Option<ipnet::IpNet>,
        now: u64,
    ) -> Result<Start, HerarxError> {
        let config = self.state.config();
        let user = ctx.user.as_str();
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
            (_, Some(net)) => Ok(self.skip(ctx, "none", trusted_reason(net, ctx), now)),
            (NoFactor::Allow(reason), None) => Ok(self.skip(ctx, "none", reason, now)),
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

/// The audit reason of a login passed for its trusted network.
fn trusted_reason(net: ipnet::IpNet, ctx: &AuditCtx) -> String {
    format!("trusted network {net} (service {})", ctx.service)
}

/// What a user has enrolled, and what of it this login offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Offer {
    pub(super) enrolled: Methods,
    pub(super) methods: Methods,
}

/// What this login offers of what the user has (`login`), under the service's `methods`:
/// security keys only where `keys_here` (a local login by a caller that may drive them), email
/// and SMS factors as `contacts` (already filtered to what the service accepts and this host
/// sends). Pure: the same inputs give the same offer.
pub(super) fn offer(
    config: &Config,
    service: &str,
    keys_here: bool,
    login: &LoginState,
    contacts: &[ContactChoice],
    contact_first: bool,
) -> Offer {
    let accepts = |method: &str| config.service_accepts(service, method);
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
    let totp = enrolled.totp && accepts(FactorKind::Totp.as_str());
    let backup_codes = if accepts(BACKUP_CODE) {
        enrolled.backup_codes
    } else {
        0
    };
    let keys = if keys_here && accepts(FactorKind::Fido2.as_str()) {
        enrolled.keys
    } else {
        0
    };
    let methods = Methods {
        totp,
        backup_codes,
        keys,
        contacts: contacts.len(),
        contact_first,
        email: contacts.iter().any(|c| c.kind == FactorKind::Email),
        sms: contacts.iter().any(|c| c.kind == FactorKind::Sms),
        // With `fido2.key_alone = false`, a key is followed by a code when there is one.
        key_then_code: !config.fido2.key_alone && keys > 0 && (totp || backup_codes > 0),
        ..enrolled
    };
    Offer { enrolled, methods }
}

/// Where a login goes before any prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Gate {
    /// From a trusted network: nothing is asked.
    Trusted(ipnet::IpNet),
    /// The login ends here.
    Refused(Refusal),
    /// Ask for what is offered.
    Ask,
    /// The user has no factor: policy decides.
    NoFactor,
}

/// Why a gate ends a login before any prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// The scope is locked until then.
    Locked(u64),
    /// A remote login of a user who has only security keys.
    KeysNotRemote,
    /// The user has methods, none of which this service accepts.
    NotAccepted,
}

/// The gate for `offer`. A trusted network passes a user who has something to offer before
/// the lockout is looked at; a lock is not enforced from a trusted network.
pub(super) fn gate(
    offer: &Offer,
    trusted: Option<ipnet::IpNet>,
    locked_until: Option<u64>,
    local: bool,
) -> Gate {
    let Offer { enrolled, methods } = *offer;
    if methods.any()
        && let Some(net) = trusted
    {
        return Gate::Trusted(net);
    }
    if let Some(until) = locked_until.filter(|_| trusted.is_none()) {
        return Gate::Refused(Refusal::Locked(until));
    }
    if enrolled.any() && !methods.any() {
        return if !local && !enrolled.codes() {
            Gate::Refused(Refusal::KeysNotRemote)
        } else {
            Gate::Refused(Refusal::NotAccepted)
        };
    }
    if methods.any() {
        Gate::Ask
    } else {
        Gate::NoFactor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: LoginState = LoginState {
        locked_until: None,
        totp_factors: 0,
        backup_codes_left: 0,
        fido2_keys: 0,
        contacts: 0,
    };

    fn config(toml: &str) -> Config {
        Config::parse(toml).unwrap()
    }

    #[test]
    fn keys_are_offered_only_where_they_may_be_driven() {
        let login = LoginState {
            fido2_keys: 1,
            totp_factors: 1,
            ..NONE
        };
        let c = Config::default();
        assert_eq!(offer(&c, "login", true, &login, &[], false).methods.keys, 1);
        assert_eq!(
            offer(&c, "login", false, &login, &[], false).methods.keys,
            0
        );
    }

    #[test]
    fn a_service_offers_only_the_methods_it_accepts() {
        let c = config("[services.vpn]\nmethods = [\"backup-code\"]\n");
        let login = LoginState {
            totp_factors: 1,
            backup_codes_left: 3,
            ..NONE
        };
        let o = offer(&c, "vpn", true, &login, &[], false);
        assert!(!o.methods.totp && o.enrolled.totp);
        assert_eq!(o.methods.backup_codes, 3);
        let other = offer(&c, "sshd", true, &login, &[], false);
        assert!(other.methods.totp);
    }

    #[test]
    fn with_key_alone_off_a_key_is_followed_by_a_code_only_when_there_is_one() {
        let c = config("[fido2]\nkey_alone = false\n");
        let keys_only = LoginState {
            fido2_keys: 1,
            ..NONE
        };
        let both = LoginState {
            totp_factors: 1,
            ..keys_only
        };
        assert!(
            !offer(&c, "login", true, &keys_only, &[], false)
                .methods
                .key_then_code
        );
        assert!(
            offer(&c, "login", true, &both, &[], false)
                .methods
                .key_then_code
        );
        assert!(
            !offer(&Config::default(), "login", true, &both, &[], false)
                .methods
                .key_then_code
        );
    }

    #[test]
    fn the_gate_in_order() {
        let c = Config::default();
        let net: ipnet::IpNet = "10.0.0.0/8".parse().unwrap();
        let totp = LoginState {
            totp_factors: 1,
            ..NONE
        };
        let o = offer(&c, "sshd", false, &totp, &[], false);
        assert_eq!(gate(&o, Some(net), Some(9), false), Gate::Trusted(net));
        assert_eq!(
            gate(&o, None, Some(9), false),
            Gate::Refused(Refusal::Locked(9))
        );
        assert_eq!(gate(&o, None, None, false), Gate::Ask);
        // A trusted network does not lift a lock for a user with nothing to offer, nor does it
        // enforce one.
        let none = offer(&c, "sshd", false, &NONE, &[], false);
        assert_eq!(gate(&none, Some(net), Some(9), false), Gate::NoFactor);
        assert_eq!(
            gate(&none, None, Some(9), false),
            Gate::Refused(Refusal::Locked(9))
        );
        assert_eq!(gate(&none, None, None, true), Gate::NoFactor);
    }

    #[test]
    fn only_keys_remotely_is_told_apart_from_a_service_that_accepts_nothing_of_theirs() {
        let c = Config::default();
        let keys = LoginState {
            fido2_keys: 1,
            ..NONE
        };
        let remote = offer(&c, "sshd", false, &keys, &[], false);
        assert_eq!(
            gate(&remote, None, None, false),
            Gate::Refused(Refusal::KeysNotRemote)
        );
        let local_no_keys = offer(&c, "login", false, &keys, &[], false);
        assert_eq!(
            gate(&local_no_keys, None, None, true),
            Gate::Refused(Refusal::NotAccepted)
        );
        let c = config("[services.vpn]\nmethods = [\"fido2\"]\n");
        let totp = LoginState {
            totp_factors: 1,
            ..NONE
        };
        let o = offer(&c, "vpn", false, &totp, &[], false);
        assert_eq!(
            gate(&o, None, None, false),
            Gate::Refused(Refusal::NotAccepted)
        );
    }
}
