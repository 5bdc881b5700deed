//! Where the session ticket waits between `pam_sm_authenticate` and `pam_sm_open_session`.
//!
//! The ticket is a credential: whoever presents it (from a fresh audit session of the user)
//! gets that session trusted. It must reach this module's session hook and nothing else, and
//! above all never the process environment that the application builds for the user's shell
//! from `pam_getenvlist`.
//!
//! Two stores, because no one store works for every application:
//! - the PAM environment survives sshd's split: sshd runs `pam_authenticate` in a forked child
//!   and brings back only that child's PAM environment, so module data set there is lost. But
//!   the PAM environment is also what `pam_getenvlist` hands to the shell, so the ticket may
//!   only sit there until the next hook of this module runs;
//! - module data (`pam_set_data`) never reaches any environment and is freed (zeroized) by
//!   `pam_end`.
//!
//! So authentication leaves the ticket in the PAM environment, and `pam_sm_setcred`, which
//! every application calls after authentication (login, su, sudo, sshd, display managers) and
//! before it reads the environment for the shell, moves it into module data. The session hook
//! takes it from either place and clears both. A stack with session trust on and no session
//! line thus ends with the ticket in module data, unused and wiped at `pam_end`.

use zeroize::Zeroizing;

/// The two places, as the PAM shell reaches them (a double in the tests).
pub trait Stores {
    /// Removes the ticket from the PAM environment and returns it.
    fn take_env(&mut self) -> Option<Zeroizing<String>>;
    fn put_env(&mut self, ticket: &str) -> Result<(), String>;
    /// Removes the ticket from module data and returns it.
    fn take_kept(&mut self) -> Option<Zeroizing<String>>;
    fn keep(&mut self, ticket: Zeroizing<String>) -> Result<(), String>;
}

/// After a successful authentication that came with a ticket.
pub fn after_authenticate(stores: &mut impl Stores, ticket: &str) -> Result<(), String> {
    stores.put_env(ticket)
}

/// At `pam_sm_setcred`: out of the environment, into module data, unless the credentials are
/// being deleted (then the ticket has no future). If module data cannot take it, the ticket
/// is dropped: losing session trust beats leaking the ticket to the shell.
pub fn at_setcred(stores: &mut impl Stores, deleting: bool) -> Result<(), String> {
    let Some(ticket) = stores.take_env() else {
        return Ok(());
    };
    if deleting {
        return Ok(());
    }
    stores.keep(ticket)
}

/// At `pam_sm_open_session`: the ticket, from wherever it waits; neither place keeps it.
pub fn at_open_session(stores: &mut impl Stores) -> Option<Zeroizing<String>> {
    let kept = stores.take_kept();
    let env = stores.take_env();
    kept.or(env).filter(|t| !t.is_empty())
}

#[cfg(test)]
#[allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Fake {
        env: Option<String>,
        kept: Option<String>,
        refuse_keep: bool,
    }

    impl Stores for Fake {
        fn take_env(&mut self) -> Option<Zeroizing<String>> {
            self.env.take().map(Zeroizing::new)
        }
        fn put_env(&mut self, ticket: &str) -> Result<(), String> {
            self.env = Some(ticket.into());
            Ok(())
        }
        fn take_kept(&mut self) -> Option<Zeroizing<String>> {
            self.kept.take().map(Zeroizing::new)
        }
        fn keep(&mut self, ticket: Zeroizing<String>) -> Result<(), String> {
            if self.refuse_keep {
                return Err("pam_set_data failed".into());
            }
            self.kept = Some(ticket.to_string());
            Ok(())
        }
    }

    #[test]
    fn setcred_takes_the_ticket_out_of_the_environment_and_the_session_still_gets_it() {
        let mut s = Fake::default();
        after_authenticate(&mut s, "t1").unwrap();
        at_setcred(&mut s, false).unwrap();
        assert_eq!(s.env, None, "nothing left for pam_getenvlist");
        assert_eq!(
            at_open_session(&mut s).as_deref().map(String::as_str),
            Some("t1")
        );
        assert_eq!((s.env, s.kept), (None, None));
    }

    #[test]
    fn a_session_opened_before_setcred_takes_it_from_the_environment() {
        let mut s = Fake::default();
        after_authenticate(&mut s, "t1").unwrap();
        assert_eq!(
            at_open_session(&mut s).as_deref().map(String::as_str),
            Some("t1")
        );
        assert_eq!(s.env, None);
        at_setcred(&mut s, false).unwrap();
        assert_eq!((s.env, s.kept), (None, None));
    }

    #[test]
    fn deleting_credentials_or_a_refused_keep_drops_the_ticket() {
        let mut s = Fake::default();
        after_authenticate(&mut s, "t1").unwrap();
        at_setcred(&mut s, true).unwrap();
        assert_eq!((s.env.take(), s.kept.take()), (None, None));

        let mut s = Fake {
            refuse_keep: true,
            ..Fake::default()
        };
        after_authenticate(&mut s, "t1").unwrap();
        assert!(at_setcred(&mut s, false).is_err());
        assert_eq!(s.env, None, "never left in the environment");
        assert!(at_open_session(&mut s).is_none());
    }

    #[test]
    fn setcred_twice_keeps_the_ticket() {
        // sshd calls setcred again in the session child.
        let mut s = Fake::default();
        after_authenticate(&mut s, "t1").unwrap();
        at_setcred(&mut s, false).unwrap();
        at_setcred(&mut s, false).unwrap();
        assert_eq!(s.kept.as_deref(), Some("t1"));
    }

    #[test]
    fn no_ticket_no_session_work() {
        let mut s = Fake::default();
        at_setcred(&mut s, false).unwrap();
        assert!(at_open_session(&mut s).is_none());
    }
}
