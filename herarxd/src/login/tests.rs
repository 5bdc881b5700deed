//! The login transaction with an in-memory store, a fixed user table and scripted keys.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::config::Config;
use crate::crypto::totp::Params;
use crate::crypto::totp::code_at;
use crate::logger::MemoryLog;
use crate::state::session_trust::NO_SESSION;
use crate::store::AuditResult;
use crate::store::StorePolicy;
use crate::store::audit;
use crate::store::backup_codes::FEW_LEFT;
use crate::store::testing::open_store_with;
use crate::users::FixedUsers;
use herarx_proto::{Action, HerarxError, Step, limits};

pub(crate) const NOW: u64 = 1_700_000_000;
pub(crate) const SEED: &[u8] = b"12345678901234567890";

pub(crate) struct Harness {
    pub state: Arc<State>,
    pub logins: Logins,
    pub log: Arc<MemoryLog>,
    pub(crate) _dir: tempfile::TempDir,
}

pub(crate) fn harness_with(config: Config) -> Harness {
    harness_with_users(
        config,
        FixedUsers::new(&[("root", 0), ("alice", 1000), ("bob", 1001)]),
    )
}

pub(crate) fn harness_with_users(config: Config, users: FixedUsers) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store_with(dir.path(), StorePolicy::from_config(&config));
    let log = Arc::new(MemoryLog::default());
    let state = Arc::new(State::new(
        crate::state::shared(store),
        Arc::new(config),
        Arc::new(users),
        log.clone(),
        "host.example".into(),
    ));
    Harness {
        logins: Logins::new(state.clone()),
        state,
        log,
        _dir: dir,
    }
}

pub(crate) fn harness() -> Harness {
    harness_with(Config::default())
}

impl Harness {
    pub(crate) fn enrol(&self, user: &str) {
        let mut store = self.state.store();
        crate::store::factors::tests::enrol(store.sqlite_mut(), user, SEED);
    }

    pub(crate) fn audit(&self) -> Vec<audit::AuditEntry> {
        audit::recent(self.state.store().sqlite().conn(), 100).unwrap()
    }
}

pub(crate) fn code(t: u64) -> String {
    code_at(SEED, &Params::default(), t).unwrap().to_string()
}

pub(crate) fn wrong(t: u64) -> String {
    let c: u32 = code(t).parse().unwrap();
    format!("{:06}", (c + 1) % 1_000_000)
}

fn root() -> Caller {
    Caller {
        bus_name: ":1.7".into(),
        uid: 0,
        session: NO_SESSION,
        login_uid: None,
        keys_allowed: true,
    }
}

/// A login through `login` (not `sshd`, which is remote whatever its rhost): `rhost` empty is
/// the console.
fn begin(h: &Harness, user: &str, rhost: &str) -> (String, Step) {
    h.logins
        .begin(
            &root(),
            &Request {
                user,
                service: "login",
                rhost,
                tty: "",
                ssh_auth_info: "",
            },
            NOW,
        )
        .unwrap()
}

#[test]
fn a_right_code_succeeds() {
    let h = harness();
    h.enrol("alice");
    let (id, step) = begin(&h, "alice", "192.0.2.1");
    assert_eq!(step, Step::prompt("Verification code: "));
    assert_eq!(id.len(), 32);
    let step = h.logins.answer(":1.7", &id, &code(NOW), NOW + 1).unwrap();
    assert_eq!(step.action, Action::Success);
    assert_eq!(h.logins.live(), 0);
    let a = &h.audit()[0];
    assert_eq!(
        (a.result, a.remote, a.method.as_str()),
        (AuditResult::Success, true, "totp")
    );
}

#[test]
fn wrong_codes_reprompt_then_deny_at_max_tries() {
    let h = harness();
    h.enrol("alice");
    let (id, _) = begin(&h, "alice", "");
    for _ in 0..2 {
        let step = h.logins.answer(":1.7", &id, &wrong(NOW), NOW).unwrap();
        assert_eq!(step, Step::prompt("Wrong code. Verification code: "));
    }
    let step = h.logins.answer(":1.7", &id, &wrong(NOW), NOW).unwrap();
    assert_eq!(step, Step::terminal(Action::Denied, "Wrong code."));
    assert_eq!(h.logins.live(), 0);
    assert!(h.logins.answer(":1.7", &id, &code(NOW), NOW).is_err());
}

#[test]
fn a_wrong_then_right_code_succeeds() {
    let h = harness();
    h.enrol("alice");
    let (id, _) = begin(&h, "alice", "");
    h.logins.answer(":1.7", &id, "12 34", NOW).unwrap();
    let step = h.logins.answer(":1.7", &id, &code(NOW), NOW).unwrap();
    assert_eq!(step.action, Action::Success);
}

#[test]
fn a_used_code_is_refused_with_its_own_prompt() {
    let h = harness();
    h.enrol("alice");
    let (id, _) = begin(&h, "alice", "");
    h.logins.answer(":1.7", &id, &code(NOW), NOW).unwrap();
    let (id, _) = begin(&h, "alice", "");
    let step = h.logins.answer(":1.7", &id, &code(NOW), NOW + 2).unwrap();
    assert_eq!(
        step,
        Step::prompt("That code was already used; wait for the next one. Verification code: ")
    );
    let step = h
        .logins
        .answer(":1.7", &id, &code(NOW + 30), NOW + 30)
        .unwrap();
    assert_eq!(step.action, Action::Success);
}

#[test]
fn two_concurrent_logins_with_one_code_cannot_both_pass() {
    let h = Arc::new(harness());
    h.enrol("alice");
    let ids: Vec<String> = (0..8).map(|_| begin(&h, "alice", "").0).collect();
    let c = code(NOW);
    let threads: Vec<_> = ids
        .into_iter()
        .map(|id| {
            let h = h.clone();
            let c = c.clone();
            std::thread::spawn(move || h.logins.answer(":1.7", &id, &c, NOW).unwrap())
        })
        .collect();
    let successes = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|s| s.action == Action::Success)
        .count();
    assert_eq!(successes, 1);
}

#[test]
fn locking_ends_the_login_and_later_begins_say_so() {
    let h = harness();
    h.enrol("alice");
    let mut last = None;
    for _ in 0..2 {
        let (id, _) = begin(&h, "alice", "192.0.2.1");
        for _ in 0..3 {
            last = Some(h.logins.answer(":1.7", &id, &wrong(NOW), NOW));
            if last
                .as_ref()
                .is_some_and(|s| s.as_ref().is_ok_and(|s| s.action.is_terminal()))
            {
                break;
            }
        }
    }
    let last = last.unwrap().unwrap();
    assert_eq!(last.action, Action::Locked);
    assert_eq!(
        last.message,
        "Too many failed attempts: logins for this account are locked for 15 more minutes."
    );
    let (id, step) = h
        .logins
        .begin(
            &root(),
            &Request {
                user: "alice",
                service: "sshd",
                rhost: "192.0.2.1",
                tty: "",
                ssh_auth_info: "",
            },
            NOW + 60,
        )
        .unwrap();
    assert_eq!(id, "");
    assert_eq!(step.action, Action::Locked);
    assert!(step.message.contains("14 more minutes"), "{}", step.message);
    // The console is another scope.
    let (_, step) = h
        .logins
        .begin(
            &root(),
            &Request {
                user: "alice",
                service: "login",
                rhost: "",
                tty: "tty1",
                ssh_auth_info: "",
            },
            NOW + 60,
        )
        .unwrap();
    assert_eq!(step.action, Action::Prompt);
    assert_eq!(h.audit()[0].result, AuditResult::Locked);
}

