//! Who must have a second factor, and what a login gets while they have none.
//!
//! Plain functions of the configuration, the account database and the time, so the login,
//! `herarxctl status` and `herarxctl admin status` all say the same thing.

use crate::config::{Config, EnrollFrom, NoFactorPolicy, Required};
use crate::users::UserDb;

/// Whether policy requires a second factor of a user, and why (one phrase, for status output
/// and the audit trail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub required: bool,
    pub reason: String,
}

/// Exempt groups win over everything; then `everyone`, or membership of a required group.
/// An unknown user is treated like a known one outside every group, so a login cannot tell
/// the two apart.
pub fn requirement(config: &Config, users: &dyn UserDb, user: &str) -> Requirement {
    let login = &config.login;
    let needs_groups =
        !login.exempt_groups.is_empty() || config.required() == Some(Required::Groups);
    let groups = if needs_groups {
        users.groups_of(user).unwrap_or_default()
    } else {
        Vec::new()
    };
    if let Some(g) = login.exempt_groups.iter().find(|g| groups.contains(g)) {
        return Requirement {
            required: false,
            reason: format!("exempt: member of group {g}"),
        };
    }
    match config.required() {
        Some(Required::Groups) => match login.required_groups.iter().find(|g| groups.contains(g)) {
            Some(g) => Requirement {
                required: true,
                reason: format!("required: member of group {g}"),
            },
            None => Requirement {
                required: false,
                reason: "not required: in none of login.required_groups".into(),
            },
        },
        // `everyone`, and (never after validation) an unknown value: fail closed.
        _ => Requirement {
            required: true,
            reason: "required of everyone".into(),
        },
    }
}

/// The no-factor policy that applies to a user, as status output names it: `allow` when
/// nothing is required of them, else `enroll`, `deny` or `allow` (the old name `ignore`
/// shown as `allow`).
pub fn no_factor_name(config: &Config, requirement: &Requirement) -> String {
    if !requirement.required {
        return NoFactorPolicy::Allow.as_str().to_owned();
    }
    config
        .no_factor_policy()
        .map_or_else(|| config.login.no_factor.clone(), |p| p.as_str().to_owned())
}

/// What a login of a user without any factor gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoFactor {
    /// Let through this module (`PAM_IGNORE`); the reason is for the audit trail.
    Allow(String),
    /// Refused; the reason is for the audit trail.
    Deny(String),
    /// Enrol inside the login.
    Enroll,
}

/// Where the login comes from, as far as the enrolment policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Local,
    /// Remote, from one of the service's trusted networks.
    Trusted,
    Remote,
}

