//! The login transaction against strict scripted doubles: every call the module makes must be
//! the next one in the script, with exactly these arguments, and every scripted call must happen.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use super::*;
use herarx_proto::{Action, HerarxError, Step, limits};
use std::collections::VecDeque;

const TXN: &str = "txn-1";
const PROMPT: &str = "Verification code: ";
const GOOD: &str = "123456";
const BAD: &str = "654321";

/// What the user sees, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shown {
    /// An echo-off prompt, and what the user types (`None`: the conversation fails).
    Hidden(String, Option<String>),
    /// An echo-on prompt, and what the user types.
    Visible(String, Option<String>),
    Error(String),
    Info(String),
}

struct ScriptedConversation {
    script: VecDeque<Shown>,
}

impl ScriptedConversation {
    fn new(script: impl IntoIterator<Item = Shown>) -> Self {
        ScriptedConversation {
            script: script.into_iter().collect(),
        }
    }

    fn next(&mut self, what: &str) -> Shown {
        self.script
            .pop_front()
            .unwrap_or_else(|| panic!("unexpected conversation call: {what}"))
    }
}

impl Conversation for ScriptedConversation {
    fn ask_hidden(&mut self, prompt: &str) -> Result<Zeroizing<String>, ConvError> {
        match self.next(&format!("ask_hidden({prompt:?})")) {
            Shown::Hidden(expected, reply) => {
                assert_eq!(prompt, expected, "prompt text");
                reply
                    .map(Zeroizing::new)
                    .ok_or_else(|| ConvError("scripted failure".into()))
            }
            other => panic!("asked {prompt:?} with echo off, script wanted {other:?}"),
        }
    }

    fn ask_visible(&mut self, prompt: &str) -> Result<Zeroizing<String>, ConvError> {
        match self.next(&format!("ask_visible({prompt:?})")) {
            Shown::Visible(expected, reply) => {
                assert_eq!(prompt, expected, "prompt text");
                reply
                    .map(Zeroizing::new)
                    .ok_or_else(|| ConvError("scripted failure".into()))
            }
            other => panic!("asked {prompt:?} with echo on, script wanted {other:?}"),
        }
    }

    fn error(&mut self, text: &str) {
        let got = self.next(&format!("error({text:?})"));
        assert_eq!(got, Shown::Error(text.into()), "error message");
    }

    fn info(&mut self, text: &str) {
        let got = self.next(&format!("info({text:?})"));
        assert_eq!(got, Shown::Info(text.into()), "info message");
    }
}

impl Drop for ScriptedConversation {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert!(self.script.is_empty(), "never shown: {:?}", self.script);
        }
    }
}

