//! The login transaction as plain Rust: no C, no D-Bus, no syslog. `lib.rs` plugs in the PAM
//! conversation and `client.rs` the daemon; the tests plug in strict scripted doubles.
//!
//! The daemon drives: it answers `begin` with a [`Step`] and every `answer` with the next one.
//! This module only shows what the daemon asks for, relays the reply, and turns the terminal
//! step (or the failure) into a [`Verdict`]. It never judges a response itself.

use herarx_proto::{Action, HerarxError, Step, limits};
use zeroize::Zeroizing;

/// What `pam_sm_authenticate` returns, before it becomes a `PamResultCode` (see `codes.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The second factor was verified.
    Success,
    /// No second factor applies (daemon policy), or the daemon is down with `failmode=open`.
    /// Not `Success`: a stack where this module is `sufficient` must never be satisfied by
    /// "nothing enrolled", and a stack of this module alone is still refused by libpam.
    Ignore,
    /// Wrong answer, or the daemon refused.
    AuthErr,
    /// Locked out or out of tries: "do not try again".
    MaxTries,
    /// The daemon could not be asked, or failed: fail closed.
    AuthinfoUnavail,
    /// The daemon does not let this caller authenticate this user.
    CredInsufficient,
    /// The application's conversation failed (Ctrl-D, no terminal, ...).
    ConvErr,
}

/// The verdict and one line for the log saying why. The reason never contains a response.
#[derive(Clone, PartialEq, Eq)]
pub struct Outcome {
    pub verdict: Verdict,
    pub reason: String,
    /// The login went on without a second factor because the daemon was down and
    /// `failmode=open`: the log says so louder than a plain `Ignore`.
    pub failed_open: bool,
    /// With `Success`, when session trust is on: the ticket for the session hook.
    pub ticket: Option<Zeroizing<String>>,
}

/// Never the ticket: a `{:?}` must not hand out a session's trust.
impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outcome")
            .field("verdict", &self.verdict)
            .field("reason", &self.reason)
            .field("failed_open", &self.failed_open)
            .field("ticket", &self.ticket.as_ref().map(|_| "(redacted)"))
            .finish()
    }
}

impl Outcome {
    fn new(verdict: Verdict, reason: impl Into<String>) -> Self {
        Outcome {
            verdict,
            reason: reason.into(),
            failed_open: false,
            ticket: None,
        }
    }
}

/// What to do when the daemon cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailMode {
    /// `PAM_AUTHINFO_UNAVAIL`: no login without the second factor.
    #[default]
    Closed,
    /// `PAM_IGNORE`: the rest of the stack decides. Only when nobody is there at the start of a
    /// login (`DaemonError::Unreachable`), never for a daemon that is slow, vanishes mid-call
    /// or answered with an error.
    Open,
}

/// What PAM told the module about this login; empty strings for unset items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    pub user: &'a str,
    pub service: &'a str,
    pub rhost: &'a str,
    pub tty: &'a str,
    /// `SSH_AUTH_INFO_0` from the PAM environment ("" when unset); the daemon decides whether
    /// to believe it.
    pub ssh_auth_info: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    pub failmode: FailMode,
    /// The application passed `PAM_SILENT`: no informational or error messages.
    pub silent: bool,
}

/// The conversation failed; the text says how, for the log (never a response).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvError(pub String);

/// The user, through the application.
pub trait Conversation {
    /// Shows `prompt` and reads a reply without echo.
    fn ask_hidden(&mut self, prompt: &str) -> Result<Zeroizing<String>, ConvError>;
    /// Shows `prompt` and reads a reply with echo (a menu choice: nothing secret).
    fn ask_visible(&mut self, prompt: &str) -> Result<Zeroizing<String>, ConvError>;
    /// Shows an error message. Failing to show it does not change the result.
    fn error(&mut self, text: &str);
    /// Shows an informational message. Failing to show it does not change the result.
    fn info(&mut self, text: &str);
}

#[derive(Debug)]
pub enum DaemonError {
    /// Nobody is there: the bus socket is absent or refuses, or nothing owns (or could be
    /// activated to own) the daemon's name. The only failure `failmode=open` may let through
    /// (see `reach.rs`). The text is for the log.
    Unreachable(String),
    /// Somebody is there but did not answer: a timeout, a reply that never came, a connection
    /// lost mid-call. Always fails closed, or stalling the daemon would skip the factor.
    Unresponsive(String),
    /// The daemon answered with an error.
    Daemon(HerarxError),
}

