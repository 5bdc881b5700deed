//! `herarxctl primary ID` and `herarxctl rename ID NAME`: small changes to one of your factors.
//! Neither needs a code: they choose among, and label, factors that already log you in.

use crate::bus::Daemon;
use crate::commands::Context;
use crate::commands::totp::check_name;
use crate::error::CliError;
use crate::output;
use crate::printer::Printer;

pub fn primary(ctx: &Context, id: &str) -> Result<(), CliError> {
    let printer = Printer::new(ctx.interactive, ctx.json);
    let daemon = Daemon::connect(&ctx.address)?;
    let status = daemon.status()?;
    let mut factor = status
        .factors
        .iter()
        .find(|f| f.id == id)
        .cloned()
        .ok_or_else(|| CliError::NoSuchFactor(output::safe(id).into_owned()))?;
    daemon.set_primary(id)?;
    factor.primary = true;
    if ctx.json {
        printer.data(&output::factor_json(&factor)?)?;
    }
    printer.human(&format!(
        "Logins now offer {} first.",
        output::factor_label(&factor)
    ))
}

pub fn rename(ctx: &Context, id: &str, name: &str) -> Result<(), CliError> {
    if name.trim().is_empty() {
        return Err(CliError::Usage(
            "the new name is empty: give one, e.g. \"work phone\"".to_owned(),
        ));
    }
    check_name(name).map_err(|_| {
        CliError::Usage(format!(
            "the new name must be at most {} bytes, without control characters",
            herarx_proto::limits::FACTOR_NAME_MAX
        ))
    })?;
    let printer = Printer::new(ctx.interactive, ctx.json);
    let daemon = Daemon::connect(&ctx.address)?;
    let factor = daemon.rename_factor(id, name)?;
    if ctx.json {
        printer.data(&output::factor_json(&factor)?)?;
    }
    printer.human(&format!("Renamed: {}.", output::factor_label(&factor)))
}
