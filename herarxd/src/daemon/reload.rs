//! SIGHUP: re-read the configuration file the daemon was started with and put it in force
//! without dropping live login transactions. A file that does not load is refused and the
//! configuration in force is kept; both outcomes are logged and audited.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{Config, ConfigError, DEFAULT_CONFIG_PATH};
use crate::daemon::cli::Args;
use crate::logger::Severity;
use crate::state::State;
use crate::store::{AuditCtx, AuditResult};

/// The audit method of a reload.
pub const METHOD: &str = "config-reload";

/// What a reload did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The new configuration is in force; `warnings` name settings that wait for a restart.
    Applied {
        path: PathBuf,
        warnings: Vec<String>,
    },
    /// The file was refused for these problems; the old configuration stays in force.
    Refused {
        path: PathBuf,
        problems: Vec<String>,
    },
}

/// The file the daemon reads: `--config`, else the default path.
pub fn config_path(args: &Args) -> PathBuf {
    args.config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
}

/// Reads the configuration as startup does (a missing default file means the defaults).
fn read(args: &Args, path: &Path) -> Result<Config, Vec<String>> {
    if args.config.is_none() && !path.exists() {
        return Ok(Config::default());
    }
    Config::load(path).map_err(|e| match e {
        ConfigError::Invalid { problems, .. } => problems,
        ConfigError::Parse { reason, .. } => reason.lines().map(str::to_owned).collect(),
        read @ ConfigError::Read { .. } => vec![read.to_string()],
    })
}

/// Loads the new configuration for `old`: the store's location cannot move while running, so
/// `store.state_dir` and `store.key_file` keep their values in force (and `--state-dir` still
/// overrides); a change there is a warning.
pub fn prepare(
    args: &Args,
    old: &Config,
    path: &Path,
) -> Result<(Config, Vec<String>), Vec<String>> {
    let mut new = read(args, path)?;
    let mut warnings = Vec::new();
    if args.state_dir.is_some() {
        new.store.state_dir = old.store.state_dir.clone();
    }
    if new.store != old.store {
        warnings.push(format!(
            "store.state_dir and store.key_file take effect at restart only; still using \
             state directory {} and key file {} (restart herarxd to move them)",
            old.store.state_dir.display(),
            old.key_file().display()
        ));
        new.store = old.store.clone();
    }
    Ok((new, warnings))
}

