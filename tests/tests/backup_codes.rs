//! Backup codes and moving to a new phone, end to end: `herarxctl` run as real users on a
//! private bus with the real daemon, and logins through real libpam. Each success has its
//! failing twin.

use herarx_tests::ctl::{Enrolled, run};
use herarx_tests::pam_client::*;
use herarx_tests::pamconf::run_login;
use herarx_tests::totp::{code_at_step, now_step, secret_of, wrong_code};
use herarx_tests::{DaemonConfig, TestUser, World};
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

fn one_try() -> DaemonConfig {
    DaemonConfig {
        max_tries: 1,
        max_failures: 20,
        ..DaemonConfig::default()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `herarxctl backup-codes generate` as `user`, step-up code first when given.
fn generate(w: &World, user: &TestUser, step_up: Option<&str>) -> std::process::Output {
    let lines: Vec<&str> = step_up.into_iter().collect();
    run(
        Some(user),
        &w.bus.address,
        &["backup-codes", "generate"],
        &lines,
    )
}

/// Generates a set that must succeed; returns the codes.
fn codes(w: &World, user: &TestUser, step_up: Option<&str>) -> Vec<String> {
    let out = generate(w, user, step_up);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let codes: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(codes.len(), 10, "stdout: {}", text(&out.stdout));
    for c in &codes {
        assert!(
            c.len() == 9 && c.as_bytes()[4] == b'-',
            "one code per line, nothing else: {c:?}"
        );
    }
    codes
}

fn status(w: &World, user: &TestUser) -> serde_json::Value {
    let out = run(Some(user), &w.bus.address, &["status", "--json"], &[]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn login_rc(w: &World, user: &str, answer: &str) -> i32 {
    w.login(user, &[answer]).transcript.rc
}

/// A fresh TOTP code of the enrolled factor, one step after the last consumed one.
fn fresh(e: &Enrolled, steps_after: u64) -> String {
    code_at_step(&e.secret, e.confirm_step + steps_after)
}

#[test]
fn generating_needs_a_step_up_once_enrolled_and_a_wrong_one_changes_nothing() {
    let w = World::start(one_try());
    let (user, e) = w.enrolled_user("bg");
    let out = generate(&w, &user, None);
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdin ended before the step-up code"
    );
    assert_eq!(text(&out.stdout), "");

    let first = codes(&w, &user, Some(&fresh(&e, 1)));
    assert_eq!(status(&w, &user)["backup_codes_left"], 10);

    // A wrong step-up: refused (exit 4), nothing printed, the set unchanged and still valid.
    let bad = wrong_code(&[&fresh(&e, 1), &fresh(&e, 2)]);
    let out = generate(&w, &user, Some(&bad));
    assert_eq!(out.status.code(), Some(4), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(status(&w, &user)["backup_codes_left"], 10);
    assert_eq!(login_rc(&w, &user.name, &first[0]), PAM_SUCCESS);
    assert_eq!(status(&w, &user)["backup_codes_left"], 9);

    // --json: one object with the codes.
    let out = run(
        Some(&user),
        &w.bus.address,
        &["backup-codes", "generate", "--json"],
        &[&first[1]],
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["codes"].as_array().map(Vec::len), Some(10));
    assert_eq!(status(&w, &user)["backup_codes_left"], 10);
}

#[test]
fn a_backup_code_logs_in_once_not_twice_not_after_regeneration_not_for_another_user() {
    let w = World::start(one_try());
    let (alice, ea) = w.enrolled_user("ba");
    let (bob, _eb) = w.enrolled_user("bb");
    let set = codes(&w, &alice, Some(&fresh(&ea, 1)));

    assert_eq!(login_rc(&w, &bob.name, &set[0]), PAM_AUTH_ERR, "not bob's");
    assert_eq!(login_rc(&w, &alice.name, &set[0]), PAM_SUCCESS);
    assert_eq!(login_rc(&w, &alice.name, &set[0]), PAM_AUTH_ERR, "once");
    // Typed loosely (upper case, no dash) it is the same code.
    let loose = set[1].to_uppercase().replace('-', "");
    assert_eq!(login_rc(&w, &alice.name, &loose), PAM_SUCCESS);
    assert_eq!(status(&w, &alice)["backup_codes_left"], 8);

    let new_set = codes(&w, &alice, Some(&set[2]));
    assert_eq!(
        login_rc(&w, &alice.name, &set[3]),
        PAM_AUTH_ERR,
        "the old set is void"
    );
    assert_eq!(login_rc(&w, &alice.name, &new_set[3]), PAM_SUCCESS);

    // No code shows in the daemon's log or in the audit table.
    let all: Vec<&String> = set.iter().chain(&new_set).collect();
    assert!(
        !w.daemon.logs.lines().is_empty(),
        "the daemon logged nothing"
    );
    for l in w.daemon.logs.lines() {
        for c in &all {
            assert!(!l.contains(c.as_str()), "log line leaks a code: {l}");
            assert!(
                !l.contains(&c.replace('-', "")),
                "log line leaks a code: {l}"
            );
        }
    }
    let db = rusqlite::Connection::open(w.daemon.db_path()).unwrap();
    let reasons: Vec<String> = db
        .prepare("SELECT reason FROM audit")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("backup codes")),
        "{reasons:?}"
    );
    for r in &reasons {
        for c in &all {
            assert!(!r.contains(c.as_str()), "audit row leaks a code: {r}");
        }
    }
}

#[test]
fn parallel_logins_with_one_backup_code_let_exactly_one_in() {
    let w = World::start(one_try());
    let (alice, e) = w.enrolled_user("bp");
    let set = codes(&w, &alice, Some(&fresh(&e, 1)));
    let login = w.pam.login("herarx", &alice.name, &[&set[5]]);
    let n = 12;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (login, barrier) = (login.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                run_login(&login, None).transcript.rc
            })
        })
        .collect();
    let rcs: Vec<i32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let passed = rcs.iter().filter(|&&rc| rc == PAM_SUCCESS).count();
    assert_eq!(passed, 1, "return codes: {rcs:?}");
    assert!(
        rcs.iter()
            .all(|&rc| rc == PAM_SUCCESS || rc == PAM_AUTH_ERR),
        "{rcs:?}"
    );
    assert_eq!(status(&w, &alice)["backup_codes_left"], 9);
}

