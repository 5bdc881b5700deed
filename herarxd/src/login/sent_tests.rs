//! Logins with codes sent by text message, through a real command gateway (a shell script
//! that records what it is given), the store and the login core.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::store::FactorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::tests::{Harness, NOW, code, harness_with};
use super::*;
use crate::config::Config;
use crate::state::session_trust::NO_SESSION;
use crate::store::AuditResult;
use crate::store::contact_enrollments::{ContactBeginOutcome, NewContact};
use herarx_proto::{Action, Step};

const NUMBER: &str = "+441234567123";

/// A gateway command that appends each message (stdin) to `out`, one per line; exits with
/// the content of `dir/exit` when that file exists.
fn gateway(dir: &Path) -> PathBuf {
    let script = dir.join("sms-send");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nset -e\n[ -f {d}/exit ] && exit \"$(cat {d}/exit)\"\n{{ cat; echo; }} >> {d}/out\n",
            d = dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

struct Sms {
    h: Harness,
    dir: tempfile::TempDir,
}

impl Sms {
    fn new(extra: &str) -> Sms {
        let dir = tempfile::tempdir().unwrap();
        let script = gateway(dir.path());
        let config = Config::parse(&format!(
            "[sms]\ngateway = \"command\"\ncommand = [\"{}\", \"{{to}}\"]\n{extra}",
            script.display()
        ))
        .unwrap();
        config.validate().unwrap();
        Sms {
            h: harness_with(config),
            dir,
        }
    }

    /// Messages sent so far.
    fn sent(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("out"))
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The code in the last message.
    fn last_code(&self) -> String {
        let last = self.sent().pop().expect("a message was sent");
        last.split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == 6)
            .expect("a 6-digit code")
            .to_owned()
    }

    fn fail_delivery(&self, on: bool) {
        let f = self.dir.path().join("exit");
        if on {
            std::fs::write(f, "1").unwrap();
        } else {
            let _ = std::fs::remove_file(f);
        }
    }

    /// Adds `NUMBER` for `user` in the store, as a confirmed enrolment does.
    fn add_number(&self, user: &str) -> String {
        let ctx = AuditCtx {
            user: user.into(),
            ..AuditCtx::default()
        };
        let mut store = self.h.state.store();
        let (o, _) = store
            .begin_contact_enrollment(
                &ctx,
                &NewContact {
                    kind: FactorKind::Sms,
                    destination: NUMBER,
                    name: "phone",
                    replace: None,
                },
                "",
                NOW - 100,
            )
            .unwrap();
        let ContactBeginOutcome::Started(issued) = o else {
            panic!("not started")
        };
        let (o, _) = store
            .confirm_contact_enrollment(&ctx, &issued.id, &issued.code, NOW - 100)
            .unwrap();
        match o {
            crate::store::enrollments::ConfirmOutcome::Enrolled(info) => info.id,
            other => panic!("{other:?}"),
        }
    }

    /// A TOTP factor (SEED) made the primary method.
    fn app_primary(&self, user: &str) {
        let mut store = self.h.state.store();
        let id = crate::store::factors::tests::enrol(store.sqlite_mut(), user, super::tests::SEED);
        let ctx = AuditCtx {
            user: user.into(),
            ..AuditCtx::default()
        };
        store.set_primary(&ctx, &id, NOW - 50).unwrap();
    }

    fn begin(&self, user: &str, now: u64) -> (String, Step) {
        self.h
            .logins
            .begin(
                &Caller {
                    bus_name: ":1.7".into(),
                    uid: 0,
                    session: NO_SESSION,
                    login_uid: None,
                    keys_allowed: true,
                },
                &Request {
                    user,
                    service: "sshd",
                    rhost: "",
                    tty: "",
                    ssh_auth_info: "",
                },
                now,
            )
            .unwrap()
    }

    fn answer(&self, id: &str, text: &str, now: u64) -> Step {
        self.h.logins.answer(":1.7", id, text, now).unwrap()
    }

    /// A login that starts with the number: `Begin` only says it is sending (nothing went
    /// out yet, and `Begin` never waits for the gateway); the `Wait` step's answer sends.
    fn start(&self, user: &str, now: u64) -> (String, Step) {
        let before = self.sent().len();
        let (id, step) = self.begin(user, now);
        assert_eq!(
            step,
            Step::wait("Sending a code to +44 ••• ••• 123…"),
            "the first step"
        );
        assert_eq!(self.sent().len(), before, "Begin sent nothing");
        assert!(self.h.logins.answer_may_block(":1.7", &id));
        let step = self.answer(&id, "", now);
        (id, step)
    }

    /// A menu choice of the number, then its `Wait` step's answer.
    fn choose(&self, id: &str, choice: &str, now: u64) -> Step {
        let step = self.answer(id, choice, now);
        if step.action != Action::Wait {
            return step;
        }
        self.answer(id, "", now)
    }
}

