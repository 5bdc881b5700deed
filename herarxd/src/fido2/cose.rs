//! Credential public keys: a COSE_Key (RFC 9052 §7, RFC 9053) to a verifying key.
//!
//! Herarx accepts exactly two kinds, the ones FIDO2 keys produce:
//! - ES256: kty EC2 (2), crv P-256 (1), alg -7, x and y 32 bytes each, the point on the curve;
//!   signatures are ASN.1 DER (WebAuthn §6.5.5), as CTAP returns them.
//! - EdDSA: kty OKP (1), crv Ed25519 (6), alg -8 (or the fully specified Ed25519, -19),
//!   x 32 bytes, a valid point that is not of small order; signatures are 64 raw bytes,
//!   checked with `verify_strict`.
//!
//! Everything else (RS256, other curves, compressed points, missing or duplicated parameters,
//! private keys) is refused. The store keeps the COSE_Key bytes exactly as the authenticator
//! sent them and re-validates them with [`PublicKey::from_cose`] whenever they are loaded.

use std::fmt;

use ciborium::Value;
use coset::iana::{self, EnumI64};
use coset::{Algorithm as CoseAlg, CborSerializable, CoseKey, KeyType, Label, RegisteredLabel};
use p256::ecdsa::signature::Verifier as _;

/// A signature algorithm Herarx accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// ECDSA with P-256 and SHA-256 (COSE -7).
    Es256,
    /// Ed25519 (COSE -8, EdDSA).
    EdDsa,
}

impl Algorithm {
    /// The COSE algorithm identifier (what the store's `algorithm` column holds).
    pub fn cose_id(self) -> i64 {
        match self {
            Self::Es256 => -7,
            Self::EdDsa => -8,
        }
    }

    /// A short name for lists and audit lines.
    pub fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }
}

/// Why a COSE_Key is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoseKeyError {
    /// Not a well-formed COSE_Key (bad CBOR, duplicate labels, no kty...).
    Malformed,
    /// A key type other than EC2 or OKP (e.g. RSA).
    UnsupportedKeyType(String),
    /// No `alg` parameter: Herarx requires it (CTAP always sends it).
    MissingAlgorithm,
    /// An algorithm other than ES256/EdDSA (e.g. RS256 = -257), or one that does not fit the
    /// key type.
    UnsupportedAlgorithm(String),
    /// A required parameter (`crv`, `x`, `y`) is absent.
    MissingParameter(&'static str),
    /// A parameter appears twice.
    DuplicateParameter(&'static str),
    /// A parameter has the wrong CBOR type (e.g. `y` as a sign bit: compressed points).
    WrongType(&'static str),
    /// A curve other than the one the algorithm needs.
    UnsupportedCurve(String),
    /// A coordinate of the wrong length.
    WrongLength {
        param: &'static str,
        expected: usize,
        got: usize,
    },
    /// The coordinates are not a valid public point (not on the curve, small order...).
    InvalidPoint,
    /// The key carries private material (`d`).
    PrivateKey,
}

impl fmt::Display for CoseKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => f.write_str("credential key is not a well-formed COSE_Key"),
            Self::UnsupportedKeyType(k) => write!(f, "unsupported COSE key type {k}"),
            Self::MissingAlgorithm => f.write_str("COSE key has no algorithm"),
            Self::UnsupportedAlgorithm(a) => write!(f, "unsupported COSE algorithm {a}"),
            Self::MissingParameter(p) => write!(f, "COSE key lacks parameter {p}"),
            Self::DuplicateParameter(p) => write!(f, "COSE key repeats parameter {p}"),
            Self::WrongType(p) => write!(f, "COSE key parameter {p} has the wrong type"),
            Self::UnsupportedCurve(c) => write!(f, "unsupported curve {c}"),
            Self::WrongLength {
                param,
                expected,
                got,
            } => {
                write!(
                    f,
                    "COSE key parameter {param} is {got} bytes, expected {expected}"
                )
            }
            Self::InvalidPoint => f.write_str("COSE key is not a valid point on its curve"),
            Self::PrivateKey => f.write_str("COSE key contains private key material"),
        }
    }
}

impl std::error::Error for CoseKeyError {}

/// The signature did not verify (or was not even well-formed for the algorithm).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadSignature;

impl fmt::Display for BadSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("signature does not verify")
    }
}

impl std::error::Error for BadSignature {}

/// A validated credential public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKey {
    Es256(p256::ecdsa::VerifyingKey),
    EdDsa(ed25519_dalek::VerifyingKey),
}

const CRV: i64 = -1;
const X: i64 = -2;
const Y: i64 = -3;
const D: i64 = -4;

fn label_str(k: &KeyType) -> String {
    match k {
        RegisteredLabel::Assigned(a) => a.to_i64().to_string(),
        RegisteredLabel::Text(t) => format!("{t:?}"),
    }
}

fn alg_str(a: &CoseAlg) -> String {
    match a {
        CoseAlg::Assigned(a) => a.to_i64().to_string(),
        CoseAlg::PrivateUse(i) => i.to_string(),
        CoseAlg::Text(t) => format!("{t:?}"),
    }
}

