//! Session trust: "once signed in, you are not asked again in that session until you sign
//! out".
//!
//! A login that passed the second factor gets a one-time ticket. The module's session hook,
//! running after `pam_loginuid` in the same login, hands it back; the daemon then trusts the
//! caller's kernel audit session id (`/proc/PID/sessionid`) for that user until logout or the
//! policy's time. Every process of the session (the shell, `sudo`, a screen locker) inherits
//! that id, and no process can change its own without `CAP_AUDIT_CONTROL`, so a user cannot
//! slip another session in. A trust is keyed by (session, user), and it is opened and used only
//! where the process's login uid (`/proc/PID/loginuid`, inherited the same way) is that user's
//! uid, and only for logins that are not remote: `su bob` inside alice's session neither gets
//! nor replaces her trust, and a daemon started by hand inside the session (an sshd on a second
//! port) cannot pass its remote logins through it. Kept in memory only: a daemon restart (or a
//! reboot, which reuses session ids) forgets every trust, and users are asked again: the safe
//! side.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// The audit session id of a process without one (no `pam_loginuid` in its login).
pub const NO_SESSION: u32 = u32::MAX;
/// How long a ticket waits for its session hook.
pub const TICKET_SECONDS: u64 = 120;
/// Tickets and sessions kept at most (a flood of logins cannot grow memory without bound).
pub const ENTRIES_MAX: usize = 65_536;

struct Ticket {
    user: String,
    expires: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trust {
    /// The process that opened it (sshd's or login's): only it may close it, so that the
    /// session hooks of a `sudo` inside the session do not end the session's trust.
    pub opener: u32,
    pub expires: u64,
}

#[derive(Default)]
struct Tables {
    tickets: HashMap<String, Ticket>,
    /// By (audit session, canonical user name).
    sessions: HashMap<(u32, String), Trust>,
}

#[derive(Default)]
pub struct Sessions(Mutex<Tables>);

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, Tables> {
        crate::lock::lock(&self.0)
    }

    fn prune(t: &mut Tables, now: u64) {
        t.tickets.retain(|_, k| k.expires > now);
        t.sessions.retain(|_, s| s.expires > now);
    }

    /// Records a ticket for `user` (made by the caller from random bytes). `false` when the
    /// table is full even after pruning: the ticket must then not be handed out.
    pub fn issue(&self, ticket: &str, user: &str, now: u64) -> bool {
        let mut t = self.lock();
        if t.tickets.len() >= ENTRIES_MAX {
            Self::prune(&mut t, now);
        }
        if t.tickets.len() >= ENTRIES_MAX {
            return false;
        }
        t.tickets.insert(
            ticket.to_owned(),
            Ticket {
                user: user.to_owned(),
                expires: now.saturating_add(TICKET_SECONDS),
            },
        );
        true
    }

    /// Trusts `session` for `user` until `now + seconds`, given a ticket of that user: the
    /// ticket is consumed whatever the outcome. `false` when the ticket is unknown, expired,
    /// another user's, or the process has no audit session.
    pub fn open(
        &self,
        ticket: &str,
        user: &str,
        session: u32,
        opener: u32,
        seconds: u64,
        now: u64,
    ) -> bool {
        let mut t = self.lock();
        let Some(k) = t.tickets.remove(ticket) else {
            return false;
        };
        if k.user != user || k.expires <= now || session == NO_SESSION || seconds == 0 {
            return false;
        }
        if t.sessions.len() >= ENTRIES_MAX {
            Self::prune(&mut t, now);
        }
        if t.sessions.len() >= ENTRIES_MAX {
            return false;
        }
        t.sessions.insert(
            (session, user.to_owned()),
            Trust {
                opener,
                expires: now.saturating_add(seconds),
            },
        );
        true
    }

    /// Whether `session` is trusted for `user` at `now`; the trust, when it is.
    pub fn trusted(&self, session: u32, user: &str, now: u64) -> Option<Trust> {
        if session == NO_SESSION {
            return None;
        }
        self.lock()
            .sessions
            .get(&(session, user.to_owned()))
            .filter(|s| s.expires > now)
            .cloned()
    }

    /// Ends every trust and ticket of `user` (an admin reset). Returns how many sessions.
    pub fn forget_user(&self, user: &str) -> usize {
        let mut t = self.lock();
        t.tickets.retain(|_, k| k.user != user);
        let before = t.sessions.len();
        t.sessions.retain(|(_, u), _| u != user);
        before - t.sessions.len()
    }

    /// Ends the trust of `session` when `closer` opened it for `user`.
    pub fn close(&self, session: u32, user: &str, closer: u32) -> bool {
        let mut t = self.lock();
        let key = (session, user.to_owned());
        let mine = t.sessions.get(&key).is_some_and(|s| s.opener == closer);
        if mine {
            t.sessions.remove(&key);
        }
        mine
    }
}

