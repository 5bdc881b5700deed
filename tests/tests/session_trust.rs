//! Session trust through real libpam: a login that passed the second factor opens its session
//! with the real `pam_loginuid` (a new kernel audit session) and Herarx's session hook; PAM
//! calls from processes inside that session (what `sudo` or a screen locker would make) skip
//! the second factor; other sessions, other users, a logged-out session and an expired trust
//! are asked again.

use herarx_tests::pam_client::*;
use herarx_tests::pamconf::{run_login, run_session};
use herarx_tests::totp::code_at_step;
use herarx_tests::{DaemonConfig, World};

const SERVICE: &str = "herarx-sess";

/// `herarx-sess-su`: an `su`-like service (no `pam_loginuid`: the session stays the one it runs
/// in). `herarx-sess-ssh`: an sshd-like service (`always_remote`).
const SU: &str = "herarx-sess-su";
const SSH: &str = "herarx-sess-ssh";

fn world(session: &str) -> World {
    let w = World::start(DaemonConfig {
        extra_tables: Some(format!(
            "[remember]\nsession = \"{session}\"\n[services.{SSH}]\nalways_remote = true\n"
        )),
        ..DaemonConfig::default()
    });
    let module = herarx_tests::paths::pam_module();
    for service in [SU, SSH] {
        w.pam.service(
            service,
            &format!(
                "auth required pam_permit.so\n\
                 auth required {m} bus={b} timeout=2\n\
                 session optional {m} bus={b} timeout=2\n",
                m = module.display(),
                b = w.bus.address
            ),
        );
    }
    let module = herarx_tests::paths::pam_module();
    w.pam.service(
        SERVICE,
        &format!(
            "auth required pam_permit.so\n\
             auth required {m} bus={b} timeout=2\n\
             session required pam_loginuid.so\n\
             session optional {m} bus={b} timeout=2\n",
            m = module.display(),
            b = w.bus.address
        ),
    );
    w
}

fn login(w: &World, user: &str, answers: &[&str]) -> Login {
    w.pam.login(SERVICE, user, answers)
}

fn child(login: Login, delay_ms: u64) -> Child {
    Child {
        delay_ms,
        login,
        run_as: None,
    }
}

#[test]
fn calls_from_inside_a_verified_session_skip_and_nothing_else_does() {
    let w = world("1h");
    let (user, e) = w.enrolled_user("st");
    let (other, oe) = w.enrolled_user("so");
    let code = code_at_step(&e.secret, e.confirm_step + 1);
    let other_code = code_at_step(&oe.secret, oe.confirm_step + 1);
    let report = run_session(&SessionScript {
        login: login(&w, &user.name, &[&code]),
        inside: vec![
            child(login(&w, &user.name, &[]), 0),
            child(login(&w, &user.name, &[]), 0),
            // Another user from inside this session (su to them) is asked.
            child(login(&w, &other.name, &[&other_code]), 0),
            // A screen locker: the user's own process, authenticating its user.
            Child {
                run_as: Some((user.uid, user.gid)),
                ..child(login(&w, &user.name, &[]), 0)
            },
        ],
        after_logout: vec![child(login(&w, &user.name, &[]), 0)],
    });
    let t = &report.login;
    assert_eq!(t.rc, PAM_SUCCESS, "{t:?}");
    assert_eq!(t.open_rc, Some(PAM_SUCCESS), "{t:?}");
    assert_ne!(
        report.session_id, "4294967295",
        "pam_loginuid opened an audit session"
    );
    assert!(
        t.session_env
            .iter()
            .all(|v| !v.starts_with("HERARX_SESSION_TICKET")),
        "the ticket never reaches the session: {:?}",
        t.session_env
    );
    for inside in &report.inside[..2] {
        assert_eq!(inside.rc, PAM_SUCCESS, "{inside:?}");
        assert!(inside.prompts().is_empty(), "not asked inside: {inside:?}");
    }
    let su = &report.inside[2];
    assert_eq!(su.rc, PAM_SUCCESS, "{su:?}");
    assert_eq!(
        su.prompts(),
        vec!["Verification code: "],
        "another user is asked"
    );
    let locker = &report.inside[3];
    assert_eq!(locker.rc, PAM_SUCCESS, "{locker:?}");
    assert!(
        locker.prompts().is_empty(),
        "the screen locker is not asked: {locker:?}"
    );
    let out = &report.after_logout[0];
    assert_eq!(out.rc, PAM_CONV_ERR, "asked again after logout: {out:?}");
    assert_eq!(out.prompts(), vec!["Verification code: "]);

    // A login outside that session is asked.
    let r = run_login(&login(&w, &user.name, &[]), None);
    assert_eq!(r.transcript.prompts(), vec!["Verification code: "]);
}

