//! What a login remembers after a second factor: "only ask from new addresses" (per-user
//! opt-in, allowed by policy, with expiry, `herarxctl forget`), SSH keys that sshd reports in
//! `SSH_AUTH_INFO_0` (remembered after a code; FIDO-backed ones counting as the second factor
//! when policy says so), through real libpam and through OpenSSH's sshd with real clients.

use herarx_tests::ctl::{self, run};
use herarx_tests::pam_client::*;
use herarx_tests::pamconf::run_login;
use herarx_tests::sshd::{ClientLogin, Sshd, stack_key_then_code, stack_password_then_code};
use herarx_tests::totp::code_at_step;
use herarx_tests::{DaemonConfig, TestUser, World};
use std::time::Duration;

const PROMPT: &str = "Verification code: ";

/// Codes of the next few time steps are accepted (skew 6), so that one user can pass several
/// logins within a test without waiting for the clock.
fn world(remember: &str) -> World {
    World::start(DaemonConfig {
        extra_tables: Some(format!("[remember]\n{remember}\n")),
        skew: 6,
        ..DaemonConfig::default()
    })
}

fn from(w: &World, user: &str, rhost: &str, env: &[String], answers: &[&str]) -> Transcript {
    let mut login = w.pam.login("herarx", user, answers);
    login.rhost = (!rhost.is_empty()).then(|| rhost.to_owned());
    login.env = env.to_vec();
    run_login(&login, None).transcript
}

fn wait_for_log(w: &World, needle: &str) {
    w.daemon.logs.wait_for(needle);
}

