//! The D-Bus face: `org.herarx.Herarx1.Auth` and `org.herarx.Herarx1.Factors` at
//! `/org/herarx/Herarx1`. Thin: find who calls (sender, and its uid from the bus), run the
//! logic of [`crate::login`] / [`crate::selfservice`] on a blocking thread, return wire types.

pub(crate) mod admin;
pub(crate) mod local_session;
mod logind;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use herarx_proto::{FactorInfo, HerarxError, PendingEnrollment, Step, UserStatus};
use tokio::sync::OnceCell;
use zbus::Connection;
use zbus::fdo::DBusProxy;
use zbus::message::Header;
use zeroize::Zeroizing;

use crate::login::{Caller, Logins};
use crate::selfservice::SelfService;
use crate::state::unix_now;

/// The bus driver's proxy, made once on first use.
#[derive(Default, Clone)]
pub struct BusDriver(Arc<OnceCell<DBusProxy<'static>>>);

impl BusDriver {
    async fn proxy(&self, conn: &Connection) -> Result<&DBusProxy<'static>, HerarxError> {
        self.0
            .get_or_try_init(|| DBusProxy::new(conn))
            .await
            .map_err(|e| internal_bus(&e))
    }

    /// The uid of the connection that sent `sender`, as the bus knows it.
    pub(crate) async fn uid_of(&self, conn: &Connection, sender: &str) -> Result<u32, HerarxError> {
        let name = bus_name(sender)?;
        self.proxy(conn)
            .await?
            .get_connection_unix_user(name)
            .await
            .map_err(|e| internal_bus(&e))
    }

    /// The uid of the caller of the message with header `hdr`.
    pub(crate) async fn caller_uid(
        &self,
        conn: &Connection,
        hdr: &Header<'_>,
    ) -> Result<u32, HerarxError> {
        self.uid_of(conn, &sender_of(hdr)?).await
    }

    /// The pid of the process behind `sender`, as the bus knows it (from the socket's
    /// credentials, not from the caller).
    pub(crate) async fn pid_of(&self, conn: &Connection, sender: &str) -> Result<u32, HerarxError> {
        let name = bus_name(sender)?;
        self.proxy(conn)
            .await?
            .get_connection_unix_process_id(name)
            .await
            .map_err(|e| internal_bus(&e))
    }

    /// Whether the process behind `sender` (uid `uid`) may drive the security keys plugged
    /// into this machine: root, or a caller in a local login of its own
    /// (`crate::bus::local_session`); `Err` is the refusal to return.
    /// `pid` when the caller's pid is known already (else it is asked of the bus).
    pub(crate) async fn local_session(
        &self,
        conn: &Connection,
        sender: &str,
        uid: u32,
        pid: Option<u32>,
    ) -> Result<(), HerarxError> {
        let pid = match pid {
            Some(pid) => pid,
            None => self.pid_of(conn, sender).await?,
        };
        local_session::decide(uid, &facts_of(pid).await)
    }

    /// The caller, with its audit session looked up when `with_session`.
    async fn caller(
        &self,
        conn: &Connection,
        hdr: &Header<'_>,
        with_session: bool,
    ) -> Result<(Caller, u32), HerarxError> {
        let bus_name = sender_of(hdr)?;
        let uid = self.uid_of(conn, &bus_name).await?;
        let (pid, session, login_uid) = if with_session {
            let pid = self.pid_of(conn, &bus_name).await?;
            (
                pid,
                crate::state::session_trust::session_of(pid),
                crate::state::session_trust::login_uid_of(pid),
            )
        } else {
            (0, crate::state::session_trust::NO_SESSION, None)
        };
        Ok((
            Caller {
                bus_name,
                uid,
                session,
                login_uid,
                keys_allowed: uid == 0,
            },
            pid,
        ))
    }
}

/// The facts about process `pid` for [`local_session::decide`]: logind's when it runs, else
/// the kernel's.
async fn facts_of(pid: u32) -> local_session::Facts {
    match logind::facts_of(pid).await {
        Some(f) => f,
        None => local_session::kernel_facts(pid),
    }
}

fn bus_name(sender: &str) -> Result<zbus::names::BusName<'_>, HerarxError> {
    zbus::names::BusName::try_from(sender).map_err(|e| internal_bus(&e))
}

fn internal_bus(e: &dyn std::fmt::Display) -> HerarxError {
    HerarxError::Internal(format!(
        "herarxd could not ask the bus who is calling ({e}); try again."
    ))
}

pub(crate) fn sender_of(hdr: &Header<'_>) -> Result<String, HerarxError> {
    hdr.sender().map(|s| s.to_string()).ok_or_else(|| {
        HerarxError::PermissionDenied("Calls must come through the message bus.".into())
    })
}

/// Runs work that may block for long (NSS: a user lookup can wait on LDAP or SSSD) off the
/// runtime's thread. Store operations do not come here: they take tens of microseconds, are
/// serialized by the store's lock anyway, and a hop to the blocking pool would cost more than
/// the work itself on every login.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, HerarxError> + Send + 'static,
) -> Result<T, HerarxError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|_| {
        Err(HerarxError::Internal(
            "herarxd failed inside; the details are in its log.".into(),
        ))
    })
}

