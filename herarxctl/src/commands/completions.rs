//! `herarxctl completions SHELL`: the shell completion script, generated from the same clap
//! definition that parses the command line, so it cannot drift from the real commands. Needs
//! no bus and no daemon: packagers run it at build time.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::{Cli, CompletionShell};
use crate::error::CliError;

/// The script for `shell`, as it is printed.
pub fn script(shell: CompletionShell) -> Vec<u8> {
    let shell = match shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    let mut command = Cli::command();
    let name = command.get_name().to_owned();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, name, &mut out);
    out
}

pub fn run(shell: CompletionShell) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(&script(shell))
        .and_then(|()| out.flush())
        .map_err(|e| CliError::Io(format!("cannot write to stdout: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHELLS: [CompletionShell; 3] = [
        CompletionShell::Bash,
        CompletionShell::Zsh,
        CompletionShell::Fish,
    ];

    #[test]
    fn every_shell_gets_a_script_that_knows_every_subcommand() {
        let subcommands: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|c| c.get_name().to_owned())
            .collect();
        assert!(subcommands.len() >= 4, "{subcommands:?}");
        for shell in SHELLS {
            let text = String::from_utf8(script(shell)).unwrap();
            assert!(!text.trim().is_empty(), "{shell:?}");
            assert!(text.contains("herarxctl"), "{shell:?}:\n{text}");
            for name in subcommands.iter().chain(&["add".to_owned()]) {
                assert!(
                    text.contains(name.as_str()),
                    "{shell:?} lacks {name}:\n{text}"
                );
            }
            for option in ["--bus", "--json", "--name", "--yes"] {
                let bare = option.trim_start_matches('-');
                assert!(text.contains(bare), "{shell:?} lacks {option}:\n{text}");
            }
        }
    }

    #[test]
    fn each_shell_gets_its_own_syntax() {
        let bash = String::from_utf8(script(CompletionShell::Bash)).unwrap();
        assert!(bash.contains("complete -F"), "{bash}");
        let zsh = String::from_utf8(script(CompletionShell::Zsh)).unwrap();
        assert!(zsh.starts_with("#compdef herarxctl"), "{zsh}");
        let fish = String::from_utf8(script(CompletionShell::Fish)).unwrap();
        assert!(fish.contains("complete -c herarxctl"), "{fish}");
    }
}
