//! Denial of service by an unprivileged local user, through the real bus with the shipped
//! policy: a real user (`hx-flood`, run as that user) holds every bus connection it may and a
//! transaction on each, or floods refused calls; root's logins (sshd, login, sudo) go on.

use herarx_tests::pam_client::PAM_SUCCESS;
use herarx_tests::totp::code_at_step;
use herarx_tests::{Bus, Daemon, DaemonConfig, TestUser, World, paths};
use herarxd::login::{TXNS_MAX, TXNS_PER_CONNECTION_MAX, TXNS_PER_UID_MAX};
use herarxd::state::refusals::{RECORDED_PER_WINDOW, WINDOW_SECONDS};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

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
    // While every one of them is held, root's login is asked for its code and passes.
    let code = code_at_step(&e.secret, e.confirm_step + 1);
    let r = w.login(&alice.name, &[&code]);
    assert_eq!(
        r.transcript.prompts(),
        vec!["Verification code: "],
        "{report} {:?}",
        r.transcript
    );
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);
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
    drop(held.stdin.take());
    let _ = held.wait();
}

fn rows_of(w: &World, uid: u32) -> Vec<(String, String)> {
    let db = rusqlite::Connection::open(w.daemon.db_path()).expect("open the store");
    let mut stmt = db
        .prepare("SELECT method, reason FROM audit WHERE caller_uid = ?1 ORDER BY id")
        .expect("query the audit table");
    stmt.query_map([uid], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("read the audit table")
        .collect::<Result<_, _>>()
        .expect("audit rows")
}

#[test]
fn a_flood_of_refused_begins_is_summed_up_and_root_still_logs_in() {
    const FLOOD: usize = 10_000;
    let w = World::start(DaemonConfig::default());
    let (alice, e) = w.enrolled_user("fa");
    let mallory = TestUser::create("fm");
    let code = code_at_step(&e.secret, e.confirm_step + 1);
    let started = Instant::now();
    let (report, login) = std::thread::scope(|s| {
        let flooder = s.spawn(|| {
            let args = [
                "refuse",
                &w.bus.address,
                &alice.name,
                &FLOOD.to_string(),
                "4",
            ];
            let (mut child, report) = flood(&mallory, &args);
            let _ = child.wait();
            report
        });
        // Root's login while the flood runs.
        std::thread::sleep(Duration::from_millis(300));
        let login = w.login(&alice.name, &[&code]);
        (flooder.join().expect("flood thread"), login)
    });
    assert_eq!(report["refused"].as_u64(), Some(FLOOD as u64), "{report}");
    assert_eq!(login.transcript.prompts(), vec!["Verification code: "]);
    assert_eq!(login.transcript.rc, PAM_SUCCESS, "{:?}", login.transcript);

    // One by one: at most the first few of each minute the flood spanned.
    let minutes = started.elapsed().as_secs() / WINDOW_SECONDS + 1;
    let one_by_one = rows_of(&w, mallory.uid).len();
    assert!(
        one_by_one as u64 <= minutes * u64::from(RECORDED_PER_WINDOW),
        "{one_by_one} rows for {FLOOD} refusals"
    );
    // The summary comes once the minute is over, though the flood has stopped (housekeeping).
    let deadline = Instant::now() + Duration::from_secs(WINDOW_SECONDS + 60);
    let summaries = loop {
        let rows = rows_of(&w, mallory.uid);
        let summaries: Vec<String> = rows
            .iter()
            .filter(|(m, _)| m == "refusals")
            .map(|(_, r)| r.clone())
            .collect();
        let counted: usize = summaries
            .iter()
            .filter_map(|r| r.split(' ').next()?.parse::<usize>().ok())
            .sum();
        if counted + (rows.len() - summaries.len()) == FLOOD {
            break summaries;
        }
        assert!(
            Instant::now() < deadline,
            "no summary accounts for the flood: {rows:?}"
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    let uid = mallory.uid;
    assert!(!summaries.is_empty(), "{summaries:?}");
    assert!(
        summaries.iter().all(|r| r.contains(&format!(
            "refusals from uid {uid} in the last minute (first reason: begin: permission denied"
        ))),
        "{summaries:?}"
    );
    // And syslog got no more lines than the table.
    let lines = w.daemon.logs.lines();
    let logged = lines
        .iter()
        .filter(|l| l.contains(&format!(" uid={uid} ")))
        .count();
    assert!(logged > 0, "no log line names uid={uid}: {lines:#?}");
    assert!(logged <= rows_of(&w, uid).len(), "{logged} log lines");
}