/// A daemon call the module must make, and the daemon's reply.
#[derive(Debug)]
enum Call {
    Begin(Result<(String, Step), DaemonError>),
    Answer(&'static str, Result<Step, DaemonError>),
    Cancel,
    /// `OpenSession` with this ticket, and the daemon's reply.
    OpenSession(&'static str, Result<bool, DaemonError>),
    /// `Answer` with an empty response after a `Wait` step.
    Wait(Result<Step, DaemonError>),
}

struct ScriptedDaemon {
    script: VecDeque<Call>,
    expect: Request<'static>,
}

impl ScriptedDaemon {
    fn new(script: impl IntoIterator<Item = Call>) -> Self {
        ScriptedDaemon {
            script: script.into_iter().collect(),
            expect: request(),
        }
    }
}

impl Daemon for ScriptedDaemon {
    fn begin(
        &mut self,
        user: &str,
        service: &str,
        rhost: &str,
        tty: &str,
        ssh_auth_info: &str,
    ) -> Result<(String, Step), DaemonError> {
        let got = Request {
            user,
            service,
            rhost,
            tty,
            ssh_auth_info,
        };
        assert_eq!(got, self.expect, "begin arguments");
        match self.script.pop_front() {
            Some(Call::Begin(reply)) => reply,
            other => panic!("unexpected begin, script wanted {other:?}"),
        }
    }

    fn answer(&mut self, transaction: &str, response: &str) -> Result<Step, DaemonError> {
        assert_eq!(transaction, TXN, "transaction id");
        match self.script.pop_front() {
            Some(Call::Answer(expected, reply)) => {
                assert_eq!(response, expected, "response passed to the daemon");
                reply
            }
            other => panic!("unexpected answer, script wanted {other:?}"),
        }
    }

    fn cancel(&mut self, transaction: &str) {
        assert_eq!(transaction, TXN, "transaction id");
        match self.script.pop_front() {
            Some(Call::Cancel) => {}
            other => panic!("unexpected cancel, script wanted {other:?}"),
        }
    }

    fn open_session(&mut self, user: &str, ticket: &str) -> Result<bool, DaemonError> {
        assert_eq!(user, self.expect.user, "user");
        match self.script.pop_front() {
            Some(Call::OpenSession(expected, reply)) => {
                assert_eq!(ticket, expected, "ticket");
                reply
            }
            other => panic!("unexpected OpenSession, script wanted {other:?}"),
        }
    }

    fn wait(&mut self, transaction: &str) -> Result<Step, DaemonError> {
        assert_eq!(transaction, TXN, "transaction id");
        match self.script.pop_front() {
            Some(Call::Wait(reply)) => reply,
            other => panic!("unexpected wait, script wanted {other:?}"),
        }
    }

    fn close_session(&mut self, _user: &str) -> Result<bool, DaemonError> {
        panic!("close_session is not scripted in these tests")
    }
}

impl Drop for ScriptedDaemon {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert!(self.script.is_empty(), "never called: {:?}", self.script);
        }
    }
}

fn request() -> Request<'static> {
    Request {
        user: "alice",
        service: "sshd",
        rhost: "192.0.2.7",
        tty: "ssh",
        ssh_auth_info: "publickey ssh-ed25519 AAAA",
    }
}

fn begin_with(step: Step) -> Call {
    Call::Begin(Ok((TXN.to_string(), step)))
}

fn prompt() -> Step {
    Step::prompt(PROMPT)
}

fn hidden(prompt: &str, typed: &str) -> Shown {
    Shown::Hidden(prompt.into(), Some(typed.into()))
}

fn error(code: HerarxError) -> Result<Step, DaemonError> {
    Err(DaemonError::Daemon(code))
}

fn run_with(
    conv: impl IntoIterator<Item = Shown>,
    daemon: impl IntoIterator<Item = Call>,
    opts: Options,
) -> Outcome {
    let mut conv = ScriptedConversation::new(conv);
    let mut daemon = ScriptedDaemon::new(daemon);
    let outcome = authenticate(&request(), &mut conv, &mut daemon, &opts);
    // Every typed answer in these tests is a code: none may reach the log.
    for secret in [GOOD, BAD] {
        assert!(
            !outcome.reason.contains(secret),
            "log reason leaks a code: {}",
            outcome.reason
        );
    }
    outcome
}

fn run(conv: impl IntoIterator<Item = Shown>, daemon: impl IntoIterator<Item = Call>) -> Outcome {
    run_with(conv, daemon, Options::default())
}

fn open() -> Options {
    Options {
        failmode: FailMode::Open,
        silent: false,
    }
}

fn silent() -> Options {
    Options {
        failmode: FailMode::Closed,
        silent: true,
    }
}

#[test]
fn skip_is_ignore_without_any_prompt() {
    let out = run([], [begin_with(Step::terminal(Action::Skip, ""))]);
    assert_eq!(out.verdict, Verdict::Ignore);
    assert!(!out.failed_open);
}

