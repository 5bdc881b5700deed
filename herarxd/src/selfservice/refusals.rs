//! The refusal sentences more than one self-service call gives, each written once.
//!
//! Where call sites used different words for the same refusal, the words that differ are a
//! parameter (or one of the `EnrolWords` below), and each call site keeps its words exactly:
//! the end-to-end tests compare these texts. Unify the words only together with those tests.

use herarx_proto::HerarxError;

use crate::login::locked_message;
use crate::store::factors::FACTORS_PER_USER_MAX;
use crate::store::verify::VerifyOutcome;

/// A step-up code the store refused: the lockout it caused or was under, else a wrong code.
pub(crate) fn step_up_refusal(outcome: &VerifyOutcome, now: u64) -> HerarxError {
    match outcome {
        VerifyOutcome::Locked { until }
        | VerifyOutcome::Rejected {
            locked_until: Some(until),
            ..
        } => HerarxError::Locked(locked_message(*until, now)),
        _ => HerarxError::WrongCode(
            "That code is wrong or was already used: give the current code of one of your \
             factors (or wait for the next one)."
                .into(),
        ),
    }
}

/// How [`too_many_factors`] tells to remove one: the generic command (TOTP, email, SMS)…
pub(crate) const REMOVE_ANY: &str = "`herarxctl remove ID`";
/// …or, at a security-key enrolment, the key command too.
pub(crate) const REMOVE_KEY_OR_ANY: &str = "`herarxctl key remove ID` or `herarxctl remove ID`";

/// A user at [`FACTORS_PER_USER_MAX`] adding one more. `remove`: [`REMOVE_ANY`] or
/// [`REMOVE_KEY_OR_ANY`].
pub(crate) fn too_many_factors(remove: &str) -> HerarxError {
    HerarxError::Busy(format!(
        "You have {FACTORS_PER_USER_MAX} factors, the most allowed: remove one first \
         ({remove})."
    ))
}

pub(crate) fn no_such_factor() -> HerarxError {
    HerarxError::NoSuchFactor(
        "You have no factor with that id: run `herarxctl status` to list yours.".into(),
    )
}

/// A step-up code longer than any answer (`limits::ANSWER_MAX`).
pub(crate) fn step_up_too_long() -> HerarxError {
    HerarxError::InvalidArgument(
        "The step-up code is too long: give the code your authenticator shows, or a backup \
         code."
            .into(),
    )
}

/// A contact kind other than email or SMS.
pub(crate) fn not_a_contact_kind() -> HerarxError {
    HerarxError::InvalidArgument("The kind must be \"email\" or \"sms\".".into())
}

/// What differs between the refusals of a TOTP enrolment and of an email/SMS one: how a
/// pending enrolment goes away, what code to give, and how to start again.
pub(crate) struct EnrolWords {
    /// The command that starts one, inside backquotes (`herarxctl totp add`).
    pub again: &'static str,
    /// The ways a pending enrolment ends.
    pub gone: &'static str,
    /// Which code a confirmation wants.
    pub give: &'static str,
    /// What to do once the tries are used up.
    pub cancelled: &'static str,
}

pub(crate) const TOTP_WORDS: EnrolWords = EnrolWords {
    again: "herarxctl totp add",
    gone: "it expired, was replaced or was finished",
    give: "the code the authenticator shows now (and check that the device's clock is right)",
    cancelled: "Start again with `herarxctl totp add`, and check that the device's clock is \
                right.",
};

pub(crate) const CONTACT_WORDS: EnrolWords = EnrolWords {
    again: "herarxctl email add` or `herarxctl sms add",
    gone: "it expired, was finished, or had too many wrong codes",
    give: "the code from the message just sent",
    cancelled: "Start again.",
};

/// A confirmation of an enrolment that is not (or no longer) pending for the caller.
pub(crate) fn no_such_enrollment(words: &EnrolWords) -> HerarxError {
    HerarxError::NoSuchEnrollment(format!(
        "No such enrolment ({}): start again with `{}`.",
        words.gone, words.again
    ))
}

