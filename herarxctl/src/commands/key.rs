//! `herarxctl key add|list|rename|remove`: security keys (FIDO2).
//!
//! The daemon talks to the key (it alone may open /dev/hidraw*): `key add` only asks the
//! questions and waits while the daemon waits for the touch. The conversation of `key add`,
//! in the order a script must feed it: (the step-up code, when you have a factor but no key)
//! → (the PIN, with `--pin-stdin`). When you already have a key, the step-up is a touch of
//! one of your registered keys, asked by the daemon before the new key's.

use std::time::Duration;

use herarx_proto::HerarxError;
use herarx_proto::limits::WAIT_MAX_SECONDS;
use zeroize::Zeroizing;

use crate::bus::Daemon;
use crate::commands::totp::check_name;
use crate::commands::{Context, STEP_UP_PROMPT, TERMINAL_ATTEMPTS, factor, remove as remove_cmd};
use crate::error::CliError;
use crate::input::{self, Answers};
use crate::output;
use crate::printer::Printer;

/// The factor kind of security keys.
pub const KIND: &str = "fido2";

/// How the daemon's "this key needs its PIN" refusal begins (herarxd's
/// `selfservice::keys::PIN_REQUIRED`).
pub const PIN_REQUIRED_PREFIX: &str = "This key needs its PIN";

const PIN_PROMPT: &str = "PIN of the security key: ";

/// One `AddSecurityKey` may wait for two touches (a registered key's, then the new one's).
const ADD_TIMEOUT: Duration = Duration::from_secs(2 * WAIT_MAX_SECONDS + 10);

/// Where the PIN of the new key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinSource {
    /// Not asked first: on a terminal, asked when the daemon says the key needs it.
    WhenNeeded,
    /// `--pin`: asked before the touch.
    Prompt,
    /// `--pin-stdin`: the next stdin line.
    Stdin,
}

impl PinSource {
    pub fn from_flags(pin: bool, pin_stdin: bool) -> Self {
        match (pin, pin_stdin) {
            (_, true) => PinSource::Stdin,
            (true, false) => PinSource::Prompt,
            (false, false) => PinSource::WhenNeeded,
        }
    }
}

fn is_pin_required(e: &CliError) -> bool {
    matches!(e, CliError::Daemon(HerarxError::InvalidArgument(m)) if m.starts_with(PIN_REQUIRED_PREFIX))
}

fn is_wrong_pin(e: &CliError) -> bool {
    matches!(e, CliError::Daemon(HerarxError::WrongCode(m)) if m.starts_with("Wrong PIN"))
}

fn is_wrong_code(e: &CliError) -> bool {
    matches!(e, CliError::Daemon(HerarxError::WrongCode(_))) && !is_wrong_pin(e)
}

