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
    pub const ANSWER_MAX: usize = 64;
    pub const FACTOR_NAME_MAX: usize = 64;
    pub const ID_MAX: usize = 64;
    /// A module never runs more steps than this in one transaction, whatever the daemon says.
    pub const STEPS_MAX: u32 = 16;
}

/// What the module must do next in a login transaction.
#[derive(Serialize, Deserialize, Type, Debug, Clone, Copy, PartialEq, Eq)]
#[zbus(signature = "s")]
pub enum Action {
    /// No second factor is required for this login (policy): the module returns `PAM_IGNORE`.
    Skip,
    /// Ask the user, with echo off, the step's `prompt`; send the reply with `Answer`.
    Prompt,
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
        !matches!(self, Action::Prompt)
    }
}

/// One step of a login transaction.
///
/// For [`Action::Prompt`], `prompt` is the whole text to show: the daemon folds any message
/// ("Wrong code.") into it, because under sshd informational text only appears with the next
/// prompt. For a terminal action, `message` is a sentence for the user (shown as an error
/// message unless the application asked for silence); it never contains a secret.
#[derive(Serialize, Deserialize, Type, Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub action: Action,
    pub prompt: String,
    pub message: String,
}

impl Step {
    pub fn prompt(prompt: impl Into<String>) -> Self {
        Step {
            action: Action::Prompt,
            prompt: prompt.into(),
            message: String::new(),
        }
    }

    pub fn terminal(action: Action, message: impl Into<String>) -> Self {
        Step {
            action,
            prompt: String::new(),
            message: message.into(),
        }
    }
}

/// An enrolled factor as its owner (or an admin) sees it. Never carries secret material.
#[derive(Serialize, Deserialize, Type, Debug, Clone, PartialEq, Eq)]
pub struct FactorInfo {
    /// Stable identifier, used by `remove`.
    pub id: String,
    /// `totp` (later: `fido2`, `backup-codes`).
    pub kind: String,
    pub name: String,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds of the last accepted use, 0 when never used.
    pub last_used: u64,
}

/// The caller's own state, for `herarxctl status`.
#[derive(Serialize, Deserialize, Type, Debug, Clone, PartialEq, Eq)]
pub struct UserStatus {
    pub user: String,
    pub factors: Vec<FactorInfo>,
    /// Failed attempts counted in the current window.
    pub failures: u32,
    /// Unix seconds until which logins are refused; 0 when not locked.
    pub locked_until: u64,
    /// What happens at login for a user without any factor: `ignore` or `deny`.
    pub no_factor_policy: String,
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
    /// (empty when unset); the daemon decides for itself whether the login is remote.
    /// Returns the transaction id and the first step.
    fn begin(
        &self,
        user: &str,
        service: &str,
        rhost: &str,
        tty: &str,
    ) -> Result<(String, Step), HerarxError>;

    /// Answers the current prompt of a transaction begun on this connection.
    fn answer(&self, transaction: &str, response: &str) -> Result<Step, HerarxError>;

    /// Abandons a transaction (the user cancelled the conversation).
    fn cancel(&self, transaction: &str) -> Result<(), HerarxError>;
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
    /// has a factor, `step_up_code` must be a fresh code from one of them (empty otherwise).
    fn begin_totp_enrollment(
        &self,
        name: &str,
        step_up_code: &str,
    ) -> Result<PendingEnrollment, HerarxError>;

    /// Completes an enrolment with a code from the new authenticator. The code is consumed:
    /// it cannot be used again to log in.
    fn confirm_totp_enrollment(&self, id: &str, code: &str) -> Result<FactorInfo, HerarxError>;

    /// Removes one of the caller's factors; `step_up_code` is a fresh code from any of them.
    fn remove_factor(&self, id: &str, step_up_code: &str) -> Result<(), HerarxError>;
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
        assert_eq!(Step::SIGNATURE, "(sss)");
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
