//! The shipped systemd unit, D-Bus activation file and RPM spec, checked with the real tools:
//! `systemd-analyze security --offline=true` (no systemd as PID 1 needed) and `verify`, a
//! private system-type `dbus-daemon` that activates the real `herarxd` from the shipped
//! activation file, and `rpmspec -P`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use herarx_proto::{BUS_NAME, OBJECT_PATH};
use herarx_tests::Bus;
use herarx_tests::paths::workspace_root;

const UNIT: &str = "herarxd.service";
/// What the exposure of the shipped unit must not exceed (issue 6).
const MAX_EXPOSURE: f64 = 2.0;
/// A generous bound on D-Bus activation; DESIGN's target is 50 ms, printed by the test.
const MAX_ACTIVATION: Duration = Duration::from_secs(2);

fn unit_path() -> PathBuf {
    workspace_root().join("packaging/systemd").join(UNIT)
}

fn activation_path() -> PathBuf {
    workspace_root()
        .join("packaging/dbus")
        .join(format!("{BUS_NAME}.service"))
}

fn spec_path() -> PathBuf {
    workspace_root().join("packaging/rpm/herarx.spec")
}

/// `(section, key, value)` of an ini-style file (systemd unit, D-Bus desktop-entry file), in
/// order; comments and blank lines skipped.
fn entries(path: &Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{}: not key=value: {line}", path.display()));
        out.push((
            section.clone(),
            key.trim().to_string(),
            value.trim().to_string(),
        ));
    }
    out
}

fn values<'a>(entries: &'a [(String, String, String)], section: &str, key: &str) -> Vec<&'a str> {
    entries
        .iter()
        .filter(|(s, k, _)| s == section && k == key)
        .map(|(_, _, v)| v.as_str())
        .collect()
}

/// The one value of `key` in `section`.
fn one<'a>(entries: &'a [(String, String, String)], section: &str, key: &str) -> &'a str {
    let v = values(entries, section, key);
    assert_eq!(
        v.len(),
        1,
        "[{section}] {key}= must appear exactly once: {v:?}"
    );
    v[0]
}

/// Runs a tool; a missing tool fails with what to install.
fn run(cmd: &mut Command, package: &str) -> (bool, String) {
    let out = cmd
        .env("SYSTEMD_COLORS", "0")
        .env("SYSTEMD_PAGER", "")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {cmd:?}: {e}; install it (apt-get install {package})")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The number in `→ Overall exposure level for herarxd.service: 0.9 SAFE`.
fn overall_exposure(report: &str) -> Option<f64> {
    let line = report
        .lines()
        .find(|l| l.contains("Overall exposure level for"))?;
    let (_, rest) = line.rsplit_once(": ")?;
    rest.split_whitespace().next()?.parse().ok()
}

#[test]
fn the_unit_s_exposure_is_at_most_two() {
    let (_, report) = run(
        Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--no-pager"])
            .arg(unit_path()),
        "systemd",
    );
    let score = overall_exposure(&report)
        .unwrap_or_else(|| panic!("no overall exposure in the report:\n{report}"));
    println!("systemd-analyze security --offline=true {UNIT}: exposure {score}");
    assert!(
        score <= MAX_EXPOSURE,
        "exposure {score} > {MAX_EXPOSURE}:\n{report}"
    );
}

/// The shipped delivery drop-in opens loopback (and what the admin adds) and nothing else of
/// the hardening: with it, the unit still scores within the bound, and keeps no network
/// beyond what it names.
#[test]
fn the_delivery_drop_in_keeps_the_rest_of_the_hardening() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(unit_path(), dir.path().join(UNIT)).unwrap();
    let dropin = unit_path().parent().unwrap().join("herarxd-delivery.conf");
    let text = std::fs::read_to_string(&dropin).unwrap();
    let active: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(
        active,
        [
            "[Service]",
            "PrivateNetwork=no",
            "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
            "IPAddressDeny=any",
            "IPAddressAllow=localhost",
        ],
        "the drop-in changes only the network settings"
    );
    // The drop-in's lines at the end of [Service]: what systemd merges.
    let merged = dir.path().join(UNIT);
    let unit = std::fs::read_to_string(&merged).unwrap();
    assert!(unit.contains("\n[Install]"), "{unit}");
    let unit = unit.replacen(
        "\n[Install]",
        &format!("{}\n[Install]", active[1..].join("\n")),
        1,
    );
    std::fs::write(&merged, unit).unwrap();
    let (_, report) = run(
        Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--no-pager"])
            .arg(&merged),
        "systemd",
    );
    let score = overall_exposure(&report)
        .unwrap_or_else(|| panic!("no overall exposure in the report:\n{report}"));
    println!("with the delivery drop-in: exposure {score}");
    assert!(
        score <= MAX_EXPOSURE,
        "exposure {score} > {MAX_EXPOSURE}:\n{report}"
    );
    assert!(
        report.contains("IPAddressDeny="),
        "the IP allow list is still evaluated:\n{report}"
    );
    // And it is the drop-in's: loopback only.
    let allow_list = report
        .lines()
        .find(|l| l.contains("IPAddressDeny="))
        .unwrap_or_default();
    assert!(
        allow_list.contains("only localhost"),
        "the allow list is loopback only: {allow_list}"
    );
}

