//! The D-Bus face of `org.herarx.Herarx1.Admin` at `/org/herarx/Herarx1`. Thin: the caller's
//! uid from the bus, the logic of [`crate::admin`] on a blocking thread (the authorization
//! check looks up groups through NSS, which may wait on LDAP or SSSD).

use std::sync::Arc;

use herarx_proto::{AdminUserStatus, AuditRecord, HerarxError, UserSummary};
use zbus::Connection;
use zbus::message::Header;

use crate::admin::Admin;
use crate::bus::{BusDriver, blocking};
use crate::state::unix_now;

pub struct AdminInterface {
    admin: Arc<Admin>,
    bus: BusDriver,
}

impl AdminInterface {
    pub fn new(admin: Arc<Admin>, bus: BusDriver) -> Self {
        AdminInterface { admin, bus }
    }

    async fn caller_uid(&self, hdr: &Header<'_>, conn: &Connection) -> Result<u32, HerarxError> {
        self.bus.caller_uid(conn, hdr).await
    }
}

#[zbus::interface(name = "org.herarx.Herarx1.Admin")]
impl AdminInterface {
    /// Everything about `user` except secrets.
    async fn user_status(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        user: String,
    ) -> Result<AdminUserStatus, HerarxError> {
        let uid = self.caller_uid(&hdr, conn).await?;
        let admin = self.admin.clone();
        blocking(move || admin.user_status(uid, &user, unix_now())).await
    }

    /// Removes all of `user`'s factors, backup codes, pending enrolments and lockouts.
    async fn reset(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        user: String,
    ) -> Result<u32, HerarxError> {
        let uid = self.caller_uid(&hdr, conn).await?;
        let admin = self.admin.clone();
        blocking(move || admin.reset(uid, &user, unix_now())).await
    }

    /// Clears `user`'s failure counters and lockouts.
    async fn unlock(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        user: String,
    ) -> Result<u32, HerarxError> {
        let uid = self.caller_uid(&hdr, conn).await?;
        let admin = self.admin.clone();
        blocking(move || admin.unlock(uid, &user, unix_now())).await
    }

    /// Users with any state, by name, after `after`, at most `limit`.
    async fn list(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        after: String,
        limit: u32,
    ) -> Result<Vec<UserSummary>, HerarxError> {
        let uid = self.caller_uid(&hdr, conn).await?;
        let admin = self.admin.clone();
        blocking(move || admin.list(uid, &after, limit, unix_now())).await
    }

    /// Audit rows, newest first.
    async fn log(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        user: String,
        since: u64,
        before: u64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, HerarxError> {
        let uid = self.caller_uid(&hdr, conn).await?;
        let admin = self.admin.clone();
        blocking(move || admin.log(uid, &user, since, before, limit, unix_now())).await
    }
}
