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
    /// D-Bus address of the bus herarxd is on [default: $DBUS_SYSTEM_BUS_ADDRESS (not for
    /// root), else the system bus]
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
    /// Security keys (FIDO2): register, list, rename and remove your keys
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Codes by email: add an address (a code is sent there to confirm it)
    Email {
        #[command(subcommand)]
        command: ContactCommand,
    },
    /// Codes by text message: add a phone number (a code is sent there to confirm it)
    Sms {
        #[command(subcommand)]
        command: ContactCommand,
    },
    /// Remove one of your factors (asks for a code from one of them)
    Remove {
        /// The factor's id, as `herarxctl status` shows it
        id: String,
        /// Do not ask for confirmation (required when stdin is not a terminal)
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Check a Herarx configuration file (no daemon needed)
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Backup codes: one-time codes for when your authenticator is not at hand
    BackupCodes {
        #[command(subcommand)]
        command: BackupCodesCommand,
    },
    /// Make one of your factors the one logins offer first
    Primary {
        /// The factor's id, as `herarxctl status` shows it
        id: String,
    },
    /// Give one of your factors a new name
    Rename {
        /// The factor's id, as `herarxctl status` shows it
        id: String,
        /// The new name, e.g. "work phone"
        name: String,
    },
    /// "Only ask from new addresses": turn it on or off for yourself (when policy allows)
    Remember {
        /// `on`: a remote address where you passed the second factor is not asked again for
        /// a while; `off`: always ask (and forget the remembered addresses)
        state: OnOff,
    },
    /// Forget every remote address and SSH key that logins remember for you
    Forget,
    /// Other users' factors, lockouts and the audit trail (root and members of admin.group)
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Print the shell completion script for bash, zsh or fish on stdout
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: CompletionShell,
    },
}

/// `herarxctl email` and `herarxctl sms`.
#[derive(Subcommand, Debug)]
pub enum ContactCommand {
    /// Add ADDRESS (email) or NUMBER (sms, international form: +441234567890): a code is
    /// sent there and must be entered here
    Add {
        /// The email address, or the phone number with its country code
        destination: String,
        /// A name to tell it apart, e.g. "work" [default: "email" or "phone"]
        #[arg(long)]
        name: Option<String>,
        /// Replace this factor (its id, as `herarxctl status` shows it) once the new one is
        /// confirmed
        #[arg(long, value_name = "ID")]
        replace: Option<String>,
    },
    /// List your addresses (or numbers), masked
    List,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Validate FILE and explain each problem with the key and a fix; summarise the policy.
    /// Exit 0 when valid, 2 otherwise
    Check {
        /// The file to check
        #[arg(default_value = "/etc/herarx/herarx.toml")]
        file: std::path::PathBuf,
    },
}

/// `herarxctl admin`: the daemon checks at each call that the caller is root or a member of
/// `admin.group`. There is deliberately no way to enrol for someone else.
#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Show a user's factors (never secrets), backup codes left, lockouts and policy
    Status {
        /// The account name
        user: String,
    },
    /// Remove all of a user's factors, backup codes, pending enrolments and lockouts
    Reset {
        /// The account name
        user: String,
        /// Do not ask for confirmation (required when stdin is not a terminal)
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Clear a user's failed attempts and lockouts
    Unlock {
        /// The account name
        user: String,
    },
    /// List users with any Herarx state (factors, backup codes, failures), by name
    List {
        /// Start after this user name (the last one of the previous page)
        #[arg(long, value_name = "NAME")]
        after: Option<String>,
        /// Users per page, 1 to 1000 [default: 100; 1000 with --all]
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
        /// Page through every user
        #[arg(long)]
        all: bool,
    },
    /// Show the audit trail, newest first
    Log {
        /// Only rows about this user
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// Only rows since WHEN: a span ago (`1h`, `7d`) or an RFC 3339 time
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// Only rows with an id below ID (to page back)
        #[arg(long, value_name = "ID")]
        before: Option<u64>,
        /// Rows to show, 1 to 1000 [default: 50]
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
    },
}

/// `on` or `off`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnOff {
    On,
    Off,
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
        /// Replace factor ID with the new authenticator (moving to a new phone): the old one
        /// is removed when the new one is confirmed
        #[arg(long, value_name = "ID")]
        replace: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Register a security key plugged into this machine: touch it (and give its PIN when
    /// the key or policy needs one)
    Add {
        /// A name to tell this key apart, e.g. "YubiKey office" [default: chosen by herarxd]
        #[arg(long)]
        name: Option<String>,
        /// Ask for the key's PIN before the touch (hidden on a terminal)
        #[arg(long)]
        pin: bool,
        /// Read the key's PIN from the next line of stdin (scripts), after the step-up code
        #[arg(long, conflicts_with = "pin")]
        pin_stdin: bool,
    },
    /// List your security keys
    List,
    /// Give one of your security keys a new name
    Rename {
        /// The key's id, as `herarxctl key list` shows it
        id: String,
        /// The new name, e.g. "YubiKey spare"
        name: String,
    },
    /// Remove one of your security keys (asks for a code from one of your factors)
    Remove {
        /// The key's id, as `herarxctl key list` shows it
        id: String,
        /// Do not ask for confirmation (required when stdin is not a terminal)
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum BackupCodesCommand {
    /// Make a new set of 10 backup codes (the previous set stops working) and print it once
    Generate,
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
                command:
                    TotpCommand::Add {
                        name,
                        replace: None,
                    },
            } => assert_eq!(name.as_deref(), Some("phone")),
            other => panic!("parsed as {other:?}"),
        }
        let cli = parse(&["remove", "f1", "--json", "--yes"]);
        assert!(cli.global.json);
        assert!(matches!(cli.command, Command::Remove { ref id, yes: true } if id == "f1"));
    }

    #[test]
    fn the_issue_4_commands_parse() {
        assert!(matches!(
            parse(&["totp", "add", "--replace", "f1"]).command,
            Command::Totp { command: TotpCommand::Add { replace: Some(ref r), name: None } } if r == "f1"
        ));
        assert!(matches!(
            parse(&["backup-codes", "generate", "--json"]).command,
            Command::BackupCodes {
                command: BackupCodesCommand::Generate
            }
        ));
        assert!(
            matches!(parse(&["primary", "f1"]).command, Command::Primary { ref id } if id == "f1")
        );
        assert!(matches!(
            parse(&["rename", "f1", "work phone"]).command,
            Command::Rename { ref id, ref name } if id == "f1" && name == "work phone"
        ));
        for bad in [&["rename", "f1"][..], &["primary"], &["backup-codes"]] {
            let err = Cli::try_parse_from(std::iter::once("herarxctl").chain(bad.iter().copied()))
                .unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
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
