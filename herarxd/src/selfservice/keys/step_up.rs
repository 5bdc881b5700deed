//! A step-up by a touch of one of the caller's registered keys (`factors::touch`): before a
//! key is added, and before a factor is removed by a user who gives no code.

use super::*;

impl SelfService {
    /// A step-up by a touch of one of the caller's keys, for changes other than enrolment
    /// (removing a factor when the user has only keys). `Ok(false)` when the user has no key:
    /// the caller then asks for a code as usual. No PIN is taken here: with
    /// `user_verification = "required"`, such a user steps up with a code or a backup code.
    pub(crate) fn step_up_by_touch(
        &self,
        ctx: &AuditCtx,
        local: Result<(), HerarxError>,
        now: u64,
    ) -> Result<bool, HerarxError> {
        let config = self.state.config();
        let before = self.before(ctx, &config.fido2.rp_id, now)?;
        if before.keys.is_empty() {
            return Ok(false);
        }
        // A touch keeps the keys busy for the touch timeout: not for callers outside a local
        // login (over SSH it would hold the console user's key).
        if let Err(e) = local {
            self.refuse(ctx, "remove", now, "not in a local session");
            return Err(e);
        }
        if let Some(until) = before.locked_until {
            return Err(HerarxError::Locked(locked_message(until, now)));
        }
        let policy = Policy {
            method: "remove",
            uv: Uv::Discouraged,
            uv_required: false,
            timeout: Duration::from_secs(config.fido2.touch_timeout_seconds),
        };
        self.touch_step_up(ctx, &before, policy, None, now)?;
        Ok(true)
    }

    /// Step-up by a touch of one of the user's registered keys, verified like a login
    /// (`factors::touch`), the failures counted in the local scope.
    pub(super) fn touch_step_up(
        &self,
        ctx: &AuditCtx,
        before: &Before,
        policy: Policy,
        pin: Option<&str>,
        now: u64,
    ) -> Result<(), HerarxError> {
        use crate::factors::touch::{self, NoAnswer, SettleError, Settled, TouchRequest};
        const WHAT: &str = "step-up touch";
        let devices = self.state.keys.list();
        if devices.is_empty() {
            self.refuse(
                ctx,
                policy.method,
                now,
                "step-up touch: no security key plugged in",
            );
            return Err(HerarxError::Busy(
                "No security key is plugged in: plug in one of your registered keys (to \
                 confirm it is you) and try again, or give a code from another factor."
                    .into(),
            ));
        }
        let devices = match pin {
            None => devices,
            Some(_) => {
                let deadline = Instant::now() + policy.timeout;
                let dev = pin_target(
                    self.state.keys.as_ref(),
                    &devices,
                    &before.rp_id,
                    &cred_ids(&before.keys),
                    deadline,
                )
                .map_err(|e| self.device_failed(ctx, WHAT, &e, policy, now))?;
                self.take_pin_attempt(ctx, policy, now)?;
                vec![dev]
            }
        };
        let request = TouchRequest {
            keys: self.state.keys.as_ref(),
            challenges: &self.state.challenges,
            devices: &devices,
            stored: &before.keys,
            rp_id: &before.rp_id,
            uv_required: policy.uv_required,
            pin,
            timeout: policy.timeout,
            scope: &Scope::Local,
            log: self.state.log.as_ref(),
        };
        let answer = touch::ask(&request, &ctx.user).map_err(|e| match e {
            NoAnswer::NoChallenge(e) => self.no_challenge(ctx, &e, policy, now),
            NoAnswer::Device(e) => self.device_failed(ctx, WHAT, &e, policy, now),
        })?;
        // A late answer is refused here, as at a registration, not counted as a wrong key.
        if let Err(e) = &answer.fresh {
            return Err(self.stale_challenge(ctx, e, policy, now));
        }
        let settled = touch::settle(
            &request,
            &answer,
            &|| self.state.store(),
            ctx,
            "step-up touch refused: ",
            now,
        )
        .map_err(|e| match e {
            SettleError::Accepting(e) => self.state.internal("recording a key's use", &e),
            SettleError::Rejecting(e) => self.state.internal("recording a failure", &e),
        })?;
        match settled {
            Settled::Refused {
                locked: Some(until),
                ..
            }
            | Settled::Verified {
                acceptance: KeyAcceptance::Locked { until },
                ..
            } => Err(HerarxError::Locked(locked_message(until, now))),
            Settled::Refused { locked: None, .. } => Err(HerarxError::WrongCode(
                "The key you touched did not prove it is one of yours: touch one of your \
                 registered keys, or give a code from another factor."
                    .into(),
            )),
            Settled::Verified {
                acceptance: KeyAcceptance::CounterNotAbove,
                ..
            } => Err(HerarxError::WrongCode(
                "That key's signature counter went backwards, which a cloned key would do; it \
                 was refused and the attempt logged. Use another factor, and tell your \
                 administrator."
                    .into(),
            )),
            Settled::Verified {
                acceptance: KeyAcceptance::Accepted,
                ..
            } => Ok(()),
        }
    }
}
