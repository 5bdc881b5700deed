//! SSH with real clients: OpenSSH's own `sshd` on 127.0.0.1 under a PAM service of its own
//! (a symlink named for a uniquely named /etc/pam.d file), logged in to by paramiko and by the
//! stock `ssh` client, against the real daemon on a private bus; codes from oathtool.
//!
//! A: `AuthenticationMethods keyboard-interactive`: pam_unix (password) then Herarx.
//! B: `AuthenticationMethods publickey,keyboard-interactive`: the key, then only the code.

use herarx_tests::pamconf::module_line;
use herarx_tests::sshd::{
    ClientLogin, ParamikoReport, Sshd, stack_key_then_code, stack_password_then_code,
};
use herarx_tests::totp::{code_at_step, wrong_code};
use herarx_tests::{DaemonConfig, TestUser, World, ctl};

const PASSWORD: &str = "Herarx-test pw 7";
const PROMPT: &str = "Verification code: ";
const PROMPT_AFTER_WRONG: &str = "Wrong code. Verification code: ";

/// A: the password through pam_unix, then the code.
/// B as the issue first put it: Herarx alone in auth (sshd checked the key already).
fn stack_code_only(bus: &str) -> String {
    format!(
        "{}account required pam_unix.so\nsession required pam_permit.so\n",
        module_line(bus, "")
    )
}

/// B as the README recommends it (see `stack_key_then_code`).
fn stack_code_only_recommended(bus: &str) -> String {
    stack_key_then_code(bus)
}

/// A login user with one TOTP factor; the code of the step after the enrolment (fresh) and a
/// code that is surely wrong (no step near now).
fn enrolled(w: &World, tag: &str) -> (TestUser, String, String) {
    let user = TestUser::create_login(tag, PASSWORD);
    let e = ctl::enrol_totp(&user, &w.bus.address, "phone", None);
    let right = code_at_step(&e.secret, e.confirm_step + 1);
    let near: Vec<String> = (e.confirm_step - 1..=e.confirm_step + 4)
        .map(|s| code_at_step(&e.secret, s))
        .collect();
    let bad = wrong_code(&near.iter().map(String::as_str).collect::<Vec<_>>());
    (user, right, bad)
}

/// What a failing assertion shows: the client's report, sshd's log and the daemon's.
fn ctx(what: &dyn std::fmt::Debug, sshd: &Sshd, w: &World) -> String {
    format!(
        "{what:#?}\n--- sshd log:\n{}--- herarxd log:\n{}",
        sshd.log(),
        w.daemon.logs.lines().join("\n")
    )
}

/// Each keyboard-interactive round carries at most one prompt (sshd ends with an empty one).
fn one_prompt_per_round(r: &ParamikoReport) -> bool {
    r.rounds.iter().all(|round| round.prompts.len() <= 1)
}

// ---- A: password then code --------------------------------------------------------------

#[test]
fn a_password_then_right_code_runs_a_shell_and_the_same_code_again_fails() {
    let w = World::start(DaemonConfig::default());
    let (user, right, _) = enrolled(&w, "sa");
    let sshd = Sshd::start(
        "keyboard-interactive",
        &stack_password_then_code(&w.bus.address),
        &[&user],
    );
    let r = sshd.paramiko(&ClientLogin::password(&user, PASSWORD, &[&right]));
    assert!(r.ran_as(&user.name), "{}", ctx(&r, &sshd, &w));
    assert_eq!(
        r.prompts(),
        ["Password: ", PROMPT],
        "{}",
        ctx(&r, &sshd, &w)
    );
    assert!(one_prompt_per_round(&r), "{}", ctx(&r, &sshd, &w));

    let again = sshd.paramiko(&ClientLogin::password(
        &user,
        PASSWORD,
        &[&right, &right, &right],
    ));
    assert!(!again.authenticated, "{}", ctx(&again, &sshd, &w));
    let prompts = again.prompts();
    assert_eq!(prompts[..2], ["Password: ", PROMPT], "{prompts:?}");
    assert!(
        prompts[2].contains("already used") && prompts[2].ends_with(PROMPT),
        "a replayed code is named in the next prompt: {}",
        ctx(&again, &sshd, &w)
    );
}

