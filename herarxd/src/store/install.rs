//! The last step of every enrolment confirmation (a TOTP app, an email address, a phone
//! number): the factor it replaces goes, with the codes sent to it; the new row goes in; the
//! primary mark moves to it when the replaced factor had it. One function for every kind, run
//! inside the confirming transaction after its checks passed and its code verified.
//!
//! Security keys do not come here: `fido2.rs` writes its own row, because a key replaces
//! nothing, stores its signature algorithm's name (not a TOTP algorithm) in the `algorithm`
//! column, and reports its primary mark as "the only factor" rather than through
//! [`info_of`]; folding it in would change what is stored or shown.

use herarx_proto::FactorInfo;
use rusqlite::Transaction;

use super::StoreError;
use super::accounts;
use super::factors::{self, FactorRow, info_of, primary_id};
use super::sent_codes::delete_codes_of;
use crate::crypto::master_key::MasterKey;

/// A factor [`install`] wrote.
#[derive(Debug)]
pub(super) struct Installed {
    /// The new factor as its owner sees it, the primary mark included.
    pub(super) info: FactorInfo,
    /// The id of the factor it replaced, if one was replaced.
    pub(super) replaced: Option<String>,
}

impl Installed {
    /// The audit reason of the confirmation.
    pub(super) fn reason(&self) -> String {
        match &self.replaced {
            Some(old) => format!("factor {} enrolled, replacing factor {old}", self.info.id),
            None => format!("factor {} enrolled", self.info.id),
        }
    }
}

/// Writes `row` (a factor of `row.user`), replacing the user's factor `replaces` when it
/// still exists, and spends the pending enrolment with `spend_pending` (the caller's row:
/// `pending_enrollments` for TOTP, `sent_codes` for an address or number).
///
/// The order is the one both confirmations always had, kept so that nothing observable moves:
/// the replaced factor and whether it was primary are read before anything is written; the
/// old row and its sent codes go before the new row goes in; the pending row goes after the
/// insert; the primary mark moves last, so [`info_of`] sees it. A `replaces` that no longer
/// exists replaces nothing (the caller's re-check refused that case already, in the same
/// transaction).
pub(super) fn install(
    tx: &Transaction<'_>,
    key: &MasterKey,
    row: &FactorRow,
    replaces: Option<&str>,
    spend_pending: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<()>,
    now: u64,
) -> Result<Installed, StoreError> {
    let user = row.user.as_str();
    let replaced = match replaces {
        Some(old) => factors::get(tx, user, old)?,
        None => None,
    };
    let was_primary = match &replaced {
        Some(old) => primary_id(tx, user)?.as_deref() == Some(old.id.as_str()),
        None => false,
    };
    if let Some(old) = &replaced {
        factors::delete(tx, user, &old.id)?;
        // Codes already sent to it stop working with it.
        delete_codes_of(tx, user, &old.id)?;
    }
    factors::insert(tx, row)?;
    spend_pending(tx)?;
    if was_primary {
        accounts::set_primary(tx, user, Some(&row.id), now)?;
    }
    // Without a replaced primary, the first factor is the primary one (until the user picks
    // another): info_of works that out.
    let info = info_of(tx, key, user, row)?;
    Ok(Installed {
        info,
        replaced: replaced.map(|old| old.id),
    })
}
