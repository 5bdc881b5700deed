//! The store at rest and across crashes: sealed secrets, the key file's permissions, kill -9.

use herarx_tests::pam_client::*;
use herarx_tests::pamconf::run_login;
use herarx_tests::totp::{code_at_step, wrong_code};
use herarx_tests::{DaemonConfig, World};
use std::os::unix::fs::PermissionsExt;

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn no_seed_appears_in_the_database_in_clear() {
    let mut w = World::start(DaemonConfig::default());
    let (_alice, e) = w.enrolled_user("sd");
    let raw = data_encoding::BASE32_NOPAD
        .decode(e.secret.as_bytes())
        .expect("base32 secret");
    assert!(raw.len() >= 20, "at least 160-bit seeds");
    let dir = w.daemon.state_dir();
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap_or_default();
    let files = [read("herarx.db"), read("herarx.db-wal")];
    assert!(files.iter().any(|f| !f.is_empty()), "the store exists");
    for bytes in &files {
        assert!(!contains(bytes, &raw), "raw seed found in the store");
        assert!(
            !contains(bytes, e.secret.as_bytes()),
            "base32 seed found in the store"
        );
        assert!(!contains(bytes, e.secret.to_lowercase().as_bytes()));
    }
    w.daemon.stop();
    // After a clean stop (WAL checkpointed into the main file) too.
    let db = read("herarx.db");
    assert!(!contains(&db, &raw) && !contains(&db, e.secret.as_bytes()));
}

#[test]
fn the_key_file_is_private_and_a_readable_one_stops_the_daemon() {
    let mut w = World::start(DaemonConfig::default());
    let key = w.daemon.state_dir().join("store.key");
    let mode = std::fs::metadata(&key)
        .expect("key file created")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "key file mode {mode:o}");
    assert_eq!(std::fs::metadata(&key).unwrap().len(), 32);
    w.daemon.stop();

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = std::process::Command::new(herarx_tests::paths::herarxd())
        .arg("--bus")
        .arg(&w.bus.address)
        .arg("--state-dir")
        .arg(w.daemon.state_dir())
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "must refuse a group/world-readable key"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("chmod 600"), "tells how to fix it: {err}");
    assert!(!herarx_tests::daemon::name_has_owner(&w.bus.address));
}

#[test]
fn a_sealed_secret_moved_to_another_user_fails_closed() {
    let mut w = World::start(DaemonConfig::default());
    let (alice, ae) = w.enrolled_user("mv");
    let (bob, be) = w.enrolled_user("mv");
    w.daemon.stop();
    {
        // An attacker with write access to the store copies alice's sealed seed onto bob's row.
        let db = rusqlite::Connection::open(w.daemon.db_path()).unwrap();
        let changed = db
            .execute(
                "UPDATE factors SET sealed = (SELECT sealed FROM factors WHERE user = ?1) WHERE user = ?2",
                [&alice.name, &bob.name],
            )
            .unwrap();
        assert_eq!(changed, 1);
    }
    w.daemon.restart();
    // Neither alice's code nor bob's own opens bob's account now.
    let with_alices = code_at_step(&ae.secret, ae.confirm_step + 1);
    let with_bobs = code_at_step(&be.secret, be.confirm_step + 1);
    let r = w.login(&bob.name, &[&with_alices, &with_bobs, &with_bobs]);
    assert_ne!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);
    // Alice is untouched.
    assert_eq!(
        w.login(&alice.name, &[&with_alices]).transcript.rc,
        PAM_SUCCESS
    );
}

#[test]
fn kill_9_under_load_loses_nothing_and_opens_nothing() {
    let mut w = World::start(DaemonConfig {
        max_failures: 10,
        max_tries: 1,
        ..DaemonConfig::default()
    });
    let (alice, ae) = w.enrolled_user("k9");
    let (bob, be) = w.enrolled_user("k9");
    // Carol never logs in before the crash: her fresh code shows the restarted daemon works.
    let (carol, ce) = w.enrolled_user("k9");
    let used = code_at_step(&ae.secret, ae.confirm_step + 1);
    assert_eq!(w.login(&alice.name, &[&used]).transcript.rc, PAM_SUCCESS);
    let bad = wrong_code(&[
        &code_at_step(&be.secret, be.confirm_step + 1),
        &code_at_step(&be.secret, be.confirm_step + 2),
        &code_at_step(&be.secret, be.confirm_step),
    ]);
    for _ in 0..3 {
        assert_eq!(w.login(&bob.name, &[&bad]).transcript.rc, PAM_AUTH_ERR);
    }

    // Load: logins with wrong codes for bob, while the daemon is killed.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..2 {
        let login = w.pam.login("herarx", &bob.name, &[&bad]);
        let stop = stop.clone();
        load.push(std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let r = run_login(&login, None);
                assert_ne!(r.transcript.rc, PAM_SUCCESS, "a wrong code never passes");
                n += 1;
            }
            n
        }));
    }
    std::thread::sleep(std::time::Duration::from_millis(700));
    w.daemon.kill9();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let attempts: i32 = load.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(attempts > 2, "the load ran: {attempts}");

    w.daemon.restart();
    let db = rusqlite::Connection::open(w.daemon.db_path()).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let rows: i64 = db
        .query_row(
            "SELECT count(*) FROM factors WHERE user IN (?1, ?2, ?3)",
            [&alice.name, &bob.name, &carol.name],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 3, "factors intact");
    let failures: i64 = db
        .query_row(
            "SELECT coalesce(sum(count), 0) FROM failures WHERE user = ?1",
            [&bob.name],
            |r| r.get(0),
        )
        .unwrap();
    assert!(failures >= 3, "failure counter kept: {failures}");

    let replay = w.login(&alice.name, &[&used]);
    assert_eq!(
        replay.transcript.rc, PAM_AUTH_ERR,
        "a used code stays used: {:?}",
        replay.transcript
    );
    let fresh = code_at_step(&ce.secret, ce.confirm_step + 1);
    assert_eq!(w.login(&carol.name, &[&fresh]).transcript.rc, PAM_SUCCESS);
}
