//! Security keys in the store: rows of the `factors` table with kind `fido2`, so that status,
//! rename, remove, primary and admin reset treat them like any other factor.
//!
//! The credential (id, COSE public key, AAGUID) is sealed like a secret even though it is
//! not one: the associated data binds it to its user and factor id, so nobody who can write
//! the database file can swap in a key of their own. The signature counter lives in
//! `last_step` and is advanced by a compare-and-set, so two logins with one assertion cannot
//! both pass and a counter never goes back.

use crate::store::FactorKind;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::audit::{self, AuditCtx, AuditEntry, AuditResult};
use super::factors;
use super::lockout::{self, Scope};
use super::step_up::{AdditionRefusal, StepUp, addition_refusal};
use super::verify::{VerifyOutcome, verify_in};
use super::{Ctx, Store, StoreError, from_sql, to_sql};
use crate::crypto::seal::{self, Kind};
use crate::fido2::{Credential, NewCredential};

/// A registered key, unsealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub factor_id: String,
    pub name: String,
    pub credential: Credential,
    pub aaguid: [u8; 16],
}

/// `[u16 BE id length][credential id][16 AAGUID][COSE key]`.
fn encode(credential_id: &[u8], aaguid: &[u8; 16], cose_key: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(credential_id.len()).ok()?;
    let mut out = Vec::with_capacity(2 + credential_id.len() + 16 + cose_key.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(credential_id);
    out.extend_from_slice(aaguid);
    out.extend_from_slice(cose_key);
    Some(out)
}

/// What a key's sealed blob holds (public, but bound to its user and factor id by the seal).
#[derive(Debug, PartialEq, Eq)]
struct Plain {
    credential_id: Vec<u8>,
    aaguid: [u8; 16],
    cose_key: Vec<u8>,
}

fn decode(blob: &[u8]) -> Option<Plain> {
    let len = usize::from(u16::from_be_bytes(blob.get(..2)?.try_into().ok()?));
    let id = blob.get(2..2 + len)?.to_vec();
    let aaguid: [u8; 16] = blob.get(2 + len..2 + len + 16)?.try_into().ok()?;
    let key = blob.get(2 + len + 16..)?.to_vec();
    (!id.is_empty() && !key.is_empty()).then_some(Plain {
        credential_id: id,
        aaguid,
        cose_key: key,
    })
}

/// The user's keys, oldest first. A row that does not open (moved, edited) is left out: it
/// can never verify anything.
pub fn keys(
    conn: &Connection,
    key: &crate::crypto::master_key::MasterKey,
    user: &str,
) -> rusqlite::Result<Vec<StoredKey>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, sealed, last_step FROM factors WHERE user = ?1 AND kind = ?2
         ORDER BY created, rowid",
    )?;
    let rows = stmt.query_map((user, FactorKind::Fido2), |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Vec<u8>>(2)?,
            r.get::<_, Option<i64>>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, name, sealed, counter) = row?;
        let aad = seal::aad(Kind::Fido2, user, &id);
        let Some(Plain {
            credential_id,
            aaguid,
            cose_key,
        }) = seal::open(key, &aad, &sealed)
            .ok()
            .and_then(|plain| decode(&plain))
        else {
            continue;
        };
        out.push(StoredKey {
            factor_id: id,
            name,
            credential: Credential {
                credential_id,
                cose_key,
                counter: u32::try_from(counter.map_or(0, from_sql)).unwrap_or(u32::MAX),
            },
            aaguid,
        });
    }
    Ok(out)
}

/// What adding a key came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddKeyOutcome {
    Added(herarx_proto::FactorInfo),
    /// This very key is registered already (for this user).
    AlreadyRegistered,
    /// The user gained a factor or backup codes after the caller decided no step-up was
    /// needed (the touch takes seconds): nothing stored, ask again with a step-up.
    StepUpRequired,
    TooManyFactors,
}

/// What became of a verified assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAcceptance {
    /// Counter advanced, the attempt's failures cleared.
    Accepted,
    /// The stored counter is not below the assertion's: another login used a later assertion
    /// first, or the key was cloned.
    CounterNotAbove,
    /// The attempt's scope was locked by the time the touch came (failures elsewhere while
    /// the key was blinking): nothing changed, the counter included.
    Locked { until: u64 },
}

impl Store {
    /// The user's registered keys.
    pub fn fido2_keys(&mut self, user: &str) -> Result<Vec<StoredKey>, StoreError> {
        Ok(keys(&self.conn, &self.key, user)?)
    }

