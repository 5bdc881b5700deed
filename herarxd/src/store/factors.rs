//! The factor table: enrolled factors of every kind, their secrets sealed; the primary one;
//! an email or SMS factor's destination, opened only to be masked or sent to.

use herarx_proto::FactorInfo;
use rusqlite::{Connection, OptionalExtension};

use super::{FactorKind, StoreError, accounts, from_sql, random_hex, to_sql};
use crate::crypto::master_key::MasterKey;
use crate::crypto::seal::{self, Kind};
use crate::crypto::totp::{Algorithm, Params};

/// At most this many factors per user: each login tries every one of them.
pub const FACTORS_PER_USER_MAX: usize = 16;

/// A factor row, secret still sealed.
#[derive(Debug, Clone)]
pub struct FactorRow {
    pub id: String,
    pub user: String,
    pub kind: FactorKind,
    pub name: String,
    pub params: Params,
    pub sealed: Vec<u8>,
    pub last_step: Option<u64>,
    pub created: u64,
    pub last_used: u64,
}

impl FactorRow {
    pub fn info(&self) -> FactorInfo {
        FactorInfo {
            id: self.id.clone(),
            kind: self.kind.as_str().to_owned(),
            name: self.name.clone(),
            created: self.created,
            last_used: self.last_used,
            primary: false,
            detail: String::new(),
        }
    }
}

fn row_to_factor(r: &rusqlite::Row<'_>) -> rusqlite::Result<FactorRow> {
    let algorithm: String = r.get(4)?;
    Ok(FactorRow {
        id: r.get(0)?,
        user: r.get(1)?,
        kind: r.get(2)?,
        name: r.get(3)?,
        params: Params {
            // An unknown algorithm makes the factor unusable rather than silently SHA1.
            algorithm: Algorithm::from_config(&algorithm).unwrap_or(Algorithm::Sha1),
            digits: u8::try_from(r.get::<_, i64>(5)?).unwrap_or(0),
            period: from_sql(r.get(6)?),
        },
        sealed: r.get(7)?,
        last_step: r.get::<_, Option<i64>>(8)?.map(from_sql),
        created: from_sql(r.get(9)?),
        last_used: from_sql(r.get(10)?),
    })
}

const FACTOR_COLUMNS: &str =
    "id, user, kind, name, algorithm, digits, period, sealed, last_step, created, last_used";

/// The user's factors of `kind`, oldest first.
pub fn list(conn: &Connection, user: &str, kind: FactorKind) -> rusqlite::Result<Vec<FactorRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {FACTOR_COLUMNS} FROM factors WHERE user = ?1 AND kind = ?2 ORDER BY created, rowid"
    ))?;
    let rows = stmt.query_map((user, kind), row_to_factor)?;
    rows.collect()
}

/// Every factor of the user, oldest first.
pub fn list_all(conn: &Connection, user: &str) -> rusqlite::Result<Vec<FactorRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {FACTOR_COLUMNS} FROM factors WHERE user = ?1 ORDER BY created, rowid"
    ))?;
    let rows = stmt.query_map([user], row_to_factor)?;
    rows.collect()
}

pub fn count(conn: &Connection, user: &str) -> rusqlite::Result<usize> {
    let mut stmt = conn.prepare_cached("SELECT count(*) FROM factors WHERE user = ?1")?;
    let n: i64 = stmt.query_row([user], |r| r.get(0))?;
    Ok(usize::try_from(n).unwrap_or(0))
}

pub fn get(conn: &Connection, user: &str, id: &str) -> rusqlite::Result<Option<FactorRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {FACTOR_COLUMNS} FROM factors WHERE id = ?1 AND user = ?2"
    ))?;
    stmt.query_row((id, user), row_to_factor).optional()
}

pub fn insert(conn: &Connection, f: &FactorRow) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(&format!(
        "INSERT INTO factors ({FACTOR_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
    ))?;
    stmt.execute(rusqlite::params![
        f.id,
        f.user,
        f.kind,
        f.name,
        f.params.algorithm.as_str(),
        f.params.digits,
        to_sql(f.params.period),
        f.sealed,
        f.last_step.map(to_sql),
        to_sql(f.created),
        to_sql(f.last_used),
    ])?;
    Ok(())
}

