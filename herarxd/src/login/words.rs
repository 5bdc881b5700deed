//! The words a login shows: every prompt and message, written once.

use super::*;

use herarx_proto::{HerarxError, Step};

use crate::store::backup_codes::FEW_LEFT;

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

/// "Too many failed attempts: logins for this account are locked for 14 more minutes."
pub fn locked_message(until: u64, now: u64) -> String {
    let minutes = until.saturating_sub(now).div_ceil(60).max(1);
    let unit = if minutes == 1 { "minute" } else { "minutes" };
    format!(
        "Too many failed attempts: logins for this account are locked for {minutes} more {unit}."
    )
}

/// The success message after a backup code: a warning when few are left.
pub(super) fn backup_code_message(left: u32) -> String {
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

/// The prompt of a code stage.
pub(super) fn prompt_of(stage: &Stage, methods: Methods) -> Step {
    match stage {
        Stage::BackupCode => Step::prompt(BACKUP_PROMPT),
        Stage::SentCode { .. } => Step::prompt(SENT_PROMPT),
        Stage::KeyPin => Step::prompt(KEY_PIN_PROMPT),
        Stage::KeyTouch { .. } => Step::wait(TOUCH_MESSAGE),
        _ => methods.first_prompt(),
    }
}

/// The menu step: the choices as a message, a visible prompt.
pub(super) fn menu_step(items: &[(Stage, String)], note: Option<&str>) -> Step {
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

pub(super) fn no_such_transaction() -> HerarxError {
    HerarxError::NoSuchTransaction(
        "No such login transaction on this connection (finished, timed out or never begun): \
         start the login again."
            .into(),
    )
}
