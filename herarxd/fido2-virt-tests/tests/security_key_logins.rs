//! Logins with a security key, end to end: real libpam (`pam_start_confdir`, the built
//! module), a private bus with the shipped policy, and `hx-herarxd-virt` (herarxd whose keys
//! are `fido-authenticator` software keys behind the real ctap-hid-fido2 + hidapi stack). The
//! daemon issues the challenge and verifies the assertion itself. Needs root, and herarxctl
//! and the module built (`cargo test --workspace`).

#[path = "virt/shim.rs"]
#[allow(dead_code)]
mod shim;

mod common;

use std::time::{Duration, Instant};

use herarx_tests::ctl::{enrol_totp, run};
use herarx_tests::pam_client::*;
use herarx_tests::pamconf::{PamConf, run_login};
use herarx_tests::totp::code_at_step;
use herarx_tests::{Bus, Daemon, TestUser};

const TOUCH: &str = "Touch your security key.";

struct Virt {
    _daemon: Daemon,
    bus: Bus,
    pam: PamConf,
}

fn start(keys: usize, fido2: &str, env: &[(&str, &str)]) -> Virt {
    let (daemon, bus) = common::start_daemon(keys, fido2, env);
    let pam = PamConf::new(&bus.address);
    Virt {
        _daemon: daemon,
        bus,
        pam,
    }
}

impl Virt {
    fn add_key(&self, user: &TestUser, name: &str, stdin: &[&str], extra: &[&str]) {
        let mut args = vec!["key", "add", "--name", name];
        args.extend_from_slice(extra);
        let out = common::ctl_from(common::From::Console, user, &self.bus.address, &args, stdin);
        assert_eq!(
            out.status.code(),
            Some(0),
            "key add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn login(&self, user: &str, rhost: Option<&str>, answers: &[&str]) -> Transcript {
        let mut login = self.pam.login("herarx", user, answers);
        login.rhost = rhost.map(str::to_owned);
        run_login(&login, None).transcript
    }
}

fn infos(t: &Transcript) -> Vec<&str> {
    t.messages
        .iter()
        .filter(|m| m.style == "info")
        .map(|m| m.text.as_str())
        .collect()
}

#[test]
fn a_local_login_is_a_touch_and_a_remote_one_is_never_offered_the_key() {
    let v = start(1, "", &[]);
    let user = TestUser::create("kl");
    v.add_key(&user, "office", &[], &[]);
    for _ in 0..2 {
        let t = v.login(&user.name, None, &[]);
        assert_eq!(t.rc, PAM_SUCCESS, "{t:?}");
        assert_eq!(infos(&t), vec![TOUCH], "{t:?}");
        assert!(t.prompts().is_empty(), "nothing typed: {t:?}");
    }
    // Remote: the key is never asked for; with nothing else, refused saying why.
    let t = v.login(&user.name, Some("192.0.2.9"), &[]);
    assert_eq!(t.rc, PAM_AUTH_ERR, "{t:?}");
    assert!(infos(&t).is_empty(), "no touch asked remotely: {t:?}");
    assert!(
        t.errors()[0].contains("not used for remote logins"),
        "{t:?}"
    );
}

#[test]
fn a_remote_login_of_a_user_with_an_app_too_gets_the_code_and_no_key_in_the_menu() {
    let v = start(1, "", &[]);
    let user = TestUser::create("kr");
    let e = enrol_totp(&user, &v.bus.address, "phone", None);
    v.add_key(
        &user,
        "office",
        &[&code_at_step(&e.secret, e.confirm_step + 1)],
        &[],
    );
    let code = code_at_step(&e.secret, e.confirm_step + 2);
    let t = v.login(&user.name, Some("192.0.2.9"), &["", &code]);
    assert_eq!(t.rc, PAM_SUCCESS, "{t:?}");
    assert!(infos(&t).is_empty(), "{t:?}");
    assert_eq!(
        t.prompts(),
        vec!["Verification code: ", "Verification code: "],
        "no menu: remotely the app is the only way, an empty answer just asks again: {t:?}"
    );
}

#[test]
fn no_touch_in_time_falls_back_to_the_app_and_without_an_app_refuses() {
    let hold = tempfile::tempdir().unwrap();
    let hold_file = hold.path().join("hold");
    let v = start(
        1,
        "touch_timeout_seconds = 5",
        &[("HX_VIRT_HOLD_FILE", hold_file.to_str().unwrap())],
    );
    let user = TestUser::create("kt");
    let e = enrol_totp(&user, &v.bus.address, "phone", None);
    v.add_key(
        &user,
        "office",
        &[&code_at_step(&e.secret, e.confirm_step + 1)],
        &[],
    );
    let keys_only = TestUser::create("ko");
    v.add_key(&keys_only, "office", &[], &[]);

    // Not touching is a refusal for a user without anything else...
    std::fs::write(&hold_file, "").unwrap();
    // The daemon looks at the file every 50 ms.
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let t = v.login(&keys_only.name, None, &[]);
    let waited = started.elapsed();
    assert_eq!(t.rc, PAM_AUTH_ERR, "{t:?}");
    assert_eq!(infos(&t), vec![TOUCH]);
    assert_eq!(
        t.errors(),
        vec!["The security key was not touched in time."]
    );
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(15),
        "{waited:?}"
    );
    // ... the key works again once touched (the abandoned request ends with that touch) ...
    std::fs::remove_file(&hold_file).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let t = v.login(&keys_only.name, None, &[]);
    assert_eq!(t.rc, PAM_SUCCESS, "{t:?}");
    // ... and a user with an app gets the code prompt, saying why.
    std::fs::write(&hold_file, "").unwrap();
    // The daemon looks at the file every 50 ms.
    std::thread::sleep(Duration::from_millis(300));
    let t = v.login(
        &user.name,
        None,
        &[&code_at_step(&e.secret, e.confirm_step + 2)],
    );
    assert_eq!(t.rc, PAM_SUCCESS, "{t:?}");
    assert_eq!(infos(&t), vec![TOUCH]);
    assert_eq!(
        t.prompts(),
        vec![
            "The security key was not touched in time. Verification code (Enter for other ways): "
        ],
        "{t:?}"
    );
    std::fs::remove_file(&hold_file).unwrap();
}