#[test]
fn skip_message_is_shown_as_info_unless_silent() {
    let note = "No second factor enrolled: run herarxctl totp add.";
    let out = run(
        [Shown::Info(note.into())],
        [begin_with(Step::terminal(Action::Skip, note))],
    );
    assert_eq!(out.verdict, Verdict::Ignore);

    let out = run_with(
        [],
        [begin_with(Step::terminal(Action::Skip, note))],
        silent(),
    );
    assert_eq!(out.verdict, Verdict::Ignore);
}

#[test]
fn right_code_is_success_after_exactly_one_hidden_prompt() {
    let out = run(
        [hidden(PROMPT, GOOD)],
        [
            begin_with(prompt()),
            Call::Answer(GOOD, Ok(Step::terminal(Action::Success, ""))),
        ],
    );
    assert_eq!(out.verdict, Verdict::Success);
}

#[test]
fn a_prompt_with_a_message_shows_it_first_even_when_silent() {
    let qr = "Scan this QR code with your authenticator app:\n\u{2588}\u{2580}\u{2584}";
    let menu = "1. Authenticator app\n2. Backup code";
    for opts in [Options::default(), silent()] {
        let out = run_with(
            [
                Shown::Info(qr.into()),
                hidden("Code from the app: ", GOOD),
                Shown::Info(menu.into()),
                Shown::Visible("Choose 1-2: ".into(), Some("2".into())),
                hidden(PROMPT, GOOD),
            ],
            [
                begin_with(Step::prompt("Code from the app: ").with_message(qr)),
                Call::Answer(
                    GOOD,
                    Ok(Step::prompt_visible("Choose 1-2: ").with_message(menu)),
                ),
                Call::Answer("2", Ok(prompt())),
                Call::Answer(GOOD, Ok(Step::terminal(Action::Success, ""))),
            ],
            opts,
        );
        assert_eq!(out.verdict, Verdict::Success);
    }
}

#[test]
fn a_visible_prompt_that_fails_cancels_like_a_hidden_one() {
    let out = run(
        [Shown::Visible("Choose 1-2: ".into(), None)],
        [
            begin_with(Step::prompt_visible("Choose 1-2: ")),
            Call::Cancel,
        ],
    );
    assert_eq!(out.verdict, Verdict::ConvErr);
}

#[test]
fn wrong_then_right_shows_the_daemons_second_prompt() {
    let again = "Wrong code. Verification code: ";
    let out = run(
        [hidden(PROMPT, BAD), hidden(again, GOOD)],
        [
            begin_with(prompt()),
            Call::Answer(BAD, Ok(Step::prompt(again))),
            Call::Answer(GOOD, Ok(Step::terminal(Action::Success, ""))),
        ],
    );
    assert_eq!(out.verdict, Verdict::Success);
}

#[test]
fn wrong_every_time_ends_denied_with_the_message_shown() {
    let again = "Wrong code. Verification code: ";
    let denied = "Too many wrong codes.";
    let out = run(
        [
            hidden(PROMPT, BAD),
            hidden(again, BAD),
            hidden(again, BAD),
            Shown::Error(denied.into()),
        ],
        [
            begin_with(prompt()),
            Call::Answer(BAD, Ok(Step::prompt(again))),
            Call::Answer(BAD, Ok(Step::prompt(again))),
            Call::Answer(BAD, Ok(Step::terminal(Action::Denied, denied))),
        ],
    );
    assert_eq!(out.verdict, Verdict::AuthErr);
}

#[test]
fn silent_flag_suppresses_the_denied_message() {
    let out = run_with(
        [hidden(PROMPT, BAD)],
        [
            begin_with(prompt()),
            Call::Answer(BAD, Ok(Step::terminal(Action::Denied, "Wrong code."))),
        ],
        silent(),
    );
    assert_eq!(out.verdict, Verdict::AuthErr);
}

#[test]
fn denied_at_begin_without_a_message_shows_nothing() {
    let out = run([], [begin_with(Step::terminal(Action::Denied, ""))]);
    assert_eq!(out.verdict, Verdict::AuthErr);
}

