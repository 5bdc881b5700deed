//! Drives one real PAM login: reads a `Login` as JSON on stdin, runs it through libpam with
//! the login's private config directory, and prints a JSON report on stdout: the transcript
//! and the threads and fds of this process before `pam_start` and after `pam_end`.
//! A process of its own, so the counts are not disturbed by a test runner's threads, and so a
//! test can run it as another user (a screen locker authenticates its own user).

use herarx_tests::pam_client::{self, Login};
use std::io::Read;

fn main() {
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("hx-pam: reading stdin: {e}");
        std::process::exit(2);
    }
    let login: Login = match serde_json::from_str(&input) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("hx-pam: stdin is not a Login JSON: {e}");
            std::process::exit(2);
        }
    };
    let (threads_before, fds_before) = pam_client::threads_and_fds();
    let transcript = match pam_client::run(&login) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("hx-pam: {e}");
            std::process::exit(2);
        }
    };
    let (threads_after, fds_after) = pam_client::threads_and_fds();
    let report = serde_json::json!({
        "transcript": transcript,
        "threads_before": threads_before,
        "threads_after": threads_after,
        "fds_before": fds_before,
        "fds_after": fds_after,
    });
    println!("{report}");
}
