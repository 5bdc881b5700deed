//! Security-key enrolment: `Factors.AddSecurityKey`.
//!
//! Who talks to the device at enrolment: the daemon, not the CLI. Reasons:
//! - one contained code path (`fido2::CtapHid`: a worker per call, a deadline, `catch_unwind`)
//!   serves both enrolment and login, so the device library's weaknesses are handled once;
//! - users need no access to `/dev/hidraw*`: the systemd unit lets only the daemon open them,
//!   and nothing depends on udev `uaccess` rules or on which seat the user sits at;
//! - the challenge never leaves the daemon, and the registration it verifies is the one the
//!   key sent, not one a client could have made up elsewhere;
//! - the daemon can refuse callers outside a local session, and does (`crate::bus::local_session`):
//!   otherwise a user logged in over SSH could drive the console user's key.
//!
//! PINs: a PIN goes to one key only, never to one key after another: at a step-up, the key a
//! silent probe (no touch, no PIN) shows to hold one of the user's credentials; at enrolment,
//! the only plugged-in key not already the user's (several: the user unplugs the others). No
//! PIN goes to a key with 3 or fewer retries left, and each caller uid sends at most 3 PINs
//! per 10 minutes (`fido2::pin_attempts`), so no caller can walk a key to its block.
//!
//! The order of an enrolment:
//! 1. the caller's account (from the uid the bus reports), its local session, the name, the
//!    PIN's shape, the lockout, the factor count;
//! 2. when the user already has a factor (or unused backup codes), a step-up: either a code
//!    (TOTP or backup code; its presence is checked now, its value after the new key's
//!    registration verified, so that a missing PIN or an unplugged key does not burn a
//!    one-time code — nothing is stored before both pass), or, when no code is given and the
//!    user has a key, a touch of one of their registered keys, verified like a login
//!    (challenge, signature, counter compare-and-set);
//! 3. a Register challenge; without a PIN, `make_credential` on each plugged-in key in turn,
//!    with the user's credentials as exclude list (a key holding one answers "excluded" and
//!    the next key is tried); with a PIN, on the one key chosen as above; the daemon verifies
//!    the registration itself (`verify_registration`);
//! 4. the new factor is stored with its audit row.
//!
//! Every refusal is audited (method `fido2-enroll`) and becomes a `HerarxError` with a
//! sentence saying what to do.

mod enrol;
mod step_up;

use std::time::{Duration, Instant};

use herarx_proto::{FactorInfo, HerarxError, limits};
use sha2::{Digest, Sha256};

use crate::fido2::{
    Algorithm, ChallengeError, CredId, DeviceError, DeviceInfo, Purpose, RawRegistration, Uv,
    enrol_pin_target, pin_target, verify_registration,
};
use crate::login::locked_message;
use crate::selfservice::SelfService;
use crate::selfservice::refusals::{
    REMOVE_KEY_OR_ANY, step_up_refusal, step_up_too_long, too_many_factors,
};
use crate::store::factors::FACTORS_PER_USER_MAX;
use crate::store::fido2::{AddKeyOutcome, KeyAcceptance, StoredKey};
use crate::store::verify::VerifyOutcome;
use crate::store::{AuditCtx, Scope};

/// The audit method of enrolment decisions.
pub const METHOD: &str = "fido2-enroll";
/// The name a key gets when the caller gives none.
pub const DEFAULT_KEY_NAME: &str = "security key";
/// The sentence of the error that tells the CLI to ask for the key's PIN. `herarxctl` looks
/// for this prefix: keep the two in step.
pub const PIN_REQUIRED: &str = "This key needs its PIN: give it with --pin or when asked.";
/// CTAP2 PINs are 4 to 63 bytes of UTF-8.
const PIN_MIN: usize = 4;
const PIN_MAX: usize = 63;
/// The algorithms asked of a new key, in order of preference.
const ALGORITHMS: [Algorithm; 2] = [Algorithm::Es256, Algorithm::EdDsa];

