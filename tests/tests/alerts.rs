//! Login alerts end to end: the real daemon raising each kind of alert from real logins
//! (libpam, `pam_herarx.so`) and real `herarxctl` runs, delivered through a real SMTP server
//! on 127.0.0.1 (to `alerts.admin_email` and to the user's enrolled address) and to a
//! recording `alerts.admin_command` that keeps its argv, environment and stdin. Each trigger
//! must give exactly one message per recipient, with the right content and no code in it;
//! each switched-off kind none.
//!
//! Alerts are delivered by one worker thread, in the order they were raised. So "no alert for
//! X" is shown, where possible, by raising a later alert Y and waiting for Y: had X raised
//! one, it would have arrived before Y. Where nothing follows, a short fixed wait stands in.

use herarx_tests::ctl::{enrol_totp, run};
use herarx_tests::mail::{Mail, SmtpSink, find_code};
use herarx_tests::pam_client::*;
use herarx_tests::pamconf::{Report, run_login};
use herarx_tests::totp::{code, code_at_step, wrong_code};
use herarx_tests::{DaemonConfig, TestUser, World};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long an expected alert (or code mail) may take to arrive.
const WAIT: Duration = Duration::from_secs(10);
/// How long to wait before asserting that no (further) alert came.
const SETTLE: Duration = Duration::from_secs(1);

const ADMIN: &str = "security@alerts.example";
const ADDR_A: &str = "203.0.113.7";
const ADDR_B: &str = "198.51.100.20";

// ---- The kinds ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    NewAddress,
    FailedSecondFactor,
    Lockout,
    AdminReset,
    MethodAdded,
    MethodRemoved,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::NewAddress => "new-address",
            Kind::FailedSecondFactor => "failed-second-factor",
            Kind::Lockout => "lockout",
            Kind::AdminReset => "admin-reset",
            Kind::MethodAdded => "method-added",
            Kind::MethodRemoved => "method-removed",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::NewAddress => "sign-in from a new address",
            Kind::FailedSecondFactor => "wrong verification codes after a correct password",
            Kind::Lockout => "sign-ins locked after failed attempts",
            Kind::AdminReset => "two-factor sign-in reset by an administrator",
            Kind::MethodAdded => "sign-in method added",
            Kind::MethodRemoved => "sign-in method removed",
        }
    }

    /// A piece of the advice the alert ends with.
    fn advice(self) -> &'static str {
        match self {
            Kind::NewAddress | Kind::FailedSecondFactor | Kind::Lockout => {
                "someone knows your password: change it now"
            }
            Kind::AdminReset => "If you did not ask for this, tell your administrator at once",
            Kind::MethodAdded | Kind::MethodRemoved => "check your methods with `herarxctl status`",
        }
    }
}

// ---- The recording admin_command ---------------------------------------------------------

/// One run of the recording admin command.
#[derive(Clone, Debug)]
struct Run {
    argv: Vec<String>,
    env: Vec<(String, String)>,
    stdin: String,
}

impl Run {
    fn var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Writes `dir/alert-cmd`: records each run (argv one a line, `env`, stdin) under
/// `dir/alert-cmd.calls/NNNNNN/`, `done` last.
fn recording_alert_command(dir: &Path) -> PathBuf {
    let program = dir.join("alert-cmd");
    let calls = dir.join("alert-cmd.calls");
    std::fs::create_dir_all(&calls).expect("mkdir calls");
    let script = format!(
        r#"#!/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin
calls='{calls}'
n=1
while ! mkdir "$calls/$(printf %06d "$n")" 2>/dev/null; do
  n=$((n + 1))
  [ "$n" -lt 100000 ] || exit 70
done
d="$calls/$(printf %06d "$n")"
: > "$d/argv"
for a in "$@"; do printf '%s\n' "$a" >> "$d/argv"; done
env > "$d/env"
cat > "$d/stdin"
: > "$d/done"
exit 0
"#,
        calls = calls.display()
    );
    std::fs::write(&program, script).expect("write alert command");
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755))
        .expect("chmod alert command");
    program
}

fn recorded_runs(dir: &Path) -> Vec<Run> {
    let Ok(entries) = std::fs::read_dir(dir.join("alert-cmd.calls")) else {
        return Vec::new();
    };
    let mut runs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("done").exists())
        .collect();
    runs.sort();
    runs.into_iter()
        .map(|d| {
            let read = |f: &str| std::fs::read_to_string(d.join(f)).unwrap_or_default();
            Run {
                argv: read("argv").lines().map(str::to_owned).collect(),
                env: read("env")
                    .lines()
                    .filter_map(|l| l.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
                stdin: read("stdin"),
            }
        })
        .collect()
}

// ---- One world with both sinks -----------------------------------------------------------

struct Harness {
    w: World,
    smtp: SmtpSink,
    rec_dir: tempfile::TempDir,
    command: PathBuf,
    host: String,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("read hostname")
        .trim()
        .to_owned()
}

