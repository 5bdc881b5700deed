//! Security keys end to end: `herarxctl key ...` run by real users (useradd, setpriv) on a
//! private bus with the shipped policy, against `hx-herarxd-virt` — herarxd whose keys are
//! `fido-authenticator` software keys reached through the production backend (ctap-hid-fido2
//! and hidapi; see src/bin/hx-herarxd-virt.rs). The daemon verifies every registration and
//! step-up assertion itself. Needs root, and herarxctl built (`cargo test --workspace` or
//! `cargo build -p herarxctl` first).

// Every test binary of this crate is linked with --wrap=open,ioctl (build.rs): the shims must
// be there, although this binary starts no key of its own (the daemon does).
#[path = "virt/shim.rs"]
#[allow(dead_code)]
mod shim;

mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use herarx_tests::ctl::{enrol_totp, run};
use herarx_tests::totp::code_at_step;
use herarx_tests::{Bus, Daemon, TestUser};

struct Virt {
    daemon: Daemon,
    bus: Bus,
}

fn start(keys: usize, fido2: &str, env: &[(&str, &str)]) -> Virt {
    let (daemon, bus) = common::start_daemon(keys, fido2, env);
    Virt { daemon, bus }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Virt {
    fn ctl(&self, user: &TestUser, args: &[&str], stdin: &[&str]) -> Output {
        common::ctl_from(common::From::Console, user, &self.bus.address, args, stdin)
    }

    fn ok(&self, user: &TestUser, args: &[&str], stdin: &[&str]) -> serde_json::Value {
        let out = self.ctl(user, args, stdin);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: stderr: {}",
            text(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: stdout not JSON ({e}): {}", text(&out.stdout)))
    }

    /// Fails with `code`, saying `says` on stderr, printing nothing on stdout.
    fn fails(&self, user: &TestUser, args: &[&str], stdin: &[&str], code: i32, says: &str) {
        let out = self.ctl(user, args, stdin);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: stderr: {err}");
        assert!(err.contains(says), "{args:?}: wanted {says:?} in: {err}");
        assert_eq!(text(&out.stdout), "", "{args:?}");
    }

    fn keys(&self, user: &TestUser) -> Vec<serde_json::Value> {
        self.ok(user, &["key", "list", "--json"], &[])["keys"]
            .as_array()
            .unwrap()
            .clone()
    }

    fn audit_reasons(&self, user: &TestUser) -> Vec<String> {
        let out = run(
            None,
            &self.bus.address,
            &["admin", "log", "--user", &user.name, "--json"],
            &[],
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout).lines().map(str::to_owned).collect()
    }
}

#[test]
fn touch_only_two_keys_a_registered_key_refused_list_and_rename() {
    let v = start(2, "", &[]);
    let user = TestUser::create("ka");
    let first = v.ok(&user, &["key", "add", "--name", "office", "--json"], &[]);
    assert_eq!(first["kind"], "fido2");
    assert_eq!(first["name"], "office");
    assert_eq!(first["primary"], true);

    // The second: the step-up is a touch of the first key (no stdin), then key 1 registers
    // (key 0 holds an excluded credential and is skipped).
    let out = v.ctl(&user, &["key", "add", "--name", "spare", "--json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Touch one of your registered keys"),
        "{}",
        text(&out.stderr)
    );
    // A third: both plugged keys are registered already.
    v.fails(
        &user,
        &["key", "add", "--name", "again"],
        &[],
        2,
        "registered already",
    );
    let keys = v.keys(&user);
    let mut names: Vec<&str> = keys.iter().map(|k| k["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["office", "spare"]);
    let id = keys
        .iter()
        .find(|k| k["name"] == "spare")
        .and_then(|k| k["id"].as_str())
        .unwrap()
        .to_owned();

    let renamed = v.ok(&user, &["key", "rename", &id, "backup key", "--json"], &[]);
    assert_eq!(renamed["name"], "backup key");
    let human = v.ctl(&user, &["key", "list"], &[]);
    assert!(
        text(&human.stdout).contains("backup key"),
        "{}",
        text(&human.stdout)
    );

    // Another user's view: none of these keys.
    let other = TestUser::create("kb");
    assert!(v.keys(&other).is_empty());
    v.fails(
        &other,
        &["key", "rename", &id, "mine"],
        &[],
        2,
        "no security key",
    );

    let log = v.audit_reasons(&user).join("\n");
    assert!(log.contains("fido2-enroll"), "{log}");
    assert!(log.contains("registered"), "{log}");
}

#[test]
fn a_totp_user_needs_a_step_up_code_and_key_remove_too() {
    let v = start(1, "", &[]);
    let user = TestUser::create("kc");
    let e = enrol_totp(&user, &v.bus.address, "phone", None);
    let window: Vec<String> = (0..=8)
        .map(|i| code_at_step(&e.secret, e.confirm_step + i - 4))
        .collect();
    let wrong =
        herarx_tests::totp::wrong_code(&window.iter().map(String::as_str).collect::<Vec<_>>());
    // No code on stdin: refused before any touch.
    v.fails(&user, &["key", "add"], &[], 2, "stdin ended");
    v.fails(&user, &["key", "add"], &[&wrong], 4, "wrong");
    assert!(
        v.keys(&user).is_empty(),
        "nothing stored after a wrong code"
    );
    let key = v.ok(
        &user,
        &["key", "add", "--name", "yubi", "--json"],
        &[&code_at_step(&e.secret, e.confirm_step + 1)],
    );
    let id = key["id"].as_str().unwrap().to_owned();
    assert_eq!(key["primary"], false, "the TOTP factor stays primary");
    assert_eq!(v.keys(&user).len(), 1);

    // key remove: --yes in a script, then a step-up code.
    v.fails(&user, &["key", "remove", &id], &[], 2, "--yes");
    let removed = v.ok(
        &user,
        &["key", "remove", &id, "--yes", "--json"],
        &[&code_at_step(&e.secret, e.confirm_step + 2)],
    );
    assert_eq!(removed["removed"]["id"], id.as_str());
    assert!(v.keys(&user).is_empty());
    let log = v.audit_reasons(&user).join("\n");
    assert!(log.contains("step-up"), "{log}");
}

#[test]
fn pin_and_uv_required_enrol_with_the_pin_wrong_pin_refused() {
    let v = start(
        1,
        "user_verification = \"required\"",
        &[("HX_VIRT_PINS", "4321")],
    );
    let user = TestUser::create("kd");
    v.fails(&user, &["key", "add"], &[], 2, "needs its PIN");
    v.fails(
        &user,
        &["key", "add", "--pin-stdin"],
        &["0000"],
        4,
        "Wrong PIN",
    );
    let key = v.ok(
        &user,
        &["key", "add", "--pin-stdin", "--name", "pinned", "--json"],
        &["4321"],
    );
    assert_eq!(key["name"], "pinned");
    // With a key, the step-up is a touch with the PIN (UV required), then the new key: the
    // only key plugged in is registered already.
    v.fails(
        &user,
        &["key", "add", "--pin-stdin"],
        &["4321"],
        2,
        "registered already",
    );
    let log = v.audit_reasons(&user).join("\n");
    assert!(log.contains("wrong security key PIN"), "{log}");
    assert!(!log.contains("4321"), "never the PIN: {log}");
}

#[test]
fn a_key_not_touched_times_out_within_the_configured_time() {
    let v = start(1, "touch_timeout_seconds = 5", &[("HX_VIRT_HOLD", "0")]);
    let user = TestUser::create("ke");
    let started = Instant::now();
    v.fails(
        &user,
        &["key", "add"],
        &[],
        1,
        "not touched within 5 seconds",
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(12),
        "took {took:?}"
    );
    assert!(v.keys(&user).is_empty());
    drop(v.daemon);
}

#[test]
fn no_key_plugged_in_is_a_clear_error() {
    let v = start(0, "", &[]);
    let user = TestUser::create("kf");
    v.fails(
        &user,
        &["key", "add"],
        &[],
        1,
        "No security key is plugged in",
    );
    let log = v.audit_reasons(&user).join("\n");
    assert!(log.contains("no security key plugged in"), "{log}");
}
