//! `herarxd [--config FILE] [--state-dir DIR] [--bus ADDRESS] [--log-socket PATH]`
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    herarxd::daemon::run(herarxd::daemon::cli::Args::parse())
}
