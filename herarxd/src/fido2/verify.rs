//! The daemon's own verification of FIDO2 registrations and assertions. Nothing a device (or a
//! device backend) says is trusted: only the raw authenticator data and signature are used.
//!
//! The client data hash is SHA-256(challenge): that is what ctap-hid-fido2 sends to the key as
//! `clientDataHash` (there is no browser, hence no JSON client data), so the key signs
//! `authData ‖ SHA-256(challenge)`.

use std::fmt;

use sha2::{Digest, Sha256};

use super::authdata::{self, AuthDataError};
use super::cose::{Algorithm, CoseKeyError, PublicKey};
use super::device::RawRegistration;

/// A registered credential as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    pub credential_id: Vec<u8>,
    /// The COSE_Key bytes as received at registration (re-validated on every use).
    pub cose_key: Vec<u8>,
    /// The last signature counter seen.
    pub counter: u32,
}

/// A successful assertion: the counter the caller must store (atomically, before reporting
/// success) and whether the user was verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewCounter {
    pub counter: u32,
    pub user_verified: bool,
}

/// A verified registration, ready to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCredential {
    pub credential_id: Vec<u8>,
    pub cose_key: Vec<u8>,
    pub algorithm: Algorithm,
    pub aaguid: [u8; 16],
    pub counter: u32,
    pub user_verified: bool,
    /// The attestation format the key used ("none" or "packed").
    pub attestation_format: String,
}

/// Why an assertion is refused. [`AssertionError::audit_reason`] gives a stable short reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AssertionError {
    /// The authenticator data is malformed.
    AuthData(AuthDataError),
    /// rpIdHash is not SHA-256 of our rpId.
    RpIdMismatch,
    /// UP flag clear: nobody touched the key.
    UserNotPresent,
    /// UV required by policy but the UV flag is clear.
    UserNotVerified,
    /// An assertion must not carry attested credential data.
    UnexpectedAttestedCredential,
    /// The credential id is not one of this user's credentials.
    UnknownCredential,
    /// The stored key does not load (store corruption or tampering).
    StoredKey(CoseKeyError),
    /// The signature does not verify over authData ‖ SHA-256(challenge).
    BadSignature,
    /// The counter did not increase: possible cloned key.
    CounterRegression { stored: u32, received: u32 },
}

impl AssertionError {
    /// A short stable reason for the audit log.
    pub fn audit_reason(&self) -> &'static str {
        match self {
            Self::AuthData(_) => "fido2-malformed-authdata",
            Self::RpIdMismatch => "fido2-rpid-mismatch",
            Self::UserNotPresent => "fido2-user-not-present",
            Self::UserNotVerified => "fido2-user-not-verified",
            Self::UnexpectedAttestedCredential => "fido2-unexpected-attested-data",
            Self::UnknownCredential => "fido2-unknown-credential",
            Self::StoredKey(_) => "fido2-stored-key-invalid",
            Self::BadSignature => "fido2-bad-signature",
            Self::CounterRegression { .. } => "fido2-counter-regression-possible-clone",
        }
    }
}

impl fmt::Display for AssertionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AuthData(e) => write!(f, "malformed authenticator data: {e}"),
            Self::RpIdMismatch => f.write_str("assertion is for another relying party"),
            Self::UserNotPresent => f.write_str("user presence flag not set"),
            Self::UserNotVerified => f.write_str("user verification required but not performed"),
            Self::UnexpectedAttestedCredential => {
                f.write_str("assertion carries attested credential data")
            }
            Self::UnknownCredential => f.write_str("credential is not registered for this user"),
            Self::StoredKey(e) => write!(f, "stored credential key is invalid: {e}"),
            Self::BadSignature => f.write_str("assertion signature does not verify"),
            Self::CounterRegression { stored, received } => write!(
                f,
                "signature counter went from {stored} to {received}: possible cloned key"
            ),
        }
    }
}

impl std::error::Error for AssertionError {}

