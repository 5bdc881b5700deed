//! The touch of a registered security key, shared by a login (`login::keys`) and a
//! self-service step-up (`selfservice::keys`): a fresh single-use challenge, an assertion from
//! the keys asked, verified here (rpIdHash, flags, allow list, signature, counter) before
//! anything is believed, then the counter's compare-and-set in the store (or the failure
//! counted towards the lockout) with its audit row.
//!
//! Two steps, because the callers differ in between: [`ask`] talks to the keys and [`settle`]
//! verifies and records. A login counts an answer whose challenge is no longer valid as a
//! refused key (`settle` does that); a step-up refuses it on its own terms before settling.
//! What each caller then says, and which rows it adds (a login's `Denied` notes, a step-up's
//! `Refused` rows under its own audit method), stays with the caller.

use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use crate::fido2::{
    AssertionError, Authenticator, Challenge, ChallengeError, Challenges, CredId, Credential,
    DeviceError, DeviceInfo, Purpose, RawAssertion, Uv, get_assertion_any,
    verify_assertion_for_user,
};
use crate::logger::LogSink;
use crate::store::fido2::{KeyAcceptance, StoredKey};
use crate::store::{AuditCtx, AuditEntry, FactorStore, Scope, StoreError};

/// What a touch needs to know, the same for both of its steps.
pub struct TouchRequest<'a> {
    pub keys: &'a dyn Authenticator,
    pub challenges: &'a Challenges,
    /// The keys to ask: every plugged-in one, or the one chosen to receive the PIN.
    pub devices: &'a [DeviceInfo],
    /// The user's registered keys (the allow list, and what the assertion is verified with).
    pub stored: &'a [StoredKey],
    pub rp_id: &'a str,
    /// Policy asks the key to verify its user (PIN or built-in UV), and the flag must say so.
    pub uv_required: bool,
    pub pin: Option<&'a str>,
    /// How long the key may blink; the challenge lives 5 seconds longer, for the answer to
    /// come back.
    pub timeout: Duration,
    /// The lockout scope the verdict counts in (a login's; a step-up's is local).
    pub scope: &'a Scope,
    /// Where the verdict's audit row is logged.
    pub log: &'a dyn LogSink,
}

/// The keys' answer to a challenge, not yet verified.
pub struct Answer {
    challenge: Challenge,
    assertion: RawAssertion,
    /// Whether the challenge was still valid (unused, this user's, not expired) when the
    /// answer came back. It is used up either way.
    pub fresh: Result<(), ChallengeError>,
}

/// Why no answer came.
pub enum NoAnswer {
    /// No challenge could be issued (too many security-key requests under way).
    NoChallenge(ChallengeError),
    /// The keys gave no assertion (none plugged, not touched, none registered, PIN, …).
    Device(DeviceError),
}

/// The verdict on an answer, already recorded in the store (and logged).
pub enum Settled {
    /// Verified; the store's verdict on the counter (`CounterNotAbove`: a cloned key, or a
    /// later assertion used first; `Locked`: locked meanwhile, nothing changed).
    Verified {
        acceptance: KeyAcceptance,
        entry: AuditEntry,
    },
    /// Did not verify: a failure counted, and the lockout it caused, if any.
    Refused {
        error: AssertionError,
        locked: Option<u64>,
        entry: AuditEntry,
    },
}

/// The store refused to record the verdict.
pub enum SettleError {
    /// While moving the counter forward.
    Accepting(StoreError),
    /// While counting the failure.
    Rejecting(StoreError),
}

fn uv(required: bool) -> Uv {
    if required {
        Uv::Required
    } else {
        Uv::Discouraged
    }
}

/// Asks `req.devices` for an assertion over a fresh challenge for `user`. The challenge is
/// single use whatever the keys said.
pub fn ask(req: &TouchRequest, user: &str) -> Result<Answer, NoAnswer> {
    let started = Instant::now();
    let challenge = req
        .challenges
        .issue(
            user,
            Purpose::Login,
            started,
            req.timeout + Duration::from_secs(5),
        )
        .map_err(NoAnswer::NoChallenge)?;
    let allow: Vec<CredId> = req
        .stored
        .iter()
        .map(|k| CredId(k.credential.credential_id.clone()))
        .collect();
    let asked = get_assertion_any(
        req.keys,
        req.devices,
        req.rp_id,
        &challenge,
        &allow,
        uv(req.uv_required),
        req.pin,
        started + req.timeout,
    );
    let fresh = req
        .challenges
        .take(&challenge, user, Purpose::Login, Instant::now());
    let (_, assertion) = asked.map_err(NoAnswer::Device)?;
    Ok(Answer {
        challenge,
        assertion,
        fresh,
    })
}

/// Verifies `answer` against the user's keys and records the verdict under `req.scope`: the
/// counter's compare-and-set, or a failure whose audit reason is `refused_prefix` followed by
/// why. An answer to a challenge that was no longer valid is refused as an unknown credential.
/// The row is logged here; `store` locks the store (for each of the two writes at most one).
pub fn settle<'s>(
    req: &TouchRequest,
    answer: &Answer,
    store: &dyn Fn() -> MutexGuard<'s, Box<dyn FactorStore>>,
    ctx: &AuditCtx,
    refused_prefix: &str,
    now: u64,
) -> Result<Settled, SettleError> {
    let creds: Vec<Credential> = req.stored.iter().map(|k| k.credential.clone()).collect();
    let a = &answer.assertion;
    let verified = answer
        .fresh
        .clone()
        .map_err(|_| AssertionError::UnknownCredential)
        .and_then(|()| {
            verify_assertion_for_user(
                &creds,
                &a.credential_id,
                req.rp_id,
                &answer.challenge,
                &a.auth_data,
                &a.signature,
                req.uv_required,
            )
        });
    match verified {
        Ok((index, counter)) => {
            let factor_id = req
                .stored
                .get(index)
                .map(|k| k.factor_id.clone())
                .unwrap_or_default();
            let (acceptance, entry) = store()
                .fido2_accept(ctx, req.scope, &factor_id, counter.counter, now)
                .map_err(SettleError::Accepting)?;
            req.log.audit(&entry);
            Ok(Settled::Verified { acceptance, entry })
        }
        Err(error) => {
            let reason = format!("{refused_prefix}{}", error.audit_reason());
            let (locked, entry) = store()
                .fido2_reject(ctx, req.scope, &reason, now)
                .map_err(SettleError::Rejecting)?;
            req.log.audit(&entry);
            Ok(Settled::Refused {
                error,
                locked,
                entry,
            })
        }
    }
}