#[test]
fn systemd_analyze_verify_has_nothing_to_say() {
    // The unit as installed, except that ExecStart names the built daemon (verify checks that
    // the binary exists) and the man pages are not looked up (they are installed by the
    // packages, not on this machine).
    let dir = tempfile::tempdir().unwrap();
    let herarxd = herarx_tests::paths::herarxd();
    let text = std::fs::read_to_string(unit_path()).unwrap();
    assert!(text.contains("ExecStart=/usr/sbin/herarxd "), "{text}");
    let text = text.replace(
        "ExecStart=/usr/sbin/herarxd ",
        &format!("ExecStart={} ", herarxd.display()),
    );
    let unit = dir.path().join(UNIT);
    std::fs::write(&unit, text).unwrap();
    let (ok, out) = run(
        Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&unit),
        "systemd",
    );
    // The one thing this machine may lack: the bus's own units (Debian package `dbus`), which
    // Type=dbus depends on.
    let rest: Vec<&str> = out
        .lines()
        .filter(|l| !(l.contains("Unit dbus.") && l.contains("not found")))
        .filter(|l| !l.trim().is_empty())
        .collect();
    if rest.len() < out.lines().filter(|l| !l.trim().is_empty()).count() {
        eprintln!("note: the bus's units are not installed here; verify could not resolve them");
    } else {
        assert!(ok, "systemd-analyze verify failed:\n{out}");
    }
    // verify exits 0 on parse warnings: any line at all is a finding.
    assert!(rest.is_empty(), "systemd-analyze verify:\n{out}");
}

#[test]
fn the_unit_and_the_activation_file_agree_on_the_bus_name_and_the_command() {
    let unit = entries(&unit_path());
    assert_eq!(one(&unit, "Service", "Type"), "dbus");
    assert_eq!(one(&unit, "Service", "BusName"), BUS_NAME);
    let exec_start = one(&unit, "Service", "ExecStart");
    assert!(
        exec_start.starts_with("/usr/sbin/herarxd "),
        "ExecStart={exec_start}"
    );

    // dbus-daemon only activates a system service from a file named after the bus name.
    let act = entries(&activation_path());
    let section = "D-BUS Service";
    assert_eq!(one(&act, section, "Name"), BUS_NAME);
    assert_eq!(one(&act, section, "SystemdService"), UNIT);
    assert_eq!(
        one(&act, section, "Exec"),
        exec_start,
        "without systemd the bus runs Exec=: the same command as the unit"
    );
    assert_eq!(one(&act, section, "User"), one(&unit, "Service", "User"));
    assert!(
        workspace_root()
            .join("packaging/dbus")
            .join(format!("{BUS_NAME}.conf"))
            .exists()
    );
}