/// A daemon mailing through a fresh SMTP sink, alerts to `ADMIN` and the recording command,
/// with `alerts_extra` added to `[alerts]`.
fn harness(config: DaemonConfig, alerts_extra: &str) -> Harness {
    let smtp = SmtpSink::start();
    let rec_dir = tempfile::Builder::new()
        .prefix("hx-alert-cmd-")
        .tempdir()
        .expect("recorder tempdir");
    let command = recording_alert_command(rec_dir.path());
    let tables = format!(
        "[email]\ntransport = \"smtp\"\nfrom = \"herarx@host.example\"\nsmtp_host = \"127.0.0.1\"\n\
         smtp_port = {port}\nsmtp_security = \"none\"\ntimeout_seconds = 5\n\
         [alerts]\nadmin_email = \"{ADMIN}\"\nadmin_command = [\"{cmd}\", \"--from-herarx\"]\n{alerts_extra}\n{rest}",
        port = smtp.port,
        cmd = command.display(),
        rest = config.extra_tables.clone().unwrap_or_default(),
    );
    let w = World::start(DaemonConfig {
        extra_tables: Some(tables),
        ..config
    });
    Harness {
        w,
        smtp,
        rec_dir,
        command,
        host: hostname(),
    }
}

impl Harness {
    fn subject(&self, user: &str, kind: Kind) -> String {
        format!("Herarx alert for {user} on {}: {}", self.host, kind.title())
    }

    /// Every alert mail about `user` of `kind` delivered so far.
    fn mails(&self, user: &str, kind: Kind) -> Vec<Mail> {
        let subject = self.subject(user, kind);
        self.smtp
            .messages()
            .into_iter()
            .filter(|m| m.header("Subject").as_deref() == Some(subject.as_str()))
            .collect()
    }

    /// Those of them sent to `to`.
    fn mails_to(&self, user: &str, kind: Kind, to: &str) -> Vec<Mail> {
        self.mails(user, kind)
            .into_iter()
            .filter(|m| m.envelope_to.iter().any(|t| t == to))
            .collect()
    }

    /// Every alert mail at all (any user, any kind).
    fn all_alert_mails(&self) -> Vec<Mail> {
        self.smtp
            .messages()
            .into_iter()
            .filter(|m| {
                m.header("Subject")
                    .is_some_and(|s| s.starts_with("Herarx alert"))
            })
            .collect()
    }

    /// Every run of the alert command about `user` of `kind`.
    fn runs(&self, user: &str, kind: Kind) -> Vec<Run> {
        recorded_runs(self.rec_dir.path())
            .into_iter()
            .filter(|r| {
                r.var("HERARX_ALERT") == Some(kind.name()) && r.var("HERARX_USER") == Some(user)
            })
            .collect()
    }