/// What the user must do after a device error, as the error the caller sees.
pub fn device_refusal(e: &DeviceError, timeout: Duration) -> HerarxError {
    let secs = timeout.as_secs();
    match e {
        DeviceError::NotPresent => {
            HerarxError::Busy("No security key is plugged in: plug one in and try again.".into())
        }
        DeviceError::Timeout | DeviceError::Denied => HerarxError::Busy(format!(
            "The key was not touched within {secs} seconds: run the command again and touch \
             the key when it blinks."
        )),
        DeviceError::PinInvalid => HerarxError::WrongCode(
            "Wrong PIN for this security key: try again with the right one (a few more wrong \
             PINs block the key)."
                .into(),
        ),
        DeviceError::PinRequired => HerarxError::InvalidArgument(PIN_REQUIRED.into()),
        DeviceError::PinNotSet => HerarxError::InvalidArgument(
            "This key has no PIN, and policy here requires one (fido2.user_verification = \
             \"required\"): set a PIN with the key's own tool (e.g. `ykman fido access \
             change-pin`, `fido2-token -S`), then try again."
                .into(),
        ),
        DeviceError::PinBlocked => HerarxError::Locked(
            "This key's PIN is blocked after too many wrong PINs: unplug and replug it to try \
             again, or reset it with its own tool (which erases its credentials)."
                .into(),
        ),
        DeviceError::NoCredentials => HerarxError::InvalidArgument(
            "None of the plugged-in keys is registered for you: plug in one of your \
             registered keys, or give a code from another factor instead."
                .into(),
        ),
        DeviceError::CredentialExcluded => HerarxError::InvalidArgument(
            "This security key is registered already (`herarxctl key list`): plug in a \
             different key to add it."
                .into(),
        ),
        DeviceError::Unsupported(what) => HerarxError::InvalidArgument(format!(
            "This security key does not support {what}, which Herarx needs: use another key."
        )),
        DeviceError::Busy => HerarxError::Busy(
            "The security key is still busy with an earlier request: wait a few seconds (or \
             unplug and replug it) and try again."
                .into(),
        ),
        DeviceError::PinRetriesLow(n) => HerarxError::Locked(format!(
            "This security key has only {n} PIN retries left, so herarxd will not send it a \
             PIN (a few more wrong ones would block it for good): unlock it with the right PIN \
             in its vendor's tool (e.g. `ykman fido access verify-pin`, `fido2-token -I -v`), \
             which resets the count, then try again."
        )),
        DeviceError::SeveralKeys(n) => HerarxError::InvalidArgument(format!(
            "{n} security keys are plugged in that could be the one to add, and herarxd sends a \
             PIN to one key only: unplug all but the key you want to add, then try again."
        )),
        DeviceError::BackendPanicked | DeviceError::Other(_) => HerarxError::Internal(
            "Talking to the security key failed; the details are in herarxd's log. Unplug and \
             replug the key and try again."
                .into(),
        ),
    }
}

/// The audit reason of a device error (never a secret).
fn device_reason(e: &DeviceError) -> String {
    match e {
        DeviceError::NotPresent => "no security key plugged in".into(),
        DeviceError::Timeout => "the key was not touched in time".into(),
        other => other.to_string(),
    }
}

/// The user handle a key stores with the credential: a hash, so that the account name is not
/// written to the key (CTAP allows 64 bytes; names may be longer).
fn user_handle(user: &str) -> [u8; 32] {
    Sha256::digest(format!("herarx user {user}").as_bytes()).into()
}

fn cred_ids(keys: &[StoredKey]) -> Vec<CredId> {
    keys.iter()
        .map(|k| CredId(k.credential.credential_id.clone()))
        .collect()
}

/// The user's state read at the start of an enrolment.
struct Before {
    rp_id: String,
    factors: usize,
    keys: Vec<StoredKey>,
    backup_codes_left: u32,
    locked_until: Option<u64>,
}

/// What one enrolment needs to know of the policy.
#[derive(Clone, Copy)]
struct Policy {
    /// The audit method of the change this serves (`fido2-enroll`, `remove`).
    method: &'static str,
    uv: Uv,
    uv_required: bool,
    timeout: Duration,
}

