//! Crash consistency under load. 64 clients (one real user each) log in with right and wrong
//! codes, enrol and remove factors against the real daemon on the private bus, while herarxd
//! is killed with SIGKILL at (seeded) random points and restarted on the same state dir. After
//! each restart: the store passes `PRAGMA integrity_check`, no code the daemon accepted is
//! accepted again, no failure a client was told about is lost, and every user's factors are
//! exactly what the acknowledged enrolments and removals say, give or take the one operation
//! that was in flight at the kill (fully done, or not at all; if done, it works).
//!
//! An operation whose answer did not come (the daemon died under it, or was down) is "in
//! flight": it may have happened or not, and the client waits for the next restart.
//! `HERARX_CRASH_SEED` replays another sequence of kill points and operations.

use herarx_tests::pam_client::{PAM_AUTH_ERR, PAM_SUCCESS};
use herarx_tests::pamconf::{PamConf, run_login};
use herarx_tests::{Bus, Daemon, DaemonConfig, TestUser};
use herarxd::crypto::totp::{Params, code_at};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const CLIENTS: usize = 64;
const KILLS: usize = 20;
/// The widest skew the config allows: 21 usable steps per factor at any time.
const SKEW: u64 = 10;
/// Fewer than the daemon's cap, so an enrolment is never refused for that.
const MAX_FACTORS: usize = 4;
const PERIOD: u64 = 30;

/// splitmix64: small, seeded, the same sequence on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn now_step() -> u64 {
    herarx_tests::totp::now_step()
}

fn code(secret: &[u8], step: u64) -> String {
    code_at(secret, &Params::default(), step * PERIOD)
        .map(|c| c.as_str().to_owned())
        .unwrap_or_default()
}

struct Factor {
    name: String,
    secret: Vec<u8>,
    /// The first step not yet used (accepted or possibly consumed by an in-flight call).
    next_step: u64,
}

#[derive(Debug)]
enum InFlight {
    Login,
    Enrol {
        name: String,
        /// Known once herarxctl printed the URI; without it the factor cannot exist.
        secret: Option<Vec<u8>>,
        confirm_step: u64,
    },
    Remove {
        name: String,
    },
}

/// A code the daemon said yes to.
struct Accepted {
    secret: Vec<u8>,
    step: u64,
}

struct Account {
    user: TestUser,
    factors: Vec<Factor>,
    in_flight: Option<InFlight>,
    /// Accepted since the last restart (replayed after the next one).
    accepted: Vec<Accepted>,
    /// Wrong codes the client was told were wrong since anything that may have cleared the
    /// counter (a right code, acknowledged or in flight).
    failures_min: u32,
    serial: u32,
    /// Answers that make no sense for a daemon that was up the whole call (a right code
    /// refused, a wrong one accepted, an enrolment failing): each fails the test.
    anomalies: Vec<String>,
    stats: Stats,
}

#[derive(Default, Clone, Copy, Debug)]
struct Stats {
    accepted: u64,
    refused_wrong: u64,
    enrolled: u64,
    removed: u64,
    in_flight: u64,
    replays_refused: u64,
    replays_skipped: u64,
    probes: u64,
    /// In-flight enrolments and removals found done, and found not done, after the restart.
    in_flight_done: u64,
    in_flight_undone: u64,
    /// Operations run, and the time spent in them.
    ops: u64,
    busy_ms: u64,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.accepted += o.accepted;
        self.refused_wrong += o.refused_wrong;
        self.enrolled += o.enrolled;
        self.removed += o.removed;
        self.in_flight += o.in_flight;
        self.replays_refused += o.replays_refused;
        self.replays_skipped += o.replays_skipped;
        self.probes += o.probes;
        self.in_flight_done += o.in_flight_done;
        self.in_flight_undone += o.in_flight_undone;
        self.ops += o.ops;
        self.busy_ms += o.busy_ms;
    }
}