#[test]
fn the_trust_expires() {
    let w = world("2s");
    let (user, e) = w.enrolled_user("sx");
    let code = code_at_step(&e.secret, e.confirm_step + 1);
    let report = run_session(&SessionScript {
        login: login(&w, &user.name, &[&code]),
        inside: vec![
            child(login(&w, &user.name, &[]), 0),
            child(login(&w, &user.name, &[]), 2_500),
        ],
        after_logout: vec![],
    });
    assert_eq!(report.login.rc, PAM_SUCCESS);
    assert!(
        report.inside[0].prompts().is_empty(),
        "{:?}",
        report.inside[0]
    );
    assert_eq!(
        report.inside[1].prompts(),
        vec!["Verification code: "],
        "expired: {:?}",
        report.inside[1]
    );
}

#[test]
fn without_session_trust_or_without_pam_loginuid_everyone_is_asked() {
    // Trust off (the default).
    let w = world("0");
    let (user, e) = w.enrolled_user("sn");
    let code = code_at_step(&e.secret, e.confirm_step + 1);
    let report = run_session(&SessionScript {
        login: login(&w, &user.name, &[&code]),
        inside: vec![child(login(&w, &user.name, &[]), 0)],
        after_logout: vec![],
    });
    assert_eq!(report.login.rc, PAM_SUCCESS);
    assert_eq!(report.inside[0].prompts(), vec!["Verification code: "]);

    // Trust on, but the session stack has no pam_loginuid: no audit session to trust (this
    // test runner has none), so the daemon refuses the ticket and says why.
    let w = world("1h");
    let module = herarx_tests::paths::pam_module();
    w.pam.service(
        SERVICE,
        &format!(
            "auth required pam_permit.so\n\
             auth required {m} bus={b} timeout=2\n\
             session optional {m} bus={b} timeout=2\n",
            m = module.display(),
            b = w.bus.address
        ),
    );
    let (user, e) = w.enrolled_user("sl");
    let code = code_at_step(&e.secret, e.confirm_step + 1);
    let report = run_session(&SessionScript {
        login: login(&w, &user.name, &[&code]),
        inside: vec![child(login(&w, &user.name, &[]), 0)],
        after_logout: vec![],
    });
    assert_eq!(report.login.rc, PAM_SUCCESS);
    // The children inherit the runner's audit session: on a runner that has one (started
    // from an ssh or desktop login) this case cannot be made here, and the test says so
    // rather than pass without checking.
    assert_eq!(
        report.session_id, "4294967295",
        "run the tests from a process without an audit session (e.g. a service or CI job)"
    );
    assert_eq!(report.inside[0].prompts(), vec!["Verification code: "]);
    w.daemon.logs.wait_for("pam_loginuid");
}

#[test]
fn su_to_another_user_inside_a_trusted_session_neither_gets_nor_replaces_its_trust() {
    let w = world("1h");
    let (alice, ae) = w.enrolled_user("sa");
    let (bob, be) = w.enrolled_user("sb");
    let alice_code = code_at_step(&ae.secret, ae.confirm_step + 1);
    let bob_code = code_at_step(&be.secret, be.confirm_step + 1);
    // `su bob` inside alice's session: bob passes his code and su opens its session (no
    // pam_loginuid: the audit session and login uid stay alice's).
    let mut su = w.pam.login(SU, &bob.name, &[&bob_code]);
    su.open_session = true;
    let report = run_session(&SessionScript {
        login: login(&w, &alice.name, &[&alice_code]),
        inside: vec![
            child(su, 0),
            child(login(&w, &alice.name, &[]), 0),
            child(login(&w, &bob.name, &[]), 0),
        ],
        after_logout: vec![],
    });
    assert_eq!(report.login.rc, PAM_SUCCESS, "{:?}", report.login);
    assert_eq!(report.inside[0].rc, PAM_SUCCESS, "{:?}", report.inside[0]);
    let alice_again = &report.inside[1];
    assert_eq!(alice_again.rc, PAM_SUCCESS, "{alice_again:?}");
    assert!(
        alice_again.prompts().is_empty(),
        "alice's trust stands: {alice_again:?}"
    );
    let bob_again = &report.inside[2];
    assert_eq!(
        bob_again.prompts(),
        vec!["Verification code: "],
        "bob is not trusted in alice's session: {bob_again:?}"
    );
    w.daemon.logs.wait_for("not begun by this user");
}

