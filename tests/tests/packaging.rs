//! The Debian package and the from-source install, on this (disposable, root) machine: lintian,
//! the file list, a real `dpkg -i` with the real system bus starting herarxd by D-Bus activation,
//! a real user enrolling and logging in through `pamtester` with the installed module, the
//! pam-auth-update profile switched on and off (inside a private mount namespace, so the
//! machine's PAM files are never touched), refusal to remove the module while a PAM file loads
//! it, purge, and `scripts/install.sh` / `scripts/uninstall.sh --purge` leaving nothing behind.
//!
//! The .deb is built beforehand by `scripts/build-deb.sh` (scripts/test.sh does). Everything runs
//! in one test, because it all shares the machine's package database, bus and PAM files.

use herarx_tests::pamconf::PamDService;
use herarx_tests::totp::{code_at_step, now_step, secret_of, wrong_code};
use herarx_tests::{TestUser, paths, users};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SBIN: &str = "/usr/sbin/herarxd";
const CTL: &str = "/usr/bin/herarxctl";

fn sh(cmd: &mut Command) -> Output {
    cmd.env("DEBIAN_FRONTEND", "noninteractive")
        .env_remove("DBUS_SYSTEM_BUS_ADDRESS")
        .output()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(cmd: &mut Command) -> String {
    let o = sh(cmd);
    assert!(o.status.success(), "{cmd:?} failed:\n{}", text(&o));
    text(&o)
}

fn multiarch() -> String {
    let o = sh(Command::new("dpkg-architecture").arg("-qDEB_HOST_MULTIARCH"));
    let s = String::from_utf8_lossy(&o.stdout).trim().to_string();
    if o.status.success() && !s.is_empty() {
        return s;
    }
    let o = sh(Command::new("gcc").arg("-print-multiarch"));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Every file the package ships, with its mode (written out here, independently of
/// scripts/lib/layout.sh, which both build-deb.sh and install.sh use).
fn expected_files() -> BTreeMap<String, &'static str> {
    let ma = multiarch();
    let mut m = BTreeMap::new();
    let files: Vec<(String, &str)> = vec![
        (
            format!("/usr/lib/{ma}/security/pam_herarx.so"),
            "-rw-r--r--",
        ),
        (SBIN.into(), "-rwxr-xr-x"),
        (CTL.into(), "-rwxr-xr-x"),
        ("/lib/systemd/system/herarxd.service".into(), "-rw-r--r--"),
        (
            "/usr/share/dbus-1/system.d/org.herarx.Herarx1.conf".into(),
            "-rw-r--r--",
        ),
        (
            "/usr/share/dbus-1/system-services/org.herarx.Herarx1.service".into(),
            "-rw-r--r--",
        ),
        ("/usr/share/pam-configs/herarx".into(), "-rw-r--r--"),
        ("/etc/herarx/herarx.toml".into(), "-rw-r--r--"),
        ("/usr/share/man/man1/herarxctl.1.gz".into(), "-rw-r--r--"),
        ("/usr/share/man/man5/herarx.toml.5.gz".into(), "-rw-r--r--"),
        ("/usr/share/man/man8/herarxd.8.gz".into(), "-rw-r--r--"),
        ("/usr/share/man/man8/pam_herarx.8.gz".into(), "-rw-r--r--"),
        (
            "/usr/share/bash-completion/completions/herarxctl".into(),
            "-rw-r--r--",
        ),
        (
            "/usr/share/zsh/vendor-completions/_herarxctl".into(),
            "-rw-r--r--",
        ),
        (
            "/usr/share/fish/vendor_completions.d/herarxctl.fish".into(),
            "-rw-r--r--",
        ),
        ("/usr/share/doc/herarx/copyright".into(), "-rw-r--r--"),
        (
            "/usr/share/doc/herarx/examples/herarxd-delivery.conf".into(),
            "-rw-r--r--",
        ),
        (
            "/usr/share/doc/herarx/changelog.Debian.gz".into(),
            "-rw-r--r--",
        ),
        ("/usr/share/lintian/overrides/herarx".into(), "-rw-r--r--"),
    ];
    for (p, mode) in files {
        m.insert(p, mode);
    }
    m
}

/// The newest `target/debian/herarx_*_<arch>.deb`.
fn find_deb() -> PathBuf {
    let dir = paths::workspace_root().join("target/debian");
    let arch = ok(Command::new("dpkg").arg("--print-architecture"))
        .trim()
        .to_string();
    let newest = std::fs::read_dir(&dir).ok().and_then(|rd| {
        rd.filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                let n = p.file_name().unwrap_or_default().to_string_lossy();
                n.starts_with("herarx_") && n.ends_with(&format!("_{arch}.deb"))
            })
            .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
    });
    newest.unwrap_or_else(|| {
        panic!(
            "no herarx_*_{arch}.deb in {}: build it first with scripts/build-deb.sh \
             (scripts/test.sh does)",
            dir.display()
        )
    })
}

