//! What every hook takes from its pam.d line: the arguments, parsed, and the daemon client they
//! point at. In one place so that the hooks cannot drift apart in how they read `bus=` or
//! `timeout=`.
//!
//! Logging the problems `module_args` finds is left to the caller. Only `sm_authenticate` logs
//! them (once per login, as `argument: ...`). The session hooks do not, as before this file
//! existed. The one `session` line serves both session hooks. A bad value there falls back to the
//! same safe default, and the session hooks never fail a session, so the worst case is a session
//! that is not trusted. `sm_open_session` already logs that, with the daemon's reason, for each
//! login that has a ticket. If the session line's problems should be logged too, do it in
//! `sm_open_session` after the ticket check, so it happens at most once per trusted login and
//! with the same words. Never do it in `sm_close_session`: that would log every warning a second
//! time at logout.

use crate::args::{self, Args};
use crate::client::BusDaemon;
use std::ffi::CStr;

/// The hook's arguments as `args::parse` sees them, and the problems it found (one log line
/// each). An argument that is not UTF-8 is read lossily (U+FFFD), so it is still reported as
/// unknown or invalid, never silently dropped.
pub fn module_args(args: &[&CStr]) -> (Args, Vec<String>) {
    let raw: Vec<_> = args.iter().map(|a| a.to_string_lossy()).collect();
    args::parse(raw.iter().map(|a| a.as_ref()))
}

/// The client for the daemon on `bus=`, with every call bounded by `timeout=`. It connects on
/// its first call, so building it costs nothing. The caller drops it before returning (see
/// `client.rs`).
pub fn daemon(args: &Args) -> BusDaemon {
    BusDaemon::new(&args.bus, args.timeout)
}

#[cfg(test)]
#[allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::core::{Daemon, DaemonError, FailMode};
    use std::ffi::CString;
    use std::time::{Duration, Instant};

    fn cstrings(args: &[&[u8]]) -> Vec<CString> {
        args.iter().map(|a| CString::new(*a).unwrap()).collect()
    }

    fn module_args_of(args: &[&[u8]]) -> (Args, Vec<String>) {
        let owned = cstrings(args);
        let borrowed: Vec<&CStr> = owned.iter().map(|c| c.as_c_str()).collect();
        module_args(&borrowed)
    }

    #[test]
    fn no_arguments_give_the_defaults_and_no_problems() {
        assert_eq!(module_args(&[]), (Args::default(), Vec::new()));
    }

    #[test]
    fn every_argument_reads_as_args_parse_reads_it() {
        let line = [
            "bus=unix:path=/tmp/hx/bus",
            "timeout=2",
            "failmode=open",
            "debug",
        ];
        let bytes: Vec<&[u8]> = line.iter().map(|a| a.as_bytes()).collect();
        let (a, problems) = module_args_of(&bytes);
        assert_eq!(
            a,
            Args {
                bus: "unix:path=/tmp/hx/bus".into(),
                timeout: Duration::from_secs(2),
                failmode: FailMode::Open,
                debug: true,
            }
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!((a, problems), args::parse(line));
    }

    #[test]
    fn problems_come_back_in_order_for_the_caller_to_log() {
        let (a, problems) = module_args_of(&[b"nullok", b"timeout=0", b"failmode=yes"]);
        assert_eq!(a, Args::default());
        assert_eq!(
            problems,
            args::parse(["nullok", "timeout=0", "failmode=yes"]).1
        );
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("nullok"), "{problems:?}");
        assert!(problems[1].contains("timeout"), "{problems:?}");
        assert!(problems[2].contains("failmode"), "{problems:?}");
    }

    #[test]
    fn an_argument_that_is_not_utf8_is_reported_not_dropped() {
        let (a, problems) = module_args_of(&[b"debug\xff", b"timeout=\xff", b"failmode=open"]);
        // Not read as `debug` nor as a timeout: the safe defaults, and one line each.
        assert!(!a.debug);
        assert_eq!(a.timeout, args::DEFAULT_TIMEOUT);
        assert_eq!(a.failmode, FailMode::Open);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("debug\u{fffd}"), "{problems:?}");
        assert!(problems[1].contains("timeout"), "{problems:?}");
    }

    /// A scratch directory of this test's own, gone when dropped.
    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("pam_herarx-setup-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn the_daemon_dials_bus_and_is_bounded_by_timeout() {
        // A socket that accepts and never speaks: the client waits for the handshake until
        // `timeout=` (1 s here, not the default 5 s) and names the address it dialled.
        let scratch = Scratch::new("mute");
        let path = scratch.0.join("bus");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let bus = format!("unix:path={}", path.display());
        let (a, problems) = module_args_of(&[format!("bus={bus}").as_bytes(), b"timeout=1"]);
        assert!(problems.is_empty(), "{problems:?}");
        let mut d = daemon(&a);
        let started = Instant::now();
        let e = d.close_session("alice").unwrap_err();
        let took = started.elapsed();
        drop(d);
        match e {
            DaemonError::Unresponsive(why) => {
                assert_eq!(why, format!("connecting to {bus} timed out after 1s"));
            }
            other => panic!("want Unresponsive, got {other:?}"),
        }
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(3),
            "{took:?}"
        );
    }

    #[test]
    fn the_daemon_on_a_bus_with_nobody_there_is_unreachable() {
        // The failing twin: the same directory without the socket. Nobody there, told at once.
        let scratch = Scratch::new("missing");
        let bus = format!("unix:path={}", scratch.0.join("bus").display());
        let (a, _) = module_args_of(&[format!("bus={bus}").as_bytes(), b"timeout=1"]);
        let mut d = daemon(&a);
        let started = Instant::now();
        let e = d.open_session("alice", "ticket").unwrap_err();
        assert!(matches!(e, DaemonError::Unreachable(_)), "{e:?}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
