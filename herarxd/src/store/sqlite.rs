//! SQLite's side of the store boundary: [`FactorStore`] for [`Store`], each call the store's
//! own operation (defined in the file of its tables).

use herarx_proto::{AuditRecord, FactorInfo, UserSummary};
use zeroize::Zeroizing;

use super::FactorStore;
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
use super::{AuditCtx, AuditEntry, Failures, Scope, Store, StoreError, StorePolicy};
use crate::crypto::totp::Params;
use crate::fido2::NewCredential;

impl FactorStore for Store {
    fn login_state(
        &mut self,
        user: &str,
        scope: &Scope,
        now: u64,
    ) -> Result<LoginState, StoreError> {
        Store::login_state(self, user, scope, now)
    }

    fn verify_and_consume_accepting(
        &mut self,
        ctx: &AuditCtx,
        code: &str,
        now: u64,
        scope: &Scope,
        method: &str,
        accept: Accept,
    ) -> Result<(VerifyOutcome, AuditEntry), StoreError> {
        Store::verify_and_consume_accepting(self, ctx, code, now, scope, method, accept)
    }

    fn failures(&mut self, user: &str, scope: &Scope, now: u64) -> Result<Failures, StoreError> {
        Store::failures(self, user, scope, now)
    }

    fn touch_account(&mut self, user: &str, now: u64) -> Result<Account, StoreError> {
        Store::touch_account(self, user, now)
    }

    fn factor_infos(&mut self, user: &str) -> Result<Vec<FactorInfo>, StoreError> {
        Store::factor_infos(self, user)
    }

    fn self_status_extras(&mut self, user: &str, now: u64) -> Result<(u32, u64), StoreError> {
        Store::self_status_extras(self, user, now)
    }

    fn contacts(&mut self, user: &str) -> Result<Vec<Contact>, StoreError> {
        Store::contacts(self, user)
    }

    fn contacts_for_login(
        &mut self,
        user: &str,
    ) -> Result<(Vec<Contact>, Option<String>), StoreError> {
        Store::contacts_for_login(self, user)
    }

    fn issue_code(
        &mut self,
        ctx: &AuditCtx,
        factor_id: &str,
        purpose: Purpose,
        now: u64,
    ) -> Result<(IssueOutcome, AuditEntry), StoreError> {
        Store::issue_code(self, ctx, factor_id, purpose, now)
    }

    fn begin_totp_enrollment(
        &mut self,
        ctx: &AuditCtx,
        name: &str,
        step_up: &str,
        params: Params,
        now: u64,
    ) -> Result<(BeginOutcome, AuditEntry), StoreError> {
        Store::begin_totp_enrollment(self, ctx, name, step_up, params, now)
    }

    fn begin_totp_enrollment_replacing(
        &mut self,
        ctx: &AuditCtx,
        name: &str,
        step_up: &str,
        replace: Option<&str>,
        params: Params,
        now: u64,
    ) -> Result<(BeginOutcome, AuditEntry), StoreError> {
        Store::begin_totp_enrollment_replacing(self, ctx, name, step_up, replace, params, now)
    }

    fn confirm_totp_enrollment(
        &mut self,
        ctx: &AuditCtx,
        id: &str,
        code: &str,
        now: u64,
    ) -> Result<(ConfirmOutcome, AuditEntry), StoreError> {
        Store::confirm_totp_enrollment(self, ctx, id, code, now)
    }

    fn begin_contact_enrollment(
        &mut self,
        ctx: &AuditCtx,
        new: &NewContact<'_>,
        step_up: &str,
        now: u64,
    ) -> Result<(ContactBeginOutcome, AuditEntry), StoreError> {
        Store::begin_contact_enrollment(self, ctx, new, step_up, now)
    }

    fn confirm_contact_enrollment(
        &mut self,
        ctx: &AuditCtx,
        id: &str,
        code: &str,
        now: u64,
    ) -> Result<(ConfirmOutcome, AuditEntry), StoreError> {
        Store::confirm_contact_enrollment(self, ctx, id, code, now)
    }

    fn add_fido2_key(
        &mut self,
        ctx: &AuditCtx,
        name: &str,
        new: &NewCredential,
        stepped_up: bool,
        now: u64,
    ) -> Result<(AddKeyOutcome, AuditEntry), StoreError> {
        Store::add_fido2_key(self, ctx, name, new, stepped_up, now)
    }

    fn fido2_keys(&mut self, user: &str) -> Result<Vec<StoredKey>, StoreError> {
        Store::fido2_keys(self, user)
    }

    fn fido2_accept(
        &mut self,
        ctx: &AuditCtx,
        scope: &Scope,
        factor_id: &str,
        counter: u32,
        now: u64,
    ) -> Result<(KeyAcceptance, AuditEntry), StoreError> {
        Store::fido2_accept(self, ctx, scope, factor_id, counter, now)
    }

    fn fido2_reject(
        &mut self,
        ctx: &AuditCtx,
        scope: &Scope,
        reason: &str,
        now: u64,
    ) -> Result<(Option<u64>, AuditEntry), StoreError> {
        Store::fido2_reject(self, ctx, scope, reason, now)
    }

