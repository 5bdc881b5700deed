//! The table of live login transactions and who may add to it.
//!
//! Capacity is shared, so it is divided: one bus connection holds at most
//! [`Limits::per_connection`], one non-root uid at most [`Limits::per_uid`] across all its
//! connections, and the last [`Limits::root_reserved`] places are root's alone. Root callers
//! are sshd, login, sudo and su; anyone else is a screen locker verifying its own user, so no
//! local user can fill the table and lock everybody out (they get `Busy`, root does not).

use std::collections::HashMap;

use super::Txn;

/// Live transactions one bus connection may hold.
pub const TXNS_PER_CONNECTION_MAX: usize = 16;
/// Live transactions one non-root uid may hold across all its connections (a screen locker
/// needs one; a few more for several lockers or a retry while the old one times out).
pub const TXNS_PER_UID_MAX: usize = 8;
/// Live transactions in all.
pub const TXNS_MAX: usize = 4096;
/// Of [`TXNS_MAX`], the places only uid 0 may take.
pub const TXNS_ROOT_RESERVED: usize = 1024;
/// The longest a non-root caller's transaction lives (or `login.timeout_seconds` if shorter):
/// a place held by a user is freed soon even if its client never answers.
pub const NON_ROOT_TIMEOUT_SECONDS: u64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub per_connection: usize,
    pub per_uid: usize,
    pub total: usize,
    pub root_reserved: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_connection: TXNS_PER_CONNECTION_MAX,
            per_uid: TXNS_PER_UID_MAX,
            total: TXNS_MAX,
            root_reserved: TXNS_ROOT_RESERVED,
        }
    }
}

/// Why a transaction was not admitted: the message the caller sees, and the audit reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    Connection,
    Uid,
    /// The places open to non-root callers are taken.
    Shared,
    All,
}

impl Full {
    pub fn message(self, limits: &Limits) -> String {
        match self {
            Full::Connection => format!(
                "This connection already has {} logins under way: finish or cancel one, then \
                 try again.",
                limits.per_connection
            ),
            Full::Uid => format!(
                "You already have {} logins under way (the most one user may have): finish or \
                 cancel one, or wait a minute for them to time out, then try again.",
                limits.per_uid
            ),
            Full::Shared | Full::All => {
                "Too many logins are under way; try again in a moment.".to_owned()
            }
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            Full::Connection => "too many logins under way on this connection",
            Full::Uid => "too many logins under way for this caller uid",
            Full::Shared => "too many logins under way (the rest is reserved for root)",
            Full::All => "too many logins under way",
        }
    }
}

#[derive(Default)]
pub(super) struct Table {
    pub(super) by_id: HashMap<String, Txn>,
    by_owner: HashMap<String, Vec<String>>,
    /// Live transactions per non-root caller uid.
    by_uid: HashMap<u32, usize>,
    pub(super) last_prune: u64,
    limits: Limits,
}

impl Table {
    pub(super) fn with_limits(limits: Limits) -> Table {
        Table {
            limits,
            ..Table::default()
        }
    }

    pub(super) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether `uid` on connection `owner` may start one more transaction.
    pub(super) fn admit(&self, owner: &str, uid: u32) -> Result<(), Full> {
        let l = &self.limits;
        let total = self.by_id.len();
        if total >= l.total {
            return Err(Full::All);
        }
        if self.by_owner.get(owner).map_or(0, Vec::len) >= l.per_connection {
            return Err(Full::Connection);
        }
        if uid != 0 {
            if self.by_uid.get(&uid).copied().unwrap_or(0) >= l.per_uid {
                return Err(Full::Uid);
            }
            if total >= l.total.saturating_sub(l.root_reserved) {
                return Err(Full::Shared);
            }
        }
        Ok(())
    }

    /// Adds `txn` under `id`; the caller checked [`Table::admit`] under the same lock.
    pub(super) fn insert(&mut self, id: String, txn: Txn) {
        self.by_owner
            .entry(txn.owner.clone())
            .or_default()
            .push(id.clone());
        if txn.ctx.caller_uid != 0 {
            *self.by_uid.entry(txn.ctx.caller_uid).or_default() += 1;
        }
        self.by_id.insert(id, txn);
    }

    /// Every removal goes through here, so that the counts stay exact.
    pub(super) fn remove(&mut self, id: &str) -> Option<Txn> {
        let txn = self.by_id.remove(id)?;
        if let Some(ids) = self.by_owner.get_mut(&txn.owner) {
            ids.retain(|i| i != id);
            if ids.is_empty() {
                self.by_owner.remove(&txn.owner);
            }
        }
        if let Some(n) = self.by_uid.get_mut(&txn.ctx.caller_uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.by_uid.remove(&txn.ctx.caller_uid);
            }
        }
        Some(txn)
    }

    /// Drops every transaction of connection `owner`. Returns how many.
    pub(super) fn drop_owner(&mut self, owner: &str) -> usize {
        let ids = self.by_owner.get(owner).cloned().unwrap_or_default();
        ids.iter().filter(|id| self.remove(id).is_some()).count()
    }

    pub(super) fn prune(&mut self, now: u64) -> usize {
        let expired: Vec<String> = self
            .by_id
            .iter()
            .filter(|(_, t)| now >= t.deadline && !t.checking)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            self.remove(id);
        }
        expired.len()
    }

    /// Live transactions of non-root `uid`.
    #[cfg(test)]
    pub(super) fn of_uid(&self, uid: u32) -> usize {
        self.by_uid.get(&uid).copied().unwrap_or(0)
    }
}