#[test]
fn without_a_factor_ignore_skips_for_known_and_unknown_users_alike() {
    let mut config = Config::default();
    config.login.no_factor = "ignore".into();
    let h = harness_with(config);
    let (id, step) = begin(&h, "bob", "");
    assert_eq!((id.as_str(), step.action), ("", Action::Skip));
    let (id, step) = begin(&h, "nosuchuser", "");
    assert_eq!((id.as_str(), step.action), ("", Action::Skip));
}

#[test]
fn without_a_factor_deny_refuses_at_once_saying_how_to_enrol_for_known_and_unknown_alike() {
    let h = harness();
    assert_eq!(h.state.config().login.no_factor, "deny", "the default");
    for user in ["bob", "nosuchuser"] {
        let (id, step) = begin(&h, user, "");
        assert_eq!(id, "", "{user}");
        assert_eq!(
            step,
            Step::terminal(Action::Denied, NO_FACTOR_DENIED),
            "{user}"
        );
        let a = &h.audit()[0];
        assert_eq!(
            (a.result, a.reason.as_str()),
            (
                AuditResult::Denied,
                "no factor enrolled; login.no_factor = deny"
            )
        );
    }
    assert!(NO_FACTOR_DENIED.contains("herarxctl totp add"));
}

fn with_backup_codes(h: &Harness, user: &str) -> Vec<String> {
    let ctx = AuditCtx {
        user: user.into(),
        ..AuditCtx::default()
    };
    let (codes, _) = h.state.store().issue_backup_codes(&ctx, NOW).unwrap();
    codes.iter().map(|c| c.to_string()).collect()
}

#[test]
fn a_backup_code_works_at_the_code_prompt_once() {
    let h = harness();
    h.enrol("alice");
    let codes = with_backup_codes(&h, "alice");
    let (id, step) = begin(&h, "alice", "");
    assert_eq!(step, Step::prompt(PROMPT_WITH_MENU));
    let step = h.logins.answer(":1.7", &id, &codes[0], NOW).unwrap();
    assert_eq!(step, Step::terminal(Action::Success, ""));
    assert_eq!(h.audit()[0].reason, "backup code accepted (9 left)");
    let (id, _) = begin(&h, "alice", "");
    let step = h.logins.answer(":1.7", &id, &codes[0], NOW).unwrap();
    assert_eq!(step, Step::prompt(PROMPT_AFTER_WRONG), "used up");
}

#[test]
fn the_last_backup_codes_warn() {
    let h = harness();
    h.enrol("alice");
    let codes = with_backup_codes(&h, "alice");
    for (i, c) in codes.iter().enumerate() {
        let (id, _) = begin(&h, "alice", "");
        let step = h.logins.answer(":1.7", &id, c, NOW).unwrap();
        let left = 9 - i as u32;
        assert_eq!(step.action, Action::Success);
        assert_eq!(step.message, backup_code_message(left), "{left}");
        assert_eq!(step.message.is_empty(), left > FEW_LEFT, "{left}");
    }
    assert!(backup_code_message(0).contains("last backup code"));
}

#[test]
fn an_empty_answer_opens_the_menu_and_a_choice_leads_to_its_prompt() {
    let h = harness();
    h.enrol("alice");
    let codes = with_backup_codes(&h, "alice");
    let (id, _) = begin(&h, "alice", "192.0.2.1");
    let menu = h.logins.answer(":1.7", &id, "", NOW).unwrap();
    assert_eq!(menu.action, Action::PromptVisible);
    assert_eq!(menu.prompt, MENU_PROMPT);
    assert_eq!(
        menu.message,
        "Other ways to sign in:\n  1. Authenticator app\n  2. Backup code (10 left)"
    );
    let step = h.logins.answer(":1.7", &id, "7", NOW).unwrap();
    assert!(
        step.message.starts_with("\"7\" is not one of the choices."),
        "{step:?}"
    );
    let step = h.logins.answer(":1.7", &id, "2", NOW).unwrap();
    assert_eq!(step, Step::prompt(BACKUP_PROMPT));
    let step = h.logins.answer(":1.7", &id, "zzzz-zzzz", NOW).unwrap();
    assert_eq!(step, Step::prompt(BACKUP_PROMPT_AFTER_WRONG));
    let step = h.logins.answer(":1.7", &id, "?", NOW).unwrap();
    assert_eq!(step.action, Action::PromptVisible, "? opens the menu too");
    let step = h.logins.answer(":1.7", &id, "1", NOW).unwrap();
    assert_eq!(step, Step::prompt(PROMPT_WITH_MENU));
    let step = h.logins.answer(":1.7", &id, &codes[1], NOW).unwrap();
    assert_eq!(step.action, Action::Success);
    // Neither the menu nor empty answers counted as failures: only the one wrong code.
    assert_eq!(
        h.state
            .store()
            .failures("alice", &Scope::Remote("192.0.2.1".into()), NOW)
            .unwrap()
            .count,
        0,
        "the success cleared it"
    );
}

#[test]
fn with_the_app_alone_an_empty_answer_just_asks_again() {
    let h = harness();
    h.enrol("alice");
    let (id, _) = begin(&h, "alice", "");
    let step = h.logins.answer(":1.7", &id, "", NOW).unwrap();
    assert_eq!(step, Step::prompt(PROMPT));
    assert_eq!(
        h.state
            .store()
            .failures("alice", &Scope::Local, NOW)
            .unwrap()
            .count,
        0
    );
}

fn enrol_config(extra: &str) -> Config {
    let c = Config::parse(&format!("[login]\nno_factor = \"enroll\"\n{extra}")).unwrap();
    c.validate().unwrap();
    c
}

/// The secret shown in an enrolment step's message.
pub(crate) fn shown_secret(step: &Step) -> Vec<u8> {
    let key = step
        .message
        .lines()
        .find_map(|l| l.strip_prefix("Key: "))
        .unwrap()
        .replace(' ', "");
    data_encoding::BASE32_NOPAD.decode(key.as_bytes()).unwrap()
}