#[test]
fn pin_required_asks_the_pin_then_the_touch_and_a_wrong_pin_is_refused() {
    let v = start(
        1,
        "user_verification = \"required\"",
        &[("HX_VIRT_PINS", "4321")],
    );
    let user = TestUser::create("kp");
    v.add_key(&user, "pinned", &["4321"], &["--pin-stdin"]);
    let t = v.login(&user.name, None, &["4321"]);
    assert_eq!(t.rc, PAM_SUCCESS, "{t:?}");
    assert_eq!(t.prompts(), vec!["Security key PIN: "], "{t:?}");
    assert_eq!(t.messages[0].style, "echo-off", "the PIN is not echoed");
    assert_eq!(infos(&t), vec![TOUCH]);
    let t = v.login(&user.name, None, &["0000", "4321"]);
    assert_eq!(t.rc, PAM_SUCCESS, "{t:?}");
    assert_eq!(
        t.prompts(),
        vec!["Security key PIN: ", "Wrong PIN. Security key PIN: "],
        "{t:?}"
    );
    let t = v.login(&user.name, None, &["0000", "0001", "0002"]);
    assert_eq!(t.rc, PAM_AUTH_ERR, "{t:?}");
}

#[test]
fn a_removed_key_no_longer_logs_in_and_the_other_still_does() {
    let v = start(2, "", &[]);
    let user = TestUser::create("kx");
    let e = enrol_totp(&user, &v.bus.address, "phone", None);
    v.add_key(
        &user,
        "first",
        &[&code_at_step(&e.secret, e.confirm_step + 1)],
        &[],
    );
    // The second: step-up by code (the user has an app), key 0 is excluded, key 1 registers.
    v.add_key(
        &user,
        "second",
        &[&code_at_step(&e.secret, e.confirm_step + 2)],
        &[],
    );
    let out = run(Some(&user), &v.bus.address, &["key", "list", "--json"], &[]);
    let keys: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id_of = |name: &str| {
        keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (first, second) = (id_of("first"), id_of("second"));
    // Which key verified the last login, from the audit trail.
    let last_verified = || {
        let out = run(
            None,
            &v.bus.address,
            &["admin", "log", "--user", &user.name, "--json"],
            &[],
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.contains("verified (counter"))
            .unwrap_or_default()
            .to_owned()
    };
    let t = v.login(&user.name, None, &[]);
    assert_eq!(t.rc, PAM_SUCCESS, "{t:?}");
    assert!(
        last_verified().contains(&first),
        "key 0 answers first: {}",
        last_verified()
    );
    let out = run(
        Some(&user),
        &v.bus.address,
        &["key", "remove", &first, "--yes"],
        &[&code_at_step(&e.secret, e.confirm_step + 3)],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Key 0 now holds only a credential the daemon no longer allows: key 1 answers.
    let t = v.login(&user.name, None, &[]);
    assert_eq!(t.rc, PAM_SUCCESS, "the remaining key: {t:?}");
    assert!(
        last_verified().contains(&second),
        "the removed key no longer counts, the other does: {}",
        last_verified()
    );
}

#[test]
fn a_user_with_only_keys_removes_one_with_a_touch() {
    let hold = tempfile::tempdir().unwrap();
    let hold_file = hold.path().join("hold");
    let v = start(
        1,
        "touch_timeout_seconds = 5",
        &[("HX_VIRT_HOLD_FILE", hold_file.to_str().unwrap())],
    );
    let user = TestUser::create("km");
    v.add_key(&user, "only", &[], &[]);
    let out = run(Some(&user), &v.bus.address, &["key", "list", "--json"], &[]);
    let keys: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = keys["keys"][0]["id"].as_str().unwrap().to_owned();
    // From outside a local login (over SSH, a service): refused before any key is asked.
    for from in [common::From::Nowhere, common::From::Ssh] {
        let out = common::ctl_from(
            from,
            &user,
            &v.bus.address,
            &["key", "remove", &id, "--yes"],
            &[],
        );
        assert_eq!(out.status.code(), Some(4), "{from:?}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("local login session"),
            "{from:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Not touched: nothing removed.
    std::fs::write(&hold_file, "").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let out = common::ctl_from(
        common::From::Console,
        &user,
        &v.bus.address,
        &["key", "remove", &id, "--yes"],
        &[],
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not touched"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(&hold_file).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let out = run(Some(&user), &v.bus.address, &["key", "list", "--json"], &[]);
    let keys: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1, "still there");
    // Touched: removed, and the login no longer asks for a touch.
    let out = common::ctl_from(
        common::From::Console,
        &user,
        &v.bus.address,
        &["key", "remove", &id, "--yes"],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("Touch one of your security keys"));
    let t = v.login(&user.name, None, &[]);
    assert!(infos(&t).is_empty(), "{t:?}");
    assert_eq!(t.rc, PAM_AUTH_ERR, "no factor left: deny by default: {t:?}");
}
