//! Who may drive the security keys plugged into this machine, and how many PINs reach them:
//! `herarxctl key add` run by real users (useradd, setpriv) from a local login, from an SSH
//! login and from no login at all, against `hx-herarxd-virt` (software keys behind the real
//! ctap-hid-fido2 stack). Whether a PIN reached a key is read from the key's own retry
//! counter (`HX_VIRT_RETRIES_DIR`). Needs root and the workspace built.

#[path = "virt/shim.rs"]
#[allow(dead_code)]
mod shim;

mod common;

use std::process::Output;

use common::{From, ctl_from};
use herarx_tests::{Bus, Daemon, TestUser};

struct Virt {
    _daemon: Daemon,
    bus: Bus,
    retries: tempfile::TempDir,
}

fn start(keys: usize, fido2: &str, pins: &str) -> Virt {
    let retries = tempfile::tempdir().unwrap();
    let dir = retries.path().to_str().unwrap().to_owned();
    let (daemon, bus) = common::start_daemon(
        keys,
        fido2,
        &[("HX_VIRT_PINS", pins), ("HX_VIRT_RETRIES_DIR", &dir)],
    );
    Virt {
        _daemon: daemon,
        bus,
        retries,
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Virt {
    fn add(&self, from: From, user: &TestUser, pin: Option<&str>) -> Output {
        let mut args = vec!["key", "add"];
        let mut stdin = vec![];
        if let Some(pin) = pin {
            args.push("--pin-stdin");
            stdin.push(pin);
        }
        ctl_from(from, user, &self.bus.address, &args, &stdin)
    }

    /// Fails with exit code `code`, saying `says`.
    fn refused(&self, out: &Output, code: i32, says: &str) {
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "stderr: {err}");
        assert!(err.contains(says), "wanted {says:?} in: {err}");
    }

    /// Key `i`'s PIN retry counter, as the key last reported it.
    fn retries(&self, i: usize) -> String {
        std::fs::read_to_string(self.retries.path().join(format!("retries-{i}"))).unwrap()
    }

    fn key_count(&self, user: &TestUser) -> usize {
        let out = ctl_from(
            From::Console,
            user,
            &self.bus.address,
            &["key", "list", "--json"],
            &[],
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["keys"].as_array().unwrap().len()
    }

    fn audit(&self, user: &TestUser) -> String {
        let out = herarx_tests::ctl::run(
            None,
            &self.bus.address,
            &["admin", "log", "--user", &user.name, "--json"],
            &[],
        );
        text(&out.stdout)
    }
}

#[test]
fn only_a_caller_in_a_local_login_of_its_own_may_use_the_keys() {
    let v = start(1, "", "");
    let user = TestUser::create("la");
    // A service, a cron-less script, `setpriv` from root's shell: no login at all.
    let out = v.add(From::Nowhere, &user, None);
    v.refused(
        &out,
        4,
        "Security keys can only be used from a local login session",
    );
    assert!(
        text(&out.stderr).contains("not in a login session"),
        "{}",
        text(&out.stderr)
    );
    // Logged in over SSH: the console's key is not this user's to drive.
    let out = v.add(From::Ssh, &user, None);
    v.refused(&out, 4, "your session was opened by sshd (a remote login)");
    assert_eq!(v.key_count(&user), 0, "nothing registered from outside");
    let log = v.audit(&user);
    assert!(log.contains("not in a local session"), "{log}");
    // At the console: the key registers.
    let out = v.add(From::Console, &user, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(v.key_count(&user), 1);
}

#[test]
fn pins_beyond_three_per_ten_minutes_never_reach_the_key() {
    let v = start(1, "user_verification = \"required\"", "4321");
    let user = TestUser::create("lb");
    assert_eq!(v.retries(0), "8");
    // The key itself asks for a replug after the third wrong PIN in a row.
    for (left, says) in [
        ("7", "Wrong PIN"),
        ("6", "Wrong PIN"),
        ("5", "PIN is blocked"),
    ] {
        let out = v.add(From::Console, &user, Some("0000"));
        v.refused(&out, 4, says);
        assert_eq!(v.retries(0), left, "each wrong PIN reached the key");
    }
    // The fourth, even the right one, is not sent: the key's counter stays where it was.
    let out = v.add(From::Console, &user, Some("4321"));
    v.refused(&out, 4, "You gave 3 security key PINs within 10 minutes");
    assert_eq!(v.retries(0), "5", "the fourth PIN never reached the key");
    assert_eq!(v.key_count(&user), 0);
    assert!(v.audit(&user).contains("too many security key PINs"));
    // Another user's budget is their own: their PIN is sent (and the key, still waiting for
    // its replug after three wrong PINs, says so).
    let other = TestUser::create("lc");
    let out = v.add(From::Console, &other, Some("4321"));
    v.refused(&out, 4, "PIN is blocked");
}

#[test]
fn an_enrolment_pin_is_never_tried_on_one_key_after_another() {
    // Two keys with PINs, neither the caller's: which one is meant cannot be told, so neither
    // gets the PIN (before, the first plugged-in key got it, whoever owned it).
    let v = start(2, "user_verification = \"required\"", "1111,2222");
    let user = TestUser::create("ld");
    // A PIN wrong for both keys: whichever saw it would count a wrong try.
    let out = v.add(From::Console, &user, Some("9999"));
    v.refused(&out, 2, "unplug all but the key you want to add");
    assert_eq!(v.retries(0), "8", "key 0 never saw the PIN");
    assert_eq!(v.retries(1), "8", "key 1 never saw the PIN");
    assert_eq!(v.key_count(&user), 0);
}
