//! The login transaction, as the PAM module runs it: `Begin` → prompts → a terminal step.
//!
//! Plain Rust with time passed in; the D-Bus layer only supplies the caller (its unique bus
//! name and, for `Begin`, its uid as the bus reports it). The module's own claims (user,
//! service, rhost, tty) are used for nothing but choosing the account, the audit record, and
//! the local/remote scope, which the daemon derives itself from rhost.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use herarx_proto::{Action, HerarxError, Step, limits};

use crate::config::NoFactorPolicy;
use crate::logger::Severity;
use crate::state::{State, printable, valid_text};
use crate::store::factors::VerifyOutcome;
use crate::store::{AuditCtx, AuditResult, Scope, random_hex};
use crate::totp::Rejection;

pub const PROMPT: &str = "Verification code: ";
pub const PROMPT_AFTER_WRONG: &str = "Wrong code. Verification code: ";
pub const PROMPT_AFTER_REPLAY: &str =
    "That code was already used; wait for the next one. Verification code: ";
pub const WRONG_CODE: &str = "Wrong code.";
pub const REPLAYED_CODE: &str = "That code was already used.";
pub const TIMED_OUT: &str = "The login timed out.";
pub const TOO_MANY_STEPS: &str = "Too many steps in this login.";

/// Live transactions one bus connection may hold.
pub const TXNS_PER_CONNECTION_MAX: usize = 16;
/// Live transactions in all.
pub const TXNS_MAX: usize = 4096;

/// Who calls, as the bus says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The sender's unique bus name (`:1.42`).
    pub bus_name: String,
    pub uid: u32,
}

struct Txn {
    owner: String,
    ctx: AuditCtx,
    scope: Scope,
    deadline: u64,
    /// Steps sent so far (the first prompt included).
    steps: u32,
    /// Wrong answers so far.
    tries: u32,
    /// An answer is being checked; a second one waits its turn (refused as Busy).
    checking: bool,
}

#[derive(Default)]
struct Table {
    by_id: HashMap<String, Txn>,
    by_owner: HashMap<String, Vec<String>>,
    last_prune: u64,
}

impl Table {
    fn remove(&mut self, id: &str) -> Option<Txn> {
        let txn = self.by_id.remove(id)?;
        if let Some(ids) = self.by_owner.get_mut(&txn.owner) {
            ids.retain(|i| i != id);
            if ids.is_empty() {
                self.by_owner.remove(&txn.owner);
            }
        }
        Some(txn)
    }

    fn prune(&mut self, now: u64) -> usize {
        let expired: Vec<String> = self
            .by_id
            .iter()
            .filter(|(_, t)| now >= t.deadline && !t.checking)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            self.remove(id);
        }
        expired.len()
    }
}

/// Whether a login from `rhost` is remote: non-empty and not a loopback address or localhost.
pub fn is_remote(rhost: &str) -> bool {
    let h = rhost.trim();
    if h.is_empty() || h.eq_ignore_ascii_case("localhost") || h.eq_ignore_ascii_case("localhost.") {
        return false;
    }
    let h = h
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(h);
    match h.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => !v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => {
            !(v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()))
        }
        Err(_) => true,
    }
}

/// "Too many failed attempts: logins for this account are locked for 14 more minutes."
pub fn locked_message(until: u64, now: u64) -> String {
    let minutes = until.saturating_sub(now).div_ceil(60).max(1);
    let unit = if minutes == 1 { "minute" } else { "minutes" };
    format!(
        "Too many failed attempts: logins for this account are locked for {minutes} more {unit}."
    )
}

pub struct Logins {
    state: Arc<State>,
    table: Mutex<Table>,
}

fn no_such_transaction() -> HerarxError {
    HerarxError::NoSuchTransaction(
        "No such login transaction on this connection (finished, timed out or never begun): \
         start the login again."
            .into(),
    )
}

