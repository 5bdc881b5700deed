//! herarxctl as people and scripts meet it: bus selection, a stopped daemon, bad input.

use herarx_tests::ctl::run;
use herarx_tests::{DaemonConfig, TestUser, World};

#[test]
fn for_a_user_the_system_bus_variable_is_honoured_and_the_flag_wins() {
    let w = World::start(DaemonConfig::default());
    let user = TestUser::create("env");
    let out = user
        .command(herarx_tests::paths::herarxctl())
        .args(["status", "--json"])
        .env("DBUS_SYSTEM_BUS_ADDRESS", &w.bus.address)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["user"], user.name.as_str());

    // The flag beats a bogus variable.
    let out = user
        .command(herarx_tests::paths::herarxctl())
        .args(["--json", "status", "--bus", &w.bus.address])
        .env("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn as_root_the_system_bus_variable_is_ignored_and_only_the_flag_chooses_a_bus() {
    // Root's environment may be another user's (`su` without `-`, `sudo -E`): their bus
    // would get root's step-up codes. The daemon runs on the private bus the variable names;
    // root must not reach it through the variable.
    let w = World::start(DaemonConfig::default());
    let out = std::process::Command::new(herarx_tests::paths::herarxctl())
        .args(["status", "--json"])
        .env("DBUS_SYSTEM_BUS_ADDRESS", &w.bus.address)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.stdout.is_empty(),
        "no answer from the private daemon: {out:?}"
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "the system bus has no herarxd here: {err}"
    );
    assert!(
        err.contains("/run/dbus/system_bus_socket"),
        "went to the system bus instead: {err}"
    );
    assert!(
        err.contains("DBUS_SYSTEM_BUS_ADDRESS is ignored") && err.contains("--bus"),
        "says why, and what to do: {err}"
    );
    assert!(
        !err.contains(&w.bus.address),
        "never the variable's bus: {err}"
    );

    // The flag does choose it, as root.
    let out = std::process::Command::new(herarx_tests::paths::herarxctl())
        .args(["status", "--json", "--bus", &w.bus.address])
        .env("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["user"], "root");
}

#[test]
fn a_stopped_daemon_or_a_missing_bus_is_reported_clearly() {
    let mut w = World::start(DaemonConfig::default());
    let user = TestUser::create("dd");
    w.daemon.stop();
    let out = run(Some(&user), &w.bus.address, &["status"], &[]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("herarxd"), "names the daemon: {err}");

    let out = run(Some(&user), "unix:path=/nonexistent/bus", &["status"], &[]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/bus"), "names the address: {err}");
}

#[test]
fn a_wrong_confirmation_code_enrols_nothing() {
    let w = World::start(DaemonConfig::default());
    let user = TestUser::create("wc");
    let out = run(Some(&user), &w.bus.address, &["totp", "add"], &["000000"]);
    // The URI was shown, but the code was wrong: not enrolled.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("otpauth://totp/"), "{stdout}");
    let secret = herarx_tests::totp::secret_of(stdout.lines().next().unwrap());
    let right = [-1, 0, 1].map(|o| herarx_tests::totp::code(&secret, o));
    if !right.contains(&"000000".to_string()) {
        assert!(!out.status.success());
        let status = run(Some(&user), &w.bus.address, &["status", "--json"], &[]);
        let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
        assert_eq!(v["factors"].as_array().map(|a| a.len()), Some(0));
    }
    // Malformed input is refused by name.
    let out = run(
        Some(&user),
        &w.bus.address,
        &["totp", "add"],
        &["not a code"],
    );
    assert!(!out.status.success());
}
