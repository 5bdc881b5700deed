//! The module through real libpam (`pam_start_confdir`, private config dir, the built `.so`),
//! a real daemon on a private bus with the shipped policy, codes from oathtool.

use herarx_tests::pam_client::*;
use herarx_tests::pamconf::{module_line, run_login};
use herarx_tests::totp::{code, code_at_step, now_step, wrong_code};
use herarx_tests::{DaemonConfig, TestUser, World};
use std::time::Instant;

#[test]
fn right_code_passes_once_and_the_same_code_is_refused_after() {
    let w = World::start(DaemonConfig::default());
    let (user, e) = w.enrolled_user("ok");
    // The enrolment consumed its own step: the next step's code is fresh.
    let next = code_at_step(&e.secret, e.confirm_step + 1);

    let r = w.login(&user.name, &[&next]);
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);
    assert_eq!(r.transcript.prompts(), vec!["Verification code: "]);
    assert_eq!(
        r.transcript.messages[0].style, "echo-off",
        "codes are not echoed"
    );

    let again = w.login(&user.name, &[&next, &next, &next]);
    assert_eq!(again.transcript.rc, PAM_AUTH_ERR, "{:?}", again.transcript);
    assert!(
        again.transcript.prompts()[1].contains("already used"),
        "a replayed code is named as such: {:?}",
        again.transcript.prompts()
    );
}

#[test]
fn the_enrolment_code_cannot_be_used_to_log_in() {
    let w = World::start(DaemonConfig::default());
    let (user, e) = w.enrolled_user("enr");
    let used = code_at_step(&e.secret, e.confirm_step);
    let r = w.login(&user.name, &[&used]);
    assert_eq!(
        r.transcript.rc, PAM_CONV_ERR,
        "refused and asked again: {:?}",
        r.transcript
    );
    assert_eq!(r.transcript.prompts().len(), 2);
}

#[test]
fn wrong_codes_fail_after_the_allowed_tries_with_a_message() {
    let w = World::start(DaemonConfig::default());
    let (user, e) = w.enrolled_user("wr");
    let right = code(&e.secret, 1);
    let bad = wrong_code(&[&right, &code(&e.secret, 0), &code(&e.secret, -1)]);
    let r = w.login(&user.name, &[&bad, &bad, &bad]);
    assert_eq!(r.transcript.rc, PAM_AUTH_ERR);
    let prompts = r.transcript.prompts();
    assert_eq!(prompts.len(), 3, "three tries by default: {prompts:?}");
    assert_eq!(prompts[0], "Verification code: ");
    assert!(prompts[1].starts_with("Wrong code."), "{prompts:?}");
    assert!(
        !r.transcript.errors().is_empty(),
        "the final refusal is told"
    );
    // A wrong code then the right one within the same login passes.
    let r = w.login(&user.name, &[&bad, &right]);
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);
}

#[test]
fn skew_accepts_one_step_either_side_and_refuses_two_steps_old() {
    let w = World::start(DaemonConfig::default());
    let (old_user, e) = w.enrolled_user("sk");
    let two_old = code(&e.secret, -2);
    let r = w.login(&old_user.name, &[&two_old, &two_old, &two_old]);
    assert_eq!(
        r.transcript.rc, PAM_AUTH_ERR,
        "a code two steps old is refused"
    );

    let (next_user, e) = w.enrolled_user("sk");
    let r = w.login(&next_user.name, &[&code(&e.secret, 1)]);
    assert_eq!(
        r.transcript.rc, PAM_SUCCESS,
        "one step ahead is inside the skew"
    );
    // After a newer step was accepted, an older (still in-window) code is refused: no replay.
    let r = w.login(&next_user.name, &[&code(&e.secret, 0)]);
    assert_eq!(r.transcript.rc, PAM_CONV_ERR, "{:?}", r.transcript);
}

#[test]
fn lockout_refuses_even_the_right_code_with_maxtries_and_survives_a_restart() {
    let mut w = World::start(DaemonConfig {
        max_failures: 4,
        max_tries: 2,
        ..DaemonConfig::default()
    });
    let (user, e) = w.enrolled_user("lk");
    let right = code(&e.secret, 1);
    let bad = wrong_code(&[&right, &code(&e.secret, 0), &code(&e.secret, -1)]);
    let first = w.login(&user.name, &[&bad, &bad]);
    assert_eq!(
        first.transcript.rc, PAM_AUTH_ERR,
        "two wrong: out of tries, not locked yet"
    );
    let second = w.login(&user.name, &[&bad, &bad]);
    assert_eq!(
        second.transcript.rc, PAM_MAXTRIES,
        "fourth failure locks: {:?}",
        second.transcript
    );

    w.daemon.restart();
    let r = w.login(&user.name, &[&right]);
    assert_eq!(
        r.transcript.rc, PAM_MAXTRIES,
        "locked, right code or not: {:?}",
        r.transcript
    );
    assert!(
        r.transcript.prompts().is_empty(),
        "a locked account is not asked for a code"
    );
    assert!(
        r.transcript.errors().iter().any(|m| m.contains("locked")),
        "the lockout is told honestly: {:?}",
        r.transcript
    );
}

