//! Which bus to use, and the connection to herarxd on it.
//!
//! The daemon acts on the account of whoever calls (it asks the bus for our uid), so nothing
//! here sends a user name. Each method returns a [`CliError`] that already knows its exit code.

use std::time::Duration;

use herarx_proto::{FactorInfo, FactorsProxy, PendingEnrollment, UserStatus};
use tokio::runtime::Runtime;
use zbus::proxy::CacheProperties;

use crate::error::CliError;

/// The standard variable naming the system bus. Honoured for ordinary users only: they run
/// herarxctl with their own rights. Root's environment may still be another user's (`su`
/// without `-`, `sudo -E`), and a bus of theirs would receive root's step-up codes and could
/// fake the daemon's answers, so as root only `--bus` chooses another bus.
pub const ENV_VAR: &str = "DBUS_SYSTEM_BUS_ADDRESS";

/// How long one call may take before we call the daemon stuck.
pub const METHOD_TIMEOUT: Duration = Duration::from_secs(10);

/// The bus to use, and whether the environment's choice was set aside (for a note).
#[derive(Debug, PartialEq, Eq)]
pub struct Choice {
    pub address: String,
    pub env_ignored: bool,
}

/// `--bus` wins, then (not for root) the environment, then the system bus. An empty variable
/// counts as unset.
pub fn choose_address(arg: Option<&str>, env: Option<&str>, root: bool) -> Choice {
    let env = env.filter(|v| !v.trim().is_empty());
    let env_ignored = root && arg.is_none() && env.is_some();
    let address = arg
        .or(env.filter(|_| !root))
        .unwrap_or(herarx_proto::SYSTEM_BUS_ADDRESS)
        .to_owned();
    Choice {
        address,
        env_ignored,
    }
}

/// [`choose_address`] with this process's environment and effective uid; says on stderr when
/// it sets the variable aside, so that root is not left wondering which bus it reached.
pub fn address(arg: Option<&str>) -> String {
    let env = std::env::var(ENV_VAR).ok();
    let choice = choose_address(arg, env.as_deref(), nix::unistd::geteuid().is_root());
    if choice.env_ignored {
        eprintln!(
            "herarxctl: running as root, {ENV_VAR} is ignored (it may come from another \
             user's environment); using {}. Pass --bus ADDRESS to choose another bus.",
            choice.address
        );
    }
    choice.address
}

/// A connection to herarxd, with the runtime that drives it. Calls are synchronous, so the
/// commands read like the conversation they hold; between calls (while we wait for the user)
/// nothing needs to run.
pub struct Daemon {
    address: String,
    // Declared before the runtime so that it is dropped while the runtime still exists.
    factors: FactorsProxy<'static>,
    admin: herarx_proto::AdminProxy<'static>,
    runtime: Runtime,
}

impl Daemon {
    pub fn connect(address: &str) -> Result<Daemon, CliError> {
        Self::connect_waiting(address, METHOD_TIMEOUT)
    }

    /// A connection whose calls may take up to `method_timeout` (a security key waiting for
    /// its touches).
    pub fn connect_waiting(address: &str, method_timeout: Duration) -> Result<Daemon, CliError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::Io(format!("cannot start the async runtime: {e}")))?;
        let connect = async {
            let connection = zbus::connection::Builder::address(address)
                .method_timeout(method_timeout)
                .build()
                .await?;
            FactorsProxy::builder(&connection)
                .cache_properties(CacheProperties::No)
                .build()
                .await
        };
        // The method timeout does not cover the handshake and `Hello`: a bus that accepts
        // the socket but never answers (or whose policy drops our replies) would hang us.
        let factors = runtime
            .block_on(async { tokio::time::timeout(METHOD_TIMEOUT, connect).await })
            .map_err(|_| CliError::Unreachable {
                address: address.to_owned(),
                reason: format!(
                    "the bus did not complete the connection within {} s",
                    METHOD_TIMEOUT.as_secs()
                ),
            })?
            .map_err(|e| CliError::from_connect(e, address))?;
        // Same connection; building a proxy without cached properties does no I/O.
        let admin = runtime
            .block_on(
                herarx_proto::AdminProxy::builder(factors.inner().connection())
                    .cache_properties(CacheProperties::No)
                    .build(),
            )
            .map_err(|e| CliError::from_connect(e, address))?;
        Ok(Daemon {
            address: address.to_owned(),
            factors,
            admin,
            runtime,
        })
    }

    pub fn status(&self) -> Result<UserStatus, CliError> {
        self.runtime
            .block_on(self.factors.status())
            .map_err(|e| CliError::from_call(e, &self.address))
    }

    pub fn begin_totp_enrollment(
        &self,
        name: &str,
        step_up_code: &str,
        replace: &str,
    ) -> Result<PendingEnrollment, CliError> {
        self.runtime
            .block_on(
                self.factors
                    .begin_totp_enrollment(name, step_up_code, replace),
            )
            .map_err(|e| CliError::from_call(e, &self.address))
    }

    pub fn begin_contact_enrollment(
        &self,
        kind: &str,
        destination: &str,
        name: &str,
        step_up_code: &str,
        replace: &str,
    ) -> Result<(String, String), CliError> {
        self.runtime
            .block_on(self.factors.begin_contact_enrollment(
                kind,
                destination,
                name,
                step_up_code,
                replace,
            ))
            .map_err(|e| CliError::from_call(e, &self.address))
    }

    pub fn confirm_contact_enrollment(&self, id: &str, code: &str) -> Result<FactorInfo, CliError> {
        self.runtime
            .block_on(self.factors.confirm_contact_enrollment(id, code))
            .map_err(|e| CliError::from_call(e, &self.address))
    }

    pub fn send_code(&self, id: &str) -> Result<String, CliError> {
        self.runtime
            .block_on(self.factors.send_code(id))
            .map_err(|e| CliError::from_call(e, &self.address))
    }

    pub fn confirm_totp_enrollment(&self, id: &str, code: &str) -> Result<FactorInfo, CliError> {
        self.runtime
            .block_on(self.factors.confirm_totp_enrollment(id, code))
            .map_err(|e| CliError::from_call(e, &self.address))
    }

    pub fn remove_factor(&self, id: &str, step_up_code: &str) -> Result<(), CliError> {
        self.runtime
            .block_on(self.factors.remove_factor(id, step_up_code))
            .map_err(|e| CliError::from_call(e, &self.address))
    }

    pub fn generate_backup_codes(&self, step_up_code: &str) -> Result<Vec<String>, CliError> {
        self.runtime
            .block_on(self.factors.generate_backup_codes(step_up_code))
            .map_err(|e| CliError::from_call(e, &self.address))
    }

    pub fn set_primary(&self, id: &str) -> Result<(), CliError> {
        self.runtime
            .block_on(self.factors.set_primary(id))
            .map_err(|e| CliError::from_call(e, &self.address))
    }

    pub fn rename_factor(&self, id: &str, name: &str) -> Result<FactorInfo, CliError> {
        self.runtime
            .block_on(self.factors.rename_factor(id, name))
            .map_err(|e| CliError::from_call(e, &self.address))
    }

    pub fn set_remember_addresses(&self, on: bool) -> Result<(), CliError> {
        self.runtime
            .block_on(self.factors.set_remember_addresses(on))
            .map_err(|e| CliError::from_call(e, &self.address))
    }

    pub fn add_security_key(
        &self,
        name: &str,
        step_up_code: &str,
        pin: &str,
    ) -> Result<FactorInfo, CliError> {
        self.runtime
            .block_on(self.factors.add_security_key(name, step_up_code, pin))
            .map_err(|e| CliError::from_call(e, &self.address))
    }

    pub fn forget(&self) -> Result<u32, CliError> {
        self.runtime
            .block_on(self.factors.forget())
            .map_err(|e| CliError::from_call(e, &self.address))
    }
}

