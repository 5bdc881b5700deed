//! `herarxctl email add` / `herarxctl sms add` driven the way a script would, but one line at a
//! time: the process runs as the user with piped stdin, and the test writes each answer when it
//! becomes known (a step-up code, then the confirmation code once the message has arrived at a
//! sink). Everything the process writes is collected as it comes, so a test can wait for a
//! prompt or a sentence on stderr before answering.

use crate::TestUser;
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long `finish` waits for herarxctl to exit by default before killing it.
pub const FINISH_LIMIT: Duration = Duration::from_secs(30);

/// The prompt `herarxctl email|sms add` shows before reading the confirmation code.
pub const CONFIRM_PROMPT: &str = "Enter the code from that message: ";

/// A running `herarxctl` with piped stdin whose stdout and stderr are being collected.
pub struct Interactive {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
    /// The command line, for messages.
    what: String,
}

/// How a `herarxctl` run ended: its exit status and everything it wrote.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// Whether herarxctl exited with status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The exit code (None when killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Panics with the output unless the run succeeded.
    pub fn assert_success(&self) -> &Self {
        assert!(self.success(), "herarxctl failed: {self:#?}");
        self
    }
}

fn collect(mut from: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => into
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(&buf[..n]),
            }
        }
    })
}

/// Starts `herarxctl --bus BUS ARGS` as `user` (root for None) with piped stdin, stdout and
/// stderr; nothing is written to stdin until `write_line`.
pub fn spawn(user: Option<&TestUser>, bus: &str, args: &[&str]) -> Interactive {
    let mut child = crate::users::command_as(user, crate::paths::herarxctl())
        .arg("--bus")
        .arg(bus)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run herarxctl");
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let readers = vec![
        collect(child.stdout.take().expect("stdout"), stdout.clone()),
        collect(child.stderr.take().expect("stderr"), stderr.clone()),
    ];
    Interactive {
        stdin: child.stdin.take(),
        child,
        stdout,
        stderr,
        readers,
        what: format!("herarxctl {}", args.join(" ")),
    }
}

/// Starts `herarxctl KIND add DESTINATION EXTRA...` as `user` (KIND is "email" or "sms"; EXTRA
/// e.g. `["--name", "work"]`). Answer it with `write_line`, then `finish`.
pub fn spawn_add(
    user: &TestUser,
    bus: &str,
    kind: &str,
    destination: &str,
    extra: &[&str],
) -> Interactive {
    let mut args = vec![kind, "add", destination];
    args.extend_from_slice(extra);
    spawn(Some(user), bus, &args)
}

impl Interactive {
    /// Writes `line` and a newline to stdin (ignored if herarxctl already closed it).
    pub fn write_line(&mut self, line: &str) {
        if let Some(input) = self.stdin.as_mut() {
            let _ = writeln!(input, "{line}");
            let _ = input.flush();
        }
    }

    /// Closes stdin: herarxctl sees the end of its answers.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Everything written to stdout so far (lossy UTF-8).
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// Everything written to stderr so far (prompts and notes; lossy UTF-8).
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// Whether herarxctl has exited already (without reaping the status for `finish`).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits until stderr contains `needle`; Err with what stderr holds if herarxctl exited
    /// without writing it or `timeout` passed.
    pub fn wait_stderr(&mut self, needle: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stderr().contains(needle) {
                return Ok(());
            }
            if self.exited() {
                // Give the reader a moment to collect the last bytes.
                std::thread::sleep(Duration::from_millis(50));
                return if self.stderr().contains(needle) {
                    Ok(())
                } else {
                    Err(format!(
                        "{} exited before writing {needle:?}; stderr: {}; stdout: {}",
                        self.what,
                        self.stderr(),
                        self.stdout()
                    ))
                };
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{}: no {needle:?} on stderr within {timeout:?}; stderr: {}; stdout: {}",
                    self.what,
                    self.stderr(),
                    self.stdout()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Like `wait_stderr`, but panics on Err.
    pub fn expect_stderr(&mut self, needle: &str, timeout: Duration) {
        if let Err(e) = self.wait_stderr(needle, timeout) {
            panic!("{e}");
        }
    }

    /// Closes stdin and waits for herarxctl to exit (killing it, by its pid, after `timeout`:
    /// the status then says it was killed), returning its status and all its output.
    pub fn finish_within(mut self, timeout: Duration) -> Finished {
        self.close_stdin();
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                break st;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                break self.child.wait().expect("wait herarxctl");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        Finished {
            status,
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
    }

    /// `finish_within(FINISH_LIMIT)`.
    pub fn finish(self) -> Finished {
        self.finish_within(FINISH_LIMIT)
    }
}

impl Drop for Interactive {
    fn drop(&mut self) {
        // A test that panicked mid-conversation: do not leave herarxctl waiting on stdin.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The whole `herarxctl KIND add DESTINATION EXTRA...` conversation: writes `step_up` first when
/// given (the user already has a way to sign in), waits for the confirmation prompt, then calls
/// `code` (which should wait for the message at the sink and return its code; it gets what
/// stderr said so far) and writes its answer. Returns how herarxctl ended; assert on it.
pub fn add_contact(
    user: &TestUser,
    bus: &str,
    kind: &str,
    destination: &str,
    extra: &[&str],
    step_up: Option<&str>,
    code: impl FnOnce(&str) -> String,
) -> Finished {
    let mut run = spawn_add(user, bus, kind, destination, extra);
    if let Some(s) = step_up {
        run.write_line(s);
    }
    if let Err(e) = run.wait_stderr(CONFIRM_PROMPT, Duration::from_secs(30)) {
        // It ended early (refused the destination or the step-up): hand back how.
        let f = run.finish_within(Duration::from_secs(5));
        eprintln!("{e}");
        return f;
    }
    let said = run.stderr();
    let answer = code(&said);
    run.write_line(&answer);
    run.finish()
}