#[test]
fn enrolment_inside_the_login_shows_a_qr_then_backup_codes_and_succeeds() {
    let h = harness_with(enrol_config(""));
    let (id, step) = begin(&h, "bob", "");
    assert_eq!(step.action, Action::Prompt);
    assert_eq!(step.prompt, ENROL_PROMPT);
    assert!(
        step.message.contains("URI: otpauth://totp/"),
        "{}",
        step.message
    );
    let secret = shown_secret(&step);
    let right = code_at(&secret, &Params::default(), NOW)
        .unwrap()
        .to_string();
    let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 1) % 1_000_000);
    let step = h.logins.answer(":1.7", &id, &wrong, NOW).unwrap();
    assert_eq!(step, Step::prompt(ENROL_PROMPT_AFTER_WRONG));
    let step = h.logins.answer(":1.7", &id, &right, NOW).unwrap();
    assert_eq!(step.action, Action::PromptVisible);
    assert_eq!(step.prompt, SAVED_PROMPT);
    let codes: Vec<&str> = step
        .message
        .split_whitespace()
        .filter(|w| crate::store::backup_codes::normalize(w).is_some() && w.len() == 9)
        .collect();
    assert_eq!(codes.len(), 10, "{}", step.message);
    let last = h.logins.answer(":1.7", &id, "", NOW).unwrap();
    assert_eq!(last, Step::terminal(Action::Success, ""));
    assert!(
        h.audit()
            .iter()
            .any(|a| a.method == "enroll-in-login"
                && a.reason.starts_with("ENROLLED INSIDE A LOGIN")),
    );
    assert!(
        h.log
            .lines()
            .iter()
            .any(|l| l.contains("ENROLLED INSIDE A LOGIN"))
    );
    // The enrolment code does not log in again; the next one does; so do the codes.
    let (id, step) = begin(&h, "bob", "");
    assert_eq!(step, Step::prompt(PROMPT_WITH_MENU));
    let step = h.logins.answer(":1.7", &id, &right, NOW + 1).unwrap();
    assert_eq!(step, Step::prompt(PROMPT_AFTER_REPLAY));
    let next = code_at(&secret, &Params::default(), NOW + 30)
        .unwrap()
        .to_string();
    let step = h.logins.answer(":1.7", &id, &next, NOW + 30).unwrap();
    assert_eq!(step.action, Action::Success);
    let (id, _) = begin(&h, "bob", "");
    let step = h.logins.answer(":1.7", &id, codes[0], NOW + 31).unwrap();
    assert_eq!(step.action, Action::Success);
    // No secret or code in the log.
    let key_b32 = data_encoding::BASE32_NOPAD.encode(&secret);
    assert!(!h.log.lines().is_empty(), "the login logged nothing");
    for l in h.log.lines() {
        assert!(
            !l.contains(&key_b32) && !l.contains(&right) && !l.contains(codes[1]),
            "{l}"
        );
    }
}

#[test]
fn enrolment_is_offered_only_where_and_while_policy_allows() {
    let h = harness_with(enrol_config("enroll_window = \"1d\"\n"));
    // Remote: refused (enroll_from = local by default).
    let (_, step) = begin(&h, "bob", "192.0.2.1");
    assert_eq!(step, Step::terminal(Action::Denied, NO_FACTOR_DENIED));
    assert!(
        h.audit()[0].reason.contains("enroll_from"),
        "{:?}",
        h.audit()[0]
    );
    // Unknown users cannot enrol.
    let (_, step) = begin(&h, "nosuchuser", "");
    assert_eq!(step.action, Action::Denied);
    // Locally within the window (it began at the first sight, above): offered.
    let (_, step) = h
        .logins
        .begin(
            &root(),
            &Request {
                user: "bob",
                service: "login",
                rhost: "",
                tty: "tty1",
                ssh_auth_info: "",
            },
            NOW + 86_399,
        )
        .unwrap();
    assert_eq!(step.prompt, ENROL_PROMPT);
    // After the window: refused.
    let (_, step) = h
        .logins
        .begin(
            &root(),
            &Request {
                user: "bob",
                service: "login",
                rhost: "",
                tty: "tty1",
                ssh_auth_info: "",
            },
            NOW + 86_400,
        )
        .unwrap();
    assert_eq!(step.action, Action::Denied);
    assert!(h.audit()[0].reason.contains("window"), "{:?}", h.audit()[0]);
}

#[test]
fn required_groups_and_exempt_groups_decide_who_must_have_a_factor() {
    let config = Config::parse(
        "[login]\nrequired = \"groups\"\nrequired_groups = [\"wheel\"]\nexempt_groups = [\"ci\"]\n",
    )
    .unwrap();
    config.validate().unwrap();
    let h = harness_with_users(
        config,
        FixedUsers::new(&[("root", 0), ("alice", 1000), ("bob", 1001), ("carol", 1002)])
            .with_groups("alice", &["wheel"])
            .with_groups("bob", &["wheel", "ci"]),
    );
    let (_, step) = begin(&h, "alice", "");
    assert_eq!(step.action, Action::Denied, "wheel must");
    for user in ["bob", "carol", "nosuchuser"] {
        let (_, step) = begin(&h, user, "");
        assert_eq!(step.action, Action::Skip, "{user}");
    }
    assert_eq!(
        h.audit()[1].reason,
        "not required: in none of login.required_groups"
    );
    // Enrolled users are always asked, required or not.
    h.enrol("carol");
    let (_, step) = begin(&h, "carol", "");
    assert_eq!(step, Step::prompt(PROMPT));
}

#[test]
fn allow_until_a_deadline_then_deny() {
    let config =
        Config::parse("[login]\nno_factor = \"allow\"\nallow_until = \"2023-11-15\"\n").unwrap();
    config.validate().unwrap();
    let h = harness_with(config);
    let deadline = 1_700_006_400; // 2023-11-15T00:00:00Z
    let (_, step) = h
        .logins
        .begin(
            &root(),
            &Request {
                user: "bob",
                service: "sshd",
                rhost: "",
                tty: "",
                ssh_auth_info: "",
            },
            deadline - 1,
        )
        .unwrap();
    assert_eq!(step.action, Action::Skip);
    let (_, step) = h
        .logins
        .begin(
            &root(),
            &Request {
                user: "bob",
                service: "sshd",
                rhost: "",
                tty: "",
                ssh_auth_info: "",
            },
            deadline,
        )
        .unwrap();
    assert_eq!(step, Step::terminal(Action::Denied, NO_FACTOR_DENIED));
}

#[test]
fn a_service_accepts_only_its_methods() {
    let config = Config::parse(
        "[services.sudo]\nmethods = [\"totp\"]\n[services.recovery]\nmethods = [\"backup-code\"]\n",
    )
    .unwrap();
    config.validate().unwrap();
    let h = harness_with(config);
    h.enrol("alice");
    let codes = with_backup_codes(&h, "alice");
    // sudo: the app only; a backup code is a wrong code there, and no menu is offered.
    let (id, step) = begin_service(&h, "sudo", "");
    assert_eq!(step, Step::prompt(PROMPT));
    let step = h.logins.answer(":1.7", &id, &codes[0], NOW).unwrap();
    assert_eq!(step, Step::prompt(PROMPT_AFTER_WRONG));
    let step = h.logins.answer(":1.7", &id, "", NOW).unwrap();
    assert_eq!(step, Step::prompt(PROMPT), "no menu with one method");
    let step = h.logins.answer(":1.7", &id, &code(NOW), NOW).unwrap();
    assert_eq!(step.action, Action::Success);
    // recovery: backup codes only; the app's code is refused, the unused backup code works.
    let (id, step) = begin_service(&h, "recovery", "");
    assert_eq!(step, Step::prompt(BACKUP_PROMPT));
    let step = h
        .logins
        .answer(":1.7", &id, &code(NOW + 30), NOW + 30)
        .unwrap();
    assert_eq!(step, Step::prompt(BACKUP_PROMPT_AFTER_WRONG));
    let step = h.logins.answer(":1.7", &id, &codes[0], NOW + 30).unwrap();
    assert_eq!(step.action, Action::Success);
    // A user with none of the accepted methods is refused, saying so.
    let bob = Config::parse("[services.sudo]\nmethods = [\"backup-code\"]\n").unwrap();
    let h = harness_with(bob);
    h.enrol("bob");
    let (_, step) = h
        .logins
        .begin(
            &root(),
            &Request {
                user: "bob",
                service: "sudo",
                rhost: "",
                tty: "",
                ssh_auth_info: "",
            },
            NOW,
        )
        .unwrap();
    assert_eq!(step, Step::terminal(Action::Denied, NO_ACCEPTED_METHOD));
}