impl Account {
    /// Every code of every factor near `now`: a code picked must match one step of one
    /// factor only, and a wrong code none, or the model and the daemon would disagree.
    fn window_codes(&self, now: u64) -> Vec<String> {
        let mut all = Vec::new();
        for f in &self.factors {
            for s in now.saturating_sub(SKEW + 2)..=now + SKEW + 2 {
                all.push(code(&f.secret, s));
            }
        }
        all
    }

    /// A usable, unambiguous step of factor `i` (one step of margin on each side of the
    /// window, for the clock moving during the call), or None when it is used up for now.
    fn fresh_step(&self, i: usize, now: u64, window: &[String]) -> Option<u64> {
        let f = &self.factors[i];
        let first = f.next_step.max(now - SKEW + 1);
        (first..now + SKEW).find(|&s| {
            let c = code(&f.secret, s);
            window.iter().filter(|w| **w == c).count() == 1
        })
    }

    /// A factor (other than `except`) with a usable step.
    fn pick_code(&self, rng: &mut Rng, except: Option<usize>) -> Option<(usize, u64)> {
        let now = now_step();
        let window = self.window_codes(now);
        let n = self.factors.len();
        let start = rng.below(n as u64) as usize;
        (0..n)
            .map(|k| (start + k) % n)
            .filter(|&i| Some(i) != except)
            .find_map(|i| self.fresh_step(i, now, &window).map(|s| (i, s)))
    }

    /// Whether replaying `secret`'s code for `step` could be a fresh code of another factor
    /// (or another step) by chance: such a replay proves nothing and is skipped.
    fn could_be_fresh(&self, secret: &[u8], step: u64) -> bool {
        let c = code(secret, step);
        let now = now_step();
        self.factors.iter().any(|f| {
            (now.saturating_sub(SKEW + 2)..=now + SKEW + 2)
                .any(|s| !(f.secret == secret && s == step) && code(&f.secret, s) == c)
        })
    }

    fn wrong_code(&self, rng: &mut Rng) -> String {
        let window = self.window_codes(now_step());
        loop {
            let c = format!("{:06}", rng.below(1_000_000));
            if !window.contains(&c) {
                return c;
            }
        }
    }

    fn next_name(&mut self) -> String {
        self.serial += 1;
        format!("f{}", self.serial)
    }
}

/// Whether the daemon is up: set false before each kill, true after each restart.
struct World {
    bus: Bus,
    pam: PamConf,
    db: std::path::PathBuf,
    up: AtomicBool,
}

impl World {
    fn login(&self, user: &str, code: &str) -> i32 {
        run_login(&self.pam.login("herarx", user, &[code]), None)
            .transcript
            .rc
    }
}

/// `herarxctl totp add` as `user`: the step-up code first (if any), then the URI, then the
/// confirmation code. Returns the secret (once the URI came), the confirming step, and
/// whether herarxctl said it enrolled.
fn enrol(
    bus: &str,
    user: &TestUser,
    name: &str,
    step_up: Option<&str>,
) -> (Option<Vec<u8>>, u64, bool) {
    let mut child = herarx_tests::users::command_as(Some(user), herarx_tests::paths::herarxctl())
        .args(["--bus", bus, "totp", "add", "--name", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run herarxctl totp add");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(c) = step_up {
        let _ = writeln!(input, "{c}");
    }
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut uri = String::new();
    let _ = out.read_line(&mut uri);
    let uri = uri.trim();
    if !uri.starts_with("otpauth://totp/") {
        drop(input);
        let _ = child.wait();
        return (None, 0, false);
    }
    let b32 = herarx_tests::totp::secret_of(uri)
        .trim_end_matches('=')
        .to_owned();
    let secret = data_encoding::BASE32_NOPAD
        .decode(b32.as_bytes())
        .expect("base32 secret in the URI");
    let step = now_step();
    let _ = writeln!(input, "{}", code(&secret, step));
    drop(input);
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut out, &mut rest);
    let ok = child.wait().map(|s| s.success()).unwrap_or(false);
    (Some(secret), step, ok)
}

