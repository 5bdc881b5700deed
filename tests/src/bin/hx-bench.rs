//! The benchmark (README: `sudo ./scripts/bench.sh`). In one run, on one private bus with the
//! shipped policy and the real daemon:
//! - a bare D-Bus round trip (Peer.Ping to herarxd over a kept connection): the floor;
//! - `pam_authenticate` of a TOTP login through real libpam + pam_herarx.so + bus + daemon;
//! - the same login through `pam_google_authenticator` (DISALLOW_REUSE and RATE_LIMIT on, so it
//!   rewrites its state file), when installed.
//!
//! With `--baseline PATH` (another herarxd binary, e.g. the build before a refactor), the same
//! module also logs in against that daemon, on a bus of its own, interleaved with the rest, and
//! the ratio of the two is printed.
//!
//! Logins alternate between the two modules so both see the same machine load. Replay
//! protection and lockout stay on: every login uses a fresh code (users × 3 adjacent steps).
//! Every login must succeed, or the run fails.
//!
//! Then, with users seeded straight into the store (`--scale N`, default 100000; 0 skips):
//! the same login p50 against a small and a big store side by side, daemon RSS, and the time
//! from starting herarxd to its first answer. And (`--clients N`, default 64; 0 skips) the
//! verifications per second of N concurrent bus clients, checked for exactness: every right
//! code accepted once, replays refused, and concurrent wrong answers locking at exactly
//! `max_failures`.
//!
//! And (`--flood N`, default 4; 0 skips) the login p50/p99 with and without a flood of refused
//! calls: a real unprivileged user (`hx-flood`) calling `Begin` for another user on N
//! connections as fast as the daemon answers, paused and resumed (SIGSTOP/SIGCONT) between
//! blocks of logins so that both sets see the same machine.

use herarx_tests::bench::{self, Pinger, SeededWorld, Stats};
use herarx_tests::pam_client::{self, PAM_SUCCESS};
use herarx_tests::pamconf::{PamConf, module_line};
use herarx_tests::totp::{PERIOD, code_at_step, now_step};
use herarx_tests::{Bus, Daemon, DaemonConfig, TestUser, ctl};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

const GA_MODULE: &str = "/lib/x86_64-linux-gnu/security/pam_google_authenticator.so";

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One login through `service`: its `pam_authenticate` time, or `None` (said on stderr).
fn login_us(pam: &PamConf, service: &str, user: &str, code: &str) -> Option<f64> {
    match pam_client::run(&pam.login(service, user, &[code])) {
        Ok(t) if t.rc == PAM_SUCCESS => Some(t.auth_us),
        other => {
            eprintln!(
                "{service} login failed for {user}: {:?}",
                other.map(|t| t.rc)
            );
            None
        }
    }
}

/// `--baseline PATH`: another herarxd binary (an older build) to measure side by side.
fn baseline_daemon() -> Option<std::path::PathBuf> {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .iter()
        .position(|a| a == "--baseline")
        .and_then(|i| args.get(i + 1))
        .map(std::path::PathBuf::from)?;
    assert!(
        path.is_file(),
        "--baseline {}: no such herarxd binary",
        path.display()
    );
    Some(path)
}