// ---- security keys --------------------------------------------------------------

use crate::fido2::tests::{Scripted, ScriptedDevice};
use crate::fido2::{Algorithm, NewCredential};

const UP: u8 = 0x01;
const UV: u8 = 0x04;

fn device(flags: u8) -> ScriptedDevice {
    ScriptedDevice {
        key: Scripted::p256(),
        flags,
        counter: 0.into(),
    }
}

/// A harness whose machine has `dev` plugged in, with `dev`'s key registered for alice
/// (unless `register` is false).
fn key_harness(config: Config, dev: Arc<ScriptedDevice>, register: bool) -> Harness {
    let Harness {
        state,
        logins,
        log,
        _dir,
    } = harness_with(config);
    drop(logins);
    let state = Arc::new(Arc::try_unwrap(state).ok().unwrap().with_keys(dev.clone()));
    let h = Harness {
        logins: Logins::new(state.clone()),
        state,
        log,
        _dir,
    };
    if register {
        let ctx = AuditCtx {
            user: "alice".into(),
            ..AuditCtx::default()
        };
        h.state
            .store()
            .add_fido2_key(
                &ctx,
                "YubiKey",
                &NewCredential {
                    credential_id: dev.key.cred_id.clone(),
                    cose_key: dev.key.cose_key(),
                    algorithm: Algorithm::Es256,
                    aaguid: dev.key.aaguid,
                    counter: 0,
                    user_verified: false,
                    attestation_format: "none".into(),
                },
                true,
                NOW,
            )
            .unwrap();
    }
    h
}

#[test]
fn a_local_login_with_a_key_is_a_touch() {
    let h = key_harness(Config::default(), Arc::new(device(UP)), true);
    let (id, step) = begin(&h, "alice", "");
    assert_eq!(step, Step::wait(TOUCH_MESSAGE));
    assert!(h.logins.answer_may_block(":1.7", &id));
    let step = h.logins.answer(":1.7", &id, "", NOW).unwrap();
    assert_eq!(step, Step::terminal(Action::Success, ""));
    let a = &h.audit()[0];
    assert_eq!(
        (a.method.as_str(), a.result),
        ("fido2", AuditResult::Success)
    );
    // Again: the counter moved on, the next assertion passes too.
    let (id, _) = begin(&h, "alice", "");
    assert_eq!(
        h.logins.answer(":1.7", &id, "", NOW).unwrap().action,
        Action::Success
    );
}

#[test]
fn a_caller_outside_a_local_session_of_its_own_is_not_offered_a_key() {
    // A screen locker that runs as alice but not in a local login of hers (the D-Bus layer
    // asked `local_session`): the key is not driven for it; the code is asked instead.
    let h = key_harness(Config::default(), Arc::new(device(UP)), true);
    h.enrol("alice");
    let mut locker = Caller {
        bus_name: ":1.9".into(),
        uid: 1000,
        session: NO_SESSION,
        login_uid: None,
        keys_allowed: false,
    };
    let (_, step) = h
        .logins
        .begin(
            &locker,
            &Request {
                user: "alice",
                service: "login",
                rhost: "",
                tty: "",
                ssh_auth_info: "",
            },
            NOW,
        )
        .unwrap();
    assert_eq!(step.action, Action::Prompt, "{step:?}");
    assert_ne!(step, Step::wait(TOUCH_MESSAGE));
    // The failing twin: the same locker in a local session of alice's gets the touch.
    locker.bus_name = ":1.10".into();
    locker.keys_allowed = true;
    let (_, step) = h
        .logins
        .begin(
            &locker,
            &Request {
                user: "alice",
                service: "login",
                rhost: "",
                tty: "",
                ssh_auth_info: "",
            },
            NOW,
        )
        .unwrap();
    assert_eq!(step, Step::wait(TOUCH_MESSAGE));
}

#[test]
fn remote_logins_never_offer_a_key() {
    let h = key_harness(Config::default(), Arc::new(device(UP)), true);
    let (_, step) = begin(&h, "alice", "192.0.2.1");
    assert_eq!(step, Step::terminal(Action::Denied, KEYS_NOT_REMOTE));
    h.enrol("alice");
    let (id, step) = begin(&h, "alice", "192.0.2.1");
    assert_eq!(step, Step::prompt(PROMPT));
    let step = h.logins.answer(":1.7", &id, "", NOW).unwrap();
    assert_eq!(
        step,
        Step::prompt(PROMPT),
        "no menu: the key is not offered"
    );
}

#[test]
fn without_the_key_the_login_falls_back_to_the_code() {
    // The plugged-in key is not alice's.
    let h = key_harness(Config::default(), Arc::new(device(UP)), false);
    let other = device(UP);
    let ctx = AuditCtx {
        user: "alice".into(),
        ..AuditCtx::default()
    };
    h.state
        .store()
        .add_fido2_key(
            &ctx,
            "lost key",
            &NewCredential {
                credential_id: other.key.cred_id.clone(),
                cose_key: other.key.cose_key(),
                algorithm: Algorithm::Es256,
                aaguid: other.key.aaguid,
                counter: 0,
                user_verified: false,
                attestation_format: "none".into(),
            },
            true,
            NOW,
        )
        .unwrap();
    h.enrol("alice");
    let (id, step) = begin(&h, "alice", "");
    assert_eq!(step.action, Action::Wait);
    let step = h.logins.answer(":1.7", &id, "", NOW).unwrap();
    assert_eq!(
        step,
        Step::prompt(format!("{KEY_NOT_REGISTERED} {PROMPT_WITH_MENU}"))
    );
    assert!(!h.logins.answer_may_block(":1.7", &id));
    let step = h.logins.answer(":1.7", &id, &code(NOW), NOW).unwrap();
    assert_eq!(step.action, Action::Success);
}

#[test]
fn a_key_without_user_presence_is_refused_and_counted() {
    let h = key_harness(Config::default(), Arc::new(device(0)), true);
    h.enrol("alice");
    let (id, _) = begin(&h, "alice", "");
    let step = h.logins.answer(":1.7", &id, "", NOW).unwrap();
    assert_eq!(
        step,
        Step::prompt(format!("{KEY_REFUSED} {PROMPT_WITH_MENU}"))
    );
    let a = &h.audit()[0];
    assert!(a.reason.starts_with("fido2-user-not-present"), "{a:?}");
    assert_eq!(
        h.state
            .store()
            .failures("alice", &Scope::Local, NOW)
            .unwrap()
            .count,
        1
    );
}