#[test]
fn remote_failures_do_not_lock_the_local_console() {
    let w = World::start(DaemonConfig {
        max_failures: 2,
        max_tries: 2,
        ..DaemonConfig::default()
    });
    let (user, e) = w.enrolled_user("rm");
    let right = code(&e.secret, 1);
    let bad = wrong_code(&[&right, &code(&e.secret, 0), &code(&e.secret, -1)]);
    let mut remote = w.pam.login("herarx", &user.name, &[&bad, &bad]);
    remote.rhost = Some("203.0.113.9".into());
    assert_eq!(run_login(&remote, None).transcript.rc, PAM_MAXTRIES);
    remote.answers = vec![right.clone()];
    assert_eq!(
        run_login(&remote, None).transcript.rc,
        PAM_MAXTRIES,
        "remote stays locked"
    );

    let mut local = w.pam.login("herarx", &user.name, &[&right]);
    local.tty = Some("tty1".into());
    assert_eq!(
        run_login(&local, None).transcript.rc,
        PAM_SUCCESS,
        "the console still works"
    );
}

#[test]
fn daemon_down_fails_closed_within_the_timeout_or_is_ignored_with_failmode_open() {
    let mut w = World::start(DaemonConfig::default());
    let (user, e) = w.enrolled_user("dn");
    w.daemon.stop();
    let started = Instant::now();
    let r = w.login(&user.name, &[&code(&e.secret, 1)]);
    assert_eq!(r.transcript.rc, PAM_AUTHINFO_UNAVAIL, "{:?}", r.transcript);
    assert!(
        r.transcript.prompts().is_empty(),
        "no prompt when nobody can check the answer"
    );
    assert!(
        r.transcript
            .errors()
            .iter()
            .any(|m| m.contains("not answering")),
        "the user is told why: {:?}",
        r.transcript
    );
    assert!(
        started.elapsed().as_secs_f64() < 2.5,
        "within timeout=2: {:?}",
        started.elapsed()
    );

    w.pam.service(
        "herarx-open",
        &format!(
            "auth required pam_permit.so\n{}",
            module_line(&w.bus.address, "failmode=open")
        ),
    );
    let open = run_login(&w.pam.login("herarx-open", &user.name, &[]), None);
    assert_eq!(
        open.transcript.rc, PAM_SUCCESS,
        "failmode=open: ignored, the stack decides"
    );

    // The whole bus gone (socket refuses): closed still fails.
    let gone = w.pam.login("herarx", &user.name, &[]);
    drop(w.daemon);
    drop(w.bus);
    assert_eq!(run_login(&gone, None).transcript.rc, PAM_AUTHINFO_UNAVAIL);
}

#[test]
fn unknown_user_gets_exactly_what_a_known_user_without_a_factor_gets() {
    // Nobody can tell an account that does not exist from one without a factor. (Whether an
    // account has a factor shows only to someone who got past the password: Debian's
    // common-auth ends a wrong password at pam_deny, before Herarx.)
    for no_factor in ["deny", "allow"] {
        let w = World::start(DaemonConfig {
            no_factor,
            ..DaemonConfig::default()
        });
        let unknown = w.login("hx-nobody-such-user", &["123456"]);
        let user = TestUser::create("kn");
        let known = w.login(&user.name, &["123456"]);
        assert_eq!(known.transcript.rc, unknown.transcript.rc, "{no_factor}");
        assert_eq!(known.transcript.prompts(), unknown.transcript.prompts());
        assert_eq!(known.transcript.errors(), unknown.transcript.errors());
        assert_eq!(
            known.transcript.unused_answers,
            unknown.transcript.unused_answers
        );
    }
}

