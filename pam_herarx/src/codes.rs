//! The one place where a verdict becomes a PAM return code.

use crate::core::Verdict;
use pam::constants::PamResultCode;

pub fn pam_code(verdict: Verdict) -> PamResultCode {
    match verdict {
        Verdict::Success => PamResultCode::PAM_SUCCESS,
        Verdict::Ignore => PamResultCode::PAM_IGNORE,
        Verdict::AuthErr => PamResultCode::PAM_AUTH_ERR,
        Verdict::MaxTries => PamResultCode::PAM_MAXTRIES,
        Verdict::AuthinfoUnavail => PamResultCode::PAM_AUTHINFO_UNAVAIL,
        Verdict::CredInsufficient => PamResultCode::PAM_CRED_INSUFFICIENT,
        Verdict::ConvErr => PamResultCode::PAM_CONV_ERR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_map_to_the_documented_codes() {
        // Numbers as in <security/_pam_types.h>: the end-to-end tests compare raw integers.
        let table = [
            (Verdict::Success, 0),
            (Verdict::AuthErr, 7),
            (Verdict::CredInsufficient, 8),
            (Verdict::AuthinfoUnavail, 9),
            (Verdict::MaxTries, 11),
            (Verdict::ConvErr, 19),
            (Verdict::Ignore, 25),
        ];
        for (verdict, raw) in table {
            assert_eq!(pam_code(verdict) as i32, raw, "{verdict:?}");
        }
    }
}
