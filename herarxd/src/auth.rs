//! The login transaction, as the PAM module runs it: `Begin` → prompts → a terminal step.
//!
//! Plain Rust with time passed in; the D-Bus layer only supplies the caller (its unique bus
//! name and, for `Begin`, its uid as the bus reports it). The module's own claims (user,
//! service, rhost, tty) are used for nothing but choosing the account, the audit record, and
//! the local/remote scope, which the daemon derives itself from rhost.
//!
//! A transaction is in one [`Stage`] at a time: asking for a code (TOTP or backup code: both
//! are accepted at any code prompt), showing the method menu (an empty answer or `?` opens
//! it), enrolling a first factor inside the login, or showing the new backup codes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use herarx_proto::{Action, HerarxError, Step, limits};
use zeroize::Zeroizing;

use crate::enrol_text;
use crate::logger::Severity;
use crate::otpauth;
use crate::policy::{self, NoFactor, Origin};
use crate::sessions::{NO_SESSION, Sessions};
use crate::ssh_info;
use crate::state::{State, printable, valid_text};
use crate::store::backup_codes::FEW_LEFT;
use crate::store::enrollments::{BeginOutcome, ConfirmOutcome};
use crate::store::factors::{Accept, VerifyOutcome};
use crate::store::remembered::{KIND_ADDRESS, KIND_SSH_KEY};
use crate::store::{AuditCtx, AuditResult, Scope, random_hex};
use crate::totp::{Params, Rejection};

pub const PROMPT: &str = "Verification code: ";
pub const PROMPT_AFTER_WRONG: &str = "Wrong code. Verification code: ";
pub const PROMPT_AFTER_REPLAY: &str =
    "That code was already used; wait for the next one. Verification code: ";
/// The first prompt of a user who has another method besides the app.
pub const PROMPT_WITH_MENU: &str = "Verification code (Enter for other ways): ";
pub const BACKUP_PROMPT: &str = "Backup code: ";
pub const BACKUP_PROMPT_AFTER_WRONG: &str = "Wrong code. Backup code: ";
pub const MENU_PROMPT: &str = "Choose a number (Enter to go back): ";
pub const ENROL_PROMPT: &str = "Code from the app, to finish setting up: ";
pub const ENROL_PROMPT_AFTER_WRONG: &str = "Wrong code. Code from the app, to finish setting up: ";
pub const SAVED_PROMPT: &str = "Press Enter once you have saved them: ";
pub const TOUCH_MESSAGE: &str = "Touch your security key.";
pub const KEY_PIN_PROMPT: &str = "Security key PIN: ";
pub const KEY_PIN_AGAIN: &str = "Wrong PIN. Security key PIN: ";
pub const KEY_NEEDS_PIN: &str = "This key needs its PIN. Security key PIN: ";
pub const KEY_NOT_PLUGGED: &str = "No security key is plugged in.";
pub const KEY_NOT_TOUCHED: &str = "The security key was not touched in time.";
pub const KEY_NOT_REGISTERED: &str = "That security key is not registered for this account.";
pub const KEY_REFUSED: &str = "The security key's answer was refused.";
pub const KEY_CLONED: &str = "This security key's signature counter went backwards: it may have \
been cloned. The login is refused; tell your administrator.";
/// A remote login of a user whose only methods are security keys.
pub const KEYS_NOT_REMOTE: &str = "Your only sign-in method is a security key, and keys are \
not used for remote logins. Set up an authenticator app (`herarxctl totp add`) at this \
machine, or log in locally.";
pub const WRONG_CODE: &str = "Wrong code.";
pub const NO_CODE_GIVEN: &str = "No code was given.";
pub const REPLAYED_CODE: &str = "That code was already used.";
pub const TIMED_OUT: &str = "The login timed out.";
pub const TOO_MANY_STEPS: &str = "Too many steps in this login.";
/// A user who must have a second factor and has none, under `deny` (or `enroll` where it is
/// not offered). Says how to get one; the same for an unknown account.
pub const NO_FACTOR_DENIED: &str = "Two-factor authentication is required for this account, \
and none is set up. Set it up with `herarxctl totp add` from a session that does not need it \
(for example the console, if allowed), or ask your administrator.";
/// A user whose methods this service does not accept (`services.NAME.methods`).
pub const NO_ACCEPTED_METHOD: &str = "This service does not accept the sign-in methods you \
have set up. Use another one (`herarxctl status` lists yours), or ask your administrator.";
pub const ENROL_FAILED: &str =
    "Setting up the authenticator failed: too many wrong codes. Log in again to start over.";

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
    /// The kernel audit session id of the calling process ([`NO_SESSION`] when it has none or
    /// was not looked up because session trust is off).
    pub session: u32,
}

/// What a user can answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Methods {
    totp: bool,
    backup_codes: u32,
    /// Security keys offered here (0 for remote logins: never a touch at the server).
    keys: usize,
    /// Keys need their PIN (policy `fido2.user_verification = "required"`).
    key_pin: bool,
    /// Ask for the touch first (policy `fido2.keys_first`).
    keys_first: bool,
}

impl Methods {
    fn any(self) -> bool {
        self.totp || self.backup_codes > 0 || self.keys > 0
    }

    /// Whether anything but a key is left to fall back to.
    fn codes(self) -> bool {
        self.totp || self.backup_codes > 0
    }

    /// The stage and step that ask for a key.
    fn key_step(self) -> (Stage, Step) {
        if self.key_pin {
            (Stage::KeyPin, Step::prompt(KEY_PIN_PROMPT))
        } else {
            (Stage::KeyTouch { pin: None }, Step::wait(TOUCH_MESSAGE))
        }
    }

    /// The first stage and step of a login.
    fn first(self) -> (Stage, Step) {
        if self.keys > 0 && (self.keys_first || !self.codes()) {
            self.key_step()
        } else if self.totp {
            (Stage::Code, self.first_prompt())
        } else {
            (Stage::BackupCode, self.first_prompt())
        }
    }

    /// The menu: `(choice, what it leads to, line)`.
    fn menu(self) -> Vec<(Stage, String)> {
        let mut items = Vec::new();
        if self.keys > 0 {
            items.push((self.key_step().0, "Security key".to_owned()));
        }
        if self.totp {
            items.push((Stage::Code, "Authenticator app".to_owned()));
        }
        if self.backup_codes > 0 {
            items.push((
                Stage::BackupCode,
                format!("Backup code ({} left)", self.backup_codes),
            ));
        }
        items
    }

    fn first_prompt(self) -> Step {
        if !self.totp {
            Step::prompt(BACKUP_PROMPT)
        } else if self.backup_codes > 0 || self.keys > 0 {
            Step::prompt(PROMPT_WITH_MENU)
        } else {
            Step::prompt(PROMPT)
        }
    }
}

