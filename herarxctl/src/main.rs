//! `herarxctl`: the Herarx command line. Enrol and manage your own second factors by talking
//! to `herarxd` over D-Bus; the daemon acts on the account of whoever calls, so no user name
//! is ever sent.
//!
//! Exit codes (also in `--help`):
//! - 0: done;
//! - 1: failed (daemon error, enrolment expired, confirmation declined, output failed);
//! - 2: usage or bad input (clap errors, `--yes` missing without a terminal, stdin ended
//!   before an answer, no such factor, invalid argument, invalid bus address);
//! - 3: herarxd unreachable (no bus, name not owned, no answer within the method timeout);
//! - 4: refused (permission denied, wrong code, step-up required, account locked, bus policy).
//!
//! When stdin is not a terminal: no QR code and no colour, prompts and commentary on stderr,
//! answers read one per line from stdin in prompt order, stdout carries only the result.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod bus;
mod cli;
mod commands;
mod error;
mod input;
mod otpauth;
mod output;
mod output_admin;
mod printer;
mod qr;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, TotpCommand};
use crate::commands::Context;
use crate::error::CliError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ctx = Context {
        address: bus::address(cli.global.bus.as_deref()),
        json: cli.global.json,
        interactive: input::stdin_is_terminal(),
    };
    match run(&ctx, &cli.command) {
        Ok(()) => ExitCode::from(error::exit::OK),
        Err(e) => {
            // Nothing sensible is left to do if stderr itself is gone.
            let _ = writeln!(
                std::io::stderr(),
                "herarxctl: {}",
                output::safe(&e.message())
            );
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(ctx: &Context, command: &Command) -> Result<(), CliError> {
    match command {
        Command::Status => commands::status::run(ctx),
        Command::Totp {
            command: TotpCommand::Add { name, replace },
        } => commands::totp::add(ctx, name.as_deref(), replace.as_deref()),
        Command::BackupCodes {
            command: cli::BackupCodesCommand::Generate,
        } => commands::backup_codes::generate(ctx),
        Command::Primary { id } => commands::factor::primary(ctx, id),
        Command::Remember { state } => commands::remember::set(ctx, *state == cli::OnOff::On),
        Command::Forget => commands::remember::forget(ctx),
        Command::Rename { id, name } => commands::factor::rename(ctx, id, name),
        Command::Remove { id, yes } => commands::remove::run(ctx, id, *yes),
        Command::Key { command } => run_key(ctx, command),
        Command::Email { command } => commands::contact::run(ctx, "email", command),
        Command::Sms { command } => commands::contact::run(ctx, "sms", command),
        Command::Completions { shell } => commands::completions::run(*shell),
        Command::Admin { command } => run_admin(ctx, command),
        Command::Config {
            command: cli::ConfigCommand::Check { file },
        } => commands::config::check(ctx.json, file),
    }
}

fn run_key(ctx: &Context, command: &cli::KeyCommand) -> Result<(), CliError> {
    use cli::KeyCommand as K;
    use commands::key;
    match command {
        K::Add {
            name,
            pin,
            pin_stdin,
        } => key::add(
            ctx,
            name.as_deref(),
            key::PinSource::from_flags(*pin, *pin_stdin),
        ),
        K::List => key::list(ctx),
        K::Rename { id, name } => key::rename(ctx, id, name),
        K::Remove { id, yes } => key::remove(ctx, id, *yes),
    }
}

fn run_admin(ctx: &Context, command: &cli::AdminCommand) -> Result<(), CliError> {
    use cli::AdminCommand as A;
    use commands::admin;
    match command {
        A::Status { user } => admin::status(ctx, user),
        A::Reset { user, yes } => admin::reset(ctx, user, *yes),
        A::Unlock { user } => admin::unlock(ctx, user),
        A::List { after, limit, all } => admin::list(ctx, after.as_deref(), *limit, *all),
        A::Log {
            user,
            since,
            before,
            limit,
        } => admin::log(ctx, user.as_deref(), since.as_deref(), *before, *limit),
    }
}
