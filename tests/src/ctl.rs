//! `herarxctl` as a real user would run it from a provisioning script: stdin not a terminal,
//! the URI on stdout's first line, the answers one per stdin line.

use crate::TestUser;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};

pub struct Enrolled {
    pub secret: String,
    pub uri: String,
    /// The step whose code confirmed the enrolment (already consumed).
    pub confirm_step: u64,
}

fn ctl(user: Option<&TestUser>, bus: &str) -> Command {
    let mut c = crate::users::command_as(user, crate::paths::herarxctl());
    c.arg("--bus").arg(bus);
    c
}

/// Runs `herarxctl ARGS` as `user` with the given stdin lines.
pub fn run(user: Option<&TestUser>, bus: &str, args: &[&str], stdin_lines: &[&str]) -> Output {
    let mut child = ctl(user, bus)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run herarxctl");
    if let Some(mut input) = child.stdin.take() {
        for l in stdin_lines {
            let _ = writeln!(input, "{l}");
        }
    }
    child.wait_with_output().expect("wait herarxctl")
}

/// `herarxctl totp add`: reads the URI, answers with an oathtool code for the current step.
/// `step_up` is written first when given (the user already has a factor).
pub fn enrol_totp(user: &TestUser, bus: &str, name: &str, step_up: Option<&str>) -> Enrolled {
    let mut child = ctl(Some(user), bus)
        .args(["totp", "add", "--name", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run herarxctl totp add");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(code) = step_up {
        writeln!(input, "{code}").expect("write step-up code");
    }
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut uri = String::new();
    out.read_line(&mut uri).expect("read URI line");
    let uri = uri.trim().to_string();
    assert!(
        uri.starts_with("otpauth://totp/"),
        "first stdout line is not an otpauth URI: {uri:?}; stderr: {}",
        String::from_utf8_lossy(
            &child
                .wait_with_output()
                .map(|o| o.stderr)
                .unwrap_or_default()
        )
    );
    let secret = crate::totp::secret_of(&uri);
    let confirm_step = crate::totp::now_step();
    writeln!(
        input,
        "{}",
        crate::totp::code_at_step(&secret, confirm_step)
    )
    .expect("write code");
    drop(input);
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut out, &mut rest);
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    let status = child.wait().expect("wait herarxctl");
    assert!(
        status.success(),
        "herarxctl totp add failed for {}: {err}",
        user.name
    );
    Enrolled {
        secret,
        uri,
        confirm_step,
    }
}

/// The names of `user`'s factors, in the order `herarxctl status` lists them.
pub fn factor_names(user: &TestUser, bus: &str) -> Vec<String> {
    let out = run(Some(user), bus, &["status", "--json"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
    v["factors"]
        .as_array()
        .expect("factors in status")
        .iter()
        .map(|f| f["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}