fn h_live(s: &Sms) -> usize {
    s.h.logins.live()
}

#[test]
fn a_number_as_primary_gets_its_code_at_the_start_and_it_logs_in_once() {
    let s = Sms::new("");
    s.add_number("alice");
    let (id, step) = s.start("alice", NOW);
    assert_eq!(step.prompt, SENT_PROMPT);
    assert_eq!(
        step.message,
        "A code was sent to +44 ••• ••• 123. It works for 5 minutes."
    );
    assert_eq!(s.sent().len(), 1);
    let text = &s.sent()[0];
    assert!(
        text.contains("alice") && text.contains("host.example"),
        "{text}"
    );
    let code = s.last_code();
    let step = s.answer(&id, &code, NOW + 5);
    assert_eq!(step.action, Action::Success);
    // The same code again, in a new login: refused (and that login sent a new one).
    let (id, _) = s.start("alice", NOW + 6);
    let step = s.answer(&id, &code, NOW + 7);
    assert_eq!(step, Step::prompt(SENT_PROMPT_AFTER_WRONG));
}

#[test]
fn a_wrong_sent_code_reprompts_then_denies() {
    let s = Sms::new("");
    s.add_number("alice");
    let (id, _) = s.start("alice", NOW);
    let right: u32 = s.last_code().parse().unwrap();
    let wrong = format!("{:06}", (right + 1) % 1_000_000);
    for _ in 0..2 {
        assert_eq!(
            s.answer(&id, &wrong, NOW + 1),
            Step::prompt(SENT_PROMPT_AFTER_WRONG)
        );
    }
    assert_eq!(
        s.answer(&id, &wrong, NOW + 1),
        Step::terminal(Action::Denied, WRONG_CODE)
    );
}

#[test]
fn an_expired_code_is_refused() {
    // A login long enough to outlast its code.
    let s = Sms::new("[login]\ntimeout_seconds = 600\n");
    s.add_number("alice");
    let (id, _) = s.start("alice", NOW);
    let code = s.last_code();
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    assert_eq!(
        s.answer(&id, &wrong, NOW + 299),
        Step::prompt(SENT_PROMPT_AFTER_WRONG),
        "not yet expired: a wrong code is just wrong"
    );
    assert_eq!(
        s.answer(&id, &code, NOW + 301),
        Step::prompt(SENT_PROMPT_AFTER_EXPIRED)
    );
}

#[test]
fn a_new_code_waits_for_resend_after_and_the_old_one_still_works() {
    let s = Sms::new("");
    s.add_number("alice");
    let (id, _) = s.start("alice", NOW);
    let first = s.last_code();
    // Enter opens the menu even with one way in: that is where a new code is asked for.
    let menu = s.answer(&id, "", NOW + 1);
    assert_eq!(menu.prompt, MENU_PROMPT);
    assert!(
        menu.message.contains("1. Text a code to +44 ••• ••• 123"),
        "{}",
        menu.message
    );
    // Too soon: a note, nothing sent.
    let step = s.choose(&id, "1", NOW + 10);
    assert!(
        step.message
            .contains("you can ask for a new one in 20 seconds"),
        "{}",
        step.message
    );
    assert_eq!(s.sent().len(), 1);
    // After the wait: a new one goes out.
    let step = s.choose(&id, "1", NOW + 31);
    assert_eq!(step.prompt, SENT_PROMPT);
    assert_eq!(s.sent().len(), 2);
    // Either code is good while it lasts; the first one here.
    assert_eq!(s.answer(&id, &first, NOW + 32).action, Action::Success);
}

#[test]
fn the_flood_limit_stops_sending_and_says_when() {
    let s = Sms::new("[sent_codes]\nmax_per_user_per_hour = 2\nresend_after = \"0\"\n");
    s.add_number("alice");
    // Two codes (the enrolment's counts apart): the first at the start, one more on asking.
    let (id, step) = s.start("alice", NOW);
    assert_eq!(step.prompt, SENT_PROMPT);
    assert_eq!(s.answer(&id, "", NOW + 1).prompt, MENU_PROMPT);
    assert_eq!(s.choose(&id, "1", NOW + 2).prompt, SENT_PROMPT);
    assert_eq!(s.answer(&id, "", NOW + 3).prompt, MENU_PROMPT);
    // Refused: back to the code already sent, which still works.
    let step = s.choose(&id, "1", NOW + 4);
    assert_eq!(step.prompt, SENT_PROMPT);
    assert!(
        step.message.contains("Too many codes were sent recently"),
        "{}",
        step.message
    );
    assert_eq!(s.sent().len(), 2, "nothing more went out");
    assert_eq!(
        s.answer(&id, &s.last_code(), NOW + 5).action,
        Action::Success
    );
}

