//! Account lookups through NSS (getpwnam/getpwuid), behind a trait so the login logic can be
//! tested with a fixed table.

use std::collections::HashMap;

/// Name ⇄ uid of local accounts.
pub trait UserDb: Send + Sync {
    /// The uid of `name`; `None` when there is no such account.
    fn uid_of(&self, name: &str) -> Option<u32>;
    /// The name of `uid`; `None` when there is no such account.
    fn name_of(&self, uid: u32) -> Option<String>;
    /// The names of the groups `name` belongs to (its primary group included); `None` when
    /// there is no such account.
    fn groups_of(&self, name: &str) -> Option<Vec<String>>;
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

/// A fixed table, for tests.
#[derive(Debug, Default, Clone)]
pub struct FixedUsers(pub HashMap<String, u32>, pub HashMap<String, Vec<String>>);

impl FixedUsers {
    pub fn new(entries: &[(&str, u32)]) -> Self {
        FixedUsers(
            entries.iter().map(|(n, u)| ((*n).to_owned(), *u)).collect(),
            HashMap::new(),
        )
    }

    /// The same table with `user` a member of `groups`.
    pub fn with_groups(mut self, user: &str, groups: &[&str]) -> Self {
        self.1.insert(
            user.to_owned(),
            groups.iter().map(|g| (*g).to_owned()).collect(),
        );
        self
    }
}

impl UserDb for FixedUsers {
    fn uid_of(&self, name: &str) -> Option<u32> {
        self.0.get(name).copied()
    }

    fn name_of(&self, uid: u32) -> Option<String> {
        self.0
            .iter()
            .find(|(_, u)| **u == uid)
            .map(|(n, _)| n.clone())
    }

    fn groups_of(&self, name: &str) -> Option<Vec<String>> {
        self.0.get(name)?;
        Some(self.1.get(name).cloned().unwrap_or_default())
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
    fn an_unknown_user_is_none() {
        assert_eq!(SystemUsers.uid_of("no-such-user-hx-7f3a"), None);
        assert_eq!(SystemUsers.uid_of(""), None);
        assert_eq!(SystemUsers.uid_of("a\0b"), None);
    }
}
