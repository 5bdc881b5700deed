//! Trusted networks: `[network] trusted` and `[services.NAME] trusted_networks`, through real
//! libpam (the built module, `pam_permit` standing in for the password), the real daemon on a
//! private bus, and PAM_RHOST as sshd sets it.

use herarx_tests::pam_client::*;
use herarx_tests::pamconf::{module_line, run_login};
use herarx_tests::sshd::{ClientLogin, Sshd, stack_password_then_code};
use herarx_tests::totp::{code_at_step, wrong_code};
use herarx_tests::{DaemonConfig, TestUser, World, ctl};

/// The global list trusts 198.51.100.0/24 and the loopback network; `herarx-strict` trusts
/// nothing (its own empty list replaces the global one).
fn world() -> World {
    let w = World::start(DaemonConfig {
        extra_tables: Some(
            "[network]\ntrusted = [\"198.51.100.0/24\", \"127.0.0.0/8\", \"2001:db8::/32\"]\n\
             [services.herarx-strict]\ntrusted_networks = []\n"
                .into(),
        ),
        ..DaemonConfig::default()
    });
    w.pam.service(
        "herarx-strict",
        &format!(
            "auth required pam_permit.so\n{}",
            module_line(&w.bus.address, "")
        ),
    );
    w
}

fn login_from(w: &World, service: &str, user: &str, rhost: &str, answers: &[&str]) -> Login {
    let mut l = w.pam.login(service, user, answers);
    l.rhost = Some(rhost.into());
    l
}

#[test]
fn a_trusted_address_skips_the_code_and_is_audited_naming_the_network() {
    let w = world();
    let (user, _) = w.enrolled_user("tn");
    for rhost in ["198.51.100.7", "::ffff:198.51.100.8", "2001:db8::5"] {
        let r = run_login(&login_from(&w, "herarx", &user.name, rhost, &[]), None);
        assert_eq!(r.transcript.rc, PAM_SUCCESS, "{rhost}: {:?}", r.transcript);
        assert!(
            r.transcript.messages.is_empty(),
            "{rhost}: nothing asked: {:?}",
            r.transcript
        );
    }
    let lines = w.daemon.logs.lines();
    assert!(
        lines.iter().any(|l| l.contains(&user.name)
            && l.contains("rhost=198.51.100.7")
            && l.contains("result=skip")
            && l.contains("trusted network 198.51.100.0/24 (service herarx)")),
        "{lines:#?}"
    );
    let db = rusqlite::Connection::open(w.daemon.db_path()).unwrap();
    let rows: Vec<(String, String, String, String)> = db
        .prepare("SELECT rhost, method, result, reason FROM audit WHERE user = ?1 AND result = 'skip' ORDER BY id")
        .unwrap()
        .query_map([&user.name], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        rows,
        [
            (
                "198.51.100.7",
                "none",
                "skip",
                "trusted network 198.51.100.0/24 (service herarx)"
            ),
            (
                "::ffff:198.51.100.8",
                "none",
                "skip",
                "trusted network 198.51.100.0/24 (service herarx)"
            ),
            (
                "2001:db8::5",
                "none",
                "skip",
                "trusted network 2001:db8::/32 (service herarx)"
            ),
        ]
        .map(|(a, b, c, d)| (a.to_owned(), b.to_owned(), c.to_owned(), d.to_owned()))
    );
}

#[test]
fn an_untrusted_address_is_asked_for_the_code() {
    let w = world();
    let (user, e) = w.enrolled_user("tu");
    let right = code_at_step(&e.secret, e.confirm_step + 1);
    let near: Vec<String> = (e.confirm_step - 1..=e.confirm_step + 4)
        .map(|s| code_at_step(&e.secret, s))
        .collect();
    let bad = wrong_code(&near.iter().map(String::as_str).collect::<Vec<_>>());
    let untrusted = "203.0.113.9";
    let r = run_login(
        &login_from(&w, "herarx", &user.name, untrusted, &[&bad, &bad, &bad]),
        None,
    );
    assert_eq!(r.transcript.rc, PAM_AUTH_ERR, "{:?}", r.transcript);
    assert_eq!(r.transcript.prompts().len(), 3);
    let r = run_login(
        &login_from(&w, "herarx", &user.name, "198.51.101.1", &[&right]),
        None,
    );
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);
    assert_eq!(r.transcript.prompts(), vec!["Verification code: "]);
}

