//! The `Admin` interface: root and members of `admin.group` can see any user's state, clear
//! it (reset, unlock), list users and read the audit trail. Authorization is decided at each
//! call from the uid the bus reports; there is deliberately no way to enrol for someone else.
//! Every call leaves an audit row (who looked at or changed what), refusals included.
//!
//! An action that weakens an account (reset, unlock) is root's alone when the account is
//! root's or an admin's: otherwise one admin-group member could reset root or a fellow admin
//! and, with `no_factor = "enroll"`, enrol their own app on it at the next login with a
//! password they know. Reading (status, list, log) stays open to the whole group.

use std::sync::Arc;

use herarx_proto::{AdminUserStatus, AuditRecord, HerarxError, LockInfo, UserSummary, limits};

use crate::factors::requirement;
use crate::state::{State, printable, valid_text};
use crate::store::{AuditCtx, AuditEntry, AuditResult};
use crate::users::Lookup;

pub struct Admin {
    state: Arc<State>,
}

/// An account only root may weaken.
enum Protected {
    /// NSS does not know the name.
    Unknown,
    /// uid 0.
    Root,
    /// A member of this group, the admin group.
    Admin(String),
}

fn invalid_user() -> HerarxError {
    HerarxError::InvalidArgument(format!(
        "Give the account name of the user (1 to {} printable characters).",
        limits::USER_MAX
    ))
}

impl Admin {
    pub fn new(state: Arc<State>) -> Self {
        Admin { state }
    }

    fn record(&self, entry: &AuditEntry) {
        self.state.record(entry);
    }

    /// Whether `uid` may act as an admin: root, or a member of the configured group. May
    /// block on NSS: the D-Bus layer calls this from the blocking pool.
    fn is_admin(&self, uid: u32) -> Result<(), String> {
        if uid == 0 {
            return Ok(());
        }
        let group = self.state.config().admin.group.clone();
        let Some(name) = self.state.users.name_of(uid) else {
            return Err(format!("caller uid {uid} has no account name"));
        };
        if group.is_empty() {
            return Err(format!(
                "caller {name} (uid {uid}) is not root and no admin.group is configured"
            ));
        }
        let groups = self.state.users.groups_of(&name).unwrap_or_default();
        if groups.contains(&group) {
            Ok(())
        } else {
            Err(format!(
                "caller {name} (uid {uid}) is not root nor a member of admin group {group}"
            ))
        }
    }

    /// The audit context of an admin call about `user` (may be empty), or the refusal: an
    /// audit row, a log line and `PermissionDenied`.
    fn authorize(
        &self,
        uid: u32,
        method: &str,
        user: &str,
        now: u64,
    ) -> Result<AuditCtx, HerarxError> {
        let ctx = AuditCtx {
            user: if valid_text(user, limits::USER_MAX) {
                user.to_owned()
            } else {
                printable(user)
            },
            caller_uid: uid,
            ..AuditCtx::default()
        };
        match self.is_admin(uid) {
            Ok(()) => Ok(ctx),
            Err(reason) => {
                self.record(&ctx.entry(now, method, AuditResult::Refused, reason));
                Err(HerarxError::PermissionDenied(
                    "Permission denied: herarxctl admin is for root and members of the admin \
                     group (admin.group in /etc/herarx/herarx.toml). Ask an administrator, or \
                     use `herarxctl status` for your own account."
                        .into(),
                ))
            }
        }
    }

    /// Why `uid` may not weaken `user`'s account, if it may not: only root resets or unlocks
    /// root (any account with uid 0) and members of the admin group. The target is resolved
    /// through NSS, by the name given and by its uid's own name (an alias of an admin is an
    /// admin); a name NSS does not know is refused too (fail closed: root may still clear it).
    fn weakening_refusal(&self, uid: u32, user: &str) -> Option<Protected> {
        if uid == 0 {
            return None;
        }
        let users = &self.state.users;
        let Some(target_uid) = users.uid_of(user) else {
            return Some(Protected::Unknown);
        };
        if target_uid == 0 {
            return Some(Protected::Root);
        }
        let group = self.state.config().admin.group.clone();
        let admin = [Some(user.to_owned()), users.name_of(target_uid)]
            .into_iter()
            .flatten()
            .any(|name| {
                users
                    .groups_of(&name)
                    .is_some_and(|groups| groups.contains(&group))
            });
        admin.then_some(Protected::Admin(group))
    }

