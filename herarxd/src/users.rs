//! Account lookups through NSS (getpwnam/getpwuid), behind a trait so the login logic can be
//! tested with a fixed table.
//!
//! One account can answer to several names: two passwd entries sharing a uid, SSSD or winbind
//! answering `Alice` and `alice@example.com` for `alice`. Herarx keys everything (factors,
//! lockouts, remembered keys, session trust) by the account's *canonical* name: the name its
//! uid resolves back to (`getpwuid(getpwnam(typed)->pw_uid)->pw_name`), which is also the
//! name self-service enrols under. So every spelling of one account finds the same factors
//! and the same failure counters.

#[cfg(test)]
use std::collections::HashMap;

/// An account as NSS knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The uid's own name: the key of everything Herarx stores for the account.
    pub name: String,
    pub uid: u32,
}

/// What NSS says of a name typed at a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Known(Account),
    /// No such account: the login goes on as for a known user without a factor, under the
    /// name as typed (no enumeration).
    Unknown,
    /// The name resolves to a uid that does not resolve back to a name: NSS is inconsistent
    /// (a directory half down). Logins fail closed rather than guess a key.
    NoCanonicalName(u32),
}

/// Name ⇄ uid of local accounts.
pub trait UserDb: Send + Sync {
    /// The uid of `name`; `None` when there is no such account.
    fn uid_of(&self, name: &str) -> Option<u32>;
    /// The name of `uid`; `None` when there is no such account.
    fn name_of(&self, uid: u32) -> Option<String>;
    /// The names of the groups `name` belongs to (its primary group included); `None` when
    /// there is no such account.
    fn groups_of(&self, name: &str) -> Option<Vec<String>>;

    /// The account `name` stands for, under its canonical name.
    fn account(&self, name: &str) -> Lookup {
        let Some(uid) = self.uid_of(name) else {
            return Lookup::Unknown;
        };
        match self.name_of(uid) {
            Some(canonical) => Lookup::Known(Account {
                name: canonical,
                uid,
            }),
            None => Lookup::NoCanonicalName(uid),
        }
    }
}

/// The system's accounts. NSS may block (LDAP, SSSD): call it from a blocking thread.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemUsers;

impl UserDb for SystemUsers {
    fn uid_of(&self, name: &str) -> Option<u32> {
        if name.is_empty() || name.contains('\0') {
            return None;
        }
        nix::unistd::User::from_name(name)
            .ok()
            .flatten()
            .map(|u| u.uid.as_raw())
    }

    fn name_of(&self, uid: u32) -> Option<String> {
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| u.name)
    }

    fn groups_of(&self, name: &str) -> Option<Vec<String>> {
        if name.is_empty() || name.contains('\0') {
            return None;
        }
        let user = nix::unistd::User::from_name(name).ok().flatten()?;
        let cname = std::ffi::CString::new(name).ok()?;
        let gids = nix::unistd::getgrouplist(&cname, user.gid).ok()?;
        Some(
            gids.into_iter()
                .filter_map(|g| nix::unistd::Group::from_gid(g).ok().flatten())
                .map(|g| g.name)
                .collect(),
        )
    }
}

/// A fixed table, for tests: entries in passwd order (a uid's name is its first entry's, as
/// `getpwuid` answers over `/etc/passwd`); optionally answering names in any case, as SSSD
/// with `case_sensitive = false` does.
#[cfg(test)]
#[derive(Debug, Default, Clone)]
pub struct FixedUsers {
    entries: Vec<(String, u32)>,
    groups: HashMap<String, Vec<String>>,
    any_case: bool,
}

#[cfg(test)]
impl FixedUsers {
    pub fn new(entries: &[(&str, u32)]) -> Self {
        FixedUsers {
            entries: entries.iter().map(|(n, u)| ((*n).to_owned(), *u)).collect(),
            ..FixedUsers::default()
        }
    }

    /// The same table answering names in any case.
    pub fn case_insensitive(mut self) -> Self {
        self.any_case = true;
        self
    }

    fn entry(&self, name: &str) -> Option<&(String, u32)> {
        self.entries.iter().find(|(n, _)| {
            if self.any_case {
                n.eq_ignore_ascii_case(name)
            } else {
                n == name
            }
        })
    }

    /// The same table with `user` a member of `groups`.
    pub fn with_groups(mut self, user: &str, groups: &[&str]) -> Self {
        self.groups.insert(
            user.to_owned(),
            groups.iter().map(|g| (*g).to_owned()).collect(),
        );
        self
    }
}

#[cfg(test)]
impl UserDb for FixedUsers {
    fn uid_of(&self, name: &str) -> Option<u32> {
        self.entry(name).map(|(_, u)| *u)
    }

    fn name_of(&self, uid: u32) -> Option<String> {
        self.entries
            .iter()
            .find(|(_, u)| *u == uid)
            .map(|(n, _)| n.clone())
    }

    fn groups_of(&self, name: &str) -> Option<Vec<String>> {
        let (name, _) = self.entry(name)?;
        Some(self.groups.get(name).cloned().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_resolves_both_ways() {
        assert_eq!(SystemUsers.uid_of("root"), Some(0));
        assert_eq!(SystemUsers.name_of(0).as_deref(), Some("root"));
    }

    #[test]
    fn root_is_in_its_own_group() {
        let groups = SystemUsers.groups_of("root").unwrap();
        assert!(groups.iter().any(|g| g == "root"), "{groups:?}");
        assert_eq!(SystemUsers.groups_of("no-such-user-hx-7f3a"), None);
    }

    #[test]
    fn every_name_of_an_account_resolves_to_its_uids_own_name() {
        let users = FixedUsers::new(&[("alice", 1000), ("alias", 1000), ("bob", 1001)]);
        let alice = Lookup::Known(Account {
            name: "alice".into(),
            uid: 1000,
        });
        assert_eq!(users.account("alice"), alice);
        assert_eq!(users.account("alias"), alice);
        assert_eq!(users.account("Alice"), Lookup::Unknown, "case matters here");
        assert_eq!(users.clone().case_insensitive().account("ALICE"), alice);
        assert_eq!(users.account("nobody-hx"), Lookup::Unknown);
        assert_eq!(
            SystemUsers.account("root"),
            Lookup::Known(Account {
                name: "root".into(),
                uid: 0
            })
        );
    }

    #[test]
    fn a_uid_without_a_name_is_not_guessed() {
        struct HalfDown;
        impl UserDb for HalfDown {
            fn uid_of(&self, _: &str) -> Option<u32> {
                Some(4242)
            }
            fn name_of(&self, _: u32) -> Option<String> {
                None
            }
            fn groups_of(&self, _: &str) -> Option<Vec<String>> {
                None
            }
        }
        assert_eq!(HalfDown.account("x"), Lookup::NoCanonicalName(4242));
    }

    #[test]
    fn an_unknown_user_is_none() {
        assert_eq!(SystemUsers.uid_of("no-such-user-hx-7f3a"), None);
        assert_eq!(SystemUsers.uid_of(""), None);
        assert_eq!(SystemUsers.uid_of("a\0b"), None);
    }
}
