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

use crate::store::FactorKind;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use herarx_proto::{Action, HerarxError, Step, limits};
use zeroize::Zeroizing;

use crate::crypto::totp::Rejection;
use crate::factors::requirement::{self, NoFactor, Origin};
use crate::logger::Severity;
use crate::state::{State, printable, valid_text};
use crate::store::backup_codes::FEW_LEFT;
use crate::store::verify::{Accept, VerifyOutcome};
use crate::store::{AuditCtx, AuditResult, Scope, random_hex};
use crate::users::{Account, Lookup};

mod enrol;
pub(crate) mod enrol_text;
mod keys;
mod remember;
mod sent;
pub mod ssh_info;
mod table;

use table::Table;
pub use table::{
    Limits, NON_ROOT_TIMEOUT_SECONDS, TXNS_MAX, TXNS_PER_CONNECTION_MAX, TXNS_PER_UID_MAX,
    TXNS_ROOT_RESERVED,
};

use sent::sending;
pub use sent::{SENT_PROMPT, SENT_PROMPT_AFTER_EXPIRED, SENT_PROMPT_AFTER_WRONG};

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
/// After the touch, when policy wants key and code both.
pub const KEY_THEN_CODE_PROMPT: &str = "Security key accepted. Verification code: ";
pub const KEY_THEN_BACKUP_PROMPT: &str = "Security key accepted. Backup code: ";
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

/// Who calls, as the bus says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The sender's unique bus name (`:1.42`).
    pub bus_name: String,
    pub uid: u32,
    /// The kernel audit session id of the calling process ([`NO_SESSION`] when it has none or
    /// was not looked up because session trust is off).
    pub session: u32,
    /// The calling process's login uid (`/proc/PID/loginuid`, set by `pam_loginuid` at the
    /// login that began its session and inherited by every process of it); `None` when unset
    /// or not looked up. Session trust holds only where it is the user's own uid.
    pub login_uid: Option<u32>,
    /// Whether this caller may drive the security keys plugged into this machine: root (the
    /// login path) always; anyone else (a screen locker) only from a local login session of
    /// its own (`crate::bus::local_session`). Otherwise its logins are not offered a key.
    pub keys_allowed: bool,
}

/// What a user can answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Methods {
    totp: bool,
    backup_codes: u32,
    /// Security keys offered here (0 for remote logins: never a touch at the server).
    keys: usize,
    /// Keys need their PIN (policy `fido2.user_verification = "required"`).
    key_pin: bool,
    /// Ask for the touch first (policy `fido2.keys_first`).
    keys_first: bool,
    /// The touch and then a code, both (policy `fido2.key_alone = false`).
    key_then_code: bool,
    /// Email and SMS factors offered here (the list is the transaction's `contacts`).
    contacts: usize,
    /// Which kinds of them: a code sent by a kind this login does not offer is refused.
    email: bool,
    sms: bool,
    /// The primary method is one of them: its code is sent at the start of the login.
    contact_first: bool,
}

impl Methods {
    fn any(self) -> bool {
        self.totp || self.backup_codes > 0 || self.keys > 0 || self.contacts > 0
    }

    /// Whether anything but a key is left to fall back to.
    fn codes(self) -> bool {
        self.totp || self.backup_codes > 0 || self.contacts > 0
    }

    /// What the code prompts accept.
    fn accept(self) -> Accept {
        Accept {
            totp: self.totp,
            backup_codes: self.backup_codes > 0,
            email: self.email,
            sms: self.sms,
        }
    }

    /// The stage and step that ask for a key.
    fn key_step(self) -> (Stage, Step) {
        if self.key_pin {
            (Stage::KeyPin, Step::prompt(KEY_PIN_PROMPT))
        } else {
            (Stage::KeyTouch { pin: None }, Step::wait(TOUCH_MESSAGE))
        }
    }