/// Why a registration is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistrationError {
    AuthData(AuthDataError),
    RpIdMismatch,
    UserNotPresent,
    UserNotVerified,
    /// No attested credential data (AT flag clear).
    MissingAttestedCredential,
    /// The credential key is not one Herarx accepts.
    Key(CoseKeyError),
    /// An attestation format other than "none" and "packed".
    UnsupportedAttestation(String),
    /// "none" with a statement, or "packed" self attestation with the wrong alg.
    MalformedAttestation(&'static str),
    /// Packed self attestation whose signature does not verify.
    BadAttestationSignature,
}

impl RegistrationError {
    /// A short stable reason for the audit log.
    pub fn audit_reason(&self) -> &'static str {
        match self {
            Self::AuthData(_) => "fido2-malformed-authdata",
            Self::RpIdMismatch => "fido2-rpid-mismatch",
            Self::UserNotPresent => "fido2-user-not-present",
            Self::UserNotVerified => "fido2-user-not-verified",
            Self::MissingAttestedCredential => "fido2-no-attested-credential",
            Self::Key(_) => "fido2-unsupported-key",
            Self::UnsupportedAttestation(_) => "fido2-unsupported-attestation",
            Self::MalformedAttestation(_) => "fido2-malformed-attestation",
            Self::BadAttestationSignature => "fido2-bad-attestation-signature",
        }
    }
}

impl fmt::Display for RegistrationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AuthData(e) => write!(f, "malformed authenticator data: {e}"),
            Self::RpIdMismatch => f.write_str("registration is for another relying party"),
            Self::UserNotPresent => f.write_str("user presence flag not set"),
            Self::UserNotVerified => f.write_str("user verification required but not performed"),
            Self::MissingAttestedCredential => f.write_str("no attested credential data"),
            Self::Key(e) => write!(f, "credential key refused: {e}"),
            Self::UnsupportedAttestation(fmt) => {
                write!(f, "unsupported attestation format {fmt:?}")
            }
            Self::MalformedAttestation(what) => write!(f, "malformed attestation: {what}"),
            Self::BadAttestationSignature => f.write_str("attestation signature does not verify"),
        }
    }
}

impl std::error::Error for RegistrationError {}

/// SHA-256 of the relying party id, as in authenticator data.
pub fn rp_id_hash(rp_id: &str) -> [u8; 32] {
    Sha256::digest(rp_id.as_bytes()).into()
}

/// The message a key signs: authData ‖ SHA-256(challenge).
pub fn signed_message(auth_data: &[u8], challenge: &[u8; 32]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(auth_data.len() + 32);
    msg.extend_from_slice(auth_data);
    msg.extend_from_slice(&Sha256::digest(challenge));
    msg
}

/// Verifies an assertion made with `stored`. On success the caller stores
/// `NewCounter::counter` atomically before reporting success; the challenge must have been
/// consumed (`Challenges::take`) before calling this.
pub fn verify_assertion(
    stored: &Credential,
    rp_id: &str,
    challenge: &[u8; 32],
    auth_data: &[u8],
    signature: &[u8],
    require_uv: bool,
) -> Result<NewCounter, AssertionError> {
    let parsed = authdata::parse(auth_data).map_err(AssertionError::AuthData)?;
    if parsed.rp_id_hash != rp_id_hash(rp_id) {
        return Err(AssertionError::RpIdMismatch);
    }
    if parsed.attested.is_some() {
        return Err(AssertionError::UnexpectedAttestedCredential);
    }
    if !parsed.flags.user_present() {
        return Err(AssertionError::UserNotPresent);
    }
    if require_uv && !parsed.flags.user_verified() {
        return Err(AssertionError::UserNotVerified);
    }
    let key = PublicKey::from_cose(&stored.cose_key).map_err(AssertionError::StoredKey)?;
    key.verify(&signed_message(auth_data, challenge), signature)
        .map_err(|_| AssertionError::BadSignature)?;
    // Only a signed counter is meaningful, so this comes after the signature check.
    let received = parsed.sign_count;
    let both_zero = stored.counter == 0 && received == 0;
    if !both_zero && received <= stored.counter {
        return Err(AssertionError::CounterRegression {
            stored: stored.counter,
            received,
        });
    }
    Ok(NewCounter {
        counter: received,
        user_verified: parsed.flags.user_verified(),
    })
}