impl Logins {
    pub fn new(state: Arc<State>) -> Self {
        Logins {
            state,
            table: Mutex::new(Table::default()),
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        match self.table.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Live transactions (for tests and status).
    pub fn live(&self) -> usize {
        self.table().by_id.len()
    }

    /// Starts a login for `user`. Returns the transaction id (empty for a terminal first
    /// step: nothing to answer) and the first step.
    pub fn begin(
        &self,
        caller: &Caller,
        user: &str,
        service: &str,
        rhost: &str,
        tty: &str,
        now: u64,
    ) -> Result<(String, Step), HerarxError> {
        let remote = is_remote(rhost);
        let scope = if remote {
            Scope::Remote(rhost.trim().to_owned())
        } else {
            Scope::Local
        };
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
        } else {
            None
        };
        if let Some(problem) = problem {
            refuse(&format!("invalid argument: {problem}"));
            return Err(HerarxError::InvalidArgument(format!(
                "Invalid login request: {problem}."
            )));
        }
        let ctx = AuditCtx {
            user: user.to_owned(),
            service: service.to_owned(),
            rhost: rhost.to_owned(),
            ..ctx
        };
        // Root (sshd, login, sudo) may authenticate anyone; anyone else (a screen locker)
        // only themselves. Unknown and other users get the same answer.
        if caller.uid != 0 && self.state.users.uid_of(user) != Some(caller.uid) {
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
        // A login from a trusted network (PAM_RHOST an IP address inside one of the service's
        // trusted networks; host names never match) asks for nothing, before any lockout or
        // factor is looked at.
        if let Some(net) = self.state.config().trusted_network_of(service, rhost) {
            let entry = ctx.entry(
                now,
                "none",
                AuditResult::Skip,
                format!("trusted network {net} (service {service})"),
            );
            self.record(&entry);
            return Ok((String::new(), Step::terminal(Action::Skip, "")));
        }
        let login = {
            let mut store = self.state.store();
            store.login_state(user, &scope, now)
        }
        .map_err(|e| self.state.internal("reading the login state", &e))?;

        if let Some(until) = login.locked_until {
            let entry = ctx.entry(
                now,
                "begin",
                AuditResult::Locked,
                format!("{} logins locked until {until}", scope.as_str()),
            );
            self.record(&entry);
            return Ok((
                String::new(),
                Step::terminal(Action::Locked, locked_message(until, now)),
            ));
        }
        let policy = self
            .state
            .config()
            .no_factor_policy()
            .unwrap_or(NoFactorPolicy::Allow);
        if login.totp_factors == 0 && policy == NoFactorPolicy::Allow {
            let entry = ctx.entry(
                now,
                "none",
                AuditResult::Skip,
                "no factor enrolled; login.no_factor = ignore",
            );
            self.record(&entry);
            return Ok((String::new(), Step::terminal(Action::Skip, "")));
        }
        // With no factor and policy "deny", the transaction runs like any other: every answer
        // is checked against no factor, counted and refused like a wrong code.
        let id = random_hex(16).map_err(|e| self.state.internal("making a transaction id", &e))?;
        let deadline = now.saturating_add(self.state.config().login.timeout_seconds);
        {
            let mut table = self.table();
            if now > table.last_prune {
                table.last_prune = now;
                table.prune(now);
            }
            let mine = table.by_owner.get(&caller.bus_name).map_or(0, Vec::len);
            if mine >= TXNS_PER_CONNECTION_MAX || table.by_id.len() >= TXNS_MAX {
                drop(table);
                refuse("too many logins under way");
                return Err(HerarxError::Busy(
                    "Too many logins are under way; try again in a moment.".into(),
                ));
            }
            table
                .by_owner
                .entry(caller.bus_name.clone())
                .or_default()
                .push(id.clone());
            table.by_id.insert(
                id.clone(),
                Txn {
                    owner: caller.bus_name.clone(),
                    ctx,
                    scope,
                    deadline,
                    steps: 1,
                    tries: 0,
                    checking: false,
                },
            );
        }
        Ok((id, Step::prompt(PROMPT)))
    }

    /// Answers the current prompt of transaction `id`, begun by `bus_name`.
    pub fn answer(
        &self,
        bus_name: &str,
        id: &str,
        response: &str,
        now: u64,
    ) -> Result<Step, HerarxError> {
        let max_tries = self.state.config().login.max_tries;
        let (ctx, scope) = {
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
                    self.record(
                        &t.ctx
                            .entry(now, "totp", AuditResult::Denied, "login timed out"),
                    );
                }
                return Ok(Step::terminal(Action::Denied, TIMED_OUT));
            }
            if txn.steps >= limits::STEPS_MAX {
                let txn = table.remove(id);
                drop(table);
                if let Some(t) = txn {
                    self.record(
                        &t.ctx
                            .entry(now, "totp", AuditResult::Denied, "step cap reached"),
                    );
                }
                return Ok(Step::terminal(Action::Denied, TOO_MANY_STEPS));
            }
            txn.checking = true;
            txn.steps += 1;
            (txn.ctx.clone(), txn.scope.clone())
        };
        // An overlong answer is no code: checked (and counted) as a malformed one.
        let response = if response.len() <= limits::ANSWER_MAX {
            response
        } else {
            "-"
        };
        let verified = {
            let mut store = self.state.store();
            store.verify_and_consume(&ctx, response, now, &scope, "totp")
        };
        let (outcome, entry) = match verified {
            Ok(x) => x,
            Err(e) => {
                self.table().remove(id);
                return Err(self.state.internal("checking a code", &e));
            }
        };
        self.state.log.audit(&entry);

        let mut table = self.table();
        let step = match outcome {
            VerifyOutcome::Accepted { .. } => Step::terminal(Action::Success, ""),
            VerifyOutcome::Locked { until }
            | VerifyOutcome::Rejected {
                locked_until: Some(until),
                ..
            } => Step::terminal(Action::Locked, locked_message(until, now)),
            VerifyOutcome::Rejected { reason, .. } => {
                let tries = match table.by_id.get_mut(id) {
                    Some(txn) => {
                        txn.tries += 1;
                        txn.checking = false;
                        txn.tries
                    }
                    // Cancelled or its connection left meanwhile: nothing to continue.
                    None => max_tries,
                };
                let replayed = reason == Rejection::Replayed;
                if tries < max_tries {
                    return Ok(Step::prompt(if replayed {
                        PROMPT_AFTER_REPLAY
                    } else {
                        PROMPT_AFTER_WRONG
                    }));
                }
                Step::terminal(
                    Action::Denied,
                    if replayed { REPLAYED_CODE } else { WRONG_CODE },
                )
            }
        };
        table.remove(id);
        Ok(step)
    }

