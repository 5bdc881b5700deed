//! `Begin`: the arguments checked, the account resolved, the plan made, a transaction
//! created.

use super::*;

use herarx_proto::{HerarxError, Step, limits};

use crate::logger::Severity;
use crate::state::{printable, valid_text};
use crate::store::{AuditCtx, AuditResult, Scope, random_hex};
use crate::users::Lookup;

/// What `begin` decided before a transaction exists.
pub(super) enum Start {
    /// A terminal first step.
    Done(Step),
    /// A transaction.
    Run(Box<Run>),
}

/// A transaction to create: its stage, first step, and what to remember if it passes.
pub(super) struct Run {
    pub(super) stage: Stage,
    pub(super) methods: Methods,
    pub(super) step: Step,
    pub(super) remember: Vec<Remember>,
    pub(super) contacts: Vec<ContactChoice>,
    pub(super) last_sent: Option<u64>,
}

impl Logins {
    /// Starts a login for `user`. Returns the transaction id (empty for a terminal first
    /// step: nothing to answer) and the first step.
    pub fn begin(
        &self,
        caller: &Caller,
        request: &Request<'_>,
        now: u64,
    ) -> Result<(String, Step), HerarxError> {
        let Request {
            user,
            service,
            rhost,
            tty,
            ssh_auth_info,
        } = *request;
        // Remote from PAM_RHOST, or from the service's policy; never from the caller.
        let remote = is_remote(rhost) || self.state.config().always_remote(service);
        let ctx = AuditCtx {
            user: printable(user),
            caller_uid: caller.uid,
            service: printable(service),
            rhost: printable(rhost),
            remote,
        };
        let refuse = |reason: &str| {
            let entry = ctx.entry(now, "begin", AuditResult::Refused, reason);
            self.record(&entry);
        };
        let problem = if user.is_empty() || !valid_text(user, limits::USER_MAX) {
            Some(format!(
                "the user name must be 1 to {} bytes without control characters",
                limits::USER_MAX
            ))
        } else if !valid_text(service, limits::SERVICE_MAX) {
            Some(format!(
                "the service must be at most {} bytes without control characters",
                limits::SERVICE_MAX
            ))
        } else if !valid_text(rhost, limits::RHOST_MAX) {
            Some(format!(
                "the remote host must be at most {} bytes without control characters",
                limits::RHOST_MAX
            ))
        } else if !valid_text(tty, limits::TTY_MAX) {
            Some(format!(
                "the tty must be at most {} bytes without control characters",
                limits::TTY_MAX
            ))
        } else if ssh_auth_info.len() > limits::SSH_AUTH_INFO_MAX {
            Some(format!(
                "the SSH authentication info must be at most {} bytes",
                limits::SSH_AUTH_INFO_MAX
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            refuse(&format!("invalid argument: {problem}"));
            return Err(HerarxError::InvalidArgument(format!(
                "Invalid login request: {problem}."
            )));
        }
        // Every spelling of one account is that account (see `users`): the login is keyed by
        // the canonical name from here on. A name NSS does not know goes on as typed, exactly
        // as a known user without a factor would (no enumeration).
        let account = self.state.users.account(user);
        let (key, uid) = match &account {
            Lookup::Known(a) => (a.name.clone(), Some(a.uid)),
            Lookup::Unknown => (user.to_owned(), None),
            Lookup::NoCanonicalName(uid) => (user.to_owned(), Some(*uid)),
        };
        let ctx = AuditCtx {
            user: key,
            service: service.to_owned(),
            rhost: rhost.to_owned(),
            ..ctx
        };
        // Root (sshd, login, sudo) may authenticate anyone; anyone else (a screen locker)
        // only themselves. Unknown and other users get the same answer.
        if caller.uid != 0 && uid != Some(caller.uid) {
            let entry = ctx.entry(
                now,
                "begin",
                AuditResult::Refused,
                "permission denied: caller is neither root nor this user",
            );
            self.record(&entry);
            return Err(HerarxError::PermissionDenied(
                "You may only verify your own account; logins of other users are run by root."
                    .into(),
            ));
        }
        let account = match account {
            Lookup::Known(a) => {
                if a.name != user {
                    self.state.log.log(
                        Severity::Info,
                        &format!(
                            "login name {:?} is account {} (uid {}): keyed by that name",
                            printable(user),
                            a.name,
                            a.uid
                        ),
                    );
                }
                Some(a)
            }
            Lookup::Unknown => None,
            Lookup::NoCanonicalName(uid) => {
                refuse(&format!(
                    "the account's uid {uid} has no name in NSS (getpwuid failed)"
                ));
                return Err(HerarxError::Internal(
                    "herarxd could not resolve this account's canonical name (the directory \
                     answered the name but not its uid); check NSS (getent passwd), then try \
                     again."
                        .into(),
                ));
            }
        };
        let scope = match scope_of(rhost) {
            Scope::Local if remote => Scope::Remote(match crate::config::rhost_address(rhost) {
                Some(a) => a.to_string(),
                None if rhost.trim().is_empty() => "unknown".to_owned(),
                None => rhost.trim().to_ascii_lowercase(),
            }),
            scope => scope,
        };
        let start = self.decide(&ctx, &scope, caller, account.as_ref(), ssh_auth_info, now)?;
        let run = match start {
            Start::Done(step) => return Ok((String::new(), step)),
            Start::Run(run) => *run,
        };
        let id = random_hex(16).map_err(|e| self.state.internal("making a transaction id", &e))?;
        // A place held by a non-root caller (a screen locker) is given back sooner.
        let mut timeout = self.state.config().login.timeout_seconds;
        if caller.uid != 0 {
            timeout = timeout.min(NON_ROOT_TIMEOUT_SECONDS);
        }
        let deadline = now.saturating_add(timeout);
        {
            let mut table = self.table();
            if now > table.last_prune {
                table.last_prune = now;
                table.prune(now);
            }
            if let Err(full) = table.admit(&caller.bus_name, caller.uid) {
                let message = full.message(table.limits());
                drop(table);
                refuse(full.reason());
                return Err(HerarxError::Busy(message));
            }
            table.insert(
                id.clone(),
                Txn {
                    owner: caller.bus_name.clone(),
                    ctx,
                    scope,
                    deadline,
                    steps: 1,
                    tries: 0,
                    checking: false,
                    stage: run.stage,
                    methods: run.methods,
                    remember: run.remember,
                    contacts: run.contacts,
                    last_sent: run.last_sent,
                },
            );
        }
        Ok((id, run.step))
    }
}