    /// [`Admin::authorize_user`] for an action that weakens the account: refused, audited and
    /// logged unless [`Admin::weakening_refusal`] lets it through.
    fn authorize_weakening(
        &self,
        uid: u32,
        method: &str,
        user: &str,
        now: u64,
    ) -> Result<AuditCtx, HerarxError> {
        let ctx = self.authorize_user(uid, method, user, now)?;
        let Some(protected) = self.weakening_refusal(uid, user) else {
            return Ok(ctx);
        };
        let what = match &protected {
            Protected::Unknown => "is not an account this host knows (NSS)".to_owned(),
            Protected::Root => "has uid 0".to_owned(),
            Protected::Admin(group) => format!("is a member of admin group {group}"),
        };
        self.record(&ctx.entry(
            now,
            method,
            AuditResult::Refused,
            format!("caller uid {uid} is not root and {user} {what}: only root may"),
        ));
        Err(HerarxError::PermissionDenied(format!(
            "Permission denied: {user} {what}; only root may reset or unlock it, so that no \
             admin can take over root's or another admin's account. Ask root to run it."
        )))
    }

    /// Authorizes and checks the USER argument (non-empty, bounded, printable).
    fn authorize_user(
        &self,
        uid: u32,
        method: &str,
        user: &str,
        now: u64,
    ) -> Result<AuditCtx, HerarxError> {
        let ctx = self.authorize(uid, method, user, now)?;
        if user.is_empty() || !valid_text(user, limits::USER_MAX) {
            self.record(&ctx.entry(now, method, AuditResult::Refused, "invalid user name"));
            return Err(invalid_user());
        }
        // Every name of an account is that account, as at the login (see `users`): status,
        // reset and unlock act on its canonical name. A name NSS does not know is kept as
        // given, so root can still clear what a deleted account left behind.
        Ok(match self.state.users.account(user) {
            Lookup::Known(a) => AuditCtx {
                user: a.name,
                ..ctx
            },
            _ => ctx,
        })
    }

    pub fn user_status(
        &self,
        uid: u32,
        user: &str,
        now: u64,
    ) -> Result<AdminUserStatus, HerarxError> {
        const METHOD: &str = "admin-status";
        let ctx = self.authorize_user(uid, METHOD, user, now)?;
        let user = ctx.user.as_str();
        let exists = self.state.users.uid_of(user).is_some();
        let config = self.state.config();
        let requirement = requirement::requirement(&config, self.state.users.as_ref(), user);
        let read = self.state.store().admin_user_state(user, now);
        let st = read.map_err(|e| self.state.internal("reading a user's state", &e))?;
        self.record(&ctx.entry(
            now,
            METHOD,
            AuditResult::Success,
            format!("status read by uid {uid}"),
        ));
        let no_factor_policy = crate::factors::requirement::no_factor_name(&config, &requirement);
        Ok(AdminUserStatus {
            user: user.to_owned(),
            exists,
            factors: st.factors,
            backup_codes_left: st.backup_codes_left,
            locks: st
                .locks
                .into_iter()
                .map(|(scope, f)| LockInfo {
                    scope,
                    failures: f.count,
                    locked_until: f.locked_at(now).unwrap_or(0),
                })
                .collect(),
            required: requirement.required,
            no_factor_policy,
            policy_reason: requirement.reason,
        })
    }

