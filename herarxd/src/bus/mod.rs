//! The D-Bus face at `/org/herarx/Herarx1`, one file per interface: `auth.rs`
//! (`org.herarx.Herarx1.Auth`), `factors.rs` (`…Factors`), `admin.rs` (`…Admin`). Thin: find who
//! calls (the sender, its uid and pid from the bus driver, never from the caller), run the logic
//! of [`crate::login`] / [`crate::selfservice`] / [`crate::admin`], return wire types. Here: the
//! caller's identity and the blocking pool.

pub(crate) mod admin;
mod auth;
mod factors;
pub(crate) mod local_session;
mod logind;

pub use auth::AuthInterface;
pub use factors::FactorsInterface;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use herarx_proto::HerarxError;
use tokio::sync::OnceCell;
use zbus::Connection;
use zbus::fdo::DBusProxy;
use zbus::message::Header;

use crate::login::Caller;

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
