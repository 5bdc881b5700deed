use super::*;

fn logind(uid: u32, remote: bool, active: bool, seat: &str) -> Facts {
    Facts::Logind(Some(LogindSession {
        id: "c7".into(),
        uid,
        remote,
        active,
        seat: seat.into(),
    }))
}

fn kernel(login_uid: Option<u32>, opener_uid: u32, program: &str) -> Facts {
    Facts::Kernel {
        login_uid,
        session: 12,
        opener: Some(Opener {
            pid: 40,
            uid: opener_uid,
            program: program.into(),
        }),
    }
}

fn refusal(uid: u32, facts: &Facts) -> String {
    match decide(uid, facts) {
        Err(HerarxError::PermissionDenied(m)) => m,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn root_is_the_login_path_and_passes_whatever_the_facts() {
    assert_eq!(decide(0, &Facts::Logind(None)), Ok(()));
    assert_eq!(decide(0, &kernel(None, 1000, "sshd")), Ok(()));
}

#[test]
fn logind_local_active_session_of_the_caller_passes() {
    assert_eq!(decide(1000, &logind(1000, false, true, "seat0")), Ok(()));
    assert_eq!(decide(1000, &logind(1000, false, true, "")), Ok(()));
    assert_eq!(decide(1000, &logind(1000, false, false, "seat0")), Ok(()));
}

#[test]
fn logind_remote_foreign_idle_or_missing_sessions_are_refused() {
    assert!(refusal(1000, &logind(1000, true, true, "")).contains("remote login"));
    assert!(refusal(1000, &logind(1001, false, true, "seat0")).contains("another user"));
    assert!(refusal(1000, &logind(1000, false, false, "")).contains("neither active"));
    assert!(refusal(1000, &Facts::Logind(None)).contains("knows no session"));
    let m = refusal(1000, &Facts::LogindFailed("timeout".into()));
    assert!(m.contains("could not ask systemd-logind (timeout)") || m.contains("timeout"));
    assert!(m.contains("Run `herarxctl key"), "says what to do: {m}");
}

#[test]
fn kernel_session_of_the_caller_opened_by_a_local_login_passes() {
    assert_eq!(decide(1000, &kernel(Some(1000), 0, "login")), Ok(()));
    assert_eq!(
        decide(1000, &kernel(Some(1000), 0, "gdm-session-worker")),
        Ok(())
    );
}

#[test]
fn kernel_remote_foreign_detached_or_sessionless_callers_are_refused() {
    for program in ["sshd", "sshd-session", "dropbear", "xrdp-sesman"] {
        let m = refusal(1000, &kernel(Some(1000), 0, program));
        assert!(m.contains("remote login"), "{program}: {m}");
    }
    assert!(refusal(1000, &kernel(Some(1001), 0, "login")).contains("another user"));
    assert!(refusal(1000, &kernel(None, 0, "login")).contains("not in a login session"));
    let no_session = Facts::Kernel {
        login_uid: Some(1000),
        session: NO_SESSION,
        opener: None,
    };
    assert!(refusal(1000, &no_session).contains("not in a login session"));
    let detached = Facts::Kernel {
        login_uid: Some(1000),
        session: 12,
        opener: None,
    };
    assert!(refusal(1000, &detached).contains("cannot tell"));
    // A session whose topmost process is the user's own: not a login program.
    assert!(refusal(1000, &kernel(Some(1000), 1000, "bash")).contains("cannot tell"));
}

#[test]
fn this_process_is_read_from_proc() {
    // Whatever this test runs in, the facts are the kernel's and consistent.
    let Facts::Kernel {
        session, opener, ..
    } = kernel_facts(std::process::id())
    else {
        panic!("kernel facts")
    };
    if session != NO_SESSION {
        let o = opener.expect("the chain to the opener is readable here");
        assert!(!o.program.is_empty());
    }
    assert_eq!(
        parent_of(std::process::id()),
        Some(std::os::unix::process::parent_id())
    );
}