#[test]
fn a_remembered_address_skips_another_asks_and_expiry_forget_and_opt_out_ask_again() {
    let w = world("addresses = \"opt-in\"\naddress_for = \"3s\"");
    let (user, e) = w.enrolled_user("ra");
    let step = |i: u64| code_at_step(&e.secret, e.confirm_step + i);
    // Not opted in: asked every time, nothing remembered.
    let t = from(&w, &user.name, "192.0.2.40", &[], &[&step(1)]);
    assert_eq!(t.rc, PAM_SUCCESS, "{t:?}");
    let t = from(&w, &user.name, "192.0.2.40", &[], &[]);
    assert_eq!(t.prompts(), vec![PROMPT], "opt-out asks");

    let out = run(Some(&user), &w.bus.address, &["remember", "on"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = from(&w, &user.name, "192.0.2.40", &[], &[&step(2)]);
    assert_eq!(t.rc, PAM_SUCCESS, "{t:?}");
    let t = from(&w, &user.name, "192.0.2.40", &[], &[]);
    assert_eq!(
        (t.rc, t.prompts().len()),
        (PAM_SUCCESS, 0),
        "remembered: {t:?}"
    );
    let t = from(&w, &user.name, "192.0.2.41", &[], &[]);
    assert_eq!(t.prompts(), vec![PROMPT], "another address asks");
    let out = run(Some(&user), &w.bus.address, &["status", "--json"], &[]);
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["remember_addresses"], true);
    assert_eq!(st["remembered"][0]["value"], "192.0.2.40", "{st}");

    // Expiry asks again.
    std::thread::sleep(Duration::from_millis(3_100));
    let t = from(&w, &user.name, "192.0.2.40", &[], &[]);
    assert_eq!(t.prompts(), vec![PROMPT], "expired");

    // forget asks again; so does turning it off.
    let t = from(&w, &user.name, "192.0.2.40", &[], &[&step(3)]);
    assert_eq!(t.rc, PAM_SUCCESS);
    let out = run(Some(&user), &w.bus.address, &["forget", "--json"], &[]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["forgotten"], 1);
    let t = from(&w, &user.name, "192.0.2.40", &[], &[]);
    assert_eq!(t.prompts(), vec![PROMPT], "forgotten");
    let t = from(&w, &user.name, "192.0.2.40", &[], &[&step(4)]);
    assert_eq!(t.rc, PAM_SUCCESS);
    let out = run(Some(&user), &w.bus.address, &["remember", "off"], &[]);
    assert!(out.status.success());
    let t = from(&w, &user.name, "192.0.2.40", &[], &[]);
    assert_eq!(t.prompts(), vec![PROMPT], "off");
}

#[test]
fn remembering_addresses_is_refused_when_policy_forbids_it() {
    let w = world("addresses = \"off\"");
    let (user, _) = w.enrolled_user("rf");
    let out = run(Some(&user), &w.bus.address, &["remember", "on"], &[]);
    assert_eq!(out.status.code(), Some(4));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("remember.addresses"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn key_line(key_type: &str, body: &[u8]) -> String {
    let mut b = (key_type.len() as u32).to_be_bytes().to_vec();
    b.extend_from_slice(key_type.as_bytes());
    b.extend_from_slice(body);
    format!(
        "SSH_AUTH_INFO_0=publickey {key_type} {}",
        data_encoding::BASE64.encode(&b)
    )
}

#[test]
fn an_ssh_key_is_remembered_after_a_code_and_another_key_is_asked() {
    let w = world("ssh_keys = \"30d\"\nssh_services = [\"herarx\"]");
    let (user, e) = w.enrolled_user("rk");
    let key_a = vec![key_line("ssh-ed25519", b"key A")];
    let key_b = vec![key_line("ssh-ed25519", b"key B")];
    let t = from(
        &w,
        &user.name,
        "",
        &key_a,
        &[&code_at_step(&e.secret, e.confirm_step + 1)],
    );
    assert_eq!(t.rc, PAM_SUCCESS, "{t:?}");
    let t = from(&w, &user.name, "", &key_a, &[]);
    assert_eq!(
        (t.rc, t.prompts().len()),
        (PAM_SUCCESS, 0),
        "key A remembered: {t:?}"
    );
    wait_for_log(&w, "remembered SSH key SHA256:");
    let t = from(&w, &user.name, "", &key_b, &[]);
    assert_eq!(t.prompts(), vec![PROMPT], "key B asks");
    let t = from(&w, &user.name, "", &[], &[]);
    assert_eq!(t.prompts(), vec![PROMPT], "no key asks");
    // Another user presenting key A is asked: the memory is per user.
    let (other, _) = w.enrolled_user("rk2");
    let t = from(&w, &other.name, "", &key_a, &[]);
    assert_eq!(t.prompts(), vec![PROMPT]);
    // herarxctl status lists the key, forget clears it.
    let out = run(Some(&user), &w.bus.address, &["status"], &[]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ssh-key"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = run(Some(&user), &w.bus.address, &["forget"], &[]);
    assert!(out.status.success());
    let t = from(&w, &user.name, "", &key_a, &[]);
    assert_eq!(t.prompts(), vec![PROMPT], "forgotten");
}

#[test]
fn ssh_auth_info_is_believed_only_for_the_named_services() {
    // Keys remembered, but "herarx" is not an SSH service here: the variable is ignored.
    let w = world("ssh_keys = \"30d\"\nsk_keys_are_second_factor = true");
    let (user, e) = w.enrolled_user("rs");
    let sk = vec![key_line("sk-ssh-ed25519@openssh.com", b"sk key")];
    let t = from(&w, &user.name, "", &sk, &[]);
    assert_eq!(t.prompts(), vec![PROMPT], "not believed: {t:?}");
    let key = vec![key_line("ssh-ed25519", b"key")];
    let t = from(
        &w,
        &user.name,
        "",
        &key,
        &[&code_at_step(&e.secret, e.confirm_step + 1)],
    );
    assert_eq!(t.rc, PAM_SUCCESS);
    let t = from(&w, &user.name, "", &key, &[]);
    assert_eq!(
        t.prompts(),
        vec![PROMPT],
        "nothing remembered for other services"
    );
}

#[test]
fn a_fido_backed_ssh_key_counts_as_the_second_factor_only_when_policy_says_so() {
    let sk = vec![key_line("sk-ssh-ed25519@openssh.com", b"sk key")];
    let ecdsa_sk = vec![key_line("sk-ecdsa-sha2-nistp256@openssh.com", b"sk key 2")];
    let plain = vec![key_line("ssh-ed25519", b"plain")];
    // A line claiming a security key whose blob says otherwise does not count.
    let forged = vec![format!(
        "SSH_AUTH_INFO_0=publickey sk-ssh-ed25519@openssh.com {}",
        key_line("ssh-ed25519", b"x").rsplit(' ').next().unwrap()
    )];
    let w = world("sk_keys_are_second_factor = true\nssh_services = [\"herarx\"]");
    let (user, _) = w.enrolled_user("sk");
    for env in [&sk, &ecdsa_sk] {
        let t = from(&w, &user.name, "", env, &[]);
        assert_eq!((t.rc, t.prompts().len()), (PAM_SUCCESS, 0), "{t:?}");
    }
    wait_for_log(&w, "counts as the second factor");
    for env in [&plain, &forged] {
        let t = from(&w, &user.name, "", env, &[]);
        assert_eq!(t.prompts(), vec![PROMPT], "{env:?}");
    }
    let w = world("sk_keys_are_second_factor = false\nssh_services = [\"herarx\"]");
    let (user, _) = w.enrolled_user("sk2");
    let t = from(&w, &user.name, "", &sk, &[]);
    assert_eq!(t.prompts(), vec![PROMPT], "policy off");
}

#[test]
fn sshd_reports_the_key_and_a_remembered_key_logs_in_without_the_code() {
    const PASSWORD: &str = "Herarx-test pw 7";
    let config = DaemonConfig::default();
    let w = World::start(config.clone());
    let user = TestUser::create_login("rks", PASSWORD);
    let other = TestUser::create_login("rko", PASSWORD);
    let e = ctl::enrol_totp(&user, &w.bus.address, "phone", None);
    ctl::enrol_totp(&other, &w.bus.address, "phone", None);
    let sshd = Sshd::start(
        "publickey,keyboard-interactive",
        &stack_key_then_code(&w.bus.address),
        &[&user, &other],
    );
    sshd.authorize(&user);
    sshd.authorize(&other);
    // Believe this sshd's PAM service (named for its symlink) and remember keys.
    w.daemon.reconfigure(&format!(
        "{}[remember]\nssh_keys = \"30d\"\nssh_services = [\"{}\"]\n",
        config.toml(),
        sshd.service.name
    ));
    wait_for_log(&w, "configuration reloaded");
    let show = |r: &dyn std::fmt::Debug| {
        format!(
            "{r:#?}\n--- sshd:\n{}--- herarxd:\n{}",
            sshd.log(),
            w.daemon.logs.lines().join("\n")
        )
    };
    let code = code_at_step(&e.secret, e.confirm_step + 1);
    let r = sshd.paramiko(&ClientLogin::key(&user, &[&code]));
    assert!(r.ran_as(&user.name), "{}", show(&r));
    assert_eq!(r.prompts(), [PROMPT], "{}", show(&r));
    // sshd put the key into SSH_AUTH_INFO_0: the daemon remembered its fingerprint.
    wait_for_log(&w, "ssh-key SHA256:");
    let r = sshd.paramiko(&ClientLogin::key(&user, &[]));
    assert!(r.ran_as(&user.name), "the key alone now: {}", show(&r));
    assert!(r.prompts().is_empty(), "{}", show(&r));
    // The same key for another account is still asked for that account's code: keys are
    // remembered per user.
    let r = sshd.paramiko(&ClientLogin::key(&other, &[]));
    assert!(!r.authenticated, "{}", show(&r));
    assert_eq!(r.prompts()[0], PROMPT, "{}", show(&r));
}

#[test]
fn sshd_remembers_the_client_address_for_an_opted_in_user() {
    const PASSWORD: &str = "Herarx-test pw 7";
    let w = world("addresses = \"opt-in\"");
    let user = TestUser::create_login("ras", PASSWORD);
    let e = ctl::enrol_totp(&user, &w.bus.address, "phone", None);
    let out = run(Some(&user), &w.bus.address, &["remember", "on"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Remote clients from addresses of their own (loopback ones are never remembered).
    let host = herarx_tests::netns::Netns::with_addresses(&[2, 3]);
    let sshd = Sshd::start_in(
        Some(&host),
        "keyboard-interactive",
        &stack_password_then_code(&w.bus.address),
        &[&user],
    );
    let at = format!("({}@127.0.0.1) ", user.name);
    let show = |r: &dyn std::fmt::Debug| {
        format!(
            "{r:#?}\n--- sshd:\n{}--- herarxd:\n{}",
            sshd.log(),
            w.daemon.logs.lines().join("\n")
        )
    };
    let login_from = |source: &str, codes: &[&str]| ClientLogin {
        source: Some(source.into()),
        ..ClientLogin::password(&user, PASSWORD, codes)
    };
    let code = code_at_step(&e.secret, e.confirm_step + 1);
    let r = sshd.ssh(&login_from("192.0.2.2", &[&code]), "keyboard-interactive");
    assert!(r.success, "{}", show(&r));
    let r = sshd.ssh(&login_from("192.0.2.2", &[]), "keyboard-interactive");
    assert!(r.success, "remembered: {}", show(&r));
    assert_eq!(r.prompts, [format!("{at}Password: ")], "{}", show(&r));
    let r = sshd.ssh(&login_from("192.0.2.3", &[]), "keyboard-interactive");
    assert!(!r.success, "another address is asked: {}", show(&r));
    assert_eq!(
        r.prompts[..2],
        [
            format!("{at}Password: "),
            format!("{at}Verification code: ")
        ],
        "{}",
        show(&r)
    );
}

#[test]
fn an_address_claimed_by_a_non_root_caller_is_never_remembered() {
    let w = world("addresses = \"opt-in\"\naddress_for = \"1h\"");
    let (user, e) = w.enrolled_user("rn");
    let step = |i: u64| code_at_step(&e.secret, e.confirm_step + i);
    let out = run(Some(&user), &w.bus.address, &["remember", "on"], &[]);
    assert!(out.status.success());
    // A screen locker runs as the user and may say any rhost: its code passes, but the address
    // it claims is not whitelisted for root's (sshd's) logins.
    let mut locker = w.pam.login("herarx", &user.name, &[&step(1)]);
    locker.rhost = Some("192.0.2.60".into());
    let t = herarx_tests::pamconf::run_login(&locker, Some(&user)).transcript;
    assert_eq!(t.rc, PAM_SUCCESS, "{t:?}");
    let t = from(&w, &user.name, "192.0.2.60", &[], &[]);
    assert_eq!(t.prompts(), vec![PROMPT], "not remembered: {t:?}");
    // The failing twin: the same address through root's login program is remembered.
    let t = from(&w, &user.name, "192.0.2.60", &[], &[&step(2)]);
    assert_eq!(t.rc, PAM_SUCCESS, "{t:?}");
    let t = from(&w, &user.name, "192.0.2.60", &[], &[]);
    assert_eq!((t.rc, t.prompts().len()), (PAM_SUCCESS, 0), "{t:?}");
}

#[test]
fn a_loopback_address_is_never_remembered() {
    // An sshd whose logins come through a local proxy or tunnel: remote, from 127.0.0.1.
    let w = World::start(DaemonConfig {
        extra_tables: Some(
            "[remember]\naddresses = \"opt-in\"\naddress_for = \"1h\"\n\
             [services.herarx-lo]\nalways_remote = true\n"
                .into(),
        ),
        skew: 6,
        ..DaemonConfig::default()
    });
    w.pam.service(
        "herarx-lo",
        &format!(
            "auth required pam_permit.so\n{}",
            herarx_tests::pamconf::module_line(&w.bus.address, "")
        ),
    );
    let (user, e) = w.enrolled_user("rl");
    let out = run(Some(&user), &w.bus.address, &["remember", "on"], &[]);
    assert!(out.status.success());
    let lo = |rhost: &str, answers: &[&str]| {
        let mut l = w.pam.login("herarx-lo", &user.name, answers);
        l.rhost = Some(rhost.into());
        run_login(&l, None).transcript
    };
    for (i, rhost) in ["127.0.0.1", "::1", "::ffff:127.0.0.5"]
        .into_iter()
        .enumerate()
    {
        let code = code_at_step(&e.secret, e.confirm_step + 1 + i as u64);
        let t = lo(rhost, &[&code]);
        assert_eq!(t.rc, PAM_SUCCESS, "{rhost}: {t:?}");
        let t = lo(rhost, &[]);
        assert_eq!(t.prompts(), vec![PROMPT], "{rhost} is asked again: {t:?}");
    }
    let out = run(Some(&user), &w.bus.address, &["status", "--json"], &[]);
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["remembered"], serde_json::json!([]), "{st}");
}