    /// Abandons transaction `id` of `bus_name`.
    pub fn cancel(&self, bus_name: &str, id: &str) -> Result<(), HerarxError> {
        let mut table = self.table();
        if table.by_id.get(id).is_some_and(|t| t.owner == bus_name) {
            table.remove(id);
            Ok(())
        } else {
            Err(no_such_transaction())
        }
    }

    /// Drops every transaction of a connection that left the bus. Returns how many.
    pub fn drop_owner(&self, bus_name: &str) -> usize {
        let mut table = self.table();
        let Some(ids) = table.by_owner.remove(bus_name) else {
            return 0;
        };
        for id in &ids {
            table.by_id.remove(id);
        }
        ids.len()
    }

    /// Drops transactions past their deadline. Returns how many.
    pub fn prune(&self, now: u64) -> usize {
        self.table().prune(now)
    }

    fn record(&self, entry: &crate::store::AuditEntry) {
        let written = self.state.store().record(entry);
        if let Err(e) = written {
            self.state
                .log
                .log(Severity::Error, &format!("cannot write an audit row: {e}"));
        }
        self.state.log.audit(entry);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::Config;
    use crate::logger::MemoryLog;
    use crate::store::StorePolicy;
    use crate::store::audit;
    use crate::store::testing::open_store_with;
    use crate::totp::{Params, code_at};
    use crate::users::FixedUsers;

    pub(crate) const NOW: u64 = 1_700_000_000;
    pub(crate) const SEED: &[u8] = b"12345678901234567890";

    pub(crate) struct Harness {
        pub state: Arc<State>,
        pub logins: Logins,
        pub log: Arc<MemoryLog>,
        _dir: tempfile::TempDir,
    }

    pub(crate) fn harness_with(config: Config) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store_with(dir.path(), StorePolicy::from_config(&config));
        let log = Arc::new(MemoryLog::default());
        let state = Arc::new(State::new(
            Arc::new(Mutex::new(store)),
            Arc::new(config),
            Arc::new(FixedUsers::new(&[
                ("root", 0),
                ("alice", 1000),
                ("bob", 1001),
            ])),
            log.clone(),
            "host.example".into(),
        ));
        Harness {
            logins: Logins::new(state.clone()),
            state,
            log,
            _dir: dir,
        }
    }

    pub(crate) fn harness() -> Harness {
        harness_with(Config::default())
    }

