//! One module per subcommand. Each connects when it needs to, talks to herarxd and prints.

pub mod admin;
pub mod backup_codes;
pub mod completions;
pub mod config;
pub mod contact;
pub mod factor;
pub mod key;
pub mod remember;
pub mod remove;
pub mod status;
pub mod totp;

use std::io::{BufRead, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use herarx_proto::HerarxError;

use crate::error::CliError;
use crate::input::Answers;

/// What every command needs to know about how it was started.
pub struct Context {
    pub address: String,
    pub json: bool,
    /// Whether stdin is a terminal: a person answers, rather than a script.
    pub interactive: bool,
}

/// How many codes a person may try on a terminal before we give up. A script gets one: it
/// cannot type a better code, and each wrong one counts towards the lockout.
pub const TERMINAL_ATTEMPTS: u32 = 3;

pub const STEP_UP_PROMPT: &str = "Code from one of your existing authenticators: ";

/// The step-up prompt for this user. When codes sent by email or text are all they have to
/// prove it is them, one is sent first (to the first address or number).
pub fn step_up_prompt(
    daemon: &crate::bus::Daemon,
    status: &herarx_proto::UserStatus,
    say: &mut dyn FnMut(&str) -> Result<(), CliError>,
) -> Result<&'static str, CliError> {
    let has = |kind: &str| status.factors.iter().any(|f| f.kind == kind);
    let contacts_only =
        (has("email") || has("sms")) && !has("totp") && status.backup_codes_left == 0;
    if !contacts_only {
        return Ok(STEP_UP_PROMPT);
    }
    let masked = daemon.send_code("")?;
    say(&format!(
        "A code was sent to {masked}, to confirm it is you."
    ))?;
    Ok(SENT_CODE_PROMPT)
}

pub const SENT_CODE_PROMPT: &str = "Code we sent: ";

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Asks for a code and hands it to `call`; on a terminal a wrong code is asked again.
/// Anything but `WrongCode` ends the attempts at once (a lockout, an expired enrolment, ...).
pub fn with_code<R: BufRead, W: Write, T>(
    answers: &mut Answers<R, W>,
    prompt: &str,
    what: &str,
    mut call: impl FnMut(&str) -> Result<T, CliError>,
) -> Result<T, CliError> {
    let attempts = if answers.interactive() {
        TERMINAL_ATTEMPTS
    } else {
        1
    };
    let mut attempt = 1;
    loop {
        let code = answers.code(prompt, what)?;
        match call(code.as_str()) {
            Err(CliError::Daemon(HerarxError::WrongCode(said))) if attempt < attempts => {
                // The daemon's sentence already says what to do (and may count its own tries,
                // which are not ours): show it as it is and ask again.
                let said = said.trim();
                answers.say(if said.is_empty() {
                    "That code was not accepted; try again."
                } else {
                    said
                })?;
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn answers(input: &str, interactive: bool) -> Answers<Cursor<Vec<u8>>, Vec<u8>> {
        Answers::new(
            Cursor::new(input.as_bytes().to_vec()),
            Vec::new(),
            interactive,
        )
    }

    fn wrong() -> CliError {
        CliError::Daemon(HerarxError::WrongCode("Wrong code.".into()))
    }

    #[test]
    fn a_person_gets_three_tries() {
        let mut tried = Vec::new();
        let mut a = answers("111111\n222222\n333333\n444444\n", true);
        let r: Result<(), _> = with_code(&mut a, "Code: ", "the code", |c| {
            tried.push(c.to_owned());
            Err(wrong())
        });
        assert_eq!(r.unwrap_err().exit_code(), 4);
        assert_eq!(tried, ["111111", "222222", "333333"]);
    }

    #[test]
    fn a_right_code_on_a_retry_succeeds() {
        let mut a = answers("111111\n222222\n", true);
        let r = with_code(&mut a, "Code: ", "the code", |c| {
            if c == "222222" { Ok(7) } else { Err(wrong()) }
        });
        assert_eq!(r.unwrap(), 7);
    }

    #[test]
    fn a_script_gets_one_try() {
        let mut calls = 0;
        let mut a = answers("111111\n222222\n", false);
        let r: Result<(), _> = with_code(&mut a, "Code: ", "the code", |_| {
            calls += 1;
            Err(wrong())
        });
        assert_eq!(r.unwrap_err().exit_code(), 4);
        assert_eq!(calls, 1);
    }

    #[test]
    fn other_errors_are_not_retried() {
        let mut calls = 0;
        let mut a = answers("111111\n222222\n", true);
        let r: Result<(), _> = with_code(&mut a, "Code: ", "the code", |_| {
            calls += 1;
            Err(CliError::Daemon(HerarxError::Locked("Locked.".into())))
        });
        assert_eq!(r.unwrap_err().exit_code(), 4);
        assert_eq!(calls, 1);
    }
}
