//! The factor store: one SQLite file, one connection, one writer path.
//!
//! The daemon shares one [`Store`] as `Arc<std::sync::Mutex<Store>>` and calls it from
//! `tokio::task::spawn_blocking`, never holding the lock across an await. Every decision that
//! changes state (a code accepted, a failure counted, an enrolment) is one IMMEDIATE
//! transaction with its audit row inside, so two concurrent logins with one code cannot both
//! pass, and counters survive restarts.

pub mod accounts;
pub mod admin;
pub mod audit;
pub mod backend;
pub mod backup_codes;
pub mod contact_enrollments;
pub mod enrollments;
pub mod factor_changes;
pub mod factors;
pub mod fido2;
mod install;
pub mod kind;
pub mod lockout;
pub mod remembered;
pub mod schema;
pub mod seen;
pub mod sent_codes;
mod sqlite;
pub mod step_up;
pub mod verify;

use std::fmt;
use std::fs::OpenOptions;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::crypto::master_key::MasterKey;
use crate::crypto::seal::{self, Kind, SealError};
pub use audit::{AuditCtx, AuditEntry, AuditResult};
pub use backend::FactorStore;
pub use kind::{BACKUP_CODE, FactorKind};
pub use lockout::{Failures, LockoutPolicy, Scope};

/// Audit rows dropped at most per housekeeping run (every 10 minutes) for their age, and per
/// transaction for the row cap.
pub const AUDIT_PRUNE_BATCH: u32 = 10_000;
/// Transactions of the row cap per housekeeping run: at most 1,000,000 rows a run.
pub const AUDIT_CAP_BATCHES: u32 = 100;

/// The store file inside the state directory.
pub const DB_FILE: &str = "herarx.db";

/// What the store needs from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorePolicy {
    /// TOTP steps accepted on each side of the current one.
    pub skew: u32,
    pub lockout: LockoutPolicy,
    /// Seconds audit rows are kept; 0: forever.
    pub audit_retention_seconds: u64,
    /// Audit rows kept at most (`audit.max_rows`); the oldest go first.
    pub audit_max_rows: u64,
    pub sent_codes: sent_codes::SentCodePolicy,
}

impl StorePolicy {
    pub fn from_config(config: &crate::config::Config) -> Self {
        StorePolicy {
            skew: config.totp.skew,
            lockout: LockoutPolicy {
                max_failures: config.lockout.max_failures,
                remote_max_failures: config.lockout.remote_max_failures,
                window_seconds: config.lockout.window_seconds,
                lockout_seconds: config.lockout.lockout_seconds,
                max_lockout_seconds: config.lockout.max_lockout_seconds,
            },
            audit_retention_seconds: config.audit_retention_seconds(),
            audit_max_rows: config.audit.max_rows,
            sent_codes: sent_codes::SentCodePolicy::from_config(config),
        }
    }
}

#[derive(Debug)]
pub enum StoreError {
    Sqlite(rusqlite::Error),
    Io(String),
    Seal(SealError),
    /// The schema is not one this daemon can use.
    Schema(String),
    /// The master key does not open this store.
    KeyMismatch(PathBuf),
    /// No random bytes from the kernel.
    Random,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Sqlite(e) => write!(f, "store error: {e}"),
            StoreError::Io(e) => f.write_str(e),
            StoreError::Seal(e) => write!(f, "store error: {e}"),
            StoreError::Schema(e) => f.write_str(e),
            StoreError::KeyMismatch(p) => write!(
                f,
                "the master key does not open the store {}: it was sealed with another key. \
                 Restore the key file (or credential) that belongs to this store, or move the \
                 store away to start empty",
                p.display()
            ),
            StoreError::Random => f.write_str("no random bytes from the kernel"),
        }
    }
}

impl std::error::Error for StoreError {}

/// Why the store could not take a write, when it is the filesystem's doing (the operator's
/// to fix, not a bug of ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageProblem {
    Full,
    ReadOnly,
}

impl StoreError {
    pub fn storage_problem(&self) -> Option<StorageProblem> {
        use rusqlite::ErrorCode;
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => match e.code {
                ErrorCode::DiskFull => Some(StorageProblem::Full),
                ErrorCode::ReadOnly => Some(StorageProblem::ReadOnly),
                _ => None,
            },
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sqlite(e)
    }
}

impl From<SealError> for StoreError {
    fn from(e: SealError) -> Self {
        StoreError::Seal(e)
    }
}

pub struct Store {
    conn: Connection,
    key: MasterKey,
    policy: StorePolicy,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("policy", &self.policy)
            .finish()
    }
}

