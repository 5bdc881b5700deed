//! The words of the codes Herarx sends by email and text message. Nothing in them but the
//! code itself is secret, and nothing secret but the code is in them.

/// What a code is for, as the message says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeUse {
    Login,
    StepUp,
    Enrol,
}

/// "1 minute", "5 minutes": `seconds` rounded up, at least one.
pub fn minutes(seconds: u64) -> String {
    match seconds.div_ceil(60).max(1) {
        1 => "1 minute".to_owned(),
        n => format!("{n} minutes"),
    }
}

/// `(subject, body)` of an email carrying `code`.
pub fn email(
    use_: CodeUse,
    user: &str,
    host: &str,
    code: &str,
    valid_seconds: u64,
) -> (String, String) {
    let m = minutes(valid_seconds);
    let (subject, what, not_you) = match use_ {
        CodeUse::Login => (
            format!("Your sign-in code for {host}"),
            format!("signing in to {host} as {user}"),
            "If you are not signing in right now, someone knows your password: change it and \
             tell your administrator.",
        ),
        CodeUse::StepUp => (
            format!("Your confirmation code for {host}"),
            format!("confirming a change to the sign-in methods of {user} on {host}"),
            "If you are not changing your sign-in methods, someone has your session: tell your \
             administrator.",
        ),
        CodeUse::Enrol => (
            format!("Confirm this address for signing in to {host}"),
            format!("adding this address as a sign-in method of {user} on {host}"),
            "If you did not ask for this, ignore this message: the address is not added without \
             the code.",
        ),
    };
    let body = format!(
        "Your Herarx code for {what} is:\n\n    {code}\n\nIt works once, for {m}. Never \
         tell it to anyone: nobody will ever ask you for it.\n\n{not_you}\n"
    );
    (subject, body)
}

/// A text message carrying `code`.
pub fn sms(use_: CodeUse, user: &str, host: &str, code: &str, valid_seconds: u64) -> String {
    let m = valid_seconds.div_ceil(60).max(1);
    let what = match use_ {
        CodeUse::Login => "sign-in code",
        CodeUse::StepUp => "confirmation code",
        CodeUse::Enrol => "code to add this number",
    };
    format!(
        "Herarx: {code} is your {what} for {user} on {host}. Valid {m} min. Never share it. \
         Not you? Tell your administrator."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_and_where_are_in_every_message() {
        for use_ in [CodeUse::Login, CodeUse::StepUp, CodeUse::Enrol] {
            let (subject, body) = email(use_, "alice", "web1", "123456", 300);
            assert!(subject.contains("web1"), "{subject}");
            assert!(
                body.contains("    123456\n") && body.contains("alice"),
                "{body}"
            );
            assert!(body.contains("5 minutes"), "{body}");
            assert!(
                email(use_, "a", "h", "123456", 60)
                    .1
                    .contains("for 1 minute.")
            );
            let text = sms(use_, "alice", "web1", "123456", 300);
            assert!(
                text.contains("123456") && text.contains("alice") && text.len() <= 160,
                "{text}"
            );
        }
    }
}