/// Finds `credential_id` among the user's credentials and verifies the assertion with it.
/// Returns the index of the credential in `creds` with the new counter.
pub fn verify_assertion_for_user(
    creds: &[Credential],
    credential_id: &[u8],
    rp_id: &str,
    challenge: &[u8; 32],
    auth_data: &[u8],
    signature: &[u8],
    require_uv: bool,
) -> Result<(usize, NewCounter), AssertionError> {
    let index = creds
        .iter()
        .position(|c| c.credential_id == credential_id)
        .ok_or(AssertionError::UnknownCredential)?;
    let stored = creds.get(index).ok_or(AssertionError::UnknownCredential)?;
    verify_assertion(stored, rp_id, challenge, auth_data, signature, require_uv)
        .map(|counter| (index, counter))
}

/// Verifies a registration (makeCredential response) for `rp_id` and `challenge`.
///
/// Attestation: Herarx accepts "none" and "packed". Packed *self* attestation (no x5c) is
/// verified with the new credential key, which binds the response to our challenge. Packed
/// attestation with a certificate chain is accepted WITHOUT checking the chain or its
/// signature: Herarx does not restrict authenticator models (no allow list of AAGUIDs or
/// vendors), so an attestation certificate would add nothing to the decision; what makes the
/// enrolment trustworthy is that the user proves presence at this machine, within a session
/// the daemon authenticated, with a challenge the daemon issued. Other formats (tpm,
/// android-key, apple, fido-u2f) belong to platform or U2F-only authenticators that cannot be
/// used here, and are refused.
pub fn verify_registration(
    rp_id: &str,
    challenge: &[u8; 32],
    reg: &RawRegistration,
    require_uv: bool,
) -> Result<NewCredential, RegistrationError> {
    let parsed = authdata::parse(&reg.auth_data).map_err(RegistrationError::AuthData)?;
    if parsed.rp_id_hash != rp_id_hash(rp_id) {
        return Err(RegistrationError::RpIdMismatch);
    }
    if !parsed.flags.user_present() {
        return Err(RegistrationError::UserNotPresent);
    }
    if require_uv && !parsed.flags.user_verified() {
        return Err(RegistrationError::UserNotVerified);
    }
    let attested = parsed
        .attested
        .as_ref()
        .ok_or(RegistrationError::MissingAttestedCredential)?;
    let key = PublicKey::from_cose(attested.public_key).map_err(RegistrationError::Key)?;
    match reg.fmt.as_str() {
        "none" => {
            if !reg.att_sig.is_empty() || !reg.att_x5c.is_empty() {
                return Err(RegistrationError::MalformedAttestation(
                    "\"none\" with a statement",
                ));
            }
        }
        "packed" => {
            if reg.att_sig.is_empty() {
                return Err(RegistrationError::MalformedAttestation(
                    "packed without sig",
                ));
            }
            if reg.att_x5c.is_empty() {
                // Self attestation: alg must be the credential's, signed by the credential key.
                if reg.att_alg != Some(key.algorithm().cose_id())
                    && !(key.algorithm() == Algorithm::EdDsa && reg.att_alg == Some(-19))
                {
                    return Err(RegistrationError::MalformedAttestation(
                        "self attestation alg differs from the credential's",
                    ));
                }
                key.verify(&signed_message(&reg.auth_data, challenge), &reg.att_sig)
                    .map_err(|_| RegistrationError::BadAttestationSignature)?;
            }
            // With x5c: not checked, see above.
        }
        other => return Err(RegistrationError::UnsupportedAttestation(other.to_owned())),
    }
    Ok(NewCredential {
        credential_id: attested.credential_id.to_vec(),
        cose_key: attested.public_key.to_vec(),
        algorithm: key.algorithm(),
        aaguid: attested.aaguid,
        counter: parsed.sign_count,
        user_verified: parsed.flags.user_verified(),
        attestation_format: reg.fmt.clone(),
    })
}
