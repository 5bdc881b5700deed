//! Who calls and from where: the caller as the bus (or the kernel) says, and the scope of a
//! login (local, or remote from its source) derived by the daemon from PAM_RHOST.

use std::net::IpAddr;

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

/// The scope of a login from `rhost`: local, or remote from its address (an IPv4-mapped IPv6
/// address counts as its IPv4 address, so one client is one source), or its host name.
pub fn scope_of(rhost: &str) -> Scope {
    if !is_remote(rhost) {
        return Scope::Local;
    }
    match crate::config::rhost_address(rhost) {
        Some(addr) => Scope::Remote(addr.to_string()),
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