    /// Removes everything of `user`; returns how many factors went. Idempotent.
    pub fn reset(&self, uid: u32, user: &str, now: u64) -> Result<u32, HerarxError> {
        let ctx = self.authorize_weakening(uid, "admin-reset", user, now)?;
        // The user hears of it at the addresses the reset is about to remove.
        let emails = self
            .state
            .alert_emails(&ctx.user, crate::alerts::AlertKind::AdminReset);
        let result = self.state.store().admin_reset(&ctx, now);
        let counts = self.state.settle("resetting a user", result)?;
        self.state.alert_to(
            crate::alerts::Alert {
                kind: crate::alerts::AlertKind::AdminReset,
                user: ctx.user.clone(),
                when: now,
                rhost: String::new(),
                service: "herarxctl admin".into(),
                what: format!(
                    "an administrator (uid {uid}) removed every sign-in method of this account \
                     ({} {})",
                    counts.factors,
                    if counts.factors == 1 {
                        "factor"
                    } else {
                        "factors"
                    }
                ),
            },
            emails,
        );
        // A reset means "this account's second factor is not to be trusted": its trusted
        // sessions end too (they live in memory, not in the store).
        let ended = self.state.sessions.forget_user(&ctx.user);
        if ended > 0 {
            self.state.log.log(
                crate::logger::Severity::Notice,
                &format!(
                    "admin reset of {}: {ended} trusted sessions ended",
                    ctx.user
                ),
            );
        }
        Ok(counts.factors)
    }

    /// Clears `user`'s failure counters; returns how many there were. Idempotent.
    pub fn unlock(&self, uid: u32, user: &str, now: u64) -> Result<u32, HerarxError> {
        let ctx = self.authorize_weakening(uid, "admin-unlock", user, now)?;
        let result = self.state.store().admin_unlock(&ctx, now);
        let cleared = self.state.settle("unlocking a user", result)?;
        Ok(cleared)
    }

    pub fn list(
        &self,
        uid: u32,
        after: &str,
        limit: u32,
        now: u64,
    ) -> Result<Vec<UserSummary>, HerarxError> {
        const METHOD: &str = "admin-list";
        let ctx = self.authorize(uid, METHOD, "", now)?;
        if !valid_text(after, limits::USER_MAX) {
            self.record(&ctx.entry(now, METHOD, AuditResult::Refused, "invalid `after`"));
            return Err(HerarxError::InvalidArgument(format!(
                "`after` must be a user name (at most {} printable characters), or empty to \
                 start from the beginning.",
                limits::USER_MAX
            )));
        }
        let read = self.state.store().admin_list(after, limit, now);
        let page = read.map_err(|e| self.state.internal("listing users", &e))?;
        self.record(&ctx.entry(
            now,
            METHOD,
            AuditResult::Success,
            format!("{} users listed by uid {uid}", page.len()),
        ));
        Ok(page)
    }

