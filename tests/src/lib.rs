//! Harness for Herarx's end-to-end tests and benchmark: real components only. A private
//! `dbus-daemon` that includes `packaging/dbus/` as shipped, the real `herarxd`, real users
//! made with `useradd` and acting as themselves through `setpriv`, real libpam with a private
//! config dir, `pamtester`, and `oathtool` as an independent TOTP implementation.
//!
//! These tests need root (they create users and switch to them), as CI and the README's test
//! command run them.

pub mod authselect;
pub mod bench;
pub mod bus;
pub mod contact_ctl;
pub mod ctl;
pub mod daemon;
pub mod logs;
pub mod mail;
pub mod netns;
pub mod pam_client;
pub mod pamconf;
pub mod paths;
pub mod seed;
pub mod sms;
pub mod sshd;
pub mod totp;
pub mod users;

pub use bus::Bus;
pub use daemon::{Daemon, DaemonConfig};
pub use users::TestUser;

/// One private world: a bus with the shipped policy, a daemon on it, a PAM config dir whose
/// `herarx` service is `pam_permit` (standing in for the password) then `pam_herarx.so`.
pub struct World {
    pub pam: pamconf::PamConf,
    pub daemon: Daemon,
    pub bus: Bus,
}

impl World {
    pub fn start(config: DaemonConfig) -> World {
        let bus = Bus::start();
        let daemon = Daemon::start(&bus, config);
        let pam = pamconf::PamConf::new(&bus.address);
        World { pam, daemon, bus }
    }

    /// A new real user with one TOTP factor enrolled through `herarxctl` as that user.
    pub fn enrolled_user(&self, tag: &str) -> (TestUser, ctl::Enrolled) {
        let user = TestUser::create(tag);
        let enrolled = ctl::enrol_totp(&user, &self.bus.address, "phone", None);
        (user, enrolled)
    }

    /// A login through the `herarx` service as root (as sshd or login would run it).
    pub fn login(&self, user: &str, answers: &[&str]) -> pamconf::Report {
        pamconf::run_login(&self.pam.login("herarx", user, answers), None)
    }
}