/// `herarxctl admin`: the daemon checks at each call that we are root or an admin.
impl Daemon {
    pub fn admin_user_status(&self, user: &str) -> Result<herarx_proto::AdminUserStatus, CliError> {
        self.runtime
            .block_on(self.admin.user_status(user))
            .map_err(|e| CliError::from_call(e, &self.address))
    }

    pub fn admin_reset(&self, user: &str) -> Result<u32, CliError> {
        self.runtime
            .block_on(self.admin.reset(user))
            .map_err(|e| CliError::from_call(e, &self.address))
    }

    pub fn admin_unlock(&self, user: &str) -> Result<u32, CliError> {
        self.runtime
            .block_on(self.admin.unlock(user))
            .map_err(|e| CliError::from_call(e, &self.address))
    }

    pub fn admin_list(
        &self,
        after: &str,
        limit: u32,
    ) -> Result<Vec<herarx_proto::UserSummary>, CliError> {
        self.runtime
            .block_on(self.admin.list(after, limit))
            .map_err(|e| CliError::from_call(e, &self.address))
    }

    pub fn admin_log(
        &self,
        user: &str,
        since: u64,
        before: u64,
        limit: u32,
    ) -> Result<Vec<herarx_proto::AuditRecord>, CliError> {
        self.runtime
            .block_on(self.admin.log(user, since, before, limit))
            .map_err(|e| CliError::from_call(e, &self.address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chosen(arg: Option<&str>, env: Option<&str>, root: bool) -> String {
        choose_address(arg, env, root).address
    }

    #[test]
    fn the_option_wins_over_the_environment() {
        for root in [false, true] {
            assert_eq!(
                chosen(Some("unix:path=/tmp/a"), Some("unix:path=/tmp/b"), root),
                "unix:path=/tmp/a"
            );
        }
    }

    #[test]
    fn the_environment_wins_over_the_system_bus_for_a_user() {
        assert_eq!(
            chosen(None, Some("unix:path=/tmp/b"), false),
            "unix:path=/tmp/b"
        );
    }

    #[test]
    fn root_ignores_the_environment_and_says_so() {
        let c = choose_address(None, Some("unix:path=/tmp/b"), true);
        assert_eq!(c.address, "unix:path=/run/dbus/system_bus_socket");
        assert!(c.env_ignored);
        // Nothing set aside, nothing to say.
        assert!(!choose_address(None, None, true).env_ignored);
        assert!(!choose_address(None, Some(" "), true).env_ignored);
        assert!(
            !choose_address(Some("unix:path=/tmp/a"), Some("unix:path=/tmp/b"), true).env_ignored
        );
        assert!(!choose_address(None, Some("unix:path=/tmp/b"), false).env_ignored);
    }

    #[test]
    fn the_system_bus_is_the_default() {
        for root in [false, true] {
            assert_eq!(
                chosen(None, None, root),
                "unix:path=/run/dbus/system_bus_socket"
            );
            assert_eq!(
                chosen(None, Some(""), root),
                "unix:path=/run/dbus/system_bus_socket"
            );
        }
    }
}
