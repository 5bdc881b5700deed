//! `herarxctl status`: the caller's factors, failures, lockout and policy.

use crate::bus::Daemon;
use crate::commands::{Context, now};
use crate::error::CliError;
use crate::output;
use crate::printer::Printer;

pub fn run(ctx: &Context) -> Result<(), CliError> {
    let daemon = Daemon::connect(&ctx.address)?;
    let status = daemon.status()?;
    let printer = Printer::new(ctx.interactive, ctx.json);
    // The table is the result itself, so it goes to stdout in every mode.
    if ctx.json {
        printer.data(&output::status_json(&status)?)
    } else {
        printer.data(&output::status_human(&status, now()))
    }
}