#[test]
fn a_wrong_codes_fail_and_the_hint_is_in_the_next_prompt() {
    let w = World::start(DaemonConfig::default());
    let (user, right, bad) = enrolled(&w, "sw");
    let sshd = Sshd::start(
        "keyboard-interactive",
        &stack_password_then_code(&w.bus.address),
        &[&user],
    );
    let r = sshd.paramiko(&ClientLogin::password(&user, PASSWORD, &[&bad, &bad, &bad]));
    assert!(!r.authenticated, "{}", ctx(&r, &sshd, &w));
    assert_eq!(
        r.prompts(),
        ["Password: ", PROMPT, PROMPT_AFTER_WRONG, PROMPT_AFTER_WRONG],
        "three tries, the hint inside each next prompt: {}",
        ctx(&r, &sshd, &w)
    );
    assert!(one_prompt_per_round(&r), "{}", ctx(&r, &sshd, &w));
    assert_eq!(
        r.rounds.last().map(|round| round.instructions.trim()),
        Some("Wrong code."),
        "the final refusal reaches the client (a last round without prompt): {}",
        ctx(&r, &sshd, &w)
    );
    assert!(
        sshd.log().contains("Failed keyboard-interactive/pam"),
        "{}",
        sshd.log()
    );

    // A wrong code then the right one, within one login: passes.
    let r = sshd.paramiko(&ClientLogin::password(&user, PASSWORD, &[&bad, &right]));
    assert!(r.ran_as(&user.name), "{}", ctx(&r, &sshd, &w));
    assert_eq!(r.prompts(), ["Password: ", PROMPT, PROMPT_AFTER_WRONG]);
}

#[test]
fn a_no_factor_is_refused_by_default() {
    let w = World::start(DaemonConfig::default());
    let user = TestUser::create_login("sn", PASSWORD);
    let sshd = Sshd::start(
        "keyboard-interactive",
        &stack_password_then_code(&w.bus.address),
        &[&user],
    );
    let r = sshd.paramiko(&ClientLogin::password(&user, PASSWORD, &["000000"]));
    assert!(!r.authenticated, "no_factor = deny: {}", ctx(&r, &sshd, &w));
}

#[test]
fn a_no_factor_under_ignore_logs_in_with_the_password_alone_and_not_without_it() {
    let w = World::start(DaemonConfig {
        no_factor: "ignore",
        ..DaemonConfig::default()
    });
    let user = TestUser::create_login("si", PASSWORD);
    let sshd = Sshd::start(
        "keyboard-interactive",
        &stack_password_then_code(&w.bus.address),
        &[&user],
    );
    let r = sshd.paramiko(&ClientLogin::password(&user, PASSWORD, &[]));
    assert!(r.ran_as(&user.name), "{}", ctx(&r, &sshd, &w));
    assert_eq!(r.prompts(), ["Password: "], "no code asked");

    let r = sshd.paramiko(&ClientLogin::password(&user, "not the password", &[]));
    assert!(
        !r.authenticated,
        "ignore never makes the password optional: {}",
        ctx(&r, &sshd, &w)
    );
}

#[test]
fn a_daemon_down_fails_closed_and_the_same_login_passes_once_it_is_back() {
    let mut w = World::start(DaemonConfig::default());
    let (user, right, _) = enrolled(&w, "sd");
    let sshd = Sshd::start(
        "keyboard-interactive",
        &stack_password_then_code(&w.bus.address),
        &[&user],
    );
    w.daemon.stop();
    let r = sshd.paramiko(&ClientLogin::password(&user, PASSWORD, &[&right]));
    assert!(!r.authenticated, "daemon down: {}", ctx(&r, &sshd, &w));
    assert!(
        !r.prompts().contains(&PROMPT),
        "no code is asked that could not be checked: {r:?}"
    );

    w.daemon.restart();
    let r = sshd.paramiko(&ClientLogin::password(&user, PASSWORD, &[&right]));
    assert!(r.ran_as(&user.name), "{}", ctx(&r, &sshd, &w));
}

// ---- B: key then code -------------------------------------------------------------------

