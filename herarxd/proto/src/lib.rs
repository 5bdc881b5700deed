//! The Herarx D-Bus contract, shared by `herarxd`, `pam_herarx.so` and `herarxctl`.
//!
//! One bus name, one object, two interfaces:
//! - `org.herarx.Herarx1.Auth`: the login transaction that the PAM module runs. The daemon
//!   drives it: `Begin` answers with the first [`Step`], every `Answer` with the next one, until
//!   a terminal step. A transaction belongs to the bus connection that began it.
//! - `org.herarx.Herarx1.Factors`: self-service for the *calling* user (status, TOTP
//!   enrolment, removal). The daemon learns who calls from the bus, never from an argument.
//!
//! Errors travel as `org.herarx.Herarx1.Error.<Name>` and map to [`HerarxError`].
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde::{Deserialize, Serialize};
use zbus::Type;

pub const BUS_NAME: &str = "org.herarx.Herarx1";
pub const OBJECT_PATH: &str = "/org/herarx/Herarx1";
pub const AUTH_INTERFACE: &str = "org.herarx.Herarx1.Auth";
pub const FACTORS_INTERFACE: &str = "org.herarx.Herarx1.Factors";
pub const ADMIN_INTERFACE: &str = "org.herarx.Herarx1.Admin";
pub const ERROR_PREFIX: &str = "org.herarx.Herarx1.Error";

/// The system bus socket. The PAM module uses this fixed path (or its `bus=` argument) and never
/// the environment: inside `su` or `pkexec` the environment belongs to the caller.
pub const SYSTEM_BUS_ADDRESS: &str = "unix:path=/run/dbus/system_bus_socket";

/// Upper bounds on what the daemon accepts, so no caller can make it hold unbounded input.
pub mod limits {
    pub const USER_MAX: usize = 256;
    pub const SERVICE_MAX: usize = 128;
    pub const RHOST_MAX: usize = 256;
    pub const TTY_MAX: usize = 128;
    /// `SSH_AUTH_INFO_0`: a few lines of methods and public keys (an RSA-8192 key is ~1.4 KB).
    pub const SSH_AUTH_INFO_MAX: usize = 8192;
    pub const ANSWER_MAX: usize = 64;
    pub const FACTOR_NAME_MAX: usize = 64;
    pub const ID_MAX: usize = 64;
    /// A module never runs more steps than this in one transaction, whatever the daemon says.
    pub const STEPS_MAX: u32 = 16;
    /// Rows one `Admin.List` or `Admin.Log` call returns at most.
    pub const PAGE_MAX: u32 = 1000;
    /// The longest the module waits for the reply to the `Answer` after a `Wait` step (the
    /// daemon's touch timeout is at most 120 s).
    pub const WAIT_MAX_SECONDS: u64 = 130;
    /// Bytes of a step's `message` (a QR code in block characters fits with room to spare).
    pub const MESSAGE_MAX: usize = 16 * 1024;
}

/// What the module must do next in a login transaction.
#[derive(Serialize, Deserialize, Type, Debug, Clone, Copy, PartialEq, Eq)]
#[zbus(signature = "s")]
pub enum Action {
    /// No second factor is required for this login (policy): the module returns `PAM_IGNORE`.
    Skip,
    /// Ask the user, with echo off, the step's `prompt`; send the reply with `Answer`.
    Prompt,
    /// Ask with echo on (a menu choice, "press Enter"): nothing secret is typed here.
    PromptVisible,
    /// Show `message` (e.g. "Touch your security key."), then call `Answer` with an empty
    /// response at once, without asking anything: the daemon is waiting for something outside
    /// the conversation (a security-key touch) and replies when it happened or timed out,
    /// within [`limits::WAIT_MAX_SECONDS`].
    Wait,
    /// Verified: `PAM_SUCCESS`.
    Success,
    /// Refused (wrong answers, no usable factor): `PAM_AUTH_ERR`.
    Denied,
    /// Locked out or out of tries: `PAM_MAXTRIES`.
    Locked,
}

impl Action {
    /// Whether the transaction is over after this step.
    pub fn is_terminal(self) -> bool {
        !matches!(self, Action::Prompt | Action::PromptVisible | Action::Wait)
    }
}

