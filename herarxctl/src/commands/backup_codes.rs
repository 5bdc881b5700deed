//! `herarxctl backup-codes generate`: a new set of one-time backup codes, shown once.
//!
//! The conversation, in the order a script must feed it: (step-up code, if you already have a
//! factor or backup codes) → the codes on stdout, one per line (or `{"codes":[...]}` with
//! `--json`), and nothing else on stdout.

use zeroize::Zeroizing;

use crate::bus::Daemon;
use crate::commands::{Context, step_up_prompt, with_code};
use crate::error::CliError;
use crate::input::Answers;
use crate::output;
use crate::printer::Printer;

pub const STEP_UP_PROMPT: &str =
    "Code from one of your authenticators (or one of your current backup codes): ";

pub fn generate(ctx: &Context) -> Result<(), CliError> {
    let printer = Printer::new(ctx.interactive, ctx.json);
    let mut answers = Answers::stdin(ctx.interactive);
    let daemon = Daemon::connect(&ctx.address)?;

    // Once you have a factor or codes, a new set needs a fresh code: otherwise a stolen
    // password alone could mint codes that log in.
    let status = daemon.status()?;
    let guarded = !status.factors.is_empty() || status.backup_codes_left > 0;
    let codes = if guarded {
        let prompt = match step_up_prompt(&daemon, &status, &mut |t| answers.say(t))? {
            crate::commands::STEP_UP_PROMPT => STEP_UP_PROMPT,
            sent => sent,
        };
        with_code(&mut answers, prompt, "the step-up code", |code| {
            daemon.generate_backup_codes(code)
        })?
    } else {
        daemon.generate_backup_codes("")?
    };
    let codes: Vec<Zeroizing<String>> = codes.into_iter().map(Zeroizing::new).collect();

    if ctx.json {
        return printer.data(&output::backup_codes_json(&codes)?);
    }
    if ctx.interactive {
        printer.data(&output::backup_codes_human(&codes))?;
        return printer.human(output::BACKUP_CODES_NOTE);
    }
    // A script: the codes alone on stdout, the note on stderr.
    for code in &codes {
        printer.data(&output::safe(code))?;
    }
    printer.human(output::BACKUP_CODES_NOTE)
}