/// Integers cross into SQLite as i64; our values (unix seconds, steps, counts) fit.
pub(crate) fn to_sql(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn from_sql(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Every self-service decision ends here: its audit row goes into the same transaction as the
/// change it describes, so both land or neither does.
pub(crate) fn commit_audited<O>(
    tx: rusqlite::Transaction<'_>,
    entry: AuditEntry,
    outcome: O,
) -> Result<(O, AuditEntry), StoreError> {
    audit::insert(&tx, &entry)?;
    tx.commit()?;
    Ok((outcome, entry))
}

/// One decision of the store: an IMMEDIATE transaction that commits together with the audit
/// row describing it (`finish`), so that both land or neither does. Derefs to its transaction.
pub(crate) struct Decision<'c, 'a> {
    tx: rusqlite::Transaction<'c>,
    ctx: &'a AuditCtx,
    method: String,
    now: u64,
}

impl<'c, 'a> Decision<'c, 'a> {
    /// Begins a decision about `ctx`'s user, recorded under `method` at `now`.
    pub(crate) fn begin(
        conn: &'c mut Connection,
        ctx: &'a AuditCtx,
        method: impl Into<String>,
        now: u64,
    ) -> Result<Self, StoreError> {
        Ok(Decision {
            tx: conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?,
            ctx,
            method: method.into(),
            now,
        })
    }

    /// Commits with its audit row; returns `outcome` and the row.
    pub(crate) fn finish<O>(
        self,
        outcome: O,
        result: AuditResult,
        reason: String,
    ) -> Result<(O, AuditEntry), StoreError> {
        let entry = self.ctx.entry(self.now, &self.method, result, reason);
        commit_audited(self.tx, entry, outcome)
    }
}

impl<'c> std::ops::Deref for Decision<'c, '_> {
    type Target = rusqlite::Transaction<'c>;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> Result<String, StoreError> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).map_err(|_| StoreError::Random)?;
    Ok(data_encoding::HEXLOWER.encode(&b))
}

const KEY_CHECK_PLAINTEXT: &[u8] = b"herarx store key check";

impl Store {
    /// Opens (creating if needed, mode 0600) `<state_dir>/herarx.db`.
    pub fn open_in(
        state_dir: &Path,
        key: MasterKey,
        policy: StorePolicy,
    ) -> Result<Self, StoreError> {
        Store::open(&state_dir.join(DB_FILE), key, policy)
    }

    pub fn open(path: &Path, key: MasterKey, policy: StorePolicy) -> Result<Self, StoreError> {
        // Create the file ourselves so it is 0600 from the start; SQLite gives its -wal and
        // -shm files the mode of the database file.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                StoreError::Io(format!(
                    "cannot open the store {}: {e}; check that the state directory exists and \
                     is writable by root",
                    path.display()
                ))
            })?;
        let meta = file.metadata().map_err(|e| StoreError::Io(e.to_string()))?;
        if meta.permissions().mode() & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(|e| {
                    StoreError::Io(format!(
                        "the store {} is readable by group or others and cannot be made 0600: {e}",
                        path.display()
                    ))
                })?;
        }
        drop(file);
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        // WAL with synchronous=NORMAL: a commit is written to the WAL before it returns but not
        // fsynced. A killed daemon (kill -9, crash) loses nothing committed, because the data is
        // in the OS already; only a power loss or kernel crash can drop the last commits. That
        // trade keeps an fsync off every login; FULL would add one per answer.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.set_prepared_statement_cache_capacity(64);
        schema::migrate(&mut conn)?;
        let mut store = Store { conn, key, policy };
        store.check_key(path)?;
        Ok(store)
    }

    /// The first open seals a known value; later opens must be able to open it, so a wrong
    /// key is found at start instead of at the first login.
    fn check_key(&mut self, path: &Path) -> Result<(), StoreError> {
        let aad = seal::aad(Kind::KeyCheck, "", "");
        let existing: Option<Vec<u8>> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'key_check'", [], |r| {
                r.get(0)
            })
            .optional()?;
        match existing {
            Some(blob) => match seal::open(&self.key, &aad, &blob) {
                Ok(v) if &v[..] == KEY_CHECK_PLAINTEXT => Ok(()),
                _ => Err(StoreError::KeyMismatch(path.to_owned())),
            },
            None => {
                let blob = seal::seal(&self.key, &aad, KEY_CHECK_PLAINTEXT)?;
                self.conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('key_check', ?1)",
                    [blob],
                )?;
                Ok(())
            }
        }
    }

    pub fn policy(&self) -> &StorePolicy {
        &self.policy
    }

    /// A reloaded configuration's policy; takes effect from the next operation.
    pub fn set_policy(&mut self, policy: StorePolicy) {
        self.policy = policy;
    }

    #[cfg(test)]
    pub(crate) fn key(&self) -> &MasterKey {
        &self.key
    }

    /// Writes one audit row in its own transaction (for decisions that touch nothing else).
    pub fn record(&mut self, entry: &AuditEntry) -> Result<(), StoreError> {
        audit::insert(&self.conn, entry)?;
        Ok(())
    }

    /// Housekeeping: drops expired enrolments, failure counters that no longer count, expired
    /// remembered things, and audit rows past their retention (a bounded batch per call, so
    /// that a first prune of a large trail does not hold the writer lock for long).
    pub fn prune(&mut self, now: u64) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        enrollments::purge_expired(&tx, now)?;
        lockout::purge_stale(&tx, now, &self.policy.lockout)?;
        remembered::purge_expired(&tx, now)?;
        sent_codes::purge_expired(&tx, now)?;
        if self.policy.audit_retention_seconds > 0 {
            audit::purge_older_than(
                &tx,
                now.saturating_sub(self.policy.audit_retention_seconds),
                AUDIT_PRUNE_BATCH,
            )?;
        }
        tx.commit()?;
        // Then the row cap, a batch per transaction so that logins get the writer lock in
        // between; bounded per run (the next run goes on).
        for _ in 0..AUDIT_CAP_BATCHES {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let dropped = audit::purge_beyond(&tx, self.policy.audit_max_rows, AUDIT_PRUNE_BATCH)?;
            tx.commit()?;
            if dropped < AUDIT_PRUNE_BATCH as usize {
                break;
            }
        }
        Ok(())
    }

    /// Folds the WAL into the database file (at shutdown, so the file alone is complete).
    pub fn checkpoint(&mut self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }
}