#[test]
fn a_counter_going_backwards_is_refused_as_a_possible_clone() {
    let dev = Arc::new(device(UP));
    let h = key_harness(Config::default(), dev.clone(), true);
    let factor = h.state.store().fido2_keys("alice").unwrap()[0]
        .factor_id
        .clone();
    let ctx = AuditCtx {
        user: "alice".into(),
        ..AuditCtx::default()
    };
    // The store has seen counter 100; the key says 1.
    assert!(
        h.state
            .store()
            .fido2_accept(&ctx, &Scope::Local, &factor, 100, NOW)
            .unwrap()
            .0
            == crate::store::fido2::KeyAcceptance::Accepted
    );
    let (id, _) = begin(&h, "alice", "");
    let step = h.logins.answer(":1.7", &id, "", NOW).unwrap();
    assert_eq!(step, Step::terminal(Action::Denied, KEY_CLONED));
    assert!(
        h.audit()[0].reason.contains("counter-regression"),
        "{:?}",
        h.audit()[0]
    );
    assert!(
        h.log
            .lines()
            .iter()
            .any(|l| l.contains("counter-regression"))
    );
}

#[test]
fn no_key_plugged_in_says_so_and_offers_the_rest() {
    struct Nothing;
    impl crate::fido2::Authenticator for Nothing {
        fn list(&self) -> Vec<crate::fido2::DeviceInfo> {
            Vec::new()
        }
        fn make_credential(
            &self,
            _: &crate::fido2::DeviceInfo,
            _: &str,
            _: &[u8; 32],
            _: &[u8],
            _: &[crate::fido2::CredId],
            _: &[Algorithm],
            _: crate::fido2::Uv,
            _: Option<&str>,
            _: std::time::Instant,
        ) -> Result<crate::fido2::RawRegistration, crate::fido2::DeviceError> {
            Err(crate::fido2::DeviceError::NotPresent)
        }
        fn get_assertion(
            &self,
            _: &crate::fido2::DeviceInfo,
            _: &str,
            _: &[u8; 32],
            _: &[crate::fido2::CredId],
            _: crate::fido2::Uv,
            _: Option<&str>,
            _: std::time::Instant,
        ) -> Result<crate::fido2::RawAssertion, crate::fido2::DeviceError> {
            Err(crate::fido2::DeviceError::NotPresent)
        }
        fn probe(
            &self,
            _: &crate::fido2::DeviceInfo,
            _: &str,
            _: &[crate::fido2::CredId],
            _: std::time::Instant,
        ) -> Result<bool, crate::fido2::DeviceError> {
            Err(crate::fido2::DeviceError::NotPresent)
        }
        fn pin_retries(
            &self,
            _: &crate::fido2::DeviceInfo,
            _: std::time::Instant,
        ) -> Result<u32, crate::fido2::DeviceError> {
            Err(crate::fido2::DeviceError::NotPresent)
        }
    }
    let dev = Arc::new(device(UP));
    let Harness {
        state,
        logins,
        log: _log,
        _dir,
    } = key_harness(Config::default(), dev, true);
    drop(logins);
    let state = Arc::try_unwrap(state)
        .ok()
        .unwrap()
        .with_keys(Arc::new(Nothing));
    let state = Arc::new(state);
    let logins = Logins::new(state.clone());
    let (id, step) = logins
        .begin(
            &root(),
            &Request {
                user: "alice",
                service: "login",
                rhost: "",
                tty: "",
                ssh_auth_info: "",
            },
            NOW,
        )
        .unwrap();
    assert_eq!(step.action, Action::Wait);
    let step = logins.answer(":1.7", &id, "", NOW).unwrap();
    assert_eq!(
        step,
        Step::terminal(Action::Denied, KEY_NOT_PLUGGED),
        "nothing else"
    );
}

#[test]
fn the_menu_offers_the_key_and_policy_can_ask_for_the_code_first() {
    let mut config = Config::default();
    config.fido2.keys_first = false;
    let h = key_harness(config, Arc::new(device(UP)), true);
    h.enrol("alice");
    let (id, step) = begin(&h, "alice", "");
    assert_eq!(step, Step::prompt(PROMPT_WITH_MENU));
    let menu = h.logins.answer(":1.7", &id, "", NOW).unwrap();
    assert_eq!(
        menu.message,
        "Other ways to sign in:\n  1. Security key\n  2. Authenticator app"
    );
    let step = h.logins.answer(":1.7", &id, "1", NOW).unwrap();
    assert_eq!(step, Step::wait(TOUCH_MESSAGE));
    let step = h.logins.answer(":1.7", &id, "", NOW).unwrap();
    assert_eq!(step.action, Action::Success);
}

#[test]
fn policy_can_want_the_key_and_a_code_both() {
    let mut config = Config::default();
    config.fido2.key_alone = false;
    let h = key_harness(config.clone(), Arc::new(device(UP)), true);
    h.enrol("alice");
    let (id, step) = begin(&h, "alice", "");
    assert_eq!(step, Step::wait(TOUCH_MESSAGE));
    let step = h.logins.answer(":1.7", &id, "", NOW).unwrap();
    assert_eq!(
        step,
        Step::prompt(KEY_THEN_CODE_PROMPT),
        "the key is not enough"
    );
    let step = h.logins.answer(":1.7", &id, "", NOW).unwrap();
    assert_eq!(
        step,
        Step::prompt(PROMPT),
        "no menu: the codes are all that is left"
    );
    let step = h.logins.answer(":1.7", &id, &code(NOW), NOW).unwrap();
    assert_eq!(step.action, Action::Success);
    // A key that does not do it ends the login: no way around it with a code alone.
    let h = key_harness(config, Arc::new(device(0)), true);
    h.enrol("alice");
    let (id, _) = begin(&h, "alice", "");
    let step = h.logins.answer(":1.7", &id, "", NOW).unwrap();
    assert_eq!(step, Step::terminal(Action::Denied, KEY_REFUSED));
    // Remotely the key is never asked: the code alone, as always.
    let (_, step) = begin(&h, "alice", "192.0.2.1");
    assert_eq!(step, Step::prompt(PROMPT));
}

#[test]
fn user_verification_asks_the_pin_and_needs_the_uv_flag() {
    let mut config = Config::default();
    config.fido2.user_verification = "required".into();
    let h = key_harness(config.clone(), Arc::new(device(UP | UV)), true);
    let (id, step) = begin(&h, "alice", "");
    assert_eq!(step, Step::prompt(KEY_PIN_PROMPT));
    let step = h.logins.answer(":1.7", &id, "1234", NOW).unwrap();
    assert_eq!(step, Step::wait(TOUCH_MESSAGE));
    let step = h.logins.answer(":1.7", &id, "", NOW).unwrap();
    assert_eq!(step.action, Action::Success);
    // A key that did not verify the user is refused.
    let h = key_harness(config, Arc::new(device(UP)), true);
    let (id, _) = begin(&h, "alice", "");
    h.logins.answer(":1.7", &id, "1234", NOW).unwrap();
    let step = h.logins.answer(":1.7", &id, "", NOW).unwrap();
    assert_eq!(step, Step::terminal(Action::Denied, KEY_REFUSED));
    assert!(
        h.audit()[0].reason.starts_with("fido2-user-not-verified"),
        "{:?}",
        h.audit()[0]
    );
}

