//! Answers from the person (on a terminal) or from a script (one line per answer on stdin).
//!
//! On a terminal we prompt on stderr and may ask again; otherwise every prompt still goes to
//! stderr, answers are read in the order the prompts come, and running out of lines is an
//! error rather than a hang.

use std::io::{BufRead, IsTerminal, Write};

use herarx_proto::limits::ANSWER_MAX;
use zeroize::Zeroizing;

use crate::error::CliError;

pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// What a destructive command does before acting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    /// `--yes` was given.
    Given,
    /// Ask on the terminal.
    Ask,
}

/// Destructive commands confirm on a terminal; a script must say `--yes` explicitly, so that
/// a stray pipe into herarxctl never removes anything.
pub fn confirmation(command: &str, yes: bool, interactive: bool) -> Result<Confirmation, CliError> {
    match (yes, interactive) {
        (true, _) => Ok(Confirmation::Given),
        (false, true) => Ok(Confirmation::Ask),
        (false, false) => Err(CliError::Usage(format!(
            "`{command}` needs --yes when stdin is not a terminal (nothing was changed)"
        ))),
    }
}

/// A code as typed: apps show "123 456", people paste with spaces or a newline.
pub fn clean_code(raw: &str) -> Zeroizing<String> {
    Zeroizing::new(raw.chars().filter(|c| !c.is_whitespace()).collect())
}

/// Terminal echo turned off on stdin until dropped.
struct EchoOff {
    saved: nix::sys::termios::Termios,
}

impl EchoOff {
    fn start() -> Option<EchoOff> {
        use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).ok()?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        tcsetattr(&stdin, SetArg::TCSANOW, &quiet).ok()?;
        Some(EchoOff { saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        use nix::sys::termios::{SetArg, tcsetattr};
        let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.saved);
    }
}

pub struct Answers<R, W> {
    reader: R,
    prompts: W,
    interactive: bool,
}

impl Answers<std::io::StdinLock<'static>, std::io::Stderr> {
    pub fn stdin(interactive: bool) -> Self {
        Answers::new(std::io::stdin().lock(), std::io::stderr(), interactive)
    }
}

impl<R: BufRead, W: Write> Answers<R, W> {
    pub fn new(reader: R, prompts: W, interactive: bool) -> Self {
        Answers {
            reader,
            prompts,
            interactive,
        }
    }

    pub fn interactive(&self) -> bool {
        self.interactive
    }

    /// Shows `prompt` and reads one code; `what` names it in errors ("the step-up code"). On
    /// a terminal without echo: a backup code typed as step-up must not stay on the screen.
    pub fn code(&mut self, prompt: &str, what: &str) -> Result<Zeroizing<String>, CliError> {
        loop {
            let line = self.line_hidden(prompt, what)?;
            let code = clean_code(&line);
            if code.is_empty() {
                if self.interactive {
                    continue;
                }
                return Err(CliError::Usage(format!(
                    "an empty line came on stdin where {what} was expected"
                )));
            }
            if code.len() > ANSWER_MAX {
                return Err(CliError::Usage(format!(
                    "{what} is too long ({} characters; at most {ANSWER_MAX})",
                    code.len()
                )));
            }
            return Ok(code);
        }
    }

    /// Shows `prompt` and reads one secret line (a security key's PIN) as typed, without its
    /// line ending; on a terminal without echo. `what` names it in errors.
    pub fn secret(&mut self, prompt: &str, what: &str) -> Result<Zeroizing<String>, CliError> {
        let line = self.line_hidden(prompt, what)?;
        let mut secret = Zeroizing::new(String::with_capacity(line.len()));
        secret.push_str(line.trim_end_matches(['\n', '\r']));
        Ok(secret)
    }