/// `herarxctl totp add --replace ID` with `step_up`; returns the new secret, the step of the
/// confirmation code, and the process's output.
fn replace(
    w: &World,
    user: &TestUser,
    id: &str,
    step_up: &str,
) -> (Option<(String, u64)>, std::process::Output) {
    let mut child = herarx_tests::users::command_as(Some(user), herarx_tests::paths::herarxctl())
        .args([
            "--bus",
            &w.bus.address,
            "totp",
            "add",
            "--name",
            "new phone",
        ])
        .args(["--replace", id])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    writeln!(input, "{step_up}").unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut uri = String::new();
    out.read_line(&mut uri).unwrap();
    let uri = uri.trim().to_owned();
    let mut new = None;
    if uri.starts_with("otpauth://") {
        let secret = secret_of(&uri);
        let step = now_step();
        writeln!(input, "{}", code_at_step(&secret, step)).unwrap();
        new = Some((secret, step));
    }
    drop(input);
    let mut output = child.wait_with_output().unwrap();
    output.stdout = uri.into_bytes();
    (new, output)
}

#[test]
fn a_backup_code_moves_you_to_a_new_phone_and_the_old_one_stops_working() {
    let w = World::start(one_try());
    let (alice, old) = w.enrolled_user("br");
    let (bob, bob_e) = w.enrolled_user("bs");
    let set = codes(&w, &alice, Some(&fresh(&old, 1)));
    let old_id = status(&w, &alice)["factors"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bobs_id = status(&w, &bob)["factors"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Twins: another user's factor, and a wrong step-up, replace nothing.
    let (new, out) = replace(&w, &alice, &bobs_id, &set[0]);
    assert!(new.is_none());
    assert_eq!(out.status.code(), Some(2), "stderr: {}", text(&out.stderr));
    let (new, out) = replace(&w, &bob, &old_id, &fresh(&bob_e, 1));
    assert!(new.is_none());
    assert_eq!(out.status.code(), Some(2), "stderr: {}", text(&out.stderr));
    let (new, out) = replace(&w, &alice, &old_id, "zzzz-zzzz");
    assert!(new.is_none());
    assert_eq!(out.status.code(), Some(4), "stderr: {}", text(&out.stderr));
    assert_eq!(status(&w, &alice)["factors"][0]["id"], old_id.as_str());

    // The phone is lost: a backup code is the step-up.
    let (new, out) = replace(&w, &alice, &old_id, &set[0]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let (secret, step) = new.unwrap();
    let st = status(&w, &alice);
    let factors = st["factors"].as_array().unwrap();
    assert_eq!(factors.len(), 1, "{st}");
    assert_ne!(factors[0]["id"], old_id.as_str());
    assert_eq!(factors[0]["name"], "new phone");
    assert_eq!(factors[0]["primary"], true, "it took the old one's place");
    assert_eq!(st["backup_codes_left"], 9);

    assert_eq!(
        login_rc(&w, &alice.name, &fresh(&old, 2)),
        PAM_AUTH_ERR,
        "the old phone's codes no longer log in"
    );
    assert_eq!(
        login_rc(&w, &alice.name, &code_at_step(&secret, step + 1)),
        PAM_SUCCESS
    );
}

#[test]
fn primary_and_rename_show_in_status_and_refuse_what_is_not_yours() {
    let w = World::start(one_try());
    let (alice, e) = w.enrolled_user("bn");
    let second =
        herarx_tests::ctl::enrol_totp(&alice, &w.bus.address, "tablet", Some(&fresh(&e, 1)));
    let _ = second;
    let (bob, _) = w.enrolled_user("bo");
    let st = status(&w, &alice);
    let ids: Vec<String> = st["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 2);
    // Factors made in the same second are listed by id: take the names in the listed order.
    let second_name = st["factors"][1]["name"].as_str().unwrap().to_owned();
    let primaries: Vec<bool> = st["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["primary"].as_bool().unwrap())
        .collect();
    assert_eq!(primaries, [true, false], "the oldest is primary at first");
    assert_eq!(st["required"], true);
    assert_eq!(st["backup_codes_left"], 0);

    let out = run(Some(&alice), &w.bus.address, &["primary", &ids[1]], &[]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let out = run(Some(&bob), &w.bus.address, &["primary", &ids[0]], &[]);
    assert_eq!(out.status.code(), Some(2), "not bob's");
    let st = status(&w, &alice);
    assert_eq!(st["factors"][0]["primary"], false);
    assert_eq!(st["factors"][1]["primary"], true);

    let out = run(
        Some(&alice),
        &w.bus.address,
        &["rename", &ids[0], "old phone", "--json"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["name"], "old phone");
    let out = run(
        Some(&bob),
        &w.bus.address,
        &["rename", &ids[0], "mine"],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "not bob's: {}",
        text(&out.stderr)
    );
    let out = run(Some(&alice), &w.bus.address, &["rename", &ids[0], " "], &[]);
    assert_eq!(out.status.code(), Some(2));
    let st = status(&w, &alice);
    assert_eq!(st["factors"][0]["name"], "old phone");
    assert_eq!(st["factors"][1]["name"], second_name.as_str());

    // The human status marks the primary and counts the codes.
    let out = run(Some(&alice), &w.bus.address, &["status"], &[]);
    let shown = text(&out.stdout);
    assert!(shown.contains(&format!("{}*", ids[1])), "{shown}");
    assert!(shown.contains("no backup codes"), "{shown}");
}

#[test]
fn removing_the_last_factor_takes_the_backup_codes_along() {
    let w = World::start(one_try());
    let (alice, e) = w.enrolled_user("bl");
    let set = codes(&w, &alice, Some(&fresh(&e, 1)));
    let id = status(&w, &alice)["factors"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = run(
        Some(&alice),
        &w.bus.address,
        &["remove", &id, "--yes"],
        &[&set[0]],
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("backup codes"),
        "{}",
        text(&out.stderr)
    );
    let st = status(&w, &alice);
    assert_eq!(st["backup_codes_left"], 0);
    assert_eq!(login_rc(&w, &alice.name, &set[1]), PAM_AUTH_ERR);
}
