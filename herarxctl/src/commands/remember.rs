//! `herarxctl remember on|off` and `herarxctl forget`: what logins remember for you.

use crate::bus::Daemon;
use crate::commands::Context;
use crate::error::CliError;
use crate::printer::Printer;

pub fn set(ctx: &Context, on: bool) -> Result<(), CliError> {
    let printer = Printer::new(ctx.interactive, ctx.json);
    let daemon = Daemon::connect(&ctx.address)?;
    daemon.set_remember_addresses(on)?;
    if ctx.json {
        printer.data(&serde_json::json!({ "remember_addresses": on }).to_string())?;
    }
    printer.human(if on {
        "On: after a second factor from a remote address, logins from that address are not \
         asked again for a while (`herarxctl status` lists them)."
    } else {
        "Off: every remote login asks for the second factor; remembered addresses are forgotten."
    })
}

pub fn forget(ctx: &Context) -> Result<(), CliError> {
    let printer = Printer::new(ctx.interactive, ctx.json);
    let daemon = Daemon::connect(&ctx.address)?;
    let n = daemon.forget()?;
    if ctx.json {
        printer.data(&serde_json::json!({ "forgotten": n }).to_string())?;
    }
    let what = if n == 1 { "entry" } else { "entries" };
    printer.human(&format!(
        "Forgot {n} remembered {what} (addresses and SSH keys): the next login from each asks \
         for the second factor again."
    ))
}