    /// Stores a verified registration as a new factor named `name`, with its audit row.
    /// `stepped_up`: the caller verified a step-up (the device round trip happens outside any
    /// transaction); without one, the store checks here, in the writing transaction, that the
    /// user still has nothing that would require it.
    pub fn add_fido2_key(
        &mut self,
        ctx: &AuditCtx,
        name: &str,
        new: &NewCredential,
        stepped_up: bool,
        now: u64,
    ) -> Result<(AddKeyOutcome, AuditEntry), StoreError> {
        let user = ctx.user.as_str();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let finish = |tx: rusqlite::Transaction<'_>, outcome, result, reason: String| {
            let entry = ctx.entry(now, "fido2-enroll", result, reason);
            audit::insert(&tx, &entry)?;
            tx.commit()?;
            Ok((outcome, entry))
        };
        // The rules every addition obeys, checked again here: the touch took seconds, and
        // the account may have gained a factor (or reached the cap) meanwhile.
        let checked = addition_refusal(
            &tx,
            Ctx::new(&self.key, &self.policy, now),
            user,
            None,
            StepUp::from_begin(stepped_up),
        )?;
        if let Err(refusal) = checked {
            let (result, reason) = refusal.audit();
            let (outcome, reason) = match refusal {
                AdditionRefusal::TooMany(_) => (AddKeyOutcome::TooManyFactors, reason),
                // A key replaces nothing, so `NoSuchFactor` cannot come; refused like a missing
                // step-up if it ever did.
                AdditionRefusal::StepUp(_) | AdditionRefusal::NoSuchFactor => (
                    AddKeyOutcome::StepUpRequired,
                    "a factor was added meanwhile: step-up required".to_owned(),
                ),
            };
            return finish(tx, outcome, result, reason);
        }
        if keys(&tx, &self.key, user)?
            .iter()
            .any(|k| k.credential.credential_id == new.credential_id)
        {
            return finish(
                tx,
                AddKeyOutcome::AlreadyRegistered,
                AuditResult::Refused,
                "this security key is registered already".into(),
            );
        }
        let id = factors::new_id(&tx)?;
        let Some(plain) = encode(&new.credential_id, &new.aaguid, &new.cose_key) else {
            return finish(
                tx,
                AddKeyOutcome::AlreadyRegistered,
                AuditResult::Refused,
                "credential id too long".into(),
            );
        };
        let sealed = seal::seal(&self.key, &seal::aad(Kind::Fido2, user, &id), &plain)?;
        tx.prepare_cached(
            "INSERT INTO factors (id, user, kind, name, algorithm, digits, period, sealed, last_step, created, last_used)
             VALUES (?1, ?2, ?3, ?4, ?5, 0, 0, ?6, ?7, ?8, 0)",
        )?
        .execute(rusqlite::params![
            id,
            user,
            FactorKind::Fido2,
            name,
            new.algorithm.name(),
            sealed,
            i64::from(new.counter),
            to_sql(now),
        ])?;
        let first = factors::count(&tx, user)? == 1;
        let info = herarx_proto::FactorInfo {
            id: id.clone(),
            kind: FactorKind::Fido2.as_str().to_owned(),
            name: name.to_owned(),
            created: now,
            last_used: 0,
            primary: first,
            detail: String::new(),
        };
        finish(
            tx,
            AddKeyOutcome::Added(info),
            AuditResult::Success,
            format!(
                "security key {id} registered ({}, AAGUID {}, attestation {})",
                new.algorithm.name(),
                data_encoding::HEXLOWER.encode(&new.aaguid),
                new.attestation_format
            ),
        )
    }

    /// A verified assertion of key `factor_id`: advances its counter to `counter` by a
    /// compare-and-set and clears the attempt's failures, with the audit row, in one
    /// transaction. Refused while the attempt's scope is locked, checked in that transaction
    /// as every code is (the touch takes seconds, and the lock may have come meanwhile); a
    /// denial audited as a possible clone when the stored counter moved meanwhile.
    pub fn fido2_accept(
        &mut self,
        ctx: &AuditCtx,
        scope: &Scope,
        factor_id: &str,
        counter: u32,
        now: u64,
    ) -> Result<(KeyAcceptance, AuditEntry), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(until) = lockout::locked_until(&tx, &ctx.user, scope, now)? {
            let entry = ctx.entry(
                now,
                FactorKind::Fido2,
                AuditResult::Locked,
                format!(
                    "security key {factor_id} touched, not accepted: {} logins locked until \
                     {until}",
                    scope.as_str()
                ),
            );
            audit::insert(&tx, &entry)?;
            tx.commit()?;
            return Ok((KeyAcceptance::Locked { until }, entry));
        }
        let new = i64::from(counter);
        let moved = tx
            .prepare_cached(
                "UPDATE factors SET last_step = ?4, last_used = ?5
                 WHERE id = ?1 AND user = ?2 AND kind = ?3
                   AND (coalesce(last_step, 0) < ?4 OR (coalesce(last_step, 0) = 0 AND ?4 = 0))",
            )?
            .execute(rusqlite::params![
                factor_id,
                ctx.user,
                FactorKind::Fido2,
                new,
                to_sql(now)
            ])?;
        let (accepted, entry) = if moved == 1 {
            lockout::clear(&tx, &ctx.user, scope)?;
            (
                KeyAcceptance::Accepted,
                ctx.entry(
                    now,
                    FactorKind::Fido2,
                    AuditResult::Success,
                    format!("security key {factor_id} verified (counter {counter})"),
                ),
            )
        } else {
            (
                KeyAcceptance::CounterNotAbove,
                ctx.entry(
                    now,
                    FactorKind::Fido2,
                    AuditResult::Denied,
                    format!(
                        "security key {factor_id}: counter {counter} not above the stored one \
                         (fido2-counter-regression-possible-clone)"
                    ),
                ),
            )
        };
        audit::insert(&tx, &entry)?;
        tx.commit()?;
        Ok((accepted, entry))
    }

    /// A refused assertion: counted as a failure of the attempt's scope, audited with
    /// `reason` (never secret). Returns the lock that now bars the attempt, if any.
    pub fn fido2_reject(
        &mut self,
        ctx: &AuditCtx,
        scope: &Scope,
        reason: &str,
        now: u64,
    ) -> Result<(Option<u64>, AuditEntry), StoreError> {
        let policy = self.policy().lockout;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let after = lockout::record_failure(&tx, &ctx.user, scope, now, &policy)?;
        let locked = after.locked_at(now);
        let mut reason = format!("{reason} (failure {})", after.count);
        if let Some(until) = locked {
            reason.push_str(&format!("; locked until {until}"));
        }
        let entry = ctx.entry(now, FactorKind::Fido2, AuditResult::Denied, reason);
        audit::insert(&tx, &entry)?;
        tx.commit()?;
        Ok((locked, entry))
    }
}