impl SelfService {
    fn before(&self, ctx: &AuditCtx, configured: &str, now: u64) -> Result<Before, HerarxError> {
        let mut store = self.state.store();
        let read = (|| {
            let rp_id = store.fido2_rp_id(configured, &self.state.hostname)?;
            let factors = store.factor_infos(&ctx.user)?.len();
            let keys = store.fido2_keys(&ctx.user)?;
            let (backup_codes_left, _) = store.self_status_extras(&ctx.user, now)?;
            let locked_until = store
                .failures(&ctx.user, &Scope::Local, now)?
                .locked_at(now);
            Ok(Before {
                rp_id,
                factors,
                keys,
                backup_codes_left,
                locked_until,
            })
        })();
        read.map_err(|e| self.state.internal("reading the user's keys", &e))
    }

    /// A device error: audited, and the sentence for the caller.
    fn device_failed(
        &self,
        ctx: &AuditCtx,
        what: &str,
        e: &DeviceError,
        policy: Policy,
        now: u64,
    ) -> HerarxError {
        if matches!(e, DeviceError::BackendPanicked | DeviceError::Other(_)) {
            self.state.log.log(
                crate::logger::Severity::Error,
                &format!("security key {what} for {}: {e}", ctx.user),
            );
        }
        self.refuse(
            ctx,
            policy.method,
            now,
            &format!("{what}: {}", device_reason(e)),
        );
        device_refusal(e, policy.timeout)
    }

    /// One of the caller's PIN attempts (`fido2::pin_attempts`), taken just before a PIN
    /// goes to a key; refused (and audited) when the caller has used them up.
    fn take_pin_attempt(
        &self,
        ctx: &AuditCtx,
        policy: Policy,
        now: u64,
    ) -> Result<(), HerarxError> {
        use crate::fido2::pin_attempts::{ATTEMPTS_MAX, WINDOW_SECONDS};
        self.pin_attempts.take(ctx.caller_uid, now).map_err(|wait| {
            self.refuse(ctx, policy.method, now, "too many security key PINs");
            HerarxError::Locked(format!(
                "You gave {ATTEMPTS_MAX} security key PINs within {} minutes, the most herarxd \
                 sends to a key (a key blocks itself for good after a few more wrong PINs): \
                 try again in {} minutes, with the right PIN.",
                WINDOW_SECONDS / 60,
                wait.div_ceil(60)
            ))
        })
    }

    fn challenge(
        &self,
        ctx: &AuditCtx,
        purpose: Purpose,
        policy: Policy,
        now: u64,
    ) -> Result<[u8; 32], HerarxError> {
        // A little longer than the device deadline: the answer still has to come back.
        let ttl = policy.timeout + Duration::from_secs(5);
        self.state
            .challenges
            .issue(&ctx.user, purpose, Instant::now(), ttl)
            .map_err(|e| self.no_challenge(ctx, &e, policy, now))
    }

    /// No challenge could be issued: audited, and the sentence for the caller.
    fn no_challenge(
        &self,
        ctx: &AuditCtx,
        e: &ChallengeError,
        policy: Policy,
        now: u64,
    ) -> HerarxError {
        self.refuse(ctx, policy.method, now, &format!("no challenge: {e}"));
        HerarxError::Busy(
            "herarxd has too many security-key requests under way: try again in a minute.".into(),
        )
    }

    fn take(
        &self,
        ctx: &AuditCtx,
        challenge: &[u8; 32],
        purpose: Purpose,
        policy: Policy,
        now: u64,
    ) -> Result<(), HerarxError> {
        self.state
            .challenges
            .take(challenge, &ctx.user, purpose, Instant::now())
            .map_err(|e| self.stale_challenge(ctx, &e, policy, now))
    }

    /// An answer whose challenge was no longer valid (expired, used, another user's):
    /// audited, and the sentence for the caller.
    fn stale_challenge(
        &self,
        ctx: &AuditCtx,
        e: &ChallengeError,
        policy: Policy,
        now: u64,
    ) -> HerarxError {
        self.refuse(ctx, policy.method, now, &format!("challenge refused: {e}"));
        device_refusal(&DeviceError::Timeout, policy.timeout)
    }
}

#[cfg(test)]
mod tests;
