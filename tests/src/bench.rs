//! Pieces of the benchmark (`hx-bench`): percentiles, the bus floor, and the sections that
//! need many enrolled users (start time, memory, store size, concurrent throughput), which use
//! users seeded straight into the store (see `seed.rs`).

use crate::pam_client::{self, PAM_SUCCESS};
use crate::pamconf::{PamConf, module_line};
use crate::seed::{self, Seeded};
use crate::{Bus, Daemon, DaemonConfig};
use herarx_proto::{Action, AuthProxy};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Stats {
    pub name: String,
    pub samples: Vec<f64>,
}

impl Stats {
    pub fn new(name: &str) -> Stats {
        Stats {
            name: name.into(),
            samples: Vec::new(),
        }
    }

    /// The `p` quantile (0..=1), nearest rank.
    pub fn pct(&self, p: f64) -> f64 {
        let mut v = self.samples.clone();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return f64::NAN;
        }
        v[((p * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)]
    }

    pub fn row(&self) -> String {
        format!(
            "{:<50} {:>6} {:>9.1} {:>9.1} {:>9.1}",
            self.name,
            self.samples.len(),
            self.pct(0.5),
            self.pct(0.99),
            self.pct(1.0)
        )
    }

    pub fn header() -> String {
        format!(
            "{:<50} {:>6} {:>9} {:>9} {:>9}",
            "microseconds", "n", "p50", "p99", "max"
        )
    }
}

/// A kept connection to the bus for the floor: one Peer.Ping to herarxd is one bus round trip
/// through the same dbus-daemon, with no work in the daemon.
pub struct Pinger {
    rt: tokio::runtime::Runtime,
    conn: zbus::Connection,
}

impl Pinger {
    pub fn connect(address: &str) -> Pinger {
        let rt = runtime();
        let conn = rt
            .block_on(zbus::connection::Builder::address(address).build())
            .expect("connect to the bus");
        Pinger { rt, conn }
    }

    /// One Ping; its duration in µs, or None when nobody owns the name yet.
    pub fn try_ping_us(&self) -> Option<f64> {
        let t = Instant::now();
        self.rt
            .block_on(self.conn.call_method(
                Some(herarx_proto::BUS_NAME),
                herarx_proto::OBJECT_PATH,
                Some("org.freedesktop.DBus.Peer"),
                "Ping",
                &(),
            ))
            .ok()
            .map(|_| t.elapsed().as_secs_f64() * 1e6)
    }

