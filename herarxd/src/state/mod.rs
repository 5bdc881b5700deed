//! What every part of the daemon shares: the store, the configuration, the account database
//! and the log.

pub mod refusals;
pub(crate) mod session_trust;

use crate::store::FactorKind;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use herarx_proto::HerarxError;

use crate::alerts::{Alert, AlertKind};
use crate::config::Config;
use crate::logger::{LogSink, Severity};
use crate::store::{AuditEntry, FactorStore, StoreError};
use crate::users::UserDb;

/// The store, shared by every request and taken one call at a time.
pub type SharedStore = Arc<Mutex<Box<dyn FactorStore>>>;

/// `store`, ready to share.
pub fn shared(store: impl FactorStore + 'static) -> SharedStore {
    Arc::new(Mutex::new(Box::new(store)))
}

pub struct State {
    /// The store behind its boundary (`crate::store::FactorStore`): SQLite on one host.
    pub store: SharedStore,
    /// Swapped whole on SIGHUP; each request takes the `Arc` once and uses that version.
    config: RwLock<Arc<Config>>,
    pub users: Arc<dyn UserDb>,
    pub log: Arc<dyn LogSink>,
    /// This host's name, for the account label of otpauth URIs.
    pub hostname: String,
    /// The security keys plugged into this machine (ctap-hid-fido2 over hidraw in production).
    pub keys: Arc<dyn crate::fido2::Authenticator>,
    /// Single-use FIDO2 challenges, in memory.
    pub challenges: crate::fido2::Challenges,
    /// Session trust (tickets and trusted login sessions), in memory.
    pub sessions: crate::state::session_trust::Sessions,
    /// The queue to the alert worker.
    pub alerts: crate::alerts::Alerts,
    /// Code deliveries under way (bounded).
    pub deliveries: crate::delivery::InFlight,
    /// Refused calls per caller uid, coalesced beyond the first few a minute.
    pub refusals: crate::state::refusals::Refusals,
}

impl State {
    pub fn new(
        store: SharedStore,
        config: Arc<Config>,
        users: Arc<dyn UserDb>,
        log: Arc<dyn LogSink>,
        hostname: String,
    ) -> Self {
        State {
            store,
            config: RwLock::new(config),
            users,
            log,
            hostname,
            keys: Arc::new(crate::fido2::CtapHid::new()),
            challenges: crate::fido2::Challenges::new(),
            sessions: crate::state::session_trust::Sessions::default(),
            alerts: crate::alerts::Alerts::default(),
            deliveries: crate::delivery::InFlight::default(),
            refusals: crate::state::refusals::Refusals::default(),
        }
    }

    /// The same state reaching security keys through `keys` (tests: a virtual or scripted
    /// authenticator; it still returns raw bytes that the daemon verifies itself).
    pub fn with_keys(self, keys: Arc<dyn crate::fido2::Authenticator>) -> Self {
        State { keys, ..self }
    }

    /// The configuration in force now. Taken once per request, so a reload in the middle of
    /// one does not mix two versions.
    pub fn config(&self) -> Arc<Config> {
        crate::lock::read(&self.config).clone()
    }

    /// Puts a new, already validated configuration in force, store policy included. Live
    /// transactions carry on under it.
    pub fn replace_config(&self, config: Arc<Config>) {
        self.store()
            .set_policy(crate::store::StorePolicy::from_config(&config));
        *crate::lock::write(&self.config) = config;
    }