fn package_installed() -> bool {
    let o = sh(Command::new("dpkg-query").args(["-W", "-f=${Status}", "herarx"]));
    String::from_utf8_lossy(&o.stdout).contains("install ok installed")
}

fn pam_checksums() -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    for e in std::fs::read_dir("/etc/pam.d")
        .expect("read /etc/pam.d")
        .flatten()
    {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with("common-") {
            m.insert(name, std::fs::read(e.path()).expect("read common-*"));
        }
    }
    m
}

/// Pids of processes running the installed daemon (also after its file was replaced).
fn installed_daemons() -> Vec<i32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(exe) = std::fs::read_link(e.path().join("exe")) {
            let exe = exe.to_string_lossy().to_string();
            if exe == SBIN || exe == format!("{SBIN} (deleted)") {
                pids.push(pid);
            }
        }
    }
    pids
}

fn kill_installed_daemons() {
    for pid in installed_daemons() {
        // SAFETY: plain kill(2) of a daemon this test's install started.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    wait_until(Duration::from_secs(5), || installed_daemons().is_empty());
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `pid` runs (a zombie does not: PID 1 here may be slow to reap a daemon that forked).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(|st| st != "Z"))
        })
        .unwrap_or(false)
}

fn bus_runs() -> bool {
    Path::new("/run/dbus/system_bus_socket").exists()
        && sh(Command::new("dbus-send").args([
            "--system",
            "--print-reply",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.GetId",
        ]))
        .status
        .success()
}

fn name_has_owner() -> bool {
    let o = sh(Command::new("dbus-send").args([
        "--system",
        "--print-reply",
        "--dest=org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus.NameHasOwner",
        "string:org.herarx.Herarx1",
    ]));
    String::from_utf8_lossy(&o.stdout).contains("boolean true")
}

/// The machine's system bus: the one that runs, or one started here (`dbus-daemon --system`,
/// as its package would) and stopped by its pid when dropped.
struct SystemBus {
    started: Option<i32>,
}

impl SystemBus {
    fn ensure() -> SystemBus {
        if bus_runs() {
            return SystemBus { started: None };
        }
        // A bus killed earlier leaves its socket and pid file; dbus-daemon refuses a pid file.
        let _ = std::fs::remove_file("/run/dbus/system_bus_socket");
        let _ = std::fs::remove_file("/run/dbus/pid");
        std::fs::create_dir_all("/run/dbus").expect("mkdir /run/dbus");
        let out = ok(Command::new("dbus-daemon").args(["--system", "--fork", "--print-pid"]));
        let pid: i32 = out
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("dbus-daemon --print-pid said {out:?}"));
        let bus = SystemBus { started: Some(pid) };
        assert!(
            wait_until(Duration::from_secs(5), bus_runs),
            "the system bus did not come up"
        );
        bus
    }
}

