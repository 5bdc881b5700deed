//! The module's arguments from the pam.d line (`pam_herarx.so bus=... timeout=... ...`).
//!
//! Input: the arguments, one per line (libpam splits the line on blanks; a bracketed
//! argument may hold spaces, so anything but the line break is fair).
//!
//! Beyond "does not crash": the result is always usable and safe (a timeout in 1..=60 s, a
//! bus address, fail-closed unless the last failmode= says exactly "open"), each problem is
//! one bounded log line, and every argument is either understood or reported.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_herarx::args::parse;
use pam_herarx::core::FailMode;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let args: Vec<&str> = text.split('\n').collect();
    let (parsed, problems) = parse(args.iter().copied());
    assert!((1..=60).contains(&parsed.timeout.as_secs()));
    assert!(!parsed.bus.is_empty());
    let last_failmode = args.iter().rev().find_map(|a| a.strip_prefix("failmode="));
    assert_eq!(
        parsed.failmode == FailMode::Open,
        last_failmode == Some("open"),
        "fail-open without failmode=open last"
    );
    assert_eq!(parsed.debug, args.contains(&"debug"));
    let understood = |a: &str| {
        a == "debug"
            || a == "failmode=open"
            || a == "failmode=closed"
            || a.strip_prefix("bus=").is_some_and(|b| !b.is_empty())
            || a.strip_prefix("timeout=")
                .and_then(|t| t.parse::<u64>().ok())
                .is_some_and(|t| (1..=60).contains(&t))
    };
    let wrong = args.iter().filter(|a| !understood(a)).count();
    assert_eq!(problems.len(), wrong, "{args:?} → {problems:?}");
    for p in &problems {
        assert!(!p.contains('\n'), "a problem spans lines: {p:?}");
        // 64 characters of the argument, each escaped to at most 10 ("\u{10ffff}"), and words.
        assert!(p.chars().count() <= 64 * 10 + 200, "an unbounded log line");
    }
});
