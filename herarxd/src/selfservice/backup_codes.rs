//! Backup codes: a new set, returned once.

use herarx_proto::{HerarxError, limits};

use crate::selfservice::SelfService;
use crate::selfservice::refusals::{step_up_refusal, step_up_too_long};
use crate::store::enrollments::BackupCodesOutcome;

impl SelfService {
    /// A new set of backup codes (the old set stops working), returned once. Needs a step-up
    /// once the caller has a factor or an unused backup code.
    pub fn generate_backup_codes(
        &self,
        uid: u32,
        step_up_code: &str,
        now: u64,
    ) -> Result<Vec<String>, HerarxError> {
        const METHOD: &str = "backup-codes";
        let ctx = self.account(uid, METHOD, now)?;
        if step_up_code.len() > limits::ANSWER_MAX {
            self.refuse(&ctx, METHOD, now, "step-up code too long");
            return Err(step_up_too_long());
        }
        let result = {
            let mut store = self.state.store();
            store.generate_backup_codes(&ctx, step_up_code, now)
        };
        // The entry names how many codes, never one of them.
        let outcome = self.state.settle("generating backup codes", result)?;
        match outcome {
            BackupCodesOutcome::Generated(codes) => {
                Ok(codes.iter().map(|c| c.as_str().to_owned()).collect())
            }
            BackupCodesOutcome::StepUpRequired => Err(HerarxError::StepUpRequired(
                "New backup codes need a current code from one of your factors, or one of your \
                 backup codes (step-up)."
                    .into(),
            )),
            BackupCodesOutcome::StepUpFailed(o) => Err(step_up_refusal(&o, now)),
        }
    }
}

#[cfg(test)]
#[path = "backup_codes_tests.rs"]
mod tests;