fn main() {
    let users_n = arg("--users", 200);
    let baseline = baseline_daemon();
    let ga = std::path::Path::new(GA_MODULE).exists();

    eprintln!("starting a private bus and herarxd ...");
    let bus = Bus::start();
    let daemon = Daemon::start(&bus, DaemonConfig::default());
    let pam = PamConf::new(&bus.address);
    pam.service("bench-herarx", &module_line(&bus.address, ""));
    // The same module against the baseline daemon, on a bus of its own.
    let base = baseline.map(|binary| {
        let bus = Bus::start();
        let daemon = Daemon::start(
            &bus,
            DaemonConfig {
                daemon_binary: Some(binary),
                ..DaemonConfig::default()
            },
        );
        pam.service("bench-baseline", &module_line(&bus.address, ""));
        (bus, daemon)
    });
    let ga_dir = tempfile::Builder::new()
        .prefix("hx-bench-ga-")
        .tempdir()
        .expect("tempdir");
    pam.service(
        "bench-ga",
        &format!(
            "auth required {GA_MODULE} secret={}/${{USER}} user=root\n",
            ga_dir.path().display()
        ),
    );

    eprintln!("creating and enrolling {users_n} users (herarxctl as each user) ...");
    let mut users = Vec::new();
    let mut base_enrolments = Vec::new();
    for _ in 0..users_n {
        let u = TestUser::create("b");
        let e = ctl::enrol_totp(&u, &bus.address, "bench", None);
        let e_base = base
            .as_ref()
            .map(|(b, _)| ctl::enrol_totp(&u, &b.address, "bench", None));
        if ga {
            // google-authenticator's state file: same secret, its anti-replay and rate limit on.
            let body = format!(
                "{}\n\" RATE_LIMIT 3 30\n\" WINDOW_SIZE 3\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n",
                e.secret
            );
            let path = ga_dir.path().join(&u.name);
            std::fs::write(&path, body).expect("write GA secret");
            // GA refuses a secret file that others can read.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .expect("chmod GA secret");
        }
        users.push((u, e));
        base_enrolments.push(e_base);
    }

    // All logins of a run must fit inside one time step (steps s-1, s, s+1 are all in the skew
    // window only while the clock is in step s), so start early in a step.
    let (step, codes, base_codes) = loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if now % PERIOD > 8 {
            let wait = PERIOD - now % PERIOD;
            eprintln!("waiting {wait} s for the start of the next time step ...");
            std::thread::sleep(Duration::from_secs(wait));
            continue;
        }
        let s = now_step();
        let codes: Vec<Vec<String>> = users
            .iter()
            .map(|(_, e)| (0..3).map(|k| code_at_step(&e.secret, s - 1 + k)).collect())
            .collect();
        let base_codes: Vec<Option<Vec<String>>> = base_enrolments
            .iter()
            .map(|e| {
                e.as_ref()
                    .map(|e| (0..3).map(|k| code_at_step(&e.secret, s - 1 + k)).collect())
            })
            .collect();
        if now_step() == s {
            break (s, codes, base_codes);
        }
    };
    // Enrolment consumed step `confirm_step` for each user; only later steps are fresh.
    let fresh = |k: u64, confirm: u64| step - 1 + k > confirm;

    let mut herarx = Stats::new("pam_authenticate, pam_herarx (TOTP, bus, daemon)");
    let mut google = Stats::new("pam_authenticate, pam_google_authenticator");
    let mut ping = Stats::new("bus round trip (Peer.Ping to herarxd)");
    let mut baseline_stats =
        Stats::new("pam_authenticate, pam_herarx against the --baseline herarxd");
    let pinger = Pinger::connect(&bus.address);
    for _ in 0..200 {
        pinger.ping_us(); // warm-up
    }
    let mut failures = 0;
    // Round trips, herarx and google-authenticator logins are interleaved, so that all three
    // see the same machine: on a shared VM the floor itself moves by tens of percent.
    for k in 0..3u64 {
        for (i, (u, e)) in users.iter().enumerate() {
            if !fresh(k, e.confirm_step) {
                continue;
            }
            let code = &codes[i][k as usize];
            ping.samples.push(pinger.ping_us());
            ping.samples.push(pinger.ping_us());
            // The new daemon and the baseline take turns at going first.
            let base_code = match (base_enrolments.get(i), base_codes.get(i)) {
                (Some(Some(e)), Some(Some(c))) if fresh(k, e.confirm_step) => {
                    Some(c[k as usize].as_str())
                }
                _ => None,
            };
            for second in [false, true] {
                if second == (i % 2 == 0) {
                    if let Some(c) = base_code {
                        match login_us(&pam, "bench-baseline", &u.name, c) {
                            Some(us) => baseline_stats.samples.push(us),
                            None => failures += 1,
                        }
                    }
                } else {
                    match login_us(&pam, "bench-herarx", &u.name, code) {
                        Some(us) => herarx.samples.push(us),
                        None => failures += 1,
                    }
                }
            }
            if ga {
                let login = pam.login("bench-ga", &u.name, &[code]);
                match pam_client::run(&login) {
                    Ok(t) if t.rc == PAM_SUCCESS => google.samples.push(t.auth_us),
                    other => {
                        failures += 1;
                        eprintln!("GA login failed for {}: {:?}", u.name, other.map(|t| t.rc));
                    }
                }
            }
        }
    }
    if now_step() != step {
        eprintln!("warning: the time step changed during the run; some codes may have expired");
    }

    println!("{}", Stats::header());
    println!("{}", ping.row());
    println!("{}", herarx.row());
    if base.is_some() {
        println!("{}", baseline_stats.row());
    }
    if ga {
        println!("{}", google.row());
    } else {
        println!(
            "pam_google_authenticator: not installed (apt-get install libpam-google-authenticator)"
        );
    }
    let floor = 2.0 * ping.pct(0.5);
    println!();
    println!(
        "herarx p50 / two bus round trips: {:.2}x (target <= 3x)",
        herarx.pct(0.5) / floor
    );
    println!("herarx p99: {:.0} us (target < 1000 us)", herarx.pct(0.99));
    if ga {
        println!(
            "herarx p50 / google-authenticator p50: {:.2}x (below 1 is faster)",
            herarx.pct(0.5) / google.pct(0.5)
        );
    }
    if base.is_some() {
        println!(
            "herarx p50 / baseline herarxd p50: {:.2}x, p99: {:.2}x (1 is no change)",
            herarx.pct(0.5) / baseline_stats.pct(0.5),
            herarx.pct(0.99) / baseline_stats.pct(0.99)
        );
    }
    // The daemon before its bus, so that it does not log a lost bus on the way out.
    if let Some((bus, daemon)) = base {
        drop(daemon);
        drop(bus);
    }
    println!(
        "herarxd RSS after these logins: {} kB",
        daemon.pid().map(bench::rss_kb).unwrap_or(0)
    );
    drop(daemon);
    drop(pam);
    drop(bus);
    drop(users);

    let scale_n = arg("--scale", 100_000);
    if scale_n > 0 {
        failures += scale(scale_n, users_n.max(100));
    }
    let flooders = arg("--flood", 4);
    if flooders > 0 {
        failures += flood(flooders, arg("--flood-users", 400));
    }
    let clients = arg("--clients", 64);
    if clients > 0 {
        failures += throughput(clients, arg("--throughput-users", 2_000));
    }
    if failures > 0 {
        eprintln!("{failures} logins failed: the figures above are not valid");
        std::process::exit(1);
    }
}

