//! The non-terminal contract of `herarxctl`, run as a real process against a stand-in daemon
//! on a private `dbus-daemon`: stdin answers one per line, the URI alone on stdout's first
//! line (flushed before the confirmation code is read), exit codes by outcome.
//!
//! The stand-in only plays the contract's moves (fixed codes, no TOTP); the real daemon and
//! its authorization are tested end to end in the workspace's `tests/` crate. Needs
//! `dbus-daemon` (scripts/install-test-deps.sh installs it): without it these tests fail.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use herarx_proto::{FactorInfo, HerarxError, PendingEnrollment, UserStatus};

const URI: &str = "otpauth://totp/Herarx:tester?secret=JBSWY3DPEHPK3PXP&issuer=Herarx";
const GOOD_CODE: &str = "123456";
const STEP_UP_CODE: &str = "654321";
/// The stand-in answers this confirmation code as if the enrolment had expired.
const EXPIRED_CODE: &str = "999999";

struct Fake {
    factors: Vec<FactorInfo>,
    pending: bool,
    /// The factor the pending enrolment replaces.
    replace: Option<String>,
    backup_codes: Vec<String>,
    generated: u32,
}

fn no_such_factor() -> HerarxError {
    HerarxError::NoSuchFactor("No such factor.".into())
}

impl Fake {
    fn step_up(&self, code: &str) -> Result<(), HerarxError> {
        match (
            self.factors.is_empty() && self.backup_codes.is_empty(),
            code,
        ) {
            (true, _) => Ok(()),
            (false, "") => Err(HerarxError::StepUpRequired("A code is needed.".into())),
            (false, STEP_UP_CODE) => Ok(()),
            (false, _) => Err(HerarxError::WrongCode("Wrong step-up code.".into())),
        }
    }
}

#[zbus::interface(name = "org.herarx.Herarx1.Factors")]
impl Fake {
    async fn status(&self) -> Result<UserStatus, HerarxError> {
        Ok(UserStatus {
            user: "tester".into(),
            factors: self.factors.clone(),
            backup_codes_left: u32::try_from(self.backup_codes.len()).unwrap(),
            failures: 0,
            locked_until: 0,
            remote_locked_until: 0,
            required: true,
            no_factor_policy: "ignore".into(),
            remember_addresses: false,
            remembered: vec![],
        })
    }

    async fn begin_totp_enrollment(
        &mut self,
        _name: &str,
        step_up_code: &str,
        replace: &str,
    ) -> Result<PendingEnrollment, HerarxError> {
        if !replace.is_empty() && !self.factors.iter().any(|f| f.id == replace) {
            return Err(no_such_factor());
        }
        self.step_up(step_up_code)?;
        self.pending = true;
        self.replace = (!replace.is_empty()).then(|| replace.to_owned());
        Ok(PendingEnrollment {
            id: "e1".into(),
            uri: URI.into(),
            expires: u64::MAX / 2,
        })
    }

    async fn confirm_totp_enrollment(
        &mut self,
        id: &str,
        code: &str,
    ) -> Result<FactorInfo, HerarxError> {
        if !self.pending || id != "e1" || code == EXPIRED_CODE {
            return Err(HerarxError::NoSuchEnrollment(
                "That enrolment has expired.".into(),
            ));
        }
        if code != GOOD_CODE {
            return Err(HerarxError::WrongCode("Wrong code.".into()));
        }
        self.pending = false;
        if let Some(old) = self.replace.take() {
            self.factors.retain(|f| f.id != old);
        }
        let factor = FactorInfo {
            id: format!("f{}", self.factors.len() + 1),
            kind: "totp".into(),
            name: "phone".into(),
            created: 1_700_000_000,
            last_used: 0,
            primary: false,
            detail: String::new(),
        };
        self.factors.push(factor.clone());
        Ok(factor)
    }

    async fn remove_factor(&mut self, id: &str, step_up_code: &str) -> Result<(), HerarxError> {
        self.step_up(step_up_code)?;
        let before = self.factors.len();
        self.factors.retain(|f| f.id != id);
        if self.factors.len() == before {
            return Err(no_such_factor());
        }
        Ok(())
    }

