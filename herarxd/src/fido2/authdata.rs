//! A bounds-checked parser of WebAuthn authenticator data (WebAuthn §6.1, CTAP 2.1 §6.1):
//!
//! ```text
//! rpIdHash (32) | flags (1) | signCount (u32 BE)
//!   [AT] aaguid (16) | credentialIdLength (u16 BE) | credentialId | credentialPublicKey (COSE_Key, CBOR)
//!   [ED] extensions (CBOR map)
//! ```
//!
//! Every length is checked before it is used; nothing is allowed after the last structure the
//! flags announce. The COSE key is only delimited and checked to be a structurally valid
//! `COSE_Key` here; `cose.rs` decides whether Herarx accepts it.

use std::fmt;

use ciborium::Value;
use coset::{CborSerializable, CoseKey};

/// User present.
pub const FLAG_UP: u8 = 0x01;
/// User verified (PIN or built-in UV).
pub const FLAG_UV: u8 = 0x04;
/// Attested credential data included.
pub const FLAG_AT: u8 = 0x40;
/// Extension data included.
pub const FLAG_ED: u8 = 0x80;

/// WebAuthn caps credential ids at 1023 bytes.
pub const MAX_CREDENTIAL_ID_LEN: usize = 1023;
/// rpIdHash + flags + signCount.
pub const FIXED_LEN: usize = 37;
/// CBOR nesting allowed inside the key and the extensions (a COSE key needs 2).
const CBOR_RECURSION_LIMIT: usize = 16;

/// The flags byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flags(pub u8);

impl Flags {
    pub fn user_present(self) -> bool {
        self.0 & FLAG_UP != 0
    }
    pub fn user_verified(self) -> bool {
        self.0 & FLAG_UV != 0
    }
    pub fn attested_credential(self) -> bool {
        self.0 & FLAG_AT != 0
    }
    pub fn extensions(self) -> bool {
        self.0 & FLAG_ED != 0
    }
}

/// Attested credential data (present at registration).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttestedCredential<'a> {
    pub aaguid: [u8; 16],
    pub credential_id: &'a [u8],
    /// The COSE_Key exactly as the authenticator encoded it (what the store keeps).
    pub public_key: &'a [u8],
}

/// Parsed authenticator data, borrowing from the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthData<'a> {
    pub rp_id_hash: [u8; 32],
    pub flags: Flags,
    pub sign_count: u32,
    pub attested: Option<AttestedCredential<'a>>,
    /// The extensions CBOR map, as encoded.
    pub extensions: Option<&'a [u8]>,
}

/// What is wrong with an authenticator data blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthDataError {
    /// The input ends inside `field`.
    Truncated {
        field: &'static str,
        need: usize,
        have: usize,
    },
    /// The credential id length exceeds [`MAX_CREDENTIAL_ID_LEN`].
    CredentialIdTooLong(usize),
    /// The credential id length is zero.
    CredentialIdEmpty,
    /// The credential public key is not well-formed CBOR (or nests too deep).
    PublicKeyCbor,
    /// The credential public key is CBOR but not a COSE_Key.
    PublicKeyNotCoseKey,
    /// The extensions are not well-formed CBOR.
    ExtensionsCbor,
    /// The extensions are not a CBOR map.
    ExtensionsNotMap,
    /// Bytes remain after the last structure the flags announce.
    TrailingBytes(usize),
}

impl fmt::Display for AuthDataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { field, need, have } => {
                write!(
                    f,
                    "authenticator data truncated in {field} (need {need} bytes, {have} left)"
                )
            }
            Self::CredentialIdTooLong(n) => {
                write!(
                    f,
                    "credential id length {n} exceeds {MAX_CREDENTIAL_ID_LEN}"
                )
            }
            Self::CredentialIdEmpty => f.write_str("credential id is empty"),
            Self::PublicKeyCbor => f.write_str("credential public key is not well-formed CBOR"),
            Self::PublicKeyNotCoseKey => f.write_str("credential public key is not a COSE_Key"),
            Self::ExtensionsCbor => f.write_str("extensions are not well-formed CBOR"),
            Self::ExtensionsNotMap => f.write_str("extensions are not a CBOR map"),
            Self::TrailingBytes(n) => {
                write!(f, "{n} unexpected trailing bytes in authenticator data")
            }
        }
    }
}

impl std::error::Error for AuthDataError {}

/// A cursor that never reads past its input.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], AuthDataError> {
        if self.rest.len() < n {
            return Err(AuthDataError::Truncated {
                field,
                need: n,
                have: self.rest.len(),
            });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], AuthDataError> {
        let bytes = self.take(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// One CBOR data item: returns its encoding and decoded value.
    fn cbor(&mut self) -> Result<(&'a [u8], Value), ()> {
        let start = self.rest;
        let mut cursor: &[u8] = self.rest;
        let value: Value =
            ciborium::de::from_reader_with_recursion_limit(&mut cursor, CBOR_RECURSION_LIMIT)
                .map_err(|_| ())?;
        let used = start.len() - cursor.len();
        let (item, tail) = start.split_at(used);
        self.rest = tail;
        Ok((item, value))
    }
}

/// Parses authenticator data. Never panics; refuses trailing bytes.
pub fn parse(input: &[u8]) -> Result<AuthData<'_>, AuthDataError> {
    let mut r = Reader { rest: input };
    let rp_id_hash = r.array::<32>("rpIdHash")?;
    let flags = Flags(r.array::<1>("flags")?[0]);
    let sign_count = u32::from_be_bytes(r.array::<4>("signCount")?);

    let attested = if flags.attested_credential() {
        let aaguid = r.array::<16>("aaguid")?;
        let len = usize::from(u16::from_be_bytes(r.array::<2>("credentialIdLength")?));
        if len > MAX_CREDENTIAL_ID_LEN {
            return Err(AuthDataError::CredentialIdTooLong(len));
        }
        if len == 0 {
            return Err(AuthDataError::CredentialIdEmpty);
        }
        let credential_id = r.take(len, "credentialId")?;
        if r.rest.is_empty() {
            return Err(AuthDataError::Truncated {
                field: "credentialPublicKey",
                need: 1,
                have: 0,
            });
        }
        let (public_key, _) = r.cbor().map_err(|()| AuthDataError::PublicKeyCbor)?;
        CoseKey::from_slice(public_key).map_err(|_| AuthDataError::PublicKeyNotCoseKey)?;
        Some(AttestedCredential {
            aaguid,
            credential_id,
            public_key,
        })
    } else {
        None
    };

    let extensions = if flags.extensions() {
        if r.rest.is_empty() {
            return Err(AuthDataError::Truncated {
                field: "extensions",
                need: 1,
                have: 0,
            });
        }
        let (bytes, value) = r.cbor().map_err(|()| AuthDataError::ExtensionsCbor)?;
        if !matches!(value, Value::Map(_)) {
            return Err(AuthDataError::ExtensionsNotMap);
        }
        Some(bytes)
    } else {
        None
    };

    if !r.rest.is_empty() {
        return Err(AuthDataError::TrailingBytes(r.rest.len()));
    }
    Ok(AuthData {
        rp_id_hash,
        flags,
        sign_count,
        attested,
        extensions,
    })
}