/// The no-factor policy applied to one login at `now`. `window_start` is when Herarx first
/// saw the account or an admin last reset it.
pub fn no_factor(
    config: &Config,
    requirement: &Requirement,
    known_user: bool,
    window_start: u64,
    origin: Origin,
    now: u64,
) -> NoFactor {
    if !requirement.required {
        return NoFactor::Allow(requirement.reason.clone());
    }
    match config.no_factor_policy() {
        Some(NoFactorPolicy::Allow) => match config.allow_until() {
            Some(deadline) if now >= deadline => NoFactor::Deny(format!(
                "no factor enrolled; login.no_factor = allow ended on {}",
                config.login.allow_until
            )),
            _ => NoFactor::Allow("no factor enrolled; login.no_factor = allow".into()),
        },
        Some(NoFactorPolicy::Enroll) => {
            let window = config.enroll_window_seconds();
            let from_ok = match config.enroll_from().unwrap_or(EnrollFrom::Local) {
                EnrollFrom::Local => origin == Origin::Local,
                EnrollFrom::Trusted => origin != Origin::Remote,
                EnrollFrom::Anywhere => true,
            };
            if !known_user {
                NoFactor::Deny("no factor enrolled; no such account to enrol".into())
            } else if window > 0 && now >= window_start.saturating_add(window) {
                NoFactor::Deny(
                    "no factor enrolled; the enrolment window (login.enroll_window) has closed"
                        .into(),
                )
            } else if !from_ok {
                NoFactor::Deny(format!(
                    "no factor enrolled; enrolment in the login is not offered here \
                     (login.enroll_from = {})",
                    config.login.enroll_from
                ))
            } else {
                NoFactor::Enroll
            }
        }
        // `deny`, and (never after validation) an unknown value: fail closed.
        _ => NoFactor::Deny("no factor enrolled; login.no_factor = deny".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::FixedUsers;

    fn config(text: &str) -> Config {
        let c = Config::parse(text).unwrap();
        c.validate().unwrap();
        c
    }

    fn users() -> FixedUsers {
        FixedUsers::new(&[("alice", 1000), ("bob", 1001), ("carol", 1002)])
            .with_groups("alice", &["alice", "wheel"])
            .with_groups("bob", &["bob", "ci"])
    }

    #[test]
    fn everyone_by_default_and_exempt_groups_win() {
        let c = Config::default();
        for u in ["alice", "bob", "nosuch"] {
            assert!(requirement(&c, &users(), u).required, "{u}");
        }
        let c = config("[login]\nexempt_groups = [\"ci\"]\n");
        let r = requirement(&c, &users(), "bob");
        assert_eq!(
            (r.required, r.reason.as_str()),
            (false, "exempt: member of group ci")
        );
        assert!(requirement(&c, &users(), "alice").required);
    }

    #[test]
    fn groups_mode_requires_members_only_and_unknown_users_look_like_non_members() {
        let c = config("[login]\nrequired = \"groups\"\nrequired_groups = [\"wheel\"]\n");
        let r = requirement(&c, &users(), "alice");
        assert_eq!(
            (r.required, r.reason.as_str()),
            (true, "required: member of group wheel")
        );
        assert_eq!(
            requirement(&c, &users(), "bob"),
            requirement(&c, &users(), "nosuch")
        );
        assert!(!requirement(&c, &users(), "carol").required);
    }

    #[test]
    fn the_no_factor_policies() {
        let req = Requirement {
            required: true,
            reason: "required of everyone".into(),
        };
        let day = 86_400;
        let run = |text: &str, known: bool, origin: Origin, now: u64| {
            no_factor(&config(text), &req, known, 1000, origin, now)
        };
        assert!(matches!(run("", true, Origin::Local, 0), NoFactor::Deny(_)));
        assert!(matches!(
            run("[login]\nno_factor = \"allow\"\n", true, Origin::Remote, 0),
            NoFactor::Allow(_)
        ));
        let until = "[login]\nno_factor = \"allow\"\nallow_until = \"1970-01-03\"\n";
        assert!(matches!(
            run(until, true, Origin::Local, 2 * day - 1),
            NoFactor::Allow(_)
        ));
        assert!(matches!(
            run(until, true, Origin::Local, 2 * day),
            NoFactor::Deny(_)
        ));
        let enroll = "[login]\nno_factor = \"enroll\"\n";
        assert_eq!(
            run(enroll, true, Origin::Local, 1000 + 7 * day - 1),
            NoFactor::Enroll
        );
        assert!(matches!(
            run(enroll, true, Origin::Local, 1000 + 7 * day),
            NoFactor::Deny(_)
        ));
        assert!(matches!(
            run(enroll, true, Origin::Remote, 1000),
            NoFactor::Deny(_)
        ));
        assert!(matches!(
            run(enroll, true, Origin::Trusted, 1000),
            NoFactor::Deny(_)
        ));
        assert!(matches!(
            run(enroll, false, Origin::Local, 1000),
            NoFactor::Deny(_)
        ));
        let trusted =
            "[login]\nno_factor = \"enroll\"\nenroll_from = \"trusted\"\nenroll_window = \"0\"\n";
        assert_eq!(
            run(trusted, true, Origin::Trusted, 10 * 365 * day),
            NoFactor::Enroll
        );
        assert!(matches!(
            run(trusted, true, Origin::Remote, 1000),
            NoFactor::Deny(_)
        ));
        let anywhere = "[login]\nno_factor = \"enroll\"\nenroll_from = \"anywhere\"\n";
        assert_eq!(run(anywhere, true, Origin::Remote, 1000), NoFactor::Enroll);
        let not_required = Requirement {
            required: false,
            reason: "exempt: member of group ci".into(),
        };
        assert_eq!(
            no_factor(&config(""), &not_required, true, 0, Origin::Remote, 0),
            NoFactor::Allow("exempt: member of group ci".into())
        );
    }
}