#[test]
fn locked_step_is_maxtries_with_its_message() {
    let locked = "Too many failures: try again in 5 minutes.";
    let out = run(
        [Shown::Error(locked.into())],
        [begin_with(Step::terminal(Action::Locked, locked))],
    );
    assert_eq!(out.verdict, Verdict::MaxTries);
}

#[test]
fn locked_after_an_answer_is_maxtries() {
    let out = run_with(
        [hidden(PROMPT, BAD)],
        [
            begin_with(prompt()),
            Call::Answer(BAD, Ok(Step::terminal(Action::Locked, "Locked."))),
        ],
        silent(),
    );
    assert_eq!(out.verdict, Verdict::MaxTries);
}

#[test]
fn success_message_is_info() {
    let out = run(
        [hidden(PROMPT, GOOD), Shown::Info("Welcome back.".into())],
        [
            begin_with(prompt()),
            Call::Answer(GOOD, Ok(Step::terminal(Action::Success, "Welcome back."))),
        ],
    );
    assert_eq!(out.verdict, Verdict::Success);
}

#[test]
fn unreachable_daemon_fails_closed_by_default() {
    let out = run(
        [Shown::Error(UNAVAILABLE.into())],
        [Call::Begin(Err(DaemonError::Unreachable(
            "connection refused".into(),
        )))],
    );
    assert_eq!(out.verdict, Verdict::AuthinfoUnavail);
    assert!(out.reason.contains("connection refused"), "{}", out.reason);
    assert!(out.reason.contains("failmode=closed"), "{}", out.reason);
}

#[test]
fn unreachable_daemon_says_nothing_when_the_application_asked_for_silence() {
    let out = run_with(
        [],
        [Call::Begin(Err(DaemonError::Unreachable(
            "connection refused".into(),
        )))],
        silent(),
    );
    assert_eq!(out.verdict, Verdict::AuthinfoUnavail);
}

#[test]
fn unreachable_daemon_with_failmode_open_is_ignore() {
    let out = run_with(
        [],
        [Call::Begin(Err(DaemonError::Unreachable(
            "ServiceUnknown".into(),
        )))],
        open(),
    );
    assert_eq!(out.verdict, Verdict::Ignore);
    assert!(out.failed_open);
    assert!(out.reason.contains("failmode=open"), "{}", out.reason);
}

#[test]
fn a_daemon_that_is_there_but_does_not_answer_fails_closed_even_with_failmode_open() {
    for mode in [open(), Options::default()] {
        let out = run_with(
            [Shown::Error(UNAVAILABLE.into())],
            [Call::Begin(Err(DaemonError::Unresponsive(
                "Begin timed out after 2s".into(),
            )))],
            mode,
        );
        assert_eq!(out.verdict, Verdict::AuthinfoUnavail, "{mode:?}");
        assert!(!out.failed_open);
        assert!(out.reason.contains("timed out"), "{}", out.reason);
    }
}

#[test]
fn daemon_lost_after_it_asked_for_a_code_fails_closed_even_with_failmode_open() {
    let out = run_with(
        [hidden(PROMPT, GOOD), Shown::Error(UNAVAILABLE.into())],
        [
            begin_with(prompt()),
            Call::Answer(GOOD, Err(DaemonError::Unreachable("timed out".into()))),
        ],
        open(),
    );
    assert_eq!(out.verdict, Verdict::AuthinfoUnavail);
}

#[test]
fn permission_denied_is_cred_insufficient() {
    let out = run(
        [],
        [Call::Begin(Err(DaemonError::Daemon(
            HerarxError::PermissionDenied("uid 1000 may not authenticate bob".into()),
        )))],
    );
    assert_eq!(out.verdict, Verdict::CredInsufficient);
}

#[test]
fn internal_error_fails_closed_even_with_failmode_open() {
    let out = run_with(
        [Shown::Error(UNAVAILABLE.into())],
        [Call::Begin(Err(DaemonError::Daemon(
            HerarxError::Internal("store unreadable".into()),
        )))],
        open(),
    );
    assert_eq!(out.verdict, Verdict::AuthinfoUnavail);
}