    /// Locks the store. A poisoned lock only means another thread panicked while holding it;
    /// SQLite's own transaction rolled back, so the store is consistent and can be used.
    pub fn store(&self) -> MutexGuard<'_, Box<dyn FactorStore>> {
        crate::lock::lock(&self.store)
    }

    /// Writes an audit row and logs it; a row the store cannot take is logged as an error
    /// (the decision stands: it was made, and the log line still records it). Refusals go
    /// through [`crate::state::refusals`]: beyond the first few a minute from one uid they are
    /// counted, and summed up in one row once the minute is over.
    pub fn record(&self, entry: &crate::store::AuditEntry) {
        let (record, summaries) = if entry.result == crate::store::AuditResult::Refused {
            let a = self.refusals.admit(entry);
            (a.record, a.summaries)
        } else {
            (true, self.refusals.due(entry.time))
        };
        for s in &summaries {
            self.write(s);
        }
        if record {
            self.write(entry);
        }
    }

    /// Writes the summaries of refusals whose minute is over (from the daemon's housekeeping,
    /// so a flood that stopped is still told).
    pub fn flush_refusals(&self, now: u64) {
        for s in &self.refusals.due(now) {
            self.write(s);
        }
    }

    fn write(&self, entry: &crate::store::AuditEntry) {
        if let Err(e) = self.store().record(entry) {
            self.log
                .log(Severity::Error, &format!("cannot write an audit row: {e}"));
        }
        self.log.audit(entry);
    }

    /// A store decision settled at the edge: its audit row went into the store with the change
    /// it describes; here it is logged too, and a store failure becomes the caller's error (see
    /// [`State::internal`]). `what` names the operation for the log.
    pub fn settle<A: Audited>(
        &self,
        what: &str,
        result: Result<A, StoreError>,
    ) -> Result<A::Outcome, HerarxError> {
        let (outcome, entry) = result.map_err(|e| self.internal(what, &e))?.split();
        self.log.audit(&entry);
        Ok(outcome)
    }

    /// Logs a store failure in full and returns the error the caller sees: one that names a
    /// full or read-only store (nothing was changed; the fix is the operator's), else a generic
    /// one pointing at the log.
    pub fn internal(&self, what: &str, e: &StoreError) -> HerarxError {
        self.log.log(Severity::Error, &format!("{what}: {e}"));
        let problem = match e.storage_problem() {
            Some(crate::store::StorageProblem::Full) => "the filesystem holding its store is full",
            Some(crate::store::StorageProblem::ReadOnly) => "its store is read-only",
            None => "",
        };
        if !problem.is_empty() {
            return HerarxError::Internal(format!(
                "herarxd cannot write to its store: {problem}, so nothing was changed and no \
                 login can pass. Free space in (or make writable) herarxd's state directory \
                 (/var/lib/herarx by default) and try again; tell your administrator if you \
                 cannot."
            ));
        }
        HerarxError::Internal(
            "herarxd failed inside while using its store; the details are in its log \
             (syslog authpriv). Try again, and tell your administrator if it persists."
                .into(),
        )
    }
}

/// Alerts (see `crate::alerts`): raised here, where the configuration, the store and the log
/// are at hand, so that the alert queue itself needs none of them.
impl State {
    /// Raises an alert about `user`, sending it to their verified email addresses too.
    pub fn alert(&self, alert: Alert) {
        let emails = self.alert_emails(&alert.user, alert.kind);
        self.alert_to(alert, emails);
    }

    /// Raises an alert, to `emails` as the user's addresses (read with [`Self::alert_emails`]
    /// before a change that removes them: a removal, an admin reset).
    pub fn alert_to(&self, alert: Alert, emails: Vec<String>) {
        let config = self.config();
        self.alerts
            .raise(&config, &self.hostname, &self.log, alert, emails);
    }

    /// The user's verified email addresses an alert of `kind` goes to: none when policy sends
    /// it nowhere, so that nothing is read (or decrypted) for nothing.
    pub fn alert_emails(&self, user: &str, kind: AlertKind) -> Vec<String> {
        let config = self.config();
        if !(kind.enabled(&config) && config.alerts.to_user && config.email_enabled()) {
            return Vec::new();
        }
        match self.store().contacts(user) {
            Ok(all) => all
                .into_iter()
                .filter(|c| c.kind == FactorKind::Email)
                .map(|c| c.destination)
                .collect(),
            Err(e) => {
                self.log.log(
                    Severity::Error,
                    &format!("alert for {user}: cannot read the user's addresses: {e}"),
                );
                Vec::new()
            }
        }
    }
}

/// What a store decision returns: its outcome and the audit row written with it.
pub trait Audited {
    type Outcome;
    fn split(self) -> (Self::Outcome, AuditEntry);
}

impl<O> Audited for (O, AuditEntry) {
    type Outcome = O;
    fn split(self) -> (O, AuditEntry) {
        self
    }
}

impl Audited for AuditEntry {
    type Outcome = ();
    fn split(self) -> ((), AuditEntry) {
        ((), self)
    }
}

/// Whether `s` is acceptable as an argument: at most `max` bytes and no control characters.
pub fn valid_text(s: &str, max: usize) -> bool {
    s.len() <= max && !s.chars().any(char::is_control)
}

/// A bounded, printable copy of an argument that was refused, for the audit log.
pub fn printable(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().count() > 64 {
        out.push('…');
    }
    out
}

/// Seconds since the epoch, read once per request at the edge (logic gets it passed in).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