/// The single value of integer label `label`, if any.
fn param<'k>(
    key: &'k CoseKey,
    label: i64,
    name: &'static str,
) -> Result<Option<&'k Value>, CoseKeyError> {
    let mut found = key.params.iter().filter(|(l, _)| *l == Label::Int(label));
    let first = found.next().map(|(_, v)| v);
    if found.next().is_some() {
        return Err(CoseKeyError::DuplicateParameter(name));
    }
    Ok(first)
}

fn required_bytes<const N: usize>(
    key: &CoseKey,
    label: i64,
    name: &'static str,
) -> Result<[u8; N], CoseKeyError> {
    match param(key, label, name)? {
        None => Err(CoseKeyError::MissingParameter(name)),
        Some(Value::Bytes(b)) => {
            <[u8; N]>::try_from(b.as_slice()).map_err(|_| CoseKeyError::WrongLength {
                param: name,
                expected: N,
                got: b.len(),
            })
        }
        Some(_) => Err(CoseKeyError::WrongType(name)),
    }
}

fn curve(key: &CoseKey) -> Result<i64, CoseKeyError> {
    match param(key, CRV, "crv")? {
        None => Err(CoseKeyError::MissingParameter("crv")),
        Some(Value::Integer(i)) => {
            i64::try_from(*i).map_err(|_| CoseKeyError::UnsupportedCurve(format!("{i:?}")))
        }
        Some(Value::Text(t)) => Err(CoseKeyError::UnsupportedCurve(format!("{t:?}"))),
        Some(_) => Err(CoseKeyError::WrongType("crv")),
    }
}

impl PublicKey {
    /// Parses and validates a COSE_Key as Herarx accepts it (see the module doc).
    pub fn from_cose(bytes: &[u8]) -> Result<Self, CoseKeyError> {
        let key = CoseKey::from_slice(bytes).map_err(|_| CoseKeyError::Malformed)?;
        if param(&key, D, "d")?.is_some() {
            return Err(CoseKeyError::PrivateKey);
        }
        let alg = key.alg.as_ref().ok_or(CoseKeyError::MissingAlgorithm)?;
        match &key.kty {
            KeyType::Assigned(iana::KeyType::EC2) => {
                if *alg != CoseAlg::Assigned(iana::Algorithm::ES256) {
                    return Err(CoseKeyError::UnsupportedAlgorithm(alg_str(alg)));
                }
                let crv = curve(&key)?;
                if crv != iana::EllipticCurve::P_256.to_i64() {
                    return Err(CoseKeyError::UnsupportedCurve(crv.to_string()));
                }
                let x = required_bytes::<32>(&key, X, "x")?;
                let y = required_bytes::<32>(&key, Y, "y")?;
                let point =
                    p256::EncodedPoint::from_affine_coordinates(&x.into(), &y.into(), false);
                let vk = p256::ecdsa::VerifyingKey::from_encoded_point(&point)
                    .map_err(|_| CoseKeyError::InvalidPoint)?;
                Ok(Self::Es256(vk))
            }
            KeyType::Assigned(iana::KeyType::OKP) => {
                let ok_alg = *alg == CoseAlg::Assigned(iana::Algorithm::EdDSA)
                    || *alg == CoseAlg::Assigned(iana::Algorithm::Ed25519);
                if !ok_alg {
                    return Err(CoseKeyError::UnsupportedAlgorithm(alg_str(alg)));
                }
                let crv = curve(&key)?;
                if crv != iana::EllipticCurve::Ed25519.to_i64() {
                    return Err(CoseKeyError::UnsupportedCurve(crv.to_string()));
                }
                if param(&key, Y, "y")?.is_some() {
                    return Err(CoseKeyError::WrongType("y"));
                }
                let x = required_bytes::<32>(&key, X, "x")?;
                let vk = ed25519_dalek::VerifyingKey::from_bytes(&x)
                    .map_err(|_| CoseKeyError::InvalidPoint)?;
                if vk.is_weak() {
                    return Err(CoseKeyError::InvalidPoint);
                }
                Ok(Self::EdDsa(vk))
            }
            other => Err(CoseKeyError::UnsupportedKeyType(label_str(other))),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::Es256(_) => Algorithm::Es256,
            Self::EdDsa(_) => Algorithm::EdDsa,
        }
    }

    /// Verifies `signature` over `message` (ES256: DER-encoded ECDSA over SHA-256(message);
    /// EdDSA: 64-byte Ed25519 signature, strict verification).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), BadSignature> {
        match self {
            Self::Es256(vk) => {
                let sig =
                    p256::ecdsa::DerSignature::from_bytes(signature).map_err(|_| BadSignature)?;
                vk.verify(message, &sig).map_err(|_| BadSignature)
            }
            Self::EdDsa(vk) => {
                let sig =
                    ed25519_dalek::Signature::from_slice(signature).map_err(|_| BadSignature)?;
                vk.verify_strict(message, &sig).map_err(|_| BadSignature)
            }
        }
    }
}
