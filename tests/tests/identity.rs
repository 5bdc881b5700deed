//! One account, one identity: every name an account answers to (a second passwd entry sharing
//! its uid, a name in another case as SSSD or winbind answer it) finds the same factors and the
//! same failure counters, through real libpam, the real daemon and real passwd entries. Before,
//! the other spelling found no factor: a bypass under `no_factor = "allow"`, an enrolment of the
//! attacker's own app under `"enroll"`.

use herarx_tests::pam_client::*;
use herarx_tests::pamconf::Report;
use herarx_tests::totp::{code, code_at_step, wrong_code};
use herarx_tests::{DaemonConfig, World};

const PROMPT: &str = "Verification code: ";

fn world(no_factor: &'static str) -> World {
    World::start(DaemonConfig {
        no_factor,
        max_tries: 1,
        ..DaemonConfig::default()
    })
}

/// The distinct users of the audit rows with `result` (`%` for all).
fn audit_users(w: &World, result: &str) -> Vec<String> {
    let db = rusqlite::Connection::open(w.daemon.db_path()).unwrap();
    db.prepare("SELECT DISTINCT user FROM audit WHERE result LIKE ?1 ORDER BY user")
        .unwrap()
        .query_map([result], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// A code no window around now accepts.
fn wrong(secret: &str) -> String {
    let near: Vec<String> = (-3..=3).map(|o| code(secret, o)).collect();
    wrong_code(&near.iter().map(String::as_str).collect::<Vec<_>>())
}

fn asked_for_the_code(r: &Report) {
    assert_eq!(r.transcript.prompts(), vec![PROMPT], "{:?}", r.transcript);
}

#[test]
fn another_name_of_the_account_is_asked_for_its_code_under_allow() {
    let w = world("allow");
    let (user, e) = w.enrolled_user("ida");
    let alias = user.alias(&format!("{}x", user.name));

    // The alias is not "a user without a factor" (which `allow` would let through).
    let r = w.login(&alias.name, &[&wrong(&e.secret)]);
    asked_for_the_code(&r);
    assert_eq!(r.transcript.rc, PAM_AUTH_ERR, "{:?}", r.transcript);
    let r = w.login(&alias.name, &[&code_at_step(&e.secret, e.confirm_step + 1)]);
    asked_for_the_code(&r);
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);
    // The code is the account's: used once, by any of its names.
    let r = w.login(&user.name, &[&code_at_step(&e.secret, e.confirm_step + 1)]);
    assert_eq!(
        r.transcript.rc, PAM_AUTH_ERR,
        "replayed: {:?}",
        r.transcript
    );

    // Everything is keyed and audited by the canonical name; nothing under the alias.
    assert_eq!(audit_users(&w, "%"), vec![user.name.clone()]);
    assert_eq!(audit_users(&w, "denied"), vec![user.name.clone()]);
    assert!(audit_users(&w, "skip").is_empty(), "nothing skipped");
    assert!(
        w.daemon
            .logs
            .lines()
            .iter()
            .any(|l| l.contains(&format!("is account {}", user.name))),
        "the log says which account the name stood for"
    );

    // The failing twin: a name NSS does not know still gets exactly what a real user without
    // a factor gets (here `allow`: let through, nothing asked), so names cannot be probed.
    let bare = herarx_tests::TestUser::create("idn");
    let known = w.login(&bare.name, &[]).transcript;
    let unknown = w.login("hx-no-such-account-7", &[]).transcript;
    assert_eq!(
        (known.rc, known.messages.len()),
        (PAM_SUCCESS, 0),
        "{known:?}"
    );
    assert_eq!((unknown.rc, unknown.messages), (known.rc, known.messages));
}

#[test]
fn a_name_in_another_case_is_asked_for_the_code_not_offered_enrolment() {
    let w = world("enroll");
    let (user, e) = w.enrolled_user("idc");
    let upper = user.alias(&user.name.to_ascii_uppercase());
    // Under `enroll`, a factor-less alias would be offered a QR code for the attacker's app.
    let r = w.login(&upper.name, &[&code_at_step(&e.secret, e.confirm_step + 1)]);
    asked_for_the_code(&r);
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);
    assert!(
        r.transcript
            .messages
            .iter()
            .all(|m| !m.text.contains("otpauth://")),
        "no enrolment offered: {:?}",
        r.transcript
    );
    // The store holds one account: the canonical one.
    let db = rusqlite::Connection::open(w.daemon.db_path()).unwrap();
    let users: Vec<String> = db
        .prepare("SELECT DISTINCT user FROM factors")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(users, vec![user.name.clone()]);
}

#[test]
fn failures_under_every_name_count_against_the_one_account() {
    let w = World::start(DaemonConfig {
        max_tries: 1,
        max_failures: 2,
        ..DaemonConfig::default()
    });
    let (user, e) = w.enrolled_user("idl");
    let alias = user.alias(&format!("{}y", user.name));
    let r = w.login(&alias.name, &[&wrong(&e.secret)]);
    assert_eq!(r.transcript.rc, PAM_AUTH_ERR, "{:?}", r.transcript);
    // The second failure, under the other name, is the one that locks the account.
    let r = w.login(&user.name, &[&wrong(&e.secret)]);
    assert_eq!(r.transcript.rc, PAM_MAXTRIES, "{:?}", r.transcript);
    // Locked under both names.
    for name in [&user.name, &alias.name] {
        let r = w.login(name, &[&code_at_step(&e.secret, e.confirm_step + 1)]);
        assert_eq!(r.transcript.rc, PAM_MAXTRIES, "{name}: {:?}", r.transcript);
    }
}

#[test]
fn an_admin_names_the_account_by_any_of_its_names() {
    let w = world("deny");
    let (user, e) = w.enrolled_user("idr");
    let alias = user.alias(&format!("{}z", user.name));
    let out = herarx_tests::ctl::run(
        None,
        &w.bus.address,
        &["admin", "status", &alias.name, "--json"],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["user"], user.name.as_str(), "{st}");
    assert_eq!(st["factors"].as_array().map(Vec::len), Some(1), "{st}");
    // Reset through the alias: the account's factor is gone, so its next login is refused
    // (no factor, `deny`) instead of asking for the code.
    let out = herarx_tests::ctl::run(
        None,
        &w.bus.address,
        &["admin", "reset", &alias.name, "--yes"],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = w.login(&user.name, &[&code_at_step(&e.secret, e.confirm_step + 1)]);
    assert!(r.transcript.prompts().is_empty(), "{:?}", r.transcript);
    assert_eq!(r.transcript.rc, PAM_AUTH_ERR, "{:?}", r.transcript);
}
