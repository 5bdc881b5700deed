//! `org.herarx.Herarx1.Auth`: the PAM module's calls. Thin: who calls (from the bus), the
//! login logic of [`crate::login`], wire types back.

use std::sync::Arc;

use herarx_proto::{HerarxError, Step};
use zbus::Connection;
use zbus::message::Header;
use zeroize::Zeroizing;

use super::{BusDriver, blocking, sender_of};
use crate::login::Logins;
use crate::state::unix_now;

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