#[test]
fn other_daemon_errors_fail_closed() {
    for e in [
        HerarxError::InvalidArgument("user too long".into()),
        HerarxError::NoSuchTransaction("gone".into()),
        HerarxError::Busy("later".into()),
        HerarxError::ZBus(zbus::Error::InvalidReply),
    ] {
        let out = run_with(
            [hidden(PROMPT, GOOD), Shown::Error(UNAVAILABLE.into())],
            [begin_with(prompt()), Call::Answer(GOOD, error(e))],
            open(),
        );
        assert_eq!(out.verdict, Verdict::AuthinfoUnavail, "{}", out.reason);
    }
}

#[test]
fn locked_error_is_maxtries_and_its_sentence_is_shown() {
    let m = "Too many failures: the account is locked for 5 minutes.";
    let out = run(
        [hidden(PROMPT, BAD), Shown::Error(m.into())],
        [
            begin_with(prompt()),
            Call::Answer(BAD, error(HerarxError::Locked(m.into()))),
        ],
    );
    assert_eq!(out.verdict, Verdict::MaxTries);
}

#[test]
fn wrong_code_error_is_auth_err() {
    let out = run_with(
        [hidden(PROMPT, BAD)],
        [
            begin_with(prompt()),
            Call::Answer(BAD, error(HerarxError::WrongCode("Wrong code.".into()))),
        ],
        silent(),
    );
    assert_eq!(out.verdict, Verdict::AuthErr);
}

#[test]
fn conversation_failure_cancels_the_transaction() {
    let out = run(
        [Shown::Hidden(PROMPT.into(), None)],
        [begin_with(prompt()), Call::Cancel],
    );
    assert_eq!(out.verdict, Verdict::ConvErr);
}

#[test]
fn conversation_failure_on_a_later_prompt_cancels_too() {
    let again = "Wrong code. Verification code: ";
    let out = run(
        [hidden(PROMPT, BAD), Shown::Hidden(again.into(), None)],
        [
            begin_with(prompt()),
            Call::Answer(BAD, Ok(Step::prompt(again))),
            Call::Cancel,
        ],
    );
    assert_eq!(out.verdict, Verdict::ConvErr);
}

#[test]
fn a_daemon_that_prompts_forever_is_stopped_at_the_step_cap() {
    let cap = limits::STEPS_MAX as usize;
    let conv: Vec<Shown> = (0..cap).map(|_| hidden(PROMPT, BAD)).collect();
    let mut daemon = vec![begin_with(prompt())];
    daemon.extend((0..cap).map(|_| Call::Answer(BAD, Ok(prompt()))));
    daemon.push(Call::Cancel);
    let out = run(conv, daemon);
    assert_eq!(out.verdict, Verdict::AuthErr);
}

#[test]
fn responses_reach_the_daemon_unchanged() {
    for typed in ["", " 123 456 ", "ünïcödé", "a\tb", &"9".repeat(200)] {
        let typed: &'static str = Box::leak(typed.to_string().into_boxed_str());
        let out = run(
            [hidden(PROMPT, typed)],
            [
                begin_with(prompt()),
                Call::Answer(typed, Ok(Step::terminal(Action::Success, ""))),
            ],
        );
        assert_eq!(out.verdict, Verdict::Success);
    }
}

#[test]
fn the_prompt_is_shown_exactly_as_the_daemon_wrote_it() {
    let p = "Wrong code.\nVerification code for alice@host: ";
    let out = run(
        [hidden(p, GOOD)],
        [
            begin_with(Step::prompt(p)),
            Call::Answer(GOOD, Ok(Step::terminal(Action::Success, ""))),
        ],
    );
    assert_eq!(out.verdict, Verdict::Success);
}

