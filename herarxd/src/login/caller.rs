//! Who calls and from where: the caller as the bus (or the kernel) says, and the scope of a
//! login (local, or remote from its source) derived by the daemon from PAM_RHOST.

use std::net::IpAddr;

use herarx_proto::limits;

use crate::config::Config;
use crate::state::valid_text;
use crate::store::Scope;

/// Who calls, as the bus says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The sender's unique bus name (`:1.42`).
    pub bus_name: String,
    pub uid: u32,
    /// The kernel audit session id of the calling process ([`NO_SESSION`] when it has none or
    /// was not looked up because session trust is off).
    pub session: u32,
    /// The calling process's login uid (`/proc/PID/loginuid`, set by `pam_loginuid` at the
    /// login that began its session and inherited by every process of it); `None` when unset
    /// or not looked up. Session trust holds only where it is the user's own uid.
    pub login_uid: Option<u32>,
    /// Whether this caller may drive the security keys plugged into this machine: root (the
    /// login path) always; anyone else (a screen locker) only from a local login session of
    /// its own (`crate::bus::local_session`). Otherwise its logins are not offered a key.
    pub keys_allowed: bool,
}

/// Whether a login from `rhost` is remote: non-empty and not a loopback address or localhost.
pub fn is_remote(rhost: &str) -> bool {
    let h = rhost.trim();
    if h.is_empty() || h.eq_ignore_ascii_case("localhost") || h.eq_ignore_ascii_case("localhost.") {
        return false;
    }
    let h = h
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(h);
    match h.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => !v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => {
            !(v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()))
        }
        Err(_) => true,
    }
}

/// The scope of a login from `rhost`, `remote` as [`Request::remote`] decided: local, or remote
/// from its address (an IPv4-mapped IPv6 address counts as its IPv4 address, so one client is
/// one source), its host name, or "unknown" (a service that is always remote, without rhost).
pub fn scope_of(rhost: &str, remote: bool) -> Scope {
    if !remote {
        return Scope::Local;
    }
    match crate::config::rhost_address(rhost) {
        Some(addr) => Scope::Remote(addr.to_string()),
        None if rhost.trim().is_empty() => Scope::Remote("unknown".to_owned()),
        None => Scope::Remote(rhost.trim().to_ascii_lowercase()),
    }
}

/// What the PAM module asks: whose login, through which service, from which host and terminal,
/// and what sshd said of the keys it accepted. Claims, not facts: they choose the account, fill
/// the audit record and (rhost, service) the scope; the caller's identity comes from [`Caller`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    pub user: &'a str,
    pub service: &'a str,
    pub rhost: &'a str,
    pub tty: &'a str,
    pub ssh_auth_info: &'a str,
}

impl Request<'_> {
    /// What is wrong with the request's arguments (their lengths, control characters), said
    /// for the caller; `None` when nothing is.
    pub fn problem(&self) -> Option<String> {
        if self.user.is_empty() || !valid_text(self.user, limits::USER_MAX) {
            Some(format!(
                "the user name must be 1 to {} bytes without control characters",
                limits::USER_MAX
            ))
        } else if !valid_text(self.service, limits::SERVICE_MAX) {
            Some(format!(
                "the service must be at most {} bytes without control characters",
                limits::SERVICE_MAX
            ))
        } else if !valid_text(self.rhost, limits::RHOST_MAX) {
            Some(format!(
                "the remote host must be at most {} bytes without control characters",
                limits::RHOST_MAX
            ))
        } else if !valid_text(self.tty, limits::TTY_MAX) {
            Some(format!(
                "the tty must be at most {} bytes without control characters",
                limits::TTY_MAX
            ))
        } else if self.ssh_auth_info.len() > limits::SSH_AUTH_INFO_MAX {
            Some(format!(
                "the SSH authentication info must be at most {} bytes",
                limits::SSH_AUTH_INFO_MAX
            ))
        } else {
            None
        }
    }

    /// Whether the login is remote: from PAM_RHOST, or by the service's policy
    /// (`services.NAME.always_remote`); never from anything the caller says.
    pub fn remote(&self, config: &Config) -> bool {
        is_remote(self.rhost) || config.always_remote(self.service)
    }
}
