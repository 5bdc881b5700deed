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

/// The TOTP parameters new factors get (`[totp]`): one place for every enrolment.
pub fn totp_params(config: &Config) -> crate::crypto::totp::Params {
    crate::crypto::totp::Params {
        algorithm: config.totp_algorithm(),
        digits: u8::try_from(config.totp.digits).unwrap_or(6),
        period: u64::from(config.totp.period),
    }
}