#[test]
fn user_without_factor_is_refused_by_default_and_ignored_when_policy_says_so() {
    let w = World::start(DaemonConfig {
        no_factor: "deny",
        ..DaemonConfig::default()
    });
    let user = TestUser::create("nf");
    let r = w.login(&user.name, &["123456"]);
    assert_eq!(r.transcript.rc, PAM_AUTH_ERR, "deny: refused");
    assert!(r.transcript.prompts().is_empty(), "without asking anything");
    assert_eq!(r.transcript.unused_answers, 1);
    assert!(
        r.transcript.errors()[0].contains("herarxctl totp add"),
        "says how to enrol: {:?}",
        r.transcript
    );

    let w = World::start(DaemonConfig {
        no_factor: "ignore",
        ..DaemonConfig::default()
    });
    let r = w.login(&user.name, &[]);
    assert_eq!(
        r.transcript.rc, PAM_SUCCESS,
        "ignore: the rest of the stack decides"
    );
    assert!(r.transcript.messages.is_empty(), "and nothing is asked");
    // IGNORE is not success: a stack of only Herarx still refuses.
    w.pam
        .service("herarx-only", &module_line(&w.bus.address, ""));
    let only = run_login(&w.pam.login("herarx-only", &user.name, &[]), None);
    assert_eq!(only.transcript.rc, PAM_PERM_DENIED);
    // An enrolled user under the same policy is still asked.
    let (enrolled, e) = w.enrolled_user("nf");
    let r = w.login(
        &enrolled.name,
        &[&code_at_step(&e.secret, e.confirm_step + 1)],
    );
    assert_eq!(r.transcript.prompts().len(), 1);
    assert_eq!(r.transcript.rc, PAM_SUCCESS);
}

#[test]
fn no_thread_and_no_fd_outlives_the_call() {
    let w = World::start(DaemonConfig::default());
    let (user, e) = w.enrolled_user("fd");
    let r = w.login(&user.name, &[&code(&e.secret, 1)]);
    assert_eq!(r.transcript.rc, PAM_SUCCESS);
    assert_eq!(r.threads_after, r.threads_before, "threads: {r:?}");
    assert_eq!(r.fds_after, r.fds_before, "fds: {r:?}");
    let bad = w.login(&user.name, &["000000"]);
    assert_eq!(bad.transcript.rc, PAM_CONV_ERR);
    assert_eq!(
        (bad.threads_after, bad.fds_after),
        (bad.threads_before, bad.fds_before)
    );
}

#[test]
fn a_screen_locker_running_as_the_user_can_check_that_user_only() {
    let w = World::start(DaemonConfig::default());
    let (user, e) = w.enrolled_user("sl");
    let (other, _) = w.enrolled_user("sl");
    let own = run_login(
        &w.pam.login("herarx", &user.name, &[&code(&e.secret, 1)]),
        Some(&user),
    );
    assert_eq!(own.transcript.rc, PAM_SUCCESS, "{:?}", own.transcript);
    let theirs = run_login(
        &w.pam.login("herarx", &user.name, &[&code(&e.secret, 1)]),
        Some(&other),
    );
    assert_eq!(
        theirs.transcript.rc, PAM_CRED_INSUFFICIENT,
        "{:?}",
        theirs.transcript
    );
    assert!(theirs.transcript.prompts().is_empty());
}

#[test]
fn logs_tell_decisions_but_never_a_code_or_secret() {
    let w = World::start(DaemonConfig::default());
    let (user, e) = w.enrolled_user("lg");
    let good = code_at_step(&e.secret, now_step() + 1);
    let bad = wrong_code(&[&good]);
    assert_eq!(
        w.login(&user.name, &[&bad, &good]).transcript.rc,
        PAM_SUCCESS
    );
    let lines = w.daemon.logs.lines();
    let ours: Vec<_> = lines.iter().filter(|l| l.contains(&user.name)).collect();
    assert!(
        ours.len() >= 2,
        "enrolment and login are audited: {lines:#?}"
    );
    assert!(
        lines.iter().all(|l| l.starts_with("<")),
        "syslog framing: {lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<8") && l.contains(&user.name)),
        "facility authpriv (10 << 3 = 80..87): {lines:#?}"
    );
    for l in &lines {
        for secret in [&good, &bad, &e.secret, &e.uri] {
            assert!(!l.contains(secret.as_str()), "log line leaks {secret}: {l}");
        }
    }
    // The same decisions are in the store's audit table, for admins.
    let db = rusqlite::Connection::open(w.daemon.db_path()).unwrap();
    let mut rows = db
        .prepare("SELECT service, result, reason FROM audit WHERE user = ?1 AND method = 'totp' ORDER BY id")
        .unwrap();
    let rows: Vec<(String, String, String)> = rows
        .query_map([&user.name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let results: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    assert!(
        results.ends_with(&["denied", "success"]),
        "wrong then right: {rows:?}"
    );
    assert!(
        rows.iter().all(|r| r.0 == "herarx"),
        "the PAM service is recorded: {rows:?}"
    );
    for (_, _, reason) in &rows {
        assert!(
            !reason.contains(good.as_str()) && !reason.contains(bad.as_str()),
            "{reason}"
        );
    }
}
