//! The caller's status, and the address memory they control (on/off, forget).

use herarx_proto::{HerarxError, UserStatus};

use crate::selfservice::SelfService;
use crate::store::Scope;

impl SelfService {
    /// The caller's factors, failures and lockout (local scope) and the no-factor policy.
    pub fn status(&self, uid: u32, now: u64) -> Result<UserStatus, HerarxError> {
        let ctx = self.account(uid, "status", now)?;
        let read = {
            let mut store = self.state.store();
            store.factor_infos(&ctx.user).and_then(|f| {
                let failures = store.failures(&ctx.user, &Scope::Local, now)?;
                let extras = store.self_status_extras(&ctx.user, now)?;
                Ok((f, failures, extras))
            })
        };
        let (factors, failures, (backup_codes_left, remote_locked_until)) =
            read.map_err(|e| self.state.internal("reading a status", &e))?;
        let (remember_addresses, remembered) = self
            .state
            .store()
            .remembered_status(&ctx.user, now)
            .map_err(|e| self.state.internal("reading a status", &e))?;
        let config = self.state.config();
        let requirement =
            crate::factors::requirement::requirement(&config, self.state.users.as_ref(), &ctx.user);
        let no_factor_policy = crate::factors::requirement::no_factor_name(&config, &requirement);
        Ok(UserStatus {
            user: ctx.user,
            factors,
            backup_codes_left,
            failures: failures.count,
            locked_until: failures.locked_at(now).unwrap_or(0),
            remote_locked_until,
            required: requirement.required,
            no_factor_policy,
            remember_addresses,
            remembered: remembered
                .into_iter()
                .map(|r| herarx_proto::RememberedInfo {
                    kind: r.kind,
                    value: r.value,
                    created: r.created,
                    expires: r.expires,
                })
                .collect(),
        })
    }

    /// Turns "only ask from new addresses" on or off for the caller. No step-up: it only ever
    /// skips the code from an address where this user already passed it.
    pub fn set_remember_addresses(&self, uid: u32, on: bool, now: u64) -> Result<(), HerarxError> {
        const METHOD: &str = "remember-addresses";
        let ctx = self.account(uid, METHOD, now)?;
        if on && self.state.config().address_memory_seconds().is_none() {
            self.refuse(&ctx, METHOD, now, "forbidden by remember.addresses");
            return Err(HerarxError::PermissionDenied(
                "Your administrator does not allow remembering addresses on this host \
                 (remember.addresses = \"off\" in /etc/herarx/herarx.toml)."
                    .into(),
            ));
        }
        let result = self.state.store().set_remember_addresses(&ctx, on, now);
        self.state.settle("changing the address memory", result)
    }

    /// Forgets every address and SSH key remembered for the caller.
    pub fn forget(&self, uid: u32, now: u64) -> Result<u32, HerarxError> {
        let ctx = self.account(uid, "forget", now)?;
        let result = self.state.store().forget(&ctx, now);
        let n = self
            .state
            .settle("forgetting remembered addresses", result)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