impl Drop for SystemBus {
    fn drop(&mut self) {
        if let Some(pid) = self.started {
            // SAFETY: kill(2) of the bus this test started, by its pid.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            wait_until(Duration::from_secs(5), || !alive(pid));
            let _ = std::fs::remove_file("/run/dbus/system_bus_socket");
            let _ = std::fs::remove_file("/run/dbus/pid");
        }
    }
}

/// Purges the package (and stops its daemon) when dropped, also after a failed assertion.
struct PackageGuard;

impl Drop for PackageGuard {
    fn drop(&mut self) {
        if package_installed() {
            let _ = sh(Command::new("dpkg").args(["--purge", "herarx"]));
        }
        kill_installed_daemons();
    }
}

/// Undoes scripts/install.sh when dropped.
struct SourceInstallGuard;

impl Drop for SourceInstallGuard {
    fn drop(&mut self) {
        if Path::new(SBIN).exists() && !package_installed() {
            let _ = sh(
                Command::new(paths::workspace_root().join("scripts/uninstall.sh")).arg("--purge"),
            );
        }
        kill_installed_daemons();
    }
}

/// `herarxctl totp add` as `user` on the real system bus (no --bus): reads the URI, confirms
/// with oathtool's code. Returns (secret, confirming step).
fn enrol(user: &TestUser) -> (String, u64) {
    let mut child = users::command_as(Some(user), CTL)
        .args(["totp", "add", "--name", "phone"])
        .env_remove("DBUS_SYSTEM_BUS_ADDRESS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run herarxctl totp add");
    let mut input = child.stdin.take().expect("stdin");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut uri = String::new();
    out.read_line(&mut uri).expect("read the URI line");
    let uri = uri.trim().to_string();
    if !uri.starts_with("otpauth://totp/") {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        panic!("herarxctl on the system bus printed {uri:?}, not a URI: {err}");
    }
    let secret = secret_of(&uri);
    let step = now_step();
    writeln!(input, "{}", code_at_step(&secret, step)).expect("write code");
    drop(input);
    let mut rest = String::new();
    let _ = out.read_to_string(&mut rest);
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(
        child.wait().expect("wait herarxctl").success(),
        "enrolment on the system bus failed: {err}"
    );
    (secret, step)
}

/// `dpkg -c`: path -> mode string, regular files only.
fn deb_files(deb: &Path) -> BTreeMap<String, (String, String)> {
    let listing = ok(Command::new("dpkg").arg("-c").arg(deb));
    let mut files = BTreeMap::new();
    for line in listing.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 || !f[0].starts_with('-') {
            continue;
        }
        let path = f[5].trim_start_matches('.').to_string();
        files.insert(path, (f[0].to_string(), f[1].to_string()));
    }
    files
}

fn lintian(deb: &Path) {
    let o = sh(Command::new("lintian")
        .args(["--fail-on", "error", "--no-tag-display-limit"])
        .arg(deb));
    let out = text(&o);
    assert!(o.status.success(), "lintian found errors:\n{out}");
    // Accepted ones are overridden in packaging/debian/lintian-overrides (with the reason);
    // anything else is shown here for whoever reads the log.
    for l in out.lines().filter(|l| l.starts_with("W:")) {
        eprintln!("lintian warning: {l}");
    }
}

fn file_list(deb: &Path) {
    let files = deb_files(deb);
    let mut problems = Vec::new();
    for (path, mode) in expected_files() {
        match files.get(&path) {
            None => problems.push(format!("missing {path}")),
            Some((m, owner)) => {
                if m != mode {
                    problems.push(format!("{path}: mode {m}, want {mode}"));
                }
                if owner != "root/root" {
                    problems.push(format!("{path}: owner {owner}, want root/root"));
                }
            }
        }
    }
    for path in files.keys() {
        if !expected_files().contains_key(path) {
            problems.push(format!("unexpected file {path}"));
        }
    }
    assert!(
        problems.is_empty(),
        "dpkg -c {}:\n{}",
        deb.display(),
        problems.join("\n")
    );
    let info = ok(Command::new("dpkg-deb").arg("-I").arg(deb).arg("conffiles"));
    assert_eq!(info.trim(), "/etc/herarx/herarx.toml", "conffiles");
    let control = ok(Command::new("dpkg-deb").arg("-f").arg(deb));
    for want in [
        "Package: herarx",
        "Section: admin",
        "Priority: optional",
        "libpam0g",
        "libc6",
        "dbus-system-bus | dbus",
        "libpam-runtime (>= 1.0.1-6)",
    ] {
        assert!(control.contains(want), "control lacks {want:?}:\n{control}");
    }
}