pub fn delete(conn: &Connection, user: &str, id: &str) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare_cached("DELETE FROM factors WHERE id = ?1 AND user = ?2")?;
    Ok(stmt.execute((id, user))? > 0)
}

pub(super) fn record_use(conn: &Connection, id: &str, step: u64, now: u64) -> rusqlite::Result<()> {
    let mut stmt =
        conn.prepare_cached("UPDATE factors SET last_step = ?2, last_used = ?3 WHERE id = ?1")?;
    stmt.execute((id, to_sql(step), to_sql(now)))?;
    Ok(())
}

/// A fresh factor id: 8 lowercase hex characters, not yet used.
pub fn new_id(conn: &Connection) -> Result<String, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT 1 FROM factors WHERE id = ?1")?;
    for _ in 0..64 {
        let id = random_hex(4)?;
        if stmt.query_row([&id], |_| Ok(())).optional()?.is_none() {
            return Ok(id);
        }
    }
    Err(StoreError::Random)
}

/// The id of the factor logins offer first: the chosen one while it exists, else the oldest
/// (what [`Store::factor_infos`] marks).
pub(crate) fn primary_id(conn: &Connection, user: &str) -> Result<Option<String>, StoreError> {
    let all = list_all(conn, user)?;
    let chosen = accounts::load(conn, user)?.primary_factor;
    Ok(chosen
        .filter(|c| all.iter().any(|f| &f.id == c))
        .or_else(|| all.first().map(|f| f.id.clone())))
}

/// `row` as its owner sees it, the primary mark included.
pub(crate) fn info_of(
    conn: &Connection,
    key: &crate::crypto::master_key::MasterKey,
    user: &str,
    row: &FactorRow,
) -> Result<FactorInfo, StoreError> {
    let mut info = row.info();
    info.detail = detail_of(key, user, row);
    info.primary = primary_id(conn, user)?.as_deref() == Some(row.id.as_str());
    Ok(info)
}

/// The masked destination of an email or SMS factor row; empty for other kinds.
pub(crate) fn detail_of(key: &MasterKey, user: &str, row: &FactorRow) -> String {
    if row.kind != FactorKind::Email && row.kind != FactorKind::Sms {
        return String::new();
    }
    match open_destination(key, user, row) {
        Some(d) => mask(row.kind, &d),
        None => "(unreadable)".into(),
    }
}

/// `j***@example.com`, `+44 ••• ••• 123`.
pub fn mask(kind: FactorKind, destination: &str) -> String {
    if kind == FactorKind::Email {
        crate::delivery::contact::mask_email(destination)
    } else {
        crate::delivery::contact::mask_phone(destination)
    }
}