    fn fido2_rp_id(&mut self, configured: &str, hostname: &str) -> Result<String, StoreError> {
        Store::fido2_rp_id(self, configured, hostname)
    }

    fn fido2_step_up_code(
        &mut self,
        ctx: &AuditCtx,
        method: &str,
        code: &str,
        now: u64,
    ) -> Result<(VerifyOutcome, AuditEntry), StoreError> {
        Store::fido2_step_up_code(self, ctx, method, code, now)
    }

    fn remove_factor(
        &mut self,
        ctx: &AuditCtx,
        id: &str,
        step_up: &str,
        now: u64,
    ) -> Result<(RemoveOutcome, AuditEntry), StoreError> {
        Store::remove_factor(self, ctx, id, step_up, now)
    }

    fn remove_factor_after_touch(
        &mut self,
        ctx: &AuditCtx,
        id: &str,
        now: u64,
    ) -> Result<(RemoveOutcome, AuditEntry), StoreError> {
        Store::remove_factor_after_touch(self, ctx, id, now)
    }

    fn generate_backup_codes(
        &mut self,
        ctx: &AuditCtx,
        step_up: &str,
        now: u64,
    ) -> Result<(BackupCodesOutcome, AuditEntry), StoreError> {
        Store::generate_backup_codes(self, ctx, step_up, now)
    }

    fn issue_backup_codes(
        &mut self,
        ctx: &AuditCtx,
        now: u64,
    ) -> Result<(Vec<Zeroizing<String>>, AuditEntry), StoreError> {
        Store::issue_backup_codes(self, ctx, now)
    }

    fn set_primary(
        &mut self,
        ctx: &AuditCtx,
        id: &str,
        now: u64,
    ) -> Result<(FactorChange, AuditEntry), StoreError> {
        Store::set_primary(self, ctx, id, now)
    }

    fn rename_factor(
        &mut self,
        ctx: &AuditCtx,
        id: &str,
        name: &str,
        now: u64,
    ) -> Result<(FactorChange, AuditEntry), StoreError> {
        Store::rename_factor(self, ctx, id, name, now)
    }

    fn remembered_status(
        &mut self,
        user: &str,
        now: u64,
    ) -> Result<(bool, Vec<Remembered>), StoreError> {
        Store::remembered_status(self, user, now)
    }

    fn set_remember_addresses(
        &mut self,
        ctx: &AuditCtx,
        on: bool,
        now: u64,
    ) -> Result<AuditEntry, StoreError> {
        Store::set_remember_addresses(self, ctx, on, now)
    }

    fn forget(&mut self, ctx: &AuditCtx, now: u64) -> Result<(usize, AuditEntry), StoreError> {
        Store::forget(self, ctx, now)
    }

    fn remembered_until(
        &mut self,
        user: &str,
        kind: &str,
        value: &str,
        now: u64,
    ) -> Result<Option<u64>, StoreError> {
        Store::remembered_until(self, user, kind, value, now)
    }

    fn remembers_addresses(&mut self, user: &str) -> Result<bool, StoreError> {
        Store::remembers_addresses(self, user)
    }

    fn remember(
        &mut self,
        ctx: &AuditCtx,
        kind: &str,
        value: &str,
        seconds: u64,
        now: u64,
    ) -> Result<AuditEntry, StoreError> {
        Store::remember(self, ctx, kind, value, seconds, now)
    }

    fn saw_address(&mut self, user: &str, address: &str, now: u64) -> Result<bool, StoreError> {
        Store::saw_address(self, user, address, now)
    }

    fn admin_user_state(&mut self, user: &str, now: u64) -> Result<UserState, StoreError> {
        Store::admin_user_state(self, user, now)
    }

    fn admin_list(
        &mut self,
        after: &str,
        limit: u32,
        now: u64,
    ) -> Result<Vec<UserSummary>, StoreError> {
        Store::admin_list(self, after, limit, now)
    }

    fn admin_log(
        &mut self,
        user: &str,
        since: u64,
        before: u64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        Store::admin_log(self, user, since, before, limit)
    }

    fn admin_reset(
        &mut self,
        ctx: &AuditCtx,
        now: u64,
    ) -> Result<(ResetCounts, AuditEntry), StoreError> {
        Store::admin_reset(self, ctx, now)
    }

    fn admin_unlock(&mut self, ctx: &AuditCtx, now: u64) -> Result<(u32, AuditEntry), StoreError> {
        Store::admin_unlock(self, ctx, now)
    }

    fn record(&mut self, entry: &AuditEntry) -> Result<(), StoreError> {
        Store::record(self, entry)
    }

    fn prune(&mut self, now: u64) -> Result<(), StoreError> {
        Store::prune(self, now)
    }

    fn checkpoint(&mut self) -> Result<(), StoreError> {
        Store::checkpoint(self)
    }

    fn policy(&self) -> &StorePolicy {
        Store::policy(self)
    }

    fn set_policy(&mut self, policy: StorePolicy) {
        Store::set_policy(self, policy)
    }

    #[cfg(test)]
    fn sqlite(&self) -> &Store {
        self
    }

    #[cfg(test)]
    fn sqlite_mut(&mut self) -> &mut Store {
        self
    }
}
