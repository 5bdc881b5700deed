//! The store's boundary: everything the layers above may ask of persistence, as one trait.
//!
//! It hands out no stored secret. It verifies a code and consumes it, seals a new factor,
//! answers what a user has; the only secrets that cross it are fresh ones, handed out exactly
//! once at their birth for the user to see or receive: a new TOTP seed (for the QR code), new
//! backup codes, a code to send by email or text message. Seeds, backup-code hashes and sent-code
//! hashes never leave it. Security keys' public credentials do (the daemon verifies an assertion
//! with them; the counter advances by compare-and-set here).
//!
//! SQLite ([`Store`]) is the one implementation today; a fleet backend (PostgreSQL verifying
//! codes itself) implements the same trait. Calls are made under the daemon's store lock, one
//! at a time, each one transaction with its audit row.

use herarx_proto::{AuditRecord, FactorInfo, UserSummary};
use zeroize::Zeroizing;

#[cfg(test)]
use super::Store;
use super::accounts::Account;
use super::admin::{ResetCounts, UserState};
use super::contact_enrollments::{ContactBeginOutcome, NewContact};
use super::enrollments::{
    BackupCodesOutcome, BeginOutcome, ConfirmOutcome, FactorChange, RemoveOutcome,
};
use super::fido2::{AddKeyOutcome, KeyAcceptance, StoredKey};
use super::remembered::Remembered;
use super::sent_codes::{Contact, IssueOutcome, Purpose};
use super::verify::{Accept, LoginState, VerifyOutcome};
use super::{AuditCtx, AuditEntry, Failures, Scope, StoreError, StorePolicy};
use crate::crypto::totp::Params;
use crate::fido2::NewCredential;

/// Persistence behind the daemon: see the module's comment for what crosses it.
pub trait FactorStore: Send {
    // What a login reads, and the check of any code (it consumes the code, counts or clears the failure).
    /// Whether the scope is locked, and how many TOTP factors the user has.
    fn login_state(
        &mut self,
        user: &str,
        scope: &Scope,
        now: u64,
    ) -> Result<LoginState, StoreError>;

    /// Like [`Store::verify_and_consume`], accepting only the kinds of answer in `accept` (a
    /// service's `methods`): any other is checked as a wrong code, and counted.
    fn verify_and_consume_accepting(
        &mut self,
        ctx: &AuditCtx,
        code: &str,
        now: u64,
        scope: &Scope,
        method: &str,
        accept: Accept,
    ) -> Result<(VerifyOutcome, AuditEntry), StoreError>;

    /// The failures of the attempt's own counter (local, or its source) as they count at `now`.
    fn failures(&mut self, user: &str, scope: &Scope, now: u64) -> Result<Failures, StoreError>;

    /// Records that Herarx saw the account (the start of its enrolment window, until an admin
    /// reset). Returns its row.
    fn touch_account(&mut self, user: &str, now: u64) -> Result<Account, StoreError>;

    /// The user's factors, as the owner sees them, the primary one marked (the chosen one,
    /// else the oldest).
    fn factor_infos(&mut self, user: &str) -> Result<Vec<FactorInfo>, StoreError>;

    /// What `herarxctl status` shows beside the factors: unused backup codes, and until when
    /// remote logins are locked (0: not locked).
    fn self_status_extras(&mut self, user: &str, now: u64) -> Result<(u32, u64), StoreError>;

    // Email and SMS: the user's contacts and a code to send (handed out once, for delivery).
    /// The user's email and SMS factors, destinations opened.
    fn contacts(&mut self, user: &str) -> Result<Vec<Contact>, StoreError>;

    /// The user's email and SMS factors, and the id of the primary factor (of any kind).
    fn contacts_for_login(
        &mut self,
        user: &str,
    ) -> Result<(Vec<Contact>, Option<String>), StoreError>;

    /// A new code for a login (or a step-up) to one of the user's email or SMS factors,
    /// counted against the flood limits in the same transaction as its audit row.
    fn issue_code(
        &mut self,
        ctx: &AuditCtx,
        factor_id: &str,
        purpose: Purpose,
        now: u64,
    ) -> Result<(IssueOutcome, AuditEntry), StoreError>;

    // Enrolment: TOTP (its new seed handed out once, for the QR code), email and SMS, security keys.
    /// Starts a TOTP enrolment named `name` for `ctx.user` with a new random secret.
    fn begin_totp_enrollment(
        &mut self,
        ctx: &AuditCtx,
        name: &str,
        step_up: &str,
        params: Params,
        now: u64,
    ) -> Result<(BeginOutcome, AuditEntry), StoreError>;