pub(super) fn open_destination(key: &MasterKey, user: &str, row: &FactorRow) -> Option<String> {
    let aad = seal::aad(Kind::Contact, user, &row.id);
    let plain = seal::open(key, &aad, &row.sealed).ok()?;
    String::from_utf8(plain.to_vec()).ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::crypto::seal::{self, Kind};
    use crate::crypto::totp::{self, Rejection};
    use crate::store::lockout::Scope;
    use crate::store::testing::open_store;
    use crate::store::verify::*;
    use crate::store::{AuditCtx, AuditResult, Store, audit};

    pub(crate) const SEED: &[u8] = b"12345678901234567890";
    const NOW: u64 = 1_700_000_000;

    fn ctx(user: &str) -> AuditCtx {
        AuditCtx {
            user: user.into(),
            caller_uid: 0,
            service: "sshd".into(),
            rhost: String::new(),
            remote: false,
        }
    }

    /// Enrols `SEED` for `user` directly (what a confirmed enrolment does).
    pub(crate) fn enrol(store: &mut Store, user: &str, seed: &[u8]) -> String {
        let id = new_id(store.conn()).unwrap();
        let sealed = seal::seal(store.key(), &seal::aad(Kind::Totp, user, &id), seed).unwrap();
        insert(
            store.conn(),
            &FactorRow {
                id: id.clone(),
                user: user.into(),
                kind: FactorKind::Totp,
                name: "phone".into(),
                params: Params::default(),
                sealed,
                last_step: None,
                created: NOW - 100,
                last_used: 0,
            },
        )
        .unwrap();
        id
    }

    fn code(seed: &[u8], t: u64) -> String {
        totp::code_at(seed, &Params::default(), t)
            .unwrap()
            .to_string()
    }

    fn wrong(seed: &[u8], t: u64) -> String {
        let c: u32 = code(seed, t).parse().unwrap();
        format!("{:06}", (c + 1) % 1_000_000)
    }

    #[test]
    fn a_code_is_accepted_once_and_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open_store(dir.path());
        let id = enrol(&mut s, "alice", SEED);
        let c = code(SEED, NOW);
        let (o, entry) = s
            .verify_and_consume(&ctx("alice"), &c, NOW, &Scope::Local, "totp")
            .unwrap();
        assert_eq!(
            o,
            VerifyOutcome::Accepted {
                factor_id: id.clone(),
                step: NOW / 30,
                backup_codes_left: None,
            }
        );
        assert_eq!(entry.result, AuditResult::Success);
        let row = get(s.conn(), "alice", &id).unwrap().unwrap();
        assert_eq!(row.last_step, Some(NOW / 30));
        assert_eq!(row.last_used, NOW);

        let (o, _) = s
            .verify_and_consume(&ctx("alice"), &c, NOW + 1, &Scope::Local, "totp")
            .unwrap();
        assert!(matches!(
            o,
            VerifyOutcome::Rejected {
                reason: Rejection::Replayed,
                failures: 1,
                ..
            }
        ));
        let rows = audit::recent(s.conn(), 10).unwrap();
        assert_eq!(rows.len(), 2);
        assert!(
            rows.iter().all(|r| !r.reason.contains(&c)),
            "no code in the audit log"
        );
    }

    #[test]
    fn a_success_resets_only_its_own_scope() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open_store(dir.path());
        enrol(&mut s, "alice", SEED);
        for scope in [Scope::Local, Scope::Remote("192.0.2.1".into())] {
            s.verify_and_consume(&ctx("alice"), &wrong(SEED, NOW), NOW, &scope, "totp")
                .unwrap();
        }
        s.verify_and_consume(&ctx("alice"), &code(SEED, NOW), NOW, &Scope::Local, "totp")
            .unwrap();
        assert_eq!(s.failures("alice", &Scope::Local, NOW).unwrap().count, 0);
        assert_eq!(
            s.failures("alice", &Scope::Remote("192.0.2.1".into()), NOW)
                .unwrap()
                .count,
            1
        );
    }

    #[test]
    fn remote_failures_lock_remote_logins_but_not_the_console() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open_store(dir.path());
        enrol(&mut s, "alice", SEED);
        let mut last = None;
        for i in 0..5 {
            let (o, _) = s
                .verify_and_consume(
                    &ctx("alice"),
                    &wrong(SEED, NOW),
                    NOW + i,
                    &Scope::Remote("192.0.2.1".into()),
                    "totp",
                )
                .unwrap();
            last = Some(o);
        }
        assert_eq!(
            last,
            Some(VerifyOutcome::Rejected {
                reason: Rejection::Wrong,
                no_factor: false,
                failures: 5,
                locked_until: Some(NOW + 4 + 900)
            })
        );
        // Even the right code is refused remotely while locked...
        let (o, e) = s
            .verify_and_consume(
                &ctx("alice"),
                &code(SEED, NOW + 10),
                NOW + 10,
                &Scope::Remote("192.0.2.1".into()),
                "totp",
            )
            .unwrap();
        assert_eq!(o, VerifyOutcome::Locked { until: NOW + 904 });
        assert_eq!(e.result, AuditResult::Locked);
        // ...and accepted at the console.
        let (o, _) = s
            .verify_and_consume(
                &ctx("alice"),
                &code(SEED, NOW + 10),
                NOW + 10,
                &Scope::Local,
                "totp",
            )
            .unwrap();
        assert!(matches!(o, VerifyOutcome::Accepted { .. }));
        // After the lock, remote logins work again.
        let t = NOW + 904 + 30;
        let (o, _) = s
            .verify_and_consume(
                &ctx("alice"),
                &code(SEED, t),
                t,
                &Scope::Remote("192.0.2.1".into()),
                "totp",
            )
            .unwrap();
        assert!(matches!(o, VerifyOutcome::Accepted { .. }));
    }

    #[test]
    fn counters_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = open_store(dir.path());
            enrol(&mut s, "alice", SEED);
            for i in 0..3 {
                s.verify_and_consume(&ctx("alice"), "000000", NOW + i, &Scope::Local, "totp")
                    .unwrap();
            }
        }
        let mut s = open_store(dir.path());
        assert_eq!(
            s.failures("alice", &Scope::Local, NOW + 5).unwrap().count,
            3
        );
    }

    #[test]
    fn a_user_without_factors_fails_like_a_wrong_code() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open_store(dir.path());
        let (o, e) = s
            .verify_and_consume(&ctx("nobody"), "123456", NOW, &Scope::Local, "totp")
            .unwrap();
        assert_eq!(
            o,
            VerifyOutcome::Rejected {
                reason: Rejection::Wrong,
                no_factor: true,
                failures: 1,
                locked_until: None
            }
        );
        assert!(e.reason.contains("no factor enrolled"));
    }

    #[test]
    fn a_factor_row_moved_to_another_user_never_matches() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open_store(dir.path());
        let id = enrol(&mut s, "alice", SEED);
        s.conn()
            .execute("UPDATE factors SET user = 'mallory' WHERE id = ?1", [&id])
            .unwrap();
        let (o, _) = s
            .verify_and_consume(
                &ctx("mallory"),
                &code(SEED, NOW),
                NOW,
                &Scope::Local,
                "totp",
            )
            .unwrap();
        assert!(matches!(
            o,
            VerifyOutcome::Rejected {
                reason: Rejection::Unusable,
                ..
            }
        ));
    }

    #[test]
    fn the_seed_is_never_stored_in_clear() {
        let dir = tempfile::tempdir().unwrap();
        let seed = b"\x8a\x13seed-that-must-not-leak\xfe";
        let b32 = data_encoding::BASE32_NOPAD.encode(seed);
        {
            let mut s = open_store(dir.path());
            enrol(&mut s, "alice", seed);
            let (o, _) = s
                .verify_and_consume(&ctx("alice"), &code(seed, NOW), NOW, &Scope::Local, "totp")
                .unwrap();
            assert!(matches!(o, VerifyOutcome::Accepted { .. }));
            // Inspect while the WAL still holds the writes.
            for name in ["herarx.db", "herarx.db-wal"] {
                let bytes = std::fs::read(dir.path().join(name)).unwrap_or_default();
                assert!(!contains(&bytes, seed), "raw seed in {name}");
                assert!(!contains(&bytes, b32.as_bytes()), "base32 seed in {name}");
                assert!(
                    !contains(&bytes, b32.to_lowercase().as_bytes()),
                    "base32 seed in {name}"
                );
            }
            assert!(dir.path().join("herarx.db-wal").exists());
        }
        let bytes = std::fs::read(dir.path().join("herarx.db")).unwrap();
        assert!(!contains(&bytes, seed));
        assert!(!contains(&bytes, b32.as_bytes()));
    }

    pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn factor_ids_are_eight_lowercase_hex_characters() {
        let dir = tempfile::tempdir().unwrap();
        let s = open_store(dir.path());
        let id = new_id(s.conn()).unwrap();
        assert_eq!(id.len(), 8);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }
}
