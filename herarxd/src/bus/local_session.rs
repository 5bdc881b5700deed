//! "Is this caller sitting at this machine?": the gate in front of every security-key
//! operation a user starts (`AddSecurityKey`, and the touch step-up inside it).
//!
//! Any process on the machine can call the daemon, and the daemon drives every plugged-in key.
//! Without this gate a user logged in over SSH could send PINs to the console user's key (until
//! it blocks for good) or keep it busy so that the console user's touches fail. So a caller
//! other than root must be in an active local login session of its own user:
//!
//! - **logind** (when `org.freedesktop.login1` is on the system bus): the session of the
//!   caller's pid must exist, belong to the caller's uid, not be `Remote`, and be `Active` or
//!   sit on a seat. logind knows every login manager and remote service; it is preferred.
//! - **kernel audit session** (no logind, e.g. PID 1 is not systemd): the caller's login uid
//!   (set by `pam_loginuid` at a login, inherited by the session, unchangeable without
//!   `CAP_AUDIT_CONTROL`) must be its own uid — so `su`, `sudo -u`, cron-less daemons and
//!   services are refused — and the process that opened the session (the topmost ancestor with
//!   the same audit session id: the login program that ran `pam_loginuid`) must be root's and
//!   must not be a known remote-login server (sshd, dropbear, xrdp, telnetd, rlogind). What
//!   this cannot tell: a remote-login server not on that list looks local. When the chain to
//!   the opener is broken (a detached process, whose parent became init) or unreadable, it
//!   cannot tell at all and refuses.
//!
//! Root callers pass: root is the login path (the PAM module under login or a display
//! manager), which already refuses keys for remote logins, and root can open the devices
//! anyway. Every refusal says why and what to do.
//!
//! The decision ([`decide`]) is plain data in, verdict out; only `facts_of` (in `crate::bus`) and [`kernel_facts`] read `/proc`
//! and the bus.

use herarx_proto::HerarxError;

use crate::state::session_trust::NO_SESSION;

/// Programs whose sessions are remote logins, by executable name.
pub const REMOTE_LOGIN_PROGRAMS: &[&str] = &[
    "sshd",
    "sshd-session",
    "dropbear",
    "xrdp",
    "xrdp-sesman",
    "in.telnetd",
    "telnetd",
    "in.rlogind",
    "rlogind",
];

/// How far up the process tree to look for the session's opener (a login's shell is a few
/// levels below it; a deeper chain is not worth following).
const ANCESTORS_MAX: usize = 64;

/// What logind says of the caller's session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogindSession {
    pub id: String,
    pub uid: u32,
    pub remote: bool,
    pub active: bool,
    /// The seat's name; empty when the session has none.
    pub seat: String,
}

/// The process that opened the caller's audit session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opener {
    pub pid: u32,
    pub uid: u32,
    /// The name of its executable (`/proc/PID/exe`, last component).
    pub program: String,
}

/// Everything the decision needs, read from the bus and `/proc`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Facts {
    /// logind is running and answered.
    Logind(Option<LogindSession>),
    /// logind is running but could not be asked (the reason).
    LogindFailed(String),
    /// No logind: the kernel's view.
    Kernel {
        login_uid: Option<u32>,
        session: u32,
        /// `None` when the chain to it could not be followed.
        opener: Option<Opener>,
    },
}

const WHAT_TO_DO: &str = "Run `herarxctl key ...` from a terminal of a local login on this \
                          machine (its console or its desktop), as yourself (not through su or \
                          sudo).";

fn refused(why: &str) -> HerarxError {
    HerarxError::PermissionDenied(format!(
        "Security keys can only be used from a local login session: {why}. {WHAT_TO_DO}"
    ))
}

/// Whether `uid`, described by `facts`, may use the security keys plugged into this machine.
/// `Err` is the refusal to return; its text also goes to the audit log.
pub fn decide(uid: u32, facts: &Facts) -> Result<(), HerarxError> {
    if uid == 0 {
        return Ok(());
    }
    match facts {
        Facts::LogindFailed(why) => Err(refused(&format!(
            "herarxd could not ask systemd-logind about your session ({why}); try again"
        ))),
        Facts::Logind(None) => Err(refused("systemd-logind knows no session of your process")),
        Facts::Logind(Some(s)) if s.uid != uid => Err(refused(&format!(
            "your process runs in session {} of another user (su or sudo?)",
            s.id
        ))),
        Facts::Logind(Some(s)) if s.remote => {
            Err(refused(&format!("your session {} is a remote login", s.id)))
        }
        Facts::Logind(Some(s)) if !s.active && s.seat.is_empty() => Err(refused(&format!(
            "your session {} is neither active nor on a seat",
            s.id
        ))),
        Facts::Logind(Some(_)) => Ok(()),
        Facts::Kernel {
            login_uid,
            session,
            opener,
        } => {
            if *session == NO_SESSION || login_uid.is_none() {
                return Err(refused(
                    "your process is not in a login session (no login uid: it was not \
                     started from a login)",
                ));
            }
            if *login_uid != Some(uid) {
                return Err(refused(
                    "your process belongs to another user's login (su or sudo?)",
                ));
            }
            let Some(opener) = opener else {
                return Err(refused(
                    "herarxd cannot tell which login started your session (no systemd-logind \
                     here, and your process is detached from it)",
                ));
            };
            if opener.uid != 0 {
                return Err(refused(
                    "herarxd cannot tell which login started your session (no systemd-logind \
                     here, and the session was not opened by a root login program)",
                ));
            }
            if REMOTE_LOGIN_PROGRAMS.contains(&opener.program.as_str()) {
                return Err(refused(&format!(
                    "your session was opened by {} (a remote login)",
                    opener.program
                )));
            }
            Ok(())
        }
    }
}

/// One `/proc/PID/stat` field set: parent pid.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses; skip past the last ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

fn real_uid_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn program_of(pid: u32) -> Option<String> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let name = exe.file_name()?.to_string_lossy().into_owned();
    // A replaced binary reads back as "NAME (deleted)".
    Some(name.trim_end_matches(" (deleted)").to_owned())
}

/// The topmost ancestor of `pid` (itself included) in audit session `session`.
fn opener_of(pid: u32, session: u32) -> Option<Opener> {
    let mut top = pid;
    for _ in 0..ANCESTORS_MAX {
        let parent = parent_of(top)?;
        if parent == 0 || crate::state::session_trust::session_of(parent) != session {
            return Some(Opener {
                pid: top,
                uid: real_uid_of(top)?,
                program: program_of(top)?,
            });
        }
        top = parent;
    }
    None
}

/// The kernel's view of process `pid`.
pub fn kernel_facts(pid: u32) -> Facts {
    let session = crate::state::session_trust::session_of(pid);
    Facts::Kernel {
        login_uid: crate::state::session_trust::login_uid_of(pid),
        session,
        opener: (session != NO_SESSION)
            .then(|| opener_of(pid, session))
            .flatten(),
    }
}

#[cfg(test)]
mod tests;