    /// [`Store::begin_totp_enrollment`], or with `replace`, an enrolment whose confirmation
    /// removes that factor of the user's in the same transaction (moving to a new phone).
    /// Replacing always needs a step-up: the factor being replaced exists.
    fn begin_totp_enrollment_replacing(
        &mut self,
        ctx: &AuditCtx,
        name: &str,
        step_up: &str,
        replace: Option<&str>,
        params: Params,
        now: u64,
    ) -> Result<(BeginOutcome, AuditEntry), StoreError>;

    /// Completes a pending enrolment with a code from the new authenticator. The code's step
    /// becomes the factor's last step, so it cannot be used again to log in.
    fn confirm_totp_enrollment(
        &mut self,
        ctx: &AuditCtx,
        id: &str,
        code: &str,
        now: u64,
    ) -> Result<(ConfirmOutcome, AuditEntry), StoreError>;

    /// Starts adding `destination` (a normalized address or E.164 number) as a factor of
    /// `kind`: a step-up once the user has anything that logs in, then a confirmation code to
    /// send there.
    fn begin_contact_enrollment(
        &mut self,
        ctx: &AuditCtx,
        new: &NewContact<'_>,
        step_up: &str,
        now: u64,
    ) -> Result<(ContactBeginOutcome, AuditEntry), StoreError>;

    /// Completes an email or SMS enrolment with the code sent there.
    fn confirm_contact_enrollment(
        &mut self,
        ctx: &AuditCtx,
        id: &str,
        code: &str,
        now: u64,
    ) -> Result<(ConfirmOutcome, AuditEntry), StoreError>;

    /// Stores a verified registration as a new factor named `name`, with its audit row.
    /// `stepped_up`: the caller verified a step-up (the device round trip happens outside any
    /// transaction); without one, the store checks here, in the writing transaction, that the
    /// user still has nothing that would require it.
    fn add_fido2_key(
        &mut self,
        ctx: &AuditCtx,
        name: &str,
        new: &NewCredential,
        stepped_up: bool,
        now: u64,
    ) -> Result<(AddKeyOutcome, AuditEntry), StoreError>;

    // Security keys: the public credentials, the counter's compare-and-set, the relying party.
    /// The user's registered keys.
    fn fido2_keys(&mut self, user: &str) -> Result<Vec<StoredKey>, StoreError>;

    /// A verified assertion of key `factor_id`: advances its counter to `counter` by a
    /// compare-and-set and clears the attempt's failures, with the audit row, in one
    /// transaction. Refused while the attempt's scope is locked, checked in that transaction
    /// as every code is (the touch takes seconds, and the lock may have come meanwhile); a
    /// denial audited as a possible clone when the stored counter moved meanwhile.
    fn fido2_accept(
        &mut self,
        ctx: &AuditCtx,
        scope: &Scope,
        factor_id: &str,
        counter: u32,
        now: u64,
    ) -> Result<(KeyAcceptance, AuditEntry), StoreError>;

    /// A refused assertion: counted as a failure of the attempt's scope, audited with
    /// `reason` (never secret). Returns the lock that now bars the attempt, if any.
    fn fido2_reject(
        &mut self,
        ctx: &AuditCtx,
        scope: &Scope,
        reason: &str,
        now: u64,
    ) -> Result<(Option<u64>, AuditEntry), StoreError>;

    /// The relying party id keys are registered for: `configured` when set (`fido2.rp_id`),
    /// else the one recorded at first use, which is `pam://<hostname>` as the host was named
    /// then. Recorded once and never re-read from the hostname, so renaming the host does not
    /// orphan the registered keys.
    fn fido2_rp_id(&mut self, configured: &str, hostname: &str) -> Result<String, StoreError>;

    /// A step-up code (TOTP or backup code) for a change to `ctx.user`'s security keys,
    /// checked like a login's and like every other self-service step-up (consumed, counted,
    /// locked out, local scope), with its audit row under `method`.
    fn fido2_step_up_code(
        &mut self,
        ctx: &AuditCtx,
        method: &str,
        code: &str,
        now: u64,
    ) -> Result<(VerifyOutcome, AuditEntry), StoreError>;

    // Changes to a user's factors, each after its step-up (new backup codes handed out once).
    /// Removes one of `ctx.user`'s factors after a step-up with any of them.
    fn remove_factor(
        &mut self,
        ctx: &AuditCtx,
        id: &str,
        step_up: &str,
        now: u64,
    ) -> Result<(RemoveOutcome, AuditEntry), StoreError>;

    /// Removes a factor after the caller proved it is the user by a touch of one of their
    /// security keys (verified, counter advanced and audited before this call).
    fn remove_factor_after_touch(
        &mut self,
        ctx: &AuditCtx,
        id: &str,
        now: u64,
    ) -> Result<(RemoveOutcome, AuditEntry), StoreError>;

    /// Replaces `ctx.user`'s backup codes with a new set. Once the user has a factor or an
    /// unused code, it needs a step-up (a backup code counts, and is spent by it).
    fn generate_backup_codes(
        &mut self,
        ctx: &AuditCtx,
        step_up: &str,
        now: u64,
    ) -> Result<(BackupCodesOutcome, AuditEntry), StoreError>;