    /// The first stage and step of a login. `Stage::Send` with no factor id means: the
    /// primary contact's code is sent next (see `first_run`).
    fn first(self) -> (Stage, Step) {
        if self.keys > 0 && (self.keys_first || !self.codes() || self.key_then_code) {
            self.key_step()
        } else if self.contacts > 0
            && (self.contact_first || (!self.totp && self.backup_codes == 0))
        {
            (
                Stage::Send {
                    factor_id: String::new(),
                },
                Step::prompt(""),
            )
        } else if self.totp {
            (Stage::Code, self.first_prompt())
        } else {
            (Stage::BackupCode, self.first_prompt())
        }
    }

    /// The menu: `(what it leads to, line)`.
    fn menu(self, contacts: &[ContactChoice]) -> Vec<(Stage, String)> {
        let mut items = Vec::new();
        // With key and code both required, the key cannot be swapped for a code.
        if self.key_then_code {
            return items;
        }
        if self.keys > 0 {
            items.push((self.key_step().0, "Security key".to_owned()));
        }
        if self.totp {
            items.push((Stage::Code, "Authenticator app".to_owned()));
        }
        for c in contacts.iter().take(self.contacts) {
            items.push((
                Stage::Send {
                    factor_id: c.factor_id.clone(),
                },
                c.menu_line(),
            ));
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
        } else if self.backup_codes > 0 || self.keys > 0 || self.contacts > 0 {
            Step::prompt(PROMPT_WITH_MENU)
        } else {
            Step::prompt(PROMPT)
        }
    }
}

/// Where a transaction stands. No `Debug`: `KeyTouch` holds the key's PIN.
#[derive(Clone, PartialEq, Eq)]
enum Stage {
    /// Asking for a code from the app (a backup code is accepted too).
    Code,
    /// Asking for a backup code (a code from the app is accepted too).
    BackupCode,
    /// The method menu is shown; Enter goes back to `back`.
    Menu { back: Box<Stage> },
    /// A `Wait` step was sent: the next (empty) answer sends a code to this email or SMS
    /// factor, so that the seconds a mail server or gateway may take are spent in the call
    /// the module allows long for (also the menu's choice of it).
    Send { factor_id: String },
    /// A code was sent to `masked`: asking for it (any other code is accepted too).
    SentCode { masked: String },
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
    /// Its `caller_uid` (the bus's word for who began it) is what the per-uid quota counts.
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
    /// The email and SMS factors this login offers.
    contacts: Vec<ContactChoice>,
    /// When this login last sent a code.
    last_sent: Option<u64>,
}

/// An email or SMS factor a login offers, its destination masked.
#[derive(Clone, PartialEq, Eq)]
struct ContactChoice {
    factor_id: String,
    kind: FactorKind,
    masked: String,
}

impl ContactChoice {
    fn menu_line(&self) -> String {
        if self.kind == FactorKind::Email {
            format!("Email a code to {}", self.masked)
        } else {
            format!("Text a code to {}", self.masked)
        }
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
        Stage::SentCode { .. } => Step::prompt(SENT_PROMPT),
        Stage::KeyPin => Step::prompt(KEY_PIN_PROMPT),
        Stage::KeyTouch { .. } => Step::wait(TOUCH_MESSAGE),
        _ => methods.first_prompt(),
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
    /// A transaction.
    Run(Box<Run>),
}

/// A transaction to create: its stage, first step, and what to remember if it passes.
struct Run {
    stage: Stage,
    methods: Methods,
    step: Step,
    remember: Vec<(&'static str, String, u64)>,
    contacts: Vec<ContactChoice>,
    last_sent: Option<u64>,
}

impl Logins {
    pub fn new(state: Arc<State>) -> Self {
        Self::with_limits(state, Limits::default())
    }