/// The login uid of process `pid` (set by `pam_loginuid`, inherited by the whole session);
/// `None` when unset (`4294967295`) or the process is gone.
pub fn login_uid_of(pid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/loginuid"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|u| *u != u32::MAX)
}

/// The kernel audit session id of process `pid`; [`NO_SESSION`] when it has none or is gone.
pub fn session_of(pid: u32) -> u32 {
    std::fs::read_to_string(format!("/proc/{pid}/sessionid"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(NO_SESSION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_opens_one_session_for_its_user_once() {
        let s = Sessions::default();
        s.issue("t1", "alice", 100);
        assert!(
            !s.open("t1", "bob", 7, 500, 3600, 101),
            "another user's ticket"
        );
        assert!(
            !s.open("t1", "alice", 7, 500, 3600, 101),
            "consumed by the failed try"
        );
        s.issue("t2", "alice", 100);
        assert!(s.open("t2", "alice", 7, 500, 3600, 101));
        assert!(!s.open("t2", "alice", 8, 500, 3600, 101), "once");
        assert!(s.trusted(7, "alice", 102).is_some());
        assert!(s.trusted(7, "bob", 102).is_none(), "per user");
        assert!(s.trusted(8, "alice", 102).is_none(), "per session");
        assert!(s.trusted(7, "alice", 101 + 3600).is_none(), "expires");
    }

    #[test]
    fn tickets_expire_and_need_an_audit_session() {
        let s = Sessions::default();
        s.issue("t", "alice", 100);
        assert!(!s.open("t", "alice", 7, 500, 3600, 100 + TICKET_SECONDS));
        s.issue("u", "alice", 100);
        assert!(!s.open("u", "alice", NO_SESSION, 500, 3600, 101));
        assert!(s.trusted(NO_SESSION, "alice", 101).is_none());
        s.issue("v", "alice", 100);
        assert!(!s.open("v", "alice", 7, 500, 0, 101), "trust off");
    }

    #[test]
    fn a_reset_forgets_the_users_sessions_and_tickets_only() {
        let s = Sessions::default();
        s.issue("t1", "alice", 100);
        s.issue("t2", "bob", 100);
        assert!(s.open("t1", "alice", 7, 500, 3600, 101));
        assert!(s.open("t2", "bob", 8, 501, 3600, 101));
        s.issue("t3", "alice", 102);
        assert_eq!(s.forget_user("alice"), 1);
        assert!(s.trusted(7, "alice", 103).is_none());
        assert!(
            !s.open("t3", "alice", 9, 502, 3600, 103),
            "the pending ticket went too"
        );
        assert!(s.trusted(8, "bob", 103).is_some());
    }

    #[test]
    fn another_users_trust_in_the_same_session_replaces_nothing() {
        let s = Sessions::default();
        s.issue("a", "alice", 100);
        assert!(s.open("a", "alice", 7, 500, 3600, 101));
        // `su bob` inside alice's session, had it a ticket of bob's.
        s.issue("b", "bob", 100);
        assert!(s.open("b", "bob", 7, 600, 3600, 101));
        assert!(s.trusted(7, "alice", 102).is_some(), "alice's trust stands");
        assert!(s.close(7, "bob", 600));
        assert!(s.trusted(7, "alice", 102).is_some(), "bob's logout is his");
        assert!(
            !s.close(7, "alice", 600),
            "bob's su cannot end alice's trust"
        );
    }

    #[test]
    fn this_process_has_a_login_uid_or_none() {
        let shown = std::fs::read_to_string("/proc/self/loginuid").unwrap();
        let shown: u32 = shown.trim().parse().unwrap();
        let expected = (shown != u32::MAX).then_some(shown);
        assert_eq!(login_uid_of(std::process::id()), expected);
        assert_eq!(login_uid_of(u32::MAX - 1), None, "no such process");
    }

    #[test]
    fn only_the_opener_closes() {
        let s = Sessions::default();
        s.issue("t", "alice", 100);
        assert!(s.open("t", "alice", 7, 500, 3600, 101));
        assert!(!s.close(7, "alice", 600), "a sudo inside the session");
        assert!(s.trusted(7, "alice", 102).is_some());
        assert!(!s.close(7, "bob", 500));
        assert!(s.close(7, "alice", 500));
        assert!(s.trusted(7, "alice", 102).is_none());
    }

    #[test]
    fn this_process_has_a_readable_session_id() {
        // This process's own id reads back as what the kernel shows (NO_SESSION when no
        // loginuid was ever set, as in a container started without one).
        let shown = std::fs::read_to_string("/proc/self/sessionid").unwrap();
        assert_eq!(
            session_of(std::process::id()),
            shown.trim().parse::<u32>().unwrap()
        );
        assert_eq!(session_of(u32::MAX - 1), NO_SESSION, "no such process");
    }
}