/// Re-reads and applies the configuration; logs and audits the outcome.
pub fn reload(state: &State, args: &Args, now: u64) -> Outcome {
    let path = config_path(args);
    let old = state.config();
    let shown = path.display().to_string();
    let ctx = AuditCtx {
        user: "-".into(),
        ..AuditCtx::default()
    };
    let (outcome, entry) = match prepare(args, &old, &path) {
        Ok((new, warnings)) => {
            state.replace_config(Arc::new(new));
            for w in &warnings {
                state.log.log(Severity::Warning, w);
            }
            state.log.log(
                Severity::Notice,
                &format!("configuration reloaded from {shown}"),
            );
            let entry = ctx.entry(
                now,
                METHOD,
                AuditResult::Success,
                format!("reloaded from {shown}"),
            );
            (Outcome::Applied { path, warnings }, entry)
        }
        Err(problems) => {
            state.log.log(
                Severity::Error,
                &format!(
                    "configuration reload from {shown} refused, the configuration in force is \
                     kept; fix the file (check it with `herarxctl config check {shown}`) and send \
                     SIGHUP again: {}",
                    problems.join("; ")
                ),
            );
            let entry = ctx.entry(
                now,
                METHOD,
                AuditResult::Refused,
                format!(
                    "{shown}: {} problem{}: {}",
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" },
                    problems.join("; ")
                ),
            );
            (Outcome::Refused { path, problems }, entry)
        }
    };
    state.record(&entry);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NoFactorPolicy;
    use crate::login::tests::{NOW, code, harness_with};
    use herarx_proto::Action;

    fn args_for(path: &Path) -> Args {
        Args {
            config: Some(path.to_owned()),
            ..Args::default()
        }
    }

    #[test]
    fn a_good_file_is_applied_and_audited() {
        let h = harness_with(Config::default());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("herarx.toml");
        std::fs::write(
            &path,
            "[login]\nno_factor = \"allow\"\n[lockout]\nmax_failures = 7\n",
        )
        .unwrap();
        let outcome = reload(&h.state, &args_for(&path), NOW);
        assert!(matches!(outcome, Outcome::Applied { ref warnings, .. } if warnings.is_empty()));
        let c = h.state.config();
        assert_eq!(c.no_factor_policy(), Some(NoFactorPolicy::Allow));
        assert_eq!(c.lockout.max_failures, 7);
        let a = &h.audit()[0];
        assert_eq!(
            (a.user.as_str(), a.method.as_str(), a.result),
            ("-", METHOD, AuditResult::Success)
        );
        assert!(
            h.log
                .lines()
                .contains(&format!("configuration reloaded from {}", path.display()))
        );
    }

    #[test]
    fn a_broken_file_keeps_the_old_config() {
        let mut first = Config::default();
        first.lockout.max_failures = 4;
        let h = harness_with(first.clone());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("herarx.toml");
        std::fs::write(
            &path,
            "[login]\nno_factor = \"allow\"\nenroll_window = \"a week\"\nrequired = \"groups\"\n",
        )
        .unwrap();
        let outcome = reload(&h.state, &args_for(&path), NOW);
        let Outcome::Refused { problems, .. } = outcome else {
            panic!("applied a broken file");
        };
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(*h.state.config(), first);
        let a = &h.audit()[0];
        assert_eq!(
            (a.method.as_str(), a.result),
            (METHOD, AuditResult::Refused)
        );
        assert!(a.reason.contains("login.enroll_window"), "{}", a.reason);
        let lines = h.log.lines();
        assert!(
            lines.iter().any(|l| l.contains("reload")
                && l.contains("refused")
                && l.contains("login.enroll_window")
                && l.contains("login.required")),
            "{lines:?}"
        );

        std::fs::write(&path, "[login]\nno_facter = \"allow\"\n").unwrap();
        assert!(matches!(
            reload(&h.state, &args_for(&path), NOW),
            Outcome::Refused { .. }
        ));
        std::fs::remove_file(&path).unwrap();
        let Outcome::Refused { problems, .. } = reload(&h.state, &args_for(&path), NOW) else {
            panic!("applied a missing file");
        };
        assert!(
            problems[0].contains(&path.display().to_string()),
            "{problems:?}"
        );
        assert_eq!(*h.state.config(), first);
    }

    #[test]
    fn the_store_location_waits_for_a_restart() {
        let h = harness_with(Config::default());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("herarx.toml");
        std::fs::write(
            &path,
            "[store]\nstate_dir = \"/srv/hx\"\n[totp]\ndigits = 8\n",
        )
        .unwrap();
        let Outcome::Applied { warnings, .. } = reload(&h.state, &args_for(&path), NOW) else {
            panic!("refused");
        };
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("restart"), "{warnings:?}");
        let c = h.state.config();
        assert_eq!(c.store, Config::default().store);
        assert_eq!(c.totp.digits, 8);

        // --state-dir wins over the file, as at startup: no warning.
        let args = Args {
            state_dir: Some("/elsewhere".into()),
            ..args_for(&path)
        };
        std::fs::write(&path, "[store]\nstate_dir = \"/srv/hx\"\n").unwrap();
        let Outcome::Applied { warnings, .. } = reload(&h.state, &args, NOW) else {
            panic!("refused");
        };
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(h.state.config().store, Config::default().store);
    }

    #[test]
    fn a_login_begun_before_a_reload_completes_after_it() {
        let h = harness_with(Config::default());
        h.enrol("alice");
        let caller = crate::login::Caller {
            bus_name: ":1.7".into(),
            uid: 0,
            session: crate::state::session_trust::NO_SESSION,
            login_uid: None,
            keys_allowed: true,
        };
        let (id, _) = h
            .logins
            .begin(
                &caller,
                &crate::login::Request {
                    user: "alice",
                    service: "sshd",
                    rhost: "",
                    tty: "",
                    ssh_auth_info: "",
                },
                NOW,
            )
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("herarx.toml");
        std::fs::write(&path, "[login]\nmax_tries = 5\nno_factor = \"allow\"\n").unwrap();
        assert!(matches!(
            reload(&h.state, &args_for(&path), NOW),
            Outcome::Applied { .. }
        ));
        assert_eq!(h.logins.live(), 1);
        let step = h.logins.answer(":1.7", &id, &code(NOW), NOW + 1).unwrap();
        assert_eq!(step.action, Action::Success);
    }
}