/// Shell prelude for the pam-auth-update checks: the machine's PAM state (/etc/pam.d,
/// /var/lib/pam, debconf's database) is copied and bind-mounted over itself in the private
/// mount namespace the script runs in, so the real files are never touched; then the profile
/// is enabled there, with the previous common-auth kept in "$t/before".
const PRIVATE_PAM_ENABLED: &str = r#"
set -e
t=$(mktemp -d)
for d in /etc/pam.d /var/lib/pam /var/cache/debconf; do
  mkdir -p "$t$d"; cp -a "$d/." "$t$d/"; mount --bind "$t$d" "$d"
done
cp /etc/pam.d/common-auth "$t/before"
pam-auth-update --enable herarx >/dev/null
"#;

/// pam-auth-update with the profile enabled and then removed, inside a private mount namespace
/// over copies of /etc/pam.d, /var/lib/pam and debconf's database: common-auth gets the module
/// after pam_unix, then is byte-identical to before.
fn pam_auth_update_in_namespace() {
    let script = PRIVATE_PAM_ENABLED.to_string()
        + r#"echo "--- enabled"
grep -v '^#' /etc/pam.d/common-auth
pam-auth-update --package --remove herarx >/dev/null
echo "--- removed"
if cmp -s "$t/before" /etc/pam.d/common-auth; then echo IDENTICAL; else diff "$t/before" /etc/pam.d/common-auth || true; fi
umount /etc/pam.d /var/lib/pam /var/cache/debconf
rm -rf "$t"
"#;
    let out =
        ok(Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", &script]));
    let enabled = out
        .split("--- enabled")
        .nth(1)
        .and_then(|s| s.split("--- removed").next())
        .unwrap_or_default();
    let lines: Vec<&str> = enabled.lines().collect();
    let unix = lines.iter().position(|l| l.contains("pam_unix.so"));
    let herarx = lines
        .iter()
        .position(|l| l.split_whitespace().any(|w| w == "pam_herarx.so"));
    assert!(
        matches!((unix, herarx), (Some(u), Some(h)) if h > u),
        "with the profile enabled, common-auth should load pam_herarx.so after pam_unix:\n{enabled}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["auth", "required", "pam_herarx.so"]),
        "the profile's line is `auth required pam_herarx.so`:\n{enabled}"
    );
    assert!(
        out.trim_end().ends_with("IDENTICAL"),
        "after --remove, common-auth differs from before:\n{out}"
    );
}

fn snapshot(dirs: &[&str]) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for d in dirs {
        let o = sh(Command::new("find").arg(d));
        for l in String::from_utf8_lossy(&o.stdout).lines() {
            all.insert(l.to_string());
        }
    }
    all
}

/// A from-source installation (`scripts/install.sh`, the README's first command) found on the
/// machine: uninstalled for the test with its configuration and factor store renamed aside,
/// and put back afterwards (also when the test fails), so that a newcomer can run the README's
/// two commands in order and no factor store is ever purged.
struct SourceInstall {
    saved: Vec<(PathBuf, PathBuf)>,
}

impl SourceInstall {
    const KEPT: [&str; 2] = ["/etc/herarx", "/var/lib/herarx"];