#[test]
fn the_unit_keeps_the_hardening_issue_6_asks_for() {
    let unit = entries(&unit_path());
    for (key, want) in [
        ("StateDirectory", "herarx"),
        ("StateDirectoryMode", "0700"),
        ("ConfigurationDirectory", "herarx"),
        ("UMask", "0077"),
        ("LimitCORE", "0"),
        ("User", "root"),
        ("CapabilityBoundingSet", ""),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateNetwork", "yes"),
        ("DevicePolicy", "closed"),
        ("DeviceAllow", "char-hidraw rw"),
        ("RestrictAddressFamilies", "AF_UNIX"),
        ("SystemCallArchitectures", "native"),
        ("MemoryDenyWriteExecute", "yes"),
        ("LockPersonality", "yes"),
        ("ProtectProc", "default"),
        ("ProcSubset", "pid"),
        ("Restart", "on-failure"),
    ] {
        assert_eq!(one(&unit, "Service", key), want, "{key}=");
    }
    let filters = values(&unit, "Service", "SystemCallFilter");
    assert_eq!(filters.first(), Some(&"@system-service"), "{filters:?}");
    assert!(
        values(&unit, "Unit", "Documentation")
            .iter()
            .any(|d| d.split_whitespace().any(|u| u == "man:herarxd(8)"))
    );

    // The credential is documented (commented out: it needs provisioning first) under the name
    // the daemon reads.
    let text = std::fs::read_to_string(unit_path()).unwrap();
    let name = "herarx-store-key";
    assert!(
        text.contains(&format!(
            "#LoadCredentialEncrypted={name}:/etc/credstore.encrypted/{name}"
        )),
        "{text}"
    );
    assert!(text.contains(&format!("systemd-creds encrypt --name={name}")));
    let keys =
        std::fs::read_to_string(workspace_root().join("herarxd/src/crypto/master_key.rs")).unwrap();
    assert!(
        keys.contains(&format!("CREDENTIAL_NAME: &str = \"{name}\"")),
        "herarxd reads another credential name"
    );
}

/// The bus and whatever it activated; both stopped on drop (by pid, checked to be herarxd).
struct ActivationBus {
    bus: Bus,
    address: String,
    activated: Option<u32>,
}

impl ActivationBus {
    /// The shipped policy applies; services are activated from `servicedir`.
    fn start(servicedir: &Path, socket: &Path) -> ActivationBus {
        let bus = Bus::start_activating(servicedir, socket);
        ActivationBus {
            address: bus.address.clone(),
            bus,
            activated: None,
        }
    }

    fn log(&self) -> String {
        self.bus.log()
    }

