//! A full disk under the store: logins fail closed (never pass, never on a wrong code), the
//! store stays consistent, and everything works again once there is room.

use herarx_tests::pam_client::*;
use herarx_tests::totp::{code_at_step, wrong_code};
use herarx_tests::{Bus, Daemon, DaemonConfig, pamconf::PamConf, pamconf::run_login};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A small tmpfs mounted for the test, unmounted when dropped.
struct SmallFs(PathBuf);

impl SmallFs {
    fn mount(at: &Path, size: &str) -> SmallFs {
        std::fs::create_dir_all(at).unwrap();
        let st = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs (needs root)");
        SmallFs(at.to_path_buf())
    }

    /// Writes a file until the filesystem refuses: the disk is full.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
        path
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_fails_logins_closed_and_loses_nothing() {
    let bus = Bus::start();
    let mut mounted = None;
    let mut daemon = Daemon::start_prepared(&bus, DaemonConfig::default(), |state| {
        mounted = Some(SmallFs::mount(state, "4m"));
    });
    let fs = mounted.expect("mounted");
    let pam = PamConf::new(&bus.address);
    let user = herarx_tests::TestUser::create("fd");
    let e = herarx_tests::ctl::enrol_totp(&user, &bus.address, "phone", None);
    let right = code_at_step(&e.secret, e.confirm_step + 1);
    let bad = wrong_code(&[&right, &code_at_step(&e.secret, e.confirm_step + 2)]);

    let filler = fs.fill();
    let login = |answers: &[&str]| run_login(&pam.login("herarx", &user.name, answers), None);
    let r = login(&[&right]);
    assert_ne!(
        r.transcript.rc, PAM_SUCCESS,
        "no login without a durable record of the code: {:?}",
        r.transcript
    );
    let r = login(&[&bad, &bad, &bad]);
    assert_ne!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);

    // Room again: the store is intact, the code that could not be recorded still works once.
    std::fs::remove_file(&filler).unwrap();
    let r = login(&[&right]);
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);
    let r = login(&[&right]);
    assert_ne!(r.transcript.rc, PAM_SUCCESS, "and only once");
    daemon.stop();
    let db = rusqlite::Connection::open(daemon.db_path()).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(db);
    drop(daemon);
    drop(fs);
}