/// `org.herarx.Herarx1.Auth`, as the module uses it.
pub trait Daemon {
    fn begin(
        &mut self,
        user: &str,
        service: &str,
        rhost: &str,
        tty: &str,
        ssh_auth_info: &str,
    ) -> Result<(String, Step), DaemonError>;
    fn answer(&mut self, transaction: &str, response: &str) -> Result<Step, DaemonError>;
    /// `Answer` with an empty response after a `Wait` step: the daemon replies when the touch
    /// happened or timed out, so this call may take up to `limits::WAIT_MAX_SECONDS`.
    fn wait(&mut self, transaction: &str) -> Result<Step, DaemonError>;
    /// Best effort: the transaction dies with the connection anyway.
    fn cancel(&mut self, transaction: &str);
    /// Hands the login's ticket over from the session hook; whether the session is trusted.
    fn open_session(&mut self, user: &str, ticket: &str) -> Result<bool, DaemonError>;
    /// Ends the session's trust at logout; whether there was one.
    fn close_session(&mut self, user: &str) -> Result<bool, DaemonError>;
}

/// Runs one login transaction to its end.
pub fn authenticate(
    req: &Request<'_>,
    conv: &mut impl Conversation,
    daemon: &mut impl Daemon,
    opts: &Options,
) -> Outcome {
    let (transaction, mut step) =
        match daemon.begin(req.user, req.service, req.rhost, req.tty, req.ssh_auth_info) {
            Ok(started) => started,
            Err(e) => return daemon_failed(e, Phase::Begin, conv, opts),
        };
    let mut answered: u32 = 0;
    loop {
        match step.action {
            Action::Skip => {
                show_info(conv, opts, &step.message);
                return Outcome::new(
                    Verdict::Ignore,
                    "no second factor required for this login (daemon policy)",
                );
            }
            Action::Success => {
                show_info(conv, opts, &step.message);
                let ticket = (!step.ticket.is_empty()).then(|| Zeroizing::new(step.ticket));
                return Outcome {
                    ticket,
                    ..Outcome::new(Verdict::Success, "second factor verified")
                };
            }
            Action::Denied => {
                show_error(conv, opts, &step.message);
                return Outcome::new(Verdict::AuthErr, "denied by the daemon");
            }
            Action::Locked => {
                show_error(conv, opts, &step.message);
                return Outcome::new(Verdict::MaxTries, "locked out by the daemon");
            }
            Action::Wait => {
                if answered >= limits::STEPS_MAX {
                    daemon.cancel(&transaction);
                    return Outcome::new(
                        Verdict::AuthErr,
                        format!(
                            "daemon still waiting after {} steps: transaction abandoned",
                            limits::STEPS_MAX
                        ),
                    );
                }
                // The instruction ("Touch your security key") is the step itself: shown even
                // under PAM_SILENT, like a prompt.
                if !step.message.is_empty() {
                    conv.info(&step.message);
                }
                answered += 1;
                step = match daemon.wait(&transaction) {
                    Ok(next) => next,
                    Err(e) => return daemon_failed(e, Phase::Answer, conv, opts),
                };
            }
            Action::Prompt | Action::PromptVisible => {
                // Whatever the daemon says, a login is not an endless conversation.
                if answered >= limits::STEPS_MAX {
                    daemon.cancel(&transaction);
                    return Outcome::new(
                        Verdict::AuthErr,
                        format!(
                            "daemon still prompting after {} answers: transaction abandoned",
                            limits::STEPS_MAX
                        ),
                    );
                }
                // Text to read before answering (a QR code to scan, backup codes to write
                // down, a menu) is part of the question: shown even under PAM_SILENT.
                if !step.message.is_empty() {
                    conv.info(&step.message);
                }
                let asked = if step.action == Action::PromptVisible {
                    conv.ask_visible(&step.prompt)
                } else {
                    conv.ask_hidden(&step.prompt)
                };
                let response = match asked {
                    Ok(response) => response,
                    Err(ConvError(how)) => {
                        daemon.cancel(&transaction);
                        return Outcome::new(
                            Verdict::ConvErr,
                            format!("conversation failed ({how}): transaction cancelled"),
                        );
                    }
                };
                answered += 1;
                step = match daemon.answer(&transaction, &response) {
                    Ok(next) => next,
                    Err(e) => return daemon_failed(e, Phase::Answer, conv, opts),
                };
            }
        }
    }
}