pub fn add(ctx: &Context, name: Option<&str>, pin_source: PinSource) -> Result<(), CliError> {
    let name = name.unwrap_or("");
    check_name(name)?;
    let printer = Printer::new(ctx.interactive, ctx.json);
    let mut answers = Answers::stdin(ctx.interactive);
    let daemon = Daemon::connect_waiting(&ctx.address, ADD_TIMEOUT)?;

    // Once you have a factor, adding a key needs a step-up, so that a stolen password alone
    // cannot plant an attacker's key: a code, or a touch of a key you registered before.
    let status = daemon.status()?;
    let has_key = status.factors.iter().any(|f| f.kind == KIND);
    let needs_step_up = !status.factors.is_empty() || status.backup_codes_left > 0;
    // Someone whose only methods are email or text gets the step-up code sent.
    let step_up = if needs_step_up && !has_key {
        crate::commands::step_up_prompt(&daemon, &status, &mut |t| answers.say(t))?
    } else {
        STEP_UP_PROMPT
    };
    let mut code: Option<Zeroizing<String>> = if needs_step_up && !has_key {
        Some(answers.code(step_up, "the step-up code")?)
    } else {
        None
    };
    let mut pin: Option<Zeroizing<String>> = match pin_source {
        PinSource::WhenNeeded => None,
        PinSource::Prompt | PinSource::Stdin => Some(answers.secret(PIN_PROMPT, "the PIN")?),
    };
    let touch = if needs_step_up && has_key {
        "Touch one of your registered keys to confirm it is you, then the new key…"
    } else {
        "Touch your security key now…"
    };
    let attempts = if ctx.interactive {
        TERMINAL_ATTEMPTS
    } else {
        1
    };
    let mut attempt = 1;
    let factor = loop {
        answers.say(touch)?;
        let result = daemon.add_security_key(
            name,
            code.as_ref().map_or("", |c| c.as_str()),
            pin.as_ref().map_or("", |p| p.as_str()),
        );
        match result {
            Ok(f) => break f,
            Err(e) if ctx.interactive && attempt < attempts && is_pin_required(&e) => {
                answers.say(&e.message())?;
                pin = Some(answers.secret(PIN_PROMPT, "the PIN")?);
            }
            Err(e) if ctx.interactive && attempt < attempts && is_wrong_pin(&e) => {
                answers.say(&e.message())?;
                pin = Some(answers.secret(PIN_PROMPT, "the PIN")?);
            }
            Err(e)
                if ctx.interactive && attempt < attempts && code.is_some() && is_wrong_code(&e) =>
            {
                answers.say(&e.message())?;
                code = Some(answers.code(step_up, "the step-up code")?);
            }
            Err(e) => return Err(e),
        }
        attempt += 1;
    };

    if ctx.json {
        printer.data(&output::factor_json(&factor)?)?;
    }
    printer.human(&format!(
        "Added security key {}. Keep a second key registered as a backup (`herarxctl key add` \
         with the other key plugged in), in case this one is lost.",
        output::factor_label(&factor)
    ))
}

pub fn list(ctx: &Context) -> Result<(), CliError> {
    let daemon = Daemon::connect(&ctx.address)?;
    let status = daemon.status()?;
    let keys: Vec<&herarx_proto::FactorInfo> =
        status.factors.iter().filter(|f| f.kind == KIND).collect();
    let printer = Printer::new(ctx.interactive, ctx.json);
    if ctx.json {
        return printer.data(&output::keys_json(&keys)?);
    }
    printer.data(&output::keys_human(&keys))
}

/// The caller's key `id`, or "no such factor" (before anything is asked).
fn own_key(daemon: &Daemon, id: &str) -> Result<(), CliError> {
    let status = daemon.status()?;
    if status.factors.iter().any(|f| f.id == id && f.kind == KIND) {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "you have no security key with id `{}`; `herarxctl key list` lists yours",
            output::safe(id)
        )))
    }
}

pub fn rename(ctx: &Context, id: &str, name: &str) -> Result<(), CliError> {
    own_key(&Daemon::connect(&ctx.address)?, id)?;
    factor::rename(ctx, id, name)
}

pub fn remove(ctx: &Context, id: &str, yes: bool) -> Result<(), CliError> {
    // Refuse a script without --yes before touching the bus, as `remove` does.
    input::confirmation("key remove", yes, ctx.interactive)?;
    own_key(&Daemon::connect(&ctx.address)?, id)?;
    remove_cmd::run(ctx, id, yes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_flags_choose_the_source() {
        assert_eq!(PinSource::from_flags(false, false), PinSource::WhenNeeded);
        assert_eq!(PinSource::from_flags(true, false), PinSource::Prompt);
        assert_eq!(PinSource::from_flags(false, true), PinSource::Stdin);
    }

    #[test]
    fn the_daemons_pin_refusals_are_recognised() {
        let need = CliError::Daemon(HerarxError::InvalidArgument(
            "This key needs its PIN: give it with --pin or when asked.".into(),
        ));
        assert!(is_pin_required(&need));
        let wrong = CliError::Daemon(HerarxError::WrongCode("Wrong PIN for this key".into()));
        assert!(is_wrong_pin(&wrong) && !is_wrong_code(&wrong));
        let code = CliError::Daemon(HerarxError::WrongCode("That code is wrong".into()));
        assert!(is_wrong_code(&code) && !is_pin_required(&code));
    }
}