/// One step of a login transaction.
///
/// For [`Action::Prompt`] and [`Action::PromptVisible`], `prompt` is the whole question: the
/// daemon folds any short hint ("Wrong code.") into it, because under sshd informational text
/// only appears with the next prompt. A non-empty `message` is longer text to read first (an
/// enrolment QR code, backup codes, a method menu): the module shows it as an informational
/// message right before the prompt, so under sshd both arrive in one keyboard-interactive
/// round. For a terminal action, `message` is a sentence for the user (shown as an error
/// message for Denied/Locked, informational otherwise, unless the application asked for
/// silence).
#[derive(Serialize, Deserialize, Type, Clone, PartialEq, Eq)]
pub struct Step {
    pub action: Action,
    pub prompt: String,
    pub message: String,
    /// For [`Action::Success`] after a verified second factor, when session trust is on: an
    /// opaque one-time ticket the module hands back to `OpenSession` from its session hook, so
    /// that later logins from inside that session can skip the second factor. Empty otherwise.
    pub ticket: String,
}

/// Never the ticket: a `{:?}` in a log line must not hand out a session's trust.
impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step")
            .field("action", &self.action)
            .field("prompt", &self.prompt)
            // The message may carry an enrolment's key and URI, or new backup codes.
            .field("message", &format_args!("({} bytes)", self.message.len()))
            .field(
                "ticket",
                &if self.ticket.is_empty() {
                    ""
                } else {
                    "(redacted)"
                },
            )
            .finish()
    }
}

impl Step {
    pub fn prompt(prompt: impl Into<String>) -> Self {
        Step {
            action: Action::Prompt,
            prompt: prompt.into(),
            message: String::new(),
            ticket: String::new(),
        }
    }

    /// A prompt with echo on (nothing secret is typed).
    pub fn prompt_visible(prompt: impl Into<String>) -> Self {
        Step {
            action: Action::PromptVisible,
            prompt: prompt.into(),
            message: String::new(),
            ticket: String::new(),
        }
    }

    /// A `Wait` step: show `message`, then answer at once and wait for the daemon's reply.
    pub fn wait(message: impl Into<String>) -> Self {
        Step {
            action: Action::Wait,
            prompt: String::new(),
            message: message.into(),
            ticket: String::new(),
        }
    }

    /// The same step with `message` to read before the prompt.
    pub fn with_message(self, message: impl Into<String>) -> Self {
        Step {
            message: message.into(),
            ..self
        }
    }

    pub fn terminal(action: Action, message: impl Into<String>) -> Self {
        Step {
            action,
            prompt: String::new(),
            message: message.into(),
            ticket: String::new(),
        }
    }

    /// The same step carrying a session ticket.
    pub fn with_ticket(self, ticket: impl Into<String>) -> Self {
        Step {
            ticket: ticket.into(),
            ..self
        }
    }
}

/// An enrolled factor as its owner (or an admin) sees it. Never carries secret material.
#[derive(Serialize, Deserialize, Type, Debug, Clone, PartialEq, Eq)]
pub struct FactorInfo {
    /// Stable identifier, used by `remove`.
    pub id: String,
    /// `totp`, `fido2`, `email` or `sms`. Backup codes are not factors: see
    /// `backup_codes_left`.
    pub kind: String,
    pub name: String,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds of the last accepted use, 0 when never used.
    pub last_used: u64,
    /// The method the login offers first.
    pub primary: bool,
    /// For `email` and `sms`: the address or number, masked (`j***@example.com`,
    /// `+44 ••• ••• 123`). Empty for other kinds.
    pub detail: String,
}

/// The caller's own state, for `herarxctl status`.
#[derive(Serialize, Deserialize, Type, Debug, Clone, PartialEq, Eq)]
pub struct UserStatus {
    pub user: String,
    pub factors: Vec<FactorInfo>,
    /// Unused backup codes.
    pub backup_codes_left: u32,
    /// Failed attempts counted in the current window (local logins).
    pub failures: u32,
    /// Unix seconds until which local logins are refused; 0 when not locked.
    pub locked_until: u64,
    /// Unix seconds until which remote logins are refused (from every address); 0 when not.
    pub remote_locked_until: u64,
    /// Whether policy requires this user to have a second factor.
    pub required: bool,
    /// What happens at login while this user has no factor: `enroll`, `deny` or `allow`.
    pub no_factor_policy: String,
    /// Whether the user opted in to "only ask from new addresses".
    pub remember_addresses: bool,
    /// Remote addresses and SSH keys a login remembers, so that it does not ask again.
    pub remembered: Vec<RememberedInfo>,
}

