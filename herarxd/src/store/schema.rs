//! The store's schema, versioned with `PRAGMA user_version`.
//!
//! Each migration runs in one transaction together with the version bump, so a crash leaves
//! the store at the old version or the new one, never between. Migrations only ever get
//! appended; an applied one is never edited.

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// `MIGRATIONS[i]` takes the store from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: factors, pending enrolments, failure counters, audit log, key check.
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value BLOB NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE factors (
        id        TEXT PRIMARY KEY,
        user      TEXT NOT NULL,
        kind      TEXT NOT NULL,
        name      TEXT NOT NULL,
        algorithm TEXT NOT NULL,
        digits    INTEGER NOT NULL,
        period    INTEGER NOT NULL,
        sealed    BLOB NOT NULL,
        last_step INTEGER NULL,
        created   INTEGER NOT NULL,
        last_used INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX factors_by_user ON factors (user, kind);

    CREATE TABLE pending_enrollments (
        id        TEXT PRIMARY KEY,
        user      TEXT NOT NULL,
        name      TEXT NOT NULL,
        sealed    BLOB NOT NULL,
        algorithm TEXT NOT NULL,
        digits    INTEGER NOT NULL,
        period    INTEGER NOT NULL,
        created   INTEGER NOT NULL,
        expires   INTEGER NOT NULL,
        attempts  INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX pending_by_user ON pending_enrollments (user);

    CREATE TABLE failures (
        user         TEXT NOT NULL,
        scope        TEXT NOT NULL CHECK (scope IN ('local', 'remote')),
        count        INTEGER NOT NULL,
        window_start INTEGER NOT NULL,
        locked_until INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (user, scope)
    ) WITHOUT ROWID;

    CREATE TABLE audit (
        id         INTEGER PRIMARY KEY,
        time       INTEGER NOT NULL,
        user       TEXT NOT NULL,
        caller_uid INTEGER NOT NULL,
        service    TEXT NOT NULL,
        rhost      TEXT NOT NULL,
        remote     INTEGER NOT NULL,
        method     TEXT NOT NULL,
        result     TEXT NOT NULL,
        reason     TEXT NOT NULL
    );
    "#,
    // 2: backup codes, per-account settings, failure counters per source with back-off, and
    //    audit indexes for `herarxctl admin log`.
    r#"
    CREATE TABLE backup_codes (
        user    TEXT NOT NULL,
        hash    BLOB NOT NULL,
        created INTEGER NOT NULL,
        used    INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (user, hash)
    ) WITHOUT ROWID;

    CREATE TABLE accounts (
        user           TEXT PRIMARY KEY,
        primary_factor TEXT NULL,
        first_seen     INTEGER NOT NULL,
        reset_at       INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;

    CREATE TABLE failures_v2 (
        user         TEXT NOT NULL,
        scope        TEXT NOT NULL,
        count        INTEGER NOT NULL,
        window_start INTEGER NOT NULL,
        locked_until INTEGER NOT NULL DEFAULT 0,
        lockouts     INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (user, scope)
    ) WITHOUT ROWID;
    INSERT INTO failures_v2 (user, scope, count, window_start, locked_until)
        SELECT user, scope, count, window_start, locked_until FROM failures;
    DROP TABLE failures;
    ALTER TABLE failures_v2 RENAME TO failures;

    CREATE INDEX audit_by_user ON audit (user, id);
    CREATE INDEX audit_by_time ON audit (time);
    "#,
    // 3: a pending enrolment may replace an existing factor (moving to a new phone): the
    //    confirmation removes that factor in the same transaction as it adds the new one.
    r#"
    ALTER TABLE pending_enrollments ADD COLUMN replaces TEXT NULL;
    "#,
    // 4: what a login may remember after a second factor (a remote address the user opted in
    //    for, an SSH key), and the per-user opt-in.
    r#"
    CREATE TABLE remembered (
        user    TEXT NOT NULL,
        kind    TEXT NOT NULL CHECK (kind IN ('address', 'ssh-key')),
        value   TEXT NOT NULL,
        created INTEGER NOT NULL,
        expires INTEGER NOT NULL,
        PRIMARY KEY (user, kind, value)
    ) WITHOUT ROWID;
    ALTER TABLE accounts ADD COLUMN remember_addresses INTEGER NOT NULL DEFAULT 0;
    "#,
    // 5: codes sent by email or text message (only their keyed hashes), the deliveries the
    //    flood limits count (a keyed hash of the destination, no address), and the remote
    //    addresses each user has logged in from (for the new-address alert).
    r#"
    CREATE TABLE sent_codes (
        id        TEXT PRIMARY KEY,
        user      TEXT NOT NULL,
        kind      TEXT NOT NULL CHECK (kind IN ('email', 'sms')),
        purpose   TEXT NOT NULL CHECK (purpose IN ('login', 'step-up', 'enrol')),
        factor_id TEXT NULL,
        name      TEXT NOT NULL DEFAULT '',
        sealed    BLOB NULL,
        replaces  TEXT NULL,
        hash      BLOB NOT NULL,
        created   INTEGER NOT NULL,
        expires   INTEGER NOT NULL,
        attempts  INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX sent_codes_by_user ON sent_codes (user, expires);

    CREATE TABLE deliveries (
        user        TEXT NOT NULL,
        destination BLOB NOT NULL,
        time        INTEGER NOT NULL
    );
    CREATE INDEX deliveries_by_user ON deliveries (user, time);
    CREATE INDEX deliveries_by_destination ON deliveries (destination, time);

    CREATE TABLE seen_addresses (
        user       TEXT NOT NULL,
        address    TEXT NOT NULL,
        first_seen INTEGER NOT NULL,
        last_seen  INTEGER NOT NULL,
        PRIMARY KEY (user, address)
    ) WITHOUT ROWID;
    "#,
    // 6: enrolment codes count in a bucket of their own, so that nobody can use up someone
    //    else's login allowance by starting to enrol their address or number.
    r#"
    ALTER TABLE deliveries ADD COLUMN enrol INTEGER NOT NULL DEFAULT 0;
    "#,
    // 7: whether a pending enrolment (TOTP, email, SMS) began after a step-up, so that its
    //    confirmation can tell whether the account gained a factor since an enrolment that
    //    needed none began. Rows from before default to "no": if the account has a factor
    //    now, they are refused and the user starts again (fail closed, for at most the
    //    10 minutes a pending enrolment lives).
    r#"
    ALTER TABLE pending_enrollments ADD COLUMN stepped_up INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sent_codes ADD COLUMN stepped_up INTEGER NOT NULL DEFAULT 0;
    "#,
];

/// The schema version this daemon writes.
pub const CURRENT_VERSION: u32 = MIGRATIONS.len() as u32;

/// Brings the store up to [`CURRENT_VERSION`]. Running it again is a no-op.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Read inside the write transaction: two daemons racing on one file (refused by the
        // lock file anyway) could not both apply the same migration.
        let version: u32 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > CURRENT_VERSION {
            return Err(StoreError::Schema(format!(
                "the store has schema version {version}, newer than this herarxd knows \
                 ({CURRENT_VERSION}); upgrade herarxd, or restore the store's backup"
            )));
        }
        let Some(sql) = MIGRATIONS.get(version as usize) else {
            return Ok(());
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(conn: &Connection) -> u32 {
        conn.pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_new_store_gets_the_current_schema() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn), CURRENT_VERSION);
        for table in [
            "factors",
            "pending_enrollments",
            "failures",
            "audit",
            "meta",
            "backup_codes",
            "accounts",
        ] {
            let n: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                    [table],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(n, 1, "{table}");
        }
    }

    #[test]
    fn migrating_an_existing_store_again_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("herarx.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            migrate(&mut conn).unwrap();
            conn.execute(
                "INSERT INTO audit (time, user, caller_uid, service, rhost, remote, method, result, reason)
                 VALUES (1, 'alice', 0, 'sshd', '', 0, 'totp', 'success', 'ok')",
                [],
            )
            .unwrap();
        }
        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn), CURRENT_VERSION);
        let n: i64 = conn
            .query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1, "existing rows survive");
    }

    #[test]
    fn a_store_from_a_newer_daemon_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", CURRENT_VERSION + 1)
            .unwrap();
        let e = migrate(&mut conn).unwrap_err().to_string();
        assert!(e.contains("upgrade herarxd"), "{e}");
    }
}