#[test]
fn a_strict_double_catches_an_unexpected_prompt() {
    let result = std::panic::catch_unwind(|| {
        run(
            [],
            [
                begin_with(prompt()),
                Call::Answer(GOOD, Ok(Step::terminal(Action::Success, ""))),
            ],
        )
    });
    assert!(
        result.is_err(),
        "a prompt nobody scripted must fail the test"
    );
}

#[test]
fn a_success_hands_its_ticket_to_the_outcome_and_others_do_not() {
    let out = run(
        [hidden(PROMPT, GOOD)],
        [
            begin_with(prompt()),
            Call::Answer(
                GOOD,
                Ok(Step::terminal(Action::Success, "").with_ticket("t-123")),
            ),
        ],
    );
    assert_eq!(out.verdict, Verdict::Success);
    assert_eq!(out.ticket.as_deref().map(String::as_str), Some("t-123"));
    let out = run(
        [hidden(PROMPT, GOOD)],
        [
            begin_with(prompt()),
            Call::Answer(GOOD, Ok(Step::terminal(Action::Success, ""))),
        ],
    );
    assert!(out.ticket.is_none());
    // A skip never carries one, even if a daemon sent it.
    let out = run(
        [],
        [begin_with(
            Step::terminal(Action::Skip, "").with_ticket("t-9"),
        )],
    );
    assert!(out.ticket.is_none());
}

#[test]
fn the_session_hook_hands_over_the_ticket_and_never_fails_the_session() {
    let mut d = ScriptedDaemon::new([Call::OpenSession("t-1", Ok(true))]);
    assert_eq!(
        open_session("alice", Some("t-1"), &mut d),
        SessionOutcome::Trusted
    );
    let mut d = ScriptedDaemon::new([]);
    assert_eq!(open_session("alice", None, &mut d), SessionOutcome::Nothing);
    assert_eq!(
        open_session("alice", Some(""), &mut d),
        SessionOutcome::Nothing
    );
    let mut d = ScriptedDaemon::new([Call::OpenSession("t-2", Ok(false))]);
    assert!(matches!(
        open_session("alice", Some("t-2"), &mut d),
        SessionOutcome::NotTrusted(why) if why.contains("pam_loginuid")
    ));
    let mut d = ScriptedDaemon::new([Call::OpenSession(
        "t-3",
        Err(DaemonError::Unreachable("no bus".into())),
    )]);
    assert!(matches!(
        open_session("alice", Some("t-3"), &mut d),
        SessionOutcome::NotTrusted(why) if why.contains("no bus")
    ));
}

#[test]
fn a_wait_step_shows_its_message_and_waits_without_asking() {
    let touch = "Touch your security key.";
    for opts in [Options::default(), silent()] {
        let out = run_with(
            [Shown::Info(touch.into())],
            [
                begin_with(Step {
                    action: Action::Wait,
                    ..Step::terminal(Action::Wait, touch)
                }),
                Call::Wait(Ok(Step::terminal(Action::Success, ""))),
            ],
            opts,
        );
        assert_eq!(out.verdict, Verdict::Success);
    }
    // No touch: the daemon falls back to a code prompt, which the module then asks.
    let out = run(
        [Shown::Info(touch.into()), hidden(PROMPT, GOOD)],
        [
            begin_with(Step::terminal(Action::Wait, touch)),
            Call::Wait(Ok(prompt())),
            Call::Answer(GOOD, Ok(Step::terminal(Action::Success, ""))),
        ],
    );
    assert_eq!(out.verdict, Verdict::Success);
    // The daemon lost while waiting: fail closed.
    let out = run_with(
        [Shown::Info(touch.into()), Shown::Error(UNAVAILABLE.into())],
        [
            begin_with(Step::terminal(Action::Wait, touch)),
            Call::Wait(Err(DaemonError::Unreachable("timeout".into()))),
        ],
        open(),
    );
    assert_eq!(out.verdict, Verdict::AuthinfoUnavail);
}
