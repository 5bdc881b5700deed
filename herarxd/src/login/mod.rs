//! The login transaction, as the PAM module runs it: `Begin` → prompts → a terminal step.
//!
//! Plain Rust with time passed in; the D-Bus layer only supplies the caller (its unique bus
//! name and, for `Begin`, its uid as the bus reports it). The module's own claims (user,
//! service, rhost, tty) are used for nothing but choosing the account, the audit record, and
//! the local/remote scope, which the daemon derives itself from rhost.
//!
//! A transaction is in one [`Stage`] at a time: asking for a code (TOTP or backup code: both
//! are accepted at any code prompt), showing the method menu (an empty answer or `?` opens
//! it), enrolling a first factor inside the login, or showing the new backup codes.

use std::sync::{Arc, Mutex, MutexGuard};

use herarx_proto::HerarxError;

use crate::state::State;
use crate::store::{AuditCtx, Scope};

mod enrol;
pub(crate) mod enrol_text;
mod keys;
mod remember;
mod sent;
pub mod ssh_info;
mod table;

mod answer;
mod begin;
mod caller;
mod methods;
mod plan;
mod words;

use begin::*;
pub use caller::*;
use methods::*;
pub use words::*;

use table::Table;
pub use table::{
    Limits, NON_ROOT_TIMEOUT_SECONDS, TXNS_MAX, TXNS_PER_CONNECTION_MAX, TXNS_PER_UID_MAX,
    TXNS_ROOT_RESERVED,
};

use sent::sending;
pub use sent::{SENT_PROMPT, SENT_PROMPT_AFTER_EXPIRED, SENT_PROMPT_AFTER_WRONG};

struct Txn {
    owner: String,
    /// Its `caller_uid` (the bus's word for who began it) is what the per-uid quota counts.
    ctx: AuditCtx,
    scope: Scope,
    deadline: u64,
    /// Steps sent so far (the first prompt included).
    steps: u32,
    /// Wrong answers so far.
    tries: u32,
    /// An answer is being checked; a second one waits its turn (refused as Busy).
    checking: bool,
    stage: Stage,
    methods: Methods,
    /// What to remember if this login passes: `(kind, value)`, for `remember_for` seconds.
    remember: Vec<Remember>,
    /// The email and SMS factors this login offers.
    contacts: Vec<ContactChoice>,
    /// When this login last sent a code.
    last_sent: Option<u64>,
}

pub struct Logins {
    state: Arc<State>,
    table: Mutex<Table>,
}

impl Logins {
    pub fn new(state: Arc<State>) -> Self {
        Self::with_limits(state, Limits::default())
    }

    /// With other capacity limits (tests: small ones).
    pub fn with_limits(state: Arc<State>, limits: Limits) -> Self {
        Logins {
            state,
            table: Mutex::new(Table::with_limits(limits)),
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        crate::lock::lock(&self.table)
    }

    /// Live transactions (for tests and status).
    pub fn live(&self) -> usize {
        self.table().by_id.len()
    }

    /// Whether session trust is on: the D-Bus layer then looks up each caller's audit session.
    pub fn session_trust(&self) -> bool {
        self.state.config().session_trust_seconds() > 0
    }

    /// Abandons transaction `id` of `bus_name`.
    pub fn cancel(&self, bus_name: &str, id: &str) -> Result<(), HerarxError> {
        let mut table = self.table();
        if table.by_id.get(id).is_some_and(|t| t.owner == bus_name) {
            table.remove(id);
            Ok(())
        } else {
            Err(no_such_transaction())
        }
    }

    /// Drops every transaction of a connection that left the bus. Returns how many.
    pub fn drop_owner(&self, bus_name: &str) -> usize {
        self.table().drop_owner(bus_name)
    }

    /// Drops transactions past their deadline. Returns how many.
    pub fn prune(&self, now: u64) -> usize {
        self.table().prune(now)
    }

    fn record(&self, entry: &crate::store::AuditEntry) {
        self.state.record(entry);
    }
}

#[cfg(test)]
pub(crate) mod tests;

#[cfg(test)]
mod sent_tests;
