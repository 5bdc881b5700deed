//! Mandatory 2FA through real libpam and a real daemon: who must have a factor, what a user
//! without one gets (enrol inside the login, deny, allow), the method menu, backup codes
//! handed out by the login, and remote lockout per source that never locks the console.

use herarx_tests::pam_client::*;
use herarx_tests::pamconf::{Report, run_login};
use herarx_tests::totp::{code_at_step, wrong_code};
use herarx_tests::{DaemonConfig, TestUser, World};
use std::process::Command;

const ENROL_PROMPT: &str = "Code from the app, to finish setting up: ";
const SAVED_PROMPT: &str = "Press Enter once you have saved them: ";

fn enrol_world(login_extra: &str) -> World {
    World::start(DaemonConfig {
        no_factor: "enroll",
        login_extra: Some(login_extra.to_owned()),
        ..DaemonConfig::default()
    })
}

fn login_from(w: &World, user: &str, rhost: Option<&str>, answers: &[&str]) -> Report {
    let mut login = w.pam.login("herarx", user, answers);
    login.rhost = rhost.map(str::to_owned);
    run_login(&login, None)
}

/// The backup codes a transcript showed (`xxxx-xxxx` words).
fn shown_codes(r: &Report) -> Vec<String> {
    r.transcript
        .messages
        .iter()
        .filter(|m| m.style == "info")
        .flat_map(|m| {
            m.text
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|w| {
            w.len() == 9
                && w.as_bytes()[4] == b'-'
                && w.chars().all(|c| c == '-' || c.is_ascii_alphanumeric())
        })
        .collect()
}

fn status_json(w: &World, user: &TestUser) -> serde_json::Value {
    let out = herarx_tests::ctl::run(Some(user), &w.bus.address, &["status", "--json"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn enrolment_inside_the_login_with_a_code_from_oathtool_then_backup_codes() {
    let w = enrol_world("");
    let user = TestUser::create("enl");
    let r = login_from(&w, &user.name, None, &[TOTP_FROM_SHOWN_KEY, ""]);
    let t = &r.transcript;
    assert_eq!(t.rc, PAM_SUCCESS, "{t:?}");
    assert_eq!(t.prompts(), vec![ENROL_PROMPT, SAVED_PROMPT]);
    let styles: Vec<&str> = t.messages.iter().map(|m| m.style.as_str()).collect();
    assert_eq!(styles, vec!["info", "echo-off", "info", "echo-on"]);
    let intro = &t.messages[0].text;
    assert!(
        intro.contains("Two-factor authentication is required"),
        "{intro}"
    );
    assert!(
        intro.contains('▀') || intro.contains('▄'),
        "a QR code: {intro}"
    );
    assert!(intro.contains("URI: otpauth://totp/"), "{intro}");
    let codes = shown_codes(&r);
    assert_eq!(codes.len(), 10, "{:?}", t.messages[2].text);

    // Enrolled: status shows the factor, and the daemon asks from now on.
    let st = status_json(&w, &user);
    assert_eq!(st["factors"].as_array().unwrap().len(), 1, "{st}");
    // A backup code from the login's list works once.
    let r = login_from(&w, &user.name, None, &[&codes[0]]);
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);
    let r = login_from(&w, &user.name, None, &[&codes[0], &codes[0], &codes[0]]);
    assert_eq!(r.transcript.rc, PAM_AUTH_ERR, "used up: {:?}", r.transcript);
    // The audit trail names the enrolment loudly.
    w.daemon.logs.wait_for("ENROLLED INSIDE A LOGIN");
}

#[test]
fn wrong_codes_during_enrolment_enrol_nothing() {
    let w = enrol_world("");
    let user = TestUser::create("enw");
    let r = login_from(
        &w,
        &user.name,
        None,
        &["000000", "111111", "222222", "333333", "444444"],
    );
    assert_eq!(r.transcript.rc, PAM_AUTH_ERR, "{:?}", r.transcript);
    assert!(r.transcript.prompts()[1].starts_with("Wrong code."));
    assert!(
        r.transcript.errors()[0].contains("too many wrong codes"),
        "{:?}",
        r.transcript
    );
    let st = status_json(&w, &user);
    assert!(st["factors"].as_array().unwrap().is_empty(), "{st}");
    // A login that gives up half-way (Ctrl-D) enrols nothing either.
    let r = login_from(&w, &user.name, None, &[]);
    assert_eq!(r.transcript.rc, PAM_CONV_ERR);
    assert!(
        status_json(&w, &user)["factors"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn enrolment_is_not_offered_remotely_by_default_nor_to_unknown_users() {
    let w = enrol_world("");
    let user = TestUser::create("enr");
    let r = login_from(&w, &user.name, Some("192.0.2.10"), &["123456"]);
    assert_eq!(r.transcript.rc, PAM_AUTH_ERR, "{:?}", r.transcript);
    assert!(r.transcript.prompts().is_empty());
    assert!(r.transcript.errors()[0].contains("herarxctl totp add"));
    let r = login_from(&w, "hx-nosuch-user-42", None, &["123456"]);
    assert_eq!(r.transcript.rc, PAM_AUTH_ERR);
    assert!(r.transcript.prompts().is_empty());

    // `enroll_from = "anywhere"` offers it remotely too.
    let w = enrol_world("enroll_from = \"anywhere\"");
    let r = login_from(
        &w,
        &user.name,
        Some("192.0.2.10"),
        &[TOTP_FROM_SHOWN_KEY, ""],
    );
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);
}

#[test]
fn deny_says_how_to_enrol_and_allow_lets_the_stack_decide() {
    let w = World::start(DaemonConfig::default());
    let user = TestUser::create("dny");
    let r = w.login(&user.name, &["123456"]);
    assert_eq!(r.transcript.rc, PAM_AUTH_ERR);
    assert!(
        r.transcript.errors()[0].contains("herarxctl totp add"),
        "{:?}",
        r.transcript
    );
    let unknown = w.login("hx-nosuch-user-43", &["123456"]);
    assert_eq!(
        unknown.transcript.errors(),
        r.transcript.errors(),
        "no enumeration"
    );

    let w = World::start(DaemonConfig {
        no_factor: "allow",
        ..DaemonConfig::default()
    });
    let r = w.login(&user.name, &[]);
    assert_eq!(
        r.transcript.rc, PAM_SUCCESS,
        "pam_permit decides: {:?}",
        r.transcript
    );
    assert!(r.transcript.messages.is_empty());

    // allow_until in the past: deny.
    let w = World::start(DaemonConfig {
        no_factor: "allow",
        login_extra: Some("allow_until = \"2020-01-01\"".into()),
        ..DaemonConfig::default()
    });
    let r = w.login(&user.name, &[]);
    assert_eq!(r.transcript.rc, PAM_AUTH_ERR, "{:?}", r.transcript);
}

/// A real group, removed when dropped.
struct Group(String);

impl Group {
    fn create(tag: &str, members: &[&TestUser]) -> Group {
        let name = format!("hxg{}{tag}", std::process::id() % 100_000);
        assert!(
            Command::new("groupadd")
                .arg(&name)
                .status()
                .unwrap()
                .success()
        );
        for m in members {
            assert!(
                Command::new("gpasswd")
                    .args(["-a", &m.name, &name])
                    .output()
                    .unwrap()
                    .status
                    .success()
            );
        }
        Group(name)
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _ = Command::new("groupdel").arg(&self.0).status();
    }
}

#[test]
fn required_and_exempt_groups_decide_who_must_have_a_factor() {
    let member = TestUser::create("rgm");
    let exempt = TestUser::create("rge");
    let outsider = TestUser::create("rgo");
    let ops = Group::create("ops", &[&member, &exempt]);
    let ci = Group::create("ci", &[&exempt]);
    let w = World::start(DaemonConfig {
        login_extra: Some(format!(
            "required = \"groups\"\nrequired_groups = [\"{}\"]\nexempt_groups = [\"{}\"]",
            ops.0, ci.0
        )),
        ..DaemonConfig::default()
    });
    let r = w.login(&member.name, &[]);
    assert_eq!(
        r.transcript.rc, PAM_AUTH_ERR,
        "member must: {:?}",
        r.transcript
    );
    for u in [&exempt, &outsider] {
        let r = w.login(&u.name, &[]);
        assert_eq!(
            r.transcript.rc, PAM_SUCCESS,
            "{}: {:?}",
            u.name, r.transcript
        );
    }
    let st = status_json(&w, &member);
    assert_eq!(st["required"], true, "{st}");
    // Enrolled users are always asked, required or not.
    let e = herarx_tests::ctl::enrol_totp(&outsider, &w.bus.address, "phone", None);
    let near: Vec<String> = (0..4)
        .map(|i| code_at_step(&e.secret, e.confirm_step + i))
        .collect();
    let bad = wrong_code(&near.iter().map(String::as_str).collect::<Vec<_>>());
    let r = w.login(&outsider.name, &[&bad, &bad, &bad]);
    assert_eq!(r.transcript.rc, PAM_AUTH_ERR);
    let r = w.login(
        &outsider.name,
        &[&code_at_step(&e.secret, e.confirm_step + 1)],
    );
    assert_eq!(r.transcript.rc, PAM_SUCCESS);
}

#[test]
fn the_menu_switches_to_backup_codes_through_the_conversation() {
    let w = enrol_world("");
    let user = TestUser::create("mnu");
    let r = login_from(&w, &user.name, None, &[TOTP_FROM_SHOWN_KEY, ""]);
    let codes = shown_codes(&r);
    let r = login_from(&w, &user.name, Some("192.0.2.20"), &["", "2", &codes[3]]);
    let t = &r.transcript;
    assert_eq!(t.rc, PAM_SUCCESS, "{t:?}");
    assert_eq!(
        t.prompts(),
        vec![
            "Verification code (Enter for other ways): ",
            "Choose a number (Enter to go back): ",
            "Backup code: "
        ]
    );
    let menu = t.messages.iter().find(|m| m.style == "info").unwrap();
    assert_eq!(
        menu.text,
        "Other ways to sign in:\n  1. Authenticator app\n  2. Backup code (10 left)"
    );
    // A wrong choice says so and shows the menu again; a wrong backup code is refused.
    let r = login_from(
        &w,
        &user.name,
        None,
        &["", "9", "2", "zzzz-zzzz", "zzzz-zzzz", "zzzz-zzzz"],
    );
    assert_eq!(r.transcript.rc, PAM_AUTH_ERR, "{:?}", r.transcript);
    assert!(
        r.transcript
            .messages
            .iter()
            .any(|m| m.text.starts_with("\"9\" is not one of the choices."))
    );
}

#[test]
fn remote_failures_lock_that_source_then_remote_logins_but_never_the_console() {
    let w = World::start(DaemonConfig {
        max_failures: 3,
        max_tries: 3,
        ..DaemonConfig::default()
    });
    let (user, e) = w.enrolled_user("lck");
    let near: Vec<String> = (0..4)
        .map(|i| code_at_step(&e.secret, e.confirm_step + i))
        .collect();
    let bad = wrong_code(&near.iter().map(String::as_str).collect::<Vec<_>>());
    let r = login_from(&w, &user.name, Some("192.0.2.30"), &[&bad, &bad, &bad]);
    assert_eq!(
        r.transcript.rc, PAM_MAXTRIES,
        "third failure locks the source: {:?}",
        r.transcript
    );
    assert!(
        r.transcript.errors()[0].contains("locked for"),
        "{:?}",
        r.transcript
    );
    // That source is locked even with the right code, and is not told whether it was right.
    let right = code_at_step(&e.secret, e.confirm_step + 1);
    let r = login_from(&w, &user.name, Some("192.0.2.30"), &[&right]);
    assert_eq!(r.transcript.rc, PAM_MAXTRIES);
    assert!(r.transcript.prompts().is_empty());
    // Another address is still asked, and the console logs in with the right code.
    let r = login_from(&w, &user.name, Some("192.0.2.31"), &[]);
    assert_eq!(
        r.transcript.prompts(),
        vec!["Verification code: "],
        "{:?}",
        r.transcript
    );
    let r = login_from(&w, &user.name, None, &[&right]);
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);
}

#[test]
fn an_admin_reset_sends_the_user_back_to_enrolment_at_the_next_login() {
    let w = enrol_world("");
    let user = TestUser::create("rst");
    let r = login_from(&w, &user.name, None, &[TOTP_FROM_SHOWN_KEY, ""]);
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);
    let old_codes = shown_codes(&r);
    // Enrolled: the next login asks for a code, not an enrolment.
    let r = login_from(&w, &user.name, None, &[]);
    assert_eq!(
        r.transcript.prompts(),
        vec!["Verification code (Enter for other ways): "]
    );

    let out = herarx_tests::ctl::run(
        None,
        &w.bus.address,
        &["admin", "reset", &user.name, "--yes"],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = login_from(&w, &user.name, None, &[TOTP_FROM_SHOWN_KEY, ""]);
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);
    assert_eq!(
        r.transcript.prompts(),
        vec![ENROL_PROMPT, SAVED_PROMPT],
        "enrolled again"
    );
    // The old backup codes died with the reset; the new ones work.
    let new_codes = shown_codes(&r);
    assert_eq!(new_codes.len(), 10);
    let r = login_from(
        &w,
        &user.name,
        None,
        &[&old_codes[0], &old_codes[1], &old_codes[2]],
    );
    assert_eq!(
        r.transcript.rc, PAM_AUTH_ERR,
        "old codes: {:?}",
        r.transcript
    );
    let r = login_from(&w, &user.name, None, &[&new_codes[0]]);
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "new code: {:?}", r.transcript);
}

#[test]
fn sshd_is_remote_whatever_its_rhost_unless_configured_otherwise() {
    // A login relayed to sshd through a loopback proxy or tunnel (rhost 127.0.0.1), or by an
    // sshd that sets no rhost, is not the console: no enrolment where only local is allowed.
    let w = enrol_world("");
    let module = herarx_tests::pamconf::module_line(&w.bus.address, "");
    w.pam
        .service("sshd", &format!("auth required pam_permit.so\n{module}"));
    let user = TestUser::create("enrs");
    for rhost in [None, Some("127.0.0.1"), Some("::1")] {
        let mut login = w.pam.login("sshd", &user.name, &[TOTP_FROM_SHOWN_KEY, ""]);
        login.rhost = rhost.map(str::to_owned);
        let r = run_login(&login, None);
        assert_eq!(
            r.transcript.rc, PAM_AUTH_ERR,
            "{rhost:?}: {:?}",
            r.transcript
        );
        assert!(r.transcript.prompts().is_empty(), "{rhost:?}: not offered");
    }
    // The failing twins: the same login through another service is local, and an admin can
    // say sshd is local (`always_remote = false`).
    let r = login_from(
        &w,
        &user.name,
        Some("127.0.0.1"),
        &[TOTP_FROM_SHOWN_KEY, ""],
    );
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);
    let w = World::start(DaemonConfig {
        no_factor: "enroll",
        extra_tables: Some("[services.sshd]\nalways_remote = false\n".into()),
        ..DaemonConfig::default()
    });
    w.pam.service(
        "sshd",
        &format!(
            "auth required pam_permit.so\n{}",
            herarx_tests::pamconf::module_line(&w.bus.address, "")
        ),
    );
    let other = TestUser::create("enrt");
    let r = run_login(
        &w.pam.login("sshd", &other.name, &[TOTP_FROM_SHOWN_KEY, ""]),
        None,
    );
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);
}