/// The `meta` row holding the relying party id recorded at first use.
const META_RP_ID: &str = "fido2_rp_id";

impl Store {
    /// The relying party id keys are registered for: `configured` when set (`fido2.rp_id`),
    /// else the one recorded at first use, which is `pam://<hostname>` as the host was named
    /// then. Recorded once and never re-read from the hostname, so renaming the host does not
    /// orphan the registered keys.
    pub fn fido2_rp_id(&mut self, configured: &str, hostname: &str) -> Result<String, StoreError> {
        if !configured.is_empty() {
            return Ok(configured.to_owned());
        }
        // Recorded once; later calls (every key login) only read it.
        let recorded: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
            .query_row([META_RP_ID], |r| r.get(0))
            .optional()?;
        if let Some(value) = recorded {
            return Ok(String::from_utf8_lossy(&value).into_owned());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached("INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)")?
            .execute(rusqlite::params![
                META_RP_ID,
                format!("pam://{hostname}").into_bytes()
            ])?;
        let value: Vec<u8> = tx
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
            .query_row([META_RP_ID], |r| r.get(0))?;
        tx.commit()?;
        Ok(String::from_utf8_lossy(&value).into_owned())
    }

    /// A step-up code (TOTP or backup code) for a change to `ctx.user`'s security keys,
    /// checked like a login's and like every other self-service step-up (consumed, counted,
    /// locked out, local scope), with its audit row under `method`.
    pub fn fido2_step_up_code(
        &mut self,
        ctx: &AuditCtx,
        method: &str,
        code: &str,
        now: u64,
    ) -> Result<(VerifyOutcome, AuditEntry), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let outcome = verify_in(
            &tx,
            Ctx::new(&self.key, &self.policy, now),
            &ctx.user,
            code.trim(),
            &Scope::Local,
        )?;
        let (result, reason) = outcome.audit();
        let entry = ctx.entry(now, method, result, format!("step-up: {reason}"));
        audit::insert(&tx, &entry)?;
        tx.commit()?;
        Ok((outcome, entry))
    }
}

#[cfg(test)]
mod tests;
