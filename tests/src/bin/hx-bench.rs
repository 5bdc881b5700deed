//! The benchmark (README: `sudo ./scripts/bench.sh`). In one run, on one private bus with the
//! shipped policy and the real daemon:
//! - a bare D-Bus round trip (Peer.Ping to herarxd over a kept connection): the floor;
//! - `pam_authenticate` of a TOTP login through real libpam + pam_herarx.so + bus + daemon;
//! - the same login through `pam_google_authenticator` (DISALLOW_REUSE and RATE_LIMIT on, so it
//!   rewrites its state file), when installed.
//!
//! Logins alternate between the two modules so both see the same machine load. Replay
//! protection and lockout stay on: every login uses a fresh code (users × 3 adjacent steps).
//! Every login must succeed, or the run fails.

use herarx_tests::pam_client::{self, PAM_SUCCESS};
use herarx_tests::pamconf::{PamConf, module_line};
use herarx_tests::totp::{PERIOD, code_at_step, now_step};
use herarx_tests::{Bus, Daemon, DaemonConfig, TestUser, ctl};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

const GA_MODULE: &str = "/lib/x86_64-linux-gnu/security/pam_google_authenticator.so";

struct Stats {
    name: &'static str,
    samples: Vec<f64>,
}

impl Stats {
    fn pct(&self, p: f64) -> f64 {
        let mut v = self.samples.clone();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return f64::NAN;
        }
        v[((p * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)]
    }

    fn row(&self) -> String {
        format!(
            "{:<44} {:>6} {:>9.1} {:>9.1} {:>9.1}",
            self.name,
            self.samples.len(),
            self.pct(0.5),
            self.pct(0.99),
            self.pct(1.0)
        )
    }
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A kept connection to the bus for the floor: one Peer.Ping to herarxd is one bus round
/// trip through the same dbus-daemon, with no work in the daemon.
struct Pinger {
    rt: tokio::runtime::Runtime,
    conn: zbus::Connection,
}

impl Pinger {
    fn connect(address: &str) -> Pinger {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let conn = rt
            .block_on(zbus::connection::Builder::address(address).build())
            .expect("connect to the bus");
        Pinger { rt, conn }
    }

    fn ping_us(&self) -> f64 {
        let t = Instant::now();
        self.rt
            .block_on(self.conn.call_method(
                Some(herarx_proto::BUS_NAME),
                herarx_proto::OBJECT_PATH,
                Some("org.freedesktop.DBus.Peer"),
                "Ping",
                &(),
            ))
            .expect("Peer.Ping");
        t.elapsed().as_secs_f64() * 1e6
    }
}

fn main() {
    let users_n = arg("--users", 200);
    let ga = std::path::Path::new(GA_MODULE).exists();

    eprintln!("starting a private bus and herarxd ...");
    let bus = Bus::start();
    let daemon = Daemon::start(&bus, DaemonConfig::default());
    let pam = PamConf::new(&bus.address);
    pam.service("bench-herarx", &module_line(&bus.address, ""));
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
    for _ in 0..users_n {
        let u = TestUser::create("b");
        let e = ctl::enrol_totp(&u, &bus.address, "bench", None);
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
    }

    // All logins of a run must fit inside one time step (steps s-1, s, s+1 are all in the skew
    // window only while the clock is in step s), so start early in a step.
    let (step, codes) = loop {
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
        if now_step() == s {
            break (s, codes);
        }
    };
    // Enrolment consumed step `confirm_step` for each user; only later steps are fresh.
    let fresh = |k: u64, confirm: u64| step - 1 + k > confirm;

    let mut herarx = Stats {
        name: "pam_authenticate, pam_herarx (TOTP, bus, daemon)",
        samples: Vec::new(),
    };
    let mut google = Stats {
        name: "pam_authenticate, pam_google_authenticator",
        samples: Vec::new(),
    };
    let mut ping = Stats {
        name: "bus round trip (Peer.Ping to herarxd)",
        samples: Vec::new(),
    };
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
            let login = pam.login("bench-herarx", &u.name, &[code]);
            match pam_client::run(&login) {
                Ok(t) if t.rc == PAM_SUCCESS => herarx.samples.push(t.auth_us),
                other => {
                    failures += 1;
                    eprintln!(
                        "herarx login failed for {}: {:?}",
                        u.name,
                        other.map(|t| t.rc)
                    );
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

    println!(
        "{:<44} {:>6} {:>9} {:>9} {:>9}",
        "microseconds", "n", "p50", "p99", "max"
    );
    println!("{}", ping.row());
    println!("{}", herarx.row());
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
    drop(daemon);
    if failures > 0 {
        eprintln!("{failures} logins failed: the figures above are not valid");
        std::process::exit(1);
    }
}