#[test]
fn b_key_then_right_code_runs_a_shell_and_the_same_code_again_fails() {
    let w = World::start(DaemonConfig::default());
    let (user, right, _) = enrolled(&w, "kb");
    let sshd = Sshd::start(
        "publickey,keyboard-interactive",
        &stack_code_only(&w.bus.address),
        &[&user],
    );
    sshd.authorize(&user);
    let r = sshd.paramiko(&ClientLogin::key(&user, &[&right]));
    assert!(r.ran_as(&user.name), "{}", ctx(&r, &sshd, &w));
    assert_eq!(
        r.publickey_remaining.as_deref(),
        Some(&["keyboard-interactive".to_string()][..]),
        "the key is a partial success: {}",
        ctx(&r, &sshd, &w)
    );
    assert_eq!(r.prompts(), [PROMPT], "only the code, no password");
    assert!(one_prompt_per_round(&r), "{}", ctx(&r, &sshd, &w));

    let again = sshd.paramiko(&ClientLogin::key(&user, &[&right, &right, &right]));
    assert!(!again.authenticated, "{}", ctx(&again, &sshd, &w));
    assert_eq!(again.prompts()[0], PROMPT);
    assert!(
        again.prompts()[1].contains("already used"),
        "{}",
        ctx(&again, &sshd, &w)
    );
}

#[test]
fn b_wrong_code_no_code_no_key_and_daemon_down_all_fail() {
    let mut w = World::start(DaemonConfig::default());
    let (user, right, bad) = enrolled(&w, "kw");
    let sshd = Sshd::start(
        "publickey,keyboard-interactive",
        &stack_code_only(&w.bus.address),
        &[&user],
    );
    sshd.authorize(&user);

    let r = sshd.paramiko(&ClientLogin::key(&user, &[&bad, &bad, &bad]));
    assert!(!r.authenticated, "wrong code: {}", ctx(&r, &sshd, &w));
    assert_eq!(
        r.prompts(),
        [PROMPT, PROMPT_AFTER_WRONG, PROMPT_AFTER_WRONG],
        "{}",
        ctx(&r, &sshd, &w)
    );

    let key_only = ClientLogin {
        keyboard_interactive: false,
        ..ClientLogin::key(&user, &[])
    };
    let r = sshd.paramiko(&key_only);
    assert!(!r.authenticated, "the key alone: {}", ctx(&r, &sshd, &w));
    assert_eq!(
        r.publickey_remaining.as_deref(),
        Some(&["keyboard-interactive".to_string()][..])
    );

    let r = sshd.paramiko(&ClientLogin::key(&user, &[]));
    assert!(!r.authenticated, "empty answers: {}", ctx(&r, &sshd, &w));

    let no_key = ClientLogin {
        with_key: false,
        ..ClientLogin::key(&user, &[&right])
    };
    let r = sshd.paramiko(&no_key);
    assert!(!r.authenticated, "the code alone: {}", ctx(&r, &sshd, &w));
    assert!(r.prompts().is_empty(), "not even asked: {r:?}");

    w.daemon.stop();
    let r = sshd.paramiko(&ClientLogin::key(&user, &[&right]));
    assert!(!r.authenticated, "daemon down: {}", ctx(&r, &sshd, &w));
}

#[test]
fn b_herarx_alone_in_auth_refuses_a_user_without_factor_even_under_ignore() {
    // libpam: a stack whose only module returned PAM_IGNORE fails (PAM_PERM_DENIED), so with
    // Herarx alone in auth, "ignore" users cannot log in with their key. The README shows the
    // recommended stack (next test) instead.
    let w = World::start(DaemonConfig {
        no_factor: "ignore",
        ..DaemonConfig::default()
    });
    let user = TestUser::create_login("kn", PASSWORD);
    let sshd = Sshd::start(
        "publickey,keyboard-interactive",
        &stack_code_only(&w.bus.address),
        &[&user],
    );
    sshd.authorize(&user);
    let r = sshd.paramiko(&ClientLogin::key(&user, &[]));
    assert!(!r.authenticated, "{}", ctx(&r, &sshd, &w));
    assert!(r.prompts().is_empty(), "{r:?}");
}

