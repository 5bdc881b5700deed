//! Email and text-message factors, and the one-time codes sent to them.
//!
//! A contact (an address or a number) is a row of `factors` with kind `email` or `sms`, its
//! destination sealed like a secret: bound to its user and factor id, unreadable without the
//! master key. A code sent to it is a row of `sent_codes`: only its HMAC (under a key derived
//! for this one use, bound to the row id and the user), an expiry, and what it is for: a
//! login or a step-up (checked at every code prompt, single use), or an enrolment (the
//! confirmation that whoever adds an address or number receives what is sent there).
//!
//! Every code that leaves counts in `deliveries`, per user and per destination (a keyed hash:
//! the table holds no address), so that nobody can make Herarx flood a mailbox or a phone:
//! the limits hold across logins, users and restarts.

use crate::store::FactorKind;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rusqlite::{Connection, TransactionBehavior};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::audit::{AuditCtx, AuditEntry, AuditResult};
use super::commit_audited;
use super::factors::{self};
use super::factors::{open_destination, primary_id};
use super::{Ctx, Store, StoreError, random_hex, to_sql};
use crate::crypto::master_key::MasterKey;

/// Unconsumed codes kept per user; issuing one more drops the oldest.
const CODES_PER_USER_MAX: i64 = 10;
const HOUR: u64 = 3600;

type HmacSha256 = Hmac<Sha256>;

/// What the store needs to know about sent codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentCodePolicy {
    pub digits: u32,
    pub valid_seconds: u64,
    pub max_per_user_per_hour: u32,
    pub max_per_destination_per_hour: u32,
}

impl SentCodePolicy {
    pub fn from_config(config: &crate::config::Config) -> Self {
        SentCodePolicy {
            digits: config.sent_codes.digits,
            valid_seconds: config.sent_code_valid_seconds(),
            max_per_user_per_hour: config.sent_codes.max_per_user_per_hour,
            max_per_destination_per_hour: config.sent_codes.max_per_destination_per_hour,
        }
    }
}

/// What a sent code is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Login,
    StepUp,
    Enrol,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Login => "login",
            Purpose::StepUp => "step-up",
            Purpose::Enrol => "enrol",
        }
    }
}

/// A code to deliver, and where. No `Debug`: it holds the code.
pub struct Issued {
    pub id: String,
    /// `email` or `sms`.
    pub kind: FactorKind,
    pub destination: Zeroizing<String>,
    pub code: Zeroizing<String>,
    pub expires: u64,
}

pub enum IssueOutcome {
    Issued(Issued),
    /// The flood limit: no code before `retry_after` (unix seconds).
    RateLimited {
        retry_after: u64,
    },
    /// Not one of the user's email or SMS factors.
    NoSuchFactor,
}

/// What an enrolment code's row keeps of the factor it will add.
pub(super) struct PendingContact<'a> {
    pub(super) name: &'a str,
    /// The destination, sealed under the factor id the confirmation gives it.
    pub(super) sealed: &'a [u8],
    pub(super) replaces: Option<&'a str>,
    /// The enrolment began after a step-up.
    pub(super) stepped_up: bool,
}

/// An enrolled email or SMS factor, destination opened.
#[derive(Clone)]
pub struct Contact {
    pub factor_id: String,
    pub kind: FactorKind,
    pub name: String,
    pub destination: String,
}

fn derived(master: &MasterKey, label: &[u8]) -> Zeroizing<[u8; 32]> {
    let hk = Hkdf::<Sha256>::new(Some(b"herarx/v1"), master.as_bytes());
    let mut okm = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's limit: this cannot fail.
    let _ = hk.expand(label, &mut okm[..]);
    okm
}

