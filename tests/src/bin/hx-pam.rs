//! Drives one real PAM login: reads a `Login` as JSON on stdin, runs it through libpam with
//! the login's private config directory, and prints a JSON report on stdout: the transcript
//! and the threads and fds of this process before `pam_start` and after `pam_end`.
//! A process of its own, so the counts are not disturbed by a test runner's threads, and so a
//! test can run it as another user (a screen locker authenticates its own user).
//!
//! With `{"session_script": SessionScript}` on stdin it runs a whole login session instead
//! (see `pam_client::run_session`): the logins inside it run as child processes of this one,
//! so they share its kernel audit session as a shell's commands would.

use herarx_tests::pam_client::{self, Login, SessionScript, Transcript};
use std::io::{Read, Write};
use std::process::{Command, Stdio};

#[derive(serde::Deserialize)]
struct ScriptInput {
    session_script: SessionScript,
}

/// One login in a child process of this one (it inherits the audit session), as root or as
/// `run_as`.
fn child(login: &Login, run_as: Option<(u32, u32)>) -> Result<Transcript, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = match run_as {
        Some((uid, gid)) => {
            let mut c = Command::new("setpriv");
            c.args([
                format!("--reuid={uid}"),
                format!("--regid={gid}"),
                "--clear-groups".to_owned(),
            ])
            .arg(exe);
            c
        }
        None => Command::new(exe),
    };
    let mut c = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let json = serde_json::to_string(login).map_err(|e| e.to_string())?;
    c.stdin
        .take()
        .ok_or("no stdin")?
        .write_all(json.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = c.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    serde_json::from_value(v["transcript"].clone()).map_err(|e| e.to_string())
}

fn main() {
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("hx-pam: reading stdin: {e}");
        std::process::exit(2);
    }
    if let Ok(script) = serde_json::from_str::<ScriptInput>(&input) {
        match pam_client::run_session(&script.session_script, &child) {
            Ok(report) => println!("{}", serde_json::json!(report)),
            Err(e) => {
                eprintln!("hx-pam: {e}");
                std::process::exit(2);
            }
        }
        return;
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
