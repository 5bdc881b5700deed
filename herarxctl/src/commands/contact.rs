//! `herarxctl email add|list` and `herarxctl sms add|list`: codes by email or text message.
//!
//! The conversation of `add`, in the order a script must feed it: (step-up code, if you
//! already have a way to sign in) → the code sent to the new address or number.

use crate::bus::Daemon;
use crate::cli::ContactCommand;
use crate::commands::totp::check_name;
use crate::commands::{Context, step_up_prompt, with_code};
use crate::error::CliError;
use crate::input::Answers;
use crate::output;
use crate::printer::Printer;

pub fn run(ctx: &Context, kind: &str, command: &ContactCommand) -> Result<(), CliError> {
    match command {
        ContactCommand::Add {
            destination,
            name,
            replace,
        } => add(ctx, kind, destination, name.as_deref(), replace.as_deref()),
        ContactCommand::List => list(ctx, kind),
    }
}

fn what(kind: &str) -> &'static str {
    if kind == "email" { "address" } else { "number" }
}

pub fn add(
    ctx: &Context,
    kind: &str,
    destination: &str,
    name: Option<&str>,
    replace: Option<&str>,
) -> Result<(), CliError> {
    let name = name.unwrap_or("");
    check_name(name)?;
    if destination.trim().is_empty() {
        return Err(CliError::Usage(format!(
            "give the {} to add, e.g. `herarxctl {kind} add {}`",
            what(kind),
            if kind == "email" {
                "jane@example.com"
            } else {
                "+441234567890"
            }
        )));
    }
    let printer = Printer::new(ctx.interactive, ctx.json);
    let mut answers = Answers::stdin(ctx.interactive);
    let daemon = Daemon::connect(&ctx.address)?;
    let status = daemon.status()?;
    if let Some(id) = replace
        && !status.factors.iter().any(|f| f.id == id)
    {
        return Err(CliError::NoSuchFactor(output::safe(id).into_owned()));
    }
    let replace = replace.unwrap_or("");
    let (id, masked) = if status.factors.is_empty() && status.backup_codes_left == 0 {
        daemon.begin_contact_enrollment(kind, destination, name, "", replace)?
    } else {
        let prompt = step_up_prompt(&daemon, &status, &mut |t| answers.say(t))?;
        with_code(&mut answers, prompt, "the step-up code", |code| {
            daemon.begin_contact_enrollment(kind, destination, name, code, replace)
        })?
    };
    answers.say(&format!(
        "A code was sent to {}. It can take a minute to arrive.",
        output::safe(&masked)
    ))?;
    let factor = with_code(
        &mut answers,
        "Enter the code from that message: ",
        "the confirmation code",
        |code| daemon.confirm_contact_enrollment(&id, code),
    )?;
    if ctx.json {
        printer.data(&output::factor_json(&factor)?)?;
    }
    printer.human(&format!(
        "Added {} {} ({}). Logins can now send codes there.",
        if kind == "email" {
            "email address"
        } else {
            "phone number"
        },
        output::factor_label(&factor),
        output::safe(&factor.detail)
    ))
}

fn list(ctx: &Context, kind: &str) -> Result<(), CliError> {
    let printer = Printer::new(ctx.interactive, ctx.json);
    let daemon = Daemon::connect(&ctx.address)?;
    let status = daemon.status()?;
    let mine: Vec<_> = status.factors.iter().filter(|f| f.kind == kind).collect();
    if ctx.json {
        for f in &mine {
            printer.data(&output::factor_json(f)?)?;
        }
        return Ok(());
    }
    if mine.is_empty() {
        return printer.human(&format!(
            "No {} yet: add one with `herarxctl {kind} add`.",
            if kind == "email" {
                "email address"
            } else {
                "phone number"
            }
        ));
    }
    for f in mine {
        printer.human(&format!(
            "{}  {}{}",
            output::factor_label(f),
            output::safe(&f.detail),
            if f.primary { "  (primary)" } else { "" }
        ))?;
    }
    Ok(())
}