fn mac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    match HmacSha256::new_from_slice(key) {
        Ok(mut m) => {
            for p in parts {
                m.update(p);
                m.update(&[0]);
            }
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

pub(super) fn code_hash(master: &MasterKey, id: &str, user: &str, code: &str) -> Vec<u8> {
    let key = derived(master, b"sent-code-hash");
    mac(&key[..], &[id.as_bytes(), user.as_bytes(), code.as_bytes()])
}

/// What `deliveries` keeps of a destination: a keyed hash, so the table holds no address.
pub(super) fn destination_tag(master: &MasterKey, kind: FactorKind, destination: &str) -> Vec<u8> {
    let key = derived(master, b"delivery-destination");
    mac(
        &key[..],
        &[
            kind.as_str().as_bytes(),
            destination.to_ascii_lowercase().as_bytes(),
        ],
    )
}

/// The digits of an answer (spaces and dashes do not matter), or `None`.
pub fn normalize(answer: &str, digits: u32) -> Option<Zeroizing<String>> {
    let code: Zeroizing<String> = Zeroizing::new(
        answer
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '\t'))
            .collect(),
    );
    (code.len() == digits as usize && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

fn new_code(digits: u32) -> Result<Zeroizing<String>, StoreError> {
    let mut out = Zeroizing::new(String::with_capacity(digits as usize));
    let mut buf = Zeroizing::new([0u8; 1]);
    while out.len() < digits as usize {
        getrandom::fill(&mut buf[..]).map_err(|_| StoreError::Random)?;
        // 250 = 25 * 10: rejection sampling keeps the digits uniform.
        if buf[0] < 250 {
            out.push(char::from(b'0' + buf[0] % 10));
        }
    }
    Ok(out)
}

/// When the flood limit lets the next code out: `None` now. Enrolment codes (`enrol`) and
/// the codes of enrolled factors are counted apart: an enrolment of someone else's address
/// uses up only the enrolment allowance of that address, never its owner's logins.
fn rate_limited(
    tx: &Connection,
    policy: &SentCodePolicy,
    user: &str,
    tag: &[u8],
    enrol: bool,
    now: u64,
) -> rusqlite::Result<Option<u64>> {
    let since = to_sql(now.saturating_sub(HOUR));
    let oldest_over = |sql: &str, max: u32, key: &dyn rusqlite::ToSql| {
        let mut stmt = tx.prepare_cached(sql)?;
        let times: Vec<i64> = stmt
            .query_map(rusqlite::params![key, since, enrol], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        // The (n - max + 1)-th newest leaves the window first and frees a slot.
        Ok::<_, rusqlite::Error>(if times.len() >= max as usize {
            times
                .get(times.len() - max as usize)
                .map(|t| super::from_sql(*t).saturating_add(HOUR))
        } else {
            None
        })
    };
    let by_user = oldest_over(
        "SELECT time FROM deliveries WHERE user = ?1 AND time > ?2 AND enrol = ?3 ORDER BY time",
        policy.max_per_user_per_hour,
        &user,
    )?;
    let by_destination = oldest_over(
        "SELECT time FROM deliveries WHERE destination = ?1 AND time > ?2 AND enrol = ?3
         ORDER BY time",
        policy.max_per_destination_per_hour,
        &tag,
    )?;
    Ok(by_user.max(by_destination))
}

/// What [`issue_in`] is asked to send. No `Debug`: an enrolment's holds the sealed
/// destination, and the destination is the user's.
pub(super) struct ToSend<'a> {
    pub(super) kind: FactorKind,
    pub(super) destination: &'a str,
    pub(super) purpose: Purpose,
    /// The factor the code is for (for an enrolment: the id the new factor will get).
    pub(super) factor_id: Option<&'a str>,
    /// What an enrolment code's row keeps of the factor it will add.
    pub(super) enrolment: Option<PendingContact<'a>>,
}

/// Counts a delivery and stores a new code's hash: the code goes out after the commit.
pub(super) fn issue_in(
    tx: &Connection,
    cx: Ctx<'_>,
    user: &str,
    send: ToSend<'_>,
) -> Result<Result<Issued, u64>, StoreError> {
    let Ctx { key, policy, now } = cx;
    let policy = &policy.sent_codes;
    let ToSend {
        kind,
        destination,
        purpose,
        factor_id,
        enrolment,
    } = send;
    let tag = destination_tag(key, kind, destination);
    let enrol = purpose == Purpose::Enrol;
    if let Some(retry_after) = rate_limited(tx, policy, user, &tag, enrol, now)? {
        return Ok(Err(retry_after));
    }
    tx.prepare_cached(
        "INSERT INTO deliveries (user, destination, time, enrol) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(rusqlite::params![user, tag, to_sql(now), enrol])?;
    tx.prepare_cached("DELETE FROM sent_codes WHERE user = ?1 AND expires <= ?2")?
        .execute((user, to_sql(now)))?;
    tx.prepare_cached(
        "DELETE FROM sent_codes WHERE id IN (
            SELECT id FROM sent_codes WHERE user = ?1
            ORDER BY created DESC, rowid DESC LIMIT -1 OFFSET ?2)",
    )?
    .execute((user, CODES_PER_USER_MAX - 1))?;
    let id = random_hex(8)?;
    let code = new_code(policy.digits)?;
    let expires = now.saturating_add(policy.valid_seconds);
    let (name, sealed, replaces, stepped_up) = match enrolment {
        Some(p) => (p.name, Some(p.sealed), p.replaces, p.stepped_up),
        None => ("", None, None, false),
    };
    tx.prepare_cached(
        "INSERT INTO sent_codes
            (id, user, kind, purpose, factor_id, name, sealed, replaces, hash, created, expires,
             stepped_up)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(rusqlite::params![
        id,
        user,
        kind,
        purpose.as_str(),
        factor_id,
        name,
        sealed,
        replaces,
        code_hash(key, &id, user, &code),
        to_sql(now),
        to_sql(expires),
        stepped_up,
    ])?;
    Ok(Ok(Issued {
        id,
        kind,
        destination: Zeroizing::new(destination.to_owned()),
        code,
        expires,
    }))
}

/// The user's email and SMS factors, oldest first. A row that does not open is left out.
pub fn contacts(conn: &Connection, key: &MasterKey, user: &str) -> rusqlite::Result<Vec<Contact>> {
    let mut out = Vec::new();
    for row in factors::list_all(conn, user)? {
        if row.kind != FactorKind::Email && row.kind != FactorKind::Sms {
            continue;
        }
        if let Some(destination) = open_destination(key, user, &row) {
            out.push(Contact {
                factor_id: row.id,
                kind: row.kind,
                name: row.name,
                destination,
            });
        }
    }
    Ok(out)
}

/// A login or step-up code that may be consumed. No `Debug`: it holds the code's hash.
struct LiveCode {
    id: String,
    kind: FactorKind,
    /// The factor it was sent to.
    factor_id: Option<String>,
    hash: Vec<u8>,
}

/// Consumes a login or step-up code of `user` matching `code`, of an accepted kind. Returns
/// the factor it was sent to and its kind.
pub(crate) fn consume(
    tx: &Connection,
    key: &MasterKey,
    user: &str,
    code: &str,
    now: u64,
    email: bool,
    sms: bool,
) -> Result<Option<(String, FactorKind)>, StoreError> {
    if !email && !sms {
        return Ok(None);
    }
    let digits_only: Zeroizing<String> =
        Zeroizing::new(code.chars().filter(|c| !matches!(c, ' ' | '-')).collect());
    if digits_only.is_empty() || !digits_only.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let mut stmt = tx.prepare_cached(
        // Only codes of factors that still exist, as the kind they were sent as: a removed
        // or replaced address takes its codes along, whatever path removed it.
        "SELECT s.id, s.kind, s.factor_id, s.hash FROM sent_codes s
         JOIN factors f ON f.id = s.factor_id AND f.user = s.user AND f.kind = s.kind
         WHERE s.user = ?1 AND s.purpose IN ('login', 'step-up') AND s.expires > ?2",
    )?;
    let rows: Vec<LiveCode> = stmt
        .query_map((user, to_sql(now)), |r| {
            Ok(LiveCode {
                id: r.get(0)?,
                kind: r.get(1)?,
                factor_id: r.get(2)?,
                hash: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    // Every row is compared, in constant time, whatever matched before.
    let mut found = None;
    for LiveCode {
        id,
        kind,
        factor_id,
        hash,
    } in rows
    {
        let accepted = (kind == FactorKind::Email && email) || (kind == FactorKind::Sms && sms);
        let same: bool = code_hash(key, &id, user, &digits_only).ct_eq(&hash).into();
        if same && accepted && found.is_none() {
            found = Some((id, kind, factor_id.unwrap_or_default()));
        }
    }
    let Some((id, kind, factor_id)) = found else {
        return Ok(None);
    };
    tx.prepare_cached("DELETE FROM sent_codes WHERE id = ?1")?
        .execute([&id])?;
    tx.prepare_cached("UPDATE factors SET last_used = ?3 WHERE id = ?1 AND user = ?2")?
        .execute((&factor_id, user, to_sql(now)))?;
    Ok(Some((factor_id, kind)))
}

/// Voids the codes sent to a factor that goes away.
pub(crate) fn delete_codes_of(
    conn: &Connection,
    user: &str,
    factor_id: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM sent_codes WHERE user = ?1 AND factor_id = ?2")?
        .execute((user, factor_id))?;
    Ok(())
}

pub fn purge_expired(conn: &Connection, now: u64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM sent_codes WHERE expires <= ?1")?
        .execute([to_sql(now)])?;
    conn.prepare_cached("DELETE FROM deliveries WHERE time <= ?1")?
        .execute([to_sql(now.saturating_sub(HOUR))])?;
    Ok(())
}

impl Store {
    /// The user's email and SMS factors, destinations opened.
    pub fn contacts(&mut self, user: &str) -> Result<Vec<Contact>, StoreError> {
        Ok(contacts(&self.conn, &self.key, user)?)
    }

    /// The user's email and SMS factors, and the id of the primary factor (of any kind).
    pub fn contacts_for_login(
        &mut self,
        user: &str,
    ) -> Result<(Vec<Contact>, Option<String>), StoreError> {
        let all = contacts(&self.conn, &self.key, user)?;
        let primary = primary_id(&self.conn, user)?;
        Ok((all, primary))
    }

    /// A new code for a login (or a step-up) to one of the user's email or SMS factors,
    /// counted against the flood limits in the same transaction as its audit row.
    pub fn issue_code(
        &mut self,
        ctx: &AuditCtx,
        factor_id: &str,
        purpose: Purpose,
        now: u64,
    ) -> Result<(IssueOutcome, AuditEntry), StoreError> {
        let user = ctx.user.as_str();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row = factors::get(&tx, user, factor_id)?
            .filter(|r| r.kind == FactorKind::Email || r.kind == FactorKind::Sms);
        let Some((row, destination)) =
            row.and_then(|r| open_destination(&self.key, user, &r).map(|d| (r, d)))
        else {
            let entry = ctx.entry(
                now,
                "send-code",
                AuditResult::Refused,
                "no such email or SMS factor",
            );
            return commit_audited(tx, entry, IssueOutcome::NoSuchFactor);
        };
        let issued = issue_in(
            &tx,
            Ctx::new(&self.key, &self.policy, now),
            user,
            ToSend {
                kind: row.kind,
                destination: &destination,
                purpose,
                factor_id: Some(factor_id),
                enrolment: None,
            },
        )?;
        let (outcome, result, reason) = match issued {
            Ok(issued) => (
                IssueOutcome::Issued(issued),
                AuditResult::Success,
                format!("{} code for factor {factor_id} issued", purpose.as_str()),
            ),
            Err(retry_after) => (
                IssueOutcome::RateLimited { retry_after },
                AuditResult::Refused,
                format!("flood limit: no code to factor {factor_id} before {retry_after}"),
            ),
        };
        commit_audited(tx, ctx.entry(now, row.kind, result, reason), outcome)
    }
}

#[cfg(test)]
mod tests;
