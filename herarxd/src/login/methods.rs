//! What a user can answer with (`Methods`), where a transaction stands (`Stage`), and the
//! method menu.

use super::*;

use herarx_proto::Step;
use zeroize::Zeroizing;

use crate::store::FactorKind;
use crate::store::verify::Accept;

/// What a user can answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Methods {
    pub(super) totp: bool,
    pub(super) backup_codes: u32,
    /// Security keys offered here (0 for remote logins: never a touch at the server).
    pub(super) keys: usize,
    /// Keys need their PIN (policy `fido2.user_verification = "required"`).
    pub(super) key_pin: bool,
    /// Ask for the touch first (policy `fido2.keys_first`).
    pub(super) keys_first: bool,
    /// The touch and then a code, both (policy `fido2.key_alone = false`).
    pub(super) key_then_code: bool,
    /// Email and SMS factors offered here (the list is the transaction's `contacts`).
    pub(super) contacts: usize,
    /// Which kinds of them: a code sent by a kind this login does not offer is refused.
    pub(super) email: bool,
    pub(super) sms: bool,
    /// The primary method is one of them: its code is sent at the start of the login.
    pub(super) contact_first: bool,
}

impl Methods {
    pub(super) fn any(self) -> bool {
        self.totp || self.backup_codes > 0 || self.keys > 0 || self.contacts > 0
    }

    /// Whether anything but a key is left to fall back to.
    pub(super) fn codes(self) -> bool {
        self.totp || self.backup_codes > 0 || self.contacts > 0
    }

    /// What the code prompts accept.
    pub(super) fn accept(self) -> Accept {
        Accept {
            totp: self.totp,
            backup_codes: self.backup_codes > 0,
            email: self.email,
            sms: self.sms,
        }
    }

    /// The stage and step that ask for a key.
    pub(super) fn key_step(self) -> (Stage, Step) {
        if self.key_pin {
            (Stage::KeyPin, Step::prompt(KEY_PIN_PROMPT))
        } else {
            (Stage::KeyTouch { pin: None }, Step::wait(TOUCH_MESSAGE))
        }
    }

    /// The first stage and step of a login. `Stage::Send` with no factor id means: the
    /// primary contact's code is sent next (see `first_run`).
    pub(super) fn first(self) -> First {
        if self.keys > 0 && (self.keys_first || !self.codes() || self.key_then_code) {
            let (stage, step) = self.key_step();
            First::Ask(stage, step)
        } else if self.contacts > 0
            && (self.contact_first || (!self.totp && self.backup_codes == 0))
        {
            First::SendToPrimaryContact
        } else if self.totp {
            First::Ask(Stage::Code, self.first_prompt())
        } else {
            First::Ask(Stage::BackupCode, self.first_prompt())
        }
    }

    /// The menu: `(what it leads to, line)`.
    pub(super) fn menu(self, contacts: &[ContactChoice]) -> Vec<(Stage, String)> {
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

    pub(super) fn first_prompt(self) -> Step {
        if !self.totp {
            Step::prompt(BACKUP_PROMPT)
        } else if self.backup_codes > 0 || self.keys > 0 || self.contacts > 0 {
            Step::prompt(PROMPT_WITH_MENU)
        } else {
            Step::prompt(PROMPT)
        }
    }
}

/// How a login starts.
pub(super) enum First {
    /// In this stage, with this step.
    Ask(Stage, Step),
    /// By sending a code to the first of the login's contacts (the primary one when it is
    /// one of them): see `Logins::first_run`.
    SendToPrimaryContact,
}

/// Something a login remembers if it passes, for `seconds`: an address or an SSH key.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Remember {
    pub(super) kind: &'static str,
    pub(super) value: String,
    pub(super) seconds: u64,
}

/// Where a transaction stands. No `Debug`: `KeyTouch` holds the key's PIN.
#[derive(Clone, PartialEq, Eq)]
pub(super) enum Stage {
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

/// An email or SMS factor a login offers, its destination masked.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct ContactChoice {
    pub(super) factor_id: String,
    pub(super) kind: FactorKind,
    pub(super) masked: String,
}

impl ContactChoice {
    pub(super) fn menu_line(&self) -> String {
        if self.kind == FactorKind::Email {
            format!("Email a code to {}", self.masked)
        } else {
            format!("Text a code to {}", self.masked)
        }
    }
}

/// Whether a login already proved its second factor another way.
pub(super) enum Verified {
    /// Yes: the audit method and reason.
    Yes(&'static str, String),
    /// No: what to remember if its code passes.
    No(Vec<Remember>),
}

/// What an answer leads to.
pub(super) enum Next {
    /// The transaction ends with this step.
    Done(Step),
    /// It goes on in this stage, with this prompt.
    Continue(Stage, Step),
}

/// A transaction as it stood when an answer came: what the stage's handler reads (the stage
/// itself is matched apart).
pub(super) struct Turn {
    pub(super) id: String,
    pub(super) ctx: AuditCtx,
    pub(super) scope: Scope,
    pub(super) methods: Methods,
    pub(super) contacts: Vec<ContactChoice>,
    pub(super) last_sent: Option<u64>,
}