/// What the checks inside a transaction need of the store besides the transaction: the key
/// that opens its rows, the policy, and the time of the request. Borrowed from the
/// [`Store`]'s fields next to the transaction (`Ctx::new(&self.key, &self.policy, now)`).
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) key: &'a MasterKey,
    pub(crate) policy: &'a StorePolicy,
    pub(crate) now: u64,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(key: &'a MasterKey, policy: &'a StorePolicy, now: u64) -> Self {
        Ctx { key, policy, now }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    pub const POLICY: StorePolicy = StorePolicy {
        skew: 1,
        lockout: LockoutPolicy {
            max_failures: 5,
            remote_max_failures: 20,
            window_seconds: 900,
            lockout_seconds: 900,
            max_lockout_seconds: 86_400,
        },
        audit_retention_seconds: 365 * 86_400,
        audit_max_rows: 1_000_000,
        sent_codes: sent_codes::SentCodePolicy {
            digits: 6,
            valid_seconds: 300,
            max_per_user_per_hour: 5,
            max_per_destination_per_hour: 5,
        },
    };

    pub fn open_store(dir: &Path) -> Store {
        open_store_with(dir, POLICY)
    }

    pub fn open_store_with(dir: &Path, policy: StorePolicy) -> Store {
        Store::open_in(dir, MasterKey::from_bytes([9; 32]), policy).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn the_store_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let _s = open_store(dir.path());
        let mode = std::fs::metadata(dir.path().join(DB_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn reopening_with_the_same_key_works_and_another_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(open_store(dir.path()));
        drop(open_store(dir.path()));
        let e = Store::open_in(dir.path(), MasterKey::from_bytes([1; 32]), POLICY).unwrap_err();
        assert!(matches!(e, StoreError::KeyMismatch(_)), "{e}");
    }

    #[test]
    fn a_full_or_read_only_store_is_told_apart_from_other_errors() {
        let sqlite = |code| {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code),
                None,
            ))
        };
        use rusqlite::ffi::{SQLITE_CORRUPT, SQLITE_FULL, SQLITE_READONLY};
        assert_eq!(
            sqlite(SQLITE_FULL).storage_problem(),
            Some(StorageProblem::Full)
        );
        assert_eq!(
            sqlite(SQLITE_READONLY).storage_problem(),
            Some(StorageProblem::ReadOnly)
        );
        assert_eq!(sqlite(SQLITE_CORRUPT).storage_problem(), None);
        assert_eq!(StoreError::Random.storage_problem(), None);
    }

    #[test]
    fn journal_mode_is_wal() {
        let dir = tempfile::tempdir().unwrap();
        let s = open_store(dir.path());
        let mode: String = s
            .conn()
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = s
            .conn()
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 1, "NORMAL");
    }
}