#[test]
fn b_recommended_stack_lets_ignore_users_in_with_the_key_and_still_checks_codes() {
    let mut w = World::start(DaemonConfig {
        no_factor: "ignore",
        // Several failing logins of one user below: none of them may be refused as "locked".
        max_failures: 50,
        ..DaemonConfig::default()
    });
    let plain = TestUser::create_login("kp", PASSWORD);
    let (enrolled_user, right, bad) = enrolled(&w, "ke");
    let sshd = Sshd::start(
        "publickey,keyboard-interactive",
        &stack_code_only_recommended(&w.bus.address),
        &[&plain, &enrolled_user],
    );
    sshd.authorize(&plain);
    sshd.authorize(&enrolled_user);

    let r = sshd.paramiko(&ClientLogin::key(&plain, &[]));
    assert!(
        r.ran_as(&plain.name),
        "no factor, ignore: the key alone: {}",
        ctx(&r, &sshd, &w)
    );
    assert!(r.prompts().is_empty(), "nothing asked: {r:?}");

    let r = sshd.paramiko(&ClientLogin::key(&enrolled_user, &[&bad, &bad, &bad]));
    assert!(!r.authenticated, "wrong code: {}", ctx(&r, &sshd, &w));
    let r = sshd.paramiko(&ClientLogin::key(&enrolled_user, &[]));
    assert!(!r.authenticated, "no code: {}", ctx(&r, &sshd, &w));
    let r = sshd.paramiko(&ClientLogin::key(&enrolled_user, &[&right]));
    assert!(r.ran_as(&enrolled_user.name), "{}", ctx(&r, &sshd, &w));
    assert_eq!(r.prompts(), [PROMPT]);
    let r = sshd.paramiko(&ClientLogin::key(&enrolled_user, &[&right, &right, &right]));
    assert!(!r.authenticated, "reused code: {}", ctx(&r, &sshd, &w));

    w.daemon.stop();
    let r = sshd.paramiko(&ClientLogin::key(&plain, &[]));
    assert!(
        !r.authenticated,
        "daemon down fails closed, even for a user without factor: {}",
        ctx(&r, &sshd, &w)
    );
}

// ---- The stock OpenSSH client -----------------------------------------------------------

#[test]
fn stock_ssh_password_then_code_logs_in_and_a_wrong_code_is_refused() {
    let w = World::start(DaemonConfig::default());
    let (user, right, bad) = enrolled(&w, "so");
    let sshd = Sshd::start(
        "keyboard-interactive",
        &stack_password_then_code(&w.bus.address),
        &[&user],
    );
    // OpenSSH shows each keyboard-interactive prompt prefixed with "(user@host) ".
    let at = format!("({}@127.0.0.1) ", user.name);

    let r = sshd.ssh(
        &ClientLogin::password(&user, PASSWORD, &[&bad, &bad, &bad]),
        "keyboard-interactive",
    );
    assert!(!r.success, "{}", ctx(&r, &sshd, &w));
    assert!(
        r.stderr.contains("Permission denied"),
        "{}",
        ctx(&r, &sshd, &w)
    );
    assert_eq!(
        r.prompts,
        [
            format!("{at}Password: "),
            format!("{at}{PROMPT}"),
            format!("{at}{PROMPT_AFTER_WRONG}"),
            format!("{at}{PROMPT_AFTER_WRONG}"),
        ],
        "{}",
        ctx(&r, &sshd, &w)
    );

    let r = sshd.ssh(
        &ClientLogin::password(&user, PASSWORD, &[&right]),
        "keyboard-interactive",
    );
    assert!(r.success, "{}", ctx(&r, &sshd, &w));
    assert_eq!(r.stdout.trim(), user.name, "{}", ctx(&r, &sshd, &w));
    assert_eq!(
        r.prompts,
        [format!("{at}Password: "), format!("{at}{PROMPT}")],
        "{}",
        ctx(&r, &sshd, &w)
    );
}

#[test]
fn stock_ssh_key_then_code_logs_in_and_a_wrong_code_is_refused() {
    let w = World::start(DaemonConfig::default());
    let (user, right, bad) = enrolled(&w, "sk");
    let sshd = Sshd::start(
        "publickey,keyboard-interactive",
        &stack_code_only(&w.bus.address),
        &[&user],
    );
    sshd.authorize(&user);
    let at = format!("({}@127.0.0.1) ", user.name);

    let r = sshd.ssh(
        &ClientLogin::key(&user, &[&bad, &bad, &bad]),
        "publickey,keyboard-interactive",
    );
    assert!(!r.success, "{}", ctx(&r, &sshd, &w));
    assert_eq!(
        r.prompts,
        [
            format!("{at}{PROMPT}"),
            format!("{at}{PROMPT_AFTER_WRONG}"),
            format!("{at}{PROMPT_AFTER_WRONG}"),
        ],
        "{}",
        ctx(&r, &sshd, &w)
    );

    let r = sshd.ssh(
        &ClientLogin::key(&user, &[&right]),
        "publickey,keyboard-interactive",
    );
    assert!(r.success, "{}", ctx(&r, &sshd, &w));
    assert_eq!(r.stdout.trim(), user.name, "{}", ctx(&r, &sshd, &w));
    assert_eq!(
        r.prompts,
        [format!("{at}{PROMPT}")],
        "{}",
        ctx(&r, &sshd, &w)
    );
}
