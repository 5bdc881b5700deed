//! `herarxctl config check [FILE]`: validates a herarx.toml without the daemon, explains every
//! problem (with the key's path and a fix) and summarises the policy it sets.

use std::io::Write;
use std::path::Path;

use herarx_config::{Config, DEFAULT_CONFIG_PATH, NoFactorPolicy, Required};

use crate::error::CliError;
use crate::output::safe;

/// What a check found.
#[derive(Debug, PartialEq, Eq)]
pub struct Report {
    pub file: String,
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
    /// The effective policy in a few lines; empty when there are problems.
    pub summary: Vec<String>,
    /// Whether the file could be read at all.
    pub readable: bool,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks `text` (the content of `file`); `group_exists` tells whether a group is known on
/// this host (groups that are not are warnings: they may come from a directory later).
pub fn check_text(file: &str, text: &str, group_exists: &dyn Fn(&str) -> bool) -> Report {
    let mut report = Report {
        file: file.to_owned(),
        problems: Vec::new(),
        warnings: Vec::new(),
        summary: Vec::new(),
        readable: true,
    };
    match Config::check_text(text) {
        Err(problems) => report.problems = problems,
        Ok(config) => {
            report.warnings = missing_groups(&config, group_exists);
            report.summary = summary(&config);
        }
    }
    report
}

/// Reads and checks `path`. A file that cannot be read is one problem naming it.
pub fn check_file(path: &Path, group_exists: &dyn Fn(&str) -> bool) -> Report {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => check_text(&file, &text, group_exists),
        Err(e) => {
            let fix = if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "give the file to check (herarxctl config check FILE), or copy the example \
                     shipped with Herarx to {DEFAULT_CONFIG_PATH}"
                )
            } else {
                "check its permissions (it is usually readable by root only: run as root)".into()
            };
            Report {
                file,
                problems: vec![format!("cannot read it: {e}; {fix}")],
                warnings: Vec::new(),
                summary: Vec::new(),
                readable: false,
            }
        }
    }
}

fn missing_groups(config: &Config, group_exists: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut named: Vec<(String, &str)> = Vec::new();
    for (key, list) in [
        ("login.required_groups", &config.login.required_groups),
        ("login.exempt_groups", &config.login.exempt_groups),
    ] {
        for (i, g) in list.iter().enumerate() {
            named.push((format!("{key}[{i}]"), g));
        }
    }
    if !config.admin.group.is_empty() {
        named.push(("admin.group".into(), &config.admin.group));
    }
    named
        .into_iter()
        .filter(|(_, g)| !group_exists(g))
        .map(|(key, g)| {
            format!(
                "{key} = {g:?}: no such group on this host (yet); create it (groupadd {g}) or \
                 check the spelling"
            )
        })
        .collect()
}