pub struct AuthInterface {
    logins: Arc<Logins>,
    bus: BusDriver,
}

impl AuthInterface {
    pub fn new(logins: Arc<Logins>, bus: BusDriver) -> Self {
        AuthInterface { logins, bus }
    }
}

#[zbus::interface(name = "org.herarx.Herarx1.Auth")]
impl AuthInterface {
    /// Starts a login transaction; returns its id (empty when the first step is terminal)
    /// and the first step.
    #[allow(clippy::too_many_arguments)]
    async fn begin(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        user: String,
        service: String,
        rhost: String,
        tty: String,
        ssh_auth_info: String,
    ) -> Result<(String, Step), HerarxError> {
        let (mut caller, pid) = self
            .bus
            .caller(conn, &hdr, self.logins.session_trust())
            .await?;
        // A caller that is not root (a screen locker) is offered the keys only from a local
        // login session of its own: otherwise anyone could keep the console's keys busy.
        if caller.uid != 0 {
            caller.keys_allowed = self
                .bus
                .local_session(
                    conn,
                    &caller.bus_name,
                    caller.uid,
                    (pid != 0).then_some(pid),
                )
                .await
                .is_ok();
        }
        // Every login resolves its user through NSS (one canonical account for every
        // spelling), and NSS may block: off the runtime's thread.
        let logins = self.logins.clone();
        blocking(move || {
            logins.begin(
                &caller,
                &crate::login::Request {
                    user: &user,
                    service: &service,
                    rhost: &rhost,
                    tty: &tty,
                    ssh_auth_info: &ssh_auth_info,
                },
                unix_now(),
            )
        })
        .await
    }

    /// From the module's session hook: trusts the caller's login session for `user`.
    async fn open_session(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        user: String,
        ticket: String,
    ) -> Result<bool, HerarxError> {
        let (caller, pid) = self.bus.caller(conn, &hdr, true).await?;
        let ticket = Zeroizing::new(ticket);
        let logins = self.logins.clone();
        blocking(move || logins.open_session(&caller, pid, &user, &ticket, unix_now())).await
    }

    /// From the module's session hook at logout: ends the caller's session trust.
    async fn close_session(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        user: String,
    ) -> Result<bool, HerarxError> {
        let (caller, pid) = self.bus.caller(conn, &hdr, true).await?;
        let logins = self.logins.clone();
        blocking(move || logins.close_session(&caller, pid, &user)).await
    }

    /// Answers the current prompt of a transaction begun on this connection.
    async fn answer(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        transaction: String,
        response: String,
    ) -> Result<Step, HerarxError> {
        let bus_name = sender_of(&hdr)?;
        let response = Zeroizing::new(response);
        // Waiting for a security key or a mail server takes seconds: off the runtime's
        // threads. Codes are checked right here (tens of microseconds; a hop would cost more
        // than the work).
        if self.logins.answer_may_block(&bus_name, &transaction) {
            let logins = self.logins.clone();
            return blocking(move || logins.answer(&bus_name, &transaction, &response, unix_now()))
                .await;
        }
        self.logins
            .answer(&bus_name, &transaction, &response, unix_now())
    }

    /// Abandons a transaction begun on this connection.
    async fn cancel(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        transaction: String,
    ) -> Result<(), HerarxError> {
        let bus_name = sender_of(&hdr)?;
        self.logins.cancel(&bus_name, &transaction)
    }
}

pub struct FactorsInterface {
    service: Arc<SelfService>,
    bus: BusDriver,
}

impl FactorsInterface {
    pub fn new(service: Arc<SelfService>, bus: BusDriver) -> Self {
        FactorsInterface { service, bus }
    }

    async fn caller_uid(&self, hdr: &Header<'_>, conn: &Connection) -> Result<u32, HerarxError> {
        self.bus.caller_uid(conn, hdr).await
    }
}