/// `herarxctl totp add` stopped between its begin and its confirmation: the disk fills up in
/// between, so it is the confirming write that meets it. Returns (success, stderr).
fn enrol_with_full_disk_at_confirm(
    user: &herarx_tests::TestUser,
    bus: &str,
    step_up: &str,
    fs: &SmallFs,
) -> (bool, String, PathBuf) {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::Stdio;
    let mut child = herarx_tests::users::command_as(Some(user), herarx_tests::paths::herarxctl())
        .args(["--bus", bus, "totp", "add", "--name", "tablet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    writeln!(input, "{step_up}").unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut uri = String::new();
    out.read_line(&mut uri).unwrap();
    if !uri.starts_with("otpauth://") {
        let mut err = String::new();
        let _ = child.stderr.take().unwrap().read_to_string(&mut err);
        panic!("the enrolment did not begin: {uri:?} {err}");
    }
    let filler = fs.fill();
    let secret = herarx_tests::totp::secret_of(uri.trim());
    writeln!(input, "{}", herarx_tests::totp::code(&secret, 0)).unwrap();
    drop(input);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let ok = child.wait().unwrap().success();
    (ok, err, filler)
}

/// `user`'s factor names, sorted.
fn factor_names(user: &herarx_tests::TestUser, bus: &str) -> Vec<String> {
    let mut names = herarx_tests::ctl::factor_names(user, bus);
    names.sort();
    names
}

/// What the daemon tells a client whose write met a full disk: the cause and the fix.
fn says_full(stderr: &str) {
    assert!(
        stderr.contains("full") && stderr.contains("nothing was changed"),
        "the error names the full store and says nothing was changed: {stderr}"
    );
}

#[test]
fn every_kind_of_write_fails_closed_on_a_full_disk_says_why_and_leaves_nothing_half_done() {
    // Room for several fresh steps of one factor in a row.
    let wide = DaemonConfig {
        skew: 10,
        ..DaemonConfig::default()
    };
    let bus = Bus::start();
    let mut mounted = None;
    let mut daemon = Daemon::start_prepared(&bus, wide, |state| {
        mounted = Some(SmallFs::mount(state, "4m"));
    });
    let fs = mounted.expect("mounted");
    let pam = PamConf::new(&bus.address);
    let user = herarx_tests::TestUser::create("fw");
    let e = herarx_tests::ctl::enrol_totp(&user, &bus.address, "phone", None);
    let step = |n: u64| code_at_step(&e.secret, e.confirm_step + n);
    herarx_tests::ctl::enrol_totp(&user, &bus.address, "laptop", Some(&step(1)));
    let laptop = {
        let out = herarx_tests::ctl::run(Some(&user), &bus.address, &["status", "--json"], &[]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["factors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == "laptop")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let login = |answers: &[&str]| run_login(&pam.login("herarx", &user.name, answers), None);

    // Enrolment: begun with room (step 2 consumed by its step-up), confirmed on a full disk.
    let (ok, err, filler) = enrol_with_full_disk_at_confirm(&user, &bus.address, &step(2), &fs);
    assert!(
        !ok,
        "an enrolment that could not be stored is not reported done"
    );
    says_full(&err);

    // A right code: no login without a durable record of it.
    let r = login(&[&step(3)]);
    assert_eq!(r.transcript.rc, PAM_AUTHINFO_UNAVAIL, "{:?}", r.transcript);
    // A wrong code: refused, whether or not its failure could be counted.
    let bad = wrong_code(&[&step(3), &step(4), &step(5)]);
    let r = login(&[&bad]);
    assert_ne!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);

    // Removal with a right step-up code.
    let out = herarx_tests::ctl::run(
        Some(&user),
        &bus.address,
        &["remove", &laptop, "--yes"],
        &[&step(3)],
    );
    assert!(
        !out.status.success(),
        "a removal that could not be stored is not reported done"
    );
    says_full(&String::from_utf8_lossy(&out.stderr));

    // Admin reset, as root.
    let out = herarx_tests::ctl::run(
        None,
        &bus.address,
        &["admin", "reset", &user.name, "--yes"],
        &[],
    );
    assert!(
        !out.status.success(),
        "a reset that could not be stored is not reported done"
    );
    says_full(&String::from_utf8_lossy(&out.stderr));

    // Room again: none of it happened, and every code the full disk refused still works once.
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(factor_names(&user, &bus.address), ["laptop", "phone"]);
    let r = login(&[&step(3)]);
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);
    let r = login(&[&step(3)]);
    assert_ne!(r.transcript.rc, PAM_SUCCESS, "and only once");
    let out = herarx_tests::ctl::run(
        Some(&user),
        &bus.address,
        &["remove", &laptop, "--yes"],
        &[&step(4)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(factor_names(&user, &bus.address), ["phone"]);
    daemon.stop();
    let db = rusqlite::Connection::open(daemon.db_path()).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let pending: i64 = db
        .query_row(
            "SELECT count(*) FROM factors WHERE name = 'tablet'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(pending, 0, "no half-added factor");
    drop(db);
    drop(daemon);
    drop(fs);
}

/// A store that is read-only when herarxd starts (a filesystem the kernel remounted read-only
/// after errors; while the daemon has it open for writing, the kernel refuses to remount it,
/// so this is where a read-only store is met): herarxd refuses to start and says why, logins
/// fail closed meanwhile, and all is as before once it is writable again.
#[test]
fn a_read_only_store_stops_herarxd_with_a_clear_message_and_logins_fail_closed() {
    let bus = Bus::start();
    let mut mounted = None;
    let mut daemon = Daemon::start_prepared(&bus, DaemonConfig::default(), |state| {
        mounted = Some(SmallFs::mount(state, "4m"));
    });
    let fs = mounted.expect("mounted");
    let pam = PamConf::new(&bus.address);
    let user = herarx_tests::TestUser::create("ro");
    let e = herarx_tests::ctl::enrol_totp(&user, &bus.address, "phone", None);
    let right = code_at_step(&e.secret, e.confirm_step + 1);
    daemon.stop();

    let remount = |mode: &str| {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&fs.0)
            .status()
            .unwrap();
        assert!(st.success(), "remount {mode}");
    };
    remount("ro");
    let out = Command::new(herarx_tests::paths::herarxd())
        .arg("--bus")
        .arg(&bus.address)
        .arg("--state-dir")
        .arg(daemon.state_dir())
        .arg("--config")
        .arg(daemon.config_path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "herarxd does not serve a read-only store"
    );
    assert!(
        err.contains("Read-only file system") && err.contains("writable"),
        "herarxd says the store is read-only and what to do: {err}"
    );
    let r = run_login(&pam.login("herarx", &user.name, &[&right]), None);
    assert_eq!(r.transcript.rc, PAM_AUTHINFO_UNAVAIL, "{:?}", r.transcript);

    remount("rw");
    daemon.restart();
    let r = run_login(&pam.login("herarx", &user.name, &[&right]), None);
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);
    daemon.stop();
    drop(daemon);
    drop(fs);
}