/// The same logins against a store of `small` users and one of `big` users, alternating, plus
/// each daemon's start time and memory. Returns the number of failed logins.
fn scale(big: usize, small: usize) -> usize {
    eprintln!("seeding {small} and {big} users into two stores ...");
    let t = std::time::Instant::now();
    let a = SeededWorld::start(small, DaemonConfig::default());
    let b = SeededWorld::start(big, DaemonConfig::default());
    eprintln!("seeded in {:.1} s", t.elapsed().as_secs_f64());
    let step = now_step();
    let mut sa = Stats::new(&format!("pam_herarx login, store of {small} users"));
    let mut sb = Stats::new(&format!("pam_herarx login, store of {big} users"));
    let mut failures = 0;
    for k in 0..2u64 {
        for i in 0..small {
            let s = a.users[i].confirm_step + 1 + k;
            let j = (i * 7919) % big; // spread over the big store
            let sj = b.users[j].confirm_step + 1 + k;
            match (a.login_us(i, s), b.login_us(j, sj)) {
                (Ok(x), Ok(y)) => {
                    sa.samples.push(x);
                    sb.samples.push(y);
                }
                other => {
                    failures += 1;
                    eprintln!("scale login failed: {other:?}");
                }
            }
        }
    }
    if now_step() > step + 1 {
        eprintln!("warning: the clock moved two steps during the run");
    }
    let rss = |w: &SeededWorld| w.daemon.pid().map(bench::rss_kb).unwrap_or(0);
    let (rss_a, rss_b) = (rss(&a), rss(&b));
    let state_a = a.daemon.state_dir();
    let state_b = b.daemon.state_dir();
    let (mut a, mut b) = (a, b);
    a.daemon.stop();
    b.daemon.stop();
    let start_a = bench::start_time_ms(&a.bus, &state_a);
    let start_b = bench::start_time_ms(&b.bus, &state_b);
    println!();
    println!("{}", Stats::header());
    println!("{}", sa.row());
    println!("{}", sb.row());
    println!(
        "p50 with {big} users / with {small}: {:.2}x (target <= 1.2x)",
        sb.pct(0.5) / sa.pct(0.5)
    );
    println!("herarxd RSS: {rss_a} kB with {small} users, {rss_b} kB with {big} (target <= 20 MB)");
    println!(
        "herarxd start to first answer: {start_a:.1} ms with {small} users, {start_b:.1} ms with {big} (target <= 50 ms)"
    );
    failures
}