#[test]
fn a_failed_delivery_is_said_audited_and_falls_back_to_the_app() {
    let s = Sms::new("");
    let number = s.add_number("alice");
    s.h.enrol("alice");
    // The number is the primary method, but cannot be reached.
    let ctx = AuditCtx {
        user: "alice".into(),
        ..AuditCtx::default()
    };
    s.h.state
        .store()
        .set_primary(&ctx, &number, NOW - 10)
        .unwrap();
    s.fail_delivery(true);
    let (id, step) = s.start("alice", NOW);
    assert_eq!(step.prompt, PROMPT_WITH_MENU);
    assert!(
        step.message
            .contains("could not be sent to +44 ••• ••• 123"),
        "{}",
        step.message
    );
    let failed =
        s.h.audit()
            .into_iter()
            .find(|a| a.result == AuditResult::Error)
            .expect("an audit row for the failed delivery");
    assert!(failed.reason.contains("not delivered"), "{}", failed.reason);
    assert_eq!(s.answer(&id, &code(NOW), NOW + 1).action, Action::Success);
}

#[test]
fn a_user_with_only_a_number_that_cannot_be_reached_is_denied_with_why() {
    let s = Sms::new("");
    s.add_number("alice");
    s.fail_delivery(true);
    let (id, step) = s.start("alice", NOW);
    assert_eq!(step.action, Action::Denied);
    assert_eq!(h_live(&s), 0, "the login {id} ended");
    assert!(
        step.message.contains("could not be sent"),
        "{}",
        step.message
    );
}

#[test]
fn the_app_user_picks_the_number_in_the_menu() {
    let s = Sms::new("");
    s.add_number("alice");
    s.app_primary("alice");
    let (id, step) = s.begin("alice", NOW);
    assert_eq!(step.prompt, PROMPT_WITH_MENU);
    assert!(s.sent().is_empty(), "nothing is sent before it is chosen");
    let menu = s.answer(&id, "", NOW + 1);
    assert!(
        menu.message.contains("1. Authenticator app"),
        "{}",
        menu.message
    );
    assert!(
        menu.message.contains("2. Text a code to"),
        "{}",
        menu.message
    );
    let step = s.choose(&id, "2", NOW + 2);
    assert_eq!(step.prompt, SENT_PROMPT);
    assert_eq!(
        s.answer(&id, &s.last_code(), NOW + 3).action,
        Action::Success
    );
}

#[test]
fn a_service_that_does_not_accept_sms_never_sends() {
    let s = Sms::new("[services.sshd]\nmethods = [\"totp\"]\n");
    s.add_number("alice");
    s.h.enrol("alice");
    let (id, step) = s.begin("alice", NOW);
    assert_eq!(step.prompt, PROMPT);
    assert!(s.sent().is_empty());
    // Enter offers nothing else here: the number is not one of this service's ways.
    assert_eq!(s.answer(&id, "", NOW + 1).prompt, PROMPT);
    s.add_number("bob");
    let (_, step) = s.begin("bob", NOW);
    assert_eq!(step, Step::terminal(Action::Denied, NO_ACCEPTED_METHOD));
    assert!(s.sent().is_empty());
}

#[test]
fn only_the_answer_after_sending_waits_for_the_gateway() {
    let s = Sms::new("");
    s.add_number("alice");
    s.app_primary("alice");
    let (id, _) = s.begin("alice", NOW);
    assert!(!s.h.logins.answer_may_block(":1.7", &id));
    let menu = s.answer(&id, "", NOW);
    assert!(
        !s.h.logins.answer_may_block(":1.7", &id),
        "{}",
        menu.message
    );
    let step = s.answer(&id, "2", NOW);
    assert_eq!(step, Step::wait("Sending a code to +44 ••• ••• 123…"));
    assert!(s.sent().is_empty(), "the choice itself sends nothing");
    assert!(s.h.logins.answer_may_block(":1.7", &id), "its answer sends");
}

#[test]
fn when_too_many_deliveries_are_under_way_nothing_waits_and_it_says_so() {
    let s = Sms::new("");
    s.add_number("alice");
    let held: Vec<_> = (0..crate::delivery::IN_FLIGHT_MAX)
        .map(|_| s.h.state.deliveries.try_start().unwrap())
        .collect();
    let (_, step) = s.start("alice", NOW);
    assert_eq!(step, Step::terminal(Action::Denied, sent::BUSY_SENDING));
    assert!(s.sent().is_empty());
    drop(held);
    let (_, step) = s.start("alice", NOW + 1);
    assert_eq!(
        step.prompt, SENT_PROMPT,
        "with the slots free again, it is sent"
    );
    assert_eq!(s.sent().len(), 1);
}