#[test]
fn a_remote_login_from_inside_a_trusted_session_is_asked() {
    let w = world("1h");
    let (user, e) = w.enrolled_user("sr");
    let code = code_at_step(&e.secret, e.confirm_step + 1);
    // What a daemon started by hand inside the session (an sshd on a second port) would run:
    // it inherits the session id and login uid, but its logins are remote.
    let mut from_afar = login(&w, &user.name, &[]);
    from_afar.rhost = Some("192.0.2.77".into());
    let report = run_session(&SessionScript {
        login: login(&w, &user.name, &[&code]),
        inside: vec![
            child(from_afar, 0),
            child(w.pam.login(SSH, &user.name, &[]), 0),
            // The failing twin: a local call from the same session skips.
            child(login(&w, &user.name, &[]), 0),
        ],
        after_logout: vec![],
    });
    assert_eq!(report.login.rc, PAM_SUCCESS, "{:?}", report.login);
    for (what, t) in [
        ("rhost", &report.inside[0]),
        ("always_remote", &report.inside[1]),
    ] {
        assert_eq!(t.prompts(), vec!["Verification code: "], "{what}: {t:?}");
        assert_eq!(t.rc, PAM_CONV_ERR, "{what}: {t:?}");
    }
    assert!(
        report.inside[2].prompts().is_empty(),
        "{:?}",
        report.inside[2]
    );
    assert_eq!(report.inside[2].rc, PAM_SUCCESS);
}
const TICKET_VAR: &str = "HERARX_SESSION_TICKET";

fn has_ticket(env: &[String]) -> bool {
    env.iter().any(|v| v.starts_with(TICKET_VAR))
}

#[test]
fn with_session_trust_on_and_no_session_line_the_ticket_never_reaches_the_environment() {
    let w = world("1h");
    let module = herarx_tests::paths::pam_module();
    // Auth only: nothing in this service would ever take the ticket.
    w.pam.service(
        SERVICE,
        &format!(
            "auth required pam_permit.so\n\
             auth required {m} bus={b} timeout=2\n",
            m = module.display(),
            b = w.bus.address
        ),
    );
    let (user, e) = w.enrolled_user("se");

    // As login, su, sudo and sshd do: authenticate, setcred, then read the environment.
    let mut l = login(
        &w,
        &user.name,
        &[&code_at_step(&e.secret, e.confirm_step + 1)],
    );
    l.setcred = true;
    let t = run_login(&l, None).transcript;
    assert_eq!(t.rc, PAM_SUCCESS, "{t:?}");
    assert_eq!(t.setcred_rc, Some(PAM_SUCCESS), "{t:?}");
    assert!(
        !has_ticket(&t.auth_env),
        "pam_getenvlist after setcred hands the shell no ticket: {:?}",
        t.auth_env
    );

    // Not vacuous: the daemon did issue a ticket, which waits in the PAM environment until
    // setcred (sshd brings only that environment back from its authentication child).
    let (other, oe) = w.enrolled_user("sf");
    let l = login(
        &w,
        &other.name,
        &[&code_at_step(&oe.secret, oe.confirm_step + 1)],
    );
    let t = run_login(&l, None).transcript;
    assert_eq!(t.rc, PAM_SUCCESS, "{t:?}");
    assert!(has_ticket(&t.auth_env), "{:?}", t.auth_env);
}

#[test]
fn session_trust_still_works_when_setcred_comes_before_the_session() {
    let w = world("1h");
    let (user, e) = w.enrolled_user("sc");
    let mut l = login(
        &w,
        &user.name,
        &[&code_at_step(&e.secret, e.confirm_step + 1)],
    );
    l.setcred = true;
    let report = run_session(&SessionScript {
        login: l,
        inside: vec![child(login(&w, &user.name, &[]), 0)],
        after_logout: vec![],
    });
    let t = &report.login;
    assert_eq!(t.rc, PAM_SUCCESS, "{t:?}");
    assert_eq!(t.setcred_rc, Some(PAM_SUCCESS), "{t:?}");
    assert!(!has_ticket(&t.auth_env), "{:?}", t.auth_env);
    assert_eq!(t.open_rc, Some(PAM_SUCCESS), "{t:?}");
    assert!(!has_ticket(&t.session_env), "{:?}", t.session_env);
    assert!(
        report.inside[0].prompts().is_empty(),
        "the session hook got the ticket from setcred's keeping: {:?}",
        report.inside[0]
    );
}