    pub fn ping_us(&self) -> f64 {
        self.try_ping_us().expect("Peer.Ping to herarxd")
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Resident memory of a process, in kB.
pub fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Milliseconds from starting `herarxd` on `state_dir` to its first answer on the bus.
pub fn start_time_ms(bus: &Bus, state_dir: &Path) -> f64 {
    let pinger = Pinger::connect(&bus.address);
    let started = Instant::now();
    let mut child = Command::new(crate::paths::herarxd())
        .arg("--bus")
        .arg(&bus.address)
        .arg("--state-dir")
        .arg(state_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start herarxd");
    let deadline = started + Duration::from_secs(10);
    let answered = loop {
        if pinger.try_ping_us().is_some() {
            break Some(started.elapsed());
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_micros(200));
    };
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    answered.expect("herarxd answered").as_secs_f64() * 1e3
}

/// A daemon on its own bus, with `n` users seeded before it starts.
pub struct SeededWorld {
    pub pam: PamConf,
    pub daemon: Daemon,
    pub bus: Bus,
    pub users: Vec<Seeded>,
}

impl SeededWorld {
    pub fn start(n: usize, config: DaemonConfig) -> SeededWorld {
        let bus = Bus::start();
        let mut users = Vec::new();
        let daemon = Daemon::start_prepared(&bus, config, |state| {
            users = seed::seed(state, "s", n);
        });
        let pam = PamConf::new(&bus.address);
        pam.service("bench-herarx", &module_line(&bus.address, ""));
        SeededWorld {
            pam,
            daemon,
            bus,
            users,
        }
    }

    /// One PAM login (root, as sshd would) of seeded user `i` with the code of `step`.
    pub fn login_us(&self, i: usize, step: u64) -> Result<f64, i32> {
        let u = &self.users[i];
        let code = seed::code(u, step);
        let login = self.pam.login("bench-herarx", &u.user, &[&code]);
        match pam_client::run(&login) {
            Ok(t) if t.rc == PAM_SUCCESS => Ok(t.auth_us),
            Ok(t) => Err(t.rc),
            Err(_) => Err(-1),
        }
    }
}

/// What `throughput` measured.
pub struct Throughput {
    pub logins: usize,
    pub seconds: f64,
    pub succeeded: usize,
    pub replays_refused: usize,
    pub replays: usize,
    pub wrong_prompts: usize,
    pub locked: usize,
}

/// `clients` concurrent bus clients, each with its own connection, run Begin + Answer with a
/// fresh right code for every seeded user and both fresh steps; then the exactness checks:
/// every code replayed at once must fail, and 64 concurrent wrong answers for one user must
/// give exactly `max_failures - 1` "wrong code" prompts before the lock.
pub fn throughput(world: &SeededWorld, clients: usize, steps: &[u64]) -> Throughput {
    let jobs: Vec<(String, String)> = steps
        .iter()
        .flat_map(|&s| {
            world
                .users
                .iter()
                .map(move |u| (u.user.clone(), seed::code(u, s)))
        })
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let address = world.bus.address.clone();
    rt.block_on(async move {
        let mut proxies = Vec::new();
        for _ in 0..clients {
            let conn = zbus::connection::Builder::address(address.as_str())
                .build()
                .await
                .expect("connect");
            let proxy = AuthProxy::builder(&conn)
                .cache_properties(zbus::proxy::CacheProperties::No)
                .build()
                .await
                .expect("proxy");
            proxies.push((conn, proxy));
        }
        let login = |proxy: AuthProxy<'static>, user: String, code: String| async move {
            let Ok((txn, step)) = proxy.begin(&user, "sshd", "", "", "").await else {
                return Action::Denied;
            };
            if step.action != Action::Prompt {
                return step.action;
            }
            let action = match proxy.answer(&txn, &code).await {
                Ok(step) => step.action,
                Err(_) => Action::Denied,
            };
            if action == Action::Prompt {
                let _ = proxy.cancel(&txn).await;
            }
            action
        };
        let run_all = |jobs: Vec<(String, String)>| {
            let chunks: Vec<Vec<(String, String)>> = (0..clients)
                .map(|c| jobs.iter().skip(c).step_by(clients).cloned().collect())
                .collect();
            let tasks: Vec<_> = chunks
                .into_iter()
                .zip(proxies.iter().map(|(_, p)| p.clone()))
                .map(|(chunk, proxy)| {
                    tokio::spawn(async move {
                        let mut out = Vec::new();
                        for (user, code) in chunk {
                            out.push(login(proxy.clone(), user, code).await);
                        }
                        out
                    })
                })
                .collect();
            async move {
                let mut all = Vec::new();
                for t in tasks {
                    all.extend(t.await.expect("client task"));
                }
                all
            }
        };
        let started = Instant::now();
        let results = run_all(jobs.clone()).await;
        let seconds = started.elapsed().as_secs_f64();
        let succeeded = results.iter().filter(|a| **a == Action::Success).count();

        // Every seventh code again, all at once: none may pass.
        const REPLAY_EVERY: usize = 7;
        let replays: Vec<(String, String)> = jobs.iter().step_by(REPLAY_EVERY).cloned().collect();
        let replayed = run_all(replays.clone()).await;
        let replays_refused = replayed.iter().filter(|a| **a != Action::Success).count();

        // Concurrent wrong answers for one user: the lockout counter is exact. The user must
        // have no replayed code above (a replay counts as a failure too).
        let n = world.users.len();
        let victim = (1..n)
            .find(|i| !i.is_multiple_of(REPLAY_EVERY) && !(n + i).is_multiple_of(REPLAY_EVERY))
            .map(|i| world.users[i].user.clone())
            .expect("enough users for the lockout check");
        let wrong: Vec<(String, String)> = (0..clients)
            .map(|_| (victim.clone(), "000000".to_string()))
            .collect();
        let outcomes = run_all(wrong).await;
        Throughput {
            logins: jobs.len(),
            seconds,
            succeeded,
            replays_refused,
            replays: replays.len(),
            wrong_prompts: outcomes.iter().filter(|a| **a == Action::Prompt).count(),
            locked: outcomes.iter().filter(|a| **a == Action::Locked).count(),
        }
    })
}