    /// A first set of backup codes for a user who has just proven a new factor inside a login
    /// (the login itself is the proof: no step-up). One transaction with its audit row.
    fn issue_backup_codes(
        &mut self,
        ctx: &AuditCtx,
        now: u64,
    ) -> Result<(Vec<Zeroizing<String>>, AuditEntry), StoreError>;

    /// Makes factor `id` of `ctx.user`'s the one logins offer first.
    fn set_primary(
        &mut self,
        ctx: &AuditCtx,
        id: &str,
        now: u64,
    ) -> Result<(FactorChange, AuditEntry), StoreError>;

    /// Renames factor `id` of `ctx.user`'s. `name` is checked by the caller.
    fn rename_factor(
        &mut self,
        ctx: &AuditCtx,
        id: &str,
        name: &str,
        now: u64,
    ) -> Result<(FactorChange, AuditEntry), StoreError>;

    // Remembered addresses and SSH keys.
    /// The opt-in and what is remembered for `user`, for its owner's status.
    fn remembered_status(
        &mut self,
        user: &str,
        now: u64,
    ) -> Result<(bool, Vec<Remembered>), StoreError>;

    /// Sets the opt-in, with its audit row.
    fn set_remember_addresses(
        &mut self,
        ctx: &AuditCtx,
        on: bool,
        now: u64,
    ) -> Result<AuditEntry, StoreError>;

    /// Forgets everything remembered for the user, with its audit row. Returns how many.
    fn forget(&mut self, ctx: &AuditCtx, now: u64) -> Result<(usize, AuditEntry), StoreError>;

    /// Until when `value` is remembered for `user` (a read).
    fn remembered_until(
        &mut self,
        user: &str,
        kind: &str,
        value: &str,
        now: u64,
    ) -> Result<Option<u64>, StoreError>;

    /// Whether `user` opted in to "only ask from new addresses".
    fn remembers_addresses(&mut self, user: &str) -> Result<bool, StoreError>;

    /// Remembers `value` for `user`, with its audit row, in one transaction.
    fn remember(
        &mut self,
        ctx: &AuditCtx,
        kind: &str,
        value: &str,
        seconds: u64,
        now: u64,
    ) -> Result<AuditEntry, StoreError>;

    /// Records a login of `user` from `address`; whether it was never seen before.
    fn saw_address(&mut self, user: &str, address: &str, now: u64) -> Result<bool, StoreError>;

    // Administration.
    /// Everything about `user` but secrets.
    fn admin_user_state(&mut self, user: &str, now: u64) -> Result<UserState, StoreError>;

    fn admin_list(
        &mut self,
        after: &str,
        limit: u32,
        now: u64,
    ) -> Result<Vec<UserSummary>, StoreError>;

    fn admin_log(
        &mut self,
        user: &str,
        since: u64,
        before: u64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError>;

    /// Removes all of `ctx.user`'s factors, backup codes, pending enrolments, codes sent by
    /// email or text, failure counters, remembered addresses and SSH keys (and the opt-in), and
    /// restarts the enrolment window, in one transaction with its audit row
    /// (`ctx.caller_uid` is the admin). A user with nothing is not an error: the row says so.
    fn admin_reset(
        &mut self,
        ctx: &AuditCtx,
        now: u64,
    ) -> Result<(ResetCounts, AuditEntry), StoreError>;

    /// Clears `ctx.user`'s failure counters and lockouts, with its audit row. Returns how many
    /// counters there were.
    fn admin_unlock(&mut self, ctx: &AuditCtx, now: u64) -> Result<(u32, AuditEntry), StoreError>;

    // The audit trail, housekeeping and the policy in force.
    /// Writes one audit row in its own transaction (for decisions that touch nothing else).
    fn record(&mut self, entry: &AuditEntry) -> Result<(), StoreError>;

    /// Housekeeping: drops expired enrolments, failure counters that no longer count, expired
    /// remembered things, and audit rows past their retention (a bounded batch per call, so
    /// that a first prune of a large trail does not hold the writer lock for long).
    fn prune(&mut self, now: u64) -> Result<(), StoreError>;

    /// Folds the WAL into the database file (at shutdown, so the file alone is complete).
    fn checkpoint(&mut self) -> Result<(), StoreError>;

    fn policy(&self) -> &StorePolicy;

    /// A reloaded configuration's policy; takes effect from the next operation.
    fn set_policy(&mut self, policy: StorePolicy);

    /// The SQLite store itself, for tests that look at its rows.
    #[cfg(test)]
    fn sqlite(&self) -> &Store;

    /// The same, to write rows a test needs.
    #[cfg(test)]
    fn sqlite_mut(&mut self) -> &mut Store;
}