/// A remote address or an SSH key that logins remember after a second factor.
#[derive(Serialize, Deserialize, Type, Debug, Clone, PartialEq, Eq)]
pub struct RememberedInfo {
    /// `address` or `ssh-key`.
    pub kind: String,
    /// The address, or the key's `SHA256:` fingerprint.
    pub value: String,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds after which it is asked again.
    pub expires: u64,
}

/// One counter of failed attempts, as an admin sees it.
#[derive(Serialize, Deserialize, Type, Debug, Clone, PartialEq, Eq)]
pub struct LockInfo {
    /// `local`, `remote` (every remote address together) or `remote:<address>`.
    pub scope: String,
    pub failures: u32,
    /// Unix seconds; 0 when not locked.
    pub locked_until: u64,
}

/// A user's whole state, for `herarxctl admin status USER`. Never carries secret material.
#[derive(Serialize, Deserialize, Type, Debug, Clone, PartialEq, Eq)]
pub struct AdminUserStatus {
    pub user: String,
    /// Whether the name is an account on this host.
    pub exists: bool,
    pub factors: Vec<FactorInfo>,
    pub backup_codes_left: u32,
    /// Counters that still count (ended ones are left out).
    pub locks: Vec<LockInfo>,
    /// Whether policy requires a second factor of this user.
    pub required: bool,
    /// What a login of this user without a factor gets: `enroll`, `deny` or `allow`.
    pub no_factor_policy: String,
    /// One sentence saying why (`member of group wheel`, `everyone`, `exempt: group ci`).
    pub policy_reason: String,
}

/// One line of `herarxctl admin list`.
#[derive(Serialize, Deserialize, Type, Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    pub user: String,
    /// Number of factors (backup codes not counted).
    pub factors: u32,
    /// Kinds of those factors, comma-separated (`totp,fido2`).
    pub kinds: String,
    pub backup_codes_left: u32,
    /// Whether any scope is locked now.
    pub locked: bool,
    /// Unix seconds of the last accepted use of any factor; 0 when never.
    pub last_used: u64,
}

/// One row of the audit trail.
#[derive(Serialize, Deserialize, Type, Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Row number, increasing: `Admin.Log` pages backwards from `before`.
    pub id: u64,
    /// Unix seconds.
    pub time: u64,
    pub user: String,
    /// The uid that made the call (root for sshd, the user for self-service).
    pub caller_uid: u32,
    pub service: String,
    pub rhost: String,
    pub remote: bool,
    pub method: String,
    /// `success`, `denied`, `locked`, `skip`, `refused`, `enrolled`, ...
    pub result: String,
    pub reason: String,
}

/// A TOTP enrolment that waits for its confirmation code.
#[derive(Serialize, Deserialize, Type, Clone, PartialEq, Eq)]
pub struct PendingEnrollment {
    pub id: String,
    /// `otpauth://totp/...` with the secret: shown to the user once, never logged.
    pub uri: String,
    /// Unix seconds after which the enrolment is discarded.
    pub expires: u64,
}

/// Never the URI: it carries the secret, and a `{:?}` must not leak it into a log.
impl std::fmt::Debug for PendingEnrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingEnrollment")
            .field("id", &self.id)
            .field("uri", &"(redacted)")
            .field("expires", &self.expires)
            .finish()
    }
}

/// Every error the daemon returns, by its D-Bus name `org.herarx.Herarx1.Error.<Variant>`.
/// The string is a sentence for a person: what is wrong and what to do.
#[derive(Debug, Clone, PartialEq, zbus::DBusError)]
#[zbus(prefix = "org.herarx.Herarx1.Error", impl_display = true)]
pub enum HerarxError {
    /// Transport failure or an error name outside this contract.
    #[zbus(error)]
    ZBus(zbus::Error),
    /// The caller may not do this (for example act on another user's account).
    PermissionDenied(String),
    /// The caller already has a factor: a fresh code from one of them is needed.
    StepUpRequired(String),
    /// A code did not verify (wrong, too old, or already used).
    WrongCode(String),
    /// Too many failures: the account is locked for a while.
    Locked(String),
    NoSuchTransaction(String),
    NoSuchFactor(String),
    NoSuchEnrollment(String),
    /// An argument is malformed or too long.
    InvalidArgument(String),
    /// Too many transactions or enrolments under way.
    Busy(String),
    /// The daemon failed inside (store unreadable, ...). Details are in its log.
    Internal(String),
}

