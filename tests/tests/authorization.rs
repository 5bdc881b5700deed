//! The daemon on a private bus with the shipped policy, called by real users as themselves:
//! who may enrol, see, remove and authenticate whom.

use herarx_tests::ctl::{enrol_totp, run};
use herarx_tests::totp::{code, code_at_step, wrong_code};
use herarx_tests::{DaemonConfig, TestUser, World};
use serde_json::Value;

const BEGIN: &str = "org.herarx.Herarx1.Auth.Begin";
const DENIED: &str = "org.herarx.Herarx1.Error.PermissionDenied";

fn status(w: &World, user: &TestUser) -> Value {
    let out = run(Some(user), &w.bus.address, &["status", "--json"], &[]);
    assert!(
        out.status.success(),
        "status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status --json is JSON")
}

fn factors(v: &Value) -> Vec<Value> {
    v["factors"].as_array().cloned().unwrap_or_default()
}

#[test]
fn a_user_enrols_and_sees_only_their_own_factors() {
    let w = World::start(DaemonConfig::default());
    let (alice, _) = w.enrolled_user("al");
    let bob = TestUser::create("bo");

    let a = status(&w, &alice);
    assert_eq!(a["user"], alice.name.as_str());
    let fa = factors(&a);
    assert_eq!(fa.len(), 1);
    assert_eq!(fa[0]["kind"], "totp");
    assert_eq!(fa[0]["name"], "phone");

    let b = status(&w, &bob);
    assert_eq!(
        b["user"],
        bob.name.as_str(),
        "status is always the caller's own"
    );
    assert!(factors(&b).is_empty(), "bob sees none of alice's factors");
}

#[test]
fn another_user_cannot_remove_or_authenticate_as_the_first() {
    let w = World::start(DaemonConfig::default());
    let (alice, e) = w.enrolled_user("al");
    let (bob, be) = w.enrolled_user("bo");
    let alice_factor = factors(&status(&w, &alice))[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Bob names alice's factor with a valid code of his own: not his, so it does not exist for him.
    let bob_code = code_at_step(&be.secret, be.confirm_step + 1);
    let out = run(
        Some(&bob),
        &w.bus.address,
        &["remove", &alice_factor, "--yes"],
        &[&bob_code],
    );
    assert!(!out.status.success(), "bob removed alice's factor");
    assert_eq!(
        factors(&status(&w, &alice)).len(),
        1,
        "alice's factor is still there"
    );

    // Bob starts a login transaction for alice: refused by name.
    let (ok, text) = w.bus.send_as(
        Some(&bob),
        BEGIN,
        &[
            &format!("string:{}", alice.name),
            "string:sudo",
            "string:",
            "string:",
            "string:",
        ],
    );
    assert!(!ok && text.contains(DENIED), "{text}");
    // ... for himself: allowed (a screen locker running as bob).
    let (ok, text) = w.bus.send_as(
        Some(&bob),
        BEGIN,
        &[
            &format!("string:{}", bob.name),
            "string:sudo",
            "string:",
            "string:",
            "string:",
        ],
    );
    assert!(ok, "{text}");
    // Root (sshd, login, sudo) may authenticate anyone.
    let (ok, text) = w.bus.send_as(
        None,
        BEGIN,
        &[
            &format!("string:{}", alice.name),
            "string:sshd",
            "string:192.0.2.1",
            "string:ssh",
            "string:",
        ],
    );
    assert!(ok, "{text}");
    assert!(text.contains("Verification code"), "{text}");
    // The refusal is audited.
    let lines = w.daemon.logs.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&alice.name) && l.to_lowercase().contains("denied")),
        "{lines:#?}"
    );
    let _ = e;
}

#[test]
fn a_second_factor_needs_a_fresh_code_from_the_first() {
    let w = World::start(DaemonConfig::default());
    let (alice, e) = w.enrolled_user("su");

    // No step-up code at all (empty line) and a wrong one: both refused, nothing enrolled.
    let out = run(
        Some(&alice),
        &w.bus.address,
        &["totp", "add", "--name", "laptop"],
        &[""],
    );
    assert!(!out.status.success());
    let bad = wrong_code(&[
        &code(&e.secret, -1),
        &code(&e.secret, 0),
        &code(&e.secret, 1),
    ]);
    let out = run(
        Some(&alice),
        &w.bus.address,
        &["totp", "add", "--name", "laptop"],
        &[&bad],
    );
    assert!(!out.status.success());
    assert_eq!(
        out.status.code(),
        Some(4),
        "refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout.is_empty(),
        "no URI is handed out without step-up"
    );
    assert_eq!(factors(&status(&w, &alice)).len(), 1);

    // A fresh code from the phone: the laptop is enrolled.
    let step_up = code_at_step(&e.secret, e.confirm_step + 1);
    let laptop = enrol_totp(&alice, &w.bus.address, "laptop", Some(&step_up));
    let fs = factors(&status(&w, &alice));
    assert_eq!(fs.len(), 2);
    let phone_id = fs.iter().find(|f| f["name"] == "phone").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Removing needs --yes when not on a terminal, then a code.
    let out = run(Some(&alice), &w.bus.address, &["remove", &phone_id], &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(
        Some(&alice),
        &w.bus.address,
        &["remove", &phone_id, "--yes"],
        &[&bad],
    );
    assert!(!out.status.success(), "wrong step-up code removes nothing");
    let laptop_code = code_at_step(&laptop.secret, laptop.confirm_step + 1);
    let out = run(
        Some(&alice),
        &w.bus.address,
        &["remove", &phone_id, "--yes"],
        &[&laptop_code],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fs = factors(&status(&w, &alice));
    assert_eq!(fs.len(), 1);
    assert_eq!(fs[0]["name"], "laptop");
}

#[test]
fn only_root_may_own_the_bus_name() {
    let w = World::start(DaemonConfig::default());
    let mallory = TestUser::create("ma");
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let out = mallory
        .command(herarx_tests::paths::herarxd())
        .arg("--bus")
        .arg(&w.bus.address)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a non-root daemon must not get the name"
    );
    // The real daemon still answers.
    assert!(herarx_tests::daemon::name_has_owner(&w.bus.address));
    let (alice, _) = w.enrolled_user("own");
    assert_eq!(factors(&status(&w, &alice)).len(), 1);
}