#[test]
fn a_service_with_its_own_empty_list_asks_from_the_same_address() {
    let w = world();
    let (user, e) = w.enrolled_user("ts");
    let right = code_at_step(&e.secret, e.confirm_step + 1);
    let trusted = "198.51.100.7";
    let r = run_login(&login_from(&w, "herarx", &user.name, trusted, &[]), None);
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);
    assert!(r.transcript.prompts().is_empty());

    let r = run_login(
        &login_from(&w, "herarx-strict", &user.name, trusted, &[]),
        None,
    );
    assert_eq!(
        r.transcript.prompts(),
        vec!["Verification code: "],
        "{:?}",
        r.transcript
    );
    assert_ne!(r.transcript.rc, PAM_SUCCESS, "no answer, no login");
    let r = run_login(
        &login_from(&w, "herarx-strict", &user.name, trusted, &[&right]),
        None,
    );
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);
    assert_eq!(r.transcript.prompts().len(), 1);
}

#[test]
fn a_host_name_is_never_trusted_even_one_that_resolves_into_the_network() {
    let w = world();
    let (user, _) = w.enrolled_user("th");
    // "localhost" resolves to 127.0.0.1, inside the trusted 127.0.0.0/8: names are never
    // resolved, so it is asked like any other name, and so is an empty PAM_RHOST.
    for rhost in ["localhost", "198.51.100.7.nip.io", ""] {
        let r = run_login(&login_from(&w, "herarx", &user.name, rhost, &[]), None);
        assert_eq!(
            r.transcript.prompts(),
            vec!["Verification code: "],
            "{rhost:?}: {:?}",
            r.transcript
        );
        assert_ne!(r.transcript.rc, PAM_SUCCESS, "{rhost:?}");
    }
}

#[test]
fn a_non_root_caller_is_still_refused_for_another_user_from_a_trusted_address() {
    let w = world();
    let (user, _) = w.enrolled_user("tr");
    let (other, _) = w.enrolled_user("tr");
    let theirs = run_login(
        &login_from(&w, "herarx", &user.name, "198.51.100.7", &[]),
        Some(&other),
    );
    assert_eq!(
        theirs.transcript.rc, PAM_CRED_INSUFFICIENT,
        "{:?}",
        theirs.transcript
    );
    // Their own screen locker from the same address is let through.
    let own = run_login(
        &login_from(&w, "herarx", &other.name, "198.51.100.7", &[]),
        Some(&other),
    );
    assert_eq!(own.transcript.rc, PAM_SUCCESS, "{:?}", own.transcript);
}

/// OpenSSH's sshd (set-up A: pam_unix for the password, then Herarx) with `UseDNS no`, so
/// PAM_RHOST is the client's address; the stock client bound to 127.0.0.2 (trusted) gets in
/// with the password alone, bound to 127.0.0.3 it is asked for the code.
#[test]
fn sshd_lets_a_trusted_source_in_with_the_password_alone() {
    const PASSWORD: &str = "Herarx-test pw 7";
    let w = World::start(DaemonConfig {
        extra_tables: Some("[network]\ntrusted = [\"127.0.0.2/32\"]\n".into()),
        ..DaemonConfig::default()
    });
    let user = TestUser::create_login("tssh", PASSWORD);
    let e = ctl::enrol_totp(&user, &w.bus.address, "phone", None);
    let right = code_at_step(&e.secret, e.confirm_step + 1);
    let sshd = Sshd::start(
        "keyboard-interactive",
        &stack_password_then_code(&w.bus.address),
        &[&user],
    );
    let at = format!("({}@127.0.0.1) ", user.name);
    let show = |r: &dyn std::fmt::Debug| {
        format!(
            "{r:#?}\n--- sshd log:\n{}--- herarxd log:\n{}",
            sshd.log(),
            w.daemon.logs.lines().join("\n")
        )
    };
    let from = |source: &str, codes: &[&str]| ClientLogin {
        source: Some(source.into()),
        ..ClientLogin::password(&user, PASSWORD, codes)
    };

    let r = sshd.ssh(&from("127.0.0.2", &[]), "keyboard-interactive");
    assert!(r.success, "{}", show(&r));
    assert_eq!(r.stdout.trim(), user.name, "{}", show(&r));
    assert_eq!(r.prompts, [format!("{at}Password: ")], "{}", show(&r));
    assert!(
        w.daemon
            .logs
            .lines()
            .iter()
            .any(|l| l.contains("rhost=127.0.0.2") && l.contains("trusted network 127.0.0.2/32")),
        "{}",
        show(&r)
    );

    let r = sshd.ssh(&from("127.0.0.3", &[&right]), "keyboard-interactive");
    assert!(r.success, "{}", show(&r));
    assert_eq!(
        r.prompts,
        [
            format!("{at}Password: "),
            format!("{at}Verification code: ")
        ],
        "{}",
        show(&r)
    );
    // The password is still checked from the trusted address.
    let mut wrong = from("127.0.0.2", &[]);
    wrong.password = Some("not the password".into());
    let r = sshd.ssh(&wrong, "keyboard-interactive");
    assert!(!r.success, "{}", show(&r));
}
