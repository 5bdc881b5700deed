//! SMS for the tests: a real HTTP server on 127.0.0.1 (`sms_sink.py`, the standard library's
//! `http.server`) standing in for an SMS gateway's API, and a recording stand-in for an SMS
//! command.
//!
//! The server records every request (method, path, headers, body) as a file of its temp dir on
//! arrival and answers 200 `{"status":"queued"}`. The test switches its behaviour at run time:
//! `set_hang` keeps requests waiting (60 s at most) until switched off again, `set_fail` makes
//! it answer 500, `set_response` changes the 200 body. It is stopped by its pid and its dir
//! removed when dropped; it also exits by itself if the test process dies first.

use crate::mail::{
    Invocation, find_code, numbered, recorded_invocations, recording_script, remove_if_present,
    spawn_sink, stop_child, wait_until, write_atomic,
};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

const SMS_SCRIPT: &str = include_str!("sms_sink.py");

/// A real HTTP server on 127.0.0.1:`port` recording every request.
pub struct SmsSink {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl SmsSink {
    pub fn start() -> SmsSink {
        let dir = tempfile::Builder::new()
            .prefix("hx-sms-")
            .tempdir()
            .expect("sms sink tempdir");
        let (child, port) = spawn_sink(
            dir.path(),
            "sms_sink.py",
            SMS_SCRIPT,
            &[],
            "Debian's python3 (scripts/install-test-deps.sh)",
        );
        SmsSink {
            port,
            child: Some(child),
            dir,
        }
    }

    /// `http://127.0.0.1:PORT/path` (`path` with or without its leading `/`).
    pub fn url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}/{}",
            self.port,
            path.strip_prefix('/').unwrap_or(path)
        )
    }

    /// The sink's temp dir (`requests/`, `log`, `port`, the switches).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// What the server wrote to stderr (one line per answered request).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// Every request received so far (recorded on arrival, before any hang), in order.
    pub fn requests(&self) -> Vec<SmsRequest> {
        numbered(&self.dir.path().join("requests"), ".json")
            .into_iter()
            .map(|(_, path)| {
                let v: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(&path).expect("read recorded request"))
                        .expect("parse recorded request");
                let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
                SmsRequest {
                    method: text("method"),
                    path: text("path"),
                    headers: v["headers"]
                        .as_array()
                        .map(|hs| {
                            hs.iter()
                                .map(|h| {
                                    (
                                        h[0].as_str().unwrap_or_default().to_string(),
                                        h[1].as_str().unwrap_or_default().to_string(),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    body: text("body"),
                }
            })
            .collect()
    }

    /// Waits until at least `n` requests arrived and returns them all; panics (with what did
    /// arrive and the server's log) after `timeout`.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<SmsRequest> {
        wait_until(n, timeout, || self.requests()).unwrap_or_else(|got| {
            panic!(
                "SMS sink on port {}: wanted {n} request(s) within {timeout:?}, got {}:\n{:#?}\nlog:\n{}",
                self.port,
                got.len(),
                got,
                self.log()
            )
        })
    }

    /// On: requests wait (after being recorded) until it is switched off, 60 s at most; those
    /// already waiting are answered within 0.1 s of switching it off.
    pub fn set_hang(&self, on: bool) {
        self.switch("hang", on);
    }

    /// On: requests are answered 500 `{"status":"failed"}`.
    pub fn set_fail(&self, on: bool) {
        self.switch("fail", on);
    }

    /// The body of the 200 answers (None: `{"status":"queued"}` again).
    pub fn set_response(&self, body: Option<&str>) {
        let path = self.dir.path().join("response");
        match body {
            Some(body) => write_atomic(&path, body.as_bytes()),
            None => remove_if_present(&path),
        }
    }

    fn switch(&self, name: &str, on: bool) {
        let path = self.dir.path().join(name);
        if on {
            write_atomic(&path, b"");
        } else {
            remove_if_present(&path);
        }
    }

    /// SIGTERM to the server by its pid (even with requests hanging), SIGKILL if it lingers.
    pub fn stop(&mut self) {
        stop_child(&mut self.child);
    }
}

impl Drop for SmsSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One request as the sink received it.
#[derive(Clone, Debug, Default)]
pub struct SmsRequest {
    pub method: String,
    /// The request target as sent: path and query.
    pub path: String,
    /// In the order sent, names as sent.
    pub headers: Vec<(String, String)>,
    /// Lossily UTF-8.
    pub body: String,
}

impl SmsRequest {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; panics (showing the body) if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("request body is not JSON ({e}): {:?}", self.body))
    }

    /// The body as `application/x-www-form-urlencoded` pairs, decoded.
    pub fn form(&self) -> Vec<(String, String)> {
        self.body
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (form_decode(k), form_decode(v))
            })
            .collect()
    }

    /// The first code (6 to 8 digits standing alone, see `mail::find_code`) in the body: as
    /// sent, or form-decoded when the request says it is a form (`code+is+123456`,
    /// `%20123456`).
    pub fn code(&self) -> Option<String> {
        // A form body is searched decoded: raw, "%20" and the code read as one run of digits.
        let form = self
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
        if form {
            find_code(&form_decode(&self.body))
        } else {
            find_code(&self.body)
        }
    }
}

/// `+` as space, `%XX` as that byte, read as UTF-8.
fn form_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

const SMS_COMMAND_NAME: &str = "sms-send";

/// Writes `dir/sms-send`, an executable stand-in for an SMS command that records each run
/// (argv one per line, then stdin) under `dir/sms-send.calls/NNNNNN/` and exits 0 (or as
/// `mail::set_recording_exit` says). Read the runs with `recorded_sms_commands`.
pub fn recording_sms_command(dir: &Path) -> PathBuf {
    recording_script(dir, SMS_COMMAND_NAME)
}

/// The finished runs of `dir/sms-send`, in order.
pub fn recorded_sms_commands(dir: &Path) -> Vec<Invocation> {
    recorded_invocations(dir, SMS_COMMAND_NAME)
}

/// Waits until `dir/sms-send` ran at least `n` times to the end; panics after `timeout`.
pub fn wait_for_sms_commands(dir: &Path, n: usize, timeout: Duration) -> Vec<Invocation> {
    wait_until(n, timeout, || recorded_sms_commands(dir)).unwrap_or_else(|got| {
        panic!(
            "{}: wanted {n} run(s) within {timeout:?}, got {}:\n{got:#?}",
            dir.join(SMS_COMMAND_NAME).display(),
            got.len()
        )
    })
}
