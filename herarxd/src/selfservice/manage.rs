//! Changes to the factors the caller has: remove one, choose the primary, rename one.

use herarx_proto::{FactorInfo, HerarxError, limits};

use crate::selfservice::SelfService;
use crate::selfservice::refusals::{no_such_factor, step_up_refusal, step_up_too_long};
use crate::state::valid_text;
use crate::store::enrollments::{FactorChange, RemoveOutcome};

impl SelfService {
    /// `local` is the verdict of `crate::bus::local_session` on the caller: a step-up by a touch
    /// (no code given, the user has keys) drives the keys plugged into this machine, which only
    /// a caller in a local login of its own may do.
    pub fn remove_factor(
        &self,
        uid: u32,
        id: &str,
        step_up_code: &str,
        local: Result<(), HerarxError>,
        now: u64,
    ) -> Result<(), HerarxError> {
        const METHOD: &str = "remove";
        let ctx = self.account(uid, METHOD, now)?;
        if !valid_text(id, limits::ID_MAX) {
            self.refuse(&ctx, METHOD, now, "malformed factor id");
            return Err(no_such_factor());
        }
        if step_up_code.len() > limits::ANSWER_MAX {
            self.refuse(&ctx, METHOD, now, "step-up code too long");
            return Err(step_up_too_long());
        }
        // No code: a user with security keys confirms with a touch of one of them (checked
        // like a login: challenge, signature, counter; failures count towards the lockout).
        let touched = step_up_code.trim().is_empty() && self.step_up_by_touch(&ctx, local, now)?;
        // What the alert will name, and who it goes to, as they are before the removal.
        let before = self
            .state
            .store()
            .factor_infos(&ctx.user)
            .map_err(|e| self.state.internal("reading the factors", &e))?
            .into_iter()
            .find(|f| f.id == id);
        let emails = self
            .state
            .alert_emails(&ctx.user, crate::alerts::AlertKind::MethodRemoved);
        let result = {
            let mut store = self.state.store();
            if touched {
                store.remove_factor_after_touch(&ctx, id, now)
            } else {
                store.remove_factor(&ctx, id, step_up_code, now)
            }
        };
        let outcome = self.state.settle("removing a factor", result)?;
        match outcome {
            RemoveOutcome::Removed { .. } => {
                if let Some(info) = &before {
                    self.alert_method_change_to(&ctx, info, false, emails, now);
                }
                Ok(())
            }
            RemoveOutcome::NoSuchFactor => Err(no_such_factor()),
            RemoveOutcome::StepUpRequired => Err(HerarxError::StepUpRequired(
                "Removing a factor needs a current code from one of your factors (step-up).".into(),
            )),
            RemoveOutcome::StepUpFailed(o) => Err(step_up_refusal(&o, now)),
        }
    }

    /// Makes one of the caller's factors the one logins offer first. No step-up: choosing
    /// which of your own factors is asked first weakens nothing (every factor already logs
    /// in), and ownership is checked from the bus uid.
    pub fn set_primary(&self, uid: u32, id: &str, now: u64) -> Result<(), HerarxError> {
        const METHOD: &str = "primary";
        let ctx = self.account(uid, METHOD, now)?;
        if !valid_text(id, limits::ID_MAX) {
            self.refuse(&ctx, METHOD, now, "malformed factor id");
            return Err(no_such_factor());
        }
        let result = {
            let mut store = self.state.store();
            store.set_primary(&ctx, id, now)
        };
        let outcome = self.state.settle("choosing the primary factor", result)?;
        match outcome {
            FactorChange::Changed(_) => Ok(()),
            FactorChange::NoSuchFactor => Err(no_such_factor()),
        }
    }

    /// Renames one of the caller's factors. No step-up, for the same reason as the primary.
    pub fn rename_factor(
        &self,
        uid: u32,
        id: &str,
        name: &str,
        now: u64,
    ) -> Result<FactorInfo, HerarxError> {
        const METHOD: &str = "rename";
        let ctx = self.account(uid, METHOD, now)?;
        if !valid_text(id, limits::ID_MAX) {
            self.refuse(&ctx, METHOD, now, "malformed factor id");
            return Err(no_such_factor());
        }
        self.check_name(&ctx, METHOD, name, now)?;
        let result = {
            let mut store = self.state.store();
            store.rename_factor(&ctx, id, name, now)
        };
        let outcome = self.state.settle("renaming a factor", result)?;
        match outcome {
            FactorChange::Changed(info) => Ok(info),
            FactorChange::NoSuchFactor => Err(no_such_factor()),
        }
    }
}

#[cfg(test)]
#[path = "manage_tests.rs"]
mod tests;