/// `herarxctl remove ID --yes` as `user`, with the step-up code on stdin.
fn remove(bus: &str, user: &TestUser, id: &str, step_up: &str) -> bool {
    let out = herarx_tests::ctl::run(Some(user), bus, &["remove", id, "--yes"], &[step_up]);
    out.status.success()
}

fn read_only(db: &Path) -> Connection {
    Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the store read-only")
}

fn factor_id(db: &Path, user: &str, name: &str) -> Option<String> {
    read_only(db)
        .query_row(
            "SELECT id FROM factors WHERE user = ?1 AND name = ?2",
            (user, name),
            |r| r.get(0),
        )
        .optional()
        .expect("read a factor id")
}

/// One operation of one client, chosen by its RNG. Returns false when it was left in flight.
fn one_operation(w: &World, a: &mut Account, rng: &mut Rng) -> bool {
    let roll = rng.below(100);
    let n = a.factors.len();
    if roll < 20 && n < MAX_FACTORS {
        if let Some((i, s)) = a.pick_code(rng, None) {
            return enrol_op(w, a, i, s);
        }
    } else if (20..35).contains(&roll) && n > 1 {
        if let Some((i, s)) = a.pick_code(rng, None) {
            // Remove the factor with the fewest codes left: the oldest use.
            let victim = (0..n)
                .filter(|&k| k != i)
                .min_by_key(|&k| a.factors[k].next_step)
                .expect("another factor");
            return remove_op(w, a, i, s, victim);
        }
    } else if (35..70).contains(&roll)
        && let Some((i, s)) = a.pick_code(rng, None)
    {
        return right_login(w, a, i, s);
    }
    wrong_login(w, a, rng)
}

fn right_login(w: &World, a: &mut Account, i: usize, step: u64) -> bool {
    let secret = a.factors[i].secret.clone();
    a.factors[i].next_step = step + 1;
    let rc = w.login(&a.user.name, &code(&secret, step));
    let up = w.up.load(Ordering::SeqCst);
    a.failures_min = 0;
    if rc == PAM_SUCCESS {
        a.accepted.push(Accepted { secret, step });
        a.stats.accepted += 1;
        return true;
    }
    if up {
        a.anomalies.push(format!(
            "a right code (step {step}) was refused with rc {rc} while the daemon was up"
        ));
    }
    a.in_flight = Some(InFlight::Login);
    false
}

fn wrong_login(w: &World, a: &mut Account, rng: &mut Rng) -> bool {
    let bad = a.wrong_code(rng);
    let rc = w.login(&a.user.name, &bad);
    match rc {
        PAM_AUTH_ERR => {
            a.failures_min += 1;
            a.stats.refused_wrong += 1;
            true
        }
        PAM_SUCCESS => {
            a.anomalies.push("a wrong code was accepted".into());
            true
        }
        _ => {
            if w.up.load(Ordering::SeqCst) {
                a.anomalies
                    .push(format!("a wrong code got rc {rc} while the daemon was up"));
            }
            a.in_flight = Some(InFlight::Login);
            false
        }
    }
}

fn enrol_op(w: &World, a: &mut Account, i: usize, step: u64) -> bool {
    let name = a.next_name();
    let secret = a.factors[i].secret.clone();
    a.factors[i].next_step = step + 1;
    a.failures_min = 0;
    let (new, confirm_step, ok) = enrol(&w.bus.address, &a.user, &name, Some(&code(&secret, step)));
    if ok && let Some(new) = new {
        a.accepted.push(Accepted { secret, step });
        a.accepted.push(Accepted {
            secret: new.clone(),
            step: confirm_step,
        });
        a.factors.push(Factor {
            name,
            secret: new,
            next_step: confirm_step + 1,
        });
        a.stats.enrolled += 1;
        return true;
    }
    if w.up.load(Ordering::SeqCst) {
        a.anomalies
            .push(format!("enrolment {name} failed while the daemon was up"));
    }
    a.in_flight = Some(InFlight::Enrol {
        name,
        secret: new,
        confirm_step,
    });
    false
}