/// What the session hook did, for the log. Never fails the session: trust is a convenience,
/// and a session that is not trusted only means the user is asked again inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionOutcome {
    /// No ticket: this login did not pass a second factor here (or trust is off).
    Nothing,
    Trusted,
    /// The daemon did not trust the session; the reason is for the log.
    NotTrusted(String),
}

/// `pam_sm_open_session`: hands the ticket of this login's second factor to the daemon.
pub fn open_session(user: &str, ticket: Option<&str>, daemon: &mut impl Daemon) -> SessionOutcome {
    let Some(ticket) = ticket.filter(|t| !t.is_empty()) else {
        return SessionOutcome::Nothing;
    };
    match daemon.open_session(user, ticket) {
        Ok(true) => SessionOutcome::Trusted,
        Ok(false) => SessionOutcome::NotTrusted(
            "the daemon refused the ticket (expired or used, or this process has no audit \
             session: pam_loginuid must come before pam_herarx in the session stack)"
                .into(),
        ),
        Err(DaemonError::Unreachable(why)) => {
            SessionOutcome::NotTrusted(format!("daemon unreachable ({why})"))
        }
        Err(DaemonError::Unresponsive(why)) => {
            SessionOutcome::NotTrusted(format!("daemon not answering ({why})"))
        }
        Err(DaemonError::Daemon(e)) => SessionOutcome::NotTrusted(describe(&e)),
    }
}

/// Shown when the module fails closed because nobody could check the answer. Names what is
/// wrong and what to do; no detail an attacker could use (that goes to the log).
pub const UNAVAILABLE: &str = "The two-factor service is not answering, so this login cannot be \
completed. Try again in a moment; if it keeps failing, tell your administrator (herarxd is down).";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Begin,
    Answer,
}

fn daemon_failed(
    error: DaemonError,
    phase: Phase,
    conv: &mut impl Conversation,
    opts: &Options,
) -> Outcome {
    match error {
        DaemonError::Unreachable(why) => match (phase, opts.failmode) {
            (Phase::Begin, FailMode::Closed) => {
                show_error(conv, opts, UNAVAILABLE);
                Outcome::new(
                    Verdict::AuthinfoUnavail,
                    format!("daemon unreachable ({why}); failmode=closed: refusing"),
                )
            }
            (Phase::Begin, FailMode::Open) => Outcome {
                failed_open: true,
                ..Outcome::new(
                    Verdict::Ignore,
                    format!("daemon unreachable ({why}); failmode=open: ignoring this module"),
                )
            },
            // The daemon already said a factor is needed: losing it now must not open the door,
            // or slowing the daemon down would be a way around the second factor.
            (Phase::Answer, _) => {
                show_error(conv, opts, UNAVAILABLE);
                Outcome::new(
                    Verdict::AuthinfoUnavail,
                    format!("daemon lost during the transaction ({why}): refusing"),
                )
            }
        },
        DaemonError::Unresponsive(why) => {
            show_error(conv, opts, UNAVAILABLE);
            Outcome::new(
                Verdict::AuthinfoUnavail,
                format!("daemon not answering ({why}): refusing whatever the failmode"),
            )
        }
        DaemonError::Daemon(e) => match e {
            HerarxError::PermissionDenied(m) => Outcome::new(
                Verdict::CredInsufficient,
                format!("daemon refused this caller: {m}"),
            ),
            HerarxError::Locked(m) => {
                show_error(conv, opts, &m);
                Outcome::new(Verdict::MaxTries, format!("locked: {m}"))
            }
            HerarxError::WrongCode(m) => {
                show_error(conv, opts, &m);
                Outcome::new(Verdict::AuthErr, "wrong answer (daemon error)")
            }
            other => {
                show_error(conv, opts, UNAVAILABLE);
                Outcome::new(
                    Verdict::AuthinfoUnavail,
                    format!("daemon error: {}; refusing", describe(&other)),
                )
            }
        },
    }
}

/// An error for the log. The contract's own errors show their name and sentence; transport
/// errors would otherwise all read "org.freedesktop.zbus.Error: FDO error".
pub fn describe(e: &HerarxError) -> String {
    match e {
        HerarxError::ZBus(inner) => inner.to_string(),
        other => other.to_string(),
    }
}

fn show_error(conv: &mut impl Conversation, opts: &Options, text: &str) {
    if !opts.silent && !text.is_empty() {
        conv.error(text);
    }
}

fn show_info(conv: &mut impl Conversation, opts: &Options, text: &str) {
    if !opts.silent && !text.is_empty() {
        conv.info(text);
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
