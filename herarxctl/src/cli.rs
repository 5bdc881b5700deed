//! The command line, as clap sees it. The command names are the contract (DESIGN.md).

use clap::{Args, Parser, Subcommand, ValueEnum};

pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  done
  1  failed (daemon error, enrolment expired, confirmation declined, ...)
  2  usage or bad input (unknown option, missing --yes without a terminal, stdin ended,
     no such factor, invalid bus address)
  3  herarxd unreachable (no bus, daemon not running, no answer in time)
  4  refused (permission denied, wrong code, step-up needed, account locked)

When stdin is not a terminal, prompts go to stderr, answers are read one per line from stdin in
the order of the prompts, and stdout carries only the result (a URI, JSON).";

/// Manage your own second factors for Herarx logins.
#[derive(Parser, Debug)]
#[command(name = "herarxctl", version, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug)]
pub struct Global {
    /// D-Bus address of the bus herarxd is on [default: $DBUS_SYSTEM_BUS_ADDRESS, else the
    /// system bus]
    #[arg(long, global = true, value_name = "ADDRESS")]
    pub bus: Option<String>,
    /// Print results as JSON on stdout (one object per line)
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show your factors, failed attempts, lockout and the policy that applies to you
    Status,
    /// Authenticator apps (TOTP)
    Totp {
        #[command(subcommand)]
        command: TotpCommand,
    },
    /// Remove one of your factors (asks for a code from one of them)
    Remove {
        /// The factor's id, as `herarxctl status` shows it
        id: String,
        /// Do not ask for confirmation (required when stdin is not a terminal)
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Print the shell completion script for bash, zsh or fish on stdout
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: CompletionShell,
    },
}

/// The shells `herarxctl completions` writes scripts for.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Subcommand, Debug)]
pub enum TotpCommand {
    /// Enrol an authenticator app: shows a QR code and the otpauth:// URI, then asks for a code
    Add {
        /// A name to tell this authenticator apart, e.g. "phone" [default: chosen by herarxd]
        #[arg(long)]
        name: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("herarxctl").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_are_accepted_before_the_subcommand() {
        let cli = parse(&["--bus", "unix:path=/tmp/b", "--json", "status"]);
        assert_eq!(cli.global.bus.as_deref(), Some("unix:path=/tmp/b"));
        assert!(cli.global.json);
        assert!(matches!(cli.command, Command::Status));
    }

    #[test]
    fn global_options_are_accepted_after_the_subcommand() {
        let cli = parse(&[
            "totp",
            "add",
            "--name",
            "phone",
            "--bus",
            "unix:path=/tmp/b",
            "--json",
        ]);
        assert_eq!(cli.global.bus.as_deref(), Some("unix:path=/tmp/b"));
        assert!(cli.global.json);
        match cli.command {
            Command::Totp {
                command: TotpCommand::Add { name },
            } => assert_eq!(name.as_deref(), Some("phone")),
            other => panic!("parsed as {other:?}"),
        }
        let cli = parse(&["remove", "f1", "--json", "--yes"]);
        assert!(cli.global.json);
        assert!(matches!(cli.command, Command::Remove { ref id, yes: true } if id == "f1"));
    }

    #[test]
    fn defaults_are_no_bus_option_and_human_output() {
        let cli = parse(&["remove", "f1"]);
        assert_eq!(cli.global.bus, None);
        assert!(!cli.global.json);
        assert!(matches!(cli.command, Command::Remove { yes: false, .. }));
    }

    #[test]
    fn completions_take_one_of_three_shells() {
        for (name, shell) in [
            ("bash", CompletionShell::Bash),
            ("zsh", CompletionShell::Zsh),
            ("fish", CompletionShell::Fish),
        ] {
            let cli = parse(&["completions", name]);
            assert!(matches!(cli.command, Command::Completions { shell: s } if s == shell));
        }
        for bad in [&["completions"][..], &["completions", "tcsh"]] {
            let err = Cli::try_parse_from(std::iter::once("herarxctl").chain(bad.iter().copied()))
                .unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn usage_errors_exit_2_and_help_lists_the_exit_codes() {
        let err = Cli::try_parse_from(["herarxctl", "remove"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let err = Cli::try_parse_from(["herarxctl", "frobnicate"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("Exit codes:"), "{help}");
        assert!(help.contains("3  herarxd unreachable"), "{help}");
    }
}
