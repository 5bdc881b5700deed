//! Command line.

use std::path::PathBuf;

use clap::Parser;

/// Herarx daemon: policy, encrypted factor store and factor verification over D-Bus.
#[derive(Parser, Debug, Clone, Default, PartialEq, Eq)]
#[command(name = "herarxd", version)]
pub struct Args {
    /// Configuration file [default: /etc/herarx/herarx.toml if it exists, else built-in
    /// defaults].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// State directory holding the store; overrides store.state_dir.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// D-Bus address to serve on instead of the system bus, e.g. unix:path=/run/x/bus.
    #[arg(long, value_name = "ADDRESS")]
    pub bus: Option<String>,

    /// Unix datagram socket to send syslog lines to instead of /dev/log.
    #[arg(long, value_name = "PATH")]
    pub log_socket: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_options_parse() {
        let a = Args::try_parse_from([
            "herarxd",
            "--config",
            "/c.toml",
            "--state-dir",
            "/s",
            "--bus",
            "unix:path=/b",
            "--log-socket",
            "/l",
        ])
        .unwrap();
        assert_eq!(a.config, Some(PathBuf::from("/c.toml")));
        assert_eq!(a.state_dir, Some(PathBuf::from("/s")));
        assert_eq!(a.bus.as_deref(), Some("unix:path=/b"));
        assert_eq!(a.log_socket, Some(PathBuf::from("/l")));
        assert_eq!(Args::try_parse_from(["herarxd"]).unwrap(), Args::default());
        assert!(Args::try_parse_from(["herarxd", "--bogus"]).is_err());
    }
}