    /// With other capacity limits (tests: small ones).
    pub fn with_limits(state: Arc<State>, limits: Limits) -> Self {
        Logins {
            state,
            table: Mutex::new(Table::with_limits(limits)),
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

    /// What this login needs, from policy and the store: the heart of `begin`.
    fn decide(
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

    /// Answers the current prompt of transaction `id`, begun by `bus_name`.
    pub fn answer(
        &self,
        bus_name: &str,
        id: &str,
        response: &str,
        now: u64,
    ) -> Result<Step, HerarxError> {
        let (ctx, scope, stage, methods, contacts, last_sent) = {
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
                return Ok(Step::terminal(Action::Denied, TIMED_OUT));
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
                return Ok(Step::terminal(Action::Denied, TOO_MANY_STEPS));
            }
            txn.checking = true;
            txn.steps += 1;
            (
                txn.ctx.clone(),
                txn.scope.clone(),
                txn.stage.clone(),
                txn.methods,
                txn.contacts.clone(),
                txn.last_sent,
            )
        };
        // An overlong answer is no code: checked (and counted) as a malformed one.
        let response = if response.len() <= limits::ANSWER_MAX {
            response
        } else {
            "-"
        };
        let next = match stage {
            Stage::Code | Stage::BackupCode | Stage::SentCode { .. } => {
                self.answer_code(id, &ctx, &scope, &stage, methods, &contacts, response, now)
            }
            Stage::Menu { back } => {
                Ok(self.answer_menu(*back, methods, &contacts, last_sent, response, now))
            }
            Stage::Send { factor_id } => {
                self.answer_send(id, &ctx, &factor_id, methods, &contacts, last_sent, now)
            }
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

    /// A code (from the app, a backup code, or a code sent by email or text) at a code
    /// prompt.
    #[allow(clippy::too_many_arguments)]
    fn answer_code(
        &self,
        id: &str,
        ctx: &AuditCtx,
        scope: &Scope,
        stage: &Stage,
        methods: Methods,
        contacts: &[ContactChoice],
        response: &str,
        now: u64,
    ) -> Result<Next, HerarxError> {
        // An empty answer (or `?`) asks for the other ways in, when there are any; it is no
        // attempt at a code, so it is not counted. After a code was sent, the menu is where a
        // new one is asked for, even when it is the only way.
        let wants_menu = response.trim().is_empty() || response.trim() == "?";
        if wants_menu {
            let items = methods.menu(contacts);
            let sent = matches!(stage, Stage::SentCode { .. });
            if items.len() > 1 || (sent && !items.is_empty()) {
                return Ok(Next::Continue(
                    Stage::Menu {
                        back: Box::new(stage.clone()),
                    },
                    menu_step(&items, None),
                ));
            }
            // Nothing to switch to: an empty answer is a try without a code. It uses up one
            // of the login's tries (a client that answers empty forever ends like one that
            // answers wrong), but no failure is counted towards the lockout.
            if !self.use_try(id) {
                self.record(&ctx.entry(
                    now,
                    FactorKind::Totp,
                    AuditResult::Denied,
                    "no code given",
                ));
                return Ok(Next::Done(Step::terminal(Action::Denied, NO_CODE_GIVEN)));
            }
            return Ok(Next::Continue(stage.clone(), prompt_of(stage, methods)));
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
        let (outcome, entry) = verified.map_err(|e| self.state.internal("checking a code", &e))?;
        self.state.log.audit(&entry);
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
            VerifyOutcome::Rejected { reason, .. } => {
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
        })
    }

    /// The alerts a wrong second factor may raise: the count reaching
    /// `alerts.failed_second_factor` (the password was right, unless the PAM stack lets a
    /// wrong one through to this module), and a lock that just began.
    fn alert_failures(
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
    fn answer_menu(
        &self,
        back: Stage,
        methods: Methods,
        contacts: &[ContactChoice],
        last_sent: Option<u64>,
        response: &str,
        now: u64,
    ) -> Next {
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
        self.table().drop_owner(bus_name)
    }

    /// Drops transactions past their deadline. Returns how many.
    pub fn prune(&self, now: u64) -> usize {
        self.table().prune(now)
    }

    fn record(&self, entry: &crate::store::AuditEntry) {
        self.state.record(entry);
    }
}

#[cfg(test)]
pub(crate) mod tests;

#[cfg(test)]
mod sent_tests;
