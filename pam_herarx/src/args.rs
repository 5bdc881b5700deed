//! Module arguments from the pam.d line. Only the pam.d file (root's) configures the module:
//! nothing here reads the environment, which inside `su` or `pkexec` belongs to the caller.
//!
//! A bad argument never stops a login on its own: it falls back to the safe default and says
//! so in the log, so a typo cannot lock everyone out nor silently open the door.

use crate::core::FailMode;
use std::time::Duration;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const TIMEOUT_SECS: std::ops::RangeInclusive<u64> = 1..=60;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// D-Bus address of the system bus (`bus=`).
    pub bus: String,
    /// Bounds connecting and each daemon call (`timeout=`), not the user's typing.
    pub timeout: Duration,
    pub failmode: FailMode,
    pub debug: bool,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            bus: herarx_proto::SYSTEM_BUS_ADDRESS.to_string(),
            timeout: DEFAULT_TIMEOUT,
            failmode: FailMode::Closed,
            debug: false,
        }
    }
}

/// Parses the arguments; the second value lists the problems found, one log line each.
/// A repeated argument: the last one wins.
pub fn parse<'a>(args: impl IntoIterator<Item = &'a str>) -> (Args, Vec<String>) {
    let mut out = Args::default();
    let mut problems = Vec::new();
    for arg in args {
        match arg.split_once('=') {
            None if arg == "debug" => out.debug = true,
            Some(("bus", "")) => {
                out.bus = herarx_proto::SYSTEM_BUS_ADDRESS.to_string();
                problems.push(format!(
                    "empty bus=: using {}",
                    herarx_proto::SYSTEM_BUS_ADDRESS
                ));
            }
            Some(("bus", address)) => out.bus = address.to_string(),
            Some(("timeout", secs)) => match secs.parse::<u64>() {
                Ok(s) if TIMEOUT_SECS.contains(&s) => out.timeout = Duration::from_secs(s),
                _ => {
                    out.timeout = DEFAULT_TIMEOUT;
                    problems.push(format!(
                        "invalid timeout={} (want whole seconds {}..={}): using {}",
                        shorten(secs),
                        TIMEOUT_SECS.start(),
                        TIMEOUT_SECS.end(),
                        DEFAULT_TIMEOUT.as_secs()
                    ));
                }
            },
            Some(("failmode", "closed")) => out.failmode = FailMode::Closed,
            Some(("failmode", "open")) => out.failmode = FailMode::Open,
            Some(("failmode", other)) => {
                out.failmode = FailMode::Closed;
                problems.push(format!(
                    "invalid failmode={} (want closed or open): using closed",
                    shorten(other)
                ));
            }
            _ => problems.push(format!("unknown argument {} ignored", shorten(arg))),
        }
    }
    (out, problems)
}

/// Arguments are root's, but a log line is no place for a novel.
fn shorten(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}...", &s[..cut]),
        None => format!("{s:?}"),
    }
}

#[cfg(test)]
#[allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn parsed(args: &[&str]) -> (Args, Vec<String>) {
        parse(args.iter().copied())
    }

    #[test]
    fn no_arguments_give_the_safe_defaults() {
        let (a, problems) = parsed(&[]);
        assert_eq!(a.bus, "unix:path=/run/dbus/system_bus_socket");
        assert_eq!(a.timeout, Duration::from_secs(5));
        assert_eq!(a.failmode, FailMode::Closed);
        assert!(!a.debug);
        assert!(problems.is_empty());
    }

    #[test]
    fn every_argument_is_understood() {
        let (a, problems) = parsed(&[
            "bus=unix:path=/tmp/hx/bus",
            "timeout=2",
            "failmode=open",
            "debug",
        ]);
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
    }

    #[test]
    fn bus_keeps_everything_after_the_first_equals_sign() {
        let (a, _) = parsed(&["bus=unix:path=/run/x,guid=0123"]);
        assert_eq!(a.bus, "unix:path=/run/x,guid=0123");
    }

    #[test]
    fn empty_bus_falls_back_to_the_system_bus_and_says_so() {
        let (a, problems) = parsed(&["bus="]);
        assert_eq!(a.bus, herarx_proto::SYSTEM_BUS_ADDRESS);
        assert_eq!(problems.len(), 1);
    }

    #[test]
    fn timeout_bounds_are_inclusive() {
        assert_eq!(parsed(&["timeout=1"]).0.timeout, Duration::from_secs(1));
        assert_eq!(parsed(&["timeout=60"]).0.timeout, Duration::from_secs(60));
    }

    #[test]
    fn invalid_timeouts_fall_back_to_the_default_and_say_so() {
        for bad in [
            "timeout=0",
            "timeout=61",
            "timeout=-1",
            "timeout=1.5",
            "timeout=",
            "timeout=five",
            "timeout= 5",
            "timeout=99999999999999999999999",
        ] {
            let (a, problems) = parsed(&["timeout=3", bad]);
            assert_eq!(a.timeout, DEFAULT_TIMEOUT, "{bad}");
            assert_eq!(problems.len(), 1, "{bad}: {problems:?}");
            assert!(problems[0].contains("timeout"), "{problems:?}");
        }
    }

    #[test]
    fn failmode_other_than_open_is_closed_and_says_so() {
        assert_eq!(parsed(&["failmode=closed"]).0.failmode, FailMode::Closed);
        for bad in [
            "failmode=OPEN",
            "failmode=yes",
            "failmode=",
            "failmode=open ",
        ] {
            let (a, problems) = parsed(&["failmode=open", bad]);
            assert_eq!(a.failmode, FailMode::Closed, "{bad}");
            assert_eq!(problems.len(), 1, "{bad}: {problems:?}");
        }
    }

    #[test]
    fn unknown_arguments_are_ignored_and_reported() {
        let (a, problems) = parsed(&["nullok", "debug=1", "use_first_pass", "timeout=7"]);
        assert_eq!(
            a,
            Args {
                timeout: Duration::from_secs(7),
                ..Args::default()
            }
        );
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("nullok"));
        assert!(problems[1].contains("debug=1"));
    }

    #[test]
    fn the_last_repeated_argument_wins() {
        let (a, _) = parsed(&[
            "failmode=open",
            "failmode=closed",
            "bus=unix:path=/a",
            "bus=unix:path=/b",
        ]);
        assert_eq!(a.failmode, FailMode::Closed);
        assert_eq!(a.bus, "unix:path=/b");
    }

    #[test]
    fn long_values_are_shortened_in_reports() {
        let long = format!("x{}", "y".repeat(500));
        let (_, problems) = parsed(&[&long]);
        assert!(problems[0].len() < 120, "{}", problems[0]);
    }
}