/// The login transaction, called by the PAM module (as root, or as the user being
/// authenticated, e.g. a screen locker).
#[zbus::proxy(
    interface = "org.herarx.Herarx1.Auth",
    default_service = "org.herarx.Herarx1",
    default_path = "/org/herarx/Herarx1"
)]
pub trait Auth {
    /// Starts a transaction for `user`. `service`, `rhost` and `tty` are what PAM reports
    /// (empty when unset); `ssh_auth_info` is `SSH_AUTH_INFO_0` from the PAM environment
    /// (empty when unset), which the daemon believes only for the services policy names.
    /// The daemon decides for itself whether the login is remote.
    /// Returns the transaction id and the first step.
    fn begin(
        &self,
        user: &str,
        service: &str,
        rhost: &str,
        tty: &str,
        ssh_auth_info: &str,
    ) -> Result<(String, Step), HerarxError>;

    /// Answers the current prompt of a transaction begun on this connection.
    fn answer(&self, transaction: &str, response: &str) -> Result<Step, HerarxError>;

    /// Abandons a transaction (the user cancelled the conversation).
    fn cancel(&self, transaction: &str) -> Result<(), HerarxError>;

    /// From the module's session hook, as root: trusts the caller's login session (its kernel
    /// audit session id) for `user`, given the ticket of the login that passed the second
    /// factor. Returns whether the session is now trusted.
    fn open_session(&self, user: &str, ticket: &str) -> Result<bool, HerarxError>;

    /// From the module's session hook at logout: ends the trust of the caller's session when
    /// the caller is the process that opened it. Returns whether a trust ended.
    fn close_session(&self, user: &str) -> Result<bool, HerarxError>;
}

/// Self-service on the calling user's own factors.
#[zbus::proxy(
    interface = "org.herarx.Herarx1.Factors",
    default_service = "org.herarx.Herarx1",
    default_path = "/org/herarx/Herarx1"
)]
pub trait Factors {
    /// The caller's factors, lockout state and the policy that applies.
    fn status(&self) -> Result<UserStatus, HerarxError>;

    /// Starts a TOTP enrolment named `name` (empty: a default name). When the caller already
    /// has a factor, `step_up_code` must be a fresh code from one of them or a backup code
    /// (empty otherwise). `replace` is empty to add a factor, or the id of a factor that the
    /// confirmation removes in the same transaction (moving to a new phone).
    fn begin_totp_enrollment(
        &self,
        name: &str,
        step_up_code: &str,
        replace: &str,
    ) -> Result<PendingEnrollment, HerarxError>;

    /// Completes an enrolment with a code from the new authenticator. The code is consumed:
    /// it cannot be used again to log in.
    fn confirm_totp_enrollment(&self, id: &str, code: &str) -> Result<FactorInfo, HerarxError>;

    /// Removes one of the caller's factors; `step_up_code` is a fresh code from any of them.
    fn remove_factor(&self, id: &str, step_up_code: &str) -> Result<(), HerarxError>;

    /// Makes a new set of backup codes (the old set stops working) and returns it, once.
    /// `step_up_code` as for enrolment.
    fn generate_backup_codes(&self, step_up_code: &str) -> Result<Vec<String>, HerarxError>;

    /// Makes factor `id` the method the login offers first.
    fn set_primary(&self, id: &str) -> Result<(), HerarxError>;

    /// Renames factor `id`.
    fn rename_factor(&self, id: &str, name: &str) -> Result<FactorInfo, HerarxError>;

    /// Turns "only ask from new addresses" on or off for the caller (when policy allows it).
    /// Off also forgets the remembered addresses.
    fn set_remember_addresses(&self, on: bool) -> Result<(), HerarxError>;

    /// Forgets every address and SSH key remembered for the caller. Returns how many.
    fn forget(&self) -> Result<u32, HerarxError>;

    /// Registers a security key plugged into this machine, named `name`, after the user
    /// touches it (and gives its PIN when policy or the key requires one: `pin`, else empty).
    /// The daemon talks to the key and verifies the registration itself. When the caller
    /// already has a factor, `step_up_code` must be a fresh code or a backup code; or, when it
    /// is empty and the caller has a security key, a touch of one of their keys (asked first).
    /// Waits for the touches, up to the policy's timeout each.
    fn add_security_key(
        &self,
        name: &str,
        step_up_code: &str,
        pin: &str,
    ) -> Result<FactorInfo, HerarxError>;