/// A wrong confirmation code; with 0 tries left the pending enrolment is gone.
pub(crate) fn wrong_confirmation_code(words: &EnrolWords, tries_left: u32) -> HerarxError {
    use crate::store::enrollments::CONFIRM_ATTEMPTS_MAX;
    if tries_left == 0 {
        return HerarxError::WrongCode(format!(
            "Wrong code, {CONFIRM_ATTEMPTS_MAX} times: this enrolment is cancelled. {}",
            words.cancelled
        ));
    }
    HerarxError::WrongCode(format!(
        "Wrong code: give {}; {tries_left} {} left.",
        words.give,
        if tries_left == 1 { "try" } else { "tries" }
    ))
}

/// A confirmation the store refused because the account changed after the enrolment began.
/// The pending enrolment is gone.
pub(crate) fn changed_since_begin(step_up: bool, words: &EnrolWords) -> HerarxError {
    let again = words.again;
    if step_up {
        HerarxError::StepUpRequired(format!(
            "A factor was added to your account after this enrolment began, and it began \
             without a step-up, so it needs one now: nothing was added. Start again with \
             `{again}` and give a current code from one of your factors."
        ))
    } else {
        HerarxError::NoSuchFactor(format!(
            "The factor this enrolment was to replace was removed after it began: nothing was \
             added. Start again with `{again}`."
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts as each call site wrote them before they were gathered here, byte for byte.
    #[test]
    fn each_call_site_keeps_its_words() {
        let n = FACTORS_PER_USER_MAX;
        assert_eq!(
            too_many_factors(REMOVE_ANY),
            HerarxError::Busy(format!(
                "You have {n} factors, the most allowed: remove one first (`herarxctl remove ID`)."
            ))
        );
        assert_eq!(
            too_many_factors(REMOVE_KEY_OR_ANY),
            HerarxError::Busy(format!(
                "You have {n} factors, the most allowed: remove one first (`herarxctl key \
                 remove ID` or `herarxctl remove ID`)."
            ))
        );
        assert_eq!(
            no_such_enrollment(&TOTP_WORDS),
            HerarxError::NoSuchEnrollment(
                "No such enrolment (it expired, was replaced or was finished): start again \
                 with `herarxctl totp add`."
                    .into()
            )
        );
        assert_eq!(
            no_such_enrollment(&CONTACT_WORDS),
            HerarxError::NoSuchEnrollment(
                "No such enrolment (it expired, was finished, or had too many wrong codes): \
                 start again with `herarxctl email add` or `herarxctl sms add`."
                    .into()
            )
        );
        let max = crate::store::enrollments::CONFIRM_ATTEMPTS_MAX;
        assert_eq!(
            wrong_confirmation_code(&TOTP_WORDS, 0),
            HerarxError::WrongCode(format!(
                "Wrong code, {max} times: this enrolment is cancelled. Start again with \
                 `herarxctl totp add`, and check that the device's clock is right."
            ))
        );
        assert_eq!(
            wrong_confirmation_code(&CONTACT_WORDS, 0),
            HerarxError::WrongCode(format!(
                "Wrong code, {max} times: this enrolment is cancelled. Start again."
            ))
        );
        assert_eq!(
            wrong_confirmation_code(&TOTP_WORDS, 1),
            HerarxError::WrongCode(
                "Wrong code: give the code the authenticator shows now (and check that the \
                 device's clock is right); 1 try left."
                    .into()
            )
        );
        assert_eq!(
            wrong_confirmation_code(&CONTACT_WORDS, 3),
            HerarxError::WrongCode(
                "Wrong code: give the code from the message just sent; 3 tries left.".into()
            )
        );
        assert_eq!(
            changed_since_begin(true, &CONTACT_WORDS),
            HerarxError::StepUpRequired(
                "A factor was added to your account after this enrolment began, and it began \
                 without a step-up, so it needs one now: nothing was added. Start again with \
                 `herarxctl email add` or `herarxctl sms add` and give a current code from one \
                 of your factors."
                    .into()
            )
        );
        assert_eq!(
            changed_since_begin(false, &TOTP_WORDS),
            HerarxError::NoSuchFactor(
                "The factor this enrolment was to replace was removed after it began: nothing \
                 was added. Start again with `herarxctl totp add`."
                    .into()
            )
        );
    }
}