/// Where a transaction stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    /// Asking for a code from the app (a backup code is accepted too).
    Code,
    /// Asking for a backup code (a code from the app is accepted too).
    BackupCode,
    /// The method menu is shown.
    Menu,
    /// Enrolling inside the login: waiting for the first code of the new app.
    Enrol { pending_id: String },
    /// Enrolled; the backup codes are shown; any answer finishes.
    ShowCodes,
    /// Asking for the security key's PIN.
    KeyPin,
    /// A `Wait` step was sent: the next (empty) answer runs the key's assertion.
    KeyTouch { pin: Option<Zeroizing<String>> },
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
    stage: Stage,
    methods: Methods,
    /// What to remember if this login passes: `(kind, value)`, for `remember_for` seconds.
    remember: Vec<(&'static str, String, u64)>,
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

/// The scope of a login from `rhost`: local, or remote from its address (an IPv4-mapped IPv6
/// address counts as its IPv4 address, so one client is one source), or its host name.
pub fn scope_of(rhost: &str) -> Scope {
    if !is_remote(rhost) {
        return Scope::Local;
    }
    match crate::config::rhost_address(rhost) {
        Some(addr) => Scope::Remote(addr.to_string()),
        None => Scope::Remote(rhost.trim().to_ascii_lowercase()),
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

/// The success message after a backup code: a warning when few are left.
fn backup_code_message(left: u32) -> String {
    match left {
        0 => "That was your last backup code: make new ones now with \
              `herarxctl backup-codes generate`."
            .into(),
        n if n <= FEW_LEFT => format!(
            "Backup code accepted. Only {n} left: make new ones with \
             `herarxctl backup-codes generate`."
        ),
        _ => String::new(),
    }
}

/// Whether a login already proved its second factor another way.
enum Verified {
    /// Yes: the audit method and reason.
    Yes(&'static str, String),
    /// No: what to remember if its code passes.
    No(Vec<(&'static str, String, u64)>),
}

/// What an answer leads to.
enum Next {
    /// The transaction ends with this step.
    Done(Step),
    /// It goes on in this stage, with this prompt.
    Continue(Stage, Step),
}

/// The prompt of a code stage.
fn prompt_of(stage: &Stage, methods: Methods) -> Step {
    match stage {
        Stage::BackupCode => Step::prompt(BACKUP_PROMPT),
        Stage::KeyPin => Step::prompt(KEY_PIN_PROMPT),
        Stage::KeyTouch { .. } => Step::wait(TOUCH_MESSAGE),
        _ if methods.backup_codes > 0 => Step::prompt(PROMPT_WITH_MENU),
        _ => Step::prompt(PROMPT),
    }
}

/// The menu step: the choices as a message, a visible prompt.
fn menu_step(items: &[(Stage, String)], note: Option<&str>) -> Step {
    let mut text = String::new();
    if let Some(note) = note {
        text.push_str(note);
        text.push('\n');
    }
    text.push_str("Other ways to sign in:");
    for (i, (_, line)) in items.iter().enumerate() {
        text.push_str(&format!("\n  {}. {line}", i + 1));
    }
    Step::prompt_visible(MENU_PROMPT).with_message(text)
}

pub struct Logins {
    state: Arc<State>,
    table: Mutex<Table>,
    sessions: Sessions,
}

fn no_such_transaction() -> HerarxError {
    HerarxError::NoSuchTransaction(
        "No such login transaction on this connection (finished, timed out or never begun): \
         start the login again."
            .into(),
    )
}

/// What `begin` decided before a transaction exists.
enum Start {
    /// A terminal first step.
    Done(Step),
    /// A transaction in this stage, with this first step, and what to remember if it passes.
    Run(Stage, Methods, Step, Vec<(&'static str, String, u64)>),
}

impl Logins {
    pub fn new(state: Arc<State>) -> Self {
        Logins {
            state,
            table: Mutex::new(Table::default()),
            sessions: Sessions::default(),
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

    /// Whether `begin` may look up accounts or groups (NSS, which may block on LDAP or SSSD):
    /// the D-Bus layer then runs it on the blocking pool. Under the default policy it does not,
    /// and the login path stays on the runtime's thread.
    pub fn may_block(&self) -> bool {
        let config = self.state.config();
        !config.login.exempt_groups.is_empty()
            || !config.login.required_groups.is_empty()
            || config.no_factor_policy() == Some(crate::config::NoFactorPolicy::Enroll)
    }

    /// Whether session trust is on: the D-Bus layer then looks up each caller's audit session.
    pub fn session_trust(&self) -> bool {
        self.state.config().session_trust_seconds() > 0
    }

    /// Starts a login for `user`. Returns the transaction id (empty for a terminal first
    /// step: nothing to answer) and the first step.
    #[allow(clippy::too_many_arguments)]
    pub fn begin(
        &self,
        caller: &Caller,
        user: &str,
        service: &str,
        rhost: &str,
        tty: &str,
        ssh_auth_info: &str,
        now: u64,
    ) -> Result<(String, Step), HerarxError> {
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
        let scope = match scope_of(rhost) {
            Scope::Local if remote => Scope::Remote(match crate::config::rhost_address(rhost) {
                Some(a) => a.to_string(),
                None if rhost.trim().is_empty() => "unknown".to_owned(),
                None => rhost.trim().to_ascii_lowercase(),
            }),
            scope => scope,
        };
        let start = self.decide(&ctx, &scope, caller, ssh_auth_info, now)?;
        let (stage, methods, first, remember) = match start {
            Start::Done(step) => return Ok((String::new(), step)),
            Start::Run(stage, methods, step, remember) => (stage, methods, step, remember),
        };
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
                    stage,
                    methods,
                    remember,
                },
            );
        }
        Ok((id, first))
    }

    /// What this login needs, from policy and the store: the heart of `begin`.
    fn decide(
        &self,
        ctx: &AuditCtx,
        scope: &Scope,
        caller: &Caller,
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
        if config.session_trust_seconds() > 0
            && let Some(trust) = self.sessions.trusted(caller.session, user, now)
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
        };
        // What this service accepts of them (`services.NAME.methods`); keys only locally.
        let methods = Methods {
            totp: enrolled.totp && config.service_accepts(&ctx.service, "totp"),
            backup_codes: if config.service_accepts(&ctx.service, "backup-code") {
                enrolled.backup_codes
            } else {
                0
            },
            keys: if scope == &Scope::Local && config.service_accepts(&ctx.service, "fido2") {
                enrolled.keys
            } else {
                0
            },
            ..enrolled
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
            let (stage, step) = methods.first();
            return Ok(Start::Run(stage, methods, step, remember));
        }
        // No factor: what policy says for this user, here, now.
        let requirement = policy::requirement(&config, self.state.users.as_ref(), user);
        // Only enrolment needs to know whether the account exists (NSS: see `may_block`).
        let enrolling = config.no_factor_policy() == Some(crate::config::NoFactorPolicy::Enroll);
        let known = enrolling && self.state.users.uid_of(user).is_some();
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
            policy::no_factor(&config, &requirement, known, window_start, origin, now),
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

    /// Starts enrolling a first TOTP factor inside the login: the secret is made and sealed
    /// by the store, shown once in the first step's message.
    fn start_enrolment(&self, ctx: &AuditCtx, now: u64) -> Result<Start, HerarxError> {
        let config = self.state.config();
        let params = Params {
            algorithm: config.totp_algorithm(),
            digits: u8::try_from(config.totp.digits).unwrap_or(6),
            period: u64::from(config.totp.period),
        };
        let started = {
            let mut store = self.state.store();
            store.begin_totp_enrollment(ctx, "authenticator", "", params, now)
        };
        let (outcome, entry) =
            started.map_err(|e| self.state.internal("starting an enrolment in a login", &e))?;
        self.state.log.audit(&entry);
        let BeginOutcome::Started(n) = outcome else {
            // A user without factors needs no step-up and has room: never reached.
            return Ok(Start::Done(Step::terminal(
                Action::Denied,
                NO_FACTOR_DENIED,
            )));
        };
        let uri = otpauth::totp_uri(
            &config.totp.issuer,
            &ctx.user,
            &self.state.hostname,
            &n.secret,
            &n.params,
        );
        let secret = Zeroizing::new(data_encoding::BASE32_NOPAD.encode(&n.secret));
        let text = enrol_text::enrolment(&uri, &secret);
        Ok(Start::Run(
            Stage::Enrol {
                pending_id: n.id.clone(),
            },
            Methods {
                totp: false,
                backup_codes: 0,
                keys: 0,
                key_pin: false,
                keys_first: false,
            },
            Step::prompt(ENROL_PROMPT).with_message(text.as_str()),
            Vec::new(),
        ))
    }

    /// Whether this connection already proved what a second factor would (a FIDO-backed SSH
    /// key, a remembered SSH key, a remembered address); if not, what to remember once the
    /// code passes.
    fn already_verified(
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
                remember.push((KIND_SSH_KEY, k.fingerprint.clone(), key_seconds));
            }
        }
        // Any client address counts here, loopback ones included (a remembered 127.0.0.2 is
        // as good as any): what matters is that a code passed from it before.
        let source = match scope {
            Scope::Remote(source) => Some(source.clone()),
            Scope::Local => crate::config::rhost_address(&ctx.rhost).map(|a| a.to_string()),
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
                remember.push((KIND_ADDRESS, source.clone(), seconds));
            }
        }
        Ok(Verified::No(remember))
    }

    /// After a second factor passed: remember what the login asked to, and make the ticket
    /// that lets its session be trusted. Failing to remember costs the user a prompt next time,
    /// never the login: logged, not returned.
    fn after_success(&self, id: &str, ctx: &AuditCtx, step: Step, now: u64) -> Step {
        let remember = self
            .table()
            .by_id
            .get_mut(id)
            .map(|t| std::mem::take(&mut t.remember))
            .unwrap_or_default();
        for (kind, value, seconds) in remember {
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
                self.sessions.issue(&ticket, &ctx.user, now);
                step.with_ticket(ticket)
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
        let opened = self
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
        Ok(self.sessions.close(caller.session, user, caller_pid))
    }

    /// Answers the current prompt of transaction `id`, begun by `bus_name`.
    pub fn answer(
        &self,
        bus_name: &str,
        id: &str,
        response: &str,
        now: u64,
    ) -> Result<Step, HerarxError> {
        let (ctx, scope, stage, methods) = {
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
            (
                txn.ctx.clone(),
                txn.scope.clone(),
                txn.stage.clone(),
                txn.methods,
            )
        };
        // An overlong answer is no code: checked (and counted) as a malformed one.
        let response = if response.len() <= limits::ANSWER_MAX {
            response
        } else {
            "-"
        };
        let next = match stage {
            Stage::Code | Stage::BackupCode => {
                self.answer_code(id, &ctx, &scope, &stage, methods, response, now)
            }
            Stage::Menu => Ok(self.answer_menu(methods, response)),
            Stage::Enrol { pending_id } => self.answer_enrolment(&ctx, &pending_id, response, now),
            Stage::KeyPin => Ok(Next::Continue(
                Stage::KeyTouch {
                    pin: Some(Zeroizing::new(response.to_owned())),
                },
                Step::wait(TOUCH_MESSAGE),
            )),
            Stage::KeyTouch { pin } => self.answer_touch(
                id,
                &ctx,
                &scope,
                methods,
                pin.as_deref().map(String::as_str),
                now,
            ),
            Stage::ShowCodes => Ok(Next::Done(self.after_success(
                id,
                &ctx,
                Step::terminal(Action::Success, ""),
                now,
            ))),
        };
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

    /// A code (from the app, or a backup code) at a code prompt.
    #[allow(clippy::too_many_arguments)]
    fn answer_code(
        &self,
        id: &str,
        ctx: &AuditCtx,
        scope: &Scope,
        stage: &Stage,
        methods: Methods,
        response: &str,
        now: u64,
    ) -> Result<Next, HerarxError> {
        // An empty answer (or `?`) asks for the other ways in, when there are any; it is no
        // attempt at a code, so it is not counted.
        let wants_menu = response.trim().is_empty() || response.trim() == "?";
        if wants_menu {
            let items = methods.menu();
            if items.len() > 1 {
                return Ok(Next::Continue(Stage::Menu, menu_step(&items, None)));
            }
            // Nothing to switch to: an empty answer is a try without a code. It uses up one
            // of the login's tries (a client that answers empty forever ends like one that
            // answers wrong), but no failure is counted towards the lockout.
            let max_tries = self.state.config().login.max_tries;
            let tries = {
                let mut table = self.table();
                match table.by_id.get_mut(id) {
                    Some(txn) => {
                        txn.tries += 1;
                        txn.tries
                    }
                    None => max_tries,
                }
            };
            if tries >= max_tries {
                self.record(&ctx.entry(now, "totp", AuditResult::Denied, "no code given"));
                return Ok(Next::Done(Step::terminal(Action::Denied, NO_CODE_GIVEN)));
            }
            return Ok(Next::Continue(stage.clone(), prompt_of(stage, methods)));
        }
        let accept = Accept {
            totp: methods.totp,
            backup_codes: methods.backup_codes > 0,
        };
        let verified = {
            let mut store = self.state.store();
            store.verify_and_consume_accepting(ctx, response, now, scope, "totp", accept)
        };
        let (outcome, entry) = verified.map_err(|e| self.state.internal("checking a code", &e))?;
        self.state.log.audit(&entry);
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
            VerifyOutcome::Rejected { reason, .. } => {
                let max_tries = self.state.config().login.max_tries;
                let tries = {
                    let mut table = self.table();
                    match table.by_id.get_mut(id) {
                        Some(txn) => {
                            txn.tries += 1;
                            txn.tries
                        }
                        None => max_tries,
                    }
                };
                let replayed = reason == Rejection::Replayed;
                if tries < max_tries {
                    let again = match (stage, replayed) {
                        (_, true) => Step::prompt(PROMPT_AFTER_REPLAY),
                        (Stage::BackupCode, false) => Step::prompt(BACKUP_PROMPT_AFTER_WRONG),
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
        })
    }

    /// Whether the transaction's next answer waits for a security key (the D-Bus layer then
    /// runs it on the blocking pool: it can take `fido2.touch_timeout_seconds`).
    pub fn waits_for_key(&self, bus_name: &str, id: &str) -> bool {
        self.table()
            .by_id
            .get(id)
            .is_some_and(|t| t.owner == bus_name && matches!(t.stage, Stage::KeyTouch { .. }))
    }

    /// Where a key that did not do it leaves the login: the code prompt (prefixed with why),
    /// or the end when the user has nothing else.
    fn after_key(&self, methods: Methods, why: &str) -> Next {
        if methods.totp {
            Next::Continue(
                Stage::Code,
                Step::prompt(format!("{why} {}", PROMPT_WITH_MENU)),
            )
        } else if methods.backup_codes > 0 {
            Next::Continue(
                Stage::BackupCode,
                Step::prompt(format!("{why} {BACKUP_PROMPT}")),
            )
        } else {
            Next::Done(Step::terminal(Action::Denied, why))
        }
    }

    /// Uses up one of the login's tries; whether any are left.
    fn use_try(&self, id: &str) -> bool {
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
    fn answer_touch(
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
        let uv_required = config.fido2_uv_required();
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
            self.record(&ctx.entry(now, "fido2", AuditResult::Denied, reason));
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
                let (accepted, entry) = self
                    .state
                    .store()
                    .fido2_accept(ctx, scope, &factor_id, counter.counter, now)
                    .map_err(|e| self.state.internal("recording a key's counter", &e))?;
                self.state.log.audit(&entry);
                if accepted {
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

    /// A choice in the method menu.
    fn answer_menu(&self, methods: Methods, response: &str) -> Next {
        let items = methods.menu();
        let choice = response.trim();
        if choice.is_empty() {
            let (back, step) = methods.first();
            return Next::Continue(back, step);
        }
        match choice
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| items.get(i))
        {
            Some((stage, _)) => Next::Continue(stage.clone(), prompt_of(stage, methods)),
            None => Next::Continue(
                Stage::Menu,
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

    /// The first code of an app being set up inside the login.
    fn answer_enrolment(
        &self,
        ctx: &AuditCtx,
        pending_id: &str,
        response: &str,
        now: u64,
    ) -> Result<Next, HerarxError> {
        let confirmed = {
            let mut store = self.state.store();
            store.confirm_totp_enrollment(ctx, pending_id, response, now)
        };
        let (outcome, entry) = confirmed.map_err(|e| {
            self.state
                .internal("confirming an enrolment in a login", &e)
        })?;
        self.state.log.audit(&entry);
        match outcome {
            ConfirmOutcome::Enrolled(info) => {
                // Prominent: a stolen password plus this window is how an attacker would
                // enrol their own app, so admins must see every one.
                let where_from = if ctx.rhost.is_empty() {
                    "locally".to_owned()
                } else {
                    format!("from {}", ctx.rhost)
                };
                let reason = format!(
                    "ENROLLED INSIDE A LOGIN: factor {} for {} via {} {where_from}",
                    info.id, ctx.user, ctx.service
                );
                self.state.log.log(Severity::Warning, &reason);
                self.record(&ctx.entry(now, "enroll-in-login", AuditResult::Success, reason));
                let issued = {
                    let mut store = self.state.store();
                    store.issue_backup_codes(ctx, now)
                };
                let (codes, entry) = issued
                    .map_err(|e| self.state.internal("issuing backup codes in a login", &e))?;
                self.state.log.audit(&entry);
                let text = enrol_text::backup_codes(&codes);
                Ok(Next::Continue(
                    Stage::ShowCodes,
                    Step::prompt_visible(SAVED_PROMPT).with_message(text.as_str()),
                ))
            }
            ConfirmOutcome::Wrong { tries_left } if tries_left > 0 => Ok(Next::Continue(
                Stage::Enrol {
                    pending_id: pending_id.to_owned(),
                },
                Step::prompt(ENROL_PROMPT_AFTER_WRONG),
            )),
            ConfirmOutcome::Wrong { .. } | ConfirmOutcome::NoSuchEnrollment => {
                Ok(Next::Done(Step::terminal(Action::Denied, ENROL_FAILED)))
            }
            ConfirmOutcome::TooManyFactors => {
                Ok(Next::Done(Step::terminal(Action::Denied, NO_FACTOR_DENIED)))
            }
        }
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
    use crate::totp::code_at;
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
        harness_with_users(
            config,
            FixedUsers::new(&[("root", 0), ("alice", 1000), ("bob", 1001)]),
        )
    }

    pub(crate) fn harness_with_users(config: Config, users: FixedUsers) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store_with(dir.path(), StorePolicy::from_config(&config));
        let log = Arc::new(MemoryLog::default());
        let state = Arc::new(State::new(
            Arc::new(Mutex::new(store)),
            Arc::new(config),
            Arc::new(users),
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
            session: NO_SESSION,
        }
    }

    fn begin(h: &Harness, user: &str, rhost: &str) -> (String, Step) {
        h.logins
            .begin(&root(), user, "sshd", rhost, "", "", NOW)
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
            .begin(&root(), "alice", "sshd", "192.0.2.1", "", "", NOW + 60)
            .unwrap();
        assert_eq!(id, "");
        assert_eq!(step.action, Action::Locked);
        assert!(step.message.contains("14 more minutes"), "{}", step.message);
        // The console is another scope.
        let (_, step) = h
            .logins
            .begin(&root(), "alice", "login", "", "tty1", "", NOW + 60)
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
    fn without_a_factor_deny_refuses_at_once_saying_how_to_enrol_for_known_and_unknown_alike() {
        let h = harness();
        assert_eq!(h.state.config().login.no_factor, "deny", "the default");
        for user in ["bob", "nosuchuser"] {
            let (id, step) = begin(&h, user, "");
            assert_eq!(id, "", "{user}");
            assert_eq!(
                step,
                Step::terminal(Action::Denied, NO_FACTOR_DENIED),
                "{user}"
            );
            let a = &h.audit()[0];
            assert_eq!(
                (a.result, a.reason.as_str()),
                (
                    AuditResult::Denied,
                    "no factor enrolled; login.no_factor = deny"
                )
            );
        }
        assert!(NO_FACTOR_DENIED.contains("herarxctl totp add"));
    }

    fn with_backup_codes(h: &Harness, user: &str) -> Vec<String> {
        let ctx = AuditCtx {
            user: user.into(),
            ..AuditCtx::default()
        };
        let (codes, _) = h.state.store().issue_backup_codes(&ctx, NOW).unwrap();
        codes.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn a_backup_code_works_at_the_code_prompt_once() {
        let h = harness();
        h.enrol("alice");
        let codes = with_backup_codes(&h, "alice");
        let (id, step) = begin(&h, "alice", "");
        assert_eq!(step, Step::prompt(PROMPT_WITH_MENU));
        let step = h.logins.answer(":1.7", &id, &codes[0], NOW).unwrap();
        assert_eq!(step, Step::terminal(Action::Success, ""));
        assert_eq!(h.audit()[0].reason, "backup code accepted (9 left)");
        let (id, _) = begin(&h, "alice", "");
        let step = h.logins.answer(":1.7", &id, &codes[0], NOW).unwrap();
        assert_eq!(step, Step::prompt(PROMPT_AFTER_WRONG), "used up");
    }

    #[test]
    fn the_last_backup_codes_warn() {
        let h = harness();
        h.enrol("alice");
        let codes = with_backup_codes(&h, "alice");
        for (i, c) in codes.iter().enumerate() {
            let (id, _) = begin(&h, "alice", "");
            let step = h.logins.answer(":1.7", &id, c, NOW).unwrap();
            let left = 9 - i as u32;
            assert_eq!(step.action, Action::Success);
            assert_eq!(step.message, backup_code_message(left), "{left}");
            assert_eq!(step.message.is_empty(), left > FEW_LEFT, "{left}");
        }
        assert!(backup_code_message(0).contains("last backup code"));
    }

    #[test]
    fn an_empty_answer_opens_the_menu_and_a_choice_leads_to_its_prompt() {
        let h = harness();
        h.enrol("alice");
        let codes = with_backup_codes(&h, "alice");
        let (id, _) = begin(&h, "alice", "192.0.2.1");
        let menu = h.logins.answer(":1.7", &id, "", NOW).unwrap();
        assert_eq!(menu.action, Action::PromptVisible);
        assert_eq!(menu.prompt, MENU_PROMPT);
        assert_eq!(
            menu.message,
            "Other ways to sign in:\n  1. Authenticator app\n  2. Backup code (10 left)"
        );
        let step = h.logins.answer(":1.7", &id, "7", NOW).unwrap();
        assert!(
            step.message.starts_with("\"7\" is not one of the choices."),
            "{step:?}"
        );
        let step = h.logins.answer(":1.7", &id, "2", NOW).unwrap();
        assert_eq!(step, Step::prompt(BACKUP_PROMPT));
        let step = h.logins.answer(":1.7", &id, "zzzz-zzzz", NOW).unwrap();
        assert_eq!(step, Step::prompt(BACKUP_PROMPT_AFTER_WRONG));
        let step = h.logins.answer(":1.7", &id, "?", NOW).unwrap();
        assert_eq!(step.action, Action::PromptVisible, "? opens the menu too");
        let step = h.logins.answer(":1.7", &id, "1", NOW).unwrap();
        assert_eq!(step, Step::prompt(PROMPT_WITH_MENU));
        let step = h.logins.answer(":1.7", &id, &codes[1], NOW).unwrap();
        assert_eq!(step.action, Action::Success);
        // Neither the menu nor empty answers counted as failures: only the one wrong code.
        assert_eq!(
            h.state
                .store()
                .failures("alice", &Scope::Remote("192.0.2.1".into()), NOW)
                .unwrap()
                .count,
            0,
            "the success cleared it"
        );
    }

    #[test]
    fn with_the_app_alone_an_empty_answer_just_asks_again() {
        let h = harness();
        h.enrol("alice");
        let (id, _) = begin(&h, "alice", "");
        let step = h.logins.answer(":1.7", &id, "", NOW).unwrap();
        assert_eq!(step, Step::prompt(PROMPT));
        assert_eq!(
            h.state
                .store()
                .failures("alice", &Scope::Local, NOW)
                .unwrap()
                .count,
            0
        );
    }

    fn enrol_config(extra: &str) -> Config {
        let c = Config::parse(&format!("[login]\nno_factor = \"enroll\"\n{extra}")).unwrap();
        c.validate().unwrap();
        c
    }

    /// The secret shown in an enrolment step's message.
    pub(crate) fn shown_secret(step: &Step) -> Vec<u8> {
        let key = step
            .message
            .lines()
            .find_map(|l| l.strip_prefix("Key: "))
            .unwrap()
            .replace(' ', "");
        data_encoding::BASE32_NOPAD.decode(key.as_bytes()).unwrap()
    }

    #[test]
    fn enrolment_inside_the_login_shows_a_qr_then_backup_codes_and_succeeds() {
        let h = harness_with(enrol_config(""));
        let (id, step) = begin(&h, "bob", "");
        assert_eq!(step.action, Action::Prompt);
        assert_eq!(step.prompt, ENROL_PROMPT);
        assert!(
            step.message.contains("URI: otpauth://totp/"),
            "{}",
            step.message
        );
        let secret = shown_secret(&step);
        let right = code_at(&secret, &Params::default(), NOW)
            .unwrap()
            .to_string();
        let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 1) % 1_000_000);
        let step = h.logins.answer(":1.7", &id, &wrong, NOW).unwrap();
        assert_eq!(step, Step::prompt(ENROL_PROMPT_AFTER_WRONG));
        let step = h.logins.answer(":1.7", &id, &right, NOW).unwrap();
        assert_eq!(step.action, Action::PromptVisible);
        assert_eq!(step.prompt, SAVED_PROMPT);
        let codes: Vec<&str> = step
            .message
            .split_whitespace()
            .filter(|w| crate::store::backup_codes::normalize(w).is_some() && w.len() == 9)
            .collect();
        assert_eq!(codes.len(), 10, "{}", step.message);
        let last = h.logins.answer(":1.7", &id, "", NOW).unwrap();
        assert_eq!(last, Step::terminal(Action::Success, ""));
        assert!(
            h.audit().iter().any(|a| a.method == "enroll-in-login"
                && a.reason.starts_with("ENROLLED INSIDE A LOGIN")),
        );
        assert!(
            h.log
                .lines()
                .iter()
                .any(|l| l.contains("ENROLLED INSIDE A LOGIN"))
        );
        // The enrolment code does not log in again; the next one does; so do the codes.
        let (id, step) = begin(&h, "bob", "");
        assert_eq!(step, Step::prompt(PROMPT_WITH_MENU));
        let step = h.logins.answer(":1.7", &id, &right, NOW + 1).unwrap();
        assert_eq!(step, Step::prompt(PROMPT_AFTER_REPLAY));
        let next = code_at(&secret, &Params::default(), NOW + 30)
            .unwrap()
            .to_string();
        let step = h.logins.answer(":1.7", &id, &next, NOW + 30).unwrap();
        assert_eq!(step.action, Action::Success);
        let (id, _) = begin(&h, "bob", "");
        let step = h.logins.answer(":1.7", &id, codes[0], NOW + 31).unwrap();
        assert_eq!(step.action, Action::Success);
        // No secret or code in the log.
        let key_b32 = data_encoding::BASE32_NOPAD.encode(&secret);
        for l in h.log.lines() {
            assert!(
                !l.contains(&key_b32) && !l.contains(&right) && !l.contains(codes[1]),
                "{l}"
            );
        }
    }

    #[test]
    fn enrolment_is_offered_only_where_and_while_policy_allows() {
        let h = harness_with(enrol_config("enroll_window = \"1d\"\n"));
        // Remote: refused (enroll_from = local by default).
        let (_, step) = begin(&h, "bob", "192.0.2.1");
        assert_eq!(step, Step::terminal(Action::Denied, NO_FACTOR_DENIED));
        assert!(
            h.audit()[0].reason.contains("enroll_from"),
            "{:?}",
            h.audit()[0]
        );
        // Unknown users cannot enrol.
        let (_, step) = begin(&h, "nosuchuser", "");
        assert_eq!(step.action, Action::Denied);
        // Locally within the window (it began at the first sight, above): offered.
        let (_, step) = h
            .logins
            .begin(&root(), "bob", "login", "", "tty1", "", NOW + 86_399)
            .unwrap();
        assert_eq!(step.prompt, ENROL_PROMPT);
        // After the window: refused.
        let (_, step) = h
            .logins
            .begin(&root(), "bob", "login", "", "tty1", "", NOW + 86_400)
            .unwrap();
        assert_eq!(step.action, Action::Denied);
        assert!(h.audit()[0].reason.contains("window"), "{:?}", h.audit()[0]);
    }

    #[test]
    fn required_groups_and_exempt_groups_decide_who_must_have_a_factor() {
        let config = Config::parse(
            "[login]\nrequired = \"groups\"\nrequired_groups = [\"wheel\"]\nexempt_groups = [\"ci\"]\n",
        )
        .unwrap();
        config.validate().unwrap();
        let h = harness_with_users(
            config,
            FixedUsers::new(&[("root", 0), ("alice", 1000), ("bob", 1001), ("carol", 1002)])
                .with_groups("alice", &["wheel"])
                .with_groups("bob", &["wheel", "ci"]),
        );
        let (_, step) = begin(&h, "alice", "");
        assert_eq!(step.action, Action::Denied, "wheel must");
        for user in ["bob", "carol", "nosuchuser"] {
            let (_, step) = begin(&h, user, "");
            assert_eq!(step.action, Action::Skip, "{user}");
        }
        assert_eq!(
            h.audit()[1].reason,
            "not required: in none of login.required_groups"
        );
        // Enrolled users are always asked, required or not.
        h.enrol("carol");
        let (_, step) = begin(&h, "carol", "");
        assert_eq!(step, Step::prompt(PROMPT));
    }

    #[test]
    fn allow_until_a_deadline_then_deny() {
        let config =
            Config::parse("[login]\nno_factor = \"allow\"\nallow_until = \"2023-11-15\"\n")
                .unwrap();
        config.validate().unwrap();
        let h = harness_with(config);
        let deadline = 1_700_006_400; // 2023-11-15T00:00:00Z
        let (_, step) = h
            .logins
            .begin(&root(), "bob", "sshd", "", "", "", deadline - 1)
            .unwrap();
        assert_eq!(step.action, Action::Skip);
        let (_, step) = h
            .logins
            .begin(&root(), "bob", "sshd", "", "", "", deadline)
            .unwrap();
        assert_eq!(step, Step::terminal(Action::Denied, NO_FACTOR_DENIED));
    }

    #[test]
    fn a_service_accepts_only_its_methods() {
        let config = Config::parse(
            "[services.sudo]\nmethods = [\"totp\"]\n[services.recovery]\nmethods = [\"backup-code\"]\n",
        )
        .unwrap();
        config.validate().unwrap();
        let h = harness_with(config);
        h.enrol("alice");
        let codes = with_backup_codes(&h, "alice");
        // sudo: the app only; a backup code is a wrong code there, and no menu is offered.
        let (id, step) = begin_service(&h, "sudo", "");
        assert_eq!(step, Step::prompt(PROMPT));
        let step = h.logins.answer(":1.7", &id, &codes[0], NOW).unwrap();
        assert_eq!(step, Step::prompt(PROMPT_AFTER_WRONG));
        let step = h.logins.answer(":1.7", &id, "", NOW).unwrap();
        assert_eq!(step, Step::prompt(PROMPT), "no menu with one method");
        let step = h.logins.answer(":1.7", &id, &code(NOW), NOW).unwrap();
        assert_eq!(step.action, Action::Success);
        // recovery: backup codes only; the app's code is refused, the unused backup code works.
        let (id, step) = begin_service(&h, "recovery", "");
        assert_eq!(step, Step::prompt(BACKUP_PROMPT));
        let step = h
            .logins
            .answer(":1.7", &id, &code(NOW + 30), NOW + 30)
            .unwrap();
        assert_eq!(step, Step::prompt(BACKUP_PROMPT_AFTER_WRONG));
        let step = h.logins.answer(":1.7", &id, &codes[0], NOW + 30).unwrap();
        assert_eq!(step.action, Action::Success);
        // A user with none of the accepted methods is refused, saying so.
        let bob = Config::parse("[services.sudo]\nmethods = [\"backup-code\"]\n").unwrap();
        let h = harness_with(bob);
        h.enrol("bob");
        let (_, step) = h
            .logins
            .begin(&root(), "bob", "sudo", "", "", "", NOW)
            .unwrap();
        assert_eq!(step, Step::terminal(Action::Denied, NO_ACCEPTED_METHOD));
    }

    // ---- security keys --------------------------------------------------------------

    use crate::fido2::tests::{Scripted, ScriptedDevice};
    use crate::fido2::{Algorithm, NewCredential};

    const UP: u8 = 0x01;
    const UV: u8 = 0x04;

    fn device(flags: u8) -> ScriptedDevice {
        ScriptedDevice {
            key: Scripted::p256(),
            flags,
            counter: 0.into(),
        }
    }

    /// A harness whose machine has `dev` plugged in, with `dev`'s key registered for alice
    /// (unless `register` is false).
    fn key_harness(config: Config, dev: Arc<ScriptedDevice>, register: bool) -> Harness {
        let Harness {
            state,
            logins,
            log,
            _dir,
        } = harness_with(config);
        drop(logins);
        let state = Arc::new(Arc::try_unwrap(state).ok().unwrap().with_keys(dev.clone()));
        let h = Harness {
            logins: Logins::new(state.clone()),
            state,
            log,
            _dir,
        };
        if register {
            let ctx = AuditCtx {
                user: "alice".into(),
                ..AuditCtx::default()
            };
            h.state
                .store()
                .add_fido2_key(
                    &ctx,
                    "YubiKey",
                    &NewCredential {
                        credential_id: dev.key.cred_id.clone(),
                        cose_key: dev.key.cose_key(),
                        algorithm: Algorithm::Es256,
                        aaguid: dev.key.aaguid,
                        counter: 0,
                        user_verified: false,
                        attestation_format: "none".into(),
                    },
                    NOW,
                )
                .unwrap();
        }
        h
    }

    #[test]
    fn a_local_login_with_a_key_is_a_touch() {
        let h = key_harness(Config::default(), Arc::new(device(UP)), true);
        let (id, step) = begin(&h, "alice", "");
        assert_eq!(step, Step::wait(TOUCH_MESSAGE));
        assert!(h.logins.waits_for_key(":1.7", &id));
        let step = h.logins.answer(":1.7", &id, "", NOW).unwrap();
        assert_eq!(step, Step::terminal(Action::Success, ""));
        let a = &h.audit()[0];
        assert_eq!(
            (a.method.as_str(), a.result),
            ("fido2", AuditResult::Success)
        );
        // Again: the counter moved on, the next assertion passes too.
        let (id, _) = begin(&h, "alice", "");
        assert_eq!(
            h.logins.answer(":1.7", &id, "", NOW).unwrap().action,
            Action::Success
        );
    }

    #[test]
    fn remote_logins_never_offer_a_key() {
        let h = key_harness(Config::default(), Arc::new(device(UP)), true);
        let (_, step) = begin(&h, "alice", "192.0.2.1");
        assert_eq!(step, Step::terminal(Action::Denied, KEYS_NOT_REMOTE));
        h.enrol("alice");
        let (id, step) = begin(&h, "alice", "192.0.2.1");
        assert_eq!(step, Step::prompt(PROMPT));
        let step = h.logins.answer(":1.7", &id, "", NOW).unwrap();
        assert_eq!(
            step,
            Step::prompt(PROMPT),
            "no menu: the key is not offered"
        );
    }

    #[test]
    fn without_the_key_the_login_falls_back_to_the_code() {
        // The plugged-in key is not alice's.
        let h = key_harness(Config::default(), Arc::new(device(UP)), false);
        let other = device(UP);
        let ctx = AuditCtx {
            user: "alice".into(),
            ..AuditCtx::default()
        };
        h.state
            .store()
            .add_fido2_key(
                &ctx,
                "lost key",
                &NewCredential {
                    credential_id: other.key.cred_id.clone(),
                    cose_key: other.key.cose_key(),
                    algorithm: Algorithm::Es256,
                    aaguid: other.key.aaguid,
                    counter: 0,
                    user_verified: false,
                    attestation_format: "none".into(),
                },
                NOW,
            )
            .unwrap();
        h.enrol("alice");
        let (id, step) = begin(&h, "alice", "");
        assert_eq!(step.action, Action::Wait);
        let step = h.logins.answer(":1.7", &id, "", NOW).unwrap();
        assert_eq!(
            step,
            Step::prompt(format!("{KEY_NOT_REGISTERED} {PROMPT_WITH_MENU}"))
        );
        assert!(!h.logins.waits_for_key(":1.7", &id));
        let step = h.logins.answer(":1.7", &id, &code(NOW), NOW).unwrap();
        assert_eq!(step.action, Action::Success);
    }

    #[test]
    fn a_key_without_user_presence_is_refused_and_counted() {
        let h = key_harness(Config::default(), Arc::new(device(0)), true);
        h.enrol("alice");
        let (id, _) = begin(&h, "alice", "");
        let step = h.logins.answer(":1.7", &id, "", NOW).unwrap();
        assert_eq!(
            step,
            Step::prompt(format!("{KEY_REFUSED} {PROMPT_WITH_MENU}"))
        );
        let a = &h.audit()[0];
        assert!(a.reason.starts_with("fido2-user-not-present"), "{a:?}");
        assert_eq!(
            h.state
                .store()
                .failures("alice", &Scope::Local, NOW)
                .unwrap()
                .count,
            1
        );
    }

    #[test]
    fn a_counter_going_backwards_is_refused_as_a_possible_clone() {
        let dev = Arc::new(device(UP));
        let h = key_harness(Config::default(), dev.clone(), true);
        let factor = h.state.store().fido2_keys("alice").unwrap()[0]
            .factor_id
            .clone();
        let ctx = AuditCtx {
            user: "alice".into(),
            ..AuditCtx::default()
        };
        // The store has seen counter 100; the key says 1.
        assert!(
            h.state
                .store()
                .fido2_accept(&ctx, &Scope::Local, &factor, 100, NOW)
                .unwrap()
                .0
        );
        let (id, _) = begin(&h, "alice", "");
        let step = h.logins.answer(":1.7", &id, "", NOW).unwrap();
        assert_eq!(step, Step::terminal(Action::Denied, KEY_CLONED));
        assert!(
            h.audit()[0].reason.contains("counter-regression"),
            "{:?}",
            h.audit()[0]
        );
        assert!(
            h.log
                .lines()
                .iter()
                .any(|l| l.contains("counter-regression"))
        );
    }

    #[test]
    fn no_key_plugged_in_says_so_and_offers_the_rest() {
        struct Nothing;
        impl crate::fido2::Authenticator for Nothing {
            fn list(&self) -> Vec<crate::fido2::DeviceInfo> {
                Vec::new()
            }
            fn make_credential(
                &self,
                _: &crate::fido2::DeviceInfo,
                _: &str,
                _: &[u8; 32],
                _: &[u8],
                _: &[crate::fido2::CredId],
                _: &[Algorithm],
                _: crate::fido2::Uv,
                _: Option<&str>,
                _: std::time::Instant,
            ) -> Result<crate::fido2::RawRegistration, crate::fido2::DeviceError> {
                Err(crate::fido2::DeviceError::NotPresent)
            }
            fn get_assertion(
                &self,
                _: &crate::fido2::DeviceInfo,
                _: &str,
                _: &[u8; 32],
                _: &[crate::fido2::CredId],
                _: crate::fido2::Uv,
                _: Option<&str>,
                _: std::time::Instant,
            ) -> Result<crate::fido2::RawAssertion, crate::fido2::DeviceError> {
                Err(crate::fido2::DeviceError::NotPresent)
            }
        }
        let dev = Arc::new(device(UP));
        let Harness {
            state,
            logins,
            log: _log,
            _dir,
        } = key_harness(Config::default(), dev, true);
        drop(logins);
        let state = Arc::try_unwrap(state)
            .ok()
            .unwrap()
            .with_keys(Arc::new(Nothing));
        let state = Arc::new(state);
        let logins = Logins::new(state.clone());
        let (id, step) = logins
            .begin(&root(), "alice", "login", "", "", "", NOW)
            .unwrap();
        assert_eq!(step.action, Action::Wait);
        let step = logins.answer(":1.7", &id, "", NOW).unwrap();
        assert_eq!(
            step,
            Step::terminal(Action::Denied, KEY_NOT_PLUGGED),
            "nothing else"
        );
    }

    #[test]
    fn the_menu_offers_the_key_and_policy_can_ask_for_the_code_first() {
        let mut config = Config::default();
        config.fido2.keys_first = false;
        let h = key_harness(config, Arc::new(device(UP)), true);
        h.enrol("alice");
        let (id, step) = begin(&h, "alice", "");
        assert_eq!(step, Step::prompt(PROMPT_WITH_MENU));
        let menu = h.logins.answer(":1.7", &id, "", NOW).unwrap();
        assert_eq!(
            menu.message,
            "Other ways to sign in:\n  1. Security key\n  2. Authenticator app"
        );
        let step = h.logins.answer(":1.7", &id, "1", NOW).unwrap();
        assert_eq!(step, Step::wait(TOUCH_MESSAGE));
        let step = h.logins.answer(":1.7", &id, "", NOW).unwrap();
        assert_eq!(step.action, Action::Success);
    }

    #[test]
    fn user_verification_asks_the_pin_and_needs_the_uv_flag() {
        let mut config = Config::default();
        config.fido2.user_verification = "required".into();
        let h = key_harness(config.clone(), Arc::new(device(UP | UV)), true);
        let (id, step) = begin(&h, "alice", "");
        assert_eq!(step, Step::prompt(KEY_PIN_PROMPT));
        let step = h.logins.answer(":1.7", &id, "1234", NOW).unwrap();
        assert_eq!(step, Step::wait(TOUCH_MESSAGE));
        let step = h.logins.answer(":1.7", &id, "", NOW).unwrap();
        assert_eq!(step.action, Action::Success);
        // A key that did not verify the user is refused.
        let h = key_harness(config, Arc::new(device(UP)), true);
        let (id, _) = begin(&h, "alice", "");
        h.logins.answer(":1.7", &id, "1234", NOW).unwrap();
        let step = h.logins.answer(":1.7", &id, "", NOW).unwrap();
        assert_eq!(step, Step::terminal(Action::Denied, KEY_REFUSED));
        assert!(
            h.audit()[0].reason.starts_with("fido2-user-not-verified"),
            "{:?}",
            h.audit()[0]
        );
    }

    #[test]
    fn remote_guessing_locks_its_source_then_the_remote_path_never_the_console() {
        let mut config = Config::default();
        config.login.max_tries = 5;
        config.lockout.max_failures = 3;
        config.lockout.remote_max_failures = 6;
        let h = harness_with(config);
        h.enrol("alice");
        let guess = |rhost: &str| {
            let (id, step) = begin(&h, "alice", rhost);
            if step.action != Action::Prompt {
                return step;
            }
            loop {
                let s = h.logins.answer(":1.7", &id, &wrong(NOW), NOW).unwrap();
                if s.action.is_terminal() {
                    return s;
                }
            }
        };
        assert_eq!(guess("192.0.2.1").action, Action::Locked);
        assert_eq!(
            guess("192.0.2.1").action,
            Action::Locked,
            "that source stays locked"
        );
        // Another source still gets asked, until the path as a whole is locked.
        assert_eq!(guess("::ffff:192.0.2.2").action, Action::Locked);
        let (_, step) = begin(&h, "alice", "198.51.100.7");
        assert_eq!(step.action, Action::Locked, "remote path locked");
        assert!(step.message.contains("more minutes"));
        // The console is untouched.
        let (id, step) = begin(&h, "alice", "");
        assert_eq!(step, Step::prompt(PROMPT));
        let step = h.logins.answer(":1.7", &id, &code(NOW), NOW).unwrap();
        assert_eq!(step.action, Action::Success);
    }

    #[test]
    fn only_root_or_the_user_may_begin() {
        let h = harness();
        h.enrol("alice");
        let alice = Caller {
            bus_name: ":1.9".into(),
            uid: 1000,
            session: NO_SESSION,
        };
        assert!(
            h.logins
                .begin(&alice, "alice", "xscreensaver", "", ":0", "", NOW)
                .is_ok()
        );
        for user in ["bob", "root", "nosuchuser"] {
            let e = h
                .logins
                .begin(&alice, user, "xscreensaver", "", ":0", "", NOW)
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
                .begin(&root(), user, service, rhost, tty, "", NOW)
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
            session: NO_SESSION,
        };
        h.logins
            .begin(&other, "alice", "sshd", "", "", "", NOW + 100)
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
            .begin(&root(), "alice", "sshd", "", "", "", NOW)
            .unwrap_err();
        assert!(matches!(e, HerarxError::Busy(_)));
        let other = Caller {
            bus_name: ":1.8".into(),
            uid: 0,
            session: NO_SESSION,
        };
        assert!(
            h.logins
                .begin(&other, "alice", "sshd", "", "", "", NOW)
                .is_ok()
        );
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
    fn a_service_can_count_as_remote_whatever_its_rhost() {
        let config = Config::parse("[services.sshd]\nalways_remote = true\n").unwrap();
        config.validate().unwrap();
        let h = harness_with(config);
        h.enrol("alice");
        let (id, _) = h
            .logins
            .begin(&root(), "alice", "sshd", "127.0.0.1", "", "", NOW)
            .unwrap();
        h.logins.answer(":1.7", &id, &wrong(NOW), NOW).unwrap();
        assert!(h.audit()[0].remote, "audited as remote");
        assert_eq!(
            h.state
                .store()
                .failures("alice", &Scope::Remote("127.0.0.1".into()), NOW)
                .unwrap()
                .count,
            1
        );
        assert_eq!(
            h.state
                .store()
                .failures("alice", &Scope::Local, NOW)
                .unwrap()
                .count,
            0
        );
        // Other services from loopback stay local.
        let (id, _) = h
            .logins
            .begin(&root(), "alice", "login", "127.0.0.1", "", "", NOW)
            .unwrap();
        h.logins.answer(":1.7", &id, &wrong(NOW), NOW).unwrap();
        assert_eq!(
            h.state
                .store()
                .failures("alice", &Scope::Local, NOW)
                .unwrap()
                .count,
            1
        );
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
            .begin(&root(), "alice", service, rhost, "", "", NOW)
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
            session: NO_SESSION,
        };
        let e = h
            .logins
            .begin(&bob, "alice", "xscreensaver", "10.20.3.4", ":0", "", NOW)
            .unwrap_err();
        assert!(matches!(e, HerarxError::PermissionDenied(_)), "{e:?}");
        assert_eq!(h.audit()[0].result, AuditResult::Refused);
        // The user's own screen locker from a trusted address is let through.
        let (_, step) = h
            .logins
            .begin(&bob, "bob", "xscreensaver", "10.20.3.4", ":0", "", NOW)
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