    /// Starts adding an email address (`kind` "email") or a phone number in E.164 form
    /// ("sms"): the daemon validates it and sends a code there, to be given to
    /// `confirm_contact_enrollment`. `step_up_code` and `replace` as for a TOTP enrolment.
    /// Returns the pending enrolment's id and the destination, masked.
    fn begin_contact_enrollment(
        &self,
        kind: &str,
        destination: &str,
        name: &str,
        step_up_code: &str,
        replace: &str,
    ) -> Result<(String, String), HerarxError>;

    /// Completes an email or SMS enrolment with the code sent there.
    fn confirm_contact_enrollment(&self, id: &str, code: &str) -> Result<FactorInfo, HerarxError>;

    /// Sends a code for a step-up to the caller's email or SMS factor `id` (empty: the first
    /// one this host can send to); it then works once, for a few minutes, wherever a step-up
    /// code is asked. Returns the destination, masked.
    fn send_code(&self, id: &str) -> Result<String, HerarxError>;
}

/// Admin actions: the caller must be root or a member of the configured admin group, checked
/// from the caller's uid at each call. An admin can see and clear, never enrol.
#[zbus::proxy(
    interface = "org.herarx.Herarx1.Admin",
    default_service = "org.herarx.Herarx1",
    default_path = "/org/herarx/Herarx1"
)]
pub trait Admin {
    /// Everything about `user` except secrets.
    fn user_status(&self, user: &str) -> Result<AdminUserStatus, HerarxError>;

    /// Removes all of `user`'s factors, backup codes, remembered state and lockouts. Returns
    /// how many factors were removed. The no-factor policy applies at the next login.
    fn reset(&self, user: &str) -> Result<u32, HerarxError>;

    /// Clears `user`'s failure counters and lockouts. Returns how many counters were cleared.
    fn unlock(&self, user: &str) -> Result<u32, HerarxError>;

    /// Users with any state, by name, after `after` (empty: from the start), at most `limit`
    /// (capped at `limits::PAGE_MAX`).
    fn list(&self, after: &str, limit: u32) -> Result<Vec<UserSummary>, HerarxError>;

    /// Audit rows, newest first: of `user` (empty: everyone), at or after `since` (unix
    /// seconds), with an id below `before` (0: no bound), at most `limit`.
    fn log(
        &self,
        user: &str,
        since: u64,
        before: u64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, HerarxError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::DBusError;

    #[test]
    fn error_names_carry_the_contract_prefix() {
        let e = HerarxError::PermissionDenied("no".into());
        assert_eq!(
            e.name().as_str(),
            "org.herarx.Herarx1.Error.PermissionDenied"
        );
        let e = HerarxError::Locked("later".into());
        assert_eq!(e.name().as_str(), "org.herarx.Herarx1.Error.Locked");
    }

    #[test]
    fn action_travels_as_a_string() {
        assert_eq!(Action::SIGNATURE, "s");
        assert_eq!(Step::SIGNATURE, "(ssss)");
    }

    #[test]
    fn debug_output_never_shows_a_session_ticket() {
        let step = Step::terminal(Action::Success, "").with_ticket("0123456789abcdef");
        let shown = format!("{step:?}");
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        assert!(shown.contains("(redacted)"), "{shown}");
    }

    #[test]
    fn debug_output_never_shows_the_enrolment_uri() {
        let p = PendingEnrollment {
            id: "abc".into(),
            uri: "otpauth://totp/X:u?secret=JBSWY3DPEHPK3PXP".into(),
            expires: 1,
        };
        let shown = format!("{p:?}");
        assert!(shown.contains("abc"), "{shown}");
        assert!(
            !shown.contains("JBSWY3DPEHPK3PXP") && !shown.contains("otpauth"),
            "{shown}"
        );
    }

    #[test]
    fn only_prompt_continues_a_transaction() {
        assert!(!Action::Prompt.is_terminal());
        assert!(!Action::PromptVisible.is_terminal());
        assert!(!Action::Wait.is_terminal());
        for a in [
            Action::Skip,
            Action::Success,
            Action::Denied,
            Action::Locked,
        ] {
            assert!(a.is_terminal(), "{a:?}");
        }
    }
}