#[test]
fn remote_guessing_locks_its_source_then_the_remote_path_never_the_console() {
    let mut config = Config::default();
    config.login.max_tries = 5;
    config.lockout.max_failures = 3;
    config.lockout.remote_max_failures = 6;
    let h = harness_with(config);
    h.enrol("alice");
    let guess = |rhost: &str| {
        let (id, step) = begin(&h, "alice", rhost);
        if step.action != Action::Prompt {
            return step;
        }
        loop {
            let s = h.logins.answer(":1.7", &id, &wrong(NOW), NOW).unwrap();
            if s.action.is_terminal() {
                return s;
            }
        }
    };
    assert_eq!(guess("192.0.2.1").action, Action::Locked);
    assert_eq!(
        guess("192.0.2.1").action,
        Action::Locked,
        "that source stays locked"
    );
    // Another source still gets asked, until the path as a whole is locked.
    assert_eq!(guess("::ffff:192.0.2.2").action, Action::Locked);
    let (_, step) = begin(&h, "alice", "198.51.100.7");
    assert_eq!(step.action, Action::Locked, "remote path locked");
    assert!(step.message.contains("more minutes"));
    // The console is untouched.
    let (id, step) = begin(&h, "alice", "");
    assert_eq!(step, Step::prompt(PROMPT));
    let step = h.logins.answer(":1.7", &id, &code(NOW), NOW).unwrap();
    assert_eq!(step.action, Action::Success);
}

#[test]
fn only_root_or_the_user_may_begin() {
    let h = harness();
    h.enrol("alice");
    let alice = Caller {
        bus_name: ":1.9".into(),
        uid: 1000,
        session: NO_SESSION,
        login_uid: None,
        keys_allowed: true,
    };
    assert!(
        h.logins
            .begin(
                &alice,
                &Request {
                    user: "alice",
                    service: "xscreensaver",
                    rhost: "",
                    tty: ":0",
                    ssh_auth_info: ""
                },
                NOW,
            )
            .is_ok()
    );
    for user in ["bob", "root", "nosuchuser"] {
        let e = h
            .logins
            .begin(
                &alice,
                &Request {
                    user,
                    service: "xscreensaver",
                    rhost: "",
                    tty: ":0",
                    ssh_auth_info: "",
                },
                NOW,
            )
            .unwrap_err();
        assert!(
            matches!(e, HerarxError::PermissionDenied(_)),
            "{user}: {e:?}"
        );
    }
    assert_eq!(h.audit()[0].result, AuditResult::Refused);
}

#[test]
fn arguments_are_bounded_and_printable() {
    let h = harness();
    let long = "a".repeat(limits::USER_MAX + 1);
    for (user, service, rhost, tty) in [
        ("", "sshd", "", ""),
        (long.as_str(), "sshd", "", ""),
        ("al\nice", "sshd", "", ""),
        ("alice", "ss\x07hd", "", ""),
        ("alice", "sshd", "1.2.3.4\r", ""),
        ("alice", "sshd", "", "tty\x1b"),
    ] {
        let e = h
            .logins
            .begin(
                &root(),
                &Request {
                    user,
                    service,
                    rhost,
                    tty,
                    ssh_auth_info: "",
                },
                NOW,
            )
            .unwrap_err();
        assert!(matches!(e, HerarxError::InvalidArgument(_)), "{user:?}");
    }
    assert!(h.audit().iter().all(|a| !a.user.contains('\n')));
}

#[test]
fn a_transaction_belongs_to_its_connection() {
    let h = harness();
    h.enrol("alice");
    let (id, _) = begin(&h, "alice", "");
    let e = h.logins.answer(":1.8", &id, &code(NOW), NOW).unwrap_err();
    assert_eq!(e, no_such_transaction());
    assert_eq!(
        h.logins.answer(":1.7", "nope", "1", NOW).unwrap_err(),
        no_such_transaction()
    );
    assert_eq!(
        h.logins.cancel(":1.8", &id).unwrap_err(),
        no_such_transaction()
    );
    h.logins.cancel(":1.7", &id).unwrap();
    assert_eq!(h.logins.live(), 0);
}

#[test]
fn a_late_answer_times_out() {
    let h = harness();
    h.enrol("alice");
    let (id, _) = begin(&h, "alice", "");
    let t = NOW + 180;
    let step = h.logins.answer(":1.7", &id, &code(t), t).unwrap();
    assert_eq!(step, Step::terminal(Action::Denied, "The login timed out."));
    assert_eq!(h.logins.live(), 0);
}

#[test]
fn expired_transactions_are_pruned_and_connections_leaving_drop_theirs() {
    let h = harness();
    h.enrol("alice");
    begin(&h, "alice", "");
    begin(&h, "alice", "");
    let other = Caller {
        bus_name: ":1.99".into(),
        uid: 0,
        session: NO_SESSION,
        login_uid: None,
        keys_allowed: true,
    };
    h.logins
        .begin(
            &other,
            &Request {
                user: "alice",
                service: "sshd",
                rhost: "",
                tty: "",
                ssh_auth_info: "",
            },
            NOW + 100,
        )
        .unwrap();
    assert_eq!(h.logins.live(), 3);
    assert_eq!(h.logins.drop_owner(":1.99"), 1);
    assert_eq!(h.logins.drop_owner(":1.99"), 0);
    assert_eq!(h.logins.prune(NOW + 180), 2);
    assert_eq!(h.logins.live(), 0);
}

#[test]
fn one_connection_may_hold_only_so_many_transactions() {
    let h = harness();
    h.enrol("alice");
    for _ in 0..TXNS_PER_CONNECTION_MAX {
        begin(&h, "alice", "");
    }
    let e = h
        .logins
        .begin(
            &root(),
            &Request {
                user: "alice",
                service: "sshd",
                rhost: "",
                tty: "",
                ssh_auth_info: "",
            },
            NOW,
        )
        .unwrap_err();
    assert!(matches!(e, HerarxError::Busy(_)));
    let other = Caller {
        bus_name: ":1.8".into(),
        uid: 0,
        session: NO_SESSION,
        login_uid: None,
        keys_allowed: true,
    };
    assert!(
        h.logins
            .begin(
                &other,
                &Request {
                    user: "alice",
                    service: "sshd",
                    rhost: "",
                    tty: "",
                    ssh_auth_info: ""
                },
                NOW,
            )
            .is_ok()
    );
}

#[test]
fn the_step_cap_ends_a_transaction() {
    // Valid configurations end a login by max_tries first; the cap guards the rest.
    let mut config = Config::default();
    config.login.max_tries = 100;
    config.lockout.max_failures = 100;
    let h = harness_with(config);
    h.enrol("alice");
    let (id, _) = begin(&h, "alice", "");
    for _ in 1..limits::STEPS_MAX {
        let s = h.logins.answer(":1.7", &id, "000000", NOW).unwrap();
        assert_eq!(s.action, Action::Prompt);
    }
    let s = h.logins.answer(":1.7", &id, "000000", NOW).unwrap();
    assert_eq!(s, Step::terminal(Action::Denied, TOO_MANY_STEPS));
    assert_eq!(h.logins.live(), 0);
}

