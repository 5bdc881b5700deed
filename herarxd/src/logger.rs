//! Log lines to syslog (facility authpriv), or to stderr when no syslog socket answers.
//!
//! Lines never carry a code, a seed, an otpauth URI or a transaction id: callers only log
//! [`AuditEntry`] lines and fixed daemon messages.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use syslog::{Facility, Formatter3164, LoggerBackend};

use crate::store::{AuditEntry, AuditResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
    Notice,
    Info,
}

/// Where log lines go.
pub trait LogSink: Send + Sync {
    fn log(&self, severity: Severity, line: &str);

    /// Logs a decision with the severity its result deserves.
    fn audit(&self, entry: &AuditEntry) {
        let severity = match entry.result {
            AuditResult::Success | AuditResult::Skip => Severity::Info,
            AuditResult::Denied | AuditResult::Locked | AuditResult::Refused => Severity::Notice,
            AuditResult::Error => Severity::Error,
        };
        self.log(severity, &entry.to_string());
    }
}

type Backend = syslog::Logger<LoggerBackend, Formatter3164>;

struct State {
    backend: Option<Backend>,
    next_attempt: Instant,
}

/// Syslog over a unix datagram socket: `/dev/log`, or the path given (`--log-socket`).
pub struct Syslog {
    socket: Option<PathBuf>,
    state: Mutex<State>,
}

/// How long to wait before trying again to reach a syslog socket that did not answer.
const RECONNECT_AFTER: Duration = Duration::from_secs(10);
/// The longest a log line may hold up a request.
const SEND_TIMEOUT: Duration = Duration::from_millis(50);

impl Syslog {
    /// Connects now if it can; otherwise lines go to stderr until a retry succeeds.
    pub fn new(socket: Option<PathBuf>) -> Self {
        let backend = connect(socket.as_ref());
        Syslog {
            socket,
            state: Mutex::new(State {
                backend,
                next_attempt: Instant::now() + RECONNECT_AFTER,
            }),
        }
    }

    /// Whether lines currently reach a syslog socket.
    pub fn connected(&self) -> bool {
        self.state
            .lock()
            .map(|s| s.backend.is_some())
            .unwrap_or(false)
    }
}

fn connect(socket: Option<&PathBuf>) -> Option<Backend> {
    let formatter = Formatter3164 {
        facility: Facility::LOG_AUTHPRIV,
        // Local syslog daemons add the host name themselves.
        hostname: None,
        process: "herarxd".into(),
        pid: std::process::id(),
    };
    let mut logger = match socket {
        Some(path) => syslog::unix_custom(formatter, path).ok(),
        None => syslog::unix(formatter).ok(),
    }?;
    // A stalled syslog daemon must not stall logins: a full socket queue blocks a send for
    // at most this long, then the line goes to stderr.
    let bounded = match &mut logger.backend {
        LoggerBackend::Unix(s) => s.set_write_timeout(Some(SEND_TIMEOUT)),
        LoggerBackend::UnixStream(w) => w.get_ref().set_write_timeout(Some(SEND_TIMEOUT)),
        _ => Ok(()),
    };
    bounded.ok()?;
    Some(logger)
}

fn send(backend: &mut Backend, severity: Severity, line: &str) -> bool {
    match severity {
        Severity::Error => backend.err(line),
        Severity::Warning => backend.warning(line),
        Severity::Notice => backend.notice(line),
        Severity::Info => backend.info(line),
    }
    .is_ok()
}

fn to_stderr(severity: Severity, line: &str) {
    let level = match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Notice => "notice",
        Severity::Info => "info",
    };
    // Nothing useful can be done if stderr is gone too.
    let _ = writeln!(std::io::stderr().lock(), "herarxd: {level}: {line}");
}

impl LogSink for Syslog {
    fn log(&self, severity: Severity, line: &str) {
        let mut state = crate::lock::lock(&self.state);
        if state.backend.is_none() && Instant::now() >= state.next_attempt {
            state.backend = connect(self.socket.as_ref());
            state.next_attempt = Instant::now() + RECONNECT_AFTER;
        }
        if let Some(backend) = state.backend.as_mut() {
            if send(backend, severity, line) {
                return;
            }
            // The syslog daemon went away: reconnect once, then fall back.
            state.backend = connect(self.socket.as_ref());
            state.next_attempt = Instant::now() + RECONNECT_AFTER;
            if let Some(backend) = state.backend.as_mut()
                && send(backend, severity, line)
            {
                return;
            }
            state.backend = None;
        }
        drop(state);
        to_stderr(severity, line);
    }
}

/// Keeps lines in memory, for tests.
#[cfg(test)]
#[derive(Default)]
pub struct MemoryLog(pub Mutex<Vec<(Severity, String)>>);

#[cfg(test)]
impl MemoryLog {
    pub fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|l| l.iter().map(|(_, s)| s.clone()).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
impl LogSink for MemoryLog {
    fn log(&self, severity: Severity, line: &str) {
        if let Ok(mut l) = self.0.lock() {
            l.push((severity, line.to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn lines_reach_a_custom_socket_as_authpriv() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let server = UnixDatagram::bind(&path).unwrap();
        let log = Syslog::new(Some(path));
        assert!(log.connected());
        log.log(Severity::Notice, "denied user=alice");
        let mut buf = [0u8; 512];
        let n = server.recv(&mut buf).unwrap();
        let line = String::from_utf8_lossy(&buf[..n]);
        // authpriv (10) * 8 + notice (5) = 85
        assert!(line.starts_with("<85>"), "{line}");
        assert!(line.contains("herarxd["), "{line}");
        assert!(line.ends_with("denied user=alice"), "{line}");
    }

    #[test]
    fn an_unreachable_socket_falls_back_without_failing() {
        let dir = tempfile::tempdir().unwrap();
        let log = Syslog::new(Some(dir.path().join("nothing-here")));
        assert!(!log.connected());
        log.log(Severity::Info, "still fine");
    }

    #[test]
    fn a_syslog_that_goes_away_falls_back_without_failing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let server = UnixDatagram::bind(&path).unwrap();
        let log = Syslog::new(Some(path.clone()));
        drop(server);
        std::fs::remove_file(&path).unwrap();
        log.log(Severity::Info, "after the syslog died");
        assert!(!log.connected());
    }
}
