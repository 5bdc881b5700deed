//! Adding a security key: the checks, the step-up, the registration and storing it (the
//! order is in the comment of `selfservice::keys`).

use super::*;

impl SelfService {
    /// Registers a security key plugged into this machine for the caller. See the module
    /// comment for the order of the steps. Blocks up to the touch timeout twice (step-up
    /// touch, then the new key): run it on the blocking pool.
    ///
    /// `local` is the verdict of `crate::bus::local_session` on the caller (found by the D-Bus
    /// layer from the bus's pid of the caller): a refusal there ends the call before any key
    /// is asked anything.
    pub fn add_security_key(
        &self,
        uid: u32,
        local: Result<(), HerarxError>,
        name: &str,
        step_up: &str,
        pin: &str,
        now: u64,
    ) -> Result<FactorInfo, HerarxError> {
        let ctx = self.account(uid, METHOD, now)?;
        if let Err(e) = local {
            self.refuse(&ctx, METHOD, now, "not in a local session");
            return Err(e);
        }
        let name = if name.is_empty() {
            DEFAULT_KEY_NAME
        } else {
            name
        };
        self.check_name(&ctx, METHOD, name, now)?;
        if step_up.len() > limits::ANSWER_MAX {
            self.refuse(&ctx, METHOD, now, "step-up code too long");
            return Err(step_up_too_long());
        }
        if !pin.is_empty()
            && (pin.len() < PIN_MIN || pin.len() > PIN_MAX || pin.chars().any(char::is_control))
        {
            self.refuse(&ctx, METHOD, now, "malformed PIN");
            return Err(HerarxError::InvalidArgument(format!(
                "A security key PIN is {PIN_MIN} to {PIN_MAX} characters without control \
                 characters: give the key's PIN."
            )));
        }
        let pin = (!pin.is_empty()).then_some(pin);
        let step_up = step_up.trim();
        let config = self.state.config();
        let uv_required = config.fido2_uv_required();
        let policy = Policy {
            method: METHOD,
            uv: if uv_required {
                Uv::Required
            } else {
                Uv::Discouraged
            },
            uv_required,
            timeout: Duration::from_secs(config.fido2.touch_timeout_seconds),
        };

        let before = self.before(&ctx, &config.fido2.rp_id, now)?;
        if let Some(until) = before.locked_until {
            self.refuse(&ctx, METHOD, now, "locked");
            return Err(HerarxError::Locked(locked_message(until, now)));
        }
        if before.factors >= FACTORS_PER_USER_MAX {
            self.refuse(&ctx, METHOD, now, "too many factors");
            return Err(too_many_factors(REMOVE_KEY_OR_ANY));
        }
        let needs_step_up = before.factors > 0 || before.backup_codes_left > 0;
        if needs_step_up && step_up.is_empty() {
            if before.keys.is_empty() {
                self.refuse(&ctx, METHOD, now, "step-up code required");
                return Err(HerarxError::StepUpRequired(
                    "You already have a factor: give a current code from it, or a backup code \
                     (step-up)."
                        .into(),
                ));
            }
            self.touch_step_up(&ctx, &before, policy, pin, now)?;
        }

        let new = self.register(&ctx, &before, policy, pin, now)?;

        if needs_step_up && !step_up.is_empty() {
            let result = self
                .state
                .store()
                .fido2_step_up_code(&ctx, METHOD, step_up, now);
            let outcome = self.state.settle("checking a step-up code", result)?;
            if !matches!(outcome, VerifyOutcome::Accepted { .. }) {
                return Err(step_up_refusal(&outcome, now));
            }
        }

        let result = self
            .state
            .store()
            .add_fido2_key(&ctx, name, &new, needs_step_up, now);
        let outcome = self.state.settle("storing a key", result)?;
        match outcome {
            AddKeyOutcome::Added(info) => {
                self.alert_method_change(&ctx, &info, true, now);
                Ok(info)
            }
            AddKeyOutcome::AlreadyRegistered => Err(device_refusal(
                &DeviceError::CredentialExcluded,
                policy.timeout,
            )),
            AddKeyOutcome::TooManyFactors => Err(too_many_factors(REMOVE_KEY_OR_ANY)),
            AddKeyOutcome::StepUpRequired => Err(HerarxError::StepUpRequired(
                "A factor was added to your account while the key was being registered: run \
                 `herarxctl key add` again, with a step-up."
                    .into(),
            )),
        }
    }

    /// Registers the first plugged-in key that is not one of the user's, and verifies it.
    fn register(
        &self,
        ctx: &AuditCtx,
        before: &Before,
        policy: Policy,
        pin: Option<&str>,
        now: u64,
    ) -> Result<crate::fido2::NewCredential, HerarxError> {
        const WHAT: &str = "registration";
        let mut devices = self.state.keys.list();
        if pin.is_some() {
            let deadline = Instant::now() + policy.timeout;
            let dev = enrol_pin_target(
                self.state.keys.as_ref(),
                &devices,
                &before.rp_id,
                &cred_ids(&before.keys),
                deadline,
            )
            .map_err(|e| self.device_failed(ctx, WHAT, &e, policy, now))?;
            self.take_pin_attempt(ctx, policy, now)?;
            devices = vec![dev];
        }
        let challenge = self.challenge(ctx, Purpose::Register, policy, now)?;
        let raw = self
            .make_credential_any(&devices, before, &challenge, &ctx.user, policy, pin)
            .map_err(|e| {
                // With UV required and no PIN, a key without built-in UV asks for its PIN.
                let e = match e {
                    DeviceError::Unsupported(_) if policy.uv_required && pin.is_none() => {
                        DeviceError::PinRequired
                    }
                    e => e,
                };
                self.device_failed(ctx, WHAT, &e, policy, now)
            })?;
        self.take(ctx, &challenge, Purpose::Register, policy, now)?;
        verify_registration(&before.rp_id, &challenge, &raw, policy.uv_required).map_err(|e| {
            self.refuse(
                ctx,
                policy.method,
                now,
                &format!("registration refused: {}", e.audit_reason()),
            );
            HerarxError::InvalidArgument(format!(
                "The key's registration did not verify ({}): try again, or use another key.",
                e.audit_reason()
            ))
        })
    }

    /// `make_credential` on each device in turn: a device that holds one of the user's
    /// credentials (excluded) or went away is skipped; any other error ends the attempt. All
    /// of them within one touch timeout from now.
    fn make_credential_any(
        &self,
        devices: &[DeviceInfo],
        before: &Before,
        challenge: &[u8; 32],
        user: &str,
        policy: Policy,
        pin: Option<&str>,
    ) -> Result<RawRegistration, DeviceError> {
        let deadline = Instant::now() + policy.timeout;
        let exclude = cred_ids(&before.keys);
        let handle = user_handle(user);
        let mut last = DeviceError::NotPresent;
        for dev in devices {
            match self.state.keys.make_credential(
                dev,
                &before.rp_id,
                challenge,
                &handle,
                &exclude,
                &ALGORITHMS,
                policy.uv,
                pin,
                deadline,
            ) {
                Ok(raw) => return Ok(raw),
                Err(e @ (DeviceError::CredentialExcluded | DeviceError::NotPresent)) => {
                    if last != DeviceError::CredentialExcluded {
                        last = e;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }
}