/// `900` → `15m`, `86400` → `1d`, `90` → `90s`: the largest unit that divides exactly.
fn span(secs: u64) -> String {
    match secs {
        0 => "0s".into(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn groups(list: &[String]) -> String {
    list.join(", ")
}

/// The policy `config` sets, in words (it is valid).
pub fn summary(config: &Config) -> Vec<String> {
    let login = &config.login;
    let mut lines = Vec::new();
    let mut who = match config.required() {
        Some(Required::Groups) => format!(
            "2FA required for: members of {}",
            groups(&login.required_groups)
        ),
        _ => "2FA required for: everyone".to_owned(),
    };
    if !login.exempt_groups.is_empty() {
        who.push_str(&format!(
            " (except members of {}, unless they enrolled)",
            groups(&login.exempt_groups)
        ));
    }
    lines.push(who);
    let without = match config.no_factor_policy() {
        Some(NoFactorPolicy::Enroll) => {
            let window = match config.enroll_window_seconds() {
                0 => "with no time limit".to_owned(),
                s => format!("within {} of first being seen", span(s)),
            };
            format!(
                "without a factor: enrol during the login {window}, from {} logins \
                 (then refused)",
                match login.enroll_from.as_str() {
                    "trusted" => "local or trusted-network",
                    "anywhere" => "any",
                    _ => "local",
                }
            )
        }
        Some(NoFactorPolicy::Allow) => {
            let until = if login.allow_until.is_empty() {
                String::new()
            } else {
                format!(" until {} (UTC), refused from then on", login.allow_until)
            };
            format!("without a factor: the password alone is enough{until}")
        }
        _ => "without a factor: refused, and told how to enrol".to_owned(),
    };
    lines.push(without);
    let l = &config.lockout;
    lines.push(format!(
        "lockout: {} failures within {} lock that source (all remote sources together: {}), \
         for {} doubling up to {}",
        l.max_failures,
        span(l.window_seconds),
        l.remote_max_failures,
        span(l.lockout_seconds),
        span(l.max_lockout_seconds)
    ));
    let trusted = if config.network.trusted.is_empty() {
        "none".to_owned()
    } else {
        config.network.trusted.join(", ")
    };
    lines.push(format!("trusted networks (no 2FA): {trusted}"));
    for (service, s) in &config.services {
        if let Some(list) = &s.trusted_networks {
            lines.push(format!(
                "  for {service}: {}",
                if list.is_empty() {
                    "none".to_owned()
                } else {
                    list.join(", ")
                }
            ));
        }
    }
    lines.push(format!(
        "admin: {}",
        if config.admin.group.is_empty() {
            "root only".to_owned()
        } else {
            format!("root and members of {}", config.admin.group)
        }
    ));
    lines
}

/// The lines printed for `report` (human output).
pub fn human(report: &Report) -> Vec<String> {
    let file = safe(&report.file);
    let mut lines = Vec::new();
    if report.ok() {
        lines.push(format!("{file}: OK"));
    }
    for p in &report.problems {
        lines.push(format!("{file}: {}", safe(p)));
    }
    for w in &report.warnings {
        lines.push(format!("{file}: warning: {}", safe(w)));
    }
    for s in &report.summary {
        lines.push(format!("  {}", safe(s)));
    }
    lines
}

pub fn json(report: &Report) -> Result<String, CliError> {
    serde_json::to_string(&serde_json::json!({
        "file": report.file,
        "ok": report.ok(),
        "problems": report.problems,
        "warnings": report.warnings,
    }))
    .map_err(|e| CliError::Io(format!("cannot write JSON: {e}")))
}

fn group_exists(name: &str) -> bool {
    // A lookup that fails (NSS down) is not a finding: only "no such group" warns.
    !matches!(nix::unistd::Group::from_name(name), Ok(None))
}

/// `herarxctl config check [FILE]`: exit 0 when the file is valid, 2 otherwise.
pub fn check(json_output: bool, path: &Path) -> Result<(), CliError> {
    let report = check_file(path, &group_exists);
    let mut out = std::io::stdout().lock();
    let text = if json_output {
        json(&report)?
    } else {
        human(&report).join("\n")
    };
    writeln!(out, "{text}").map_err(|e| CliError::Io(format!("cannot write to stdout: {e}")))?;
    if report.ok() {
        Ok(())
    } else if !report.readable {
        Err(CliError::Usage(format!(
            "cannot check {}: it could not be read",
            safe(&report.file)
        )))
    } else {
        Err(CliError::Usage(format!(
            "{} is not a valid Herarx configuration ({} problem{}); fix it and run \
             `herarxctl config check` again",
            safe(&report.file),
            report.problems.len(),
            if report.problems.len() == 1 { "" } else { "s" }
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_groups(_: &str) -> bool {
        true
    }

    #[test]
    fn a_valid_file_is_ok_with_a_summary() {
        let r = check_text("h.toml", "", &all_groups);
        assert!(r.ok());
        let lines = human(&r);
        assert_eq!(lines[0], "h.toml: OK");
        assert!(
            lines.contains(&"  2FA required for: everyone".to_owned()),
            "{lines:?}"
        );
        assert!(
            lines.contains(&"  without a factor: refused, and told how to enrol".to_owned()),
            "{lines:?}"
        );
        assert!(
            lines.contains(
                &"  lockout: 5 failures within 15m lock that source (all remote sources together: 20), for 15m doubling up to 1d"
                    .to_owned()
            ),
            "{lines:?}"
        );
        assert!(
            lines.contains(&"  trusted networks (no 2FA): none".to_owned()),
            "{lines:?}"
        );
    }

    #[test]
    fn problems_are_prefixed_with_the_file() {
        let r = check_text(
            "h.toml",
            "[login]\nrequired = \"groups\"\nenroll_window = \"a week\"\n",
            &all_groups,
        );
        assert!(!r.ok());
        let lines = human(&r);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines.iter().all(|l| l.starts_with("h.toml: login.")),
            "{lines:?}"
        );
        let r = check_text("h.toml", "[login]\nno_facter = 1\n", &all_groups);
        assert!(human(&r)[0].starts_with("h.toml: line 2: unknown key login.no_facter"));
    }

    #[test]
    fn missing_groups_are_warnings() {
        let r = check_text(
            "h.toml",
            "[login]\nrequired = \"groups\"\nrequired_groups = [\"ops\", \"wheel\"]\n\
             [admin]\ngroup = \"hx-admin\"\n",
            &|g| g == "wheel",
        );
        assert!(r.ok());
        assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
        assert!(r.warnings[0].starts_with("login.required_groups[0] = \"ops\": no such group"));
        assert!(r.warnings[1].starts_with("admin.group = \"hx-admin\""));
        assert!(human(&r).contains(&"h.toml: warning: admin.group = \"hx-admin\": no such group on this host (yet); create it (groupadd hx-admin) or check the spelling".to_owned()));
    }

    #[test]
    fn json_has_the_four_fields() {
        let r = check_text("h.toml", "[totp]\ndigits = 9\n", &all_groups);
        let v: serde_json::Value = serde_json::from_str(&json(&r).unwrap()).unwrap();
        assert_eq!(v["file"], "h.toml");
        assert_eq!(v["ok"], false);
        assert_eq!(v["problems"].as_array().unwrap().len(), 1);
        assert_eq!(v["warnings"].as_array().unwrap().len(), 0);
    }

    #[test]
    fn an_unreadable_file_is_named_with_a_fix() {
        let r = check_file(Path::new("/nonexistent/h.toml"), &all_groups);
        assert!(!r.ok());
        assert!(
            r.problems[0].starts_with("cannot read it:"),
            "{:?}",
            r.problems
        );
        assert!(human(&r)[0].starts_with("/nonexistent/h.toml: cannot read it"));
    }

    #[test]
    fn spans() {
        assert_eq!(span(900), "15m");
        assert_eq!(span(86_400), "1d");
        assert_eq!(span(7200), "2h");
        assert_eq!(span(90), "90s");
    }
}
