//! The configuration schema lives in the `herarx-config` crate (shared with herarxctl).

pub use herarx_config::*;

impl From<TotpAlgorithm> for crate::crypto::totp::Algorithm {
    fn from(a: TotpAlgorithm) -> Self {
        match a {
            TotpAlgorithm::Sha1 => crate::crypto::totp::Algorithm::Sha1,
            TotpAlgorithm::Sha256 => crate::crypto::totp::Algorithm::Sha256,
            TotpAlgorithm::Sha512 => crate::crypto::totp::Algorithm::Sha512,
        }
    }
}