#[test]
fn a_service_can_count_as_remote_whatever_its_rhost() {
    let config = Config::parse("[services.sshd]\nalways_remote = true\n").unwrap();
    config.validate().unwrap();
    let h = harness_with(config);
    h.enrol("alice");
    let (id, _) = h
        .logins
        .begin(
            &root(),
            &Request {
                user: "alice",
                service: "sshd",
                rhost: "127.0.0.1",
                tty: "",
                ssh_auth_info: "",
            },
            NOW,
        )
        .unwrap();
    h.logins.answer(":1.7", &id, &wrong(NOW), NOW).unwrap();
    assert!(h.audit()[0].remote, "audited as remote");
    assert_eq!(
        h.state
            .store()
            .failures("alice", &Scope::Remote("127.0.0.1".into()), NOW)
            .unwrap()
            .count,
        1
    );
    assert_eq!(
        h.state
            .store()
            .failures("alice", &Scope::Local, NOW)
            .unwrap()
            .count,
        0
    );
    // Other services from loopback stay local.
    let (id, _) = h
        .logins
        .begin(
            &root(),
            &Request {
                user: "alice",
                service: "login",
                rhost: "127.0.0.1",
                tty: "",
                ssh_auth_info: "",
            },
            NOW,
        )
        .unwrap();
    h.logins.answer(":1.7", &id, &wrong(NOW), NOW).unwrap();
    assert_eq!(
        h.state
            .store()
            .failures("alice", &Scope::Local, NOW)
            .unwrap()
            .count,
        1
    );
}

#[test]
fn remote_means_not_loopback() {
    for local in [
        "",
        "localhost",
        "LOCALHOST",
        "127.0.0.1",
        "127.8.9.10",
        "::1",
        "[::1]",
        "::ffff:127.0.0.1",
    ] {
        assert!(!is_remote(local), "{local}");
    }
    for remote in [
        "192.0.2.1",
        "10.0.0.1",
        "2001:db8::1",
        "example.com",
        "localhost.example.com",
        "::",
    ] {
        assert!(is_remote(remote), "{remote}");
    }
}

#[test]
fn lock_messages_round_up_to_minutes() {
    assert!(locked_message(100, 99).contains("1 more minute."));
    assert!(locked_message(960, 60).contains("15 more minutes."));
    assert!(locked_message(961, 60).contains("16 more minutes."));
}

#[test]
fn logs_never_carry_codes_or_transaction_ids() {
    let h = harness();
    h.enrol("alice");
    let (id, _) = begin(&h, "alice", "");
    let w = wrong(NOW);
    h.logins.answer(":1.7", &id, &w, NOW).unwrap();
    let c = code(NOW);
    h.logins.answer(":1.7", &id, &c, NOW).unwrap();
    let lines = h.log.lines();
    assert!(lines.len() >= 2);
    for l in &lines {
        assert!(
            !l.contains(&c) && !l.contains(&w) && !l.contains(&id),
            "{l}"
        );
    }
}

fn trusted_harness() -> Harness {
    let config = Config::parse(
        "[network]\ntrusted = [\"10.20.0.0/16\", \"2001:db8::/32\"]\n\
         [services.sshd]\ntrusted_networks = [\"192.0.2.0/24\"]\n\
         [services.su]\ntrusted_networks = []\n",
    )
    .unwrap();
    config.validate().unwrap();
    let h = harness_with(config);
    h.enrol("alice");
    h
}

fn begin_service(h: &Harness, service: &str, rhost: &str) -> (String, Step) {
    h.logins
        .begin(
            &root(),
            &Request {
                user: "alice",
                service,
                rhost,
                tty: "",
                ssh_auth_info: "",
            },
            NOW,
        )
        .unwrap()
}

#[test]
fn a_login_from_a_trusted_network_asks_nothing_and_is_audited() {
    let h = trusted_harness();
    let (id, step) = begin_service(&h, "sudo", "10.20.3.4");
    assert_eq!(
        (id.as_str(), &step),
        ("", &Step::terminal(Action::Skip, ""))
    );
    assert_eq!(h.logins.live(), 0);
    let a = &h.audit()[0];
    assert_eq!(
        (a.result, a.method.as_str(), a.reason.as_str()),
        (
            AuditResult::Skip,
            "none",
            "trusted network 10.20.0.0/16 (service sudo)"
        )
    );
    assert!(
        h.log
            .lines()
            .iter()
            .any(|l| l.contains("trusted network 10.20.0.0/16 (service sudo)")),
        "{:?}",
        h.log.lines()
    );
    for rhost in ["2001:db8:7::1", "::ffff:10.20.0.9", "[2001:db8::1]"] {
        let (_, step) = begin_service(&h, "login", rhost);
        assert_eq!(step.action, Action::Skip, "{rhost}");
    }
    let (_, step) = begin_service(&h, "sshd", "192.0.2.5");
    assert_eq!(step.action, Action::Skip);
    assert_eq!(
        h.audit()[0].reason,
        "trusted network 192.0.2.0/24 (service sshd)"
    );
}

#[test]
fn untrusted_hosts_names_and_overridden_services_are_asked() {
    let h = trusted_harness();
    for (service, rhost) in [
        ("sudo", "10.21.0.1"),
        ("sudo", ""),
        ("sudo", "127.0.0.1"),
        ("sudo", "office.example.com"),
        ("sudo", "10.20.3.4.nip.io"),
        ("sudo", "2001:db9::1"),
        // The service's own list replaces the global one; an empty one trusts nothing.
        ("sshd", "10.20.3.4"),
        ("su", "10.20.3.4"),
        ("su", "2001:db8::1"),
    ] {
        let (id, step) = begin_service(&h, service, rhost);
        assert_eq!(step, Step::prompt(PROMPT), "{service} {rhost}");
        h.logins.cancel(":1.7", &id).unwrap();
    }
    assert!(h.audit().iter().all(|a| a.result != AuditResult::Skip));
}

#[test]
fn a_trusted_network_neither_lets_others_in_nor_is_locked() {
    let h = trusted_harness();
    let bob = Caller {
        bus_name: ":1.9".into(),
        uid: 1001,
        session: NO_SESSION,
        login_uid: None,
        keys_allowed: true,
    };
    let e = h
        .logins
        .begin(
            &bob,
            &Request {
                user: "alice",
                service: "xscreensaver",
                rhost: "10.20.3.4",
                tty: ":0",
                ssh_auth_info: "",
            },
            NOW,
        )
        .unwrap_err();
    assert!(matches!(e, HerarxError::PermissionDenied(_)), "{e:?}");
    assert_eq!(h.audit()[0].result, AuditResult::Refused);
    // The user's own screen locker from a trusted address is let through.
    let (_, step) = h
        .logins
        .begin(
            &bob,
            &Request {
                user: "bob",
                service: "xscreensaver",
                rhost: "10.20.3.4",
                tty: ":0",
                ssh_auth_info: "",
            },
            NOW,
        )
        .unwrap();
    assert_eq!(step.action, Action::Skip);
    // Trusted logins skip before the lockout is looked at: a lockout from elsewhere does
    // not bar the trusted network (its failures are the remote scope's).
    for _ in 0..2 {
        let (id, _) = begin_service(&h, "sudo", "192.0.2.1");
        for _ in 0..3 {
            h.logins.answer(":1.7", &id, &wrong(NOW), NOW).unwrap();
            if h.logins.live() == 0 {
                break;
            }
        }
    }
    let (_, step) = begin_service(&h, "sudo", "192.0.2.1");
    assert_eq!(step.action, Action::Locked);
    let (_, step) = begin_service(&h, "sudo", "10.20.3.4");
    assert_eq!(step.action, Action::Skip);
}