/// Verifications per second with `clients` concurrent bus clients, and the exactness checks.
fn throughput(clients: usize, users: usize) -> usize {
    eprintln!("seeding {users} users for the throughput run ...");
    let config = DaemonConfig::default();
    let before_lock = config.max_failures as usize - 1;
    let w = SeededWorld::start(users, config);
    let confirm = w.users.first().map(|u| u.confirm_step).unwrap_or(0);
    let t = bench::throughput(&w, clients, &[confirm + 1, confirm + 2]);
    println!();
    println!(
        "throughput, {clients} concurrent clients: {} logins (Begin + Answer) in {:.2} s = {:.0}/s (target >= 5000/s)",
        t.logins,
        t.seconds,
        t.logins as f64 / t.seconds
    );
    println!(
        "  exact: {}/{} right codes accepted; {}/{} replays refused; {} concurrent wrong answers for one user: {} refused before the lock, {} locked (expected {before_lock} and {})",
        t.succeeded,
        t.logins,
        t.replays_refused,
        t.replays,
        clients,
        t.wrong_prompts,
        t.locked,
        clients - before_lock
    );
    let exact = t.succeeded == t.logins
        && t.replays_refused == t.replays
        && t.wrong_prompts == before_lock
        && t.locked == clients - before_lock;
    if !exact {
        eprintln!("throughput run was not exact");
    }
    usize::from(!exact)
}

/// Login latency with and without a flood of refused `Begin`s from a real user on `parallel`
/// connections, in alternating blocks. Returns the number of failed logins.
fn flood(parallel: usize, users: usize) -> usize {
    eprintln!("seeding {users} users for the flood run ...");
    let w = SeededWorld::start(users, DaemonConfig::default());
    let mallory = TestUser::create("bf");
    let victim = w.users.first().map(|u| u.user.clone()).unwrap_or_default();
    let run_flood = |count: usize| {
        let mut c = mallory.command(herarx_tests::paths::hx_flood());
        c.args(["refuse", &w.bus.address, &victim])
            .arg(count.to_string())
            .arg(parallel.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped());
        c
    };
    // The flood's own rate, alone on the machine.
    let t = std::time::Instant::now();
    let alone = run_flood(20_000).output().expect("run hx-flood");
    let rate = 20_000.0 / t.elapsed().as_secs_f64();
    if !alone.status.success() {
        eprintln!(
            "hx-flood failed: {}",
            String::from_utf8_lossy(&alone.stdout)
        );
        return 1;
    }
    let mut flooder = run_flood(0).spawn().expect("run hx-flood");
    let pid = flooder.id() as i32;
    // SAFETY: a signal to our own child, by its pid.
    let signal = |sig| unsafe { libc::kill(pid, sig) };
    let mut quiet = Stats::new("pam_herarx login, no flood");
    let mut flooded = Stats::new(&format!(
        "pam_herarx login, {parallel} connections flooding"
    ));
    let mut failures = 0;
    let step = now_step();
    const BLOCK: usize = 25;
    for k in 0..2u64 {
        for (b, block) in (0..users).collect::<Vec<_>>().chunks(BLOCK).enumerate() {
            let with_flood = b % 2 == 1;
            signal(if with_flood {
                libc::SIGCONT
            } else {
                libc::SIGSTOP
            });
            std::thread::sleep(Duration::from_millis(50));
            for &i in block {
                match w.login_us(i, w.users[i].confirm_step + 1 + k) {
                    Ok(us) if with_flood => flooded.samples.push(us),
                    Ok(us) => quiet.samples.push(us),
                    Err(rc) => {
                        failures += 1;
                        eprintln!("flood-run login failed: rc {rc}");
                    }
                }
            }
        }
    }
    signal(libc::SIGCONT);
    let _ = flooder.kill();
    let _ = flooder.wait();
    if now_step() > step + 1 {
        eprintln!("warning: the clock moved two steps during the flood run");
    }
    let rows: i64 = rusqlite::Connection::open(w.daemon.db_path())
        .and_then(|db| {
            db.query_row(
                "SELECT count(*) FROM audit WHERE caller_uid = ?1",
                [mallory.uid],
                |r| r.get(0),
            )
        })
        .unwrap_or(-1);
    println!();
    println!("{}", Stats::header());
    println!("{}", quiet.row());
    println!("{}", flooded.row());
    println!(
        "flood alone: {rate:.0} refused Begins/s on {parallel} connections; audit rows it left: {rows}"
    );
    println!(
        "p50 flooded / quiet: {:.2}x; p99 flooded / quiet: {:.2}x",
        flooded.pct(0.5) / quiet.pct(0.5),
        flooded.pct(0.99) / quiet.pct(0.99)
    );
    failures
}
