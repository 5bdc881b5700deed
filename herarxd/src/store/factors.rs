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
pub(crate) mod tests;
