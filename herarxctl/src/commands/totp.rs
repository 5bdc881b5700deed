//! `herarxctl totp add`: enrol an authenticator app.
//!
//! The conversation, in the order a script must feed it: (step-up code, if you already have a
//! factor) → the `otpauth://` URI alone on one stdout line → the confirmation code.

use herarx_proto::PendingEnrollment;
use herarx_proto::limits::FACTOR_NAME_MAX;
use zeroize::Zeroizing;

use crate::bus::Daemon;
use crate::commands::{Context, STEP_UP_PROMPT, now, step_up_prompt, with_code};
use crate::error::CliError;
use crate::input::Answers;
use crate::printer::Printer;
use crate::{otpauth, output, qr};

pub fn add(ctx: &Context, name: Option<&str>, replace: Option<&str>) -> Result<(), CliError> {
    let name = name.unwrap_or("");
    check_name(name)?;
    if replace.is_some_and(|r| r.trim().is_empty()) {
        return Err(CliError::Usage(
            "--replace needs the id of the factor to replace, as `herarxctl status` shows it"
                .to_owned(),
        ));
    }
    let printer = Printer::new(ctx.interactive, ctx.json);
    let mut answers = Answers::stdin(ctx.interactive);
    let daemon = Daemon::connect(&ctx.address)?;

    // Once you have a factor, adding another needs a fresh code from one of them, so that
    // a stolen password alone cannot plant an attacker's authenticator.
    let status = daemon.status()?;
    let replaced = match replace {
        Some(id) => Some(
            status
                .factors
                .iter()
                .find(|f| f.id == id)
                .cloned()
                .ok_or_else(|| CliError::NoSuchFactor(output::safe(id).into_owned()))?,
        ),
        None => None,
    };
    let replace = replace.unwrap_or("");
    let pending = if status.factors.is_empty() {
        daemon.begin_totp_enrollment(name, "", replace)?
    } else {
        // A backup code does as well: moving to a new phone after losing the old one.
        // Someone whose only methods are email or text gets a code sent for this.
        let prompt = match step_up_prompt(&daemon, &status, &mut |t| answers.say(t))? {
            STEP_UP_PROMPT if replaced.is_some() => STEP_UP_REPLACE_PROMPT,
            prompt => prompt,
        };
        with_code(&mut answers, prompt, "the step-up code", |code| {
            daemon.begin_totp_enrollment(name, code, replace)
        })?
    };
    let PendingEnrollment { id, uri, expires } = pending;
    let uri = Zeroizing::new(uri);
    let parsed = otpauth::parse(&uri);

    if ctx.interactive {
        show(&printer, &uri, parsed.as_ref(), expires)?;
    } else {
        // The secret goes to stdout only, never to stderr, which scripts tend to log.
        printer.human("Add this otpauth:// URI (on stdout) to your authenticator app.")?;
    }
    if !printer.human_on_stdout() {
        printer.data(&uri)?;
    }

    let digits = parsed.as_ref().map_or(6, |p| p.digits);
    let prompt = format!("Enter the {digits}-digit code shown by your app: ");
    let factor = with_code(&mut answers, &prompt, "the confirmation code", |code| {
        daemon.confirm_totp_enrollment(&id, code)
    })?;

    if ctx.json {
        printer.data(&output::factor_json(&factor)?)?;
    }
    if let Some(old) = replaced {
        return printer.human(&format!(
            "Added authenticator {} and removed {}: only the new one works from now on.",
            output::factor_label(&factor),
            output::factor_label(&old)
        ));
    }
    printer.human(&format!(
        "Added authenticator {}. Keep it: logins will ask for its codes.",
        output::factor_label(&factor)
    ))
}

const STEP_UP_REPLACE_PROMPT: &str =
    "Code from one of your authenticators, or one of your backup codes: ";

/// Everything a person needs to add the authenticator: the QR code, and the details for
/// typing it in by hand.
fn show(
    printer: &Printer,
    uri: &str,
    parsed: Option<&otpauth::OtpAuth>,
    expires: u64,
) -> Result<(), CliError> {
    match qr::render(uri) {
        Ok(image) => {
            printer.human("Scan this QR code with your authenticator app:\n")?;
            printer.human(&image)?;
            printer.human("\nOr enter these details by hand:")?;
        }
        Err(e) => printer.human(&format!(
            "(No QR code: {e}.) Enter these details in your authenticator app by hand:"
        ))?,
    }
    let details = output::enrolment_details(uri, parsed, expires, now());
    printer.human(&details)?;
    printer.human("")
}

pub fn check_name(name: &str) -> Result<(), CliError> {
    if name.len() > FACTOR_NAME_MAX {
        return Err(CliError::Usage(format!(
            "--name is too long ({} bytes; at most {FACTOR_NAME_MAX})",
            name.len()
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(CliError::Usage(
            "--name must not contain control characters".to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_before_anything_is_asked() {
        assert!(check_name("").is_ok());
        assert!(check_name("phone").is_ok());
        assert!(check_name(&"x".repeat(FACTOR_NAME_MAX)).is_ok());
        assert_eq!(
            check_name(&"x".repeat(FACTOR_NAME_MAX + 1))
                .unwrap_err()
                .exit_code(),
            2
        );
        assert_eq!(check_name("ph\none").unwrap_err().exit_code(), 2);
    }
}
