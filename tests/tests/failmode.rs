//! `failmode=open` through real libpam: it lets a login go on without the second factor only
//! when nobody is there (no bus socket, a socket nobody listens on, no owner for the name),
//! never when the daemon is there but does not answer (stopped, overloaded), which a local
//! user could bring about.

use herarx_tests::pam_client::*;
use herarx_tests::pamconf::run_login;
use herarx_tests::{DaemonConfig, World};
use std::time::Instant;

const SERVICE: &str = "herarx-failmode";

/// A stack that shows the module's own verdict: `PAM_IGNORE` passes on to `pam_permit`
/// (so the login succeeds), any other code ends the stack with that code.
fn stack(w: &World, bus: &str, failmode: &str) {
    w.pam.service(
        SERVICE,
        &format!(
            "auth [ignore=ignore default=die] {} bus={bus} timeout=2 failmode={failmode}\n\
             auth required pam_permit.so\n",
            herarx_tests::paths::pam_module().display()
        ),
    );
}

fn login_rc(w: &World, user: &str) -> (i32, Transcript) {
    let r = run_login(&w.pam.login(SERVICE, user, &[]), None);
    (r.transcript.rc, r.transcript)
}

/// SIGSTOPs the daemon; SIGCONT when dropped, so a failing assertion leaves no stopped
/// process behind (the daemon's own drop then kills it).
struct Stopped(i32);

impl Stopped {
    fn daemon(w: &World) -> Stopped {
        let pid = w.daemon.pid().expect("daemon running") as i32;
        // SAFETY: kill(2) on the pid of the daemon this test started.
        assert_eq!(
            unsafe { libc::kill(pid, libc::SIGSTOP) },
            0,
            "SIGSTOP {pid}"
        );
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

#[test]
fn a_stopped_daemon_that_still_owns_the_name_fails_closed_even_with_failmode_open() {
    let w = World::start(DaemonConfig::default());
    let (user, _) = w.enrolled_user("fs");
    assert!(herarx_tests::daemon::name_has_owner(&w.bus.address));
    for failmode in ["open", "closed"] {
        stack(&w, &w.bus.address, failmode);
        let stopped = Stopped::daemon(&w);
        let started = Instant::now();
        let (rc, t) = login_rc(&w, &user.name);
        let took = started.elapsed();
        drop(stopped);
        assert_eq!(
            rc, PAM_AUTHINFO_UNAVAIL,
            "failmode={failmode}: a daemon that does not answer must not be skipped: {t:?}"
        );
        assert!(
            t.errors().iter().any(|m| m.contains("not answering")),
            "the user is told why: {t:?}"
        );
        assert!(took.as_secs_f64() < 6.0, "bounded by timeout=2: {took:?}");
    }
    // Its twin: running again, the same daemon answers (it asks for the code).
    stack(&w, &w.bus.address, "open");
    let (_, t) = login_rc(&w, &user.name);
    assert_eq!(t.prompts(), vec!["Verification code: "], "{t:?}");
}

#[test]
fn no_daemon_on_the_bus_is_ignored_with_failmode_open_and_refused_with_closed() {
    let mut w = World::start(DaemonConfig::default());
    let (user, _) = w.enrolled_user("fn");
    w.daemon.stop();
    stack(&w, &w.bus.address, "open");
    let (rc, t) = login_rc(&w, &user.name);
    assert_eq!(rc, PAM_SUCCESS, "PAM_IGNORE, the stack decides: {t:?}");
    assert!(t.prompts().is_empty(), "{t:?}");
    stack(&w, &w.bus.address, "closed");
    let (rc, t) = login_rc(&w, &user.name);
    assert_eq!(rc, PAM_AUTHINFO_UNAVAIL, "{t:?}");
}

#[test]
fn an_absent_or_refusing_bus_socket_is_ignored_with_failmode_open_and_refused_with_closed() {
    let w = World::start(DaemonConfig::default());
    let (user, _) = w.enrolled_user("fa");
    let dir = tempfile::Builder::new()
        .prefix("hx-nobus-")
        .tempdir()
        .expect("tempdir");
    let absent = format!("unix:path={}/no/such/bus", dir.path().display());
    // A socket file whose listener is gone: connect(2) gets ECONNREFUSED.
    let stale = dir.path().join("stale_bus_socket");
    drop(std::os::unix::net::UnixListener::bind(&stale).expect("bind"));
    let stale = format!("unix:path={}", stale.display());
    for bus in [&absent, &stale] {
        stack(&w, bus, "open");
        let (rc, t) = login_rc(&w, &user.name);
        assert_eq!(
            rc, PAM_SUCCESS,
            "{bus}: PAM_IGNORE, the stack decides: {t:?}"
        );
        stack(&w, bus, "closed");
        let (rc, t) = login_rc(&w, &user.name);
        assert_eq!(rc, PAM_AUTHINFO_UNAVAIL, "{bus}: {t:?}");
    }
}

#[test]
fn a_bus_that_accepts_and_never_answers_fails_closed_even_with_failmode_open() {
    let w = World::start(DaemonConfig::default());
    let (user, _) = w.enrolled_user("fm");
    let dir = tempfile::Builder::new()
        .prefix("hx-mutebus-")
        .tempdir()
        .expect("tempdir");
    let path = dir.path().join("bus");
    // Listening, never accepting: the handshake waits until the module's timeout.
    let _listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    stack(&w, &format!("unix:path={}", path.display()), "open");
    let (rc, t) = login_rc(&w, &user.name);
    assert_eq!(rc, PAM_AUTHINFO_UNAVAIL, "{t:?}");
}