fn remove_op(w: &World, a: &mut Account, i: usize, step: u64, victim: usize) -> bool {
    let name = a.factors[victim].name.clone();
    let secret = a.factors[i].secret.clone();
    a.factors[i].next_step = step + 1;
    a.failures_min = 0;
    let ok = match factor_id(&w.db, &a.user.name, &name) {
        Some(id) => remove(&w.bus.address, &a.user, &id, &code(&secret, step)),
        None => {
            a.anomalies
                .push(format!("factor {name}, acknowledged, is not in the store"));
            return true;
        }
    };
    if ok {
        a.accepted.push(Accepted { secret, step });
        a.factors.remove(victim);
        a.stats.removed += 1;
        return true;
    }
    if w.up.load(Ordering::SeqCst) {
        a.anomalies
            .push(format!("removal of {name} failed while the daemon was up"));
    }
    a.in_flight = Some(InFlight::Remove { name });
    false
}

/// Which epoch the clients may work in; they park when it is closed or when their own
/// operation was left in flight in it.
#[derive(Default)]
struct Gate {
    epoch: u64,
    open: bool,
    stop: bool,
    parked: usize,
}

type SharedGate = Arc<(Mutex<Gate>, Condvar)>;

fn client(w: Arc<World>, gate: SharedGate, account: Arc<Mutex<Account>>, seed: u64) {
    let mut rng = Rng(seed);
    let mut done_in: u64 = 0;
    loop {
        let epoch = {
            let (m, cv) = &*gate;
            let mut g = m.lock().unwrap();
            g.parked += 1;
            cv.notify_all();
            while !(g.stop || g.open && g.epoch != done_in) {
                g = cv.wait(g).unwrap();
            }
            g.parked -= 1;
            if g.stop {
                return;
            }
            g.epoch
        };
        loop {
            let still = {
                let g = gate.0.lock().unwrap();
                g.open && g.epoch == epoch
            };
            if !still {
                break;
            }
            let mut a = account.lock().unwrap();
            let t = Instant::now();
            let acked = one_operation(&w, &mut a, &mut rng);
            a.stats.busy_ms += t.elapsed().as_millis() as u64;
            a.stats.ops += 1;
            if !acked {
                a.stats.in_flight += 1;
                done_in = epoch;
                break;
            }
        }
    }
}

fn wait_parked(gate: &SharedGate) {
    let (m, cv) = &**gate;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut g = m.lock().unwrap();
    while g.parked < CLIENTS {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "clients did not finish their calls within 60 s"
        );
        g = cv.wait_timeout(g, left).unwrap().0;
    }
}