    impl Harness {
        pub(crate) fn enrol(&self, user: &str) {
            let mut store = self.state.store();
            crate::store::factors::tests::enrol(&mut store, user, SEED);
        }

        pub(crate) fn audit(&self) -> Vec<audit::AuditEntry> {
            audit::recent(self.state.store().conn(), 100).unwrap()
        }
    }

    pub(crate) fn code(t: u64) -> String {
        code_at(SEED, &Params::default(), t).unwrap().to_string()
    }

    pub(crate) fn wrong(t: u64) -> String {
        let c: u32 = code(t).parse().unwrap();
        format!("{:06}", (c + 1) % 1_000_000)
    }

    fn root() -> Caller {
        Caller {
            bus_name: ":1.7".into(),
            uid: 0,
        }
    }

    fn begin(h: &Harness, user: &str, rhost: &str) -> (String, Step) {
        h.logins
            .begin(&root(), user, "sshd", rhost, "", NOW)
            .unwrap()
    }

    #[test]
    fn a_right_code_succeeds() {
        let h = harness();
        h.enrol("alice");
        let (id, step) = begin(&h, "alice", "192.0.2.1");
        assert_eq!(step, Step::prompt("Verification code: "));
        assert_eq!(id.len(), 32);
        let step = h.logins.answer(":1.7", &id, &code(NOW), NOW + 1).unwrap();
        assert_eq!(step.action, Action::Success);
        assert_eq!(h.logins.live(), 0);
        let a = &h.audit()[0];
        assert_eq!(
            (a.result, a.remote, a.method.as_str()),
            (AuditResult::Success, true, "totp")
        );
    }

    #[test]
    fn wrong_codes_reprompt_then_deny_at_max_tries() {
        let h = harness();
        h.enrol("alice");
        let (id, _) = begin(&h, "alice", "");
        for _ in 0..2 {
            let step = h.logins.answer(":1.7", &id, &wrong(NOW), NOW).unwrap();
            assert_eq!(step, Step::prompt("Wrong code. Verification code: "));
        }
        let step = h.logins.answer(":1.7", &id, &wrong(NOW), NOW).unwrap();
        assert_eq!(step, Step::terminal(Action::Denied, "Wrong code."));
        assert_eq!(h.logins.live(), 0);
        assert!(h.logins.answer(":1.7", &id, &code(NOW), NOW).is_err());
    }

    #[test]
    fn a_wrong_then_right_code_succeeds() {
        let h = harness();
        h.enrol("alice");
        let (id, _) = begin(&h, "alice", "");
        h.logins.answer(":1.7", &id, "12 34", NOW).unwrap();
        let step = h.logins.answer(":1.7", &id, &code(NOW), NOW).unwrap();
        assert_eq!(step.action, Action::Success);
    }

    #[test]
    fn a_used_code_is_refused_with_its_own_prompt() {
        let h = harness();
        h.enrol("alice");
        let (id, _) = begin(&h, "alice", "");
        h.logins.answer(":1.7", &id, &code(NOW), NOW).unwrap();
        let (id, _) = begin(&h, "alice", "");
        let step = h.logins.answer(":1.7", &id, &code(NOW), NOW + 2).unwrap();
        assert_eq!(
            step,
            Step::prompt("That code was already used; wait for the next one. Verification code: ")
        );
        let step = h
            .logins
            .answer(":1.7", &id, &code(NOW + 30), NOW + 30)
            .unwrap();
        assert_eq!(step.action, Action::Success);
    }