    async fn generate_backup_codes(
        &mut self,
        step_up_code: &str,
    ) -> Result<Vec<String>, HerarxError> {
        self.step_up(step_up_code)?;
        self.generated += 1;
        let set = self.generated;
        self.backup_codes = (0..10).map(|i| format!("bc{set}{i:02}-code")).collect();
        Ok(self.backup_codes.clone())
    }

    async fn set_primary(&mut self, id: &str) -> Result<(), HerarxError> {
        if !self.factors.iter().any(|f| f.id == id) {
            return Err(no_such_factor());
        }
        for f in &mut self.factors {
            f.primary = f.id == id;
        }
        Ok(())
    }

    /// Plays the daemon's security-key answers: the PIN `4321` is right, a name `pin` stands
    /// for a key that needs its PIN.
    async fn add_security_key(
        &mut self,
        name: &str,
        step_up_code: &str,
        pin: &str,
    ) -> Result<FactorInfo, HerarxError> {
        if self.factors.iter().any(|f| f.kind == "fido2") {
            if !step_up_code.is_empty() {
                return Err(HerarxError::InvalidArgument("Unexpected code.".into()));
            }
        } else {
            self.step_up(step_up_code)?;
        }
        match (name, pin) {
            (_, p) if !p.is_empty() && p != "4321" => {
                return Err(HerarxError::WrongCode("Wrong PIN for this key.".into()));
            }
            ("pin", "") => {
                return Err(HerarxError::InvalidArgument(
                    "This key needs its PIN: give it with --pin or when asked.".into(),
                ));
            }
            _ => {}
        }
        let factor = FactorInfo {
            id: format!("k{}", self.factors.len() + 1),
            kind: "fido2".into(),
            name: if name.is_empty() {
                "security key".into()
            } else {
                name.into()
            },
            created: 1_700_000_000,
            last_used: 0,
            primary: false,
            detail: String::new(),
        };
        self.factors.push(factor.clone());
        Ok(factor)
    }

    async fn rename_factor(&mut self, id: &str, name: &str) -> Result<FactorInfo, HerarxError> {
        let f = self
            .factors
            .iter_mut()
            .find(|f| f.id == id)
            .ok_or_else(no_such_factor)?;
        f.name = name.to_owned();
        Ok(f.clone())
    }
}

/// A private bus, with or without the stand-in daemon on it. Stops both when dropped.
struct Bus {
    dir: PathBuf,
    dbus: Child,
    address: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<std::thread::JoinHandle<()>>,
}