    pub fn log(
        &self,
        uid: u32,
        user: &str,
        since: u64,
        before: u64,
        limit: u32,
        now: u64,
    ) -> Result<Vec<AuditRecord>, HerarxError> {
        const METHOD: &str = "admin-log";
        // The row names no user: reading a user's trail is not an event of that user.
        let ctx = self.authorize(uid, METHOD, "", now)?;
        if !valid_text(user, limits::USER_MAX) {
            self.record(&ctx.entry(now, METHOD, AuditResult::Refused, "invalid user filter"));
            return Err(invalid_user());
        }
        let read = self.state.store().admin_log(user, since, before, limit);
        let rows = read.map_err(|e| self.state.internal("reading the audit trail", &e))?;
        let filter = if user.is_empty() {
            "everyone".to_owned()
        } else {
            format!("user {user}")
        };
        self.record(&ctx.entry(
            now,
            METHOD,
            AuditResult::Success,
            format!("{} audit rows of {filter} read by uid {uid}", rows.len()),
        ));
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::login::tests::{NOW, harness, harness_with};
    use crate::store::{Scope, lockout};
    use crate::users::FixedUsers;

    /// A harness whose user table has `carol` (1002) and `dave` (1003) in group `hxadmin`,
    /// the admin group, and `toor`, a second name of uid 0.
    fn admin_harness() -> (crate::login::tests::Harness, Admin) {
        let mut config = Config::default();
        config.admin.group = "hxadmin".into();
        let h = harness_with(config.clone());
        let users = FixedUsers::new(&[
            ("root", 0),
            ("toor", 0),
            ("alice", 1000),
            ("bob", 1001),
            ("carol", 1002),
            ("dave", 1003),
        ])
        .with_groups("carol", &["carol", "hxadmin"])
        .with_groups("dave", &["dave", "hxadmin"])
        .with_groups("bob", &["bob", "wheel"]);
        let state = Arc::new(State::new(
            h.state.store.clone(),
            Arc::new(config),
            Arc::new(users),
            h.log.clone(),
            "host.example".into(),
        ));
        let admin = Admin::new(state);
        (h, admin)
    }

    fn lock(h: &crate::login::tests::Harness, user: &str) {
        let store = h.state.store();
        let policy = store.policy().lockout;
        for i in 0..5 {
            lockout::record_failure(store.sqlite().conn(), user, &Scope::Local, NOW + i, &policy)
                .unwrap();
        }
    }

    #[test]
    fn root_and_group_members_may_others_are_refused_and_audited() {
        let (h, admin) = admin_harness();
        h.enrol("alice");
        for uid in [0, 1002] {
            let st = admin.user_status(uid, "alice", NOW).unwrap();
            assert_eq!((st.exists, st.factors.len()), (true, 1), "uid {uid}");
        }
        for uid in [1000, 1001, 4242] {
            let e = admin.user_status(uid, "alice", NOW).unwrap_err();
            assert!(
                matches!(e, HerarxError::PermissionDenied(ref m) if m.contains("admin.group")),
                "{e:?}"
            );
            assert!(matches!(
                admin.reset(uid, "alice", NOW),
                Err(HerarxError::PermissionDenied(_))
            ));
            assert!(matches!(
                admin.unlock(uid, "alice", NOW),
                Err(HerarxError::PermissionDenied(_))
            ));
            assert!(matches!(
                admin.list(uid, "", 10, NOW),
                Err(HerarxError::PermissionDenied(_))
            ));
            assert!(matches!(
                admin.log(uid, "", 0, 0, 10, NOW),
                Err(HerarxError::PermissionDenied(_))
            ));
        }
        let st = admin.user_status(0, "alice", NOW).unwrap();
        assert_eq!(st.factors.len(), 1, "the refused reset did nothing");
        let refused: Vec<_> = h
            .audit()
            .into_iter()
            .filter(|e| e.result == AuditResult::Refused)
            .collect();
        assert_eq!(refused.len(), 15);
        assert!(refused.iter().any(|e| {
            e.caller_uid == 1001
                && e.method == "admin-reset"
                && e.user == "alice"
                && e.reason
                    .contains("not root nor a member of admin group hxadmin")
        }));
        assert!(
            h.log
                .lines()
                .iter()
                .any(|l| l.contains("refused") && l.contains("method=admin-unlock")),
            "a log line"
        );
    }

    #[test]
    fn without_an_admin_group_only_root_may() {
        let h = harness();
        let admin = Admin::new(h.state.clone());
        assert!(admin.list(0, "", 10, NOW).is_ok());
        let e = admin.list(1000, "", 10, NOW).unwrap_err();
        assert!(matches!(e, HerarxError::PermissionDenied(_)));
        let refused = h.audit().into_iter().next().unwrap();
        assert!(
            refused.reason.contains("no admin.group"),
            "{}",
            refused.reason
        );
    }

    #[test]
    fn status_shows_state_and_policy_never_secrets() {
        let (h, admin) = admin_harness();
        h.enrol("alice");
        lock(&h, "alice");
        let st = admin.user_status(0, "alice", NOW + 10).unwrap();
        assert_eq!(st.user, "alice");
        assert!(st.required);
        assert_eq!(st.no_factor_policy, "deny");
        assert_eq!(st.policy_reason, "required of everyone");
        assert_eq!(st.locks.len(), 1);
        assert_eq!(st.locks[0].scope, "local");
        assert_eq!(st.locks[0].failures, 5);
        assert!(st.locks[0].locked_until > NOW + 10);
        let shown = format!("{st:?}");
        assert!(
            !shown.contains("sealed") && !shown.contains("secret"),
            "{shown}"
        );

        let nobody = admin.user_status(0, "nosuchuser", NOW).unwrap();
        assert!(!nobody.exists);
        assert!(nobody.factors.is_empty() && nobody.locks.is_empty());
    }

    #[test]
    fn user_arguments_are_checked() {
        let (_h, admin) = admin_harness();
        let long = "u".repeat(limits::USER_MAX + 1);
        for bad in ["", "a\nb", long.as_str()] {
            for r in [
                admin.reset(0, bad, NOW).map(|_| ()),
                admin.unlock(0, bad, NOW).map(|_| ()),
                admin.user_status(0, bad, NOW).map(|_| ()),
            ] {
                assert!(matches!(r, Err(HerarxError::InvalidArgument(_))), "{bad:?}");
            }
        }
        assert!(matches!(
            admin.log(0, "a\tb", 0, 0, 1, NOW),
            Err(HerarxError::InvalidArgument(_))
        ));
        assert!(matches!(
            admin.list(0, &long, 1, NOW),
            Err(HerarxError::InvalidArgument(_))
        ));
    }

    #[test]
    fn reset_and_unlock_clear_and_are_idempotent() {
        let (h, admin) = admin_harness();
        h.enrol("alice");
        lock(&h, "alice");
        assert_eq!(admin.unlock(1002, "alice", NOW + 10).unwrap(), 1);
        assert_eq!(admin.unlock(1002, "alice", NOW + 10).unwrap(), 0);
        // A session of alice's trusted after a second factor: the reset ends it.
        let sessions = &admin.state.sessions;
        sessions.issue("ticket", "alice", NOW);
        assert!(sessions.open("ticket", "alice", 7, 500, 3600, NOW));
        assert_eq!(admin.reset(1002, "alice", NOW + 10).unwrap(), 1);
        assert!(sessions.trusted(7, "alice", NOW + 10).is_none());
        assert_eq!(admin.reset(1002, "alice", NOW + 11).unwrap(), 0);
        let st = admin.user_status(0, "alice", NOW + 12).unwrap();
        assert!(st.factors.is_empty());
        let rows = admin.log(0, "alice", 0, 0, 100, NOW + 12).unwrap();
        let methods: Vec<&str> = rows.iter().map(|r| r.method.as_str()).collect();
        assert_eq!(
            methods[..5],
            [
                "admin-status",
                "admin-reset",
                "admin-reset",
                "admin-unlock",
                "admin-unlock"
            ]
        );
        assert!(rows[1..5].iter().all(|r| r.caller_uid == 1002));
    }

    #[test]
    fn only_root_may_reset_or_unlock_root_and_admins() {
        let (h, admin) = admin_harness();
        for user in ["root", "dave", "alice"] {
            h.enrol(user);
            lock(&h, user);
        }
        // carol, an admin, against root (by either of its names), a fellow admin, a name
        // NSS does not know.
        for (user, why) in [
            ("root", "has uid 0"),
            ("toor", "has uid 0"),
            ("dave", "is a member of admin group hxadmin"),
            ("nosuchuser", "is not an account this host knows"),
        ] {
            for method in ["admin-reset", "admin-unlock"] {
                let e = if method == "admin-reset" {
                    admin.reset(1002, user, NOW + 10)
                } else {
                    admin.unlock(1002, user, NOW + 10)
                }
                .unwrap_err();
                assert!(
                    matches!(e, HerarxError::PermissionDenied(ref m)
                        if m.contains(why) && m.contains("only root")),
                    "{method} {user}: {e:?}"
                );
                let row = h.audit().into_iter().next().unwrap();
                // Audited under the account's canonical name (toor is root).
                let account = if user == "toor" { "root" } else { user };
                assert_eq!(
                    (row.method.as_str(), row.user.as_str(), row.result),
                    (method, account, AuditResult::Refused)
                );
                assert!(row.reason.contains(why), "{}", row.reason);
                assert_eq!(row.caller_uid, 1002);
            }
        }
        for user in ["root", "dave"] {
            let st = admin.user_status(1002, user, NOW + 10).unwrap();
            assert_eq!(
                (st.factors.len(), st.locks.len()),
                (1, 1),
                "{user}: untouched, and still readable by an admin"
            );
        }
        // An ordinary user: the admin may.
        assert_eq!(admin.unlock(1002, "alice", NOW + 10).unwrap(), 1);
        assert_eq!(admin.reset(1002, "alice", NOW + 10).unwrap(), 1);
        // Root may do it all.
        for user in ["root", "dave"] {
            assert_eq!(admin.unlock(0, user, NOW + 10).unwrap(), 1, "{user}");
            assert_eq!(admin.reset(0, user, NOW + 10).unwrap(), 1, "{user}");
        }
        assert_eq!(admin.reset(0, "nosuchuser", NOW + 10).unwrap(), 0);
    }
}