/// The store as the daemon left it, read-only: factor names (checking each row is whole)
/// and the local failure counter of `user`.
fn stored(db: &Connection, user: &str) -> (BTreeSet<String>, u32) {
    let mut stmt = db
        .prepare("SELECT name, length(sealed), digits, period, created FROM factors WHERE user = ?1 AND kind = 'totp'")
        .unwrap();
    let rows: Vec<(String, i64, i64, i64, i64)> = stmt
        .query_map([user], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (name, sealed, digits, period, created) in &rows {
        assert!(
            *sealed > 0 && *digits == 6 && *period == 30 && *created > 0,
            "factor {name} of {user} is not whole: sealed {sealed} bytes, digits {digits}, period {period}, created {created}"
        );
    }
    let failures: u32 = db
        .query_row(
            "SELECT count FROM failures WHERE user = ?1 AND scope = 'local'",
            [user],
            |r| r.get(0),
        )
        .optional()
        .unwrap()
        .unwrap_or(0);
    (rows.into_iter().map(|r| r.0).collect(), failures)
}

/// After a restart: the model against the store, then each accepted code once more, then a
/// login with whatever the in-flight operation left behind.
fn check_after_restart(w: &World, accounts: &[Arc<Mutex<Account>>], round: usize) {
    let db = read_only(&w.db);
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok", "integrity_check after kill {round}");
    let mut probes: Vec<(usize, usize)> = Vec::new();
    for (k, acc) in accounts.iter().enumerate() {
        let mut a = acc.lock().unwrap();
        let (names, failures) = stored(&db, &a.user.name);
        assert!(
            failures >= a.failures_min,
            "kill {round}: {} has {failures} failures stored but was told of {} wrong codes",
            a.user.name,
            a.failures_min
        );
        let mut expected: BTreeSet<String> = a.factors.iter().map(|f| f.name.clone()).collect();
        match a.in_flight.take() {
            Some(InFlight::Enrol {
                name,
                secret,
                confirm_step,
            }) if names.contains(&name) => {
                let secret = secret.unwrap_or_else(|| {
                    panic!("kill {round}: {name} was enrolled without the URI ever shown")
                });
                a.factors.push(Factor {
                    name: name.clone(),
                    secret,
                    next_step: confirm_step + 1,
                });
                expected.insert(name);
                probes.push((k, a.factors.len() - 1));
                a.stats.in_flight_done += 1;
            }
            Some(InFlight::Remove { name }) if !names.contains(&name) => {
                a.factors.retain(|f| f.name != name);
                expected.remove(&name);
                a.stats.in_flight_done += 1;
            }
            Some(InFlight::Remove { name }) => {
                let i = a.factors.iter().position(|f| f.name == name).unwrap();
                probes.push((k, i));
                a.stats.in_flight_undone += 1;
            }
            Some(InFlight::Enrol { .. }) => a.stats.in_flight_undone += 1,
            _ => {}
        }
        assert_eq!(
            names, expected,
            "kill {round}: the factors of {} are not what the acknowledged operations left",
            a.user.name
        );
    }
    drop(db);
    // Replays and probes, one thread per account (they are logins like any other).
    std::thread::scope(|s| {
        for (k, acc) in accounts.iter().enumerate() {
            let mine: Vec<usize> = probes.iter().filter(|p| p.0 == k).map(|p| p.1).collect();
            s.spawn(move || {
                let mut a = acc.lock().unwrap();
                let replays = std::mem::take(&mut a.accepted);
                for r in &replays {
                    if a.could_be_fresh(&r.secret, r.step) {
                        a.stats.replays_skipped += 1;
                        continue;
                    }
                    let rc = w.login(&a.user.name, &code(&r.secret, r.step));
                    assert_eq!(
                        rc, PAM_AUTH_ERR,
                        "kill {round}: a code {} accepted before the kill (step {}) is not refused after it",
                        a.user.name, r.step
                    );
                    a.stats.replays_refused += 1;
                }
                for i in mine {
                    let now = now_step();
                    let window = a.window_codes(now);
                    // Used up for now: the load tries it once time has moved on.
                    let Some(step) = a.fresh_step(i, now, &window) else {
                        continue;
                    };
                    let name = a.factors[i].name.clone();
                    let secret = a.factors[i].secret.clone();
                    a.factors[i].next_step = step + 1;
                    let rc = w.login(&a.user.name, &code(&secret, step));
                    assert_eq!(
                        rc, PAM_SUCCESS,
                        "kill {round}: factor {name} of {}, in flight at the kill and present after, does not log in",
                        a.user.name
                    );
                    a.accepted.push(Accepted { secret, step });
                    a.stats.probes += 1;
                }
                // Replays counted failures, probes cleared them: start the count afresh.
                a.failures_min = 0;
            });
        }
    });
}

#[test]
fn kill_9_under_load_loses_nothing_acknowledged_and_accepts_no_code_twice() {
    let started = Instant::now();
    let seed = std::env::var("HERARX_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x4865_7261_7278_u64);
    let bus = Bus::start();
    let mut daemon = Daemon::start(
        &bus,
        DaemonConfig {
            skew: SKEW as u32,
            max_failures: 1000,
            max_tries: 1,
            ..DaemonConfig::default()
        },
    );
    let pam = PamConf::new(&bus.address);
    let w = Arc::new(World {
        db: daemon.db_path(),
        bus,
        pam,
        up: AtomicBool::new(true),
    });

    // 64 real users with two factors each (the second enrolled with a step-up code).
    let users: Vec<TestUser> = (0..CLIENTS).map(|_| TestUser::create("cr")).collect();
    let accounts: Vec<Arc<Mutex<Account>>> = std::thread::scope(|s| {
        let handles: Vec<_> = users
            .into_iter()
            .map(|user| {
                let w = &w;
                s.spawn(move || {
                    let (s1, st1, ok1) = enrol(&w.bus.address, &user, "f0", None);
                    assert!(ok1, "first enrolment of {}", user.name);
                    let s1 = s1.unwrap();
                    let (s2, st2, ok2) =
                        enrol(&w.bus.address, &user, "f1", Some(&code(&s1, st1 + 1)));
                    assert!(ok2, "second enrolment of {}", user.name);
                    Arc::new(Mutex::new(Account {
                        user,
                        factors: vec![
                            Factor {
                                name: "f0".into(),
                                secret: s1,
                                next_step: st1 + 2,
                            },
                            Factor {
                                name: "f1".into(),
                                secret: s2.unwrap(),
                                next_step: st2 + 1,
                            },
                        ],
                        in_flight: None,
                        accepted: Vec::new(),
                        failures_min: 0,
                        serial: 1,
                        anomalies: Vec::new(),
                        stats: Stats::default(),
                    }))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let setup = started.elapsed();

    let gate: SharedGate = Arc::new((Mutex::new(Gate::default()), Condvar::new()));
    let clients: Vec<_> = accounts
        .iter()
        .enumerate()
        .map(|(k, acc)| {
            let (w, gate, acc) = (w.clone(), gate.clone(), acc.clone());
            let s = seed ^ ((k as u64 + 1) << 32);
            std::thread::spawn(move || client(w, gate, acc, s))
        })
        .collect();

    let mut rng = Rng(seed);
    let mut kills = 0;
    for round in 1..=KILLS {
        {
            let (m, cv) = &*gate;
            let mut g = m.lock().unwrap();
            g.epoch += 1;
            g.open = true;
            cv.notify_all();
        }
        std::thread::sleep(Duration::from_millis(300 + rng.below(1200)));
        w.up.store(false, Ordering::SeqCst);
        daemon.kill9();
        kills += 1;
        gate.0.lock().unwrap().open = false;
        wait_parked(&gate);
        daemon.restart();
        w.up.store(true, Ordering::SeqCst);
        check_after_restart(&w, &accounts, round);
    }
    {
        let (m, cv) = &*gate;
        m.lock().unwrap().stop = true;
        cv.notify_all();
    }
    for c in clients {
        c.join().unwrap();
    }

    let mut total = Stats::default();
    let mut anomalies = Vec::new();
    for acc in &accounts {
        let a = acc.lock().unwrap();
        total.add(&a.stats);
        anomalies.extend(a.anomalies.iter().map(|x| format!("{}: {x}", a.user.name)));
    }
    eprintln!(
        "crash test: seed {seed:#x}, {kills} kills, setup {setup:?}, total {:?}: {total:?}",
        started.elapsed()
    );
    assert!(anomalies.is_empty(), "{anomalies:#?}");
    assert_eq!(kills, KILLS);
    assert!(
        total.accepted > 100
            && total.refused_wrong > 100
            && total.enrolled > 5
            && total.removed > 5
            && total.replays_refused > 50,
        "the load did too little to mean anything: {total:?}"
    );
    daemon.stop();
}