fn dbus_daemon_available() -> bool {
    Command::new("dbus-daemon")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

impl Bus {
    fn start(factors: usize, with_daemon: bool) -> Bus {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "herarxctl-contract-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>
</busconfig>
"#,
                dir.display()
            ),
        )
        .unwrap();
        let mut dbus = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut address = String::new();
        BufReader::new(dbus.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        let address = address.trim().to_owned();
        assert!(address.starts_with("unix:"), "{address:?}");

        let (mut stop, mut server) = (None, None);
        if with_daemon {
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
            let (ready_tx, ready_rx) = mpsc::channel();
            let fake = Fake {
                factors: (1..=factors)
                    .map(|i| FactorInfo {
                        id: format!("f{i}"),
                        kind: "totp".into(),
                        name: format!("device {i}"),
                        created: 1_700_000_000,
                        last_used: 0,
                        primary: false,
                        detail: String::new(),
                    })
                    .collect(),
                pending: false,
                replace: None,
                backup_codes: Vec::new(),
                generated: 0,
            };
            let server_address = address.clone();
            server = Some(std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let _conn = zbus::connection::Builder::address(server_address.as_str())
                        .name(herarx_proto::BUS_NAME)
                        .serve_at(herarx_proto::OBJECT_PATH, fake)
                        .build()
                        .await
                        .unwrap();
                    ready_tx.send(()).unwrap();
                    let _ = stop_rx.await;
                });
            }));
            ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();
            stop = Some(stop_tx);
        }
        Bus {
            dir,
            dbus,
            address,
            stop,
            server,
        }
    }

    fn herarxctl(&self, args: &[&str]) -> Child {
        Command::new(env!("CARGO_BIN_EXE_herarxctl"))
            .arg("--bus")
            .arg(&self.address)
            .args(args)
            .env_remove("DBUS_SYSTEM_BUS_ADDRESS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Runs herarxctl with `input` on stdin (then EOF).
    fn run(&self, args: &[&str], input: &str) -> Output {
        let mut child = self.herarxctl(args);
        let mut stdin = child.stdin.take().unwrap();
        // herarxctl may exit before reading everything (e.g. refused at once): ignore EPIPE.
        let _ = stdin.write_all(input.as_bytes());
        drop(stdin);
        finish(child)
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
        let _ = self.dbus.kill();
        let _ = self.dbus.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits for herarxctl, but never for ever: a hang is a failure, not a stuck test run.
fn finish(mut child: Child) -> Output {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!("herarxctl hung; stderr: {}", text(&output.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

macro_rules! require_dbus {
    () => {
        assert!(
            dbus_daemon_available(),
            "dbus-daemon must be installed (scripts/install-test-deps.sh)"
        );
    };
}

#[test]
fn first_enrolment_prints_the_uri_alone_then_reads_the_code() {
    require_dbus!();
    let bus = Bus::start(0, true);
    let out = bus.run(
        &["totp", "add", "--name", "phone"],
        &format!("{GOOD_CODE}\n"),
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{URI}\n"));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("Enter the 6-digit code shown by your app: "),
        "{stderr}"
    );
    assert!(
        !stderr.contains("JBSWY3DP"),
        "the secret leaked to stderr: {stderr}"
    );
    assert!(
        !stderr.contains('\u{2580}'),
        "a QR code was drawn without a terminal"
    );
}

#[test]
fn the_uri_is_flushed_before_the_confirmation_code_is_read() {
    require_dbus!();
    let bus = Bus::start(0, true);
    let mut child = bus.herarxctl(&["totp", "add", "--json"]);
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(10));
    // Only now, like a script that scans the URI into its own TOTP generator, answer.
    writeln!(stdin, "{GOOD_CODE}").unwrap();
    drop(stdin);
    let status = finish(child).status;
    reader.join().unwrap();
    assert_eq!(first.unwrap(), URI);
    let json: serde_json::Value = serde_json::from_str(&rx.recv().unwrap()).unwrap();
    assert_eq!(json["id"], "f1");
    assert_eq!(json["kind"], "totp");
    assert!(rx.try_recv().is_err(), "more than two lines on stdout");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn with_a_factor_the_step_up_code_comes_first() {
    require_dbus!();
    let bus = Bus::start(1, true);
    let out = bus.run(&["totp", "add"], &format!("{STEP_UP_CODE}\n{GOOD_CODE}\n"));
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{URI}\n"));
    assert!(text(&out.stderr).contains("Code from one of your existing authenticators: "));
}

#[test]
fn a_wrong_step_up_code_is_refused_with_exit_4_and_no_uri() {
    require_dbus!();
    let bus = Bus::start(1, true);
    let out = bus.run(&["totp", "add"], &format!("000000\n{GOOD_CODE}\n"));
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(text(&out.stdout), "");
    assert!(
        text(&out.stderr).contains("herarxctl: Wrong step-up code."),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_wrong_confirmation_code_gets_one_attempt_in_a_script() {
    require_dbus!();
    let bus = Bus::start(0, true);
    let out = bus.run(&["totp", "add"], &format!("111111\n{GOOD_CODE}\n"));
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(text(&out.stdout), format!("{URI}\n"));
    assert!(
        text(&out.stderr).contains("herarxctl: Wrong code."),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_expired_enrolment_says_to_start_again() {
    require_dbus!();
    let bus = Bus::start(0, true);
    let out = bus.run(&["totp", "add"], &format!("{EXPIRED_CODE}\n"));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("start again with `herarxctl totp add`"));
}

#[test]
fn stdin_ending_early_is_a_usage_error() {
    require_dbus!();
    let bus = Bus::start(1, true);
    let out = bus.run(&["totp", "add"], &format!("{STEP_UP_CODE}\n"));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("stdin ended before the confirmation code"));
}

#[test]
fn status_json_is_one_line_on_stdout() {
    require_dbus!();
    let bus = Bus::start(2, true);
    let out = bus.run(&["status", "--json"], "");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["user"], "tester");
    assert_eq!(json["factors"].as_array().unwrap().len(), 2);
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn status_for_a_person_is_a_table() {
    require_dbus!();
    let bus = Bus::start(1, true);
    let out = bus.run(&["status"], "");
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("User:      tester"), "{stdout}");
    assert!(stdout.contains("  f1  totp  device 1  "), "{stdout}");
}

#[test]
fn remove_in_a_script_needs_yes_then_a_step_up_code() {
    require_dbus!();
    let bus = Bus::start(2, true);
    let out = bus.run(&["remove", "f1"], &format!("{STEP_UP_CODE}\n"));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--yes"));

    let out = bus.run(&["remove", "f9", "--yes"], &format!("{STEP_UP_CODE}\n"));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no factor with id `f9`"));

    let out = bus.run(
        &["remove", "f1", "--yes", "--json"],
        &format!("{STEP_UP_CODE}\n"),
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(json["removed"]["id"], "f1");

    let out = bus.run(&["status", "--json"], "");
    let json: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(json["factors"][0]["id"], "f2");
}

#[test]
fn a_bus_without_herarxd_exits_3() {
    require_dbus!();
    let bus = Bus::start(0, false);
    let out = bus.run(&["status"], "");
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("herarxd is not running on this bus"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn no_bus_at_all_exits_3() {
    let out = Command::new(env!("CARGO_BIN_EXE_herarxctl"))
        .args([
            "status",
            "--bus",
            "unix:path=/nonexistent/herarx-test-socket",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(
            "herarxctl: cannot reach herarxd on unix:path=/nonexistent/herarx-test-socket: "
        ),
        "{stderr}"
    );
    assert!(stderr.contains("Is the daemon running?"), "{stderr}");
}

#[test]
fn backup_codes_in_a_script_are_ten_lines_on_stdout_and_nothing_else() {
    require_dbus!();
    // No factor yet: no step-up, nothing read from stdin.
    let bus = Bus::start(0, true);
    let out = bus.run(&["backup-codes", "generate"], "");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 10, "{stdout}");
    assert!(lines.iter().all(|l| l.starts_with("bc1")), "{stdout}");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("Each code works once"), "{stderr}");
    assert!(stderr.contains("voids these"), "{stderr}");
    assert!(!stderr.contains("bc1"), "codes on stderr: {stderr}");

    // Now there are codes: a new set needs a step-up, read from the first stdin line.
    let out = bus.run(&["backup-codes", "generate"], "");
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdin ended before the step-up code"
    );
    assert_eq!(text(&out.stdout), "");
    let out = bus.run(
        &["backup-codes", "generate", "--json"],
        &format!("{STEP_UP_CODE}\n"),
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let codes = json["codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    assert_eq!(codes[0], "bc200-code");

    let out = bus.run(&["status", "--json"], "");
    let json: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(json["backup_codes_left"], 10);
}

#[test]
fn backup_codes_with_a_wrong_step_up_exit_4_and_print_nothing() {
    require_dbus!();
    let bus = Bus::start(1, true);
    let out = bus.run(&["backup-codes", "generate"], "000000\n");
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(text(&out.stdout), "");
    assert!(text(&out.stderr).contains("Wrong step-up code."));
    let out = bus.run(&["backup-codes", "generate"], &format!("{STEP_UP_CODE}\n"));
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 10);
}

#[test]
fn status_shows_backup_codes_and_the_primary_factor() {
    require_dbus!();
    let bus = Bus::start(2, true);
    let out = bus.run(&["status"], "");
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("herarxctl backup-codes generate"),
        "{stdout}"
    );
    assert!(stdout.contains("Required:  yes"), "{stdout}");

    let out = bus.run(&["primary", "f2"], "");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let out = bus.run(&["status"], "");
    let stdout = text(&out.stdout);
    assert!(stdout.contains("  f2*  totp  device 2"), "{stdout}");
    assert!(stdout.contains("  f1   totp  device 1"), "{stdout}");

    let out = bus.run(&["primary", "f9"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no factor with id `f9`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn rename_prints_the_factor_and_refuses_bad_names() {
    require_dbus!();
    let bus = Bus::start(1, true);
    let out = bus.run(&["rename", "f1", "work phone", "--json"], "");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(
        (json["id"].as_str(), json["name"].as_str()),
        (Some("f1"), Some("work phone"))
    );
    for bad in ["", "a\nb"] {
        let out = bus.run(&["rename", "f1", bad], "");
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
    let out = bus.run(&["rename", "f9", "x"], "");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn replacing_a_factor_asks_a_step_up_then_swaps_it() {
    require_dbus!();
    let bus = Bus::start(1, true);
    let out = bus.run(
        &["totp", "add", "--replace", "f9"],
        &format!("{STEP_UP_CODE}\n"),
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stdout), "");
    let out = bus.run(
        &["totp", "add", "--replace", "f1"],
        &format!("{STEP_UP_CODE}\n{GOOD_CODE}\n"),
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{URI}\n"));
    assert!(
        text(&out.stderr).contains("removed f1"),
        "{}",
        text(&out.stderr)
    );
    let out = bus.run(&["status", "--json"], "");
    let json: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    let ids: Vec<&str> = json["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["f1"],
        "the old f1 went, the new one took the next free id"
    );
}

#[test]
fn key_add_asks_a_step_up_code_then_the_pin_from_stdin_and_lists_the_key() {
    let bus = Bus::start(1, true);
    let out = bus.run(
        &["key", "add", "--name", "pin", "--pin-stdin", "--json"],
        &format!("{STEP_UP_CODE}\n4321\n"),
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let added: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (added["kind"].as_str(), added["name"].as_str()),
        (Some("fido2"), Some("pin"))
    );
    assert!(
        text(&out.stderr).contains("Touch your security key now"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !text(&out.stderr).contains("4321"),
        "the PIN is never echoed"
    );

    // With a key, the step-up is a touch: nothing is read from stdin.
    let out = bus.run(&["key", "add", "--name", "spare"], "");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Touch one of your registered keys"),
        "{}",
        text(&out.stderr)
    );

    let out = bus.run(&["key", "list", "--json"], "");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["pin", "spare"], "only keys, not the TOTP factor");
    let out = bus.run(&["key", "list"], "");
    assert!(text(&out.stdout).contains("spare"), "{}", text(&out.stdout));
}

#[test]
fn key_add_in_a_script_fails_clearly_without_the_pin_or_with_a_wrong_one() {
    let bus = Bus::start(0, true);
    let out = bus.run(&["key", "add", "--name", "pin"], "");
    assert_eq!(out.status.code(), Some(2), "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("needs its PIN"),
        "{}",
        text(&out.stderr)
    );
    let out = bus.run(&["key", "add", "--pin-stdin"], "0000\n");
    assert_eq!(out.status.code(), Some(4), "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Wrong PIN"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "");
}

#[test]
fn key_rename_and_remove_only_take_keys() {
    let bus = Bus::start(1, true);
    let out = bus.run(&["key", "rename", "f1", "x"], "");
    assert_eq!(
        out.status.code(),
        Some(2),
        "a TOTP factor is not a key: {}",
        text(&out.stderr)
    );
    let out = bus.run(&["key", "remove", "f1", "--yes"], "");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = bus.run(&["key", "remove", "f1"], "");
    assert_eq!(
        out.status.code(),
        Some(2),
        "needs --yes: {}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("--yes"), "{}", text(&out.stderr));

    let out = bus.run(&["key", "add", "--name", "k"], &format!("{STEP_UP_CODE}\n"));
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let out = bus.run(&["key", "rename", "k2", "office", "--json"], "");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("\"office\""),
        "{}",
        text(&out.stdout)
    );
    let out = bus.run(
        &["key", "remove", "k2", "--yes", "--json"],
        &format!("{STEP_UP_CODE}\n"),
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("\"removed\""),
        "{}",
        text(&out.stdout)
    );
}