#[zbus::interface(name = "org.herarx.Herarx1.Factors")]
impl FactorsInterface {
    /// The caller's factors, lockout state and the policy that applies.
    async fn status(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<UserStatus, HerarxError> {
        let uid = self.caller_uid(&hdr, conn).await?;
        let service = self.service.clone();
        blocking(move || service.status(uid, unix_now())).await
    }

    /// Starts a TOTP enrolment for the caller; step-up code needed once they have a factor.
    async fn begin_totp_enrollment(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        name: String,
        step_up_code: String,
        replace: String,
    ) -> Result<PendingEnrollment, HerarxError> {
        let uid = self.caller_uid(&hdr, conn).await?;
        let step_up_code = Zeroizing::new(step_up_code);
        let service = self.service.clone();
        blocking(move || {
            service.begin_totp_enrollment(uid, &name, &step_up_code, &replace, unix_now())
        })
        .await
    }

    /// Completes an enrolment with a code from the new authenticator.
    async fn confirm_totp_enrollment(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        id: String,
        code: String,
    ) -> Result<FactorInfo, HerarxError> {
        let uid = self.caller_uid(&hdr, conn).await?;
        let code = Zeroizing::new(code);
        let service = self.service.clone();
        blocking(move || service.confirm_totp_enrollment(uid, &id, &code, unix_now())).await
    }

    /// Removes one of the caller's factors after a step-up.
    async fn remove_factor(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        id: String,
        step_up_code: String,
    ) -> Result<(), HerarxError> {
        let sender = sender_of(&hdr)?;
        let uid = self.bus.uid_of(conn, &sender).await?;
        let step_up_code = Zeroizing::new(step_up_code);
        // Without a code the step-up may be a touch of the user's keys: only from a local
        // login (see `crate::bus::local_session`).
        let local = if step_up_code.trim().is_empty() {
            self.bus.local_session(conn, &sender, uid, None).await
        } else {
            Ok(())
        };
        let service = self.service.clone();
        blocking(move || service.remove_factor(uid, &id, &step_up_code, local, unix_now())).await
    }

    /// A new set of backup codes for the caller (the old set stops working), returned once.
    async fn generate_backup_codes(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        step_up_code: String,
    ) -> Result<Vec<String>, HerarxError> {
        let uid = self.caller_uid(&hdr, conn).await?;
        let step_up_code = Zeroizing::new(step_up_code);
        let service = self.service.clone();
        blocking(move || service.generate_backup_codes(uid, &step_up_code, unix_now())).await
    }

    /// Makes one of the caller's factors the one logins offer first.
    async fn set_primary(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        id: String,
    ) -> Result<(), HerarxError> {
        let uid = self.caller_uid(&hdr, conn).await?;
        let service = self.service.clone();
        blocking(move || service.set_primary(uid, &id, unix_now())).await
    }

    /// Renames one of the caller's factors.
    async fn rename_factor(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        id: String,
        name: String,
    ) -> Result<FactorInfo, HerarxError> {
        let uid = self.caller_uid(&hdr, conn).await?;
        let service = self.service.clone();
        blocking(move || service.rename_factor(uid, &id, &name, unix_now())).await
    }

    /// Turns "only ask from new addresses" on or off for the caller.
    async fn set_remember_addresses(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        on: bool,
    ) -> Result<(), HerarxError> {
        let uid = self.caller_uid(&hdr, conn).await?;
        let service = self.service.clone();
        blocking(move || service.set_remember_addresses(uid, on, unix_now())).await
    }

    /// Registers a security key plugged into this machine for the caller (see
    /// `crate::selfservice::keys`). Waits for the touches on the blocking pool.
    async fn add_security_key(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        name: String,
        step_up_code: String,
        pin: String,
    ) -> Result<FactorInfo, HerarxError> {
        let sender = sender_of(&hdr)?;
        let uid = self.bus.uid_of(conn, &sender).await?;
        let step_up_code = Zeroizing::new(step_up_code);
        let pin = Zeroizing::new(pin);
        // Who sits at this machine may drive its keys (see `crate::bus::local_session`); the pid is
        // the bus's, from the caller's socket.
        let local = self.bus.local_session(conn, &sender, uid, None).await;
        let service = self.service.clone();
        blocking(move || {
            service.add_security_key(uid, local, &name, &step_up_code, &pin, unix_now())
        })
        .await
    }

    /// Starts adding an email address or phone number; a code is sent there.
    #[allow(clippy::too_many_arguments)]
    async fn begin_contact_enrollment(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        kind: String,
        destination: String,
        name: String,
        step_up_code: String,
        replace: String,
    ) -> Result<(String, String), HerarxError> {
        let uid = self.caller_uid(&hdr, conn).await?;
        let step_up_code = Zeroizing::new(step_up_code);
        let service = self.service.clone();
        blocking(move || {
            service
                .begin_contact_enrollment(
                    uid,
                    &kind,
                    &destination,
                    &name,
                    &step_up_code,
                    &replace,
                    unix_now(),
                )
                .map(|sent| (sent.id, sent.masked))
        })
        .await
    }

    /// Completes an email or SMS enrolment with the code sent there.
    async fn confirm_contact_enrollment(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        id: String,
        code: String,
    ) -> Result<FactorInfo, HerarxError> {
        let uid = self.caller_uid(&hdr, conn).await?;
        let code = Zeroizing::new(code);
        let service = self.service.clone();
        blocking(move || service.confirm_contact_enrollment(uid, &id, &code, unix_now())).await
    }

    /// Sends a step-up code to one of the caller's email or SMS factors.
    async fn send_code(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        id: String,
    ) -> Result<String, HerarxError> {
        let uid = self.caller_uid(&hdr, conn).await?;
        let service = self.service.clone();
        blocking(move || {
            service
                .send_step_up_code(uid, &id, unix_now())
                .map(|s| s.masked)
        })
        .await
    }

    /// Forgets every address and SSH key remembered for the caller.
    async fn forget(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<u32, HerarxError> {
        let uid = self.caller_uid(&hdr, conn).await?;
        let service = self.service.clone();
        blocking(move || service.forget(uid, unix_now())).await
    }
}