    #[test]
    fn two_concurrent_logins_with_one_code_cannot_both_pass() {
        let h = Arc::new(harness());
        h.enrol("alice");
        let ids: Vec<String> = (0..8).map(|_| begin(&h, "alice", "").0).collect();
        let c = code(NOW);
        let threads: Vec<_> = ids
            .into_iter()
            .map(|id| {
                let h = h.clone();
                let c = c.clone();
                std::thread::spawn(move || h.logins.answer(":1.7", &id, &c, NOW).unwrap())
            })
            .collect();
        let successes = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|s| s.action == Action::Success)
            .count();
        assert_eq!(successes, 1);
    }

    #[test]
    fn locking_ends_the_login_and_later_begins_say_so() {
        let h = harness();
        h.enrol("alice");
        let mut last = None;
        for _ in 0..2 {
            let (id, _) = begin(&h, "alice", "192.0.2.1");
            for _ in 0..3 {
                last = Some(h.logins.answer(":1.7", &id, &wrong(NOW), NOW));
                if last
                    .as_ref()
                    .is_some_and(|s| s.as_ref().is_ok_and(|s| s.action.is_terminal()))
                {
                    break;
                }
            }
        }
        let last = last.unwrap().unwrap();
        assert_eq!(last.action, Action::Locked);
        assert_eq!(
            last.message,
            "Too many failed attempts: logins for this account are locked for 15 more minutes."
        );
        let (id, step) = h
            .logins
            .begin(&root(), "alice", "sshd", "192.0.2.1", "", NOW + 60)
            .unwrap();
        assert_eq!(id, "");
        assert_eq!(step.action, Action::Locked);
        assert!(step.message.contains("14 more minutes"), "{}", step.message);
        // The console is another scope.
        let (_, step) = h
            .logins
            .begin(&root(), "alice", "login", "", "tty1", NOW + 60)
            .unwrap();
        assert_eq!(step.action, Action::Prompt);
        assert_eq!(h.audit()[0].result, AuditResult::Locked);
    }

    #[test]
    fn without_a_factor_ignore_skips_for_known_and_unknown_users_alike() {
        let mut config = Config::default();
        config.login.no_factor = "ignore".into();
        let h = harness_with(config);
        let (id, step) = begin(&h, "bob", "");
        assert_eq!((id.as_str(), step.action), ("", Action::Skip));
        let (id, step) = begin(&h, "nosuchuser", "");
        assert_eq!((id.as_str(), step.action), ("", Action::Skip));
    }

    #[test]
    fn without_a_factor_deny_prompts_and_refuses_like_wrong_codes() {
        let h = harness();
        assert_eq!(h.state.config().login.no_factor, "deny", "the default");
        for user in ["bob", "nosuchuser"] {
            let (id, step) = begin(&h, user, "");
            assert_eq!(step, Step::prompt(PROMPT), "{user}");
            let step = h.logins.answer(":1.7", &id, &code(NOW), NOW).unwrap();
            assert_eq!(step, Step::prompt(PROMPT_AFTER_WRONG), "{user}");
            h.logins.answer(":1.7", &id, "999999", NOW).unwrap();
            let step = h.logins.answer(":1.7", &id, "000000", NOW).unwrap();
            assert_eq!(step, Step::terminal(Action::Denied, WRONG_CODE), "{user}");
            assert_eq!(
                h.state
                    .store()
                    .failures(user, &Scope::Local, NOW)
                    .unwrap()
                    .count,
                3,
                "{user}"
            );
        }
    }

    #[test]
    fn only_root_or_the_user_may_begin() {
        let h = harness();
        h.enrol("alice");
        let alice = Caller {
            bus_name: ":1.9".into(),
            uid: 1000,
        };
        assert!(
            h.logins
                .begin(&alice, "alice", "xscreensaver", "", ":0", NOW)
                .is_ok()
        );
        for user in ["bob", "root", "nosuchuser"] {
            let e = h
                .logins
                .begin(&alice, user, "xscreensaver", "", ":0", NOW)
                .unwrap_err();
            assert!(
                matches!(e, HerarxError::PermissionDenied(_)),
                "{user}: {e:?}"
            );
        }
        assert_eq!(h.audit()[0].result, AuditResult::Refused);
    }

    #[test]
    fn arguments_are_bounded_and_printable() {
        let h = harness();
        let long = "a".repeat(limits::USER_MAX + 1);
        for (user, service, rhost, tty) in [
            ("", "sshd", "", ""),
            (long.as_str(), "sshd", "", ""),
            ("al\nice", "sshd", "", ""),
            ("alice", "ss\x07hd", "", ""),
            ("alice", "sshd", "1.2.3.4\r", ""),
            ("alice", "sshd", "", "tty\x1b"),
        ] {
            let e = h
                .logins
                .begin(&root(), user, service, rhost, tty, NOW)
                .unwrap_err();
            assert!(matches!(e, HerarxError::InvalidArgument(_)), "{user:?}");
        }
        assert!(h.audit().iter().all(|a| !a.user.contains('\n')));
    }

    #[test]
    fn a_transaction_belongs_to_its_connection() {
        let h = harness();
        h.enrol("alice");
        let (id, _) = begin(&h, "alice", "");
        let e = h.logins.answer(":1.8", &id, &code(NOW), NOW).unwrap_err();
        assert_eq!(e, no_such_transaction());
        assert_eq!(
            h.logins.answer(":1.7", "nope", "1", NOW).unwrap_err(),
            no_such_transaction()
        );
        assert_eq!(
            h.logins.cancel(":1.8", &id).unwrap_err(),
            no_such_transaction()
        );
        h.logins.cancel(":1.7", &id).unwrap();
        assert_eq!(h.logins.live(), 0);
    }

    #[test]
    fn a_late_answer_times_out() {
        let h = harness();
        h.enrol("alice");
        let (id, _) = begin(&h, "alice", "");
        let t = NOW + 180;
        let step = h.logins.answer(":1.7", &id, &code(t), t).unwrap();
        assert_eq!(step, Step::terminal(Action::Denied, "The login timed out."));
        assert_eq!(h.logins.live(), 0);
    }

    #[test]
    fn expired_transactions_are_pruned_and_connections_leaving_drop_theirs() {
        let h = harness();
        h.enrol("alice");
        begin(&h, "alice", "");
        begin(&h, "alice", "");
        let other = Caller {
            bus_name: ":1.99".into(),
            uid: 0,
        };
        h.logins
            .begin(&other, "alice", "sshd", "", "", NOW + 100)
            .unwrap();
        assert_eq!(h.logins.live(), 3);
        assert_eq!(h.logins.drop_owner(":1.99"), 1);
        assert_eq!(h.logins.drop_owner(":1.99"), 0);
        assert_eq!(h.logins.prune(NOW + 180), 2);
        assert_eq!(h.logins.live(), 0);
    }

    #[test]
    fn one_connection_may_hold_only_so_many_transactions() {
        let h = harness();
        h.enrol("alice");
        for _ in 0..TXNS_PER_CONNECTION_MAX {
            begin(&h, "alice", "");
        }
        let e = h
            .logins
            .begin(&root(), "alice", "sshd", "", "", NOW)
            .unwrap_err();
        assert!(matches!(e, HerarxError::Busy(_)));
        let other = Caller {
            bus_name: ":1.8".into(),
            uid: 0,
        };
        assert!(h.logins.begin(&other, "alice", "sshd", "", "", NOW).is_ok());
    }

    #[test]
    fn the_step_cap_ends_a_transaction() {
        // Valid configurations end a login by max_tries first; the cap guards the rest.
        let mut config = Config::default();
        config.login.max_tries = 100;
        config.lockout.max_failures = 100;
        let h = harness_with(config);
        h.enrol("alice");
        let (id, _) = begin(&h, "alice", "");
        for _ in 1..limits::STEPS_MAX {
            let s = h.logins.answer(":1.7", &id, "000000", NOW).unwrap();
            assert_eq!(s.action, Action::Prompt);
        }
        let s = h.logins.answer(":1.7", &id, "000000", NOW).unwrap();
        assert_eq!(s, Step::terminal(Action::Denied, TOO_MANY_STEPS));
        assert_eq!(h.logins.live(), 0);
    }

    #[test]
    fn remote_means_not_loopback() {
        for local in [
            "",
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "[::1]",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_remote(local), "{local}");
        }
        for remote in [
            "192.0.2.1",
            "10.0.0.1",
            "2001:db8::1",
            "example.com",
            "localhost.example.com",
            "::",
        ] {
            assert!(is_remote(remote), "{remote}");
        }
    }

    #[test]
    fn lock_messages_round_up_to_minutes() {
        assert!(locked_message(100, 99).contains("1 more minute."));
        assert!(locked_message(960, 60).contains("15 more minutes."));
        assert!(locked_message(961, 60).contains("16 more minutes."));
    }

    #[test]
    fn logs_never_carry_codes_or_transaction_ids() {
        let h = harness();
        h.enrol("alice");
        let (id, _) = begin(&h, "alice", "");
        let w = wrong(NOW);
        h.logins.answer(":1.7", &id, &w, NOW).unwrap();
        let c = code(NOW);
        h.logins.answer(":1.7", &id, &c, NOW).unwrap();
        let lines = h.log.lines();
        assert!(lines.len() >= 2);
        for l in &lines {
            assert!(
                !l.contains(&c) && !l.contains(&w) && !l.contains(&id),
                "{l}"
            );
        }
    }

    fn trusted_harness() -> Harness {
        let config = Config::parse(
            "[network]\ntrusted = [\"10.20.0.0/16\", \"2001:db8::/32\"]\n\
             [services.sshd]\ntrusted_networks = [\"192.0.2.0/24\"]\n\
             [services.su]\ntrusted_networks = []\n",
        )
        .unwrap();
        config.validate().unwrap();
        let h = harness_with(config);
        h.enrol("alice");
        h
    }

    fn begin_service(h: &Harness, service: &str, rhost: &str) -> (String, Step) {
        h.logins
            .begin(&root(), "alice", service, rhost, "", NOW)
            .unwrap()
    }

    #[test]
    fn a_login_from_a_trusted_network_asks_nothing_and_is_audited() {
        let h = trusted_harness();
        let (id, step) = begin_service(&h, "sudo", "10.20.3.4");
        assert_eq!(
            (id.as_str(), &step),
            ("", &Step::terminal(Action::Skip, ""))
        );
        assert_eq!(h.logins.live(), 0);
        let a = &h.audit()[0];
        assert_eq!(
            (a.result, a.method.as_str(), a.reason.as_str()),
            (
                AuditResult::Skip,
                "none",
                "trusted network 10.20.0.0/16 (service sudo)"
            )
        );
        assert!(
            h.log
                .lines()
                .iter()
                .any(|l| l.contains("trusted network 10.20.0.0/16 (service sudo)")),
            "{:?}",
            h.log.lines()
        );
        for rhost in ["2001:db8:7::1", "::ffff:10.20.0.9", "[2001:db8::1]"] {
            let (_, step) = begin_service(&h, "login", rhost);
            assert_eq!(step.action, Action::Skip, "{rhost}");
        }
        let (_, step) = begin_service(&h, "sshd", "192.0.2.5");
        assert_eq!(step.action, Action::Skip);
        assert_eq!(
            h.audit()[0].reason,
            "trusted network 192.0.2.0/24 (service sshd)"
        );
    }

    #[test]
    fn untrusted_hosts_names_and_overridden_services_are_asked() {
        let h = trusted_harness();
        for (service, rhost) in [
            ("sudo", "10.21.0.1"),
            ("sudo", ""),
            ("sudo", "127.0.0.1"),
            ("sudo", "office.example.com"),
            ("sudo", "10.20.3.4.nip.io"),
            ("sudo", "2001:db9::1"),
            // The service's own list replaces the global one; an empty one trusts nothing.
            ("sshd", "10.20.3.4"),
            ("su", "10.20.3.4"),
            ("su", "2001:db8::1"),
        ] {
            let (id, step) = begin_service(&h, service, rhost);
            assert_eq!(step, Step::prompt(PROMPT), "{service} {rhost}");
            h.logins.cancel(":1.7", &id).unwrap();
        }
        assert!(h.audit().iter().all(|a| a.result != AuditResult::Skip));
    }

    #[test]
    fn a_trusted_network_neither_lets_others_in_nor_is_locked() {
        let h = trusted_harness();
        let bob = Caller {
            bus_name: ":1.9".into(),
            uid: 1001,
        };
        let e = h
            .logins
            .begin(&bob, "alice", "xscreensaver", "10.20.3.4", ":0", NOW)
            .unwrap_err();
        assert!(matches!(e, HerarxError::PermissionDenied(_)), "{e:?}");
        assert_eq!(h.audit()[0].result, AuditResult::Refused);
        // The user's own screen locker from a trusted address is let through.
        let (_, step) = h
            .logins
            .begin(&bob, "bob", "xscreensaver", "10.20.3.4", ":0", NOW)
            .unwrap();
        assert_eq!(step.action, Action::Skip);
        // Trusted logins skip before the lockout is looked at: a lockout from elsewhere does
        // not bar the trusted network (its failures are the remote scope's).
        for _ in 0..2 {
            let (id, _) = begin_service(&h, "sudo", "192.0.2.1");
            for _ in 0..3 {
                h.logins.answer(":1.7", &id, &wrong(NOW), NOW).unwrap();
                if h.logins.live() == 0 {
                    break;
                }
            }
        }
        let (_, step) = begin_service(&h, "sudo", "192.0.2.1");
        assert_eq!(step.action, Action::Locked);
        let (_, step) = begin_service(&h, "sudo", "10.20.3.4");
        assert_eq!(step.action, Action::Skip);
    }
}
