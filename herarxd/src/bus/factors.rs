//! `org.herarx.Herarx1.Factors`: a user's own factors (herarxctl). Thin: the caller's uid from
//! the bus, the logic of [`crate::selfservice`] on a blocking thread, wire types back.

use std::sync::Arc;

use herarx_proto::{FactorInfo, HerarxError, PendingEnrollment, UserStatus};
use zbus::Connection;
use zbus::message::Header;
use zeroize::Zeroizing;

use super::{BusDriver, blocking, sender_of};
use crate::selfservice::{ContactRequest, SelfService};
use crate::state::unix_now;

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
                    &ContactRequest {
                        kind: &kind,
                        destination: &destination,
                        name: &name,
                        replace: &replace,
                    },
                    &step_up_code,
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
