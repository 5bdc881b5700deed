//! Denial of service by an unprivileged local user, through the real bus with the shipped
//! policy: a real user (`hx-flood`, run as that user) holds every bus connection it may and a
//! transaction on each, or floods refused calls; root's logins (sshd, login, sudo) go on.

use herarx_tests::pam_client::PAM_SUCCESS;
use herarx_tests::totp::code_at_step;
use herarx_tests::{Bus, Daemon, DaemonConfig, TestUser, World, paths};
use herarxd::auth::{TXNS_MAX, TXNS_PER_CONNECTION_MAX, TXNS_PER_UID_MAX};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

/// The system bus's `max_connections_per_user` (dbus-daemon's default there; its total is
/// 2048, so one user cannot take the bus itself). At 16 transactions each, these alone fill
/// the daemon's table: what the per-uid quota is for.
const BUS_CONNECTIONS_PER_USER: usize = 256;

/// A private bus with the system bus's per-user connection limit, and the daemon on it.
fn world() -> World {
    let bus = Bus::start_with_connections_per_user(BUS_CONNECTIONS_PER_USER);
    let daemon = Daemon::start(&bus, DaemonConfig::default());
    let pam = herarx_tests::pamconf::PamConf::new(&bus.address);
    World { pam, daemon, bus }
}

/// `hx-flood` as `user`, with its first stdout line (its report) read.
fn flood(user: &TestUser, args: &[&str]) -> (Child, Value) {
    let mut child = user
        .command(paths::hx_flood())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run hx-flood");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("hx-flood stdout"))
        .read_line(&mut line)
        .expect("read hx-flood's report");
    let report = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    (child, report)
}

#[test]
fn a_user_holding_every_connection_it_may_cannot_keep_root_from_logging_in() {
    let w = world();
    // Enrolled: a user may Begin for itself (a screen locker), each Begin a live transaction.
    let (mallory, _) = w.enrolled_user("dm");
    let (alice, e) = w.enrolled_user("da");
    let (mut held, report) = flood(
        &mallory,
        &[
            "hold",
            &w.bus.address,
            &mallory.name,
            // More than the bus allows: hx-flood stops at the first it refuses.
            &(2 * BUS_CONNECTIONS_PER_USER).to_string(),
        ],
    );
    let connections = report["connections"].as_u64().unwrap_or(0) as usize;
    // Enough connections that, at the per-connection cap alone, they would fill the table.
    assert!(
        connections * TXNS_PER_CONNECTION_MAX >= TXNS_MAX,
        "hx-flood opened too few connections to test anything: {report}"
    );
    assert_eq!(
        report["begun"].as_u64(),
        Some(TXNS_PER_UID_MAX as u64),
        "one user holds at most its quota, whatever its connections: {report}"
    );
    assert_eq!(report["other"].as_u64(), Some(0), "{report}");
    assert!(
        report["busy"].as_u64().unwrap_or(0) as usize >= connections - 1,
        "{report}"
    );
    let message = report["busy_message"].as_str().unwrap_or("");
    assert!(
        message.contains(&format!("{TXNS_PER_UID_MAX} logins under way"))
            && message.contains("finish or cancel"),
        "the refusal says what is wrong and what to do: {report}"
    );

    // While every one of them is held, root's login is asked for its code and passes.
    let code = code_at_step(&e.secret, e.confirm_step + 1);
    let r = w.login(&alice.name, &[&code]);
    assert_eq!(
        r.transcript.prompts(),
        vec!["Verification code: "],
        "{report} {:?} {}",
        r.transcript,
        w.daemon.logs.lines().join("\n")
    );
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);
    drop(held.stdin.take());
    let _ = held.wait();
}
