//! `herarxctl remove ID`: remove one of your factors, after confirmation and a step-up code.

use crate::bus::Daemon;
use crate::commands::{Context, step_up_prompt, with_code};
use crate::error::CliError;
use crate::input::{self, Answers, Confirmation};
use crate::output;
use crate::printer::Printer;

pub fn run(ctx: &Context, id: &str, yes: bool) -> Result<(), CliError> {
    // Refuse a script without --yes before touching the bus or reading any input.
    let confirmation = input::confirmation("remove", yes, ctx.interactive)?;
    let printer = Printer::new(ctx.interactive, ctx.json);
    let mut answers = Answers::stdin(ctx.interactive);
    let daemon = Daemon::connect(&ctx.address)?;

    // Look the factor up first: its name goes into the question, and a mistyped id should
    // not cost a code.
    let status = daemon.status()?;
    let factor = status
        .factors
        .iter()
        .find(|f| f.id == id)
        .cloned()
        .ok_or_else(|| CliError::NoSuchFactor(output::safe(id).into_owned()))?;
    let last = status.factors.len() == 1;
    let label = output::factor_label(&factor);

    // Backup codes alone are a weak second factor: the daemon deletes them with the last one.
    let codes_go = if last && status.backup_codes_left > 0 {
        format!(
            " Your {} unused backup codes are deleted with it.",
            status.backup_codes_left
        )
    } else {
        String::new()
    };
    if confirmation == Confirmation::Ask {
        if last {
            answers.say(&format!(
                "This is your last factor. Without one: {}.{codes_go}",
                output::no_factor_meaning(&status.no_factor_policy)
            ))?;
        }
        if !answers.confirm(&format!("Remove factor {label}?"))? {
            return Err(CliError::Declined("nothing was removed".to_owned()));
        }
    }

    // A user with only security keys confirms with a touch: no code to give.
    let keys_only =
        status.factors.iter().all(|f| f.kind == "fido2") && status.backup_codes_left == 0;
    if keys_only {
        answers.say("Touch one of your security keys to confirm it is you.")?;
        daemon.remove_factor(id, "")?;
    } else {
        let prompt = step_up_prompt(&daemon, &status, &mut |t| answers.say(t))?;
        with_code(&mut answers, prompt, "the step-up code", |code| {
            daemon.remove_factor(id, code)
        })?;
    }

    if ctx.json {
        printer.data(&output::removed_json(&factor)?)?;
    }
    printer.human(&format!("Removed factor {label}."))?;
    if last {
        printer.human(&format!(
            "You have no factor left: {}. Add one with `herarxctl totp add`.",
            output::no_factor_meaning(&status.no_factor_policy)
        ))?;
        if !codes_go.is_empty() {
            printer.human(&format!(
                "Your {} unused backup codes were deleted too: make a new set after adding a \
                 factor (`herarxctl backup-codes generate`).",
                status.backup_codes_left
            ))?;
        }
    }
    Ok(())
}
