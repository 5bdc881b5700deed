//! syslog (authpriv) for one `pam_sm_authenticate` call: opened at its start, dropped before it
//! returns, so no socket outlives the call.
//!
//! Never stdout or stderr (they are the user's terminal), and never a response or a code: the
//! callers only pass reasons from `core` and names from PAM items.

use syslog::{Facility, Formatter3164, Logger, LoggerBackend};

pub struct Log {
    logger: Option<Logger<LoggerBackend, Formatter3164>>,
    /// `pam_herarx(service:auth): `, the shape `pam_syslog` gives, so grep finds both.
    prefix: String,
    debug: bool,
}

impl Log {
    /// Connects to the local syslog socket. Without one (no `/dev/log`), lines are dropped.
    pub fn open(service: &str) -> Self {
        Self::with(service, syslog::unix(formatter()).ok())
    }

    fn with(service: &str, logger: Option<Logger<LoggerBackend, Formatter3164>>) -> Self {
        let logger = logger.map(|mut logger| {
            // A stuck syslog daemon must not hang logins: drop the line instead of waiting.
            let _ = match &mut logger.backend {
                LoggerBackend::Unix(socket) => socket.set_nonblocking(true),
                LoggerBackend::UnixStream(stream) => stream.get_ref().set_nonblocking(true),
                _ => Ok(()),
            };
            logger
        });
        Log {
            logger,
            prefix: format!("({}:auth) ", clean(service)),
            debug: false,
        }
    }

    pub fn set_debug(&mut self, debug: bool) {
        self.debug = debug;
    }

    pub fn err(&mut self, message: &str) {
        let line = self.line(message);
        if let Some(l) = self.logger.as_mut() {
            let _ = l.err(line);
        }
    }

    pub fn warning(&mut self, message: &str) {
        let line = self.line(message);
        if let Some(l) = self.logger.as_mut() {
            let _ = l.warning(line);
        }
    }

    pub fn notice(&mut self, message: &str) {
        let line = self.line(message);
        if let Some(l) = self.logger.as_mut() {
            let _ = l.notice(line);
        }
    }

    pub fn info(&mut self, message: &str) {
        let line = self.line(message);
        if let Some(l) = self.logger.as_mut() {
            let _ = l.info(line);
        }
    }

    /// Only with the `debug` argument.
    pub fn debug(&mut self, message: &str) {
        if !self.debug {
            return;
        }
        let line = self.line(message);
        if let Some(l) = self.logger.as_mut() {
            let _ = l.debug(line);
        }
    }

    fn line(&self, message: &str) -> String {
        format!("{}{}", self.prefix, clean(message))
    }
}

fn formatter() -> Formatter3164 {
    Formatter3164 {
        facility: Facility::LOG_AUTHPRIV,
        // Set by the syslog daemon; looking it up here would cost a system call per login.
        hostname: None,
        process: "pam_herarx".into(),
        pid: std::process::id(),
    }
}

/// User names, remote hosts and daemon texts reach the log: keep each entry on one line and
/// free of control characters, so nobody can forge a second log entry through them.
pub fn clean(s: &str) -> String {
    const MAX: usize = 512;
    let mut out: String = s
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().nth(MAX).is_some() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_start_a_new_log_entry() {
        assert_eq!(
            clean("alice\nJan 1 sshd: Accepted"),
            "alice?Jan 1 sshd: Accepted"
        );
        assert_eq!(clean("a\r\tb\u{1b}[2J"), "a??b?[2J");
        assert_eq!(clean("ünïcödé ok"), "ünïcödé ok");
    }

    #[test]
    fn long_text_is_cut() {
        let s = "x".repeat(10_000);
        assert_eq!(clean(&s).len(), 515);
    }

    #[test]
    fn lines_go_to_authpriv_as_pam_herarx_with_the_service() {
        use std::os::unix::net::UnixDatagram;
        let dir = std::env::temp_dir().join(format!("pam_herarx-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        let mut log = Log::with("sshd", syslog::unix_custom(formatter(), &path).ok());
        log.info("user=alice: second factor verified");
        log.debug("not shown without debug");
        log.set_debug(true);
        log.debug("shown with debug");
        let mut buf = [0u8; 1024];
        let n = server.recv(&mut buf).unwrap();
        let line = String::from_utf8_lossy(&buf[..n]).into_owned();
        // authpriv (10) * 8 + info (6)
        assert!(line.starts_with("<86>"), "{line}");
        assert!(
            line.ends_with(&format!(
                " pam_herarx[{}]: (sshd:auth) user=alice: second factor verified",
                std::process::id()
            )),
            "{line}"
        );
        let n = server.recv(&mut buf).unwrap();
        let line = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(
            line.starts_with("<87>") && line.ends_with("shown with debug"),
            "{line}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn logging_without_a_syslog_socket_is_silent_and_harmless() {
        // Whether or not /dev/log exists here, none of this may fail or print.
        let mut log = Log::open("test\nservice");
        log.set_debug(true);
        log.err("e");
        log.warning("w");
        log.notice("n");
        log.info("i");
        log.debug("d");
        assert!(log.prefix.starts_with("(test?service:auth)"));
    }
}