    fn set_aside() -> Option<SourceInstall> {
        let present = Path::new(SBIN).exists() || Self::KEPT.iter().any(|p| Path::new(p).exists());
        if !present {
            return None;
        }
        // uninstall.sh stops the daemon and removes the files but keeps the configuration and
        // the store; it refuses (changing nothing) while a PAM file loads the module.
        if Path::new(SBIN).exists() {
            let out = Command::new(paths::workspace_root().join("scripts/uninstall.sh"))
                .output()
                .expect("run scripts/uninstall.sh");
            assert!(
                out.status.success(),
                "Herarx is installed here and could not be set aside for the packaging test:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let saved = Self::KEPT
            .iter()
            .filter(|p| Path::new(p).exists())
            .map(|p| {
                let (from, to) = (
                    PathBuf::from(p),
                    PathBuf::from(format!("{p}.herarx-test-saved")),
                );
                std::fs::rename(&from, &to).expect("set the installed store aside");
                (from, to)
            })
            .collect();
        eprintln!("packaging: the installed Herarx is set aside and will be put back");
        Some(SourceInstall { saved })
    }
}

impl Drop for SourceInstall {
    fn drop(&mut self) {
        for (original, saved) in &self.saved {
            let _ = std::fs::remove_dir_all(original);
            if let Err(e) = std::fs::rename(saved, original) {
                eprintln!(
                    "packaging: could not put {} back from {}: {e}",
                    original.display(),
                    saved.display()
                );
            }
        }
        let reinstalled = Command::new(paths::workspace_root().join("scripts/install.sh"))
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !reinstalled {
            eprintln!("packaging: could not reinstall Herarx: run scripts/install.sh");
        }
    }
}

#[test]
fn debian_package_and_source_install() {
    let started = Instant::now();
    assert!(
        unsafe { libc::geteuid() } == 0,
        "the packaging test installs a package: run it as root (scripts/test.sh)"
    );
    assert!(
        !package_installed(),
        "the herarx package is installed on this machine: the packaging test installs and purges \
         it, which would delete its configuration and factor store. Run it on a disposable \
         machine (CI), or remove the package first (apt purge herarx)."
    );
    // A source install (the README's first command) is set aside and put back afterwards.
    let _set_aside = SourceInstall::set_aside();
    let deb = find_deb();
    let pam_before = pam_checksums();
    let ma = multiarch();
    let module = format!("/usr/lib/{ma}/security/pam_herarx.so");

    // (a) lintian, (b) the file list.
    lintian(&deb);
    file_list(&deb);

    eprintln!(
        "packaging: lintian and dpkg -c done at {:?}",
        started.elapsed()
    );
    // (c) install; the real system bus activates the daemon; a real user enrols and logs in.
    let helper = std::fs::metadata("/usr/lib/dbus-1.0/dbus-daemon-launch-helper")
        .expect("dbus-daemon-launch-helper (package dbus) is needed for D-Bus activation");
    assert!(
        helper.permissions().mode() & 0o4000 != 0,
        "dbus-daemon-launch-helper must be setuid root"
    );
    let _bus = SystemBus::ensure();
    {
        let _package = PackageGuard;
        ok(Command::new("dpkg").arg("-i").arg(&deb));
        assert_eq!(pam_checksums(), pam_before, "installing changed /etc/pam.d");
        let state = std::fs::metadata("/var/lib/herarx").expect("postinst made /var/lib/herarx");
        assert_eq!(
            state.permissions().mode() & 0o7777,
            0o700,
            "/var/lib/herarx"
        );
        for bin in [SBIN, CTL, module.as_str()] {
            let sections = ok(Command::new("readelf").args(["-S", bin]));
            assert!(!sections.contains(".symtab"), "{bin} is not stripped");
        }
        if !Path::new("/run/systemd/system").exists() {
            assert!(
                installed_daemons().is_empty(),
                "without systemd, no daemon runs before the first call"
            );
        }
        let alice = TestUser::create("pk");
        let (secret, step) = enrol(&alice);
        assert!(name_has_owner(), "D-Bus activation started herarxd");
        assert_eq!(
            installed_daemons().len(),
            1,
            "one herarxd, the installed one"
        );

        let service =
            PamDService::new("auth required pam_herarx.so\naccount required pam_permit.so\n");
        let right = code_at_step(&secret, step + 1);
        let bad = wrong_code(&[&right, &code_at_step(&secret, step + 2)]);
        let (passed, out) = service.pamtester(&alice.name, &[&bad, &bad, &bad]);
        assert!(!passed, "a wrong code passed: {out}");
        let (passed, out) = service.pamtester(&alice.name, &[&right]);
        assert!(passed, "the right code failed: {out}");
        assert!(out.contains("successfully authenticated"), "{out}");

        eprintln!(
            "packaging: install, enrol, pamtester done at {:?}",
            started.elapsed()
        );
        // Reinstalling (the upgrade path: prerm upgrade, postinst configure with the old version)
        // keeps the store: the factor is still there, on a restarted daemon.
        let old_daemon = installed_daemons();
        ok(Command::new("dpkg").arg("-i").arg(&deb));
        let status = ok(users::command_as(Some(&alice), CTL)
            .args(["status", "--json"])
            .env_remove("DBUS_SYSTEM_BUS_ADDRESS"));
        assert!(
            status.contains("phone"),
            "after reinstalling, the factor is kept: {status}"
        );
        let new_daemon = installed_daemons();
        assert!(
            new_daemon.len() == 1 && new_daemon != old_daemon,
            "the upgrade restarted herarxd (before {old_daemon:?}, after {new_daemon:?})"
        );

        eprintln!("packaging: reinstall done at {:?}", started.elapsed());
        // (d) pam-auth-update on and off, in a private mount namespace.
        pam_auth_update_in_namespace();
        assert_eq!(pam_checksums(), pam_before, "/etc/pam.d/common-* changed");

        eprintln!("packaging: pam-auth-update done at {:?}", started.elapsed());
        // Removal is refused while a PAM file still loads the module.
        let o = sh(Command::new("dpkg").args(["--remove", "herarx"]));
        assert!(
            !o.status.success() && package_installed() && Path::new(&module).exists(),
            "dpkg --remove must refuse while {} loads pam_herarx.so:\n{}",
            service.name,
            text(&o)
        );
        assert!(
            text(&o).contains(&service.name),
            "the refusal names the PAM file:\n{}",
            text(&o)
        );
        drop(service);

        eprintln!("packaging: refused removal done at {:?}", started.elapsed());
        // (e) purge removes everything, config and state included, and stops the daemon.
        ok(Command::new("dpkg").args(["--purge", "herarx"]));
        for p in [
            "/etc/herarx",
            "/var/lib/herarx",
            SBIN,
            CTL,
            module.as_str(),
            "/usr/share/pam-configs/herarx",
            "/etc/systemd/system/multi-user.target.wants/herarxd.service",
        ] {
            assert!(!Path::new(p).exists(), "{p} is left after purge");
        }
        assert!(
            wait_until(Duration::from_secs(5), || installed_daemons().is_empty()),
            "herarxd still runs after purge"
        );
        let seen = std::fs::read_to_string("/var/lib/pam/seen").unwrap_or_default();
        assert!(
            !seen.lines().any(|l| l == "herarx"),
            "pam-auth-update still remembers the profile"
        );
        assert_eq!(pam_checksums(), pam_before, "/etc/pam.d/common-* changed");
    }

    eprintln!("packaging: purge done at {:?}", started.elapsed());
    // (f) scripts/install.sh then scripts/uninstall.sh --purge: the same files as the package,
    // the daemon started directly, and nothing left behind.
    let watched = [
        "/usr/sbin",
        "/usr/bin",
        "/lib/systemd/system",
        "/usr/share/dbus-1",
        "/usr/share/pam-configs",
        "/usr/share/man",
        "/usr/share/bash-completion",
        "/usr/share/zsh",
        "/usr/share/fish",
        "/usr/share/doc",
        "/usr/share/lintian",
        "/etc/herarx",
        "/var/lib/herarx",
        "/var/log",
        "/run/herarxd.pid",
    ];
    let before = snapshot(&watched);
    let security_before = snapshot(&[&format!("/usr/lib/{ma}/security")]);
    {
        let _install = SourceInstallGuard;
        let scripts = paths::workspace_root().join("scripts");
        ok(&mut Command::new(scripts.join("install.sh")));
        for path in expected_files().keys() {
            assert!(
                Path::new(path).is_file(),
                "install.sh did not install {path}"
            );
        }
        assert!(name_has_owner(), "install.sh started herarxd");
        let pid: i32 = std::fs::read_to_string("/run/herarxd.pid")
            .expect("install.sh records /run/herarxd.pid")
            .trim()
            .parse()
            .expect("a pid");
        assert_eq!(
            installed_daemons(),
            vec![pid],
            "the recorded pid is the daemon"
        );
        // A second run works (and restarts the daemon on the same store).
        ok(&mut Command::new(scripts.join("install.sh")));
        assert!(name_has_owner(), "herarxd runs after a second install.sh");
        assert_eq!(pam_checksums(), pam_before, "install.sh changed /etc/pam.d");

        eprintln!(
            "packaging: install.sh twice done at {:?}",
            started.elapsed()
        );
        // uninstall.sh refuses while a PAM file loads the module, and removes nothing.
        let service =
            PamDService::new("auth required pam_herarx.so\naccount required pam_permit.so\n");
        let o = sh(&mut Command::new(scripts.join("uninstall.sh")));
        assert!(
            !o.status.success() && text(&o).contains(&service.name) && Path::new(SBIN).exists(),
            "uninstall.sh must refuse while {} loads pam_herarx.so:\n{}",
            service.name,
            text(&o)
        );
        drop(service);

        // With the profile enabled (in a private mount namespace, as above), uninstall.sh takes
        // it out of common-auth first; without --purge it keeps the configuration and store.
        let script = PRIVATE_PAM_ENABLED.to_string()
            + &format!(
                r#"grep -q pam_herarx.so /etc/pam.d/common-auth
{uninstall} >/dev/null
if cmp -s "$t/before" /etc/pam.d/common-auth; then echo IDENTICAL; else diff "$t/before" /etc/pam.d/common-auth || true; fi
umount /etc/pam.d /var/lib/pam /var/cache/debconf
rm -rf "$t"
"#,
                uninstall = scripts.join("uninstall.sh").display()
            );
        let out = ok(Command::new("unshare").args([
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ]));
        assert!(
            out.trim_end().ends_with("IDENTICAL"),
            "uninstall.sh left common-auth changed:\n{out}"
        );
        assert!(!Path::new(SBIN).exists(), "uninstall.sh removed herarxd");
        assert!(
            !Path::new(&module).exists(),
            "uninstall.sh removed the module"
        );
        assert!(
            installed_daemons().is_empty(),
            "herarxd still runs after uninstall"
        );
        for kept in ["/etc/herarx/herarx.toml", "/var/lib/herarx"] {
            assert!(Path::new(kept).exists(), "uninstall.sh kept {kept}");
        }
        // A second run, with --purge, deletes them too.
        ok(Command::new(scripts.join("uninstall.sh")).arg("--purge"));
        assert!(
            installed_daemons().is_empty(),
            "herarxd still runs after uninstall"
        );
    }
    let after = snapshot(&watched);
    let left: Vec<_> = after.difference(&before).collect();
    assert!(left.is_empty(), "install.sh + uninstall.sh left: {left:?}");
    let security_after = snapshot(&[&format!("/usr/lib/{ma}/security")]);
    assert_eq!(security_before, security_after, "the PAM module directory");
    assert_eq!(pam_checksums(), pam_before, "/etc/pam.d/common-* changed");
    eprintln!("packaging test took {:?}", started.elapsed());
}