    /// Asks a yes/no question whose default is no.
    /// Like `line`, without echo on a terminal.
    fn line_hidden(&mut self, prompt: &str, what: &str) -> Result<Zeroizing<String>, CliError> {
        let echo = if self.interactive {
            EchoOff::start()
        } else {
            None
        };
        let line = self.line(prompt, what);
        if echo.is_some() {
            drop(echo);
            // The user's Enter was not echoed either.
            writeln!(self.prompts)?;
        }
        line
    }

    pub fn confirm(&mut self, question: &str) -> Result<bool, CliError> {
        let line = self.line(
            &format!("{question} [y/N] "),
            "the answer to the confirmation",
        )?;
        let answer = line.trim().to_ascii_lowercase();
        Ok(answer == "y" || answer == "yes")
    }

    /// Writes human text to the prompt stream (stderr).
    pub fn say(&mut self, text: &str) -> Result<(), CliError> {
        writeln!(self.prompts, "{text}")?;
        self.prompts.flush()?;
        Ok(())
    }

    fn line(&mut self, prompt: &str, what: &str) -> Result<Zeroizing<String>, CliError> {
        write!(self.prompts, "{prompt}")?;
        self.prompts.flush()?;
        // Sized up front so that a short answer is never reallocated, leaving a copy behind.
        let mut line = Zeroizing::new(String::with_capacity(256));
        let read = self.reader.read_line(&mut line)?;
        if !self.interactive {
            // Piped input is not echoed: end the prompt's line ourselves.
            writeln!(self.prompts)?;
        }
        if read == 0 {
            return Err(CliError::Usage(format!(
                "stdin ended before {what} was given (give one answer per line, in the order \
                 of the prompts)"
            )));
        }
        Ok(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn piped(input: &str) -> Answers<Cursor<Vec<u8>>, Vec<u8>> {
        Answers::new(Cursor::new(input.as_bytes().to_vec()), Vec::new(), false)
    }

    #[test]
    fn remove_without_yes_is_refused_when_stdin_is_not_a_terminal() {
        let err = confirmation("remove", false, false).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.message().contains("--yes"), "{}", err.message());
    }

    #[test]
    fn remove_asks_on_a_terminal_and_yes_answers_for_it() {
        assert_eq!(
            confirmation("remove", false, true).ok(),
            Some(Confirmation::Ask)
        );
        assert_eq!(
            confirmation("remove", true, false).ok(),
            Some(Confirmation::Given)
        );
        assert_eq!(
            confirmation("remove", true, true).ok(),
            Some(Confirmation::Given)
        );
    }

    #[test]
    fn codes_are_read_one_per_line_without_whitespace() {
        let mut answers = piped("123 456\n 654321 \r\n");
        assert_eq!(answers.code("A: ", "a").unwrap().as_str(), "123456");
        assert_eq!(answers.code("B: ", "b").unwrap().as_str(), "654321");
        let prompts = String::from_utf8(answers.prompts.clone()).unwrap();
        assert_eq!(prompts, "A: \nB: \n");
    }

    #[test]
    fn running_out_of_stdin_is_an_error_naming_the_answer() {
        let mut answers = piped("123456\n");
        answers.code("A: ", "the step-up code").unwrap();
        let err = answers.code("B: ", "the confirmation code").unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.message().contains("the confirmation code"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn an_empty_line_is_not_a_code_in_a_script() {
        let err = piped("\n123456\n").code("A: ", "the code").unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn on_a_terminal_an_empty_line_asks_again() {
        let mut answers = Answers::new(Cursor::new(b"\n123456\n".to_vec()), Vec::new(), true);
        assert_eq!(answers.code("A: ", "the code").unwrap().as_str(), "123456");
    }

    #[test]
    fn confirmation_defaults_to_no() {
        assert!(piped("y\n").confirm("Remove?").unwrap());
        assert!(piped("YES\n").confirm("Remove?").unwrap());
        assert!(!piped("\n").confirm("Remove?").unwrap());
        assert!(!piped("nope\n").confirm("Remove?").unwrap());
    }
}
