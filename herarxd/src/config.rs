//! The configuration schema lives in the `herarx-config` crate (shared with herarxctl).

pub use herarx_config::*;

impl From<TotpAlgorithm> for crate::totp::Algorithm {
    fn from(a: TotpAlgorithm) -> Self {
        match a {
            TotpAlgorithm::Sha1 => crate::totp::Algorithm::Sha1,
            TotpAlgorithm::Sha256 => crate::totp::Algorithm::Sha256,
            TotpAlgorithm::Sha512 => crate::totp::Algorithm::Sha512,
        }
    }
}
