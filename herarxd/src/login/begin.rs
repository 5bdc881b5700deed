//! `Begin`: the arguments checked, the account resolved, the plan made, a transaction
//! created.

use super::*;

use herarx_proto::{HerarxError, Step};

use crate::logger::Severity;
use crate::state::printable;
use crate::store::{AuditCtx, AuditResult, Scope, random_hex};
use crate::users::{Account, Lookup};

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
    /// Starts a login. Returns the transaction id (empty for a terminal first step: nothing to
    /// answer) and the first step.
    pub fn begin(
        &self,
        caller: &Caller,
        request: &Request<'_>,
        now: u64,
    ) -> Result<(String, Step), HerarxError> {
        let remote = request.remote(&self.state.config());
        let ctx = AuditCtx {
            user: printable(request.user),
            caller_uid: caller.uid,
            service: printable(request.service),
            rhost: printable(request.rhost),
            remote,
        };
        if let Some(problem) = request.problem() {
            self.refuse_begin(&ctx, &format!("invalid argument: {problem}"), now);
            return Err(HerarxError::InvalidArgument(format!(
                "Invalid login request: {problem}."
            )));
        }
        // Refusals before the account is known, and a full table, are recorded as typed (the
        // printable, bounded copy); everything else under the account's own name.
        let typed = ctx;
        let (ctx, account) = self.account(caller, request, &typed, now)?;
        let scope = scope_of(request.rhost, remote);
        let run = match self.decide(
            &ctx,
            &scope,
            caller,
            account.as_ref(),
            request.ssh_auth_info,
            now,
        )? {
            Start::Done(step) => return Ok((String::new(), step)),
            Start::Run(run) => *run,
        };
        self.create(caller, &typed, ctx, scope, run, now)
    }

    /// The account the login is for. Every spelling of one account is that account (see
    /// `users`): the login is keyed by the canonical name from here on. A name NSS does not
    /// know goes on as typed, exactly as a known user without a factor would (no enumeration).
    /// Root (sshd, login, sudo) may authenticate anyone; anyone else (a screen locker) only
    /// themselves, and unknown and other users get the same answer.
    fn account(
        &self,
        caller: &Caller,
        request: &Request<'_>,
        typed: &AuditCtx,
        now: u64,
    ) -> Result<(AuditCtx, Option<Account>), HerarxError> {
        let user = request.user;
        let account = self.state.users.account(user);
        let (key, uid) = match &account {
            Lookup::Known(a) => (a.name.clone(), Some(a.uid)),
            Lookup::Unknown => (user.to_owned(), None),
            Lookup::NoCanonicalName(uid) => (user.to_owned(), Some(*uid)),
        };
        let ctx = AuditCtx {
            user: key,
            service: request.service.to_owned(),
            rhost: request.rhost.to_owned(),
            ..typed.clone()
        };
        if caller.uid != 0 && uid != Some(caller.uid) {
            self.refuse_begin(
                &ctx,
                "permission denied: caller is neither root nor this user",
                now,
            );
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
                self.refuse_begin(
                    typed,
                    &format!("the account's uid {uid} has no name in NSS (getpwuid failed)"),
                    now,
                );
                return Err(HerarxError::Internal(
                    "herarxd could not resolve this account's canonical name (the directory \
                     answered the name but not its uid); check NSS (getent passwd), then try \
                     again."
                        .into(),
                ));
            }
        };
        Ok((ctx, account))
    }

    /// Puts the transaction `run` in the table, within the caller's quota; returns its id and
    /// first step.
    fn create(
        &self,
        caller: &Caller,
        typed: &AuditCtx,
        ctx: AuditCtx,
        scope: Scope,
        run: Run,
        now: u64,
    ) -> Result<(String, Step), HerarxError> {
        let id = random_hex(16).map_err(|e| self.state.internal("making a transaction id", &e))?;
        // A place held by a non-root caller (a screen locker) is given back sooner.
        let mut timeout = self.state.config().login.timeout_seconds;
        if caller.uid != 0 {
            timeout = timeout.min(NON_ROOT_TIMEOUT_SECONDS);
        }
        let deadline = now.saturating_add(timeout);
        let mut table = self.table();
        if now > table.last_prune {
            table.last_prune = now;
            table.prune(now);
        }
        if let Err(full) = table.admit(&caller.bus_name, caller.uid) {
            let message = full.message(table.limits());
            drop(table);
            self.refuse_begin(typed, full.reason(), now);
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
        Ok((id, run.step))
    }

    /// The audit row of a refused `Begin`.
    fn refuse_begin(&self, ctx: &AuditCtx, reason: &str, now: u64) {
        self.record(&ctx.entry(now, "begin", AuditResult::Refused, reason));
    }
}