    /// Waits until `kind` about `user` reached every recipient in `to` (mail) `n` times and
    /// the command `n` times; returns (mails per recipient, runs).
    fn wait(&self, user: &str, kind: Kind, to: &[&str], n: usize) -> (Vec<Vec<Mail>>, Vec<Run>) {
        let deadline = Instant::now() + WAIT;
        loop {
            let mails: Vec<Vec<Mail>> = to.iter().map(|t| self.mails_to(user, kind, t)).collect();
            let runs = self.runs(user, kind);
            if mails.iter().all(|m| m.len() >= n) && runs.len() >= n {
                return (mails, runs);
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} alert about {user}: wanted {n} to each of {to:?} and {n} command run(s) \
                     within {WAIT:?}; got mails {:?}, runs {}.\nall mails: {:#?}\nall runs: {:#?}\n\
                     daemon log:\n{}\nsmtp log:\n{}",
                    kind.name(),
                    mails.iter().map(Vec::len).collect::<Vec<_>>(),
                    runs.len(),
                    self.smtp.messages(),
                    recorded_runs(self.rec_dir.path()),
                    self.w.daemon.logs.lines().join("\n"),
                    self.smtp.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Asserts that `kind` about `user` went exactly `n` times to each of `to` (every
    /// recipient it should have: to nobody else) and ran the command exactly `n` times.
    fn assert_count(&self, user: &str, kind: Kind, to: &[&str], n: usize) {
        for t in to {
            let got = self.mails_to(user, kind, t);
            assert_eq!(
                got.len(),
                n,
                "{} alerts about {user} to {t}: {got:#?}",
                kind.name()
            );
        }
        let all = self.mails(user, kind);
        assert_eq!(
            all.len(),
            n * to.len(),
            "{} alerts about {user}: one message per recipient, none elsewhere: {all:#?}",
            kind.name()
        );
        let runs = self.runs(user, kind);
        assert_eq!(
            runs.len(),
            n,
            "{} alert command runs about {user}: {runs:#?}",
            kind.name()
        );
    }

    /// The daemon's log lines that are alerts.
    fn alert_log_lines(&self) -> Vec<String> {
        self.w
            .daemon
            .logs
            .lines()
            .into_iter()
            .filter(|l| l.contains("ALERT "))
            .collect()
    }

    fn login(&self, user: &str, rhost: Option<&str>, answers: &[&str]) -> Report {
        let mut l = self.w.pam.login("herarx", user, answers);
        l.rhost = rhost.map(str::to_owned);
        run_login(&l, None)
    }
}

// ---- Content ------------------------------------------------------------------------------

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// "2026-11-23T03:01:38Z" as unix seconds (UTC only, as the daemon writes it).
fn parse_rfc3339_utc(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || b[19] != b'Z' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from civil (H. Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

/// The value of the body line starting `name: `.
fn field<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    let prefix = format!("{name}: ");
    body.lines().find_map(|l| l.strip_prefix(prefix.as_str()))
}

/// What one alert (mail body or command stdin) must say.
struct Expect<'a> {
    kind: Kind,
    user: &'a str,
    /// The whole `From:` value.
    from: String,
    /// Pieces of the `What happened:` value.
    what: Vec<String>,
    /// Codes and secrets that must not appear anywhere.
    secrets: Vec<String>,
}

fn check_text(h: &Harness, text: &str, e: &Expect, whence: &str) {
    let what = field(text, "What happened")
        .unwrap_or_else(|| panic!("{whence}: no \"What happened:\" line:\n{text}"));
    for piece in &e.what {
        assert!(
            what.contains(piece.as_str()),
            "{whence}: What happened lacks {piece:?}: {what:?}"
        );
    }
    assert_eq!(field(text, "Account"), Some(e.user), "{whence}:\n{text}");
    let when = field(text, "When").unwrap_or_else(|| panic!("{whence}: no When line:\n{text}"));
    let t = parse_rfc3339_utc(when)
        .unwrap_or_else(|| panic!("{whence}: When is not RFC 3339 UTC: {when:?}"));
    assert!(
        t.abs_diff(now()) <= 60,
        "{whence}: When {when} is not within a minute of now"
    );
    assert_eq!(
        field(text, "From"),
        Some(e.from.as_str()),
        "{whence}:\n{text}"
    );
    assert_eq!(
        field(text, "Host"),
        Some(h.host.as_str()),
        "{whence}:\n{text}"
    );
    assert!(
        text.contains(e.kind.advice()),
        "{whence}: advice {:?} missing:\n{text}",
        e.kind.advice()
    );
    for s in &e.secrets {
        assert!(
            !text.contains(s.as_str()),
            "{whence}: secret {s:?} appears in the alert:\n{text}"
        );
    }
    assert_eq!(
        find_code(text),
        None,
        "{whence}: something like a code in the alert:\n{text}"
    );
}

/// Checks one mail and one command run of the alert described by `e`.
fn check_alert(h: &Harness, mail: &Mail, run: &Run, e: &Expect) {
    let subject = h.subject(e.user, e.kind);
    assert_eq!(mail.header("Subject").as_deref(), Some(subject.as_str()));
    check_text(h, &mail.body(), e, "mail body");
    // The command: the kind and user in its environment, its own arguments, the same text.
    assert_eq!(run.var("HERARX_ALERT"), Some(e.kind.name()));
    assert_eq!(run.var("HERARX_USER"), Some(e.user));
    assert_eq!(
        run.argv,
        ["--from-herarx"],
        "argv as configured, nothing added"
    );
    assert!(
        run.stdin.starts_with(&format!("{subject}\n\n")),
        "the command's text starts with the subject: {:?}",
        run.stdin
    );
    check_text(h, &run.stdin, e, "command stdin");
    assert_eq!(
        run.stdin
            .strip_prefix(&format!("{subject}\n\n"))
            .map(str::trim_end),
        Some(mail.body().trim_end()),
        "the command gets the text the mail has"
    );
    for s in &e.secrets {
        assert!(
            !run.argv.iter().any(|a| a.contains(s.as_str())),
            "secret in argv"
        );
        for var in ["HERARX_ALERT", "HERARX_USER"] {
            assert!(
                !run.var(var).unwrap_or_default().contains(s.as_str()),
                "secret in {var}"
            );
        }
    }
}

// ---- herarxctl ----------------------------------------------------------------------------

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: exit {:?}, stderr: {}",
        out.status.code(),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `herarxctl backup-codes generate` after the step-up code: the ten codes.
fn backup_codes(h: &Harness, user: &TestUser, step_up: &str) -> Vec<String> {
    let out = run(
        Some(user),
        &h.w.bus.address,
        &["backup-codes", "generate"],
        &[step_up],
    );
    let codes: Vec<String> = ok(&out, "backup-codes generate")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(codes.len(), 10, "{codes:?}");
    codes
}

/// `herarxctl email add ADDRESS` as `user`: the step-up line, then the code from the mail
/// the daemon sends to `address` (read from the SMTP sink), fed as it becomes known.
fn add_email(h: &Harness, user: &TestUser, address: &str, step_up: &str) -> String {
    let mut child = herarx_tests::users::command_as(Some(user), herarx_tests::paths::herarxctl())
        .args([
            "--bus",
            &h.w.bus.address,
            "email",
            "add",
            address,
            "--name",
            "work",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run herarxctl email add");
    let mut input = child.stdin.take().expect("stdin");
    writeln!(input, "{step_up}").expect("write step-up");
    let deadline = Instant::now() + WAIT;
    let code = loop {
        let found = h
            .smtp
            .messages()
            .into_iter()
            .filter(|m| m.envelope_to.iter().any(|t| t == address))
            .filter(|m| {
                !m.header("Subject")
                    .is_some_and(|s| s.starts_with("Herarx alert"))
            })
            .find_map(|m| m.code());
        if let Some(c) = found {
            break c;
        }
        if Instant::now() >= deadline || child.try_wait().ok().flatten().is_some() {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait herarxctl");
            panic!(
                "no confirmation code mailed to {address}: herarxctl stderr {}\nmails {:#?}",
                text(&out.stderr),
                h.smtp.messages()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    writeln!(input, "{code}").expect("write confirmation code");
    drop(input);
    let out = child.wait_with_output().expect("wait herarxctl");
    let stdout = ok(&out, "herarxctl email add");
    let said = format!("{stdout}{}", text(&out.stderr));
    assert!(said.contains("Added email address"), "{said}");
    code
}

fn status_json(h: &Harness, user: &TestUser) -> serde_json::Value {
    let out = run(Some(user), &h.w.bus.address, &["status", "--json"], &[]);
    serde_json::from_slice(ok(&out, "status --json").as_bytes()).expect("status JSON")
}

fn factor_id(h: &Harness, user: &TestUser, name: &str) -> String {
    let st = status_json(h, user);
    st["factors"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["name"] == name))
        .and_then(|f| f["id"].as_str())
        .unwrap_or_else(|| panic!("no factor {name}: {st}"))
        .to_owned()
}

/// A user with a TOTP factor "phone" (its method-added alert delivered), ten backup codes, and
/// — when `email` is given — that address enrolled (its method-added alert delivered too).
/// Returns the user, the backup codes not used yet, and the step-up secrets used.
fn prepared_user(
    h: &Harness,
    tag: &str,
    email: Option<&str>,
) -> (TestUser, Vec<String>, Vec<String>) {
    let user = TestUser::create(tag);
    let e = enrol_totp(&user, &h.w.bus.address, "phone", None);
    h.wait(&user.name, Kind::MethodAdded, &[ADMIN], 1);
    let step_up = code_at_step(&e.secret, e.confirm_step + 1);
    let mut codes = backup_codes(h, &user, &step_up);
    let mut used = vec![step_up, code_at_step(&e.secret, e.confirm_step)];
    if let Some(address) = email {
        let c = codes.remove(0);
        let confirmation = add_email(h, &user, address, &c);
        used.push(c);
        used.push(confirmation);
        h.wait(&user.name, Kind::MethodAdded, &[ADMIN], 2);
        // Told at the new address too: it is the user's by now.
        let (mails, runs) = h.wait(&user.name, Kind::MethodAdded, &[address], 1);
        assert_eq!(h.mails_to(&user.name, Kind::MethodAdded, ADMIN).len(), 2);
        assert_eq!(h.mails_to(&user.name, Kind::MethodAdded, address).len(), 1);
        assert_eq!(h.mails(&user.name, Kind::MethodAdded).len(), 3);
        assert_eq!(h.runs(&user.name, Kind::MethodAdded).len(), 2);
        check_alert(
            h,
            &mails[0][0],
            &runs[1],
            &Expect {
                kind: Kind::MethodAdded,
                user: &user.name,
                from: "this machine (service herarxctl)".into(),
                what: vec!["an email method \"work\"".into(), "was added".into()],
                secrets: used.clone(),
            },
        );
        assert!(
            !mails[0][0].body().contains(address),
            "the address is shown masked: {}",
            mails[0][0].body()
        );
    }
    (user, codes, used)
}

fn start_time() -> Instant {
    Instant::now()
}

// ---- The tests ----------------------------------------------------------------------------

#[test]
fn new_address_alerts_once_per_remote_address_never_for_local_logins() {
    let t0 = start_time();
    let h = harness(DaemonConfig::default(), "");
    let mail = "owner@user.example";
    let (user, codes, mut secrets) = prepared_user(&h, "na", Some(mail));
    let u = user.name.as_str();
    let to = [ADMIN, mail];

    // A local login: no new-address alert.
    let r = h.login(u, None, &[&codes[0]]);
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);
    // The first login from A: one alert. (Had the local login raised one, it would have come
    // first: one worker, in order.)
    let r = h.login(u, Some(ADDR_A), &[&codes[1]]);
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);
    let (mails, runs) = h.wait(u, Kind::NewAddress, &to, 1);
    h.assert_count(u, Kind::NewAddress, &to, 1);
    secrets.extend(codes[..2].iter().cloned());
    let expect_a = Expect {
        kind: Kind::NewAddress,
        user: u,
        from: format!("{ADDR_A} (service herarx)"),
        what: vec![
            format!("successful sign-in from {ADDR_A}"),
            "never seen".into(),
        ],
        secrets: secrets.clone(),
    };
    for m in &mails {
        check_alert(&h, &m[0], &runs[0], &expect_a);
    }
    assert_eq!(mails[1][0].envelope_to, [mail]);
    assert_eq!(mails[0][0].header("To").as_deref(), Some(ADMIN));

    // A again: nothing. Then B: one more, about B.
    let r = h.login(u, Some(ADDR_A), &[&codes[2]]);
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);
    let r = h.login(u, Some(ADDR_B), &[&codes[3]]);
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);
    let (mails, runs) = h.wait(u, Kind::NewAddress, &to, 2);
    h.assert_count(u, Kind::NewAddress, &to, 2);
    secrets.extend(codes[2..4].iter().cloned());
    let expect_b = Expect {
        from: format!("{ADDR_B} (service herarx)"),
        what: vec![format!("successful sign-in from {ADDR_B}")],
        secrets: secrets.clone(),
        ..expect_a
    };
    for m in &mails {
        check_alert(&h, &m[1], &runs[1], &expect_b);
    }
    // A, B and the local address once more: still two.
    for (i, rhost) in [Some(ADDR_A), Some(ADDR_B), None].into_iter().enumerate() {
        let r = h.login(u, rhost, &[&codes[4 + i]]);
        assert_eq!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);
    }
    std::thread::sleep(SETTLE);
    h.assert_count(u, Kind::NewAddress, &to, 2);
    // A failed login from a third address is no sign-in from it: no alert.
    let bad = wrong_code(&codes.iter().map(String::as_str).collect::<Vec<_>>());
    let r = h.login(u, Some("192.0.2.99"), &[&bad, &bad, &bad]);
    assert_ne!(r.transcript.rc, PAM_SUCCESS);
    std::thread::sleep(SETTLE);
    h.assert_count(u, Kind::NewAddress, &to, 2);
    h.w.daemon
        .logs
        .wait_for(&format!("ALERT new-address user={u} rhost={ADDR_A}"));
    h.w.daemon
        .logs
        .wait_for(&format!("ALERT new-address user={u} rhost={ADDR_B}"));
    eprintln!("new_address: {:?}", t0.elapsed());
}

#[test]
fn failed_second_factor_alerts_once_when_the_count_reaches_the_threshold() {
    let t0 = start_time();
    let h = harness(
        DaemonConfig {
            max_failures: 10,
            max_tries: 3,
            ..DaemonConfig::default()
        },
        "failed_second_factor = 2",
    );
    let user = TestUser::create("fs");
    let e = enrol_totp(&user, &h.w.bus.address, "phone", None);
    let u = user.name.as_str();
    let right = code_at_step(&e.secret, e.confirm_step + 1);
    let bad1 = wrong_code(&[
        &right,
        &code(&e.secret, 0),
        &code(&e.secret, -1),
        &code(&e.secret, 1),
    ]);
    let bad2 = wrong_code(&[
        &right,
        &bad1,
        &code(&e.secret, 0),
        &code(&e.secret, -1),
        &code(&e.secret, 1),
    ]);
    let bad3 = wrong_code(&[
        &right,
        &bad1,
        &bad2,
        &code(&e.secret, 0),
        &code(&e.secret, -1),
        &code(&e.secret, 1),
    ]);

    // One wrong code (then the client gives up): the count is 1, no alert.
    let r = h.login(u, None, &[&bad1]);
    assert_ne!(r.transcript.rc, PAM_SUCCESS);
    std::thread::sleep(SETTLE);
    h.assert_count(u, Kind::FailedSecondFactor, &[ADMIN], 0);
    // The next login: the 2nd wrong code raises it, the 3rd does not again.
    let r = h.login(u, None, &[&bad2, &bad3]);
    assert_ne!(r.transcript.rc, PAM_SUCCESS);
    let (mails, runs) = h.wait(u, Kind::FailedSecondFactor, &[ADMIN], 1);
    std::thread::sleep(SETTLE);
    h.assert_count(u, Kind::FailedSecondFactor, &[ADMIN], 1);
    check_alert(
        &h,
        &mails[0][0],
        &runs[0],
        &Expect {
            kind: Kind::FailedSecondFactor,
            user: u,
            from: "this machine (service herarx)".into(),
            what: vec!["2 wrong verification codes in a row after a correct password".into()],
            secrets: vec![bad1.clone(), bad2.clone(), bad3.clone(), right.clone()],
        },
    );
    h.w.daemon.logs.wait_for(&format!(
        "ALERT failed-second-factor user={u} rhost= service=herarx"
    ));
    // Not locked (10 allowed): the right code passes, which starts the count afresh; two more
    // wrong ones raise a second alert.
    let r = h.login(u, None, &[&bad1, &right]);
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);
    std::thread::sleep(SETTLE);
    h.assert_count(u, Kind::FailedSecondFactor, &[ADMIN], 1);
    let r = h.login(u, None, &[&bad1, &bad2]);
    assert_ne!(r.transcript.rc, PAM_SUCCESS);
    h.wait(u, Kind::FailedSecondFactor, &[ADMIN], 2);
    std::thread::sleep(SETTLE);
    h.assert_count(u, Kind::FailedSecondFactor, &[ADMIN], 2);
    assert!(
        h.all_alert_mails().iter().all(|m| !m
            .header("Subject")
            .unwrap_or_default()
            .contains(Kind::Lockout.title())),
        "no lockout below max_failures"
    );
    eprintln!("failed_second_factor: {:?}", t0.elapsed());
}

#[test]
fn lockout_alerts_once_when_the_lock_begins_naming_the_source() {
    let t0 = start_time();
    let h = harness(
        DaemonConfig {
            max_failures: 3,
            max_tries: 3,
            ..DaemonConfig::default()
        },
        "failed_second_factor = 0",
    );
    let mail = "locked@user.example";
    let (user, codes, mut secrets) = prepared_user(&h, "lo", Some(mail));
    let u = user.name.as_str();
    let to = [ADMIN, mail];
    let bad = wrong_code(&codes.iter().map(String::as_str).collect::<Vec<_>>());
    secrets.push(bad.clone());

    // Three wrong codes from A: the third locks A, one alert.
    let r = h.login(u, Some(ADDR_A), &[&bad, &bad, &bad]);
    assert_eq!(r.transcript.rc, PAM_MAXTRIES, "{:?}", r.transcript);
    let (mails, runs) = h.wait(u, Kind::Lockout, &to, 1);
    h.assert_count(u, Kind::Lockout, &to, 1);
    let expect_a = Expect {
        kind: Kind::Lockout,
        user: u,
        from: format!("{ADDR_A} (service herarx)"),
        what: vec![
            "after 3 failed attempts".into(),
            format!("sign-ins from {ADDR_A} are locked until "),
        ],
        secrets: secrets.clone(),
    };
    for m in &mails {
        check_alert(&h, &m[0], &runs[0], &expect_a);
    }
    // The lock's end in the text: about lockout_seconds (900) from now.
    let what = field(&mails[0][0].body(), "What happened")
        .unwrap_or_default()
        .to_owned();
    let until = what
        .rsplit("locked until ")
        .next()
        .and_then(parse_rfc3339_utc)
        .unwrap_or_else(|| panic!("no lock end in {what:?}"));
    assert!(until.abs_diff(now() + 900) <= 60, "{what}");
    h.w.daemon.logs.wait_for(&format!(
        "ALERT lockout user={u} rhost={ADDR_A} service=herarx"
    ));

    // More tries from A while locked, the right code among them: refused, no new alert.
    for c in [&bad, &codes[0]] {
        let r = h.login(u, Some(ADDR_A), &[c, c, c]);
        assert_ne!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);
    }
    // Local sign-ins have a count of their own: three wrong ones lock them, one more alert,
    // about local sign-ins. (The attempts above, had they alerted, would have come before.)
    let r = h.login(u, None, &[&bad, &bad, &bad]);
    assert_eq!(r.transcript.rc, PAM_MAXTRIES, "{:?}", r.transcript);
    let (mails, runs) = h.wait(u, Kind::Lockout, &to, 2);
    h.assert_count(u, Kind::Lockout, &to, 2);
    let expect_local = Expect {
        from: "this machine (service herarx)".into(),
        what: vec!["after 3 failed attempts, local sign-ins are locked until ".into()],
        ..expect_a
    };
    for m in &mails {
        check_alert(&h, &m[1], &runs[1], &expect_local);
    }
    let r = h.login(u, None, &[&bad, &bad, &bad]);
    assert_ne!(r.transcript.rc, PAM_SUCCESS);
    std::thread::sleep(SETTLE);
    h.assert_count(u, Kind::Lockout, &to, 2);
    // failed_second_factor = 0: that kind is off, even at 3 wrong codes in a row.
    h.assert_count(u, Kind::FailedSecondFactor, &to, 0);
    assert!(
        !h.alert_log_lines()
            .iter()
            .any(|l| l.contains("ALERT failed-second-factor")),
        "{:#?}",
        h.alert_log_lines()
    );
    eprintln!("lockout: {:?}", t0.elapsed());
}

#[test]
fn admin_reset_alerts_the_admin_and_the_address_the_user_had() {
    let t0 = start_time();
    let h = harness(DaemonConfig::default(), "");
    let mail = "reset@user.example";
    let (user, _codes, secrets) = prepared_user(&h, "ar", Some(mail));
    let u = user.name.as_str();
    let to = [ADMIN, mail];

    let out = run(None, &h.w.bus.address, &["admin", "reset", u, "--yes"], &[]);
    ok(&out, "admin reset");
    let (mails, runs) = h.wait(u, Kind::AdminReset, &to, 1);
    // The address is gone with the reset.
    let st = status_json(&h, &user);
    assert_eq!(st["factors"].as_array().map(Vec::len), Some(0), "{st}");
    let expect = Expect {
        kind: Kind::AdminReset,
        user: u,
        from: "this machine (service herarxctl admin)".into(),
        what: vec![
            "an administrator (uid 0) removed every sign-in method of this account".into(),
            "(2 factors)".into(),
        ],
        secrets,
    };
    for m in &mails {
        check_alert(&h, &m[0], &runs[0], &expect);
    }
    h.w.daemon
        .logs
        .wait_for(&format!("ALERT admin-reset user={u}"));

    // A second reset finds nothing to remove and no address to tell: the admin hears of it
    // (it happened), the old address does not.
    let out = run(None, &h.w.bus.address, &["admin", "reset", u, "--yes"], &[]);
    ok(&out, "second admin reset");
    h.wait(u, Kind::AdminReset, &[ADMIN], 2);
    std::thread::sleep(SETTLE);
    assert_eq!(h.mails_to(u, Kind::AdminReset, mail).len(), 1);
    assert_eq!(h.mails_to(u, Kind::AdminReset, ADMIN).len(), 2);
    assert_eq!(h.mails(u, Kind::AdminReset).len(), 3);
    assert_eq!(h.runs(u, Kind::AdminReset).len(), 2);

    // A refused reset (not an admin) raises nothing.
    let out = run(
        Some(&user),
        &h.w.bus.address,
        &["admin", "reset", u, "--yes"],
        &[],
    );
    assert!(
        !out.status.success(),
        "a user may not reset: {}",
        text(&out.stderr)
    );
    std::thread::sleep(SETTLE);
    assert_eq!(h.mails_to(u, Kind::AdminReset, ADMIN).len(), 2);

    eprintln!("admin_reset: {:?}", t0.elapsed());
}

/// The admin-reset sentence reads as one sentence, in the singular for one factor (it once had
/// a run of blanks from a literal broken over two lines).
#[test]
fn admin_reset_alert_sentence_has_no_run_of_blanks() {
    let h = harness(DaemonConfig::default(), "");
    let user = TestUser::create("ab");
    let u = user.name.as_str();
    enrol_totp(&user, &h.w.bus.address, "phone", None);
    let out = run(None, &h.w.bus.address, &["admin", "reset", u, "--yes"], &[]);
    ok(&out, "admin reset");
    let (mails, runs) = h.wait(u, Kind::AdminReset, &[ADMIN], 1);
    for text in [mails[0][0].body(), runs[0].stdin.clone()] {
        let what = field(&text, "What happened").unwrap_or_default().to_owned();
        assert!(
            what.contains("removed every sign-in method of this account (1 factor)"),
            "the admin-reset alert text: {what:?}"
        );
        assert!(!what.contains("  "), "runs of blanks in {what:?}");
    }
}

#[test]
fn method_added_and_removed_alert_once_each_naming_kind_and_name() {
    let t0 = start_time();
    let h = harness(DaemonConfig::default(), "");
    let user = TestUser::create("mc");
    let u = user.name.as_str();
    let phone = enrol_totp(&user, &h.w.bus.address, "phone", None);
    let (mails, runs) = h.wait(u, Kind::MethodAdded, &[ADMIN], 1);
    let confirm = code_at_step(&phone.secret, phone.confirm_step);
    let base = Expect {
        kind: Kind::MethodAdded,
        user: u,
        from: "this machine (service herarxctl)".into(),
        what: vec!["an authenticator app (TOTP) \"phone\" was added".into()],
        secrets: vec![confirm.clone(), phone.secret.clone()],
    };
    check_alert(&h, &mails[0][0], &runs[0], &base);

    // A wrong step-up: nothing added, no alert. Then the right one: "laptop", one alert.
    let step_up = code_at_step(&phone.secret, phone.confirm_step + 1);
    let bad = wrong_code(&[
        &step_up,
        &confirm,
        &code(&phone.secret, 0),
        &code(&phone.secret, -1),
    ]);
    let out = run(
        Some(&user),
        &h.w.bus.address,
        &["totp", "add", "--name", "tablet"],
        &[&bad, "000000"],
    );
    assert!(
        !out.status.success(),
        "wrong step-up: {}",
        text(&out.stdout)
    );
    let laptop = enrol_totp(&user, &h.w.bus.address, "laptop", Some(&step_up));
    let (mails, runs) = h.wait(u, Kind::MethodAdded, &[ADMIN], 2);
    h.assert_count(u, Kind::MethodAdded, &[ADMIN], 2);
    let laptop_confirm = code_at_step(&laptop.secret, laptop.confirm_step);
    let secrets = vec![
        confirm.clone(),
        step_up.clone(),
        bad.clone(),
        laptop_confirm.clone(),
        phone.secret.clone(),
        laptop.secret.clone(),
    ];
    check_alert(
        &h,
        &mails[0][1],
        &runs[1],
        &Expect {
            what: vec!["an authenticator app (TOTP) \"laptop\" was added".into()],
            secrets: secrets.clone(),
            ..base
        },
    );

    // Removing "phone": a wrong step-up removes nothing (no alert); the right one, one alert.
    let phone_id = factor_id(&h, &user, "phone");
    let out = run(
        Some(&user),
        &h.w.bus.address,
        &["remove", &phone_id, "--yes"],
        &[&bad],
    );
    assert!(!out.status.success(), "wrong step-up removes nothing");
    let laptop_code = code_at_step(&laptop.secret, laptop.confirm_step + 1);
    let out = run(
        Some(&user),
        &h.w.bus.address,
        &["remove", &phone_id, "--yes"],
        &[&laptop_code],
    );
    ok(&out, "remove phone");
    let (mails, runs) = h.wait(u, Kind::MethodRemoved, &[ADMIN], 1);
    h.assert_count(u, Kind::MethodRemoved, &[ADMIN], 1);
    let mut secrets = secrets;
    secrets.push(laptop_code);
    check_alert(
        &h,
        &mails[0][0],
        &runs[0],
        &Expect {
            kind: Kind::MethodRemoved,
            user: u,
            from: "this machine (service herarxctl)".into(),
            what: vec!["an authenticator app (TOTP) \"phone\" was removed".into()],
            secrets,
        },
    );
    // Removing an unknown id: nothing.
    let out = run(
        Some(&user),
        &h.w.bus.address,
        &["remove", "nosuchid", "--yes"],
        &[&bad],
    );
    assert!(!out.status.success());
    std::thread::sleep(SETTLE);
    h.assert_count(u, Kind::MethodAdded, &[ADMIN], 2);
    h.assert_count(u, Kind::MethodRemoved, &[ADMIN], 1);
    h.w.daemon
        .logs
        .wait_for(&format!("ALERT method-removed user={u}"));
    eprintln!("method_changes: {:?}", t0.elapsed());
}

#[test]
fn switched_off_kinds_send_and_log_nothing_and_to_user_false_spares_the_user() {
    let t0 = start_time();
    let h = harness(
        DaemonConfig {
            max_failures: 3,
            max_tries: 3,
            ..DaemonConfig::default()
        },
        "new_address = false\nfailed_second_factor = 0\nlockout = false\nmethod_changes = false\nto_user = false",
    );
    let mail = "quiet@user.example";
    let user = TestUser::create("of");
    let u = user.name.as_str();
    let e = enrol_totp(&user, &h.w.bus.address, "phone", None);
    let step_up = code_at_step(&e.secret, e.confirm_step + 1);
    let codes = backup_codes(&h, &user, &step_up);
    add_email(&h, &user, mail, &codes[0]);
    // Removing a method (before the local lock below, which would refuse the step-up too).
    let id = factor_id(&h, &user, "work");
    let out = run(
        Some(&user),
        &h.w.bus.address,
        &["remove", &id, "--yes"],
        &[&codes[2]],
    );
    ok(&out, "remove the address");
    // A new address, wrong codes enough to lock, from A and locally.
    let r = h.login(u, Some(ADDR_A), &[&codes[1]]);
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);
    let bad = wrong_code(&codes.iter().map(String::as_str).collect::<Vec<_>>());
    for rhost in [Some(ADDR_B), None] {
        let r = h.login(u, rhost, &[&bad, &bad, &bad]);
        assert_eq!(r.transcript.rc, PAM_MAXTRIES, "{:?}", r.transcript);
    }
    // The one kind left on, as a marker: when it has arrived, anything raised before it
    // would have too.
    let out = run(None, &h.w.bus.address, &["admin", "reset", u, "--yes"], &[]);
    ok(&out, "admin reset");
    h.wait(u, Kind::AdminReset, &[ADMIN], 1);
    std::thread::sleep(SETTLE);
    let alerts = h.all_alert_mails();
    assert_eq!(
        alerts.len(),
        1,
        "only the admin reset, only to the admin: {alerts:#?}"
    );
    assert_eq!(alerts[0].envelope_to, [ADMIN]);
    let runs = recorded_runs(h.rec_dir.path());
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0].var("HERARX_ALERT"), Some("admin-reset"));
    // The mail the user did get is the confirmation code, nothing else.
    let to_user: Vec<Mail> = h
        .smtp
        .messages()
        .into_iter()
        .filter(|m| m.envelope_to.iter().any(|t| t == mail))
        .collect();
    assert_eq!(to_user.len(), 1, "{to_user:#?}");
    // Nor in the log: only the admin reset is an ALERT line.
    let lines = h.alert_log_lines();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].contains(&format!("ALERT admin-reset user={u}")),
        "{lines:#?}"
    );
    assert!(h.command.exists());
    eprintln!("switched_off: {:?}", t0.elapsed());
}

/// The recorder itself records what it is given (so the counts above can fail).
#[test]
fn the_recording_command_keeps_argv_env_and_stdin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let program = recording_alert_command(dir.path());
    assert!(recorded_runs(dir.path()).is_empty());
    let mut child = std::process::Command::new(&program)
        .args(["--from-herarx", "two words"])
        .env("HERARX_ALERT", "lockout")
        .env("HERARX_USER", "alice")
        .stdin(Stdio::piped())
        .spawn()
        .expect("run recorder");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"Subject line\n\nWhat happened: x\n")
        .expect("write");
    assert!(child.wait().expect("wait").success());
    let runs = recorded_runs(dir.path());
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].argv, ["--from-herarx", "two words"]);
    assert_eq!(runs[0].var("HERARX_ALERT"), Some("lockout"));
    assert_eq!(runs[0].var("HERARX_USER"), Some("alice"));
    assert_eq!(runs[0].stdin, "Subject line\n\nWhat happened: x\n");
    assert_eq!(
        parse_rfc3339_utc("2023-11-14T22:13:20Z"),
        Some(1_700_000_000)
    );
    assert_eq!(parse_rfc3339_utc("2023-11-14 22:13:20"), None);
}