fn as_user(uid: u32, connection: u32) -> Caller {
    Caller {
        bus_name: format!(":2.{connection}"),
        uid,
        session: NO_SESSION,
        login_uid: None,
        keys_allowed: true,
    }
}

fn begin_as(h: &Harness, caller: &Caller, user: &str) -> Result<(String, Step), HerarxError> {
    h.logins.begin(
        caller,
        &Request {
            user,
            service: "xscreensaver",
            rhost: "",
            tty: "",
            ssh_auth_info: "",
        },
        NOW,
    )
}

#[test]
fn one_user_holds_only_so_many_transactions_across_connections_and_gets_them_back() {
    let h = harness();
    h.enrol("alice");
    let mut ids = Vec::new();
    for c in 0..TXNS_PER_UID_MAX as u32 {
        ids.push(begin_as(&h, &as_user(1000, c), "alice").unwrap().0);
    }
    // A fresh connection does not help: the quota is the uid's.
    let fresh = as_user(1000, 100);
    let Err(HerarxError::Busy(m)) = begin_as(&h, &fresh, "alice") else {
        panic!("the uid's quota was not enforced");
    };
    assert!(
        m.contains(&format!("{TXNS_PER_UID_MAX} logins under way")),
        "{m}"
    );
    let refusals = h.audit();
    assert!(
        refusals[0].reason.contains("for this caller uid") && refusals[0].caller_uid == 1000,
        "{refusals:?}"
    );
    // Root is not held back by the user's quota.
    assert!(begin(&h, "alice", "").0.len() == 32);
    assert_eq!(h.logins.table().of_uid(1000), TXNS_PER_UID_MAX);

    // Cancel gives a place back.
    h.logins.cancel(":2.0", &ids[0]).unwrap();
    assert_eq!(h.logins.table().of_uid(1000), TXNS_PER_UID_MAX - 1);
    let (again, _) = begin_as(&h, &fresh, "alice").unwrap();
    // A finished login gives its place back.
    let s = h.logins.answer(":2.100", &again, &code(NOW), NOW).unwrap();
    assert_eq!(s.action, Action::Success);
    assert_eq!(h.logins.table().of_uid(1000), TXNS_PER_UID_MAX - 1);
    // A connection leaving gives its places back.
    assert_eq!(h.logins.drop_owner(":2.1"), 1);
    assert_eq!(h.logins.table().of_uid(1000), TXNS_PER_UID_MAX - 2);
    // A user's transactions expire after at most a minute, root's after login.timeout_seconds.
    let live = h.logins.live();
    assert_eq!(h.logins.prune(NOW + NON_ROOT_TIMEOUT_SECONDS - 1), 0);
    assert_eq!(h.logins.prune(NOW + NON_ROOT_TIMEOUT_SECONDS), live - 1);
    assert_eq!(h.logins.table().of_uid(1000), 0);
    assert_eq!(h.logins.live(), 1, "root's login is still there");
    for c in 0..TXNS_PER_UID_MAX as u32 {
        begin_as(&h, &as_user(1000, c), "alice").unwrap();
    }
}

#[test]
fn the_last_places_are_roots_alone() {
    let users = FixedUsers::new(&[("root", 0), ("alice", 1000), ("bob", 1001), ("carol", 1002)]);
    let dir = harness_with_users(Config::default(), users);
    let h = Harness {
        logins: Logins::with_limits(
            dir.state.clone(),
            Limits {
                per_connection: 16,
                per_uid: 2,
                total: 6,
                root_reserved: 2,
            },
        ),
        ..dir
    };
    for u in ["alice", "bob", "carol"] {
        h.enrol(u);
    }
    for (uid, user) in [(1000, "alice"), (1001, "bob")] {
        for c in 0..2 {
            begin_as(&h, &as_user(uid, uid * 10 + c), user).unwrap();
        }
    }
    let Err(HerarxError::Busy(_)) = begin_as(&h, &as_user(1002, 1), "carol") else {
        panic!("a user took a place reserved for root");
    };
    assert!(h.audit()[0].reason.contains("reserved for root"));
    begin(&h, "carol", "");
    begin(&h, "carol", "");
    let e = h
        .logins
        .begin(
            &root(),
            &Request {
                user: "carol",
                service: "login",
                rhost: "",
                tty: "",
                ssh_auth_info: "",
            },
            NOW,
        )
        .unwrap_err();
    assert!(matches!(e, HerarxError::Busy(_)), "{e:?}");
}

#[test]
fn a_flood_of_refusals_is_summed_up_while_real_logins_are_each_recorded() {
    let h = harness();
    h.enrol("alice");
    h.enrol("bob");
    for _ in 0..1000 {
        let e = begin_as(&h, &as_user(1000, 1), "bob").unwrap_err();
        assert!(matches!(e, HerarxError::PermissionDenied(_)), "{e:?}");
    }
    let rows = h.audit();
    let refused = |rows: &[audit::AuditEntry]| {
        rows.iter()
            .filter(|r| r.result == AuditResult::Refused && r.caller_uid == 1000)
            .count()
    };
    assert_eq!(
        refused(&rows),
        crate::state::refusals::RECORDED_PER_WINDOW as usize
    );
    // Root's logins during the flood: each success and failure is its own row, as always.
    let (id, _) = begin(&h, "bob", "");
    h.logins.answer(":1.7", &id, &wrong(NOW), NOW).unwrap();
    h.logins.answer(":1.7", &id, &code(NOW), NOW).unwrap();
    let rows = h.audit();
    assert_eq!(rows[0].result, AuditResult::Success);
    assert_eq!(rows[1].result, AuditResult::Denied);
    // Once the minute is over, the housekeeping writes the summary (the flood has stopped).
    let later = NOW + crate::state::refusals::WINDOW_SECONDS;
    h.state.flush_refusals(later - 1);
    assert_eq!(h.audit()[0].result, AuditResult::Success, "not before");
    h.state.flush_refusals(later);
    let rows = h.audit();
    let s = &rows[0];
    assert_eq!((s.method.as_str(), s.caller_uid), ("refusals", 1000));
    assert!(
        s.reason
            .starts_with("990 refusals from uid 1000 in the last minute"),
        "{}",
        s.reason
    );
    let log = h.log.lines().join("\n");
    assert!(log.contains("990 refusals from uid 1000"), "{log}");
    assert!(log.matches("result=refused").count() <= 12, "{log}");
}