    /// SIGTERM to the activated daemon (only if that pid still runs `herarxd`), then waits for
    /// the name to go.
    fn stop_activated(&mut self) {
        let Some(pid) = self.activated.take() else {
            return;
        };
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
        if exe.file_name().is_some_and(|n| n == "herarxd") {
            // SAFETY: a plain kill(2) on the pid the bus reported for our daemon.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

impl Drop for ActivationBus {
    fn drop(&mut self) {
        // The bus itself is stopped by its own drop.
        self.stop_activated();
    }
}

/// What one activation measured.
struct Activation {
    had_owner_before: bool,
    first_answer: Duration,
    warm_answer: Duration,
    pid: u32,
}

async fn activate(address: &str) -> zbus::Result<Activation> {
    let conn = zbus::connection::Builder::address(address)
        .method_timeout(Duration::from_secs(25))
        .build()
        .await?;
    let dbus = zbus::fdo::DBusProxy::new(&conn).await?;
    let name = zbus::names::BusName::try_from(BUS_NAME)?;
    let had_owner_before = dbus.name_has_owner(name.clone()).await?;
    let ping = || {
        conn.call_method(
            Some(BUS_NAME),
            OBJECT_PATH,
            Some("org.freedesktop.DBus.Peer"),
            "Ping",
            &(),
        )
    };
    let start = Instant::now();
    ping().await?;
    let first_answer = start.elapsed();
    let start = Instant::now();
    ping().await?;
    let warm_answer = start.elapsed();
    let pid = dbus.get_connection_unix_process_id(name).await?;
    Ok(Activation {
        had_owner_before,
        first_answer,
        warm_answer,
        pid,
    })
}

/// A private bus whose service directory holds the shipped activation file, with `Exec=` run
/// through `wrapper` (if any) and pointing at the built daemon, its own config, state directory,
/// log socket and this bus (an activated service is told the bus only through
/// DBUS_STARTER_ADDRESS, which herarxd does not read: it serves the system bus unless --bus says
/// otherwise).
struct Activatable {
    // Field order is drop order: the bus (and the daemon it activated) before the log socket
    // and the directory.
    bus: ActivationBus,
    logs: herarx_tests::logs::LogCapture,
    state: PathBuf,
    herarxd: PathBuf,
    _dir: tempfile::TempDir,
}

/// Writes a wrapper for `Exec=` into the test's directory, given it and the state directory.
type Wrapper<'a> = dyn Fn(&Path, &Path) -> PathBuf + 'a;

impl Activatable {
    fn start(wrapper: Option<&Wrapper<'_>>) -> Activatable {
        let dir = tempfile::Builder::new()
            .prefix("hx-activation-")
            .tempdir()
            .unwrap();
        // The test users (herarxctl, the PAM module's callers) reach the bus socket.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let servicedir = dir.path().join("system-services");
        std::fs::create_dir(&servicedir).unwrap();
        let socket = dir.path().join("system_bus_socket");
        let config = dir.path().join("herarx.toml");
        std::fs::write(&config, "version = 1\n").unwrap();
        let state = dir.path().join("state");
        let logs = herarx_tests::logs::LogCapture::start(dir.path().join("log.sock"));
        let herarxd = herarx_tests::paths::herarxd();
        let exec = format!(
            "{}{} --config {} --state-dir {} --bus unix:path={} --log-socket {}",
            wrapper
                .map(|w| format!("{} ", w(dir.path(), &state).display()))
                .unwrap_or_default(),
            herarxd.display(),
            config.display(),
            state.display(),
            socket.display(),
            logs.path.display()
        );
        assert_eq!(
            exec.split_whitespace().count(),
            9 + usize::from(wrapper.is_some()),
            "a path with a space: {exec}"
        );
        let shipped = std::fs::read_to_string(activation_path()).unwrap();
        assert_eq!(
            shipped.lines().filter(|l| l.starts_with("Exec=")).count(),
            1
        );
        let file: String = shipped
            .lines()
            .map(|l| {
                if l.starts_with("Exec=") {
                    format!("Exec={exec}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(servicedir.join(format!("{BUS_NAME}.service")), file).unwrap();
        let bus = ActivationBus::start(&servicedir, &socket);
        Activatable {
            bus,
            logs,
            state,
            herarxd,
            _dir: dir,
        }
    }

    /// Makes the first call, checks that it started the built herarxd, prints the timing.
    fn activate(&mut self, round: &str) -> Activation {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let m = match rt.block_on(activate(&self.bus.address)) {
            Ok(m) => m,
            Err(e) => panic!(
                "activation ({round}) failed: {e}\nbus log:\n{}\nherarxd log: {:?}",
                self.bus.log(),
                self.logs.lines()
            ),
        };
        self.bus.activated = Some(m.pid);
        println!(
            "D-Bus activation of {BUS_NAME} ({round}): first answer {:.1} ms after the call \
             (DESIGN target <= 50 ms); a call to the running daemon {:.3} ms",
            m.first_answer.as_secs_f64() * 1000.0,
            m.warm_answer.as_secs_f64() * 1000.0
        );
        assert!(
            !m.had_owner_before,
            "nobody may own the name before the call"
        );
        let exe = std::fs::read_link(format!("/proc/{}/exe", m.pid)).unwrap();
        assert_eq!(
            exe.canonicalize().unwrap(),
            self.herarxd.canonicalize().unwrap(),
            "the name's owner is not the built herarxd"
        );
        // It serves the state directory the activation file names.
        assert!(self.state.join("herarx.db").exists());
        assert!(
            m.first_answer <= MAX_ACTIVATION,
            "activation took {:?}\n{}",
            m.first_answer,
            self.bus.log()
        );
        m
    }

    fn stop(&mut self) {
        self.bus.stop_activated();
        assert!(
            !herarx_tests::daemon::name_has_owner(&self.bus.address),
            "herarxd did not release the name on SIGTERM"
        );
    }
}

#[test]
fn the_first_call_starts_herarxd_through_d_bus_activation() {
    let mut a = Activatable::start(None);
    // First activation: the daemon creates its store and key (the first start after install);
    // second: it opens them (every boot after that).
    a.activate("new store");
    a.stop();
    a.activate("existing store");
    a.stop();
    let log = a.bus.log();
    assert_eq!(
        log.matches(&format!("Successfully activated service '{BUS_NAME}'"))
            .count(),
        2,
        "{log}"
    );
}

/// Loads a seccomp allow-list (EPERM for the rest, as `SystemCallErrorNumber=EPERM`) plus the
/// rules of `MemoryDenyWriteExecute=` through libseccomp, then executes the daemon.
/// Usage: `python3 FILE SYSCALL,SYSCALL,... PROGRAM ARGS...`.
const SECCOMP_EXEC: &str = r#"import ctypes, errno, os, sys
lib = ctypes.CDLL("libseccomp.so.2")
lib.seccomp_init.restype = ctypes.c_void_p
lib.seccomp_init.argtypes = [ctypes.c_uint32]
lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
class Cmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("a", ctypes.c_uint64), ("b", ctypes.c_uint64)]
lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(Cmp)]
lib.seccomp_load.argtypes = [ctypes.c_void_p]
ALLOW, DENY, MASKED_EQ, W, X = 0x7FFF0000, 0x00050000 | errno.EPERM, 7, 2, 4
ctx = lib.seccomp_init(DENY)
def allow(name, cmps=()):
    nr = lib.seccomp_syscall_resolve_name(name.encode())
    if nr < 0:
        return
    arr = (Cmp * max(1, len(cmps)))(*cmps)
    if lib.seccomp_rule_add_array(ctx, ALLOW, nr, len(cmps), arr) != 0:
        sys.exit("seccomp_rule_add " + name)
for name in sorted(set(sys.argv[1].split(","))):
    if name == "mmap":
        for v in (0, W, X):
            allow(name, [Cmp(2, MASKED_EQ, W | X, v)])
    elif name in ("mprotect", "pkey_mprotect"):
        allow(name, [Cmp(2, MASKED_EQ, X, 0)])
    else:
        allow(name)
if lib.seccomp_load(ctx) != 0:
    sys.exit("seccomp_load failed")
os.execv(sys.argv[2], sys.argv[2:])
"#;

/// The shipped unit's sandbox, as far as it can be built without systemd as PID 1: a private
/// network namespace (PrivateNetwork=), `/proc` with processes only (ProcSubset=pid), a
/// read-only root except the state directory
/// (ProtectSystem=strict + StateDirectory=), no capabilities (CapabilityBoundingSet=),
/// no_new_privs, the unit's system call filter and MemoryDenyWriteExecute=.
const SANDBOX_SH: &str = r#"#!/bin/sh
export HX_STATE="@STATE@" HX_FILTER="@FILTER@" HX_ALLOWED="@ALLOWED@"
exec unshare --net --mount --pid --fork --propagation private /bin/sh -c '
  set -e
  mount -t proc -o subset=pid proc /proc
  mkdir -p -m 0700 "$HX_STATE"
  mount --bind "$HX_STATE" "$HX_STATE"
  mount -o remount,bind,ro /
  exec setpriv --bounding-set=-all --inh-caps=-all --no-new-privs python3 "$HX_FILTER" "$HX_ALLOWED" "$@"
' sandbox "$@"
"#;

/// The system calls the unit's `SystemCallFilter=` lines allow, expanded with the groups this
/// systemd knows (`systemd-analyze syscall-filter`).
fn unit_syscall_allow_list() -> Vec<String> {
    let (ok, listing) = run(
        Command::new("systemd-analyze").args(["syscall-filter", "--no-pager"]),
        "systemd",
    );
    assert!(ok, "{listing}");
    let mut groups: std::collections::HashMap<String, Vec<String>> = Default::default();
    let mut current = None;
    for line in listing.lines() {
        let item = line.trim();
        if item.is_empty() || item.starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') && item.starts_with('@') {
            current = Some(item.to_string());
            groups.insert(item.to_string(), Vec::new());
        } else if let Some(g) = &current {
            groups.get_mut(g).unwrap().push(item.to_string());
        }
    }
    fn expand(
        item: &str,
        groups: &std::collections::HashMap<String, Vec<String>>,
    ) -> std::collections::BTreeSet<String> {
        if item.starts_with('@') {
            let members = groups
                .get(item)
                .unwrap_or_else(|| panic!("unknown group {item}"));
            members.iter().flat_map(|m| expand(m, groups)).collect()
        } else {
            [item.to_string()].into()
        }
    }
    let unit = entries(&unit_path());
    assert_eq!(one(&unit, "Service", "SystemCallErrorNumber"), "EPERM");
    let mut lines = values(&unit, "Service", "SystemCallFilter").into_iter();
    let first = lines.next().expect("a SystemCallFilter= line");
    assert!(!first.starts_with('~'), "the filter must be an allow-list");
    let mut allowed: std::collections::BTreeSet<String> = first
        .split_whitespace()
        .flat_map(|i| expand(i, &groups))
        .collect();
    for line in lines {
        match line.strip_prefix('~') {
            Some(denied) => {
                for i in denied.split_whitespace() {
                    for s in expand(i, &groups) {
                        allowed.remove(&s);
                    }
                }
            }
            None => allowed.extend(line.split_whitespace().flat_map(|i| expand(i, &groups))),
        }
    }
    assert!(allowed.len() > 100, "{allowed:?}");
    allowed.into_iter().collect()
}

/// What /proc says about a process's privileges.
fn status_field(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

#[test]
fn herarxd_enrols_and_logs_in_under_the_unit_s_sandbox() {
    let allowed = unit_syscall_allow_list().join(",");
    let (ok, out) = run(
        Command::new("python3").args(["-c", "import ctypes; ctypes.CDLL('libseccomp.so.2')"]),
        "python3 libseccomp2",
    );
    assert!(ok, "the sandbox needs python3 and libseccomp.so.2: {out}");
    let mut a = Activatable::start(Some(&|dir: &Path, state: &Path| {
        let filter = dir.join("seccomp_exec.py");
        std::fs::write(&filter, SECCOMP_EXEC).unwrap();
        let script = dir.join("sandbox.sh");
        std::fs::write(
            &script,
            SANDBOX_SH
                .replace("@STATE@", &state.display().to_string())
                .replace("@FILTER@", &filter.display().to_string())
                .replace("@ALLOWED@", &allowed),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        script
    }));
    let m = a.activate("sandboxed");
    for (field, want) in [
        ("CapEff", "0000000000000000"),
        ("CapPrm", "0000000000000000"),
        ("CapBnd", "0000000000000000"),
        ("NoNewPrivs", "1"),
        ("Seccomp", "2"),
    ] {
        assert_eq!(status_field(m.pid, field), want, "{field} of herarxd");
    }

    // A real user enrols through herarxctl, and logs in through pamtester and the built module.
    let (bus, address) = (&a.bus, a.bus.address.clone());
    let user = herarx_tests::TestUser::create("sbx");
    let e = herarx_tests::ctl::enrol_totp(&user, &address, "phone", None);
    let service = herarx_tests::pamconf::PamDService::new(&format!(
        "auth required pam_permit.so\n{}account required pam_permit.so\n",
        herarx_tests::pamconf::module_line(&address, "")
    ));
    let right = herarx_tests::totp::code_at_step(&e.secret, e.confirm_step + 1);
    let bad = herarx_tests::totp::wrong_code(&[&right]);
    let (ok, out) = service.pamtester(&user.name, &[&bad, &bad, &bad]);
    assert!(!ok, "a wrong code passed: {out}");
    let (ok, out) = service.pamtester(&user.name, &[&right]);
    assert!(
        ok,
        "the right code failed under the sandbox: {out}\nbus log:\n{}\nherarxd log: {:?}",
        bus.log(),
        a.logs.lines()
    );
    a.stop();
}

/// Section headers of a spec file: what ends `%files`.
const SPEC_SECTIONS: [&str; 15] = [
    "%package",
    "%description",
    "%prep",
    "%build",
    "%install",
    "%check",
    "%clean",
    "%pre",
    "%post",
    "%preun",
    "%postun",
    "%pretrans",
    "%posttrans",
    "%files",
    "%changelog",
];

/// The paths in the `%files` sections of the expanded spec, without their directives
/// (`%config(noreplace)`, `%dir`, `%attr(…)`).
fn files_section(expanded: &str) -> Vec<String> {
    let mut in_files = false;
    let mut out = Vec::new();
    for line in expanded.lines().map(str::trim) {
        let first = line.split_whitespace().next().unwrap_or("");
        if SPEC_SECTIONS.contains(&first) || first.contains("trigger") {
            in_files = first == "%files";
            continue;
        }
        // %license and %doc name files of the source tree (rpm installs them itself).
        let source_relative = first == "%license" || first == "%doc";
        if in_files && !line.is_empty() && !line.starts_with('#') && !source_relative {
            out.push(line.rsplit(' ').next().unwrap_or(line).to_string());
        }
    }
    out
}

#[test]
fn the_rpm_spec_parses_and_ships_what_the_issue_lists() {
    let spec = spec_path();
    let (ok, expanded) = run(Command::new("rpmspec").arg("-P").arg(&spec), "rpm");
    assert!(ok, "rpmspec -P failed:\n{expanded}");
    let (ok, version) = run(
        Command::new("rpmspec")
            .args(["-q", "--srpm", "--qf", "%{version}"])
            .arg(&spec),
        "rpm",
    );
    assert!(ok, "{version}");
    assert_eq!(
        version.trim(),
        env!("CARGO_PKG_VERSION"),
        "spec Version: differs from the workspace's version"
    );
    for want in ["BuildRequires:  cargo", "BuildRequires:  pam-devel"] {
        assert!(expanded.contains(want), "{want} missing");
    }
    let license = expanded
        .lines()
        .find(|l| l.trim_start().starts_with("%license"))
        .expect("%license in %files");
    for name in ["LICENSE-MIT", "LICENSE-APACHE"] {
        assert!(license.split_whitespace().any(|w| w == name), "{license}");
        assert!(
            workspace_root().join(name).is_file(),
            "{name} missing from the tree"
        );
    }
    let files = files_section(&expanded);
    for f in &files {
        assert!(
            f.starts_with('/') && !f.contains("%{"),
            "unexpanded %files entry {f}"
        );
    }
    for want in [
        "/usr/sbin/herarxd",
        "/usr/bin/herarxctl",
        "/security/pam_herarx.so",
        "/usr/lib/systemd/system/herarxd.service",
        "/usr/share/dbus-1/system.d/org.herarx.Herarx1.conf",
        "/usr/share/dbus-1/system-services/org.herarx.Herarx1.service",
        "/etc/herarx/herarx.toml",
        "/var/lib/herarx",
        "/man8/herarxd.8*",
        "/man8/pam_herarx.8*",
        "/man1/herarxctl.1*",
        "/man5/herarx.toml.5*",
        "/bash-completion/completions/herarxctl",
        "/zsh/site-functions/_herarxctl",
        "/fish/vendor_completions.d/herarxctl.fish",
    ] {
        assert!(
            files.iter().any(|f| f.ends_with(want)),
            "%files lacks {want}: {files:?}"
        );
    }
    assert!(
        expanded.contains("%config(noreplace) /etc/herarx/herarx.toml"),
        "the config must be %config(noreplace)"
    );
    for scriptlet in [
        "%systemd_post herarxd.service",
        "%systemd_preun herarxd.service",
        "%systemd_postun_with_restart herarxd.service",
    ] {
        let raw = std::fs::read_to_string(&spec).unwrap();
        assert!(raw.contains(scriptlet), "{scriptlet} missing");
    }

    // Every file %install takes from the checkout exists.
    let raw = std::fs::read_to_string(&spec).unwrap();
    let sources: Vec<&str> = raw
        .split_whitespace()
        .filter(|w| w.starts_with("packaging/") || *w == "README.md")
        .collect();
    assert!(sources.len() >= 10, "{sources:?}");
    for s in sources {
        assert!(
            workspace_root().join(s).exists(),
            "the spec installs {s}, which is not in the tree"
        );
    }
}
