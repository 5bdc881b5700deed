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
