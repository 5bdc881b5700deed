//! Sealing secrets for the store: XChaCha20-Poly1305 under the master key.
//!
//! The associated data binds what a blob is, whose it is and which row it belongs to, so a
//! sealed seed copied onto another user's row (or another factor) does not open.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::crypto::master_key::MasterKey;

pub const NONCE_LEN: usize = 24;

/// What a sealed blob holds; part of the associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The seed of an enrolled TOTP factor.
    Totp,
    /// The seed of a TOTP enrolment waiting for its confirmation code.
    PendingTotp,
    /// The store's key check value.
    KeyCheck,
    /// A security key's credential (id, public key, AAGUID): not secret, but sealed so that a
    /// row cannot be edited or moved to another user or factor without the master key.
    Fido2,
    /// The address or number of an email or SMS factor (or of one being enrolled): personal
    /// data, sealed so that the database file alone does not give it away.
    Contact,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Totp => "totp",
            Kind::Fido2 => "fido2",
            Kind::PendingTotp => "pending-totp",
            Kind::KeyCheck => "key-check",
            Kind::Contact => "contact",
        }
    }
}

/// `herarx/v1/<kind>\0<user>\0<id>`. User names and ids never contain NUL (validated), so the
/// encoding is unambiguous.
pub fn aad(kind: Kind, user: &str, id: &str) -> Vec<u8> {
    let mut a = Vec::with_capacity(16 + user.len() + id.len());
    a.extend_from_slice(b"herarx/v1/");
    a.extend_from_slice(kind.label().as_bytes());
    a.push(0);
    a.extend_from_slice(user.as_bytes());
    a.push(0);
    a.extend_from_slice(id.as_bytes());
    a
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealError {
    /// The kernel gave no random bytes for the nonce.
    Random,
    /// Encryption failed (input too long; does not happen for our sizes).
    Encrypt,
    /// Wrong key, tampered blob, or a blob moved to another row.
    Open,
}

impl std::fmt::Display for SealError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SealError::Random => "no random bytes for a nonce",
            SealError::Encrypt => "encryption failed",
            SealError::Open => "a sealed value does not open (wrong key, or tampered or moved row)",
        })
    }
}

impl std::error::Error for SealError {}

/// Returns `nonce (24) || ciphertext || tag`.
pub fn seal(key: &MasterKey, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|_| SealError::Random)?;
    let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
    let ct = cipher
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| SealError::Encrypt)?;
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens what [`seal`] made with the same key and associated data.
pub fn open(key: &MasterKey, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
    if sealed.len() < NONCE_LEN {
        return Err(SealError::Open);
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    let mut n = [0u8; NONCE_LEN];
    n.copy_from_slice(nonce);
    let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
    cipher
        .decrypt(&XNonce::from(n), Payload { msg: ct, aad })
        .map(Zeroizing::new)
        .map_err(|_| SealError::Open)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> MasterKey {
        MasterKey::from_bytes([b; 32])
    }

    #[test]
    fn a_sealed_value_opens_with_the_same_key_and_binding() {
        let a = aad(Kind::Totp, "alice", "0a1b2c3d");
        let sealed = seal(&key(1), &a, b"12345678901234567890").unwrap();
        assert_eq!(sealed.len(), NONCE_LEN + 20 + 16);
        assert_eq!(
            &open(&key(1), &a, &sealed).unwrap()[..],
            b"12345678901234567890"
        );
    }

    #[test]
    fn two_seals_of_one_secret_differ() {
        let a = aad(Kind::Totp, "alice", "0a1b2c3d");
        assert_ne!(
            seal(&key(1), &a, b"secret").unwrap(),
            seal(&key(1), &a, b"secret").unwrap()
        );
    }

    #[test]
    fn any_flipped_byte_fails() {
        let a = aad(Kind::Totp, "alice", "0a1b2c3d");
        let sealed = seal(&key(1), &a, b"12345678901234567890").unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert_eq!(open(&key(1), &a, &bad), Err(SealError::Open), "byte {i}");
        }
        assert_eq!(open(&key(1), &a, &sealed[..10]), Err(SealError::Open));
    }

    #[test]
    fn a_row_moved_to_another_user_or_factor_or_kind_fails() {
        let sealed = seal(&key(1), &aad(Kind::Totp, "alice", "0a1b2c3d"), b"seed").unwrap();
        for other in [
            aad(Kind::Totp, "mallory", "0a1b2c3d"),
            aad(Kind::Totp, "alice", "ffffffff"),
            aad(Kind::PendingTotp, "alice", "0a1b2c3d"),
            aad(Kind::Totp, "alice\u{0}0a1b2c3d", ""),
        ] {
            assert_eq!(open(&key(1), &other, &sealed), Err(SealError::Open));
        }
    }

    #[test]
    fn the_wrong_key_fails() {
        let a = aad(Kind::Totp, "alice", "0a1b2c3d");
        let sealed = seal(&key(1), &a, b"seed").unwrap();
        assert_eq!(open(&key(2), &a, &sealed), Err(SealError::Open));
    }
}
